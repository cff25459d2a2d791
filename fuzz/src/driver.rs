//! Plays a [`Scenario`] against a `Server<MockNet, _, 2>` and checks it.
//!
//! During the run, after every single `poll`:
//! - every byte sent on a control connection forms well-formed reply lines
//!   ([`ReplyChecker`]), and no reply is left cut in the middle;
//! - every storage call gets a normalised path inside the users' roots
//!   ([`CheckedFs`]);
//! - no more files are open than sessions exist, and no more sockets are
//!   held than three per session;
//! - `poll` settles: [`MAX_POLLS`] polls in a row that all report progress
//!   are a livelock; and once it reports no progress, the wake-up it asks
//!   for lies in the future (else the board's poll loop spins).
//!
//! MockNet itself panics on a send or receive on a released socket and on a
//! double release.
//!
//! At the end every client leaves (RST, or FIN when the scenario says so,
//! then the wake-ups the server asks for are followed, short of the idle
//! timeout); then no session may be left, every socket must be released and no file
//! open; and a fresh client must get `220`, log in, `NOOP` and `QUIT`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use ftpd::config::{Account, Config};
use ftpd::net::SockState;
use ftpd::testing::{CLIENT_IP, MemFs, MockNet};
use ftpd::{Instant, Server};

use crate::checked_fs::CheckedFs;
use crate::replies::ReplyChecker;
use crate::scenario::*;

/// Polls in a row that may all report progress before the run is called a
/// livelock. The largest file is 9000 bytes, moved 300+ bytes per poll at
/// the least (smallest data buffer), and a STOR moves what the client sent.
pub const MAX_POLLS: usize = 20_000;

/// Another host on the client's network (port stealing, third party).
pub const OTHER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);

/// All accounts live under this directory unless [`FLAG_ROOT_ACCOUNTS`]:
/// then `CheckedFs` asserts that no storage path leaves it.
pub const JAIL: &str = "/srv";

/// Accounts rooted at `/` instead of under [`JAIL`] (exercises the other
/// branch of `to_storage`; the storage-side jail check is off then).
pub const FLAG_ROOT_ACCOUNTS: u8 = 32;

const JAILED: &[Account<'static>] = &[
    Account {
        user: "test",
        pass: "test",
        root: "/srv",
        writable: true,
    },
    Account {
        user: "jail",
        pass: "pw",
        root: "/srv/home/",
        writable: true,
    },
    Account {
        user: "ro",
        pass: "ro",
        root: "/srv",
        writable: false,
    },
];

const AT_ROOT: &[Account<'static>] = &[
    Account {
        user: "test",
        pass: "test",
        root: "/",
        writable: true,
    },
    Account {
        user: "jail",
        pass: "pw",
        root: "/srv/home",
        writable: true,
    },
    Account {
        user: "ro",
        pass: "ro",
        root: "/",
        writable: false,
    },
];

pub const IDLE_TIMEOUT_MS: u64 = 60_000;
pub const DATA_TIMEOUT_MS: u64 = 10_000;
pub const LOGIN_FAIL_DELAY_MS: u64 = 1_000;

pub fn config(flags: u8) -> Config<'static> {
    let at_root = flags & FLAG_ROOT_ACCOUNTS != 0;
    Config {
        accounts: if at_root { AT_ROOT } else { JAILED },
        anonymous_root: Some("/srv/pub"),
        banner: "ftpd fuzz",
        max_sessions: if flags & FLAG_ONE_SESSION != 0 { 1 } else { 2 },
        idle_timeout_ms: IDLE_TIMEOUT_MS,
        data_timeout_ms: DATA_TIMEOUT_MS,
        login_fail_delay_ms: LOGIN_FAIL_DELAY_MS,
        max_login_failures: 3,
        pasv_ports: if flags & FLAG_ONE_PASV_PORT != 0 {
            (50000, 50000)
        } else {
            (50000, 50003)
        },
        pasv_address: if flags & FLAG_PASV_ADDRESS != 0 {
            Some(Ipv4Addr::new(203, 0, 113, 7))
        } else {
            None
        },
    }
}

