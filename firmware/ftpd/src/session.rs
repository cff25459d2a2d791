//! One FTP session: the state machine behind a control connection.
//!
//! [`Session::poll`] is called by the server loop with a [`Ctx`] holding the
//! network, the storage, the clock and the buffers shared by all sessions.
//! Each call does a bounded amount of work: finish a pending reply, move one
//! buffer of a transfer, or answer one command.
//!
//! # How commands wait
//!
//! A command is only *consumed* from the control socket once it is answered.
//! A transfer command that needs a data connection still being set up
//! (passive connection not yet arrived, active connect in progress) is left
//! in the socket and looked at again on the next poll, until the connection
//! is up or the data timeout passes (`425`). While a transfer runs, only
//! `ABOR`, `STAT`, `NOOP` and `QUIT` are answered; anything else waits its
//! turn in the socket, which gives pipelining for free.
//!
//! # Memory
//!
//! A session holds its working directory and one more path (`aux`): the
//! `RNFR` source (virtual), or the directory being listed (storage path). RFC 959 requires RNTO to
//! follow RNFR at once, so both never need it at the same time.

use core::net::{IpAddr, SocketAddr};

use crate::MAX_REPLY;
use crate::config::{Account, Config};
use crate::list::{self, Format, facts};
use crate::net::{Net, NetError, SockState};
use crate::path::{self, PathBuf};
use crate::proto::command::{self as verb, EpsvArg, ParseError, TransferType, Typed};
use crate::proto::command::{eq_ic, split_word, trim, trim_bytes, trim_start};
use crate::proto::line::{self, Frame};
use crate::proto::reply::{ReplyCode as R, Writer};
use crate::storage::{self, DateTime, Kind, Storage, WriteMode};
use crate::time::{self, Instant, U64};

/// Everything a session may touch during one poll.
pub struct Ctx<'x, 'c, N: Net, S: Storage> {
    pub net: &'x mut N,
    pub fs: &'x mut S,
    pub now: Instant,
    pub config: &'x Config<'c>,
    pub data: &'x mut [u8],
    pub line: &'x mut [u8],
    pub reply: &'x mut [u8; MAX_REPLY],
    pub next_port: &'x mut u16,
    pub utc: Option<&'x DateTime>,
    pub sessions_open: usize,
}

/// What one [`Session::poll`] did.
pub struct Step {
    pub progressed: bool,
    pub wake: Option<Instant>,
    /// The session is over; its slot can be reused.
    pub done: bool,
}

/// Who is logged in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Account(u8),
    Anonymous,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Login {
    /// Waiting for USER.
    Fresh,
    /// USER given; `None` for a name that does not exist (answered exactly
    /// like a real one, RFC 2577 §5).
    User(Option<Who>),
    In(Who),
}

/// The data connection, set up by PASV/EPSV/PORT/EPRT.
#[derive(Clone, Copy, Debug)]
enum Data<K> {
    None,
    Listening(K),
    Connecting(K),
    Ready(K),
}

/// Something the session waits for before it reads commands again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    None,
    /// A wrong password is answered at this time.
    LoginDelay(Instant),
}

#[derive(Debug)]
enum Op<F> {
    Retr {
        file: F,
        ascii: bool,
        cr: bool,
    },
    Stor {
        file: F,
        ascii: bool,
        cr: bool,
    },
    /// Listing of the directory whose *storage* path is in `aux`, `index`
    /// entries already sent.
    List {
        format: Format,
        index: usize,
    },
}

/// Where a listing goes: the data connection, or the control connection
/// (`STAT path`, lines indented, ended with `213`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sink<K> {
    Data(K),
    Control,
}

#[derive(Debug)]
struct Transfer<K, F> {
    op: Op<F>,
    sink: Sink<K>,
    /// Every byte has been handed to the socket; waiting for it to drain.
    draining: bool,
    bytes: U64,
    last_progress: Instant,
}

/// One FTP session.
pub struct Session<K, F> {
    id: u32,
    ctrl: K,
    peer: SocketAddr,
    local: SocketAddr,
    login: Login,
    failures: u8,
    cwd: PathBuf,
    aux: PathBuf,
    rnfr: bool,
    ty: TransferType,
    rest: U64,
    epsv_all: bool,
    facts: u8,
    data: Data<K>,
    xfer: Option<Transfer<K, F>>,
    /// When the command at the head of the socket started waiting.
    deferred_since: Option<Instant>,
    last_command: Instant,
    hold: Hold,
    /// Dropping the rest of an over-long line.
    discarding: bool,
    /// The client closed the control connection; finish an upload quietly.
    ctrl_gone: bool,
    /// Close once the last reply has been queued.
    closing: bool,
    /// A transfer's failure reply that found no room in the control socket.
    owed: Option<(R, &'static str, U64)>,
}

/// The reply for a storage error (see [`storage::Error`]).
pub fn storage_reply(e: storage::Error, in_transfer: bool) -> R {
    use storage::Error as E;
    match e {
        E::NotFound
        | E::NotADirectory
        | E::IsADirectory
        | E::AlreadyExists
        | E::DirectoryNotEmpty
        | E::PermissionDenied => R::FileUnavailable,
        E::NoSpace if in_transfer => R::InsufficientStorage,
        E::NoSpace => R::ExceededStorage,
        E::InvalidName | E::NameTooLong => R::NameNotAllowed,
        E::InvalidOffset => R::InvalidRestart,
        E::Busy => R::FileBusy,
        E::Io | E::NotReady => R::LocalError,
    }
}

/// Verb kinds answered before login (RFC 959 leaves it to the server;
/// lftp sends FEAT, OPTS and CLNT before USER).
const BEFORE_LOGIN: u64 = 1 << verb::USER
    | 1 << verb::PASS
    | 1 << verb::ACCT
    | 1 << verb::QUIT
    | 1 << verb::REIN
    | 1 << verb::FEAT
    | 1 << verb::SYST
    | 1 << verb::HELP
    | 1 << verb::NOOP
    | 1 << verb::OPTS
    | 1 << verb::CLNT
    | 1 << verb::NOT_IMPL;

/// A transfer's failure: `text (n bytes transferred)`.
const TRANSFERRED: &str = "\x01 (\x04 bytes transferred)";

/// `522` (or `504` for PORT) with the family to use.
const USE_FAMILY: &str = "Network protocol not supported, use (\x04).";

/// `IpAddr::to_canonical` (an IPv4-mapped IPv6 address as IPv4) through
/// `to_ipv4_mapped`, which the reply writer links anyway.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    canonical(a) == canonical(b)
}

/// The outcome of looking at one command.
enum Handled {
    /// Answered: drop the line.
    Done,
    /// Not yet: leave the line in the socket.
    Wait,
}

impl<K: Copy + PartialEq + core::fmt::Debug, F> Session<K, F> {
    /// A session for a freshly accepted control connection (the greeting has
    /// been sent). `None` if the socket has no addresses (already gone).
    pub fn new<N: Net<Socket = K>>(id: u32, ctrl: K, net: &N, now: Instant) -> Option<Self> {
        Some(Session {
            id,
            ctrl,
            peer: net.peer_addr(ctrl)?,
            local: net.local_addr(ctrl)?,
            login: Login::Fresh,
            failures: 0,
            cwd: PathBuf::root(),
            aux: PathBuf::root(),
            rnfr: false,
            ty: TransferType::Ascii,
            rest: U64(0),
            epsv_all: false,
            facts: facts::ALL,
            data: Data::None,
            xfer: None,
            deferred_since: None,
            last_command: now,
            hold: Hold::None,
            discarding: false,
            ctrl_gone: false,
            closing: false,
            owed: None,
        })
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    fn account<'c>(&self, config: &Config<'c>) -> Option<(Who, Option<&Account<'c>>)> {
        match self.login {
            Login::In(Who::Account(i)) => {
                Some((Who::Account(i), config.accounts.get(usize::from(i))))
            }
            Login::In(Who::Anonymous) => Some((Who::Anonymous, None)),
            _ => None,
        }
    }

