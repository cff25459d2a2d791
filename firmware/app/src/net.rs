//! [`SmolNet`]: the engine's [`ftpd::Net`] over a smoltcp [`Interface`] and a
//! [`SocketSet`] whose storage and buffers the board provides.
//!
//! # Socket pools
//!
//! smoltcp has no `accept()`: a listening socket turns into the connection
//! itself, and a SYN that finds no socket in `LISTEN` is answered with RST.
//! The adapter therefore keeps every socket in one of a few fixed pools:
//!
//! - **control** sockets: every free one listens on the FTP port, so the
//!   listen backlog is the number of free control sockets. [`Net::accept`]
//!   hands out one that reached `ESTABLISHED`; once the engine gives it back
//!   and TCP is done with it, it listens again. Sized for the session limit
//!   plus one spare, so that the client past the limit is connected and hears
//!   the engine's `421` instead of a SYN timeout.
//! - **refuser** sockets: listen on the FTP port too, after the control
//!   sockets (smoltcp gives a SYN to the first listening socket in the set),
//!   with buffers just big enough for a refusal line. They take the clients
//!   that arrive while every control socket is busy (a burst past the
//!   limit): the adapter itself answers them with its refusal line (`421`)
//!   and closes; the engine never sees them.
//! - **data** sockets: [`Net::listen`] and [`Net::connect`] take a free one.
//!   Sized for one per session plus slack for sockets still closing.
//! - **service** sockets (feature `diag`): the raw-TCP discard and chargen
//!   services, served by the adapter itself (see the `diag` module).
//!
//! # Closing
//!
//! [`Net::close`] and [`Net::abort`] give a handle back at once, but the
//! socket stays *closing* until smoltcp is done with it: `CLOSED` with its RST
//! (if any) sent, or `TIME-WAIT` (all our data and our FIN acknowledged; the
//! 10 s wait is skipped, as `listen`/`connect` may reuse such a socket). A
//! socket still sending (`FIN-WAIT-1`, `CLOSING`, `LAST-ACK`) is never reused.
//! An active connection given back before the peer answered (`SYN-SENT`) is
//! dropped at once, without an RST: the peer never knew of it.
//! A control or refuser socket is also reused as soon as the peer has
//! acknowledged all our data and our FIN (`FIN-WAIT-2`): the client has its
//! last reply and the end of the stream, and the socket listens again at
//! once instead of waiting for the client to close (its FIN then meets the
//! listener's RST, after it has read everything).
//!
//! # Never a reset on the FTP port
//!
//! smoltcp answers a SYN that finds no listening socket with an RST, which a
//! client reports as "connection refused". [`SmolNet::poll_iface`] therefore
//! takes frames one at a time, re-arms listeners between frames (a session
//! socket freed by one frame listens for the SYN in the next), and drops a
//! SYN to the FTP port while no control or refuser socket listens: the
//! client sends it again (after 1 s on Linux) and is then greeted or refused
//! with `421`.
//! Two limits keep a closing socket from being lost for good: after a close,
//! smoltcp aborts the connection when the peer is silent for
//! [`LINGER_SILENCE_MS`], and the adapter aborts any socket still closing
//! after [`LINGER_MS`] (a peer that is alive but never reads).
//!
//! # Handles
//!
//! A [`Sock`] names a slot and a generation: a handle given back is stale,
//! and every operation on a stale handle behaves as on a closed socket.
//!
//! # Options
//!
//! Nagle is off on every socket: control replies are short and must go out at
//! once, and on data sockets it would hold back the last short segment of a
//! file or listing until the peer's delayed ACK. Data sockets also ACK every
//! segment at once (no ACK delay): their receive windows are small, and a
//! delayed ACK would stall a STOR for up to 10 ms per window (see the perf
//! notes on smoltcp's delayed ACK).
//!
//! # Pipelined commands
//!
//! A Linux sender with more queued than a small window holds (at most 536
//! bytes) sends only when the whole window is open, and otherwise waits for
//! its zero-window probe (200 ms, backing off). A control socket's window
//! is never whole while the start of the next command line sits in it, so
//! once the engine has taken every complete line, the adapter keeps such a
//! line end (up to [`CARRY`] bytes) aside and hands it back first on the
//! next peek: 1000 pipelined NOOPs take tens of ms instead of 2 s. There is
//! one such place for all sockets (RAM), so one client at a time gains.

