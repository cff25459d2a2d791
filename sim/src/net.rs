//! [`HostNet`]: the engine's [`Net`] over the host's TCP sockets.
//!
//! The engine's socket model is smoltcp's (see `ftpd::net`): every call
//! returns at once, a data listener takes exactly one connection, send
//! capacity is exact, a closed handle is handed back while TCP finishes in
//! the background. Host sockets are made to behave that way here:
//!
//! - Every connection has a bounded **userspace send buffer**
//!   ([`SEND_BUF`] bytes). [`Net::send_capacity`] is the free room in it, so
//!   the engine can rely on "a reply that fits is taken whole". Bytes move
//!   from it to the kernel whenever the kernel takes them.
//! - Every connection has a bounded **userspace receive buffer**
//!   ([`RECV_BUF`] bytes), filled from the kernel. `peek`/`consume`/`recv`
//!   work on it. It also keeps waiting honest: a socket is watched for
//!   readability only while its buffer has room, so bytes the engine leaves
//!   unread (half a command line, or a control connection it is not reading
//!   during a transfer) never make [`HostNet::wait`] return at once.
//! - The FTP control listener is accepted from eagerly into a short queue
//!   that [`Net::accept`] pops; the listener is watched only while that
//!   queue has room.
//! - [`Net::close`] moves the connection to a background list: its send
//!   buffer is flushed, then `shutdown(Write)` sends FIN, and what the peer
//!   still sends is read and dropped until its FIN (so unread data never
//!   turns the close into a reset). A connection that makes no progress for
//!   [`CLOSE_LINGER`] is dropped. [`Net::abort`] sets `SO_LINGER` to 0 and
//!   drops the socket: the peer sees a reset.
//! - A peer's FIN is [`NetError::Closed`] once every byte has been read; a
//!   reset (`ECONNRESET`, `EPIPE`, ...) is [`NetError::Reset`] and, as in
//!   smoltcp, drops whatever was still buffered.
//!
//! The loop that drives the engine calls [`HostNet::pump`] before each
//! `Server::poll`, and [`HostNet::wait`] when the engine made no progress:
//! `wait` blocks in `poll(2)` on exactly the sockets that can make progress
//! (and a wake-up pipe for signals) until one is ready or the deadline passes.
//!
//! `send_drained` is true once the userspace buffer is empty, i.e. every byte
//! is in the kernel; whether the peer acknowledged them is not something
//! `poll(2)` can wait for, so it is not part of the answer.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use ftpd::{Net, NetError, SockState};
use rustix::event::{PollFd, PollFlags, Timespec};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

/// Userspace send buffer per connection: `send_capacity` is exact against it.
pub const SEND_BUF: usize = 256 * 1024;
/// Userspace receive buffer per connection.
pub const RECV_BUF: usize = 64 * 1024;
/// Handles that can be open at once (listeners and connections).
pub const MAX_SOCKETS: usize = 256;
/// Control connections accepted from the kernel but not yet handed out.
pub const ACCEPT_QUEUE: usize = 16;
/// A closed connection that makes no progress (flushing, or waiting for the
/// peer's FIN) for this long is dropped.
pub const CLOSE_LINGER: Duration = Duration::from_secs(30);
/// After the process ran out of file descriptors, the control listener is
/// left alone for this long (it would stay readable and spin the loop).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(250);
/// Bytes moved per `read(2)`.
const CHUNK: usize = 64 * 1024;

/// A socket handle: an index and a generation, so a stale handle never
/// names a newer socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SocketId {
    index: u32,
    generation: u32,
}

/// An established connection with its userspace buffers.
struct Stream {
    sock: TcpStream,
    rx: VecDeque<u8>,
    tx: VecDeque<u8>,
    /// The peer's FIN has been read from the kernel.
    peer_fin: bool,
    /// Reset, or failed; buffers are empty and stay so.
    reset: bool,
}

impl Stream {
    fn new(sock: TcpStream) -> io::Result<Stream> {
        sock.set_nonblocking(true)?;
        sock.set_nodelay(true)?;
        // Keep TCP urgent data in the stream: clients send ABOR (ftplib) or
        // `IAC IP IAC DM` (lftp) as urgent data, and the engine expects the
        // bytes in order, as smoltcp (which ignores URG) delivers them.
        SockRef::from(&sock).set_out_of_band_inline(true)?;
        Ok(Stream {
            sock,
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            peer_fin: false,
            reset: false,
        })
    }

    fn set_reset(&mut self) {
        self.reset = true;
        self.rx = VecDeque::new();
        self.tx = VecDeque::new();
    }

    /// Moves bytes from the kernel into `rx` while there is room.
    /// Returns whether anything changed.
    fn fill(&mut self) -> bool {
        let mut changed = false;
        let mut chunk = [0u8; CHUNK];
        while !self.peer_fin && !self.reset && self.rx.len() < RECV_BUF {
            let want = (RECV_BUF - self.rx.len()).min(CHUNK);
            match self.sock.read(&mut chunk[..want]) {
                Ok(0) => {
                    self.peer_fin = true;
                    changed = true;
                }
                Ok(n) => {
                    self.rx.extend(&chunk[..n]);
                    changed = true;
                    if n < want {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.set_reset();
                    changed = true;
                }
            }
        }
        changed
    }

    /// Moves bytes from `tx` to the kernel while it takes them.
    /// Returns whether anything changed.
    fn flush(&mut self) -> bool {
        let mut changed = false;
        while !self.tx.is_empty() && !self.reset {
            let (a, _) = self.tx.as_slices();
            match self.sock.write(a) {
                Ok(0) => break,
                Ok(n) => {
                    self.tx.drain(..n);
                    changed = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.set_reset();
                    changed = true;
                }
            }
        }
        changed
    }

    fn interest(&self) -> PollFlags {
        let mut f = PollFlags::empty();
        if !self.reset && !self.peer_fin && self.rx.len() < RECV_BUF {
            f |= PollFlags::IN;
        }
        if !self.reset && !self.tx.is_empty() {
            f |= PollFlags::OUT;
        }
        f
    }
}

enum Kind {
    /// A data listener waiting for its one connection.
    Listener(TcpListener),
    /// An active connection being set up.
    Connecting(Socket),
    Stream(Stream),
    /// Refused, failed or reset before it was established.
    Failed,
}

struct Entry {
    kind: Kind,
    local: Option<SocketAddr>,
    peer: Option<SocketAddr>,
    /// Came from the FTP control listener (told apart at shutdown).
    control: bool,
    /// The data listener this connection came from, kept listening until
    /// the engine either uses the connection (then it goes) or aborts it
    /// (then it is parked for the engine's next `listen` on the same
    /// address): a passive port refusing a stolen connection (RFC 2577)
    /// never stops listening for the right client, however the threads are
    /// scheduled.
    listener: Option<TcpListener>,
}

struct Slot {
    generation: u32,
    entry: Option<Entry>,
}

/// A connection the engine has closed: flushing, then waiting for FIN.
struct Closing {
    stream: Stream,
    shut: bool,
    deadline: Instant,
}

impl Closing {
    /// Advances the close; returns true when the socket can be dropped.
    fn advance(&mut self, now: Instant) -> bool {
        let mut progressed = self.stream.flush();
        if self.stream.reset {
            return true;
        }
        if self.stream.tx.is_empty() && !self.shut {
            let _ = self.stream.sock.shutdown(Shutdown::Write);
            self.shut = true;
            progressed = true;
        }
        // Read and drop what the peer still sends, until its FIN.
        if self.stream.fill() {
            progressed = true;
        }
        self.stream.rx.clear();
        if self.stream.reset || (self.shut && self.stream.peer_fin) {
            return true;
        }
        if progressed {
            self.deadline = now + CLOSE_LINGER;
        }
        now >= self.deadline
    }