    fn root<'c>(&self, config: &Config<'c>) -> &'c str {
        match self.account(config) {
            Some((_, Some(a))) => a.root,
            Some((Who::Anonymous, _)) => config.anonymous_root.unwrap_or("/"),
            _ => "/",
        }
    }

    fn writable(&self, config: &Config<'_>) -> bool {
        matches!(self.account(config), Some((_, Some(a))) if a.writable)
    }

    // ---- replies -------------------------------------------------------

    /// Sends one reply built by `f`. The caller has made sure the control
    /// socket has room for [`MAX_REPLY`] bytes.
    fn send<N: Net<Socket = K>, S: Storage>(
        &self,
        ctx: &mut Ctx<'_, '_, N, S>,
        f: impl FnOnce(&mut Writer<'_>),
    ) {
        let mut w = Writer::new(&mut ctx.reply[..]);
        f(&mut w);
        if !self.ctrl_gone {
            let _ = ctx.net.send(self.ctrl, w.as_bytes());
        }
    }

    /// `code text` (a literal: no template markers).
    fn say<N: Net<Socket = K>, S: Storage>(
        &self,
        ctx: &mut Ctx<'_, '_, N, S>,
        code: R,
        text: &str,
    ) {
        self.reply(ctx, code, text, "", 0);
    }

    /// `code` and the template `tpl` filled with `s` and `n` (see
    /// [`Writer::fill`]).
    fn reply<N: Net<Socket = K>, S: Storage>(
        &self,
        ctx: &mut Ctx<'_, '_, N, S>,
        code: R,
        tpl: &str,
        s: &str,
        n: u64,
    ) {
        self.send(ctx, |w| w.begin(code).fill(tpl, s, n).end());
    }

    fn room<N: Net<Socket = K>>(&self, net: &N) -> bool {
        self.ctrl_gone || net.send_capacity(self.ctrl) >= MAX_REPLY
    }

    // ---- the poll step ---------------------------------------------------

    pub fn poll<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
    ) -> Step {
        let mut progressed = false;
        let mut wake: Option<Instant> = None;
        // Every way the session ends goes through the one teardown below.
        let done = 'run: {
            if !self.ctrl_gone && ctx.net.state(self.ctrl) == SockState::Closed {
                self.ctrl_gone = true;
                progressed = true;
            }
            // Without a client to answer, only a running upload is worth
            // finishing (so what was sent is stored, and closed properly).
            let upload = matches!(
                self.xfer,
                Some(Transfer {
                    op: Op::Stor { .. },
                    ..
                })
            );
            if self.ctrl_gone && !upload {
                break 'run true;
            }

            progressed |= self.advance_data(ctx);
            progressed |= self.step_transfer(ctx);
            if self.ctrl_gone && self.xfer.is_none() {
                break 'run true;
            }

            // A reply that found no room earlier goes first; nothing else
            // is read until it is out.
            if let Some((code, text, bytes)) = self.owed {
                if self.room(ctx.net) {
                    self.owed = None;
                    progressed = true;
                    self.reply(ctx, code, TRANSFERRED, text, bytes.0);
                }
            }

            // A wrong password is answered once its delay is over (and
            // nothing else is owed first).
            if let Hold::LoginDelay(until) = self.hold
                && time::expired(ctx.now, until, 0, &mut wake)
                && self.owed.is_none()
                && self.room(ctx.net)
            {
                self.hold = Hold::None;
                self.failures = self.failures.saturating_add(1);
                self.login = Login::Fresh;
                progressed = true;
                if self.failures >= ctx.config.max_login_failures {
                    crate::event!("[{}] too many failed logins, closing", self.id);
                    self.say(
                        ctx,
                        R::ServiceNotAvailable,
                        "Too many failed logins, closing.",
                    );
                    self.closing = true;
                } else {
                    self.say(ctx, R::NotLoggedIn, "Login incorrect.");
                }
            }

            if !self.closing && !self.ctrl_gone && self.hold == Hold::None && self.owed.is_none() {
                progressed |= self.read_command(ctx);
            }

            if self.closing || (self.ctrl_gone && self.xfer.is_none()) {
                break 'run true;
            }

            // Timeouts. Only deadlines still ahead are reported, so a
            // session that waits for room in its control socket never makes
            // the loop spin; the idle timeout is the backstop for every kind
            // of waiting.
            let cfg = ctx.config;
            let now = ctx.now;
            if let Some(t) = &self.xfer {
                if time::expired(now, t.last_progress, cfg.data_timeout_ms, &mut wake) {
                    progressed = true;
                    self.fail_transfer(
                        ctx,
                        R::TransferAborted,
                        "Data connection timed out; transfer aborted.",
                    );
                }
                break 'run false;
            }
            if let Some(since) = self.deferred_since {
                // Only its wake-up: the waiting command answers `425` itself.
                time::expired(now, since, cfg.data_timeout_ms, &mut wake);
            }
            if time::expired(now, self.last_command, cfg.idle_timeout_ms, &mut wake) {
                crate::event!("[{}] idle timeout", self.id);
                if self.room(ctx.net) {
                    self.say(
                        ctx,
                        R::ServiceNotAvailable,
                        "Timeout: closing control connection.",
                    );
                }
                break 'run true;
            }
            false
        };
        if done {
            self.teardown(ctx.net, ctx.fs);
            return Step {
                progressed: true,
                wake: None,
                done: true,
            };
        }
        Step {
            progressed,
            wake,
            done: false,
        }
    }

    /// Gives back every socket and file.
    fn teardown<N: Net<Socket = K>, S: Storage<File = F>>(&mut self, net: &mut N, fs: &mut S) {
        self.abort_transfer(net, fs);
        self.drop_data(net);
        net.close(self.ctrl);
    }

    /// Server shutdown: `421` and close.
    pub fn shutdown<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        net: &mut N,
        fs: &mut S,
        reply: &mut [u8; MAX_REPLY],
    ) {
        if !self.ctrl_gone && net.send_capacity(self.ctrl) >= MAX_REPLY {
            let mut w = Writer::new(&mut reply[..]);
            w.line(R::ServiceNotAvailable, "Server shutting down.");
            let _ = net.send(self.ctrl, w.as_bytes());
        }
        self.teardown(net, fs);
    }

    /// Aborts the running transfer, if any (its data connection reset,
    /// its file closed); whether there was one.
    fn abort_transfer<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        net: &mut N,
        fs: &mut S,
    ) -> bool {
        match self.xfer.take() {
            Some(t) => {
                let _ = Self::drop_transfer(t, net, fs, true);
                true
            }
            None => false,
        }
    }

    fn drop_transfer<N: Net<Socket = K>, S: Storage<File = F>>(
        t: Transfer<K, F>,
        net: &mut N,
        fs: &mut S,
        abort: bool,
    ) -> storage::Result<()> {
        if let Sink::Data(s) = t.sink {
            if abort { net.abort(s) } else { net.close(s) }
        }
        match t.op {
            Op::Retr { file, .. } | Op::Stor { file, .. } => fs.close(file),
            Op::List { .. } => Ok(()),
        }
    }

    fn drop_data<N: Net<Socket = K>>(&mut self, net: &mut N) {
        match core::mem::replace(&mut self.data, Data::None) {
            Data::None => {}
            Data::Listening(s) | Data::Connecting(s) | Data::Ready(s) => net.abort(s),
        }
    }

    /// Moves a data connection being set up along; refuses passive
    /// connections from anyone but the control connection's peer.
    #[inline(never)]
    fn advance_data<N: Net<Socket = K>, S: Storage>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
    ) -> bool {
        let (s, passive) = match self.data {
            Data::Listening(s) => (s, true),
            Data::Connecting(s) => (s, false),
            Data::Ready(_) | Data::None => return false,
        };
        match ctx.net.state(s) {
            SockState::Listening if passive => false,
            SockState::Connecting if !passive => false,
            SockState::Established | SockState::PeerClosed => {
                // An active connection goes where PORT said; a passive one
                // must come from the client.
                let from = if passive { ctx.net.peer_addr(s) } else { None };
                if !passive || from.is_some_and(|a| same_ip(a.ip(), self.peer.ip())) {
                    self.data = Data::Ready(s);
                } else {
                    // RFC 2577 §4 (port stealing): listen again for the
                    // right client.
                    crate::event!("[{}] refused data connection from {:?}", self.id, from);
                    let local = ctx.net.local_addr(s);
                    ctx.net.abort(s);
                    self.data = match local.map(|a| ctx.net.listen(a)) {
                        Some(Ok(n)) => Data::Listening(n),
                        _ => Data::None,
                    };
                }
                true
            }
            _ => {
                ctx.net.abort(s);
                self.data = Data::None;
                true
            }
        }
    }

    // ---- commands --------------------------------------------------------

    /// Reads and answers at most one command.
    fn read_command<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
    ) -> bool {
        if !self.room(ctx.net) {
            return false;
        }
        // MAX_LINE bytes always decide (see `line::extract`), and the
        // control socket's receive buffer holds at least that many.
        let want = ctx.data.len().min(crate::MAX_LINE);
        let n = match ctx.net.peek(self.ctrl, &mut ctx.data[..want]) {
            Ok(n) => n,
            Err(_) => {
                // The client finished sending (FIN) or reset: nothing more
                // will come. Treat as gone once pending work is done.
                if self.xfer.is_none() {
                    self.ctrl_gone = true;
                    return true;
                }
                return false;
            }
        };
        if n == 0 {
            return false;
        }
        if self.discarding {
            let (drop, found) = line::skip_to_terminator(&ctx.data[..n]);
            if !found && self.xfer.is_none() && ctx.net.state(self.ctrl) == SockState::PeerClosed {
                // The client closed its side inside an over-long line.
                ctx.net.consume(self.ctrl, n);
                self.ctrl_gone = true;
                return true;
            }
            ctx.net.consume(self.ctrl, drop);
            self.discarding = !found;
            return drop > 0;
        }
        let max = ctx.line.len().min(crate::MAX_LINE);
        match line::extract(&ctx.data[..n], &mut ctx.line[..max]) {
            Frame::Partial if n == want => {
                // A full peek buffer and still no line (Telnet noise inside
                // a long line): as over-long as any other.
                if self.xfer.is_some() {
                    return false;
                }
                ctx.net.consume(self.ctrl, n);
                self.discarding = true;
                self.last_command = ctx.now;
                self.say(ctx, R::SyntaxError, "Command line too long.");
                true
            }
            Frame::Partial => {
                // The client closed its side after an unterminated line:
                // nothing will complete it.
                if self.xfer.is_none() && ctx.net.state(self.ctrl) == SockState::PeerClosed {
                    ctx.net.consume(self.ctrl, n);
                    self.ctrl_gone = true;
                    return true;
                }
                false
            }
            Frame::Empty { consumed } => {
                ctx.net.consume(self.ctrl, consumed);
                true
            }
            Frame::TooLong { consumed } => {
                if self.xfer.is_some() {
                    return false;
                }
                ctx.net.consume(self.ctrl, consumed);
                self.discarding = true;
                self.last_command = ctx.now;
                crate::event!("[{}] command line too long", self.id);
                self.say(ctx, R::SyntaxError, "Command line too long.");
                true
            }
            Frame::Line { consumed, len } => {
                // The line buffer leaves the context while the command runs,
                // so the command can borrow from it.
                let line_buf = core::mem::take(&mut ctx.line);
                let handled = self.handle_line(ctx, &line_buf[..len]);
                ctx.line = line_buf;
                match handled {
                    Handled::Done => {
                        ctx.net.consume(self.ctrl, consumed);
                        self.deferred_since = None;
                        self.last_command = ctx.now;
                        true
                    }
                    Handled::Wait => {
                        if self.deferred_since.is_none() {
                            self.deferred_since = Some(ctx.now);
                        }
                        false
                    }
                }
            }
        }
    }

    fn handle_line<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        line: &[u8],
    ) -> Handled {
        let parsed = verb::verb(line).and_then(|(k, arg)| Ok((k, arg, verb::typed(k, arg)?)));
        let (k, arg, typed) = match parsed {
            Ok(c) => c,
            Err(e) => {
                if self.xfer.is_some() {
                    return Handled::Wait;
                }
                self.log_line(line);
                self.rnfr = false;
                let (code, text) = match e {
                    ParseError::Unknown => (R::SyntaxError, "Unknown command."),
                    ParseError::BadBytes => (R::SyntaxError, "Invalid characters in command."),
                    ParseError::MissingArgument => (R::ArgumentSyntaxError, "Missing argument."),
                    ParseError::UnexpectedArgument => {
                        (R::ArgumentSyntaxError, "This command takes no argument.")
                    }
                    ParseError::BadArgument => (R::ArgumentSyntaxError, "Invalid argument."),
                    ParseError::UnsupportedParameter => {
                        (R::ParameterNotImplemented, "Parameter not supported.")
                    }
                    ParseError::UnsupportedProtocol => (
                        R::ProtocolNotSupported,
                        "Network protocol not supported, use (1,2).",
                    ),
                };
                self.say(ctx, code, text);
                return Handled::Done;
            }
        };
        // A `STAT <dir>` listing owns the control connection until its
        // `213` end line; a data transfer lets ABOR, STAT, NOOP, QUIT by.
        let listing_on_control = matches!(
            self.xfer,
            Some(Transfer {
                sink: Sink::Control,
                ..
            })
        );
        let during_transfer = matches!(k, verb::ABOR | verb::QUIT | verb::NOOP)
            || (k == verb::STAT && arg.is_empty());
        if self.xfer.is_some() && (listing_on_control || !during_transfer) {
            return Handled::Wait;
        }
        if self.deferred_since.is_none() {
            self.log_line(line);
        }
        if !matches!(self.login, Login::In(_)) && BEFORE_LOGIN & (1 << k) == 0 {
            self.say(ctx, R::NotLoggedIn, "Please login with USER and PASS.");
            return Handled::Done;
        }
        let was_rnfr = self.rnfr;
        if k != verb::RNTO {
            self.rnfr = false;
        }
        self.dispatch(ctx, k, arg, &typed, was_rnfr)
    }

    #[allow(unused_variables)]
    fn log_line(&self, line: &[u8]) {
        #[cfg(feature = "log")]
        {
            let text = core::str::from_utf8(line).unwrap_or("<not UTF-8>");
            if line
                .get(..5)
                .is_some_and(|v| v.eq_ignore_ascii_case(b"PASS "))
            {
                log::info!("[{}] PASS ****", self.id);
            } else {
                log::info!("[{}] {}", self.id, text);
            }
        }
    }

    fn dispatch<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        k: u8,
        arg: &str,
        t: &Typed,
        was_rnfr: bool,
    ) -> Handled {
        use verb::*;
        match k {
            USER => self.user(ctx, arg),
            PASS => self.pass(ctx, arg),
            ACCT => match self.login {
                Login::In(_) => self.say(ctx, R::Superfluous, "ACCT not needed."),
                _ => self.say(ctx, R::BadSequence, "Login with USER first."),
            },
            QUIT => {
                if self.abort_transfer(ctx.net, ctx.fs) {
                    self.say(ctx, R::TransferAborted, "Transfer aborted.");
                }
                self.say(ctx, R::Closing, "Goodbye.");
                self.closing = true;
            }
            REIN => {
                self.drop_data(ctx.net);
                self.login = Login::Fresh;
                self.cwd.set_root();
                self.ty = TransferType::Ascii;
                self.rest = U64(0);
                self.epsv_all = false;
                self.facts = facts::ALL;
                self.say(ctx, R::ServiceReady, "Service ready for new user.");
            }
            // A bare `CWD` (lftp) goes to the user's root.
            CWD => self.cwd_to(ctx, if arg.is_empty() { "/" } else { arg }),
            CDUP => self.cwd_to(ctx, ".."),
            PWD => {
                self.reply(
                    ctx,
                    R::PathCreated,
                    "\x03 is the current directory.",
                    self.cwd.as_str(),
                    0,
                );
            }
            MKD => self.mkd(ctx, arg),
            RMD => self.simple_write(ctx, arg, Modify::Rmd),
            DELE => self.simple_write(ctx, arg, Modify::Dele),
            RNFR => self.rnfr(ctx, arg),
            RNTO => {
                if was_rnfr {
                    self.rnto(ctx, arg);
                } else {
                    self.say(ctx, R::BadSequence, "RNFR required first.");
                }
            }
            LIST => return self.list(ctx, Format::List, skip_options(arg)),
            NLST => return self.list(ctx, Format::Nlst, skip_options(arg)),
            MLSD => return self.list(ctx, Format::Mlsd, arg),
            MLST => self.mlst(ctx, arg),
            RETR => return self.retr(ctx, arg),
            STOR => return self.store(ctx, arg, StoreKind::Stor),
            APPE => return self.store(ctx, arg, StoreKind::Appe),
            STOU => return self.store(ctx, "", StoreKind::Stou),
            REST => {
                self.rest = t.num;
                self.reply(
                    ctx,
                    R::FileActionPending,
                    "Restarting at \x04. Send STOR or RETR.",
                    "",
                    t.num.0,
                );
            }
            ALLO => self.say(ctx, R::Ok, "ALLO command ok, no allocation needed."),
            TYPE => {
                self.ty = t.ty;
                let name = if t.ty == TransferType::Ascii {
                    "A"
                } else {
                    "I"
                };
                self.reply(ctx, R::Ok, "Type set to \x01.", name, 0);
            }
            STRU => self.say(ctx, R::Ok, "Structure set to F."),
            MODE => self.say(ctx, R::Ok, "Mode set to S."),
            PASV => self.pasv(ctx, false, EpsvArg::Any),
            EPSV if t.epsv == EpsvArg::All => {
                self.epsv_all = true;
                self.say(ctx, R::Ok, "EPSV ALL ok.");
            }
            EPSV => self.pasv(ctx, true, t.epsv),
            PORT => self.port(ctx, t.addr, false),
            EPRT => self.port(ctx, t.addr, true),
            ABOR => self.abor(ctx),
            SYST => self.say(ctx, R::SystemType, "UNIX Type: L8"),
            STAT => return self.stat(ctx, arg),
            HELP => self.help(ctx, arg),
            NOOP => self.say(ctx, R::Ok, "NOOP ok."),
            SITE => self.site(ctx, arg),
            FEAT => self.feat(ctx),
            OPTS => self.opts(ctx, arg),
            SIZE => self.size(ctx, arg),
            MDTM => self.mdtm(ctx, arg),
            CLNT => self.say(ctx, R::Ok, "Noted."),
            _ => self.say(ctx, R::NotImplemented, "Command not implemented."),
        }
        Handled::Done
    }

    // ---- login -------------------------------------------------------------

    fn user<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        name: &str,
    ) {
        self.abort_transfer(ctx.net, ctx.fs);
        let cfg = ctx.config;
        let anon = (eq_ic(name.as_bytes(), b"anonymous") || eq_ic(name.as_bytes(), b"ftp"))
            && cfg.anonymous_root.is_some();
        let who = if anon {
            Some(Who::Anonymous)
        } else {
            cfg.accounts
                .iter()
                .position(|a| a.user == name)
                .and_then(|i| u8::try_from(i).ok())
                .map(Who::Account)
        };
        self.login = Login::User(who);
        self.cwd.set_root();
        self.say(ctx, R::NeedPassword, "Please specify the password.");
    }

    fn pass<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        pass: &str,
    ) {
        let Login::User(who) = self.login else {
            match self.login {
                Login::In(_) => self.say(ctx, R::LoggedIn, "Already logged in."),
                _ => self.say(ctx, R::BadSequence, "Login with USER first."),
            }
            return;
        };
        let ok = match who {
            Some(Who::Anonymous) => true,
            Some(Who::Account(i)) => ctx
                .config
                .accounts
                .get(usize::from(i))
                .is_some_and(|a| eq_ct(a.pass, pass)),
            None => false,
        };
        match (ok, who) {
            (true, Some(who)) => {
                self.login = Login::In(who);
                self.failures = 0;
                crate::event!("[{}] logged in", self.id);
                self.say(ctx, R::LoggedIn, "Login successful.");
            }
            _ => {
                crate::event!("[{}] login failed", self.id);
                self.hold = Hold::LoginDelay(ctx.now.after(ctx.config.login_fail_delay_ms));
            }
        }
    }

    // ---- paths -------------------------------------------------------------

    /// Resolves a client path to (virtual, storage) paths, or answers `553`.
    fn resolve<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
    ) -> Option<(PathBuf, PathBuf)> {
        let root = self.root(ctx.config);
        let v = path::resolve(&self.cwd, arg).ok();
        let s = v.as_ref().and_then(|v| path::to_storage(root, v).ok());
        match (v, s) {
            (Some(v), Some(s)) => Some((v, s)),
            _ => {
                self.say(ctx, R::NameNotAllowed, "Path too long.");
                None
            }
        }
    }

    fn fail<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        e: storage::Error,
    ) {
        self.reply(ctx, storage_reply(e, false), "\x01.", e.text(), 0);
    }

    fn deny<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
    ) -> bool {
        if self.writable(ctx.config) {
            return false;
        }
        self.say(ctx, R::FileUnavailable, "Permission denied.");
        true
    }

    /// The (virtual, storage) paths of a command that changes the tree:
    /// read-only logins get `550`, unusable paths `553`, and the root itself
    /// `root_error` (it can be neither created, removed nor renamed).
    fn target_for_change<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
        root_error: storage::Error,
    ) -> Option<(PathBuf, PathBuf)> {
        if self.deny(ctx) {
            return None;
        }
        let (v, s) = self.resolve(ctx, arg)?;
        if v.is_root() {
            self.fail(ctx, root_error);
            return None;
        }
        Some((v, s))
    }

    fn cwd_to<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
    ) {
        let Some((v, s)) = self.resolve(ctx, arg) else {
            return;
        };
        match ctx.fs.metadata(s.as_str()) {
            Ok(m) if m.kind == Kind::Dir => {
                self.cwd = v;
                self.reply(
                    ctx,
                    R::FileActionOk,
                    "Directory changed to \x01.",
                    self.cwd.as_str(),
                    0,
                );
            }
            Ok(_) => self.fail(ctx, storage::Error::NotADirectory),
            Err(e) => self.fail(ctx, e),
        }
    }

    fn mkd<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
    ) {
        let Some((v, s)) = self.target_for_change(ctx, arg, storage::Error::AlreadyExists) else {
            return;
        };
        match ctx.fs.mkdir(s.as_str()) {
            Ok(()) => self.reply(ctx, R::PathCreated, "\x03 created.", v.as_str(), 0),
            Err(e) => self.fail(ctx, e),
        }
    }

    fn simple_write<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
        what: Modify,
    ) {
        let Some((v, s)) = self.target_for_change(ctx, arg, storage::Error::PermissionDenied)
        else {
            return;
        };
        let r = match what {
            Modify::Rmd => ctx.fs.rmdir(s.as_str()),
            Modify::Dele => ctx.fs.remove(s.as_str()),
        };
        match r {
            Ok(()) => {
                // Leaving a directory that no longer exists would strand the
                // session: RMD of the working directory moves to its parent.
                if what == Modify::Rmd && is_within(&self.cwd, &v) {
                    self.cwd = v;
                    self.cwd.pop();
                }
                let text = if what == Modify::Rmd {
                    "Directory removed."
                } else {
                    "File deleted."
                };
                self.say(ctx, R::FileActionOk, text);
            }
            Err(e) => self.fail(ctx, e),
        }
    }

    fn rnfr<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
    ) {
        let Some((v, s)) = self.target_for_change(ctx, arg, storage::Error::PermissionDenied)
        else {
            return;
        };
        match ctx.fs.metadata(s.as_str()) {
            Ok(_) => {
                self.aux = v;
                self.rnfr = true;
                self.say(ctx, R::FileActionPending, "Ready for RNTO.");
            }
            Err(e) => self.fail(ctx, e),
        }
    }

    fn rnto<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
    ) {
        let Some((v, to)) = self.target_for_change(ctx, arg, storage::Error::AlreadyExists) else {
            return;
        };
        let root = self.root(ctx.config);
        let Ok(from) = path::to_storage(root, &self.aux) else {
            return self.fail(ctx, storage::Error::NameTooLong);
        };
        // A directory cannot move into itself.
        if is_within(&v, &self.aux) {
            return self.fail(ctx, storage::Error::PermissionDenied);
        }
        match ctx.fs.rename(from.as_str(), to.as_str()) {
            Ok(()) => self.say(ctx, R::FileActionOk, "Rename successful."),
            Err(e) => self.fail(ctx, e),
        }
    }

    fn size<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
    ) {
        let Some((_, s)) = self.resolve(ctx, arg) else {
            return;
        };
        match ctx.fs.metadata(s.as_str()) {
            Ok(m) if m.kind == Kind::File => self.reply(ctx, R::FileStatus, "\x04", "", m.size),
            Ok(_) => self.say(ctx, R::FileUnavailable, "Not a regular file."),
            Err(e) => self.fail(ctx, e),
        }
    }

    fn mdtm<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
    ) {
        let Some((_, s)) = self.resolve(ctx, arg) else {
            return;
        };
        match ctx.fs.metadata(s.as_str()) {
            Ok(m) if m.kind == Kind::File => match m.modified {
                Some(t) => self.send(ctx, |w| {
                    list::write_timeval(w.begin(R::FileStatus), &t);
                    w.end()
                }),
                None => self.say(ctx, R::FileUnavailable, "Modification time unknown."),
            },
            Ok(_) => self.say(ctx, R::FileUnavailable, "Not a regular file."),
            Err(e) => self.fail(ctx, e),
        }
    }

    fn mlst<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
    ) {
        let Some((v, s)) = self.resolve(ctx, arg) else {
            return;
        };
        match ctx.fs.metadata(s.as_str()) {
            Ok(m) => {
                let (writable, mask) = (self.writable(ctx.config), self.facts);
                self.send(ctx, |w| {
                    w.begin_first(R::FileActionOk)
                        .text("Listing ")
                        .text(v.as_str())
                        .end();
                    w.begin_cont();
                    list::write_facts(w, &m, writable, mask);
                    w.text(v.as_str()).end();
                    w.last(R::FileActionOk, "End.");
                });
            }
            Err(e) => self.fail(ctx, e),
        }
    }

    // ---- information ---------------------------------------------------------

    fn feat<N: Net<Socket = K>, S: Storage<File = F>>(&mut self, ctx: &mut Ctx<'_, '_, N, S>) {
        let mask = self.facts;
        self.send(ctx, |w| {
            // Short enough never to be cut: whole lines as they go out.
            w.first(R::SystemStatus, "Features:");
            w.raw(b" EPRT\r\n EPSV\r\n MDTM\r\n MLST ");
            for (name, bit) in facts::NAMES {
                w.text(name).text(if mask & bit != 0 { "*;" } else { ";" });
            }
            w.raw(b"\r\n PASV\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n");
            w.last(R::SystemStatus, "End");
        });
    }

    fn opts<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
    ) {
        let (name, value) = split_word(arg.as_bytes());
        if eq_ic(name, b"UTF8") || eq_ic(name, b"UTF-8") {
            let value = trim_bytes(value);
            if eq_ic(value, b"ON") || value.is_empty() {
                self.say(ctx, R::Ok, "UTF8 mode is always on.");
            } else {
                self.say(
                    ctx,
                    R::ParameterNotImplemented,
                    "UTF8 cannot be turned off.",
                );
            }
        } else if eq_ic(name, b"MLST") {
            let mut mask = 0;
            for f in value.split(|&c| c == b';') {
                for (n, bit) in facts::NAMES {
                    if eq_ic(trim_bytes(f), n.as_bytes()) {
                        mask |= bit;
                    }
                }
            }
            self.facts = mask;
            self.send(ctx, |w| {
                w.begin(R::Ok).text("MLST OPTS ");
                for (name, bit) in facts::NAMES {
                    if mask & bit != 0 {
                        w.text(name).text(";");
                    }
                }
                w.end()
            });
        } else {
            self.say(ctx, R::ArgumentSyntaxError, "Option not understood.");
        }
    }

    fn help<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
    ) {
        let arg = trim(arg);
        if !arg.is_empty() {
            if verb::implemented().any(|c| eq_ic(c, arg.as_bytes())) {
                self.reply(ctx, R::Help, "\x02 is supported.", arg, 0);
            } else if arg.bytes().any(|b| b < 0x20 || b == 0x7f) {
                // Never echo control characters (a terminal escape in a
                // reply line): found by the network fuzzer.
                self.say(ctx, R::NotImplemented, "Unknown command.");
            } else {
                self.reply(ctx, R::NotImplemented, "Unknown command \x02.", arg, 0);
            }
            return;
        }
        self.send(ctx, |w| {
            // Short enough never to be cut: whole lines as they go out,
            // twelve verbs a line.
            w.first(R::Help, "The following commands are recognized:");
            for (i, c) in verb::implemented().enumerate() {
                w.raw(b" ").raw(c);
                if i % 12 == 11 {
                    w.raw(b"\r\n");
                }
            }
            w.raw(b"\r\n");
            w.last(R::Help, "Help OK.");
        });
    }

    fn site<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
    ) {
        if eq_ic(split_word(arg.as_bytes()).0, b"HELP") {
            self.send(ctx, |w| {
                w.first(R::Help, "SITE commands:");
                w.cont("HELP");
                w.last(R::Help, "End.");
            });
        } else {
            self.say(ctx, R::ParameterNotImplemented, "Unknown SITE command.");
        }
    }

    fn stat<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
    ) -> Handled {
        if let Some(t) = &self.xfer {
            let bytes = t.bytes;
            self.reply(
                ctx,
                R::SystemStatus,
                "Transfer in progress: \x04 bytes so far.",
                "",
                bytes.0,
            );
            return Handled::Done;
        }
        if arg.is_empty() {
            let (peer, ty) = (
                self.peer.ip(),
                if self.ty == TransferType::Ascii {
                    "ASCII"
                } else {
                    "BINARY"
                },
            );
            let (open, max) = (ctx.sessions_open, ctx.config.max_sessions);
            let files = ctx.fs.open_files();
            let user = match self.account(ctx.config) {
                Some((_, Some(a))) => a.user,
                Some((Who::Anonymous, _)) => "anonymous",
                _ => "(not logged in)",
            };
            self.send(ctx, |w| {
                w.first(R::SystemStatus, "FTP server status:");
                w.begin_cont().text("Connected to ").ip(peer).end();
                w.begin_cont().fill("Logged in as \x01", user, 0).end();
                w.begin_cont()
                    .fill("TYPE: \x01, STRUcture: File, MODE: Stream", ty, 0)
                    .end();
                w.begin_cont()
                    .fill("Sessions: \x04 of ", "", open as u64)
                    .num(max as u64)
                    .end();
                w.begin_cont()
                    .fill("Open files: \x04", "", files as u64)
                    .end();
                w.last(R::SystemStatus, "End of status.");
            });
            return Handled::Done;
        }
        let Some((v, s)) = self.resolve(ctx, skip_options(arg)) else {
            return Handled::Done;
        };
        match ctx.fs.metadata(s.as_str()) {
            Ok(m) if m.kind == Kind::Dir => {
                self.send(ctx, |w| {
                    w.begin_first(R::FileStatus)
                        .fill("Status of \x01:", v.as_str(), 0)
                        .end()
                });
                self.aux = s;
                self.xfer = Some(Transfer {
                    op: Op::List {
                        format: Format::List,
                        index: 0,
                    },
                    sink: Sink::Control,
                    draining: false,
                    bytes: U64(0),
                    last_progress: ctx.now,
                });
            }
            Ok(m) => {
                let (writable, utc) = (self.writable(ctx.config), ctx.utc.copied());
                let name = v.file_name();
                self.send(ctx, |w| {
                    w.begin_first(R::FileStatus)
                        .fill("Status of \x01:", v.as_str(), 0)
                        .end();
                    w.begin_cont();
                    // Its CRLF is dropped as text; `end` ends the line.
                    let start = w.len();
                    list::write_list_line(w, name, &m, writable, utc.as_ref());
                    w.drop_crlf_from(start);
                    w.end();
                    w.last(R::FileStatus, "End of status.");
                });
            }
            Err(e) => self.fail(ctx, e),
        }
        Handled::Done
    }

    // ---- data connections ------------------------------------------------------

    fn pasv<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        extended: bool,
        family: EpsvArg,
    ) {
        if self.epsv_all && !extended {
            return self.say(ctx, R::BadSequence, "EPSV ALL in effect, use EPSV.");
        }
        let local_ip = canonical(self.local.ip());
        let wrong = match family {
            EpsvArg::V4 => !local_ip.is_ipv4(),
            EpsvArg::V6 => !local_ip.is_ipv6(),
            _ => false,
        };
        if wrong {
            let use_ = if local_ip.is_ipv4() { 1 } else { 2 };
            return self.reply(ctx, R::ProtocolNotSupported, USE_FAMILY, "", use_);
        }
        let advertised = match (extended, local_ip) {
            (true, _) => None,
            (false, IpAddr::V4(ip)) => Some(ctx.config.pasv_address.unwrap_or(ip)),
            (false, IpAddr::V6(_)) => {
                return self.say(
                    ctx,
                    R::CantOpenDataConnection,
                    "PASV is IPv4 only; use EPSV.",
                );
            }
        };
        self.drop_data(ctx.net);
        let (a, b) = ctx.config.pasv_ports;
        let (lo, hi) = (a.min(b), a.max(b));
        let span = u32::from(hi.saturating_sub(lo)) + 1;
        let mut result = Err(NetError::Exhausted);
        for _ in 0..span {
            let port = *ctx.next_port;
            *ctx.next_port = if port >= hi || port < lo {
                lo
            } else {
                port + 1
            };
            let port = port.clamp(lo, hi);
            result = ctx
                .net
                .listen(SocketAddr::new(self.local.ip(), port))
                .map(|s| (s, port));
            if !matches!(result, Err(NetError::AddrInUse)) {
                break;
            }
        }
        match (result, advertised) {
            (Ok((s, port)), Some(ip)) => {
                self.data = Data::Listening(s);
                let [a, b, c, d] = ip.octets();
                let [p1, p2] = port.to_be_bytes();
                self.send(ctx, |w| {
                    w.begin(R::PassiveMode)
                        .text("Entering Passive Mode (")
                        .decimals(&[a, b, c, d, p1, p2], b',')
                        .text(").")
                        .end()
                });
            }
            (Ok((s, port)), None) => {
                self.data = Data::Listening(s);
                self.reply(
                    ctx,
                    R::ExtendedPassiveMode,
                    "Entering Extended Passive Mode (|||\x04|).",
                    "",
                    u64::from(port),
                );
            }
            (Err(_), _) => {
                self.say(
                    ctx,
                    R::CantOpenDataConnection,
                    "No data connection available, try later.",
                );
            }
        }
    }

    fn port<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        addr: SocketAddr,
        extended: bool,
    ) {
        if self.epsv_all {
            return self.say(ctx, R::BadSequence, "EPSV ALL in effect, use EPSV.");
        }
        let peer = canonical(self.peer.ip());
        let target = canonical(addr.ip());
        if peer.is_ipv4() != target.is_ipv4() {
            let use_ = if peer.is_ipv4() { 1 } else { 2 };
            let code = if extended {
                R::ProtocolNotSupported
            } else {
                R::ParameterNotImplemented
            };
            return self.reply(ctx, code, USE_FAMILY, "", use_);
        }
        // RFC 2577 §3: no bounce to third parties, no privileged ports.
        if target != peer || addr.port() < 1024 {
            crate::event!("[{}] refused active connection to {}", self.id, addr);
            return self.say(
                ctx,
                R::ParameterNotImplemented,
                "Data connections only to your own address and a port above 1023.",
            );
        }
        self.drop_data(ctx.net);
        match ctx.net.connect(self.local.ip(), addr) {
            Ok(s) => {
                self.data = Data::Connecting(s);
                let verb = if extended { "EPRT" } else { "PORT" };
                self.reply(ctx, R::Ok, "\x01 command successful.", verb, 0);
            }
            Err(_) => self.say(
                ctx,
                R::CantOpenDataConnection,
                "Cannot open data connection.",
            ),
        }
    }

    /// The established data connection for a transfer command, or whether
    /// to wait for one (`None` after answering `425`).
    fn data_for_transfer<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
    ) -> Result<Option<K>, ()> {
        match self.data {
            Data::Ready(s) => {
                self.data = Data::None;
                Ok(Some(s))
            }
            Data::Listening(_) | Data::Connecting(_) => {
                let since = self.deferred_since.unwrap_or(ctx.now);
                if ctx.now >= since.after(ctx.config.data_timeout_ms) {
                    self.drop_data(ctx.net);
                    self.say(ctx, R::CantOpenDataConnection, "Data connection timed out.");
                    Ok(None)
                } else {
                    Err(())
                }
            }
            Data::None => {
                self.say(
                    ctx,
                    R::CantOpenDataConnection,
                    "Use PORT, PASV, EPRT or EPSV first.",
                );
                Ok(None)
            }
        }
    }

    fn start(&mut self, op: Op<F>, sock: K, now: Instant) {
        self.xfer = Some(Transfer {
            op,
            sink: Sink::Data(sock),
            draining: false,
            bytes: U64(0),
            last_progress: now,
        });
    }

    fn retr<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
    ) -> Handled {
        let Some((v, s)) = self.resolve(ctx, arg) else {
            return Handled::Done;
        };
        match ctx.fs.metadata(s.as_str()) {
            Ok(m) if m.kind == Kind::Dir => {
                self.rest = U64(0);
                self.fail(ctx, storage::Error::IsADirectory);
                return Handled::Done;
            }
            Ok(_) => {}
            Err(e) => {
                self.rest = U64(0);
                self.fail(ctx, e);
                return Handled::Done;
            }
        }
        let sock = match self.data_for_transfer(ctx) {
            Err(()) => return Handled::Wait,
            Ok(None) => return Handled::Done,
            Ok(Some(sock)) => sock,
        };
        let offset = core::mem::take(&mut self.rest);
        match ctx.fs.open_read(s.as_str(), offset.0) {
            Ok(file) => {
                let size = ctx.fs.metadata(s.as_str()).map(|m| m.size).unwrap_or(0);
                let mode = if self.ty == TransferType::Ascii {
                    "ASCII"
                } else {
                    "BINARY"
                };
                self.send(ctx, |w| {
                    w.begin(R::FileStatusOk)
                        .fill("Opening \x01 mode data connection for ", mode, 0)
                        .fill("\x01 (\x04 bytes).", v.file_name(), size)
                        .end()
                });
                let ascii = self.ty == TransferType::Ascii;
                self.start(
                    Op::Retr {
                        file,
                        ascii,
                        cr: false,
                    },
                    sock,
                    ctx.now,
                );
            }
            Err(e) => {
                ctx.net.abort(sock);
                self.fail(ctx, e);
            }
        }
        Handled::Done
    }

    fn store<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
        kind: StoreKind,
    ) -> Handled {
        if self.deny(ctx) {
            self.rest = U64(0);
            return Handled::Done;
        }
        // STOU picks a name that does not exist yet.
        let mut unique = PathBuf::root();
        let arg = if kind == StoreKind::Stou {
            let mut found = false;
            for n in 0..1000u32 {
                let mut name = [0u8; 12];
                let name = fmt_name(&mut name, n);
                let Ok(v) = path::resolve(&self.cwd, name) else {
                    break;
                };
                let Ok(s) = path::to_storage(self.root(ctx.config), &v) else {
                    break;
                };
                if ctx.fs.metadata(s.as_str()) == Err(storage::Error::NotFound) {
                    unique = v;
                    found = true;
                    break;
                }
            }
            if !found {
                self.say(ctx, R::NameNotAllowed, "Cannot find a unique name.");
                return Handled::Done;
            }
            unique.as_str()
        } else {
            arg
        };
        let Some((v, s)) = self.resolve(ctx, arg) else {
            return Handled::Done;
        };
        if v.is_root() {
            self.fail(ctx, storage::Error::IsADirectory);
            return Handled::Done;
        }
        if let Ok(m) = ctx.fs.metadata(s.as_str()) {
            if m.kind == Kind::Dir {
                self.rest = U64(0);
                self.fail(ctx, storage::Error::IsADirectory);
                return Handled::Done;
            }
        }
        let sock = match self.data_for_transfer(ctx) {
            Err(()) => return Handled::Wait,
            Ok(None) => return Handled::Done,
            Ok(Some(sock)) => sock,
        };
        let rest = core::mem::take(&mut self.rest);
        let mode = match kind {
            StoreKind::Stor if rest.0 > 0 => WriteMode::At(rest.0),
            StoreKind::Stor => WriteMode::Truncate,
            StoreKind::Appe => WriteMode::Append,
            StoreKind::Stou => WriteMode::CreateNew,
        };
        match ctx.fs.open_write(s.as_str(), mode) {
            Ok(file) => {
                crate::event!("[{}] storing {} ({:?})", self.id, v, mode);
                if kind == StoreKind::Stou {
                    self.reply(ctx, R::FileStatusOk, "FILE: \x01", v.file_name(), 0);
                } else {
                    self.say(ctx, R::FileStatusOk, "Ok to send data.");
                }
                let ascii = self.ty == TransferType::Ascii;
                self.start(
                    Op::Stor {
                        file,
                        ascii,
                        cr: false,
                    },
                    sock,
                    ctx.now,
                );
            }
            Err(e) => {
                ctx.net.abort(sock);
                self.fail(ctx, e);
            }
        }
        Handled::Done
    }

    fn list<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        format: Format,
        arg: &str,
    ) -> Handled {
        self.rest = U64(0);
        let Some((v, s)) = self.resolve(ctx, arg) else {
            return Handled::Done;
        };
        let meta = match ctx.fs.metadata(s.as_str()) {
            Ok(m) => m,
            Err(e) => {
                self.fail(ctx, e);
                return Handled::Done;
            }
        };
        if meta.kind == Kind::File && format == Format::Mlsd {
            // RFC 3659 §7.1: MLSD names a directory; MLST is for files.
            self.say(
                ctx,
                R::ArgumentSyntaxError,
                "Not a directory; use MLST for a file.",
            );
            return Handled::Done;
        }
        let sock = match self.data_for_transfer(ctx) {
            Err(()) => return Handled::Wait,
            Ok(None) => return Handled::Done,
            Ok(Some(sock)) => sock,
        };
        self.say(ctx, R::FileStatusOk, "Here comes the directory listing.");
        if meta.kind == Kind::File {
            // A listing of one file (FAR checks existence with `LIST path`).
            let mut w = Writer::new(&mut ctx.data[..]);
            let (writable, utc) = (self.writable(ctx.config), ctx.utc);
            let name = if format == Format::Nlst {
                arg
            } else {
                v.file_name()
            };
            list::write_entry(&mut w, format, name, &meta, writable, utc, self.facts);
            let n = w.len();
            let _ = ctx.net.send(sock, &ctx.data[..n]);
            self.xfer = Some(Transfer {
                op: Op::List {
                    format,
                    index: usize::MAX,
                },
                sink: Sink::Data(sock),
                draining: true,
                bytes: U64(n as u64),
                last_progress: ctx.now,
            });
        } else {
            self.aux = s;
            self.start(Op::List { format, index: 0 }, sock, ctx.now);
        }
        Handled::Done
    }

    fn abor<N: Net<Socket = K>, S: Storage<File = F>>(&mut self, ctx: &mut Ctx<'_, '_, N, S>) {
        self.drop_data(ctx.net);
        if self.abort_transfer(ctx.net, ctx.fs) {
            self.send(ctx, |w| {
                w.line(R::TransferAborted, "Transfer aborted.");
                w.line(R::TransferComplete, "ABOR successful.");
            });
        } else {
            self.say(ctx, R::DataOpenNoTransfer, "No transfer to abort.");
        }
    }

    // ---- moving data -----------------------------------------------------------

    /// Ends a transfer with an error reply (the file is closed, so what an
    /// upload received so far is kept and can be resumed with REST).
    fn fail_transfer<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        code: R,
        text: &'static str,
    ) {
        if let Some((bytes, control)) = self
            .xfer
            .as_ref()
            .map(|t| (t.bytes, t.sink == Sink::Control))
        {
            // A STAT listing goes out as a multi-line 213 reply: only a
            // line with that code may end it (RFC 959 4.2), whatever cut
            // it short.
            let code = if control { R::FileStatus } else { code };
            self.abort_transfer(ctx.net, ctx.fs);
            crate::event!(
                "[{}] transfer failed after {} bytes: {}",
                self.id,
                { bytes.0 },
                text
            );
            if self.room(ctx.net) {
                self.reply(ctx, code, TRANSFERRED, text, bytes.0);
            } else {
                // The client is not reading its replies: say it when it does.
                self.owed = Some((code, text, bytes));
            }
        }
    }

    #[inline(never)]
    fn finish_transfer<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
    ) {
        let Some(t) = self.xfer.take() else { return };
        let (bytes, control) = (t.bytes, t.sink == Sink::Control);
        let stor = matches!(t.op, Op::Stor { .. });
        match Self::drop_transfer(t, ctx.net, ctx.fs, false) {
            Ok(()) if control => self.say(ctx, R::FileStatus, "End of status."),
            Ok(()) => {
                crate::event!("[{}] transfer complete, {} bytes", self.id, { bytes.0 });
                self.reply(
                    ctx,
                    R::TransferComplete,
                    "Transfer complete (\x04 bytes).",
                    "",
                    bytes.0,
                );
            }
            Err(e) => {
                crate::event!("[{}] closing the file failed: {}", self.id, e);
                let code = storage_reply(e, stor);
                self.reply(ctx, code, "\x01; transfer failed.", e.text(), 0);
            }
        }
    }

    /// Moves one buffer of the running transfer.
    #[inline(never)]
    fn step_transfer<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
    ) -> bool {
        let Some(t) = self.xfer.as_mut() else {
            return false;
        };
        let sock = match t.sink {
            Sink::Data(s) => s,
            Sink::Control => self.ctrl,
        };
        if t.draining {
            let done = match t.sink {
                Sink::Data(s) => ctx.net.send_drained(s) || ctx.net.state(s) == SockState::Closed,
                Sink::Control => true,
            };
            if done && self.room(ctx.net) {
                self.finish_transfer(ctx);
                return true;
            }
            return false;
        }
        let state = ctx.net.state(sock);
        let is_stor = matches!(t.op, Op::Stor { .. });
        if state == SockState::Closed && !is_stor {
            self.fail_transfer(
                ctx,
                R::TransferAborted,
                "Data connection closed; transfer aborted.",
            );
            return true;
        }
        let Some(t) = self.xfer.as_mut() else {
            return false;
        };
        let writable = matches!(self.login, Login::In(Who::Account(i))
            if ctx.config.accounts.get(usize::from(i)).is_some_and(|a| a.writable));
        let result = match &mut t.op {
            Op::Retr { file, ascii, cr } => {
                let cap = ctx.net.send_capacity(sock).min(ctx.data.len());
                if cap < 2 {
                    return false;
                }
                // TYPE A reads into the upper half and widens into the
                // lower one; TYPE I reads and sends in place.
                let half = if *ascii { ctx.data.len() / 2 } else { 0 };
                let (dst, src) = ctx.data.split_at_mut(half);
                let want = if *ascii {
                    (cap / 2).min(src.len()).min(half / 2)
                } else {
                    cap
                };
                match ctx.fs.read(file, &mut src[..want]) {
                    Ok(0) => Ok(Progress::End),
                    Ok(n) => {
                        let out = if *ascii {
                            let m = to_crlf(&src[..n], dst, cr);
                            &dst[..m]
                        } else {
                            &src[..n]
                        };
                        send_all(ctx.net, sock, out).map(|()| Progress::Moved(out.len()))
                    }
                    Err(e) => Err(Failure::Storage(e)),
                }
            }
            Op::Stor { file, ascii, cr } => 'stor: {
                // 0: the client closed the data connection, the upload is
                // complete.
                let n = match ctx.net.recv(sock, ctx.data) {
                    Ok(0) => return false,
                    Ok(n) => n,
                    Err(NetError::Closed) => 0,
                    Err(_) => break 'stor Err(Failure::Net),
                };
                // A CR that ended the previous chunk is data unless this
                // one starts with LF (or, at the very end, alone).
                let mut r = Ok(());
                if *ascii && core::mem::take(cr) && (n == 0 || ctx.data[0] != b'\n') {
                    r = ctx.fs.write(file, b"\r");
                }
                if n > 0 {
                    let m = if *ascii {
                        from_crlf(&mut ctx.data[..n], cr)
                    } else {
                        n
                    };
                    r = r.and_then(|()| ctx.fs.write(file, &ctx.data[..m]));
                }
                match r {
                    Ok(()) if n == 0 => Ok(Progress::End),
                    Ok(()) => Ok(Progress::Moved(n)),
                    Err(e) => Err(Failure::Storage(e)),
                }
            }
            Op::List { format, index } => {
                let (format, start) = (*format, *index);
                let cap = ctx.net.send_capacity(sock).min(ctx.data.len());
                let indent = t.sink == Sink::Control;
                if cap < crate::MAX_LINE.min(ctx.data.len()) {
                    return false;
                }
                let mut w = Writer::new(&mut ctx.data[..cap]);
                let (mut count, mut full) = (0usize, false);
                let (utc, mask) = (ctx.utc, self.facts);
                let r = ctx.fs.list(self.aux.as_str(), start, &mut |e| {
                    let before = w.len();
                    if indent {
                        w.raw(b" ");
                    }
                    list::write_entry(&mut w, format, e.name, &e.meta, writable, utc, mask);
                    let ok = !w.overflowed();
                    if ok {
                        count += 1;
                    } else {
                        w.truncate(before);
                        full = true;
                    }
                    ok
                });
                let n = w.len();
                match r {
                    Err(e) => Err(Failure::Storage(e)),
                    Ok(()) => {
                        if let Op::List { index, .. } = &mut t.op {
                            *index = start + count;
                        }
                        let sent = if n > 0 {
                            send_all(ctx.net, sock, &ctx.data[..n])
                        } else {
                            Ok(())
                        };
                        match (sent, full) {
                            (Err(f), _) => Err(f),
                            (Ok(()), true) => Ok(Progress::Moved(n)),
                            (Ok(()), false) => {
                                t.bytes.0 += n as u64;
                                Ok(Progress::End)
                            }
                        }
                    }
                }
            }
        };
        let Some(t) = self.xfer.as_mut() else {
            return true;
        };
        match result {
            Ok(Progress::Moved(n)) => {
                t.bytes.0 += n as u64;
                t.last_progress = ctx.now;
                true
            }
            Ok(Progress::End) => {
                t.draining = true;
                t.last_progress = ctx.now;
                true
            }
            Err(Failure::Net) => {
                self.fail_transfer(
                    ctx,
                    R::TransferAborted,
                    "Data connection lost; transfer aborted.",
                );
                true
            }
            Err(Failure::Storage(e)) => {
                let code = storage_reply(e, true);
                let text = match e {
                    storage::Error::NoSpace => "No space left on device; partial file kept.",
                    _ => "Storage error; transfer aborted.",
                };
                self.fail_transfer(ctx, code, text);
                true
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Modify {
    Rmd,
    Dele,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreKind {
    Stor,
    Appe,
    Stou,
}

enum Progress {
    Moved(usize),
    End,
}

enum Failure {
    Net,
    Storage(storage::Error),
}

fn send_all<N: Net>(net: &mut N, s: N::Socket, data: &[u8]) -> Result<(), Failure> {
    match net.send(s, data) {
        Ok(n) if n == data.len() => Ok(()),
        _ => Err(Failure::Net),
    }
}

/// LF to CRLF (TYPE A on the way out). `cr` remembers a CR that ended the
/// previous chunk, so an existing CRLF is not doubled. `dst` must hold
/// twice `src`.
fn to_crlf(src: &[u8], dst: &mut [u8], cr: &mut bool) -> usize {
    let mut n = 0;
    for &b in src {
        if b == b'\n' && !*cr {
            dst[n] = b'\r';
            n += 1;
        }
        dst[n] = b;
        n += 1;
        *cr = b == b'\r';
    }
    n
}

/// CRLF to LF in place (TYPE A on the way in). A CR that ends the chunk
/// is dropped from the output and remembered in `cr`; the caller writes it
/// out if the next chunk does not start with LF.
fn from_crlf(buf: &mut [u8], cr: &mut bool) -> usize {
    let mut out = 0;
    let len = buf.len();
    for i in 0..len {
        let b = buf[i];
        if b == b'\r' {
            if i + 1 == len {
                *cr = true;
                continue;
            }
            if buf[i + 1] == b'\n' {
                continue;
            }
        }
        buf[out] = b;
        out += 1;
    }
    out
}

/// True when `p` is `dir` or lies below it.
fn is_within(p: &PathBuf, dir: &PathBuf) -> bool {
    let (p, d) = (p.as_str(), dir.as_str());
    p == d || (p.starts_with(d) && (d == "/" || p.as_bytes().get(d.len()) == Some(&b'/')))
}

/// `LIST -la path` and friends: option words are skipped (wget, FAR,
/// Chrome send them; RFC 959 LIST takes only a path).
fn skip_options(arg: &str) -> &str {
    let mut rest = trim_start(arg);
    while rest.starts_with('-') {
        let sp = rest.bytes().position(|c| c == b' ');
        rest = sp.map_or("", |i| trim_start(rest.get(i + 1..).unwrap_or("")));
    }
    rest
}

/// `stou0001.bin` style names for STOU (8.3-safe).
fn fmt_name(buf: &mut [u8; 12], n: u32) -> &str {
    buf.copy_from_slice(b"stou0000.bin");
    let mut v = n;
    for i in (4..8).rev() {
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    core::str::from_utf8(buf).unwrap_or("stou.bin")
}

/// Constant-time comparison, so a password cannot be guessed byte by byte
/// from reply timing.
fn eq_ct(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff));
    }
    diff == 0
}

#[cfg(test)]
mod tests;