use core::net::{IpAddr, SocketAddr};

use ftpd::{Net, NetError, SockState};
use smoltcp::iface::{Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::socket::tcp::{self, RecvError, State};
use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, IpListenEndpoint};

/// A closing socket whose peer stays silent this long is aborted by smoltcp.
pub const LINGER_SILENCE_MS: u64 = 10_000;
/// A socket still closing this long after the engine gave it back is aborted.
pub const LINGER_MS: u64 = 30_000;
/// An aborted socket whose RST has not gone out this long after
/// [`LINGER_MS`] is reused anyway.
const RST_GRACE_MS: u64 = 1_000;
/// Local ports of active (PORT/EPRT) data connections rotate through this
/// range, skipping ports in use.
pub const EPHEMERAL_PORTS: (u16, u16) = (49152, 65535);

/// A socket handle, see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sock {
    slot: u8,
    generation: u16,
}

/// What a socket is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Control,
    /// Listens on the control port; answers with the refusal line, closes.
    Refuser,
    Data,
    #[cfg(feature = "diag")]
    Service(crate::diag::Service),
}

/// Where a socket is, as the adapter tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Usage {
    /// Data socket, unused.
    Free,
    /// Control or service socket, listening (or connected, not yet accepted).
    Pooled,
    /// Handed to the engine.
    Owned,
    /// Given back by the engine at this time (ms); TCP is not done with it.
    Closing { since: u64 },
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    handle: SocketHandle,
    role: Role,
    usage: Usage,
    generation: u16,
}

/// Counts of sockets per pool and usage, for diagnostics and leak tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Control sockets listening for a client (the accept backlog).
    pub control_listening: usize,
    /// Data sockets free for a new listener or connection.
    pub data_free: usize,
    /// Sockets of any pool held by the engine.
    pub owned: usize,
    /// Sockets given back and still closing.
    pub closing: usize,
}

/// [`ftpd::Net`] over smoltcp with at most `K` sockets. See the module docs.
pub struct SmolNet<'a, const K: usize> {
    iface: Interface,
    sockets: SocketSet<'a>,
    slots: [Option<Slot>; K],
    carry: Carry,
    control_port: u16,
    next_port: u16,
    now_ms: u64,
    refusal: &'static [u8],
}

/// The end of a command line that smoltcp's receive buffer held, see
/// [`SmolNet::stash`]. One for all sockets (RAM: the QEMU board's diag
/// build has no room for one per socket): a second client pipelining at
/// the same moment waits for its zero-window probe as before.
#[derive(Clone, Copy, Debug)]
struct Carry {
    owner: Option<Sock>,
    buf: [u8; CARRY],
    len: u8,
}

/// Bytes of a partial command line the adapter keeps out of a control
/// socket's receive buffer.
pub const CARRY: usize = 16;

impl Carry {
    const EMPTY: Carry = Carry {
        owner: None,
        buf: [0; CARRY],
        len: 0,
    };

    /// Bytes kept for `s`.
    fn of(&self, s: Sock) -> usize {
        if self.owner == Some(s) {
            usize::from(self.len)
        } else {
            0
        }
    }

    /// Forgets what it keeps for `s`.
    fn drop_for(&mut self, s: Sock) {
        if self.owner == Some(s) {
            *self = Carry::EMPTY;
        }
    }
}

/// What a refuser socket says, unless [`SmolNet::set_refusal`] says otherwise.
pub const REFUSAL: &[u8] = b"421 Too many connections, try again later.\r\n";