    fn interest(&self) -> PollFlags {
        let mut f = PollFlags::empty();
        if !self.stream.peer_fin {
            f |= PollFlags::IN;
        }
        if !self.stream.tx.is_empty() {
            f |= PollFlags::OUT;
        }
        f
    }
}

/// Host TCP sockets behind the engine's [`Net`] trait; see the module docs.
pub struct HostNet {
    control: TcpListener,
    control_addr: SocketAddr,
    accepted: VecDeque<SocketId>,
    accept_backoff: Option<Instant>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    closing: Vec<Closing>,
    /// Data listeners of aborted connections, for the next `listen` on
    /// their address in the same poll (see [`Entry::listener`]).
    parked: Vec<TcpListener>,
    wake_rx: UnixStream,
    wake_tx: UnixStream,
}

impl HostNet {
    /// Listens for FTP control connections on `addr` (IPv4 or IPv6; port 0
    /// picks a free port, see [`HostNet::control_addr`]).
    pub fn bind(addr: SocketAddr) -> io::Result<HostNet> {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        sock.set_reuse_address(true)?;
        if addr.is_ipv6() {
            sock.set_only_v6(true)?;
        }
        sock.bind(&addr.into())?;
        sock.listen(128)?;
        sock.set_nonblocking(true)?;
        let control: TcpListener = sock.into();
        let control_addr = control.local_addr()?;
        let (wake_rx, wake_tx) = UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        wake_tx.set_nonblocking(true)?;
        Ok(HostNet {
            control,
            control_addr,
            accepted: VecDeque::new(),
            accept_backoff: None,
            slots: Vec::new(),
            free: Vec::new(),
            closing: Vec::new(),
            parked: Vec::new(),
            wake_rx,
            wake_tx,
        })
    }

    /// The address the control listener is bound to (the real port when
    /// bound to port 0).
    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    /// A handle that makes a blocked [`HostNet::wait`] return when one byte
    /// is written to it (from a signal handler, e.g. `signal_hook`'s pipe, or
    /// from another thread). It is non-blocking.
    pub fn waker(&self) -> io::Result<UnixStream> {
        self.wake_tx.try_clone()
    }

    /// Handles in use (listeners and connections the engine holds).
    pub fn open_sockets(&self) -> usize {
        self.slots.iter().filter(|s| s.entry.is_some()).count()
    }

    /// Connections closed by the engine that are still finishing.
    pub fn closing_sockets(&self) -> usize {
        self.closing.len()
    }

    /// Moves bytes between the kernel and the userspace buffers, accepts
    /// pending connections, completes connects and advances background
    /// closes. Never blocks. Call it before each `Server::poll`.
    pub fn pump(&mut self) {
        // Listeners the engine did not take back in its last poll.
        self.parked.clear();
        self.pump_control();
        for slot in &mut self.slots {
            let Some(entry) = slot.entry.as_mut() else {
                continue;
            };
            pump_entry(entry);
        }
        let now = Instant::now();
        self.closing.retain_mut(|c| !c.advance(now));
    }

    fn pump_control(&mut self) {
        if let Some(until) = self.accept_backoff {
            if Instant::now() < until {
                return;
            }
            self.accept_backoff = None;
        }
        while self.accepted.len() < ACCEPT_QUEUE {
            match self.control.accept() {
                Ok((mut sock, peer)) => {
                    if !self.has_room() {
                        // No handle left: say so instead of leaving the
                        // client hanging.
                        log::warn!("net: no free socket for control connection from {peer}");
                        let _ = sock.write(b"421 Too many connections, try again later.\r\n");
                        let _ = sock.shutdown(Shutdown::Both);
                        continue;
                    }
                    let local = sock.local_addr().ok();
                    let stream = match Stream::new(sock) {
                        Ok(s) => s,
                        Err(e) => {
                            log::warn!("control connection from {peer}: {e}");
                            continue;
                        }
                    };
                    let entry = Entry {
                        kind: Kind::Stream(stream),
                        local,
                        peer: Some(peer),
                        control: true,
                        listener: None,
                    };
                    let id = self.insert(entry);
                    log::debug!("net: control connection from {peer} ({id:?})");
                    self.accepted.push_back(id);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if is_transient_accept_error(&e) => continue,
                Err(e) => {
                    log::warn!("net: accept on {}: {e}", self.control_addr);
                    self.accept_backoff = Some(Instant::now() + ACCEPT_BACKOFF);
                    break;
                }
            }
        }
    }

    /// Blocks until a socket can make progress, the wake-up handle is
    /// written to, or `deadline` passes (`None`: no deadline). Returns at
    /// once when `deadline` is already past. Does not move any data: call
    /// [`HostNet::pump`] next.
    pub fn wait(&mut self, deadline: Option<Instant>) {
        let now = Instant::now();
        let mut until = deadline;
        let mut earliest = |t: Instant| until = Some(until.map_or(t, |u| u.min(t)));
        for c in &self.closing {
            earliest(c.deadline);
        }
        if let Some(t) = self.accept_backoff {
            earliest(t);
        }
        let timeout = until.map(|t| t.saturating_duration_since(now));
        let mut fds = self.poll_fds();
        let ts = timeout.map(|d| {
            // poll(2) has no use for more than a day at a time.
            let d = d.min(Duration::from_secs(86_400));
            Timespec {
                tv_sec: d.as_secs() as _,
                tv_nsec: d.subsec_nanos() as _,
            }
        });
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => log::warn!("net: poll: {e}"),
        }
        let woken = fds[0].revents().contains(PollFlags::IN);
        drop(fds);
        if woken {
            let mut buf = [0u8; 64];
            while matches!((&self.wake_rx).read(&mut buf), Ok(n) if n > 0) {}
        }
    }

