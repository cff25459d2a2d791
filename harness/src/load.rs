//! Load and abuse from the client side (issue 7, "Load"): a small blocking
//! FTP client for many threads at once, a mixed workload that checks every
//! byte it reads back, logins that retry while the server is full, abrupt
//! disconnects (TCP resets) at chosen moments, and the figures of `STAT`.
//!
//! Everything here is a client, exactly like FileZilla: it talks to the
//! target over FTP and nothing else. The tests in `tests/load.rs` drive it
//! against the virtual board and QEMU; a CLI can drive it the same way.
//!
//! - [`Ftp`]: one control connection; passive (EPSV) transfers.
//! - [`login_retrying`]: log in, retrying with a backoff on `421` (server
//!   full) and on refused connections, counting both.
//! - [`Mix`] / [`run_mix`]: STOR, RETR, LIST, rename and delete in a
//!   directory of the client's own, against a model of what it should hold.
//! - [`Abrupt`] / [`abrupt`]: a session reset (SO_LINGER 0, then close) in
//!   the middle of a login, a listing, a download or an upload.
//! - [`Stat`]: "Sessions: N of M" and "Open files: N" from `STAT`.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

pub use crate::client::Reply;

/// Longest reply line accepted.
const MAX_LINE: usize = 8192;
/// Most lines in one reply.
const MAX_LINES: usize = 1000;
/// Most bytes read from one data connection.
const MAX_DATA: usize = 256 << 20;