impl<'a, const K: usize> SmolNet<'a, K> {
    /// An adapter over `iface`, with room for `K` sockets in `storage`
    /// (which must hold at least `K` entries). Add sockets with
    /// [`SmolNet::add_control`], [`SmolNet::add_data`] (and
    /// `SmolNet::add_service`) before the first poll.
    pub fn new(iface: Interface, storage: &'a mut [SocketStorage<'a>], control_port: u16) -> Self {
        assert!(
            storage.len() >= K,
            "socket storage smaller than the adapter's K"
        );
        assert!(K <= u8::MAX as usize);
        SmolNet {
            iface,
            sockets: SocketSet::new(storage),
            slots: [None; K],
            carry: Carry::EMPTY,
            control_port,
            next_port: EPHEMERAL_PORTS.0,
            now_ms: 0,
            refusal: REFUSAL,
        }
    }

    /// Adds a control socket (listening on the FTP port) with these buffers.
    pub fn add_control(&mut self, rx: &'a mut [u8], tx: &'a mut [u8]) {
        let mut s = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
        s.set_nagle_enabled(false);
        self.add(s, Role::Control, Usage::Pooled);
    }

    /// Adds a refuser socket (see the module docs). `tx` must hold the
    /// refusal line; `rx` may be tiny (the client has nothing to say first).
    pub fn add_refuser(&mut self, rx: &'a mut [u8], tx: &'a mut [u8]) {
        assert!(
            tx.len() >= self.refusal.len(),
            "refuser TX buffer too small"
        );
        let mut s = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
        s.set_nagle_enabled(false);
        self.add(s, Role::Refuser, Usage::Pooled);
    }

    /// The line refuser sockets send (a `421` reply with its CRLF).
    pub fn set_refusal(&mut self, line: &'static [u8]) {
        self.refusal = line;
    }

    /// Adds a data socket with these buffers.
    pub fn add_data(&mut self, rx: &'a mut [u8], tx: &'a mut [u8]) {
        let mut s = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
        s.set_nagle_enabled(false);
        s.set_ack_delay(None);
        self.add(s, Role::Data, Usage::Free);
    }

    /// Adds a diagnostic service socket (discard or chargen, see
    /// [`crate::diag`]); it listens on the service's port.
    #[cfg(feature = "diag")]
    pub fn add_service(
        &mut self,
        service: crate::diag::Service,
        rx: &'a mut [u8],
        tx: &'a mut [u8],
    ) {
        let mut s = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
        s.set_nagle_enabled(false);
        s.set_ack_delay(None);
        self.add(s, Role::Service(service), Usage::Pooled);
    }

    /// The MiB an sdbench client asked for, while the board has not answered.
    #[cfg(feature = "diag")]
    pub fn sdbench_pending(&self) -> Option<u32> {
        self.slots.iter().flatten().find_map(|s| match s.role {
            Role::Service(crate::diag::Service::SdBench(crate::diag::SdBench::Pending(mib))) => {
                Some(mib)
            }
            _ => None,
        })
    }

    /// Answers the pending sdbench request (see [`crate::diag`]) and closes.
    #[cfg(feature = "diag")]
    pub fn sdbench_answer(&mut self, r: Result<crate::diag::SdBenchResult, &str>) {
        use crate::diag::{SdBench, Service};
        let mut line = [0u8; 128];
        let n = crate::diag::format_answer(&mut line, r);
        for slot in self.slots.iter_mut().flatten() {
            if let Role::Service(Service::SdBench(state @ SdBench::Pending(_))) = &mut slot.role {
                let sock = self.sockets.get_mut::<tcp::Socket>(slot.handle);
                crate::diag::answer(state, sock, &line[..n]);
            }
        }
    }

    fn add(&mut self, socket: tcp::Socket<'a>, role: Role, usage: Usage) {
        let free = self
            .slots
            .iter()
            .position(Option::is_none)
            .expect("more sockets than K");
        let handle = self.sockets.add(socket);
        self.slots[free] = Some(Slot {
            handle,
            role,
            usage,
            generation: 0,
        });
        self.maintain(self.now_ms);
    }

    /// The interface (addresses, routes).
    pub fn iface(&self) -> &Interface {
        &self.iface
    }
    pub fn iface_mut(&mut self) -> &mut Interface {
        &mut self.iface
    }
    /// The FTP control port.
    pub fn control_port(&self) -> u16 {
        self.control_port
    }

    /// Runs the interface: receives and sends what it can.
    ///
    /// Never inlined: smoltcp's frame processing (2 KB of stack on a
    /// Cortex-M3) is then a sibling of the engine's frames in `App::poll`,
    /// not under them.
    #[inline(never)]
    pub fn poll_iface<D: smoltcp::phy::Device + ?Sized>(
        &mut self,
        now_ms: u64,
        device: &mut D,
    ) -> bool {
        use smoltcp::iface::{PollIngressSingleResult, PollResult};
        let now = smoltcp::time::Instant::from_millis(now_ms as i64);
        self.now_ms = self.now_ms.max(now_ms);
        self.iface.poll_maintenance(now);
        let mut changed = false;
        loop {
            // Listeners freed by the previous frame listen before the next.
            self.rearm(now_ms);
            let mut guard = SynGuard {
                inner: &mut *device,
                port: self.control_port,
                drop_syn: !self.control_listening(),
            };
            match self
                .iface
                .poll_ingress_single(now, &mut guard, &mut self.sockets)
            {
                PollIngressSingleResult::None => break,
                PollIngressSingleResult::PacketProcessed => {}
                PollIngressSingleResult::SocketStateChanged => changed = true,
            }
        }
        while self.iface.poll_egress(now, device, &mut self.sockets)
            == PollResult::SocketStateChanged
        {
            changed = true;
        }
        changed
    }

    /// True if some control or refuser socket listens for a SYN.
    fn control_listening(&self) -> bool {
        self.slots.iter().flatten().any(|slot| {
            matches!(slot.role, Role::Control | Role::Refuser)
                && slot.usage == Usage::Pooled
                && self.sockets.get::<tcp::Socket>(slot.handle).state() == State::Listen
        })
    }

    /// The part of [`SmolNet::maintain`] that frees control and refuser
    /// sockets and makes them listen again (and answers refused clients).
    fn rearm(&mut self, now_ms: u64) {
        let now = self.now_ms.max(now_ms);
        let control_port = self.control_port;
        for slot in self.slots.iter_mut().flatten() {
            if matches!(slot.role, Role::Control | Role::Refuser) {
                let sock = self.sockets.get_mut::<tcp::Socket>(slot.handle);
                rearm_control(slot, sock, control_port, self.refusal, now);
            }
        }
    }

    /// When the interface wants to be polled again (ms on the caller's
    /// clock): smoltcp's timers and the adapter's linger deadlines.
    pub fn poll_at(&mut self, now_ms: u64) -> Option<u64> {
        let now = smoltcp::time::Instant::from_millis(now_ms as i64);
        let mut at = self
            .iface
            .poll_at(now, &self.sockets)
            .map(|t| t.total_millis().max(0) as u64);
        for slot in self.slots.iter().flatten() {
            if let Usage::Closing { since } = slot.usage {
                let deadline = [LINGER_MS, LINGER_MS + RST_GRACE_MS]
                    .into_iter()
                    .map(|d| since.saturating_add(d))
                    .find(|&d| d > now_ms);
                if let Some(d) = deadline {
                    at = Some(at.map_or(d, |a| a.min(d)));
                }
            }
        }
        at
    }

    /// Moves sockets between pools: reclaims closing sockets TCP is done
    /// with, re-arms control listeners, enforces [`LINGER_MS`] and runs the
    /// diagnostic services. Returns true when a service moved data.
    pub fn maintain(&mut self, now_ms: u64) -> bool {
        self.now_ms = self.now_ms.max(now_ms);
        let now = self.now_ms;
        let control_port = self.control_port;
        #[allow(unused_mut)]
        let mut progressed = false;
        for slot in self.slots.iter_mut().flatten() {
            let sock = self.sockets.get_mut::<tcp::Socket>(slot.handle);
            if matches!(slot.role, Role::Control | Role::Refuser) {
                rearm_control(slot, sock, control_port, self.refusal, now);
            }
            if let Usage::Closing { since } = slot.usage {
                let lingered = now.saturating_sub(since);
                if !reusable(sock) && lingered >= LINGER_MS {
                    if sock.state() != State::Closed {
                        sock.abort();
                    } else if lingered >= LINGER_MS + RST_GRACE_MS {
                        // Its RST could not go out (no neighbour): forget it.
                        forget(sock);
                    }
                }
                if reusable(sock) {
                    sock.set_timeout(None);
                    slot.usage = match slot.role {
                        Role::Data => Usage::Free,
                        _ => Usage::Pooled,
                    };
                }
            }
            if slot.usage == Usage::Pooled {
                let port = match slot.role {
                    Role::Control | Role::Refuser => control_port,
                    Role::Data => continue,
                    #[cfg(feature = "diag")]
                    Role::Service(ref mut service) => {
                        progressed |= crate::diag::serve(service, sock);
                        service.port()
                    }
                };
                if reusable(sock) {
                    // The port is non-zero and the socket closed: cannot fail.
                    let _ = sock.listen(port);
                }
            }
        }
        progressed
    }

    /// How many sockets are where, see [`Census`].
    pub fn census(&self) -> Census {
        let mut c = Census::default();
        for slot in self.slots.iter().flatten() {
            match (slot.usage, slot.role) {
                (Usage::Free, _) => c.data_free += 1,
                (Usage::Pooled, Role::Control) => c.control_listening += 1,
                (Usage::Pooled, _) => {}
                (Usage::Owned, _) => c.owned += 1,
                (Usage::Closing { .. }, _) => c.closing += 1,
            }
        }
        c
    }

    /// The slot of a live handle.
    fn live(&self, s: Sock) -> Option<&Slot> {
        match self.slots.get(s.slot as usize) {
            Some(Some(slot)) if slot.usage == Usage::Owned && slot.generation == s.generation => {
                Some(slot)
            }
            _ => None,
        }
    }

    fn socket(&self, s: Sock) -> Option<&tcp::Socket<'a>> {
        let handle = self.live(s)?.handle;
        Some(self.sockets.get::<tcp::Socket>(handle))
    }

    fn socket_mut(&mut self, s: Sock) -> Option<&mut tcp::Socket<'a>> {
        let handle = self.live(s)?.handle;
        Some(self.sockets.get_mut::<tcp::Socket>(handle))
    }

    /// Hands slot `i` to the engine.
    fn own(&mut self, i: usize) -> Sock {
        let slot = self.slots[i].as_mut().expect("slot exists");
        slot.generation = slot.generation.wrapping_add(1);
        slot.usage = Usage::Owned;
        if self.carry.owner.is_some_and(|o| usize::from(o.slot) == i) {
            self.carry = Carry::EMPTY;
        }
        Sock {
            slot: i as u8,
            generation: slot.generation,
        }
    }

    fn free_data_slot(&self) -> Option<usize> {
        self.slots.iter().position(|s| {
            matches!(
                s,
                Some(Slot {
                    role: Role::Data,
                    usage: Usage::Free,
                    ..
                })
            )
        })
    }

    /// True if some socket of ours uses local port `port` for listening or
    /// for a connection that is not closing.
    fn port_in_use(&self, port: u16) -> bool {
        if port == self.control_port {
            return true;
        }
        self.slots.iter().flatten().any(|slot| {
            #[cfg(feature = "diag")]
            if let Role::Service(service) = slot.role
                && service.port() == port
            {
                return true;
            }
            if slot.usage != Usage::Owned && !matches!(slot.usage, Usage::Closing { .. }) {
                return false;
            }
            let sock = self.sockets.get::<tcp::Socket>(slot.handle);
            if slot.usage != Usage::Owned && sock.state() == State::Closed {
                // Aborted, its RST still to go out: it accepts nothing, so
                // the port is free (a passive port listens again at once
                // after a stolen connection is refused, RFC 2577).
                return false;
            }
            sock.listen_endpoint().port == port
                || sock.local_endpoint().is_some_and(|e| e.port == port)
        })
    }

    fn is_local(&self, ip: IpAddr) -> bool {
        self.iface.has_ip_addr(IpAddress::from(ip))
    }

    fn ephemeral_port(&mut self) -> Option<u16> {
        let (lo, hi) = EPHEMERAL_PORTS;
        for _ in lo..=hi {
            let port = self.next_port;
            self.next_port = if port >= hi { lo } else { port + 1 };
            if !self.port_in_use(port) {
                return Some(port);
            }
        }
        None
    }
}

