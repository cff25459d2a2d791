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

use core::net::{Ipv4Addr, SocketAddr};

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

/// Declares [`Msg`]: one variant per fixed reply, with its code and text.
macro_rules! messages {
    ($($name:ident = $code:ident $text:literal,)*) => {
        /// Every one-line reply of a session: fixed texts, and templates
        /// with markers for one text and one number (see `Writer::fill`).
        /// A call site passes one byte; [`Msg::code`] and [`Msg::text`]
        /// look the rest up in two tables: the codes, and the texts as one
        /// literal, each ended by a NUL (no table of pointers and lengths).
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        #[repr(u8)]
        enum Msg {
            $(#[doc = $text] $name,)*
        }

        impl Msg {
            const CODES: &[R] = &[$(R::$code,)*];
            const TEXTS: &str = concat!($($text, "\0",)*);
        }
    };
}

messages! {
    // Login and the session itself.
    PleaseLogin = NotLoggedIn "Please login with USER and PASS.",
    NeedPassword = NeedPassword "Please specify the password.",
    LoginOk = LoggedIn "Login successful.",
    AlreadyIn = LoggedIn "Already logged in.",
    UserFirst = BadSequence "Login with USER first.",
    LoginIncorrect = NotLoggedIn "Login incorrect.",
    TooManyFailures = ServiceNotAvailable "Too many failed logins, closing.",
    AcctNotNeeded = Superfluous "ACCT not needed.",
    Reinitialized = ServiceReady "Service ready for new user.",
    Goodbye = Closing "Goodbye.",
    IdleTimeout = ServiceNotAvailable "Timeout: closing control connection.",
    // Bad command lines.
    LineTooLong = SyntaxError "Command line too long.",
    UnknownCommand = SyntaxError "Unknown command.",
    BadBytes = SyntaxError "Invalid characters.",
    MissingArgument = ArgumentSyntaxError "Missing argument.",
    UnexpectedArgument = ArgumentSyntaxError "No argument allowed.",
    BadArgument = ArgumentSyntaxError "Invalid argument.",
    UnsupportedParameter = ParameterNotImplemented "Parameter not supported.",
    UnsupportedProtocol = ProtocolNotSupported "Network protocol not supported, use (1,2).",
    // `522` (`504` for PORT) with the family to use.
    UseFamily = ProtocolNotSupported "Network protocol not supported, use (\x04).",
    UseFamilyPort = ParameterNotImplemented "Network protocol not supported, use (\x04).",
    NotImplemented = NotImplemented "Command not implemented.",
    // Simple commands.
    NoAllocation = Ok "No allocation needed.",
    TypeA = Ok "Type set to A.",
    TypeI = Ok "Type set to I.",
    StruF = Ok "Structure set to F.",
    ModeS = Ok "Mode set to S.",
    System = SystemType "UNIX Type: L8",
    Noop = Ok "NOOP ok.",
    Noted = Ok "Noted.",
    Utf8On = Ok "UTF8 mode is always on.",
    Utf8Off = ParameterNotImplemented "UTF8 cannot be turned off.",
    BadOption = ArgumentSyntaxError "Option not understood.",
    UnknownSite = ParameterNotImplemented "Unknown SITE command.",
    HelpSupported = Help "\x02 is supported.",
    HelpUnknown = NotImplemented "Unknown command.",
    HelpUnknownNamed = NotImplemented "Unknown command \x02.",
    StatTransfer = SystemStatus "Transfer in progress: \x04 bytes so far.",
    // Paths.
    Pwd = PathCreated "\x03 is the current directory.",
    DirectoryChanged = FileActionOk "Directory changed to \x01.",
    Created = PathCreated "\x03 created.",
    Removed = FileActionOk "Directory removed.",
    Deleted = FileActionOk "File deleted.",
    ReadyForRnto = FileActionPending "Ready for RNTO.",
    Renamed = FileActionOk "Rename successful.",
    NotAFile = FileUnavailable "Not a regular file.",
    Size = FileStatus "\x04",
    NoModificationTime = FileUnavailable "Modification time unknown.",
    PathTooLong = NameNotAllowed "Path too long.",
    RnfrFirst = BadSequence "RNFR required first.",
    NoUniqueName = NameNotAllowed "Cannot find a unique name.",
    MlsdOfFile = ArgumentSyntaxError "Not a directory; use MLST for a file.",
    // Data connections and transfers.
    EpsvAll = Ok "EPSV ALL ok.",
    ExtendedPassive = ExtendedPassiveMode "Entering Extended Passive Mode (|||\x04|).",
    PasvV4Only = CantOpenDataConnection "PASV is IPv4 only; use EPSV.",
    NoPassivePort = CantOpenDataConnection "No data connection available, try later.",
    PortOk = Ok "\x01 command successful.",
    Restarting = FileActionPending "Restarting at \x04.",
    EpsvAllInEffect = BadSequence "EPSV ALL in effect, use EPSV.",
    NoBounce = ParameterNotImplemented "Data connections only to your own address and a port above 1023.",
    CantConnect = CantOpenDataConnection "Cannot open data connection.",
    DataTimedOut = CantOpenDataConnection "Data connection timed out.",
    NoDataConnection = CantOpenDataConnection "Use PORT, PASV, EPRT or EPSV first.",
    OpeningAscii = FileStatusOk "Opening ASCII mode data connection for \x01 (\x04 bytes).",
    OpeningBinary = FileStatusOk "Opening BINARY mode data connection for \x01 (\x04 bytes).",
    StouName = FileStatusOk "FILE: \x01",
    OkToSend = FileStatusOk "Ok to send data.",
    HereComesListing = FileStatusOk "Here comes the directory listing.",
    Aborted = TransferAborted "Transfer aborted.",
    NothingToAbort = DataOpenNoTransfer "No transfer to abort.",
}

impl Msg {
    fn code(self) -> R {
        Self::CODES[self as usize]
    }

    /// The text: the part of [`Msg::TEXTS`] after the variant's index in NULs.
    fn text(self) -> &'static str {
        storage::nth(Self::TEXTS, self as usize)
    }
}

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