/// The files every run starts with: the users' tree under `/srv`, and
/// things beside it that a jailed user must never reach (a sibling whose
/// name shares the prefix among them).
pub fn fixture() -> MemFs {
    let filler: Vec<u8> = (0..9000u32).map(|i| (i * 7 % 251) as u8).collect();
    MemFs::new()
        .dir("/etc")
        .file("/etc/passwd", b"root:x:0:0\n")
        .file("/srvx", b"sibling file")
        .dir("/srv-secret")
        .file("/srv-secret/key", b"secret")
        .file("/readme.txt", b"outside\n")
        .dir("/srv")
        .file("/srv/readme.txt", b"Hello\nworld\r\nlast\r")
        .file("/srv/big.bin", &filler)
        .file("/srv/empty.txt", b"")
        .dir("/srv/sub")
        .file("/srv/sub/file.bin", &filler[..5000])
        .dir("/srv/sub/deeper")
        .dir("/srv/home")
        .file("/srv/home/mine.txt", b"mine")
        .dir("/srv/pub")
        .file("/srv/pub/r.txt", b"public\n")
        .dir("/srv/empty")
        .dir("/srv/with space")
        .file("/srv/with space/a \"q\".txt", b"quoted")
}

#[derive(Default)]
struct Ctl {
    checker: ReplyChecker,
    /// Bytes of the socket's `tx` already fed to the checker.
    seen: usize,
    /// Lines already looked at by [`World::expect`].
    read: usize,
}

struct World<'a> {
    server: Server<'a, MockNet, CheckedFs, 2>,
    net: MockNet,
    fs: CheckedFs,
    now: u64,
    /// Control sockets in the order the client opened them.
    conns: Vec<usize>,
    ctl: BTreeMap<usize, Ctl>,
    /// Sockets the client does not read (their send buffer fills up).
    not_reading: BTreeSet<usize>,
    polls: u64,
}

fn ip(from: From) -> IpAddr {
    match from {
        From::Client => CLIENT_IP.into(),
        From::Other => OTHER_IP.into(),
        From::ClientMapped => CLIENT_IP.to_ipv6_mapped().into(),
    }
}

impl<'a> World<'a> {
    fn poll(&mut self) -> ftpd::Poll {
        let p = self
            .server
            .poll(Instant::from_millis(self.now), &mut self.net, &mut self.fs);
        self.polls += 1;
        self.check();
        p
    }

    /// Polls until nothing happens; returns when the server wants to be
    /// polled again.
    fn run(&mut self) -> Option<Instant> {
        for _ in 0..MAX_POLLS {
            let p = self.poll();
            if !p.progressed {
                if let Some(t) = p.next_wake {
                    // A wake-up that is already due, with nothing done,
                    // makes the board's poll loop spin.
                    assert!(
                        t.millis() > self.now,
                        "poll did nothing but asks to be polled again at once \
                         (wake {t:?}, now {}): a busy loop\n{}",
                        self.now,
                        self.sockets()
                    );
                }
                return p.next_wake;
            }
        }
        panic!("the server never settles: {MAX_POLLS} polls in a row reported progress");
    }

    fn check(&mut self) {
        for (&s, c) in self.ctl.iter_mut() {
            let sock = &mut self.net.socks[s];
            c.checker.feed(&sock.tx[c.seen..]);
            assert!(
                c.checker.complete(),
                "a reply was cut in the middle (control socket {s}, send buffer {} of {} bytes): \
                 {:?} is all that was sent of it\n{}",
                sock.tx.len(),
                sock.cap,
                String::from_utf8_lossy(c.checker.pending()),
                c.checker.context()
            );
            if self.not_reading.contains(&s) {
                c.seen = sock.tx.len();
            } else {
                sock.tx.clear();
                c.seen = 0;
            }
        }
        for (s, sock) in self.net.socks.iter_mut().enumerate() {
            if !self.ctl.contains_key(&s) && !self.not_reading.contains(&s) {
                sock.tx.clear();
            }
        }
        let sessions = self.server.sessions();
        let open = ftpd::Storage::open_files(&self.fs);
        assert!(
            open <= sessions,
            "{open} files open with {sessions} sessions (at most one each)"
        );
        let live = self.net.socks.iter().filter(|s| !s.released).count();
        assert!(
            live <= 3 * sessions,
            "{live} sockets held with {sessions} sessions (control, data, listener at most)"
        );
    }

    fn connect(&mut self, from: From) -> usize {
        let port = 30000 + self.net.socks.len() as u16;
        let s = self.net.client_connects(ip(from), port);
        self.conns.push(s);
        self.ctl.insert(s, Ctl::default());
        self.run();
        s
    }

    fn conn(&self, i: u8) -> Option<usize> {
        (!self.conns.is_empty()).then(|| self.conns[usize::from(i) % self.conns.len()])
    }

    /// Data connections the client holds, newest first.
    fn data_socks(&self) -> Vec<usize> {
        (0..self.net.socks.len())
            .rev()
            .filter(|&s| {
                let k = &self.net.socks[s];
                !self.ctl.contains_key(&s)
                    && !k.released
                    && k.state != SockState::Listening
                    && !k.reset
            })
            .collect()
    }