/// What went wrong, and while doing what.
#[derive(Debug)]
pub enum Error {
    /// The greeting was `421`: the server is full.
    Busy(String),
    /// The connection was refused or reset before a greeting came.
    Refused(io::Error),
    /// A socket error (timeouts included).
    Io { doing: String, err: io::Error },
    /// The server closed the control connection.
    Closed { doing: String },
    /// A reply other than the one wanted.
    Reply { doing: String, reply: Reply },
    /// Data that is not what it should be (a checksum, a listing).
    Wrong(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Busy(l) => write!(f, "server full: {l}"),
            Error::Refused(e) => write!(f, "connection refused: {e}"),
            Error::Io { doing, err } => write!(f, "{doing}: {err}"),
            Error::Closed { doing } => write!(f, "{doing}: connection closed by the server"),
            Error::Reply { doing, reply } => write!(f, "{doing}: {}", reply.lines.join(" / ")),
            Error::Wrong(w) => f.write_str(w),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn io_err(doing: &str) -> impl FnOnce(io::Error) -> Error + '_ {
    move |err| Error::Io {
        doing: doing.to_string(),
        err,
    }
}

/// Close `s` with a reset instead of a FIN: SO_LINGER on with a zero
/// timeout, then close. Data not yet sent is thrown away.
pub fn reset(s: TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a linger struct of the size given.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(s);
}

/// Connect a TCP socket whose receive buffer is set to `rcvbuf` bytes
/// before the handshake (so the window it offers stays small).
pub fn connect_small_window(
    addr: SocketAddr,
    rcvbuf: usize,
    limit: Duration,
) -> io::Result<TcpStream> {
    let fam = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket calls on a descriptor we own; the address
    // structs are built from a SocketAddr with their exact sizes.
    unsafe {
        let fd = libc::socket(fam, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let s: TcpStream = std::os::fd::FromRawFd::from_raw_fd(fd);
        let v = rcvbuf as libc::c_int;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        // Linux bounds a blocking connect by the send timeout.
        s.set_write_timeout(Some(limit))?;
        let rc = match addr {
            SocketAddr::V4(a) => {
                let sa = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                libc::connect(
                    fd,
                    (&sa as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
            SocketAddr::V6(a) => {
                let sa = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: 0,
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                libc::connect(
                    fd,
                    (&sa as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(s)
    }
}

/// One control connection.
pub struct Ftp {
    r: BufReader<TcpStream>,
    w: TcpStream,
    /// How long a reply or a data read may take.
    pub limit: Duration,
    /// The `220` the server greeted with.
    pub greeting: Reply,
}

impl Ftp {
    /// Connect and read the greeting: `220`, or [`Error::Busy`] on `421`.
    pub fn connect(addr: SocketAddr, limit: Duration) -> Result<Ftp> {
        let s = TcpStream::connect_timeout(&addr, limit).map_err(|e| match e.kind() {
            io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => Error::Refused(e),
            _ => Error::Io {
                doing: format!("connect to {addr}"),
                err: e,
            },
        })?;
        Self::greet(s, limit)
    }

    /// Read the greeting on a connected stream.
    pub fn greet(s: TcpStream, limit: Duration) -> Result<Ftp> {
        s.set_nodelay(true).map_err(io_err("TCP_NODELAY"))?;
        s.set_read_timeout(Some(limit)).map_err(io_err("timeout"))?;
        s.set_write_timeout(Some(limit))
            .map_err(io_err("timeout"))?;
        let w = s.try_clone().map_err(io_err("clone"))?;
        let mut f = Ftp {
            r: BufReader::new(s),
            w,
            limit,
            greeting: Reply {
                code: 0,
                lines: Vec::new(),
                bare_lf: false,
            },
        };
        let g = match f.read_reply("greeting") {
            Err(Error::Io { err, .. })
                if matches!(
                    err.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ) =>
            {
                return Err(Error::Refused(err));
            }
            r => r?,
        };
        match g.code {
            220 => {
                f.greeting = g;
                Ok(f)
            }
            421 => Err(Error::Busy(g.lines.join(" / "))),
            _ => Err(Error::Reply {
                doing: "greeting".into(),
                reply: g,
            }),
        }
    }

    /// Connect, `USER`, `PASS`, `TYPE I`.
    pub fn login(addr: SocketAddr, user: &str, pass: &str, limit: Duration) -> Result<Ftp> {
        let mut f = Ftp::connect(addr, limit)?;
        f.log_in(user, pass)?;
        Ok(f)
    }

    pub fn log_in(&mut self, user: &str, pass: &str) -> Result<()> {
        let r = self.cmd(&format!("USER {user}"))?;
        if r.code == 331 {
            self.expect(&format!("PASS {pass}"), 230)?;
        } else if r.code != 230 {
            return Err(Error::Reply {
                doing: format!("USER {user}"),
                reply: r,
            });
        }
        self.expect("TYPE I", 200)?;
        Ok(())
    }

    /// The control stream (to reset it, to look at its addresses).
    pub fn stream(&self) -> &TcpStream {
        &self.w
    }

    /// Give up the connection as a stream (to reset it).
    pub fn into_stream(self) -> TcpStream {
        self.w
    }

    pub fn send(&mut self, line: &str) -> Result<()> {
        self.send_raw(format!("{line}\r\n").as_bytes(), line)
    }

    pub fn send_raw(&mut self, bytes: &[u8], doing: &str) -> Result<()> {
        self.w.write_all(bytes).map_err(io_err(doing))
    }

    fn read_line(&mut self, doing: &str) -> Result<String> {
        let mut line = Vec::new();
        loop {
            let buf = self.r.fill_buf().map_err(io_err(doing))?;
            if buf.is_empty() {
                return Err(Error::Closed {
                    doing: doing.to_string(),
                });
            }
            if let Some(i) = buf.iter().position(|&b| b == b'\n') {
                line.extend_from_slice(&buf[..i]);
                self.r.consume(i + 1);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            let n = buf.len();
            line.extend_from_slice(buf);
            self.r.consume(n);
            if line.len() > MAX_LINE {
                return Err(Error::Wrong(format!(
                    "{doing}: reply line over {MAX_LINE} bytes"
                )));
            }
        }
    }

    /// One complete reply (RFC 959 multi-line framing).
    pub fn read_reply(&mut self, doing: &str) -> Result<Reply> {
        let first = self.read_line(doing)?;
        let b = first.as_bytes();
        let code = if b.len() >= 3
            && b[..3].iter().all(u8::is_ascii_digit)
            && (b.len() == 3 || b[3] == b' ' || b[3] == b'-')
        {
            first[..3].parse().unwrap()
        } else {
            0
        };
        let multi = code != 0 && b.get(3) == Some(&b'-');
        let mut lines = vec![first];
        if multi {
            let end = format!("{code} ");
            loop {
                let l = self.read_line(doing)?;
                let done = l.starts_with(&end) || l == end.trim_end();
                lines.push(l);
                if done {
                    break;
                }
                if lines.len() > MAX_LINES {
                    return Err(Error::Wrong(format!(
                        "{doing}: reply over {MAX_LINES} lines"
                    )));
                }
            }
        }
        Ok(Reply {
            code,
            lines,
            bare_lf: false,
        })
    }

    /// Send a command, read its reply (any code).
    pub fn cmd(&mut self, line: &str) -> Result<Reply> {
        self.send(line)?;
        self.read_reply(line)
    }

    /// Send a command; its reply must have code `want`.
    pub fn expect(&mut self, line: &str, want: u16) -> Result<Reply> {
        let r = self.cmd(line)?;
        if r.code != want {
            return Err(Error::Reply {
                doing: line.to_string(),
                reply: r,
            });
        }
        Ok(r)
    }

    /// `EPSV`, then connect to the port it names on the control peer.
    pub fn passive(&mut self) -> Result<TcpStream> {
        let r = self.expect("EPSV", 229)?;
        let port = crate::client::parse_epsv(r.text())
            .ok_or_else(|| Error::Wrong(format!("unparsable 229: {}", r.lines[0])))?;
        let peer = self.w.peer_addr().map_err(io_err("peer address"))?;
        let a = SocketAddr::new(peer.ip(), port);
        let d = TcpStream::connect_timeout(&a, self.limit).map_err(io_err("data connection"))?;
        d.set_read_timeout(Some(self.limit))
            .map_err(io_err("timeout"))?;
        d.set_write_timeout(Some(self.limit))
            .map_err(io_err("timeout"))?;
        Ok(d)
    }

    /// Send a transfer command over an open data connection; wants 150/125.
    pub fn start(&mut self, line: &str) -> Result<()> {
        let r = self.cmd(line)?;
        if r.code != 150 && r.code != 125 {
            return Err(Error::Reply {
                doing: line.to_string(),
                reply: r,
            });
        }
        Ok(())
    }

    /// The end of a transfer: `226`.
    pub fn finish(&mut self, doing: &str) -> Result<Reply> {
        let r = self.read_reply(doing)?;
        if r.code != 226 && r.code != 250 {
            return Err(Error::Reply {
                doing: doing.to_string(),
                reply: r,
            });
        }
        Ok(r)
    }

    fn download(&mut self, line: &str) -> Result<Vec<u8>> {
        let mut d = self.passive()?;
        self.start(line)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = d.read(&mut buf).map_err(io_err(line))?;
            if n == 0 {
                break;
            }
            if out.len() + n > MAX_DATA {
                return Err(Error::Wrong(format!("{line}: over {MAX_DATA} bytes")));
            }
            out.extend_from_slice(&buf[..n]);
        }
        drop(d);
        self.finish(line)?;
        Ok(out)
    }

    pub fn retr(&mut self, path: &str) -> Result<Vec<u8>> {
        self.download(&format!("RETR {path}"))
    }

    pub fn list(&mut self, path: &str) -> Result<String> {
        let b = self.download(&format!("LIST {path}"))?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    pub fn stor(&mut self, path: &str, data: &[u8]) -> Result<()> {
        let line = format!("STOR {path}");
        let mut d = self.passive()?;
        self.start(&line)?;
        d.write_all(data).map_err(io_err(&line))?;
        d.shutdown(Shutdown::Write).map_err(io_err(&line))?;
        // The server closes its side once it has everything.
        let mut rest = [0u8; 64];
        let _ = d.read(&mut rest);
        drop(d);
        self.finish(&line)?;
        Ok(())
    }

    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        self.expect(&format!("RNFR {from}"), 350)?;
        self.expect(&format!("RNTO {to}"), 250)?;
        Ok(())
    }

    pub fn dele(&mut self, path: &str) -> Result<()> {
        self.expect(&format!("DELE {path}"), 250).map(drop)
    }

    pub fn mkd(&mut self, path: &str) -> Result<()> {
        self.expect(&format!("MKD {path}"), 257).map(drop)
    }

    pub fn stat(&mut self) -> Result<Stat> {
        let r = self.expect("STAT", 211)?;
        Stat::parse(&r).ok_or_else(|| Error::Wrong(format!("STAT without figures: {:?}", r.lines)))
    }

    /// `QUIT`, `221`, and the server's close.
    pub fn quit(mut self) -> Result<()> {
        self.expect("QUIT", 221)?;
        let mut b = [0u8; 16];
        match self.r.read(&mut b) {
            Ok(0) => Ok(()),
            Ok(_) => Err(Error::Wrong("bytes after 221".into())),
            Err(e) => Err(Error::Io {
                doing: "waiting for the close after QUIT".into(),
                err: e,
            }),
        }
    }
}

/// What `STAT` (no argument) reports about the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub sessions: usize,
    pub max_sessions: usize,
    pub open_files: usize,
}

impl Stat {
    /// From the lines "Sessions: N of M" and "Open files: N".
    pub fn parse(r: &Reply) -> Option<Stat> {
        let mut sessions = None;
        let mut files = None;
        for l in &r.lines {
            let l = l.trim_start_matches("211-").trim();
            if let Some(rest) = l.strip_prefix("Sessions: ") {
                let (n, m) = rest.split_once(" of ")?;
                sessions = Some((n.trim().parse().ok()?, m.trim().parse().ok()?));
            } else if let Some(rest) = l.strip_prefix("Open files: ") {
                files = Some(rest.trim().parse().ok()?);
            }
        }
        let (sessions, max_sessions) = sessions?;
        Some(Stat {
            sessions,
            max_sessions,
            open_files: files?,
        })
    }
}

/// What the QEMU board's console command `s` reports (its `stats:` line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleStats {
    pub sessions: usize,
    pub open_files: usize,
    /// The socket pools: control sockets listening, data sockets free,
    /// sockets held by the engine, sockets still closing (the board's
    /// "free RAM": it has no heap).
    pub sockets: Option<[usize; 4]>,
    /// The whole line.
    pub line: String,
}

impl ConsoleStats {
    /// From "stats: up N ms, sessions N, open files N, ...".
    pub fn parse(line: &str) -> Option<ConsoleStats> {
        let rest = &line[line.find("stats: ")?..];
        let field = |name: &str| -> Option<usize> {
            let i = rest.find(name)? + name.len();
            let digits: String = rest[i..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        };
        let sockets = (|| {
            Some([
                field(", sockets listening ")?,
                field(" data-free ")?,
                field(" owned ")?,
                field(" closing ")?,
            ])
        })();
        Some(ConsoleStats {
            sessions: field(", sessions ")?,
            open_files: field(", open files ")?,
            sockets,
            line: rest.trim_end().to_string(),
        })
    }
}

/// Send `s` to a board's console on a unix socket (the QEMU board:
/// [`crate::target::Server::console`]) and read its `stats:` line.
pub fn console_stats(socket: &std::path::Path, limit: Duration) -> io::Result<ConsoleStats> {
    let mut c = std::os::unix::net::UnixStream::connect(socket)?;
    c.set_read_timeout(Some(limit))?;
    c.write_all(b"s")?;
    let t0 = Instant::now();
    let mut r = BufReader::new(c);
    let mut line = String::new();
    while t0.elapsed() < limit {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            break;
        }
        if let Some(s) = ConsoleStats::parse(&line) {
            return Ok(s);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no `stats:` line from the console within {limit:?}"),
    ))
}

/// How a login that finds the server full tries again.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Wait before the next attempt (doubled each time up to `max_backoff`).
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Give up after this long.
    pub give_up: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(800),
            give_up: Duration::from_secs(120),
        }
    }
}

/// How a login that retried went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attempts {
    /// Greetings that were `421`.
    pub busy: u32,
    /// Connections refused or reset before a greeting.
    pub refused: u32,
}

/// Log in, retrying on `421` and refused connections with a backoff (and a
/// little jitter from `seed`, so clients do not retry in lockstep).
pub fn login_retrying(
    addr: SocketAddr,
    user: &str,
    pass: &str,
    limit: Duration,
    retry: Retry,
    seed: u64,
) -> Result<(Ftp, Attempts)> {
    let t0 = Instant::now();
    let mut n = Attempts::default();
    let mut wait = retry.backoff;
    let mut rng = Rng::new(seed);
    loop {
        match Ftp::connect(addr, limit) {
            Ok(mut f) => {
                f.log_in(user, pass)?;
                return Ok((f, n));
            }
            Err(Error::Busy(_)) => n.busy += 1,
            Err(Error::Refused(_)) => n.refused += 1,
            Err(e) => return Err(e),
        }
        if t0.elapsed() > retry.give_up {
            return Err(Error::Wrong(format!(
                "not served within {:?} ({} times 421, {} refused)",
                retry.give_up, n.busy, n.refused
            )));
        }
        let jitter = Duration::from_millis(rng.below(wait.as_millis() as u64 / 2 + 1));
        std::thread::sleep(wait + jitter);
        wait = (wait * 2).min(retry.max_backoff);
    }
}

/// A small deterministic generator (xorshift).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u64) as usize
    }
}

/// A mixed workload of one client.
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    /// Operations to run (each a STOR, RETR, LIST, rename or delete).
    pub ops: usize,
    /// File sizes, inclusive.
    pub min_size: usize,
    pub max_size: usize,
    pub seed: u64,
}