/// A control or refuser socket: a refuser whose client connected gets the
/// refusal line and is closed; a closing one the client has acknowledged
/// entirely (`FIN-WAIT-2`: our data and FIN) is dropped without a word; a
/// free one listens again.
fn rearm_control(slot: &mut Slot, sock: &mut tcp::Socket, port: u16, refusal: &[u8], now: u64) {
    if slot.role == Role::Refuser
        && slot.usage == Usage::Pooled
        && matches!(sock.state(), State::Established | State::CloseWait)
    {
        let _ = sock.send_slice(refusal);
        sock.close();
        sock.set_timeout(Some(Duration::from_millis(LINGER_SILENCE_MS)));
        slot.usage = Usage::Closing { since: now };
    }
    if let Usage::Closing { .. } = slot.usage {
        if sock.state() == State::FinWait2 {
            forget(sock);
        }
        if reusable(sock) {
            sock.set_timeout(None);
            slot.usage = Usage::Pooled;
        }
    }
    if slot.usage == Usage::Pooled && reusable(sock) {
        // The port is non-zero and the socket closed: cannot fail.
        let _ = sock.listen(port);
    }
}

/// A device that hides SYNs to the control port (hands smoltcp an empty
/// frame, which it skips) while `drop_syn`: see the module docs.
struct SynGuard<'d, D: ?Sized> {
    inner: &'d mut D,
    port: u16,
    drop_syn: bool,
}