    fn data_sock(&self, i: u8) -> Option<usize> {
        let d = self.data_socks();
        (!d.is_empty()).then(|| d[usize::from(i) % d.len()])
    }

    fn target(&self, t: Target) -> Option<usize> {
        match t {
            Target::Ctrl(i) => self.conn(i),
            Target::Data(i) => self.data_sock(i),
        }
    }

    fn act(&mut self, a: &Action) {
        match a {
            Action::Connect(from) => {
                self.connect(*from);
            }
            Action::Send { conn, bytes, poll } => {
                let Some(s) = self.conn(*conn) else { return };
                let k = &mut self.net.socks[s];
                if k.fin || k.reset {
                    return; // the client cannot send after FIN or RST
                }
                k.rx.extend(bytes.iter().copied());
                if *poll {
                    self.run();
                }
            }
            Action::Passive { which, from } => {
                let listening: Vec<usize> = (0..self.net.socks.len())
                    .rev()
                    .filter(|&s| {
                        let k = &self.net.socks[s];
                        k.state == SockState::Listening && !k.released
                    })
                    .collect();
                if listening.is_empty() {
                    return;
                }
                let s = listening[usize::from(*which) % listening.len()];
                let port = self.net.socks[s].local.port();
                self.net.connect_passive(port, ip(*from));
                self.run();
            }
            Action::Data { which, bytes } => {
                let Some(s) = self.data_sock(*which) else {
                    return;
                };
                let k = &mut self.net.socks[s];
                if k.fin {
                    return;
                }
                k.rx.extend(bytes.iter().copied());
                self.run();
            }
            Action::CtrlFin(i) | Action::CtrlRst(i) => {
                let Some(s) = self.conn(*i) else { return };
                let k = &mut self.net.socks[s];
                if matches!(a, Action::CtrlFin(_)) {
                    k.fin = true;
                } else {
                    k.reset = true;
                }
                self.run();
            }
            Action::DataFin(i) | Action::DataRst(i) => {
                let Some(s) = self.data_sock(*i) else { return };
                let k = &mut self.net.socks[s];
                if matches!(a, Action::DataFin(_)) {
                    k.fin = true;
                } else {
                    k.reset = true;
                }
                self.run();
            }
            Action::Advance(ms) => {
                self.now += u64::from(*ms % 200_000);
                self.run();
            }
            Action::Cap(t, c) => {
                let Some(s) = self.target(*t) else { return };
                self.net.socks[s].cap = CAPS[usize::from(*c) % CAPS.len()];
                self.run();
            }
            Action::Reading(t) => {
                let Some(s) = self.target(*t) else { return };
                if !self.not_reading.remove(&s) {
                    self.not_reading.insert(s);
                }
                self.run();
            }
            Action::Refuse => {
                self.net.refuse_connects = !self.net.refuse_connects;
                self.run();
            }
        }
    }

    /// Every client leaves: RST, or FIN on every connection it holds.
    fn everyone_leaves(&mut self, fin: bool) {
        for k in self.net.socks.iter_mut() {
            if k.state == SockState::Listening {
                continue; // nobody connected: nothing for the client to close
            }
            if fin {
                k.fin = true;
            } else {
                k.reset = true;
            }
        }
        if fin {
            // Clients that leave with FIN read what is left (one that stops
            // reading is held until the idle timeout, by design).
            for k in self.net.socks.iter_mut() {
                k.cap = CAPS[CAPS.len() - 1];
            }
            self.not_reading.clear();
        }
        let mut wake = self.run();
        if fin {
            // After a FIN the server still finishes what it was doing: a
            // wrong password's delay, each pipelined transfer command
            // waiting for its data connection (425 after the data timeout),
            // a stalled transfer. Follow the wake-ups it asks for, but
            // never wait for the idle timeout: a client that left must not
            // hold its session that long.
            let limit = DATA_TIMEOUT_MS.max(LOGIN_FAIL_DELAY_MS) + 1;
            for _ in 0..256 {
                if self.server.sessions() == 0 {
                    break;
                }
                let Some(t) = wake else { break };
                if t.millis() > self.now + limit {
                    break;
                }
                self.now = self.now.max(t.millis());
                wake = self.run();
            }
        }
        let sessions = self.server.sessions();
        assert_eq!(
            sessions,
            0,
            "{sessions} sessions left after every client left\n{}",
            self.sockets()
        );
        let held: Vec<usize> = (0..self.net.socks.len())
            .filter(|&s| !self.net.socks[s].released)
            .collect();
        assert!(
            held.is_empty(),
            "sockets never released: {held:?}\n{}",
            self.sockets()
        );
        let open = ftpd::Storage::open_files(&self.fs);
        assert_eq!(open, 0, "{open} files left open after every client left");
    }