    /// True when [`HostNet::wait`] would return at once (a socket it
    /// watches is ready, or a wake-up is pending). Never blocks.
    pub fn ready_now(&self) -> bool {
        let mut fds = self.poll_fds();
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        rustix::event::poll(&mut fds, Some(&zero)).unwrap_or(0) > 0
    }

    /// What [`HostNet::wait`] watches: the wake-up pipe first, then every
    /// socket that can make progress, each for what it can make progress on.
    fn poll_fds(&self) -> Vec<PollFd<'_>> {
        let mut fds: Vec<PollFd<'_>> =
            Vec::with_capacity(2 + self.slots.len() + self.closing.len());
        fds.push(PollFd::new(&self.wake_rx, PollFlags::IN));
        if self.accept_backoff.is_none() && self.accepted.len() < ACCEPT_QUEUE {
            fds.push(PollFd::new(&self.control, PollFlags::IN));
        }
        for entry in self.slots.iter().filter_map(|s| s.entry.as_ref()) {
            let (fd, flags): (BorrowedFd<'_>, PollFlags) = match &entry.kind {
                Kind::Listener(l) => (l.as_fd(), PollFlags::IN),
                Kind::Connecting(s) => (s.as_fd(), PollFlags::OUT),
                Kind::Stream(s) => (s.sock.as_fd(), s.interest()),
                Kind::Failed => continue,
            };
            // A stream whose peer sent FIN has nothing to read, but poll(2)
            // still reports a reset after it (POLLERR, POLLHUP, whatever
            // the events asked for): the engine must learn of it at once,
            // as it does from smoltcp, not when its data timeout fires.
            let watch_reset = matches!(&entry.kind, Kind::Stream(s) if s.peer_fin && !s.reset);
            if !flags.is_empty() || watch_reset {
                fds.push(PollFd::from_borrowed_fd(fd, flags));
            }
        }
        for c in &self.closing {
            let flags = c.interest();
            if !flags.is_empty() {
                fds.push(PollFd::from_borrowed_fd(c.stream.sock.as_fd(), flags));
            }
        }
        fds
    }

    /// Ends everything: every control connection still open gets `goodbye`
    /// (when it fits) and an orderly close, every other connection is reset
    /// (a transfer cut short must not look complete), listeners are closed.
    /// Then waits up to `grace` for the queued bytes and FINs to go out.
    pub fn shutdown(&mut self, goodbye: &[u8], grace: Duration) {
        while let Some(id) = self.accepted.pop_front() {
            // Never handed to the engine: greet it with the goodbye too.
            let _ = self.send(id, goodbye);
            self.close(id);
        }
        let ids: Vec<SocketId> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.entry.is_some())
            .map(|(i, s)| SocketId {
                index: i as u32,
                generation: s.generation,
            })
            .collect();
        for id in ids {
            let control = self.entry(id).is_some_and(|e| e.control);
            if control {
                if self.send_capacity(id) >= goodbye.len() {
                    let _ = self.send(id, goodbye);
                }
                self.close(id);
            } else {
                self.abort(id);
            }
        }
        let end = Instant::now() + grace;
        loop {
            self.pump();
            if self.closing.iter().all(|c| c.shut) || Instant::now() >= end {
                break;
            }
            self.wait(Some(end));
        }
        self.closing.clear();
    }

    /// Whether [`HostNet::insert`] has a slot.
    fn has_room(&self) -> bool {
        !self.free.is_empty() || self.slots.len() < MAX_SOCKETS
    }

    /// Stores a socket; the caller checked [`HostNet::has_room`].
    fn insert(&mut self, entry: Entry) -> SocketId {
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.generation = slot.generation.wrapping_add(1);
            slot.entry = Some(entry);
            return SocketId {
                index,
                generation: slot.generation,
            };
        }
        debug_assert!(self.slots.len() < MAX_SOCKETS);
        self.slots.push(Slot {
            generation: 0,
            entry: Some(entry),
        });
        SocketId {
            index: (self.slots.len() - 1) as u32,
            generation: 0,
        }
    }

    fn entry(&self, id: SocketId) -> Option<&Entry> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.entry.as_ref()
    }

    fn entry_mut(&mut self, id: SocketId) -> Option<&mut Entry> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.entry.as_mut()
    }

    fn take(&mut self, id: SocketId) -> Option<Entry> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let entry = slot.entry.take()?;
        self.free.push(id.index);
        Some(entry)
    }

    fn stream_mut(&mut self, id: SocketId) -> Option<&mut Stream> {
        match &mut self.entry_mut(id)?.kind {
            Kind::Stream(s) => Some(s),
            _ => None,
        }
    }
}