#[derive(Debug)]
struct Transfer<K, F> {
    op: Op<F>,
    /// Where the bytes go (or come from): the data connection, or for a
    /// `STAT path` listing the control connection (`control`: lines
    /// indented, ended with `213`, the socket left open at the end).
    sock: K,
    /// Every byte has been handed to the socket; waiting for it to drain.
    draining: bool,
    control: bool,
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
    // In the order of the variants.
    const CODES: [R; 13] = [
        R::FileUnavailable, // NotFound
        R::FileUnavailable, // NotADirectory
        R::FileUnavailable, // IsADirectory
        R::FileUnavailable, // AlreadyExists
        R::FileUnavailable, // DirectoryNotEmpty
        R::FileUnavailable, // PermissionDenied
        R::ExceededStorage, // NoSpace (452 during a transfer)
        R::NameNotAllowed,  // InvalidName
        R::NameNotAllowed,  // NameTooLong
        R::InvalidRestart,  // InvalidOffset
        R::FileBusy,        // Busy
        R::LocalError,      // Io
        R::LocalError,      // NotReady
    ];
    if in_transfer && e == E::NoSpace {
        return R::InsufficientStorage;
    }
    CODES[e as usize]
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

/// Verb kinds answered while a data transfer runs (STAT only without an
/// argument); the others wait their turn.
const DURING_TRANSFER: u64 = 1 << verb::ABOR | 1 << verb::QUIT | 1 << verb::NOOP | 1 << verb::STAT;

/// Whether verb kind `k` is in [`BEFORE_LOGIN`].
fn allowed_before_login(k: u8) -> bool {
    in_set(BEFORE_LOGIN, k)
}

/// Whether verb kind `k` is in `set` (bit `k`); the set is looked at in
/// 32-bit halves (a 64-bit shift by a variable calls a runtime routine).
fn in_set(set: u64, k: u8) -> bool {
    let half = if k < 32 {
        set as u32
    } else {
        (set >> 32) as u32
    };
    half >> (k & 31) & 1 != 0
}

/// A transfer's failure: `text (n bytes transferred)`.
const TRANSFERRED: &str = "\x01 (\x04 bytes transferred)";

/// The IP address of `a` as 128 bits, IPv4 as IPv4-mapped IPv6
/// (`::ffff:a.b.c.d`, see [`is_v4`]): both forms of one address are one
/// number, so a comparison is `==` (`IpAddr::to_canonical` without copying
/// addresses around).
#[inline(never)]
fn ip_bits(a: &SocketAddr) -> u128 {
    match a {
        SocketAddr::V4(a) => 0xffff << 32 | u128::from(a.ip().to_bits()),
        SocketAddr::V6(a) => a.ip().to_bits(),
    }
}

/// Whether [`ip_bits`] is an IPv4 address.
fn is_v4(bits: u128) -> bool {
    bits >> 32 == 0xffff
}

/// A client path resolved by [`Session::resolve`]: the virtual path `v`
/// (what `PWD` shows) and the storage path `s`.
struct Paths {
    v: PathBuf,
    s: PathBuf,
}

impl Paths {
    /// Room for a resolved path (out of line: one call where it is used).
    #[inline(never)]
    fn new() -> Self {
        Paths {
            v: PathBuf::root(),
            s: PathBuf::root(),
        }
    }
}

/// The outcome of looking at one command.
enum Handled {
    /// Answered: drop the line.
    Done,
    /// Not yet: leave the line in the socket.
    Wait,
}

impl<K: Copy + PartialEq + core::fmt::Debug, F> Session<K, F> {
    /// Starts a session for a freshly accepted control connection (the
    /// greeting has been sent), built straight into the server's `slot` (a
    /// session is 704 bytes: returning one and moving it costs copies).
    /// False, with the slot untouched, if the socket has no addresses
    /// (already gone).
    pub fn start<N: Net<Socket = K>>(
        slot: &mut Option<Self>,
        id: u32,
        ctrl: K,
        net: &N,
        now: Instant,
    ) -> bool {
        let (Some(peer), Some(local)) = (net.peer_addr(ctrl), net.local_addr(ctrl)) else {
            return false;
        };
        crate::event!("[{}] connected from {}", id, peer);
        *slot = Some(Session {
            id,
            ctrl,
            peer,
            local,
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
        });
        true
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
        match self.login {
            Login::In(Who::Account(i)) => {
                config.accounts.get(usize::from(i)).map_or("/", |a| a.root)
            }
            Login::In(Who::Anonymous) => config.anonymous_root.unwrap_or("/"),
            _ => "/",
        }
    }

    fn writable(&self, config: &Config<'_>) -> bool {
        match self.login {
            Login::In(Who::Account(i)) => config
                .accounts
                .get(usize::from(i))
                .is_some_and(|a| a.writable),
            _ => false,
        }
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
        let len = w.len();
        self.flush(ctx, len);
    }

    /// Hands the first `len` bytes of the reply buffer to the control
    /// socket (one copy of this for every instance of [`Session::send`]).
    #[inline(never)]
    fn flush<N: Net<Socket = K>, S: Storage>(&self, ctx: &mut Ctx<'_, '_, N, S>, len: usize) {
        if !self.ctrl_gone {
            let _ = ctx.net.send(self.ctrl, &ctx.reply[..len]);
        }
    }

    /// One fixed reply from the [`Msg`] table: its code and its text.
    #[inline(never)]
    fn say<N: Net<Socket = K>, S: Storage>(&self, ctx: &mut Ctx<'_, '_, N, S>, msg: Msg) {
        self.tell(ctx, msg, "", 0);
    }