struct GuardRx<T> {
    inner: T,
    port: u16,
    drop_syn: bool,
    ethernet: bool,
}

impl<D: smoltcp::phy::Device + ?Sized> smoltcp::phy::Device for SynGuard<'_, D> {
    type RxToken<'a>
        = GuardRx<D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(
        &mut self,
        timestamp: smoltcp::time::Instant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let ethernet = self.inner.capabilities().medium == smoltcp::phy::Medium::Ethernet;
        let (rx, tx) = self.inner.receive(timestamp)?;
        let rx = GuardRx {
            inner: rx,
            port: self.port,
            drop_syn: self.drop_syn,
            ethernet,
        };
        Some((rx, tx))
    }

    fn transmit(&mut self, timestamp: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        self.inner.transmit(timestamp)
    }

    fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
        self.inner.capabilities()
    }
}

impl<T: smoltcp::phy::RxToken> smoltcp::phy::RxToken for GuardRx<T> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let (port, drop_syn, ethernet) = (self.port, self.drop_syn, self.ethernet);
        self.inner.consume(|frame| {
            if drop_syn && is_syn_to(frame, ethernet, port) {
                f(&[])
            } else {
                f(frame)
            }
        })
    }

    fn meta(&self) -> smoltcp::phy::PacketMeta {
        self.inner.meta()
    }
}