/// Advances one socket the engine holds: accept on a data listener,
/// completion of a connect, buffers of a connection.
fn pump_entry(entry: &mut Entry) {
    match &mut entry.kind {
        Kind::Listener(l) => loop {
            match l.accept() {
                Ok((sock, peer)) => {
                    let local = sock.local_addr().ok();
                    match Stream::new(sock) {
                        Ok(s) => {
                            log::debug!("net: data connection from {peer}");
                            let Kind::Listener(l) =
                                std::mem::replace(&mut entry.kind, Kind::Stream(s))
                            else {
                                unreachable!()
                            };
                            entry.listener = Some(l);
                            entry.local = local;
                            entry.peer = Some(peer);
                        }
                        Err(_) => entry.kind = Kind::Failed,
                    }
                    break;
                }
                Err(e) if is_transient_accept_error(&e) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    log::warn!("net: data listener accept: {e}");
                    entry.kind = Kind::Failed;
                    break;
                }
            }
        },
        Kind::Connecting(sock) => match sock.take_error() {
            Ok(None) => {
                if let Ok(peer) = sock.peer_addr() {
                    let Kind::Connecting(sock) = std::mem::replace(&mut entry.kind, Kind::Failed)
                    else {
                        unreachable!()
                    };
                    entry.peer = peer.as_socket();
                    entry.local = sock.local_addr().ok().and_then(|a| a.as_socket());
                    if let Ok(s) = Stream::new(sock.into()) {
                        entry.kind = Kind::Stream(s);
                    }
                }
            }
            Ok(Some(e)) | Err(e) => {
                log::debug!("net: connect to {:?}: {e}", entry.peer);
                entry.kind = Kind::Failed;
            }
        },
        Kind::Stream(s) => {
            s.flush();
            s.fill();
            // After the peer's FIN nothing is read any more, so a reset
            // that follows shows only as the socket's pending error.
            if s.peer_fin && !s.reset && matches!(s.sock.take_error(), Ok(Some(_))) {
                s.set_reset();
            }
        }
        Kind::Failed => {}
    }
}

fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Interrupted | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// Why a new socket could not be had, in the engine's words.
fn net_error(e: &io::Error) -> NetError {
    match rustix::io::Errno::from_io_error(e) {
        Some(rustix::io::Errno::ADDRINUSE) => NetError::AddrInUse,
        Some(
            rustix::io::Errno::MFILE
            | rustix::io::Errno::NFILE
            | rustix::io::Errno::NOBUFS
            | rustix::io::Errno::NOMEM,
        ) => NetError::Exhausted,
        _ => match e.kind() {
            ErrorKind::AddrInUse => NetError::AddrInUse,
            _ => NetError::Unreachable,
        },
    }
}

impl Net for HostNet {
    type Socket = SocketId;

    fn accept(&mut self) -> Option<SocketId> {
        if self.accepted.is_empty() {
            self.pump_control();
        }
        self.accepted.pop_front()
    }

    fn listen(&mut self, addr: SocketAddr) -> Result<SocketId, NetError> {
        if !self.has_room() {
            return Err(NetError::Exhausted);
        }
        if let Some(i) = self
            .parked
            .iter()
            .position(|l| l.local_addr().is_ok_and(|a| a == addr))
        {
            let listener = self.parked.swap_remove(i);
            let entry = Entry {
                kind: Kind::Listener(listener),
                local: Some(addr),
                peer: None,
                control: false,
                listener: None,
            };
            return Ok(self.insert(entry));
        }
        let setup = || -> io::Result<TcpListener> {
            let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            // Lets a passive port be reused while an earlier data connection
            // on it sits in TIME_WAIT (a live listener still conflicts).
            sock.set_reuse_address(true)?;
            if addr.is_ipv6() {
                sock.set_only_v6(true)?;
            }
            sock.bind(&addr.into())?;
            sock.listen(1)?;
            sock.set_nonblocking(true)?;
            Ok(sock.into())
        };
        let listener = setup().map_err(|e| net_error(&e))?;
        let local = listener.local_addr().ok();
        let entry = Entry {
            kind: Kind::Listener(listener),
            local,
            peer: None,
            control: false,
            listener: None,
        };
        Ok(self.insert(entry))
    }

    fn connect(&mut self, local: IpAddr, remote: SocketAddr) -> Result<SocketId, NetError> {
        if local.is_ipv4() != remote.is_ipv4() {
            return Err(NetError::Unreachable);
        }
        if !self.has_room() {
            return Err(NetError::Exhausted);
        }
        let sock = Socket::new(
            Domain::for_address(remote),
            Type::STREAM,
            Some(Protocol::TCP),
        )
        .map_err(|e| net_error(&e))?;
        sock.set_nonblocking(true).map_err(|e| net_error(&e))?;
        sock.bind(&SocketAddr::new(local, 0).into())
            .map_err(|e| net_error(&e))?;
        let kind = match sock.connect(&remote.into()) {
            Ok(()) => Kind::Connecting(sock),
            Err(e)
                if e.kind() == ErrorKind::WouldBlock
                    || rustix::io::Errno::from_io_error(&e)
                        == Some(rustix::io::Errno::INPROGRESS) =>
            {
                Kind::Connecting(sock)
            }
            // Refused at once: a handle that is already closed, exactly as
            // when the refusal comes later.
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => Kind::Failed,
            Err(e) => return Err(net_error(&e)),
        };
        let local = match &kind {
            Kind::Connecting(s) => s.local_addr().ok().and_then(|a| a.as_socket()),
            _ => None,
        };
        let mut entry = Entry {
            kind,
            local,
            peer: Some(remote),
            control: false,
            listener: None,
        };
        pump_entry(&mut entry);
        Ok(self.insert(entry))
    }

    fn state(&self, s: SocketId) -> SockState {
        match self.entry(s).map(|e| &e.kind) {
            Some(Kind::Listener(_)) => SockState::Listening,
            Some(Kind::Connecting(_)) => SockState::Connecting,
            Some(Kind::Stream(st)) if st.reset => SockState::Closed,
            Some(Kind::Stream(st)) if st.peer_fin => SockState::PeerClosed,
            Some(Kind::Stream(_)) => SockState::Established,
            Some(Kind::Failed) | None => SockState::Closed,
        }
    }

    fn local_addr(&self, s: SocketId) -> Option<SocketAddr> {
        self.entry(s)?.local
    }

    fn peer_addr(&self, s: SocketId) -> Option<SocketAddr> {
        let e = self.entry(s)?;
        match e.kind {
            Kind::Stream(_) => e.peer,
            _ => None,
        }
    }