/// What a workload did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub stor: usize,
    pub retr: usize,
    pub list: usize,
    pub rename: usize,
    pub dele: usize,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

impl Tally {
    pub fn add(&mut self, o: &Tally) {
        self.stor += o.stor;
        self.retr += o.retr;
        self.list += o.list;
        self.rename += o.rename;
        self.dele += o.dele;
        self.bytes_up += o.bytes_up;
        self.bytes_down += o.bytes_down;
    }
    pub fn ops(&self) -> usize {
        self.stor + self.retr + self.list + self.rename + self.dele
    }
}

/// Names of an `ls -l` style listing (the ninth field onwards).
pub fn listing_names(listing: &str) -> std::result::Result<Vec<String>, String> {
    let mut v = Vec::new();
    for l in listing.lines().filter(|l| !l.trim().is_empty()) {
        let mut rest = l;
        for _ in 0..8 {
            let t = rest.trim_start_matches(' ');
            let i = t
                .find(' ')
                .ok_or_else(|| format!("short LIST line {l:?}"))?;
            rest = &t[i..];
        }
        v.push(rest[1..].to_string());
    }
    v.sort();
    Ok(v)
}

/// File bytes of a workload: deterministic per seed and size.
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed ^ (len as u64) << 20);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&r.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Run `mix` in directory `dir` (which exists and holds exactly `files`,
/// names relative to it). Every RETR is compared with what was stored,
/// every LIST with the model; `files` is what the directory holds after.
pub fn run_mix(
    ftp: &mut Ftp,
    dir: &str,
    mix: &Mix,
    files: &mut BTreeMap<String, Vec<u8>>,
) -> Result<Tally> {
    let mut rng = Rng::new(mix.seed);
    let mut t = Tally::default();
    let mut serial = 0u32;
    for op in 0..mix.ops {
        let pick = |rng: &mut Rng, files: &BTreeMap<String, Vec<u8>>| -> String {
            let i = rng.below(files.len() as u64) as usize;
            files.keys().nth(i).unwrap().clone()
        };
        // Few files: store more; many: delete more.
        let roll = rng.below(100);
        let kind = if files.is_empty() || (files.len() < 3 && roll < 50) {
            0
        } else if files.len() > 8 && roll < 30 {
            4
        } else {
            match roll {
                0..=29 => 0,
                30..=59 => 1,
                60..=71 => 2,
                72..=85 => 3,
                _ => 4,
            }
        };
        match kind {
            0 => {
                serial += 1;
                let name = format!("f{:03}-{op}.bin", serial);
                let len = rng.range(mix.min_size, mix.max_size);
                let data = content(len, mix.seed.wrapping_add(serial as u64 * 7919));
                ftp.stor(&format!("{dir}/{name}"), &data)?;
                t.stor += 1;
                t.bytes_up += len as u64;
                files.insert(name, data);
            }
            1 => {
                let name = pick(&mut rng, files);
                let got = ftp.retr(&format!("{dir}/{name}"))?;
                let want = &files[&name];
                if &got != want {
                    return Err(Error::Wrong(format!(
                        "RETR {dir}/{name}: {} bytes ({}), stored {} ({})",
                        got.len(),
                        crate::fixture::checksum(&got),
                        want.len(),
                        crate::fixture::checksum(want)
                    )));
                }
                t.retr += 1;
                t.bytes_down += got.len() as u64;
            }
            2 => {
                let l = ftp.list(dir)?;
                let names = listing_names(&l).map_err(Error::Wrong)?;
                let want: Vec<String> = files.keys().cloned().collect();
                if names != want {
                    return Err(Error::Wrong(format!(
                        "LIST {dir}: {names:?}, expected {want:?}"
                    )));
                }
                t.list += 1;
            }
            3 => {
                let from = pick(&mut rng, files);
                serial += 1;
                // A long name with spaces: a FAT long-name entry.
                let to = format!("renamed file {:03} (op {op}).dat", serial);
                ftp.rename(&format!("{dir}/{from}"), &format!("{dir}/{to}"))?;
                let d = files.remove(&from).unwrap();
                files.insert(to, d);
                t.rename += 1;
            }
            _ => {
                let name = pick(&mut rng, files);
                ftp.dele(&format!("{dir}/{name}"))?;
                files.remove(&name);
                t.dele += 1;
            }
        }
    }
    Ok(t)
}

/// Where an abrupt disconnect happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abrupt {
    /// Right after the TCP handshake, before the greeting is read.
    BeforeGreeting,
    /// After `USER`, before `PASS`.
    AfterUser,
    /// `PASS` sent, its reply not read.
    DuringPass,
    /// A wrong `PASS` sent: the server is in its failed-login delay.
    DuringFailedLogin,
    /// Half a command line sent, no line end.
    MidCommand,
    /// `EPSV` answered, no data connection made.
    AfterEpsv,
    /// `EPSV` and the data connection made, no transfer command.
    DataIdle,
    /// A download under way: the control connection reset (then the data).
    RetrControl,
    /// A download under way: the data connection reset, then the control.
    RetrData,
    /// A download under way: both reset at once.
    RetrBoth,
    /// An upload under way: the control connection reset (then the data).
    StorControl,
    /// An upload under way: the data connection reset, then the control.
    StorData,
    /// A listing under way: the control connection reset (then the data).
    ListControl,
    /// A listing under way: the data connection reset, then the control.
    ListData,
}