    /// A template from the [`Msg`] table filled with `s` and `n`.
    #[inline(never)]
    fn tell<N: Net<Socket = K>, S: Storage>(
        &self,
        ctx: &mut Ctx<'_, '_, N, S>,
        msg: Msg,
        s: &str,
        n: u64,
    ) {
        self.reply(ctx, msg.code(), msg.text(), s, n);
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
                let msg = if self.failures >= ctx.config.max_login_failures {
                    crate::event!("[{}] too many failed logins, closing", self.id);
                    self.closing = true;
                    Msg::TooManyFailures
                } else {
                    Msg::LoginIncorrect
                };
                self.say(ctx, msg);
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
                    self.say(ctx, Msg::IdleTimeout);
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
        self.end_transfer(net, fs, true).is_some()
    }

    /// Ends the running transfer, if any: its data connection closed (or
    /// reset: `abort`), its file closed. What it was, or `None`.
    fn end_transfer<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        net: &mut N,
        fs: &mut S,
        abort: bool,
    ) -> Option<Ended> {
        let t = self.xfer.take()?;
        if !t.control {
            if abort {
                net.abort(t.sock)
            } else {
                net.close(t.sock)
            }
        }
        let (upload, closed) = match t.op {
            Op::Retr { file, .. } => (false, fs.close(file)),
            Op::Stor { file, .. } => (true, fs.close(file)),
            Op::List { .. } => (false, Ok(())),
        };
        Some(Ended {
            bytes: t.bytes.0,
            control: t.control,
            upload,
            closed,
        })
    }

    fn drop_data<N: Net<Socket = K>>(&mut self, net: &mut N) {
        if let Data::Listening(s) | Data::Connecting(s) | Data::Ready(s) = self.data {
            net.abort(s);
        }
        self.data = Data::None;
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
                if !passive || from.is_some_and(|a| ip_bits(&a) == ip_bits(&self.peer)) {
                    self.data = Data::Ready(s);
                } else {
                    // RFC 2577 §4 (port stealing): listen again for the
                    // right client.
                    crate::event!("[{}] refused data connection from {:?}", self.id, from);
                    let local = ctx.net.local_addr(s);
                    ctx.net.abort(s);
                    self.data = Data::None;
                    if let Some(a) = local
                        && let Ok(n) = ctx.net.listen(a)
                    {
                        self.data = Data::Listening(n);
                    }
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
    #[inline(never)]
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
        let too_long = match line::extract(&ctx.data[..n], &mut ctx.line[..max]) {
            // A full peek buffer and still no line (Telnet noise inside a
            // long line): as over-long as any other.
            Frame::Partial if n == want => n,
            Frame::TooLong { consumed } => consumed,
            Frame::Partial => {
                // The client closed its side after an unterminated line:
                // nothing will complete it.
                if self.xfer.is_none() && ctx.net.state(self.ctrl) == SockState::PeerClosed {
                    ctx.net.consume(self.ctrl, n);
                    self.ctrl_gone = true;
                    return true;
                }
                return false;
            }
            Frame::Empty { consumed } => {
                ctx.net.consume(self.ctrl, consumed);
                return true;
            }
            Frame::Line { consumed, len } => {
                // The line buffer leaves the context while the command runs,
                // so the command can borrow from it.
                let line_buf = core::mem::take(&mut ctx.line);
                let handled = self.handle_line(ctx, &line_buf[..len]);
                ctx.line = line_buf;
                return match handled {
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
                };
            }
        };
        if self.xfer.is_some() {
            return false;
        }
        ctx.net.consume(self.ctrl, too_long);
        self.discarding = true;
        self.last_command = ctx.now;
        crate::event!("[{}] command line too long", self.id);
        self.say(ctx, Msg::LineTooLong);
        true
    }

    fn handle_line<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        line: &[u8],
    ) -> Handled {
        // The typed argument is parsed into a value kept here (a
        // returned result was copied once more).
        let mut typed = Typed::NONE;
        let (k, arg) = match verb::verb(line) {
            Ok((k, arg)) => match verb::typed(k, arg, &mut typed) {
                Ok(()) => (k, arg),
                Err(e) => return self.refuse(ctx, line, e),
            },
            Err(e) => return self.refuse(ctx, line, e),
        };
        // A `STAT <dir>` listing owns the control connection until its
        // `213` end line; a data transfer lets ABOR, STAT, NOOP, QUIT by.
        if let Some(t) = &self.xfer
            && (t.control || !in_set(DURING_TRANSFER, k) || (k == verb::STAT && !arg.is_empty()))
        {
            return Handled::Wait;
        }
        if self.deferred_since.is_none() {
            self.log_line(line);
        }
        if !matches!(self.login, Login::In(_)) && !allowed_before_login(k) {
            self.say(ctx, Msg::PleaseLogin);
            return Handled::Done;
        }
        let was_rnfr = self.rnfr;
        if k != verb::RNTO {
            self.rnfr = false;
        }
        self.dispatch(ctx, k, arg, &typed, was_rnfr)
    }