    fn peek(&mut self, s: SocketId, buf: &mut [u8]) -> Result<usize, NetError> {
        let Some(entry) = self.entry_mut(s) else {
            return Err(NetError::Reset);
        };
        // The engine uses this connection: its listener has served.
        entry.listener = None;
        let st = match &mut entry.kind {
            Kind::Stream(st) => st,
            Kind::Listener(_) | Kind::Connecting(_) => return Ok(0),
            Kind::Failed => return Err(NetError::Reset),
        };
        if st.rx.len() < buf.len() {
            st.fill();
        }
        if st.reset {
            return Err(NetError::Reset);
        }
        if st.rx.is_empty() {
            return if st.peer_fin {
                Err(NetError::Closed)
            } else {
                Ok(0)
            };
        }
        let n = buf.len().min(st.rx.len());
        let (a, b) = st.rx.as_slices();
        let from_a = n.min(a.len());
        buf[..from_a].copy_from_slice(&a[..from_a]);
        buf[from_a..n].copy_from_slice(&b[..n - from_a]);
        Ok(n)
    }

    fn consume(&mut self, s: SocketId, n: usize) {
        if let Some(st) = self.stream_mut(s) {
            let n = n.min(st.rx.len());
            st.rx.drain(..n);
        }
    }

    fn recv(&mut self, s: SocketId, buf: &mut [u8]) -> Result<usize, NetError> {
        let n = self.peek(s, buf)?;
        self.consume(s, n);
        Ok(n)
    }

    fn send_capacity(&self, s: SocketId) -> usize {
        match self.entry(s).map(|e| &e.kind) {
            Some(Kind::Stream(st)) if !st.reset => SEND_BUF - st.tx.len(),
            _ => 0,
        }
    }

    fn send(&mut self, s: SocketId, data: &[u8]) -> Result<usize, NetError> {
        let Some(entry) = self.entry_mut(s) else {
            return Err(NetError::Reset);
        };
        // The engine uses this connection: its listener has served.
        entry.listener = None;
        let st = match &mut entry.kind {
            Kind::Stream(st) => st,
            Kind::Listener(_) | Kind::Connecting(_) => return Ok(0),
            Kind::Failed => return Err(NetError::Reset),
        };
        if st.reset {
            return Err(NetError::Reset);
        }
        let n = data.len().min(SEND_BUF - st.tx.len());
        st.tx.extend(&data[..n]);
        st.flush();
        if st.reset {
            Err(NetError::Reset)
        } else {
            Ok(n)
        }
    }

    fn send_drained(&self, s: SocketId) -> bool {
        match self.entry(s).map(|e| &e.kind) {
            Some(Kind::Stream(st)) => st.tx.is_empty(),
            _ => true,
        }
    }

    fn close(&mut self, s: SocketId) {
        let Some(entry) = self.take(s) else { return };
        if let Kind::Stream(mut stream) = entry.kind {
            if stream.reset {
                return;
            }
            stream.rx.clear();
            let now = Instant::now();
            let mut c = Closing {
                stream,
                shut: false,
                deadline: now + CLOSE_LINGER,
            };
            if !c.advance(now) {
                self.closing.push(c);
            }
        }
    }

    fn abort(&mut self, s: SocketId) {
        let Some(mut entry) = self.take(s) else {
            return;
        };
        if let Some(l) = entry.listener.take() {
            self.parked.push(l);
        }
        match &entry.kind {
            Kind::Stream(st) => {
                let _ = SockRef::from(&st.sock).set_linger(Some(Duration::ZERO));
            }
            Kind::Connecting(sock) => {
                let _ = sock.set_linger(Some(Duration::ZERO));
            }
            Kind::Listener(_) | Kind::Failed => {}
        }
        log::debug!("net: abort {:?} (peer {:?})", s, entry.peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::mpsc;
    use std::thread;

    /// Hang guard for loops that wait for the network: generous, and only
    /// there so that a broken build fails instead of hanging.
    const GUARD: Duration = Duration::from_secs(20);

    fn localhost() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
    }

    /// Pumps and waits until `f` has an answer.
    fn until<T>(net: &mut HostNet, what: &str, mut f: impl FnMut(&mut HostNet) -> Option<T>) -> T {
        let end = Instant::now() + GUARD;
        loop {
            net.pump();
            if let Some(t) = f(net) {
                return t;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}");
            net.wait(Some(Instant::now() + Duration::from_millis(200)));
        }
    }

    /// Waits (without pumping) until `wait` would return at once.
    fn until_ready(net: &mut HostNet) {
        let end = Instant::now() + GUARD;
        while !net.ready_now() {
            assert!(Instant::now() < end, "timed out waiting for readiness");
            net.wait(Some(Instant::now() + Duration::from_millis(200)));
        }
    }

    /// A control connection: (server handle, client stream).
    fn control_pair(net: &mut HostNet) -> (SocketId, TcpStream) {
        let client = TcpStream::connect(net.control_addr()).unwrap();
        client.set_read_timeout(Some(GUARD)).unwrap();
        let s = until(net, "accept", |n| n.accept());
        (s, client)
    }

    fn read_to_end(mut c: TcpStream) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        c.read_to_end(&mut out)?;
        Ok(out)
    }

    fn pattern(len: usize) -> Vec<u8> {
        pattern_at(0, len)
    }