/// True if `frame` is a TCP SYN (without ACK) to local port `port`, over
/// IPv4 (first fragment) or IPv6 (no extension headers), in an Ethernet
/// frame or bare.
pub fn is_syn_to(frame: &[u8], ethernet: bool, port: u16) -> bool {
    let (version, ip) = if ethernet {
        match frame.get(12..14) {
            Some([0x08, 0x00]) => (4, &frame[14..]),
            Some([0x86, 0xdd]) => (6, &frame[14..]),
            _ => return false,
        }
    } else {
        match frame.first().map(|b| b >> 4) {
            Some(v @ (4 | 6)) => (v, frame),
            _ => return false,
        }
    };
    let tcp = if version == 4 {
        let ihl = ip.first().map_or(0, |b| usize::from(b & 0x0f) * 4);
        let first_fragment = ip.get(6).is_some_and(|b| b & 0x1f == 0) && ip.get(7) == Some(&0);
        if ihl < 20 || ip.get(9) != Some(&6) || !first_fragment {
            return false;
        }
        ip.get(ihl..)
    } else {
        if ip.get(6) != Some(&6) {
            return false;
        }
        ip.get(40..)
    };
    match tcp.and_then(|t| Some((t.get(2..4)?, *t.get(13)?))) {
        Some((dst, flags)) => u16::from_be_bytes([dst[0], dst[1]]) == port && flags & 0x12 == 0x02,
        None => false,
    }
}

/// True when smoltcp is done with the socket and it may listen or connect
/// again: closed with nothing left to send (an RST still queued keeps the
/// remote endpoint until it goes out), or in `TIME-WAIT`.
fn reusable(sock: &tcp::Socket) -> bool {
    match sock.state() {
        State::Closed => sock.remote_endpoint().is_none(),
        State::TimeWait => true,
        _ => false,
    }
}

/// Closes the socket without a word to the peer: drops whatever it still
/// had to send (a SYN, an RST that cannot be routed) by passing it through
/// `LISTEN`, which resets it.
fn forget(sock: &mut tcp::Socket) {
    sock.abort();
    let _ = sock.listen(IpListenEndpoint {
        addr: None,
        port: 1,
    });
    sock.close();
}