    /// The answer to a line that does not parse (it waits while a
    /// transfer runs).
    #[inline(never)]
    fn refuse<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        line: &[u8],
        e: ParseError,
    ) -> Handled {
        if self.xfer.is_some() {
            return Handled::Wait;
        }
        self.log_line(line);
        self.rnfr = false;
        let msg = match e {
            ParseError::Unknown => Msg::UnknownCommand,
            ParseError::BadBytes => Msg::BadBytes,
            ParseError::MissingArgument => Msg::MissingArgument,
            ParseError::UnexpectedArgument => Msg::UnexpectedArgument,
            ParseError::BadArgument => Msg::BadArgument,
            ParseError::UnsupportedParameter => Msg::UnsupportedParameter,
            ParseError::UnsupportedProtocol => Msg::UnsupportedProtocol,
        };
        self.say(ctx, msg);
        Handled::Done
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
        // The commands answered with a fixed reply pick it here; it goes
        // out by the one `say` at the end (each call site costs its own
        // argument set-up). The others answer themselves and return.
        let msg = match k {
            USER => {
                self.user(ctx, arg);
                return Handled::Done;
            }
            PASS => {
                self.pass(ctx, arg);
                return Handled::Done;
            }
            ACCT => match self.login {
                Login::In(_) => Msg::AcctNotNeeded,
                _ => Msg::UserFirst,
            },
            QUIT => {
                if self.abort_transfer(ctx.net, ctx.fs) {
                    self.say(ctx, Msg::Aborted);
                }
                self.closing = true;
                Msg::Goodbye
            }
            REIN => {
                self.drop_data(ctx.net);
                self.login = Login::Fresh;
                self.cwd.set_root();
                self.ty = TransferType::Ascii;
                self.rest = U64(0);
                self.epsv_all = false;
                self.facts = facts::ALL;
                Msg::Reinitialized
            }
            PWD => {
                self.tell(ctx, Msg::Pwd, self.cwd.as_str(), 0);
                return Handled::Done;
            }
            RNTO if !was_rnfr => Msg::RnfrFirst,
            // One call for all of them (each call site costs its own copy
            // of the argument set-up).
            CWD | CDUP | MKD | RMD | DELE | RNFR | RNTO => {
                let (k, arg) = match k {
                    CDUP => (CWD, ".."),
                    // A bare `CWD` (lftp) goes to the user's root.
                    CWD if arg.is_empty() => (CWD, "/"),
                    _ => (k, arg),
                };
                self.path_command(ctx, k, arg);
                return Handled::Done;
            }
            // One call for every transfer command, as for the path commands.
            LIST | NLST | MLSD | RETR | STOR | APPE | STOU => {
                let (what, arg) = match k {
                    LIST => (What::List(Format::List), skip_options(arg)),
                    NLST => (What::List(Format::Nlst), skip_options(arg)),
                    MLSD => (What::List(Format::Mlsd), arg),
                    RETR => (What::Retr, arg),
                    STOR => (What::Store(StoreKind::Stor), arg),
                    APPE => (What::Store(StoreKind::Appe), arg),
                    _ => (What::Store(StoreKind::Stou), ""),
                };
                return self.transfer(ctx, what, arg);
            }
            REST => {
                self.rest = t.num;
                self.tell(ctx, Msg::Restarting, "", t.num.0);
                return Handled::Done;
            }
            ALLO => Msg::NoAllocation,
            TYPE => {
                self.ty = t.ty;
                if t.ty == TransferType::Ascii {
                    Msg::TypeA
                } else {
                    Msg::TypeI
                }
            }
            STRU => Msg::StruF,
            MODE => Msg::ModeS,
            EPSV if t.epsv == EpsvArg::All => {
                self.epsv_all = true;
                Msg::EpsvAll
            }
            PASV | EPSV => {
                let extended = k == EPSV;
                let family = if extended { t.epsv } else { EpsvArg::Any };
                self.pasv(ctx, extended, family);
                return Handled::Done;
            }
            PORT | EPRT => {
                self.port(ctx, &t.addr, k == EPRT);
                return Handled::Done;
            }
            ABOR => {
                self.abor(ctx);
                return Handled::Done;
            }
            SYST => Msg::System,
            HELP => {
                self.help(ctx, arg);
                return Handled::Done;
            }
            NOOP => Msg::Noop,
            SITE => {
                self.site(ctx, arg);
                return Handled::Done;
            }
            FEAT => {
                self.feat(ctx);
                return Handled::Done;
            }
            OPTS => {
                self.opts(ctx, arg);
                return Handled::Done;
            }
            SIZE | MDTM | MLST | STAT => {
                self.file_facts(ctx, k, arg);
                return Handled::Done;
            }
            CLNT => Msg::Noted,
            _ => Msg::NotImplemented,
        };
        self.say(ctx, msg);
        Handled::Done
    }

    // ---- login -------------------------------------------------------------

    fn user<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        name: &str,
    ) {
        // No transfer runs here: `handle_line` holds USER back until it ends.
        let cfg = ctx.config;
        let anon = (eq_ic(name.as_bytes(), b"anonymous") || eq_ic(name.as_bytes(), b"ftp"))
            && cfg.anonymous_root.is_some();
        let who = if anon {
            Some(Who::Anonymous)
        } else {
            cfg.accounts
                .iter()
                .position(|a| eq_ct(a.user, name))
                .and_then(|i| u8::try_from(i).ok())
                .map(Who::Account)
        };
        self.login = Login::User(who);
        self.cwd.set_root();
        self.say(ctx, Msg::NeedPassword);
    }

    fn pass<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        pass: &str,
    ) {
        // One `say` for every answer but the wrong password's (delayed).
        let msg = match self.login {
            Login::In(_) => Msg::AlreadyIn,
            Login::Fresh => Msg::UserFirst,
            Login::User(who) => {
                let ok = match who {
                    Some(Who::Anonymous) => true,
                    Some(Who::Account(i)) => ctx
                        .config
                        .accounts
                        .get(usize::from(i))
                        .is_some_and(|a| eq_ct(a.pass, pass)),
                    None => false,
                };
                let (true, Some(who)) = (ok, who) else {
                    crate::event!("[{}] login failed", self.id);
                    self.hold = Hold::LoginDelay(ctx.now.after(ctx.config.login_fail_delay_ms));
                    return;
                };
                self.login = Login::In(who);
                self.failures = 0;
                crate::event!("[{}] logged in", self.id);
                Msg::LoginOk
            }
        };
        self.say(ctx, msg);
    }

    // ---- paths -------------------------------------------------------------

    /// Resolves a client path into `p` (virtual and storage path), or
    /// answers `553`. The paths are built where the caller keeps them: a
    /// path returned by value is copied (260 bytes) on every move.
    fn resolve<'p, N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
        p: &'p mut Paths,
    ) -> Option<&'p Paths> {
        let root = self.root(ctx.config);
        p.v.clone_from(&self.cwd);
        if path::resolve_in(&mut p.v, arg).is_ok()
            && path::to_storage_in(&mut p.s, root, &p.v).is_ok()
        {
            return Some(p);
        }
        self.say(ctx, Msg::PathTooLong);
        None
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
        // `550 Permission denied.`
        self.fail(ctx, storage::Error::PermissionDenied);
        true
    }

    /// CWD (and CDUP), MKD, RMD, DELE, RNFR and RNTO: resolve the path,
    /// one storage call, one reply. The commands that change the tree need
    /// a writable login (else `550`) and refuse the root itself (it can be
    /// neither created, removed nor renamed); unusable paths get `553`.
    fn path_command<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        k: u8,
        arg: &str,
    ) {
        use storage::Error as E;
        use verb::*;
        let change = k != CWD;
        // `&`, not `&&`: with a branch on `change` here the optimiser
        // duplicates the rest of the function for CWD (about 70 bytes).
        let denied = change & !self.writable(ctx.config);
        // Borrowed where `resolve` left them (a move copies 2 x 258 bytes).
        // A denied command is not resolved: its `550` goes first.
        let mut p = Paths::new();
        let Some(Paths { v, s }) = (if denied {
            Some(&p)
        } else {
            self.resolve(ctx, arg, &mut p)
        }) else {
            return;
        };
        let s = s.as_str();
        // `550 Permission denied.` is `fail`'s answer to PermissionDenied.
        let done = if denied {
            Err(E::PermissionDenied)
        } else if change & v.is_root() {
            Err(if matches!(k, MKD | RNTO) {
                E::AlreadyExists
            } else {
                E::PermissionDenied
            })
        } else {
            match k {
                MKD => ctx.fs.mkdir(s),
                RMD => ctx.fs.rmdir(s),
                DELE => ctx.fs.remove(s),
                RNTO => self.rename_to(ctx, v, s),
                // CWD and RNFR: the path must exist (CWD: as a directory).
                _ => match ctx.fs.metadata(s) {
                    Ok(m) if k == RNFR || m.kind == Kind::Dir => Ok(()),
                    Ok(_) => Err(E::NotADirectory),
                    Err(e) => Err(e),
                },
            }
        };
        // One reply call for every outcome (each call site costs its own
        // argument set-up).
        if let Err(e) = done {
            return self.fail(ctx, e);
        }
        let (msg, text) = match k {
            MKD => (Msg::Created, v.as_str()),
            RMD => {
                // Leaving a directory that no longer exists would strand the
                // session: RMD of the working directory moves to its parent.
                if is_within(&self.cwd, v) {
                    self.cwd = v.clone();
                    self.cwd.pop();
                }
                (Msg::Removed, "")
            }
            DELE => (Msg::Deleted, ""),
            RNFR => {
                self.aux = v.clone();
                self.rnfr = true;
                (Msg::ReadyForRnto, "")
            }
            RNTO => (Msg::Renamed, ""),
            _ => {
                self.cwd = v.clone();
                (Msg::DirectoryChanged, v.as_str())
            }
        };
        self.tell(ctx, msg, text, 0);
    }

    /// RNTO's rename of the `RNFR` source (virtual path in `aux`) to `v`
    /// (storage path `to`).
    fn rename_to<N: Net<Socket = K>, S: Storage<File = F>>(
        &self,
        ctx: &mut Ctx<'_, '_, N, S>,
        v: &PathBuf,
        to: &str,
    ) -> storage::Result<()> {
        let root = self.root(ctx.config);
        let mut from = PathBuf::root();
        if path::to_storage_in(&mut from, root, &self.aux).is_err() {
            return Err(storage::Error::NameTooLong);
        }
        // A directory cannot move into itself.
        if is_within(v, &self.aux) {
            return Err(storage::Error::PermissionDenied);
        }
        ctx.fs.rename(from.as_str(), to)
    }

    // ---- data connections ------------------------------------------------------

    fn pasv<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        extended: bool,
        family: EpsvArg,
    ) {
        // Every reply but the 227 is a template and a number (the family
        // to use, or the port), sent by the one reply call at the end.
        let (msg, n) = 'reply: {
            if self.epsv_all && !extended {
                break 'reply (Msg::EpsvAllInEffect, 0);
            }
            let local_ip = ip_bits(&self.local);
            let v4 = is_v4(local_ip);
            // `EPSV 1` on IPv6, `EPSV 2` on IPv4: the family to use.
            let (other, use_) = if v4 {
                (EpsvArg::V6, 1)
            } else {
                (EpsvArg::V4, 2)
            };
            if family == other {
                break 'reply (Msg::UseFamily, use_);
            }
            if !extended && !v4 {
                break 'reply (Msg::PasvV4Only, 0);
            }
            self.drop_data(ctx.net);
            let (a, b) = ctx.config.pasv_ports;
            let (lo, hi) = (a.min(b), a.max(b));
            let span = u32::from(hi.saturating_sub(lo)) + 1;
            // The control connection's local address (an IPv6 scope kept:
            // a link-local address needs it), on the port picked below.
            let mut addr = self.local;
            let mut listening = None;
            for _ in 0..span {
                let port = *ctx.next_port;
                *ctx.next_port = if port >= hi || port < lo {
                    lo
                } else {
                    port + 1
                };
                addr.set_port(port.clamp(lo, hi));
                match ctx.net.listen(addr) {
                    Ok(s) => {
                        listening = Some(s);
                        break;
                    }
                    Err(NetError::AddrInUse) => {}
                    Err(_) => break,
                }
            }
            let Some(s) = listening else {
                break 'reply (Msg::NoPassivePort, 0);
            };
            self.data = Data::Listening(s);
            let port = addr.port();
            if extended {
                break 'reply (Msg::ExtendedPassive, u64::from(port));
            }
            let ip = ctx
                .config
                .pasv_address
                .unwrap_or(Ipv4Addr::from_bits(local_ip as u32));
            let [a, b, c, d] = ip.octets();
            let [p1, p2] = port.to_be_bytes();
            return self.send(ctx, |w| {
                w.begin(R::PassiveMode)
                    .text("Entering Passive Mode (")
                    .decimals(&[a, b, c, d, p1, p2], b',')
                    .text(").")
                    .end()
            });
        };
        self.tell(ctx, msg, "", n);
    }

    fn port<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        addr: &SocketAddr,
        extended: bool,
    ) {
        // One reply call for every outcome: a template and a number (the
        // family to use).
        let (msg, n) = 'reply: {
            if self.epsv_all {
                break 'reply (Msg::EpsvAllInEffect, 0);
            }
            let peer = ip_bits(&self.peer);
            let target = ip_bits(addr);
            if is_v4(peer) != is_v4(target) {
                let use_ = if is_v4(peer) { 1 } else { 2 };
                let msg = if extended {
                    Msg::UseFamily
                } else {
                    Msg::UseFamilyPort
                };
                break 'reply (msg, use_);
            }
            // RFC 2577 §3: no bounce to third parties, no privileged ports.
            if target != peer || addr.port() < 1024 {
                crate::event!("[{}] refused active connection to {}", self.id, addr);
                break 'reply (Msg::NoBounce, 0);
            }
            self.drop_data(ctx.net);
            let Ok(s) = ctx.net.connect(self.local.ip(), *addr) else {
                break 'reply (Msg::CantConnect, 0);
            };
            self.data = Data::Connecting(s);
            let verb = if extended { "EPRT" } else { "PORT" };
            return self.tell(ctx, Msg::PortOk, verb, 0);
        };
        self.tell(ctx, msg, "", n);
    }

    /// The established data connection for a transfer command, or what to
    /// do with the command: wait for the connection, or drop it (after
    /// answering `425`).
    fn data_for_transfer<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
    ) -> Result<K, Handled> {
        let msg = match self.data {
            Data::Ready(s) => {
                self.data = Data::None;
                return Ok(s);
            }
            Data::Listening(_) | Data::Connecting(_) => {
                let since = self.deferred_since.unwrap_or(ctx.now);
                if ctx.now < since.after(ctx.config.data_timeout_ms) {
                    return Err(Handled::Wait);
                }
                self.drop_data(ctx.net);
                Msg::DataTimedOut
            }
            Data::None => Msg::NoDataConnection,
        };
        self.say(ctx, msg);
        Err(Handled::Done)
    }

    /// RETR, STOR/APPE/STOU and LIST/NLST/MLSD, one path for all: the
    /// checks, the data connection (or waiting for it), opening the file,
    /// `150`, and the transfer's start.
    fn transfer<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        what: What,
        arg: &str,
    ) -> Handled {
        let upload = matches!(what, What::Store(_));
        if let What::List(_) = what {
            // A listing has no restart point.
            self.rest = U64(0);
        }
        if upload && self.deny(ctx) {
            self.rest = U64(0);
            return Handled::Done;
        }
        // STOU picks a name that does not exist yet (in the working
        // directory, so the name alone is the argument).
        let mut name = *b"stou0000.bin";
        let arg = if let What::Store(StoreKind::Stou) = what {
            'search: {
                // The storage path of the working directory, one name at a
                // time pushed onto it (it is at least as long as the
                // virtual path, so a name that fits here fits there too),
                // built in `aux` (free: RNFR's path lives one command).
                let root = self.root(ctx.config);
                let s = &mut self.aux;
                if path::to_storage_in(s, root, &self.cwd).is_ok() {
                    for _ in 0..1000 {
                        if s.push(name_str(&name)).is_err() {
                            break;
                        }
                        if ctx.fs.metadata(s.as_str()) == Err(storage::Error::NotFound) {
                            break 'search;
                        }
                        s.pop();
                        // The next number: stou0000.bin, stou0001.bin, ...
                        for d in name[4..8].iter_mut().rev() {
                            if *d < b'9' {
                                *d += 1;
                                break;
                            }
                            *d = b'0';
                        }
                    }
                }
                self.say(ctx, Msg::NoUniqueName);
                return Handled::Done;
            }
            name_str(&name)
        } else {
            arg
        };
        let mut p = Paths::new();
        let Some(Paths { v, s }) = self.resolve(ctx, arg, &mut p) else {
            return Handled::Done;
        };
        // Every storage error goes to the one `fail` at the end.
        let e = 'failed: {
            if upload && v.is_root() {
                break 'failed storage::Error::IsADirectory;
            }
            // An upload may create the file; a download or listing needs it.
            let path = s.as_str();
            let meta = ctx.fs.metadata(path);
            let refused = match (&what, meta) {
                (What::Store(_), Err(_)) => None,
                (_, Err(e)) => Some(e),
                (What::List(f), Ok(m)) => {
                    if m.kind == Kind::File && *f == Format::Mlsd {
                        // RFC 3659 §7.1: MLSD names a directory; MLST is for files.
                        self.say(ctx, Msg::MlsdOfFile);
                        return Handled::Done;
                    }
                    None
                }
                (_, Ok(m)) if m.kind == Kind::Dir => Some(storage::Error::IsADirectory),
                _ => None,
            };
            if let Some(e) = refused {
                self.rest = U64(0);
                break 'failed e;
            }
            let sock = match self.data_for_transfer(ctx) {
                Ok(sock) => sock,
                Err(h) => return h,
            };
            let rest = core::mem::take(&mut self.rest);
            let ascii = self.ty == TransferType::Ascii;
            let opened = match what {
                What::Retr => ctx.fs.open_read(path, rest.0).map(|file| Op::Retr {
                    file,
                    ascii,
                    cr: false,
                }),
                What::Store(kind) => {
                    let mode = match kind {
                        StoreKind::Stor if rest.0 > 0 => WriteMode::At(rest.0),
                        StoreKind::Stor => WriteMode::Truncate,
                        StoreKind::Appe => WriteMode::Append,
                        StoreKind::Stou => WriteMode::CreateNew,
                    };
                    let opened = ctx.fs.open_write(path, mode);
                    if opened.is_ok() {
                        crate::event!("[{}] storing {} ({:?})", self.id, v, mode);
                    }
                    opened.map(|file| Op::Stor {
                        file,
                        ascii,
                        cr: false,
                    })
                }
                What::List(format) => Ok(Op::List { format, index: 0 }),
            };
            let op = match opened {
                Ok(op) => op,
                Err(e) => {
                    ctx.net.abort(sock);
                    break 'failed e;
                }
            };
            // One `150` for all: a template without a marker ignores the name
            // and the size.
            let msg = match what {
                What::Retr if ascii => Msg::OpeningAscii,
                What::Retr => Msg::OpeningBinary,
                What::Store(StoreKind::Stou) => Msg::StouName,
                What::Store(_) => Msg::OkToSend,
                What::List(_) => Msg::HereComesListing,
            };
            let size = meta.map_or(0, |m| m.size);
            let file_name = v.file_name();
            self.tell(ctx, msg, file_name, size);
            // A listing of one file is sent at once; the transfer only drains.
            let (mut draining, mut bytes) = (false, 0);
            if let (What::List(format), Ok(m)) = (what, meta) {
                if m.kind == Kind::File {
                    // FAR checks existence with `LIST path`.
                    let mut w = Writer::new(&mut ctx.data[..]);
                    let (writable, utc) = (self.writable(ctx.config), ctx.utc);
                    let name = if format == Format::Nlst {
                        arg
                    } else {
                        file_name
                    };
                    list::write_entry(&mut w, format, name, &m, writable, utc, self.facts);
                    let n = w.len();
                    let _ = ctx.net.send(sock, &ctx.data[..n]);
                    (draining, bytes) = (true, n as u64);
                } else {
                    self.aux.clone_from(s);
                }
            }
            self.xfer = Some(Transfer {
                op,
                sock,
                control: false,
                draining,
                bytes: U64(bytes),
                last_progress: ctx.now,
            });
            return Handled::Done;
        };
        self.fail(ctx, e);
        Handled::Done
    }

    fn abor<N: Net<Socket = K>, S: Storage<File = F>>(&mut self, ctx: &mut Ctx<'_, '_, N, S>) {
        self.drop_data(ctx.net);
        if self.abort_transfer(ctx.net, ctx.fs) {
            self.say(ctx, Msg::Aborted);
            self.reply(ctx, R::TransferComplete, "ABOR successful.", "", 0);
        } else {
            self.say(ctx, Msg::NothingToAbort);
        }
    }

    // ---- moving data -----------------------------------------------------------

    /// Ends a transfer with an error reply (the file is closed, so what an
    /// upload received so far is kept and can be resumed with REST).
    #[inline(always)]
    fn fail_transfer<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        code: R,
        text: &'static str,
    ) {
        self.close_transfer(ctx, true, code, text);
    }

    /// Ends the running transfer, one path for both ends: `failed` (the
    /// data connection reset) with `code` and `text`, or complete (the
    /// data connection closed) with `226`, or the error of closing the
    /// file.
    #[inline(never)]
    fn close_transfer<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        failed: bool,
        code: R,
        text: &'static str,
    ) {
        let Some(Ended {
            bytes,
            control,
            upload,
            closed,
        }) = self.end_transfer(ctx.net, ctx.fs, failed)
        else {
            return;
        };
        // A STAT listing goes out as a multi-line 213 reply: only a line
        // with that code may end it (RFC 959 4.2), whatever cut it short.
        let code = if control { R::FileStatus } else { code };
        // One reply call for all (a template without a marker ignores the
        // text and the count).
        let (code, tpl, text) = if failed {
            crate::event!(
                "[{}] transfer failed after {} bytes: {}",
                self.id,
                bytes,
                text
            );
            if !self.room(ctx.net) {
                // The client is not reading its replies: say it when it does.
                self.owed = Some((code, text, U64(bytes)));
                return;
            }
            (code, TRANSFERRED, text)
        } else {
            match closed {
                Ok(()) if control => (code, "End of status.", ""),
                Ok(()) => {
                    crate::event!("[{}] transfer complete, {} bytes", self.id, bytes);
                    (code, "Transfer complete (\x04 bytes).", "")
                }
                Err(e) => {
                    crate::event!("[{}] closing the file failed: {}", self.id, e);
                    (storage_reply(e, upload), "\x01; transfer failed.", e.text())
                }
            }
        };
        self.reply(ctx, code, tpl, text, bytes);
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
        let sock = t.sock;
        if t.draining {
            let done =
                t.control || ctx.net.send_drained(sock) || ctx.net.state(sock) == SockState::Closed;
            if done && self.room(ctx.net) {
                self.close_transfer(ctx, false, R::TransferComplete, "");
                return true;
            }
            return false;
        }
        let state = ctx.net.state(sock);
        let writable = self.writable(ctx.config);
        let cap = ctx.net.send_capacity(sock).min(ctx.data.len());
        let Some(t) = self.xfer.as_mut() else {
            return false;
        };
        // `Err`: the data connection was closed or lost (what to say);
        // `Ok`: a storage error.
        let failed: Result<storage::Error, &'static str> = 'failed: {
            if state == SockState::Closed && !matches!(t.op, Op::Stor { .. }) {
                break 'failed Err("Data connection closed; transfer aborted.");
            }
            let p = match &mut t.op {
                Op::Retr { file, ascii, cr } => {
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
                        Ok(0) => Progress::END,
                        // Either way the bytes to send start the buffer.
                        Ok(n) => Progress {
                            n: if *ascii {
                                to_crlf(&src[..n], dst, cr)
                            } else {
                                n
                            },
                            send: true,
                            end: false,
                        },
                        Err(e) => break 'failed Ok(e),
                    }
                }
                Op::Stor { file, ascii, cr } => {
                    // A CR that ended the previous chunk (TYPE A) goes in
                    // front of this one: data unless an LF follows it.
                    let start = usize::from(*cr);
                    if let Some(b) = ctx.data.first_mut() {
                        *b = b'\r';
                    }
                    // 0: the client closed the data connection, the upload is
                    // complete.
                    let n = match ctx.net.recv(sock, &mut ctx.data[start..]) {
                        Ok(0) => return false,
                        Ok(n) => n,
                        Err(NetError::Closed) => 0,
                        Err(_) => break 'failed Err(LOST),
                    };
                    // At the very end, a CR held back is data.
                    let mut m = start + n;
                    if *ascii && n > 0 {
                        *cr = false;
                        m = from_crlf(&mut ctx.data[..m], cr);
                    }
                    let r = if m > 0 {
                        ctx.fs.write(file, &ctx.data[..m])
                    } else {
                        Ok(())
                    };
                    if let Err(e) = r {
                        break 'failed Ok(e);
                    }
                    Progress {
                        n,
                        send: false,
                        end: n == 0,
                    }
                }
                Op::List { format, index } => {
                    let format = *format;
                    let indent = t.control;
                    if cap < crate::MAX_LINE.min(ctx.data.len()) {
                        return false;
                    }
                    let mut w = Writer::new(&mut ctx.data[..cap]);
                    let (mut count, mut full) = (0usize, false);
                    let (utc, mask) = (ctx.utc, self.facts);
                    let r = ctx.fs.list(self.aux.as_str(), *index, &mut |e| {
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
                    if let Err(e) = r {
                        break 'failed Ok(e);
                    }
                    *index += count;
                    let n = w.len();
                    Progress {
                        n,
                        send: n > 0,
                        end: !full,
                    }
                }
            };
            // What was read goes out whole, or the connection is lost.
            if p.send && ctx.net.send(sock, &ctx.data[..p.n]) != Ok(p.n) {
                break 'failed Err(LOST);
            }
            t.bytes.0 += p.n as u64;
            t.draining = p.end;
            t.last_progress = ctx.now;
            return true;
        };
        let (code, text) = match failed {
            Err(text) => (R::TransferAborted, text),
            Ok(e) => (
                storage_reply(e, true),
                match e {
                    storage::Error::NoSpace => "No space left on device; partial file kept.",
                    _ => "Storage error; transfer aborted.",
                },
            ),
        };
        self.fail_transfer(ctx, code, text);
        true
    }
}