    /// Bytes `from..from + len` of an endless pattern that shows
    /// reordering, loss and duplication.
    fn pattern_at(from: usize, len: usize) -> Vec<u8> {
        (from..from + len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn accepts_control_connections_on_ipv4_and_ipv6() {
        for addr in [localhost(), SocketAddr::from((Ipv6Addr::LOCALHOST, 0))] {
            let mut net = HostNet::bind(addr).unwrap();
            let bound = net.control_addr();
            assert_eq!(bound.ip(), addr.ip());
            assert_ne!(bound.port(), 0, "port 0 is replaced by the real port");
            let (s, client) = control_pair(&mut net);
            assert_eq!(net.state(s), SockState::Established);
            assert_eq!(net.peer_addr(s), Some(client.local_addr().unwrap()));
            assert_eq!(net.local_addr(s), Some(bound));
            assert_eq!(net.accept(), None);
        }
    }

    #[test]
    fn peek_consume_recv() {
        let mut net = HostNet::bind(localhost()).unwrap();
        let (s, mut client) = control_pair(&mut net);
        client.write_all(b"USER a\r\nPA").unwrap();
        let mut buf = [0u8; 64];
        until(&mut net, "10 bytes", |n| {
            (n.peek(s, &mut buf).unwrap() == 10).then_some(())
        });
        // Peeking does not consume, and a short buffer gets a prefix.
        assert_eq!(net.peek(s, &mut buf).unwrap(), 10);
        let mut small = [0u8; 4];
        assert_eq!(net.peek(s, &mut small).unwrap(), 4);
        assert_eq!(&small, b"USER");
        net.consume(s, 8);
        assert_eq!(net.recv(s, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"PA");
        assert_eq!(net.recv(s, &mut buf).unwrap(), 0, "nothing yet is Ok(0)");
        // Consuming more than there is is harmless.
        net.consume(s, 100);
        assert_eq!(net.state(s), SockState::Established);
    }

    #[test]
    fn peer_fin_is_closed_after_the_last_byte_and_sending_still_works() {
        let mut net = HostNet::bind(localhost()).unwrap();
        let (s, mut client) = control_pair(&mut net);
        client.write_all(b"QUIT\r\n").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        until(&mut net, "FIN", |n| {
            (n.state(s) == SockState::PeerClosed).then_some(())
        });
        let mut buf = [0u8; 16];
        assert_eq!(net.recv(s, &mut buf).unwrap(), 6);
        assert_eq!(&buf[..6], b"QUIT\r\n");
        assert_eq!(net.recv(s, &mut buf), Err(NetError::Closed));
        assert_eq!(net.peek(s, &mut buf), Err(NetError::Closed));
        assert_eq!(net.send(s, b"221 Bye.\r\n"), Ok(10));
        net.close(s);
        assert_eq!(read_to_end(client).unwrap(), b"221 Bye.\r\n");
    }

    #[test]
    fn peer_reset_is_reset() {
        let mut net = HostNet::bind(localhost()).unwrap();
        let (s, client) = control_pair(&mut net);
        SockRef::from(&client)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(client);
        let mut buf = [0u8; 16];
        until(&mut net, "reset", |n| match n.recv(s, &mut buf) {
            Ok(0) => None,
            other => {
                assert_eq!(other, Err(NetError::Reset));
                Some(())
            }
        });
        assert_eq!(net.state(s), SockState::Closed);
        assert_eq!(net.send_capacity(s), 0);
        assert_eq!(net.send(s, b"x"), Err(NetError::Reset));
        net.close(s);
    }

    #[test]
    fn reset_after_the_peers_fin_is_reset_at_once() {
        let mut net = HostNet::bind(localhost()).unwrap();
        let (s, client) = control_pair(&mut net);
        client.shutdown(Shutdown::Write).unwrap();
        until(&mut net, "FIN", |n| {
            (n.state(s) == SockState::PeerClosed).then_some(())
        });
        // Nothing to do: waiting would block.
        assert!(!net.ready_now());
        SockRef::from(&client)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(client);
        // The reset wakes `wait` (not only a deadline) and the next pump
        // turns it into Closed.
        until_ready(&mut net);
        net.pump();
        assert_eq!(net.state(s), SockState::Closed);
        assert_eq!(net.send(s, b"x"), Err(NetError::Reset));
        // Reported once: nothing more to wait for.
        assert!(!net.ready_now());
        net.close(s);
    }

    #[test]
    fn send_capacity_is_exact_and_comes_back() {
        let mut net = HostNet::bind(localhost()).unwrap();
        let (s, client) = control_pair(&mut net);
        assert_eq!(net.send_capacity(s), SEND_BUF);
        assert!(net.send_drained(s));
        // The client does not read: fill kernel and userspace buffers.
        let mut sent = 0;
        loop {
            let cap = net.send_capacity(s);
            if cap == 0 {
                break;
            }
            assert!(sent < 256 << 20, "256 MiB taken without the client reading");
            // Offer more than the capacity: exactly the capacity is taken.
            let offer = pattern_at(sent, cap + 1000);
            assert_eq!(net.send(s, &offer), Ok(cap));
            sent += cap;
            net.pump();
        }
        assert_eq!(net.send(s, b"more"), Ok(0), "a full buffer takes nothing");
        assert!(!net.send_drained(s));
        // The client reads everything: the capacity comes back.
        let reader = thread::spawn(move || {
            let mut c = client;
            let mut got = vec![0u8; sent];
            c.read_exact(&mut got).map(|()| got)
        });
        until(&mut net, "drained", |n| n.send_drained(s).then_some(()));
        assert_eq!(net.send_capacity(s), SEND_BUF);
        assert!(reader.join().unwrap().unwrap() == pattern_at(0, sent));
    }

    #[test]
    fn data_listener_takes_exactly_one_connection() {
        let mut net = HostNet::bind(localhost()).unwrap();
        let l = net.listen(localhost()).unwrap();
        assert_eq!(net.state(l), SockState::Listening);
        let addr = net.local_addr(l).unwrap();
        assert_ne!(addr.port(), 0);
        assert_eq!(net.peer_addr(l), None);
        let mut buf = [0u8; 8];
        assert_eq!(net.recv(l, &mut buf), Ok(0));
        assert_eq!(net.send_capacity(l), 0);

        let mut client = TcpStream::connect(addr).unwrap();
        until(&mut net, "data connection", |n| {
            (n.state(l) == SockState::Established).then_some(())
        });
        assert_eq!(net.peer_addr(l), Some(client.local_addr().unwrap()));
        assert_eq!(net.local_addr(l), Some(addr));
        // Data flows both ways on the same handle.
        client.write_all(b"up").unwrap();
        until(&mut net, "data", |n| {
            (n.peek(l, &mut buf).unwrap() == 2).then_some(())
        });
        // The engine uses the connection: the listener is gone, a second
        // connection is refused.
        let second = TcpStream::connect(addr);
        assert_eq!(
            second.map_err(|e| e.kind()).err(),
            Some(ErrorKind::ConnectionRefused)
        );
        assert_eq!(net.send(l, b"down"), Ok(4));
        net.close(l);
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_end(client).unwrap(), b"down");
    }

    #[test]
    fn a_refused_connection_does_not_close_the_passive_port() {
        // RFC 2577 port stealing: the engine aborts a connection from the
        // wrong address and listens again on the same address; a client
        // that connected meanwhile is not refused.
        let mut net = HostNet::bind(localhost()).unwrap();
        let l = net.listen(localhost()).unwrap();
        let addr = net.local_addr(l).unwrap();
        let thief = TcpStream::connect(addr).unwrap();
        until(&mut net, "the thief's connection", |n| {
            (n.state(l) == SockState::Established).then_some(())
        });
        // The real client comes while the engine looks at the thief.
        let mut client = TcpStream::connect(addr).unwrap();
        net.abort(l);
        let again = net.listen(addr).unwrap();
        until(&mut net, "the client's connection", |n| {
            (n.state(again) == SockState::Established).then_some(())
        });
        assert_eq!(net.peer_addr(again), Some(client.local_addr().unwrap()));
        assert_eq!(net.send(again, b"listing"), Ok(7));
        net.close(again);
        client.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"listing");
        // The thief was reset, never served.
        let mut thief = thief;
        thief.set_read_timeout(Some(GUARD)).unwrap();
        let mut b = [0u8; 16];
        assert!(matches!(thief.read(&mut b), Ok(0) | Err(_)));
    }

    #[test]
    fn a_parked_listener_does_not_outlive_the_next_pump() {
        let mut net = HostNet::bind(localhost()).unwrap();
        let l = net.listen(localhost()).unwrap();
        let addr = net.local_addr(l).unwrap();
        let _first = TcpStream::connect(addr).unwrap();
        until(&mut net, "a connection", |n| {
            (n.state(l) == SockState::Established).then_some(())
        });
        net.abort(l);
        // No listen on the address in this poll: the port closes.
        net.pump();
        assert_eq!(
            TcpStream::connect(addr).map_err(|e| e.kind()).err(),
            Some(ErrorKind::ConnectionRefused)
        );
    }

    #[test]
    fn listen_errors() {
        let mut net = HostNet::bind(localhost()).unwrap();
        let taken = net.control_addr();
        assert_eq!(net.listen(taken), Err(NetError::AddrInUse));
        // A documentation address that is not on this host: nothing is sent.
        let foreign = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 0));
        assert_eq!(net.listen(foreign), Err(NetError::Unreachable));
        assert_eq!(net.open_sockets(), 0);
    }

    #[test]
    fn handles_run_out_cleanly() {
        let mut net = HostNet::bind(localhost()).unwrap();
        let listeners: Vec<SocketId> = (0..MAX_SOCKETS)
            .map(|_| net.listen(localhost()).unwrap())
            .collect();
        assert_eq!(net.listen(localhost()), Err(NetError::Exhausted));
        assert_eq!(
            net.connect(Ipv4Addr::LOCALHOST.into(), net.control_addr()),
            Err(NetError::Exhausted)
        );
        // A control connection that finds no handle is told so.
        let client = TcpStream::connect(net.control_addr()).unwrap();
        client.set_read_timeout(Some(GUARD)).unwrap();
        net.pump();
        assert_eq!(net.accept(), None);
        let mut reply = String::new();
        BufReader::new(client).read_line(&mut reply).unwrap();
        assert!(reply.starts_with("421 "), "{reply:?}");
        // One handle back, one socket possible again.
        net.close(listeners[7]);
        assert!(net.listen(localhost()).is_ok());
    }

    #[test]
    fn active_connect() {
        let mut net = HostNet::bind(localhost()).unwrap();
        let server = TcpListener::bind(localhost()).unwrap();
        let target = server.local_addr().unwrap();
        let s = net.connect(Ipv4Addr::LOCALHOST.into(), target).unwrap();
        assert!(matches!(
            net.state(s),
            SockState::Connecting | SockState::Established
        ));
        let (mut peer, from) = server.accept().unwrap();
        until(&mut net, "connected", |n| {
            (n.state(s) == SockState::Established).then_some(())
        });
        assert_eq!(net.peer_addr(s), Some(target));
        assert_eq!(net.local_addr(s), Some(from));
        assert_eq!(net.send(s, b"LIST data"), Ok(9));
        net.close(s);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"LIST data");
    }

    #[test]
    fn refused_connect_ends_closed() {
        let mut net = HostNet::bind(localhost()).unwrap();
        let gone = TcpListener::bind(localhost())
            .unwrap()
            .local_addr()
            .unwrap();
        let s = net.connect(Ipv4Addr::LOCALHOST.into(), gone).unwrap();
        until(&mut net, "refusal", |n| {
            (n.state(s) == SockState::Closed).then_some(())
        });
        assert_eq!(net.send_capacity(s), 0);
        let mut buf = [0u8; 4];
        assert_eq!(net.recv(s, &mut buf), Err(NetError::Reset));
        net.close(s);
        assert_eq!(net.open_sockets(), 0);
        // The wrong family is no route at all.
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 21));
        assert_eq!(
            net.connect(Ipv4Addr::LOCALHOST.into(), v6),
            Err(NetError::Unreachable)
        );
    }

    #[test]
    fn orderly_close_delivers_every_byte_then_fin() {
        let mut net = HostNet::bind(localhost()).unwrap();
        let (s, client) = control_pair(&mut net);
        let data = pattern(3 * 1024 * 1024 + 17);
        let reader = thread::spawn(move || read_to_end(client));
        let mut sent = 0;
        until(&mut net, "all queued", |n| {
            // As the engine does: send while it is taken, then wait.
            while sent < data.len() {
                match n.send(s, &data[sent..]).unwrap() {
                    0 => break,
                    k => sent += k,
                }
            }
            (sent == data.len()).then_some(())
        });
        // Closed right away: the rest goes out in the background.
        net.close(s);
        assert_eq!(net.open_sockets(), 0);
        until(&mut net, "close done", |n| {
            (n.closing_sockets() == 0).then_some(())
        });
        let got = reader.join().unwrap().expect("EOF, not a reset");
        assert_eq!(got.len(), data.len());
        assert!(got == data);
    }

    #[test]
    fn close_with_unread_input_is_not_a_reset() {
        let mut net = HostNet::bind(localhost()).unwrap();
        let (s, mut client) = control_pair(&mut net);
        client.write_all(b"NOOP\r\nNOOP\r\n").unwrap();
        let mut buf = [0u8; 1];
        until(&mut net, "input", |n| {
            (n.peek(s, &mut buf).unwrap() > 0).then_some(())
        });
        net.send(s, b"221 Bye.\r\n").unwrap();
        net.close(s);
        // More input after the close is read and dropped, not answered with RST.
        client.write_all(b"late\r\n").unwrap();
        net.pump();
        let mut got = [0u8; 10];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"221 Bye.\r\n");
        client.shutdown(Shutdown::Write).unwrap();
        until(&mut net, "close done", |n| {
            (n.closing_sockets() == 0).then_some(())
        });
        assert_eq!(read_to_end(client).unwrap(), b"");
    }

    #[test]
    fn abort_resets_the_peer() {
        let mut net = HostNet::bind(localhost()).unwrap();
        let (s, client) = control_pair(&mut net);
        net.send(s, b"partial").unwrap();
        net.abort(s);
        assert_eq!(net.open_sockets(), 0);
        assert_eq!(net.closing_sockets(), 0);
        let err = read_to_end(client).expect_err("a reset, not EOF");
        assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    }

    #[test]
    fn stale_handles_name_nothing() {
        let mut net = HostNet::bind(localhost()).unwrap();
        let (old, _c1) = control_pair(&mut net);
        net.close(old);
        let (new, _c2) = control_pair(&mut net);
        assert_ne!(old, new);
        assert_eq!(net.state(old), SockState::Closed);
        assert_eq!(net.state(new), SockState::Established);
        let mut buf = [0u8; 4];
        assert_eq!(net.recv(old, &mut buf), Err(NetError::Reset));
        net.abort(old); // no effect on `new`
        net.close(old);
        assert_eq!(net.state(new), SockState::Established);
        assert_eq!(net.open_sockets(), 1);
    }

    #[test]
    fn wait_ignores_bytes_the_engine_leaves_unread() {
        let mut net = HostNet::bind(localhost()).unwrap();
        let (s, mut client) = control_pair(&mut net);
        // Half a command line: the engine peeks and leaves it.
        client.write_all(b"USER").unwrap();
        let mut buf = [0u8; 16];
        until(&mut net, "input", |n| {
            (n.peek(s, &mut buf).unwrap() == 4).then_some(())
        });
        assert!(!net.ready_now(), "unread bytes must not wake the loop");
        // New bytes do.
        client.write_all(b" x\r\n").unwrap();
        until_ready(&mut net);
        // A full receive buffer is not watched either, however much waits
        // in the kernel.
        let mut writer = client.try_clone().unwrap();
        let big = thread::spawn(move || writer.write_all(&pattern(RECV_BUF * 2)));
        until(&mut net, "full buffer", |n| {
            (n.peek(s, &mut [0u8; RECV_BUF]).unwrap() == RECV_BUF).then_some(())
        });
        net.pump();
        assert!(!net.ready_now(), "a full buffer must not wake the loop");
        net.consume(s, RECV_BUF);
        // Room again: the bytes waiting in the kernel wake the loop.
        until_ready(&mut net);
        until(&mut net, "the rest", |n| {
            let _ = n.recv(s, &mut [0u8; RECV_BUF]);
            big.is_finished().then_some(())
        });
        big.join().unwrap().unwrap();
        // After the peer's FIN there is nothing more to read.
        client.shutdown(Shutdown::Write).unwrap();
        until(&mut net, "FIN", |n| {
            let _ = n.recv(s, &mut [0u8; RECV_BUF]);
            (n.state(s) == SockState::PeerClosed).then_some(())
        });
        assert!(
            !net.ready_now(),
            "a half-closed socket must not wake the loop"
        );
    }

    #[test]
    fn accept_queue_is_bounded_and_drains() {
        let mut net = HostNet::bind(localhost()).unwrap();
        let clients: Vec<TcpStream> = (0..ACCEPT_QUEUE + 4)
            .map(|_| TcpStream::connect(net.control_addr()).unwrap())
            .collect();
        // Nobody calls accept (an engine at its limit, or a stub): once the
        // queue is full the listener is not watched, so the loop sleeps.
        until(&mut net, "queue full", |n| {
            (n.accepted.len() == ACCEPT_QUEUE).then_some(())
        });
        assert!(!net.ready_now());
        let mut handed = 0;
        until(&mut net, "all accepted", |n| {
            while n.accept().is_some() {
                handed += 1;
            }
            (handed == clients.len()).then_some(())
        });
        assert_eq!(net.open_sockets(), clients.len());
    }

    #[test]
    fn wait_returns_on_wake_deadline_and_readiness() {
        let net = HostNet::bind(localhost()).unwrap();
        let addr = net.control_addr();
        let mut waker = net.waker().unwrap();
        let (tx, rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let worker = thread::spawn(move || {
            let mut net = net;
            // 1: a pending wake-up ends a wait without deadline.
            net.wait(None);
            tx.send("woken").unwrap();
            // 2: a deadline ends it.
            net.wait(Some(Instant::now() + Duration::from_millis(10)));
            tx.send("deadline").unwrap();
            // 3: a connection ends it.
            go_rx.recv().unwrap();
            net.wait(None);
            net.pump();
            tx.send(if net.accept().is_some() {
                "connection"
            } else {
                "spurious"
            })
            .unwrap();
        });
        waker.write_all(&[1]).unwrap();
        assert_eq!(rx.recv_timeout(GUARD), Ok("woken"));
        assert_eq!(rx.recv_timeout(GUARD), Ok("deadline"));
        go_tx.send(()).unwrap();
        let _client = TcpStream::connect(addr).unwrap();
        assert_eq!(rx.recv_timeout(GUARD), Ok("connection"));
        worker.join().unwrap();
    }

    #[test]
    fn shutdown_says_goodbye_on_control_and_resets_data() {
        let mut net = HostNet::bind(localhost()).unwrap();
        let (_s, control) = control_pair(&mut net);
        let l = net.listen(localhost()).unwrap();
        let data = TcpStream::connect(net.local_addr(l).unwrap()).unwrap();
        data.set_read_timeout(Some(GUARD)).unwrap();
        until(&mut net, "data connection", |n| {
            (n.state(l) == SockState::Established).then_some(())
        });
        // One more control connection that was never handed to the engine.
        let queued = TcpStream::connect(net.control_addr()).unwrap();
        queued.set_read_timeout(Some(GUARD)).unwrap();
        until(&mut net, "queued", |n| {
            (!n.accepted.is_empty()).then_some(())
        });
        net.shutdown(b"421 bye\r\n", Duration::from_secs(2));
        assert_eq!(read_to_end(control).unwrap(), b"421 bye\r\n");
        assert_eq!(read_to_end(queued).unwrap(), b"421 bye\r\n");
        assert_eq!(
            read_to_end(data).map_err(|e| e.kind()),
            Err(ErrorKind::ConnectionReset)
        );
        assert_eq!(net.open_sockets(), 0);
    }
}