fn to_sockaddr(e: smoltcp::wire::IpEndpoint) -> SocketAddr {
    SocketAddr::from(e)
}

impl<'a, const K: usize> Net for SmolNet<'a, K> {
    type Socket = Sock;

    fn accept(&mut self) -> Option<Sock> {
        self.maintain(self.now_ms);
        let i = self.slots.iter().position(|s| match s {
            Some(slot) if slot.role == Role::Control && slot.usage == Usage::Pooled => matches!(
                self.sockets.get::<tcp::Socket>(slot.handle).state(),
                State::Established | State::CloseWait
            ),
            _ => false,
        })?;
        Some(self.own(i))
    }

    fn listen(&mut self, addr: SocketAddr) -> Result<Sock, NetError> {
        if addr.port() == 0 || !self.is_local(addr.ip()) {
            return Err(NetError::Unreachable);
        }
        if self.port_in_use(addr.port()) {
            return Err(NetError::AddrInUse);
        }
        let i = self.free_data_slot().ok_or(NetError::Exhausted)?;
        let handle = self.slots[i].expect("slot exists").handle;
        let sock = self.sockets.get_mut::<tcp::Socket>(handle);
        let endpoint = IpListenEndpoint {
            addr: Some(addr.ip().into()),
            port: addr.port(),
        };
        sock.listen(endpoint).map_err(|_| NetError::Unreachable)?;
        Ok(self.own(i))
    }

    fn connect(&mut self, local: IpAddr, remote: SocketAddr) -> Result<Sock, NetError> {
        if local.is_ipv4() != remote.is_ipv4()
            || remote.port() == 0
            || remote.ip().is_unspecified()
            || !self.is_local(local)
        {
            return Err(NetError::Unreachable);
        }
        let i = self.free_data_slot().ok_or(NetError::Exhausted)?;
        let port = self.ephemeral_port().ok_or(NetError::Exhausted)?;
        let handle = self.slots[i].expect("slot exists").handle;
        let sock = self.sockets.get_mut::<tcp::Socket>(handle);
        sock.connect(self.iface.context(), remote, (IpAddress::from(local), port))
            .map_err(|_| NetError::Unreachable)?;
        Ok(self.own(i))
    }

    fn state(&self, s: Sock) -> SockState {
        let Some(sock) = self.socket(s) else {
            return SockState::Closed;
        };
        match sock.state() {
            State::Listen | State::SynReceived => SockState::Listening,
            State::SynSent => SockState::Connecting,
            // FIN-WAIT states follow our close only: the engine no longer
            // holds the handle then.
            State::Established | State::FinWait1 | State::FinWait2 => SockState::Established,
            State::CloseWait => SockState::PeerClosed,
            State::Closing | State::LastAck | State::TimeWait | State::Closed => SockState::Closed,
        }
    }

    fn local_addr(&self, s: Sock) -> Option<SocketAddr> {
        let sock = self.socket(s)?;
        match sock.local_endpoint() {
            Some(e) => Some(to_sockaddr(e)),
            None => {
                let l = sock.listen_endpoint();
                Some(SocketAddr::new(l.addr?.into(), l.port))
            }
        }
    }

    fn peer_addr(&self, s: Sock) -> Option<SocketAddr> {
        self.socket(s)?.remote_endpoint().map(to_sockaddr)
    }

    fn peek(&mut self, s: Sock, buf: &mut [u8]) -> Result<usize, NetError> {
        let carried = match self.live(s) {
            Some(_) => self.carry.of(s).min(buf.len()),
            None => 0,
        };
        buf[..carried].copy_from_slice(&self.carry.buf[..carried]);
        let sock = self.socket_mut(s).ok_or(NetError::Reset)?;
        if matches!(
            sock.state(),
            State::Listen | State::SynReceived | State::SynSent
        ) {
            return Ok(0);
        }
        if sock.recv_queue() > 0 {
            return Ok(carried + sock.peek_slice(&mut buf[carried..]).unwrap_or(0));
        }
        if carried > 0 {
            return Ok(carried);
        }
        // Nothing buffered: classify by what `recv` says about the stream.
        match sock.recv_slice(&mut []) {
            Ok(_) => Ok(0),
            Err(RecvError::Finished) => Err(NetError::Closed),
            Err(RecvError::InvalidState) => Err(NetError::Reset),
        }
    }