/// A transfer's failure when the data connection breaks mid-way.
const LOST: &str = "Data connection lost; transfer aborted.";

/// What a transfer command moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum What {
    Retr,
    Store(StoreKind),
    List(Format),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreKind {
    Stor,
    Appe,
    Stou,
}

/// What [`Session::end_transfer`] ended.
struct Ended {
    bytes: u64,
    /// A `STAT` listing on the control connection.
    control: bool,
    upload: bool,
    /// How closing the file went.
    closed: storage::Result<()>,
}

/// One step of a transfer: `n` bytes moved (for RETR and listings: at
/// the start of the data buffer, still to be sent); `end`: the last ones.
struct Progress {
    n: usize,
    send: bool,
    end: bool,
}

impl Progress {
    const END: Progress = Progress {
        n: 0,
        send: false,
        end: true,
    };
}

/// LF to CRLF (TYPE A on the way out). `cr` remembers a CR that ended the
/// previous chunk, so an existing CRLF is not doubled. `dst` must hold
/// twice `src`.
fn to_crlf(src: &[u8], dst: &mut [u8], cr: &mut bool) -> usize {
    let mut n = 0;
    let mut put = |b: u8| {
        if let Some(d) = dst.get_mut(n) {
            *d = b;
            n += 1;
        }
    };
    for &b in src {
        if b == b'\n' && !*cr {
            put(b'\r');
        }
        put(b);
        *cr = b == b'\r';
    }
    n
}