    /// The sockets still held, and the last replies, for failure messages.
    fn sockets(&self) -> String {
        let mut out = String::new();
        for (i, k) in self.net.socks.iter().enumerate() {
            if k.released {
                continue;
            }
            out += &format!(
                "socket {i}: {:?} local {} peer {:?} fin {} reset {} cap {} tx {} rx {:?}\n",
                k.state,
                k.local,
                k.peer,
                k.fin,
                k.reset,
                k.cap,
                k.tx.len(),
                String::from_utf8_lossy(&k.rx.iter().copied().take(80).collect::<Vec<u8>>())
            );
            if let Some(c) = self.ctl.get(&i) {
                out += &c.checker.context();
            }
        }
        out
    }

    /// The lines received on `s` since the last call.
    fn new_lines(&mut self, s: usize) -> Vec<String> {
        let c = self.ctl.get_mut(&s).expect("a control socket");
        let l = c.checker.lines[c.read..].to_vec();
        c.read = c.checker.lines.len();
        l
    }

    #[track_caller]
    fn expect(&mut self, s: usize, send: &str, want: &str) {
        self.net.socks[s].rx.extend(send.bytes());
        self.run();
        let got = self.new_lines(s);
        assert!(
            got.len() == 1 && got[0].starts_with(want),
            "fresh session: {send:?} should get one {want:?} reply, got {got:?}"
        );
    }

    /// A new client after the storm: greeting, login, NOOP, QUIT.
    fn fresh_session(&mut self) {
        let s = self.connect(From::Client);
        let got = self.new_lines(s);
        assert!(
            got.len() == 1 && got[0].starts_with("220 "),
            "fresh session: expected the 220 greeting, got {got:?}"
        );
        self.expect(s, "USER test\r\n", "331 ");
        self.expect(s, "PASS test\r\n", "230 ");
        self.expect(s, "NOOP\r\n", "200 ");
        self.expect(s, "QUIT\r\n", "221 ");
        assert!(
            self.net.socks[s].released,
            "QUIT did not close the connection"
        );
        assert_eq!(self.server.sessions(), 0);
        assert_eq!(ftpd::Storage::open_files(&self.fs), 0);
    }
}

/// Plays `s` with every check; panics on the first violation.
pub fn run(s: &Scenario) {
    let data_len = if s.flags & FLAG_SMALL_BUFFER != 0 {
        600
    } else {
        4096
    };
    let mut buf = vec![0u8; data_len];
    let config = config(s.flags);
    let jail = (s.flags & FLAG_ROOT_ACCOUNTS == 0).then_some(JAIL);
    let mut w = World {
        server: Server::new(config, &mut buf),
        net: MockNet::default(),
        fs: CheckedFs {
            fs: fixture(),
            jail: None,
        },
        now: 0,
        conns: Vec::new(),
        ctl: BTreeMap::new(),
        not_reading: BTreeSet::new(),
        polls: 0,
    };
    // The fixture lies partly outside the jail; the engine must not.
    w.fs.jail = jail;
    // Most inputs want a client: the first one is there from the start.
    w.connect(From::Client);
    for a in &s.actions {
        w.act(a);
    }
    w.everyone_leaves(s.flags & FLAG_END_WITH_FIN != 0);
    w.fresh_session();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(conn: u8, s: &str) -> Action {
        Action::Send {
            conn,
            bytes: s.as_bytes().to_vec(),
            poll: true,
        }
    }

    #[test]
    fn an_empty_scenario_passes() {
        run(&Scenario::default());
    }

    #[test]
    fn a_normal_session_passes_both_ways_of_leaving() {
        for flags in [0, FLAG_END_WITH_FIN, FLAG_ROOT_ACCOUNTS | FLAG_SMALL_BUFFER] {
            run(&Scenario {
                flags,
                actions: vec![
                    send(0, "USER test\r\nPASS test\r\n"),
                    send(0, "TYPE I\r\nPASV\r\n"),
                    Action::Passive {
                        which: 0,
                        from: From::Client,
                    },
                    send(0, "RETR big.bin\r\n"),
                    send(0, "EPSV\r\nSTOR up.bin\r\n"),
                    Action::Passive {
                        which: 0,
                        from: From::Client,
                    },
                    Action::Data {
                        which: 0,
                        bytes: vec![1; 5000],
                    },
                    Action::DataFin(0),
                    send(0, "LIST\r\n"),
                    Action::Advance(10_001),
                    Action::Connect(From::Other),
                    send(1, "USER anonymous\r\nPASS x\r\nPWD\r\n"),
                ],
            });
        }
    }
}