    fn consume(&mut self, s: Sock, mut n: usize) {
        if self.live(s).is_none() {
            return;
        }
        let kept = self.carry.of(s);
        if kept > 0 {
            let k = n.min(kept);
            self.carry.buf.copy_within(k..kept, 0);
            self.carry.len -= k as u8;
            if self.carry.len == 0 {
                self.carry = Carry::EMPTY;
            }
            n -= k;
        }
        let sock = self.socket_mut(s).expect("live");
        // The ring buffer may wrap: at most two contiguous pieces.
        for _ in 0..2 {
            if n == 0 {
                break;
            }
            let taken = sock
                .recv(|b| {
                    let k = b.len().min(n);
                    (k, k)
                })
                .unwrap_or(0);
            n -= taken;
        }
        self.stash(s);
    }

    fn recv(&mut self, s: Sock, buf: &mut [u8]) -> Result<usize, NetError> {
        let n = self.peek(s, buf)?;
        self.consume(s, n);
        Ok(n)
    }

    fn send_capacity(&self, s: Sock) -> usize {
        match self.socket(s) {
            Some(sock) if sock.may_send() => sock.send_capacity() - sock.send_queue(),
            _ => 0,
        }
    }

    fn send(&mut self, s: Sock, data: &[u8]) -> Result<usize, NetError> {
        let sock = self.socket_mut(s).ok_or(NetError::Reset)?;
        if sock.may_send() {
            return Ok(sock.send_slice(data).unwrap_or(0));
        }
        match sock.state() {
            State::Listen | State::SynReceived | State::SynSent => Ok(0),
            _ => Err(NetError::Reset),
        }
    }

    fn send_drained(&self, s: Sock) -> bool {
        // smoltcp keeps bytes in the TX buffer until they are acknowledged.
        self.socket(s).is_none_or(|sock| sock.send_queue() == 0)
    }

    fn close(&mut self, s: Sock) {
        self.give_back(s, false);
    }

    fn abort(&mut self, s: Sock) {
        self.give_back(s, true);
    }
}

impl<'a, const K: usize> SmolNet<'a, K> {
    /// Moves the end of a command line out of a control socket's receive
    /// buffer when it is all that is left there (no line end) and small:
    /// the window is then wide open again. A Linux sender that has more
    /// to send waits for a window of its whole segment (the window's size,
    /// for windows of 536 bytes or less) and, short of it, for its
    /// zero-window probe: 200 ms and more.
    fn stash(&mut self, s: Sock) {
        let Some(slot) = self.live(s) else { return };
        if slot.role != Role::Control {
            return;
        }
        let handle = slot.handle;
        if self.carry.owner.is_some_and(|o| o != s) {
            return;
        }
        let carry = &mut self.carry;
        let sock = self.sockets.get_mut::<tcp::Socket>(handle);
        let queued = sock.recv_queue();
        let room = CARRY - usize::from(carry.len);
        if queued == 0 || queued > room {
            return;
        }
        let mut tail = [0u8; CARRY];
        let n = sock.peek_slice(&mut tail[..queued]).unwrap_or(0);
        if n != queued || tail[..n].contains(&b'\n') {
            return;
        }
        let start = usize::from(carry.len);
        carry.buf[start..start + n].copy_from_slice(&tail[..n]);
        carry.len += n as u8;
        carry.owner = Some(s);
        let _ = sock.recv_slice(&mut tail[..n]);
    }

    fn give_back(&mut self, s: Sock, abort: bool) {
        if self.live(s).is_none() {
            return;
        }
        self.carry.drop_for(s);
        let now = self.now_ms;
        let slot = self.slots[s.slot as usize].as_mut().expect("live slot");
        slot.usage = Usage::Closing { since: now };
        let sock = self.sockets.get_mut::<tcp::Socket>(slot.handle);
        if sock.state() == State::SynSent {
            // The peer never answered: nothing to tell it (RFC 9293 3.10.4),
            // and the SYN may not even be routable.
            forget(sock);
        } else if abort {
            sock.abort();
        } else {
            sock.close();
            sock.set_timeout(Some(Duration::from_millis(LINGER_SILENCE_MS)));
        }
        self.maintain(now);
    }
}

#[cfg(test)]
mod tests;