/// CRLF to LF in place (TYPE A on the way in). A CR that ends the chunk
/// is dropped from the output and remembered in `cr`; the caller writes it
/// out if the next chunk does not start with LF.
fn from_crlf(buf: &mut [u8], cr: &mut bool) -> usize {
    let mut out = 0;
    for i in 0..buf.len() {
        let b = buf[i];
        if b == b'\r' {
            match buf.get(i + 1) {
                None => {
                    *cr = true;
                    continue;
                }
                Some(b'\n') => continue,
                Some(_) => {}
            }
        }
        // (`out` never passes `i`: no bounds check to fail.)
        if let Some(d) = buf.get_mut(out) {
            *d = b;
        }
        out += 1;
    }
    out
}

/// True when `p` is `dir` or lies below it.
fn is_within(p: &PathBuf, dir: &PathBuf) -> bool {
    let (p, d) = (p.as_str().as_bytes(), dir.as_str().as_bytes());
    starts_with(p, d) && (dir.is_root() || matches!(p.get(d.len()), None | Some(b'/')))
}

/// `LIST -la path` and friends: option words are skipped (wget, FAR,
/// Chrome send them; RFC 959 LIST takes only a path).
fn skip_options(arg: &str) -> &str {
    let mut rest = trim_start(arg);
    while starts_with(rest.as_bytes(), b"-") {
        let sp = rest.bytes().position(|c| c == b' ');
        rest = sp.map_or("", |i| trim_start(rest.get(i + 1..).unwrap_or("")));
    }
    rest
}

/// Whether `s` begins with `prefix`: a byte loop (`<[u8]>::starts_with`
/// links `memcmp` into the engine, 116 bytes).
fn starts_with(s: &[u8], prefix: &[u8]) -> bool {
    prefix.len() <= s.len() && prefix.iter().zip(s).all(|(a, b)| a == b)
}

/// A STOU name (`stou0001.bin`, 8.3-safe) as text.
fn name_str(name: &[u8; 12]) -> &str {
    core::str::from_utf8(name).unwrap_or("stou.bin")
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

mod info;

#[cfg(test)]
mod tests;