impl Abrupt {
    pub const ALL: [Abrupt; 14] = [
        Abrupt::BeforeGreeting,
        Abrupt::AfterUser,
        Abrupt::DuringPass,
        Abrupt::DuringFailedLogin,
        Abrupt::MidCommand,
        Abrupt::AfterEpsv,
        Abrupt::DataIdle,
        Abrupt::RetrControl,
        Abrupt::RetrData,
        Abrupt::RetrBoth,
        Abrupt::StorControl,
        Abrupt::StorData,
        Abrupt::ListControl,
        Abrupt::ListData,
    ];
}

/// What [`abrupt`] needs on the server: a file to download (large enough
/// not to fit in the socket buffers), a directory with a long listing, and
/// a directory to upload into.
#[derive(Clone, Debug)]
pub struct AbruptPlan {
    pub user: String,
    pub pass: String,
    pub big_file: String,
    pub long_dir: String,
    pub upload_dir: String,
    pub limit: Duration,
    pub retry: Retry,
}

/// Run one abrupt disconnect of kind `k` (the `n`th: upload names differ).
/// Returns how the login went (a previous reset may still hold a slot for
/// a moment: the server is then full, and the login retries).
pub fn abrupt(addr: SocketAddr, k: Abrupt, n: usize, p: &AbruptPlan) -> Result<Attempts> {
    let limit = p.limit;
    let login = || login_retrying(addr, &p.user, &p.pass, limit, p.retry, n as u64);
    let read_some = |d: &mut TcpStream, what: &str| -> Result<()> {
        let mut b = [0u8; 1024];
        match d.read(&mut b) {
            Ok(n) if n > 0 => Ok(()),
            Ok(_) => Err(Error::Wrong(format!(
                "{what}: data connection ended at once"
            ))),
            Err(e) => Err(Error::Io {
                doing: what.to_string(),
                err: e,
            }),
        }
    };
    let mut attempts = Attempts::default();
    match k {
        Abrupt::BeforeGreeting => {
            // A connection refused (every control socket busy) is retried.
            let t0 = Instant::now();
            let s = loop {
                match TcpStream::connect_timeout(&addr, limit) {
                    Ok(s) => break s,
                    Err(e)
                        if e.kind() == io::ErrorKind::ConnectionRefused
                            && t0.elapsed() < p.retry.give_up =>
                    {
                        attempts.refused += 1;
                        std::thread::sleep(p.retry.backoff);
                    }
                    Err(e) => return Err(io_err("connect")(e)),
                }
            };
            reset(s);
        }
        Abrupt::AfterUser | Abrupt::DuringPass | Abrupt::DuringFailedLogin | Abrupt::MidCommand => {
            // Connect (retrying while full) without logging in.
            let t0 = Instant::now();
            let mut f = loop {
                match Ftp::connect(addr, limit) {
                    Ok(f) => break f,
                    Err(Error::Busy(_)) => attempts.busy += 1,
                    Err(Error::Refused(_)) => attempts.refused += 1,
                    Err(e) => return Err(e),
                }
                if t0.elapsed() > p.retry.give_up {
                    return Err(Error::Wrong("server full for too long".into()));
                }
                std::thread::sleep(p.retry.backoff);
            };
            match k {
                Abrupt::AfterUser => {
                    f.expect(&format!("USER {}", p.user), 331)?;
                }
                Abrupt::DuringPass => {
                    f.expect(&format!("USER {}", p.user), 331)?;
                    f.send(&format!("PASS {}", p.pass))?;
                }
                Abrupt::DuringFailedLogin => {
                    f.expect(&format!("USER {}", p.user), 331)?;
                    f.send("PASS not-the-password")?;
                }
                _ => f.send_raw(b"RETR half-a-comm", "half a command")?,
            }
            reset(f.into_stream());
        }
        Abrupt::AfterEpsv => {
            let (mut f, a) = login()?;
            attempts = a;
            f.expect("EPSV", 229)?;
            reset(f.into_stream());
        }
        Abrupt::DataIdle => {
            let (mut f, a) = login()?;
            attempts = a;
            let d = f.passive()?;
            reset(f.into_stream());
            reset(d);
        }
        Abrupt::RetrControl | Abrupt::RetrData | Abrupt::RetrBoth => {
            let (mut f, a) = login()?;
            attempts = a;
            let mut d = f.passive()?;
            f.start(&format!("RETR {}", p.big_file))?;
            read_some(&mut d, "RETR")?;
            match k {
                Abrupt::RetrControl => {
                    reset(f.into_stream());
                    let _ = read_some(&mut d, "RETR after the control reset");
                    reset(d);
                }
                Abrupt::RetrData => {
                    reset(d);
                    // The server notices the reset (426) or had queued it
                    // all (226); either way the control connection goes next.
                    let r = f.read_reply("RETR after the data reset")?;
                    if r.code != 426 && r.code != 226 && r.code != 451 {
                        return Err(Error::Reply {
                            doing: "RETR after the data reset".into(),
                            reply: r,
                        });
                    }
                    reset(f.into_stream());
                }
                _ => {
                    reset(d);
                    reset(f.into_stream());
                }
            }
        }
        Abrupt::StorControl | Abrupt::StorData => {
            let (mut f, a) = login()?;
            attempts = a;
            let mut d = f.passive()?;
            f.start(&format!("STOR {}/cut-{n:03}.bin", p.upload_dir))?;
            let chunk = content(8192, n as u64);
            d.write_all(&chunk).map_err(io_err("STOR"))?;
            if k == Abrupt::StorControl {
                reset(f.into_stream());
                let _ = d.write_all(&chunk);
                reset(d);
            } else {
                reset(d);
                reset(f.into_stream());
            }
        }
        Abrupt::ListControl | Abrupt::ListData => {
            let (mut f, a) = login()?;
            attempts = a;
            let mut d = f.passive()?;
            f.start(&format!("LIST {}", p.long_dir))?;
            read_some(&mut d, "LIST")?;
            if k == Abrupt::ListControl {
                reset(f.into_stream());
                reset(d);
            } else {
                reset(d);
                reset(f.into_stream());
            }
        }
    }
    Ok(attempts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(lines: &[&str]) -> Reply {
        Reply {
            code: lines[0][..3].parse().unwrap(),
            lines: lines.iter().map(|s| s.to_string()).collect(),
            bare_lf: false,
        }
    }

    #[test]
    fn stat_figures() {
        let r = reply(&[
            "211-FTP server status:",
            " Connected to 192.0.2.1",
            " Logged in as test",
            " TYPE: BINARY, STRUcture: File, MODE: Stream",
            " Sessions: 2 of 4",
            " Open files: 1",
            "211 End of status.",
        ]);
        assert_eq!(
            Stat::parse(&r),
            Some(Stat {
                sessions: 2,
                max_sessions: 4,
                open_files: 1
            })
        );
        assert_eq!(Stat::parse(&reply(&["211 End of status."])), None);
    }

    #[test]
    fn console_stats_line() {
        let s = ConsoleStats::parse(
            "stats: up 2895 ms, sessions 3, open files 1, stack peak 10564 of 22560, eth rx 0\r\n",
        )
        .unwrap();
        assert_eq!((s.sessions, s.open_files, s.sockets), (3, 1, None));
        assert!(s.line.ends_with("eth rx 0"));
        let s = ConsoleStats::parse(
            "stats: up 9 ms, sessions 0, open files 0, sockets listening 5 data-free 5 owned 0 closing 1, stack",
        )
        .unwrap();
        assert_eq!(s.sockets, Some([5, 5, 0, 1]));
        assert_eq!(ConsoleStats::parse("stack: peak 7000 bytes"), None);
    }

    #[test]
    fn listing_names_keep_spaces() {
        let l = "-rw-r--r-- 1 ftp ftp 5 Jan 01 2026 a b.txt\r\n\
                 drwxr-xr-x 1 ftp ftp 0 Jan 01 12:00 dir\r\n";
        assert_eq!(listing_names(l).unwrap(), ["a b.txt", "dir"]);
        assert!(listing_names("short line\r\n").is_err());
    }

    #[test]
    fn content_is_deterministic() {
        assert_eq!(content(1000, 3), content(1000, 3));
        assert_ne!(content(1000, 3), content(1000, 4));
        assert_eq!(content(13, 1).len(), 13);
    }

    /// A server that answers 421 to the first `busy` connections.
    #[test]
    fn retries_until_served() {
        use std::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for i in 0..3 {
                let (mut s, _) = l.accept().unwrap();
                if i < 2 {
                    s.write_all(b"421 Too many sessions\r\n").unwrap();
                    continue;
                }
                s.write_all(b"220 hi\r\n").unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                for answer in ["331 pass", "230 in", "200 type"] {
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    s.write_all(format!("{answer}\r\n").as_bytes()).unwrap();
                }
            }
        });
        let retry = Retry {
            backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(10),
            give_up: Duration::from_secs(10),
        };
        let (_f, n) = login_retrying(addr, "u", "p", Duration::from_secs(5), retry, 1).unwrap();
        assert_eq!(
            n,
            Attempts {
                busy: 2,
                refused: 0
            }
        );
        server.join().unwrap();
    }

    #[test]
    fn reset_sends_rst() {
        use std::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        reset(c);
        let mut b = [0u8; 8];
        let e = s.read(&mut b).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    }
}
