//! The application end to end: a client stack talks FTP to [`App`] over an
//! in-memory cable, with an in-memory storage. Time is simulated.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::string::String;
use std::vec::Vec;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;

use super::*;
use crate::testing::{End, MemFs, Peer, addr, wire};

struct Rig {
    app: App<'static, MemFs>,
    board: End,
    peer: Peer,
    now: u64,
    text: HashMap<SocketHandle, String>,
}

impl Rig {
    fn new(fs: MemFs) -> Rig {
        let (mut board, peer_end, _wire) = wire();
        let resources = Box::leak(Box::new(Resources::new()));
        let settings = Settings::new(NetConfig::TEST_NET);
        let app = App::new(resources, &settings, &mut board, fs, 0);
        Rig {
            app,
            board,
            peer: Peer::new(peer_end),
            now: 0,
            text: HashMap::new(),
        }
    }

    fn step(&mut self) {
        self.now += 1;
        let wake = self.app.poll(self.now, &mut self.board);
        assert!(wake.is_none_or(|w| w >= self.now), "wake-up in the past");
        self.peer.poll(self.now);
    }

    #[track_caller]
    fn until(&mut self, what: &str, mut f: impl FnMut(&mut Rig) -> bool) {
        for _ in 0..5000 {
            if f(self) {
                return;
            }
            self.step();
        }
        panic!("never happened: {what}");
    }

    fn run(&mut self, ms: u64) {
        for _ in 0..ms {
            self.step();
        }
    }

    /// The next complete reply on control connection `c` (its last line).
    #[track_caller]
    fn reply(&mut self, c: SocketHandle) -> String {
        let mut out = None;
        self.until("a reply", |r| {
            let got = r.peer.take_text(c);
            let buf = r.text.entry(c).or_default();
            buf.push_str(&got);
            // A reply ends with a line "NNN text\r\n".
            let mut start = 0;
            while let Some(end) = buf[start..].find("\r\n") {
                let line = &buf[start..start + end];
                if line.len() >= 4
                    && line.as_bytes()[..3].iter().all(u8::is_ascii_digit)
                    && line.as_bytes()[3] == b' '
                {
                    out = Some(line.to_string());
                    *buf = buf[start + end + 2..].to_string();
                    return true;
                }
                start += end + 2;
            }
            false
        });
        out.unwrap()
    }

    #[track_caller]
    fn command(&mut self, c: SocketHandle, line: &str) -> String {
        self.peer.send(c, format!("{line}\r\n").as_bytes());
        self.reply(c)
    }

    #[track_caller]
    fn login(&mut self, to: &str) -> SocketHandle {
        let c = self.peer.connect(addr(to));
        assert!(self.reply(c).starts_with("220"));
        assert!(self.command(c, "USER test").starts_with("331"));
        assert!(self.command(c, "PASS test").starts_with("230"));
        assert!(self.command(c, "TYPE I").starts_with("200"));
        c
    }

    /// Reads a data connection to its end.
    fn drain(&mut self, d: SocketHandle) -> Vec<u8> {
        let mut got = Vec::new();
        self.until("end of data", |r| {
            let sock = r.peer.tcp(d);
            while sock.can_recv() {
                sock.recv(|b| {
                    got.extend_from_slice(b);
                    (b.len(), ())
                })
                .unwrap();
            }
            !sock.may_recv()
        });
        got
    }
}

/// The port of a `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)` reply.
fn pasv_port(reply: &str) -> u16 {
    let inside = &reply[reply.find('(').unwrap() + 1..reply.find(')').unwrap()];
    let n: Vec<u16> = inside
        .split(',')
        .map(|x| x.trim().parse().unwrap())
        .collect();
    n[4] * 256 + n[5]
}

/// The port of a `229 Entering Extended Passive Mode (|||port|)` reply.
fn epsv_port(reply: &str) -> u16 {
    let inside = &reply[reply.find("(|||").unwrap() + 4..];
    inside[..inside.find('|').unwrap()].parse().unwrap()
}

#[test]
fn the_engine_config_is_the_documented_default_with_the_board_settings() {
    let mut settings = Settings::new(NetConfig::TEST_NET);
    settings.pasv_ports = (50000, 50009);
    settings.pasv_address = Some(Ipv4Addr::new(127, 0, 0, 1));
    let c = ftp_config(&settings);
    assert_eq!(c.max_sessions, MAX_SESSIONS);
    assert_eq!(c.pasv_ports, (50000, 50009));
    assert_eq!(c.pasv_address, Some(Ipv4Addr::new(127, 0, 0, 1)));
    assert_eq!(c.anonymous_root, Some("/"));
    assert!(
        c.accounts
            .iter()
            .any(|a| a.user == "test" && a.pass == "test" && a.writable)
    );
}

#[test]
fn sockets_listen_from_the_start_and_an_idle_app_sleeps() {
    let mut r = Rig::new(MemFs::default());
    r.run(5);
    let census = r.app.census();
    assert_eq!(census.control_listening, CONTROL_SOCKETS);
    assert_eq!(census.data_free, DATA_SOCKETS);
    // A TCP connection to the control port is taken (SYN answered) even
    // before the engine says anything.
    let c = r.peer.connect(addr("192.0.2.2:21"));
    r.until("connected", |r| r.peer.state(c) == tcp::State::Established);
}

#[test]
fn greeting_over_ipv4_and_ipv6() {
    let mut r = Rig::new(MemFs::default());
    let c4 = r.peer.connect(addr("192.0.2.2:21"));
    assert!(r.reply(c4).starts_with("220 "));
    let c6 = r.peer.connect(addr("[2001:db8::2]:21"));
    assert!(r.reply(c6).starts_with("220 "));
}

#[test]
fn the_client_past_the_limit_gets_421_and_gets_in_once_one_leaves() {
    let mut r = Rig::new(MemFs::default());
    let clients: Vec<SocketHandle> = (0..MAX_SESSIONS)
        .map(|_| {
            let c = r.peer.connect(addr("192.0.2.2:21"));
            assert!(r.reply(c).starts_with("220"));
            c
        })
        .collect();
    let extra = r.peer.connect(addr("192.0.2.2:21"));
    assert!(
        r.reply(extra).starts_with("421"),
        "refused with 421, not a SYN timeout"
    );
    r.until("refused client closed", |r| !r.peer.tcp(extra).may_recv());
    r.peer.tcp(extra).close();
    assert_eq!(r.app.sessions(), MAX_SESSIONS);

    assert!(r.command(clients[0], "QUIT").starts_with("221"));
    r.until("session ended", |r| r.app.sessions() == MAX_SESSIONS - 1);
    r.peer.tcp(clients[0]).close();
    // The refused client's control socket and the ended session's return
    // to the listening pool.
    r.run(50);
    let late = r.peer.connect(addr("192.0.2.2:21"));
    assert!(r.reply(late).starts_with("220"));
}

#[test]
fn passive_retr_over_ipv4_and_extended_passive_stor_over_ipv6() {
    let file: Vec<u8> = (0..20_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut r = Rig::new(MemFs::default().with_file("/data.bin", &file));

    let c = r.login("192.0.2.2:21");
    let port = pasv_port(&r.command(c, "PASV"));
    let d = r
        .peer
        .connect(SocketAddr::new(addr("192.0.2.2:0").ip(), port));
    r.peer.send(c, b"RETR data.bin\r\n");
    assert!(r.reply(c).starts_with("150"));
    assert_eq!(r.drain(d), file);
    r.peer.tcp(d).close();
    assert!(r.reply(c).starts_with("226"));

    let c6 = r.login("[2001:db8::2]:21");
    let port = epsv_port(&r.command(c6, "EPSV"));
    let d6 = r
        .peer
        .connect(SocketAddr::new(addr("[2001:db8::2]:0").ip(), port));
    r.peer.send(c6, b"STOR up.bin\r\n");
    assert!(r.reply(c6).starts_with("150"));
    let upload: Vec<u8> = (0..12_000u32).map(|i| (i % 97) as u8).collect();
    let mut sent = 0;
    r.until("upload sent", |r| {
        if sent < upload.len() {
            sent += r.peer.tcp(d6).send_slice(&upload[sent..]).unwrap();
        }
        sent == upload.len()
    });
    r.peer.tcp(d6).close();
    assert!(r.reply(c6).starts_with("226"));
    assert_eq!(r.app.storage().nodes.get("/up.bin"), Some(&Some(upload)));

    for c in [c, c6] {
        assert!(r.command(c, "QUIT").starts_with("221"));
        r.until("server closes", |r| !r.peer.tcp(c).may_recv());
        r.peer.tcp(c).close();
    }
    r.until("all sockets back", |r| {
        r.app.census()
            == Census {
                control_listening: CONTROL_SOCKETS,
                data_free: DATA_SOCKETS,
                owned: 0,
                closing: 0,
            }
    });
    assert_eq!(r.app.storage().open_files(), 0);
}

#[cfg(feature = "diag")]
#[test]
fn discard_and_chargen_services() {
    use crate::diag::{CHARGEN_PORT, DISCARD_PORT};
    let mut r = Rig::new(MemFs::default());

    let d = r
        .peer
        .connect(SocketAddr::new(addr("192.0.2.2:0").ip(), DISCARD_PORT));
    r.until("connected", |r| r.peer.state(d) == tcp::State::Established);
    let mut sent = 0;
    r.until("100 KB discarded", |r| {
        if sent < 100_000 {
            sent += r.peer.tcp(d).send_slice(&[0x55; 4096]).unwrap();
        }
        sent >= 100_000 && r.peer.tcp(d).send_queue() == 0
    });
    r.peer.tcp(d).close();
    r.until("discard closes too", |r| {
        r.peer.state(d) == tcp::State::TimeWait
    });

    let c = r
        .peer
        .connect(SocketAddr::new(addr("[2001:db8::2]:0").ip(), CHARGEN_PORT));
    let mut got = Vec::new();
    r.until("100 KB of characters", |r| {
        let sock = r.peer.tcp(c);
        while sock.can_recv() {
            sock.recv(|b| {
                got.extend_from_slice(b);
                (b.len(), ())
            })
            .unwrap();
        }
        got.len() >= 100_000
    });
    let first: Vec<u8> = (b' '..b' ' + 72).collect();
    assert_eq!(&got[..72], &first[..]);
    assert_eq!(&got[72..74], b"\r\n");
    assert_eq!(got[74], b'!');
    r.peer.tcp(c).abort();
    // Both services listen again.
    r.run(20);
    let again = r
        .peer
        .connect(SocketAddr::new(addr("192.0.2.2:0").ip(), CHARGEN_PORT));
    r.until("chargen again", |r| r.peer.tcp(again).can_recv());
}

#[cfg(feature = "diag")]
#[test]
fn sdbench_service_asks_the_board_and_answers_one_line() {
    use crate::diag::{SDBENCH_PORT, SdBenchResult};
    let mut r = Rig::new(MemFs::default());
    let to = SocketAddr::new(addr("192.0.2.2:0").ip(), SDBENCH_PORT);

    let c = r.peer.connect(to);
    r.until("connected", |r| r.peer.state(c) == tcp::State::Established);
    r.peer.send(c, b"1");
    r.run(20);
    assert!(!r.app.serve_sdbench(|_, _| panic!("no whole line yet")));
    r.peer.send(c, b"6\r\n");
    let mut asked = None;
    r.until("the request reaches the board", |r| {
        r.app.serve_sdbench(|_fs, mib| {
            asked = Some(mib);
            Ok(SdBenchResult {
                bytes: u64::from(mib) << 20,
                read_ms: 5,
                write_ms: 7,
            })
        })
    });
    assert_eq!(asked, Some(16));
    let mut got = String::new();
    r.until("answer and close", |r| {
        got.push_str(&r.peer.take_text(c));
        !r.peer.tcp(c).may_recv()
    });
    assert_eq!(got, "sdbench bytes=16777216 read_ms=5 write_ms=7\r\n");
    r.peer.tcp(c).close();
    r.until("closed on both sides", |r| {
        r.peer.state(c) == tcp::State::Closed
    });
    r.run(20);

    // A bad request gets an error line at once; the board is never asked.
    let c = r.peer.connect(to);
    r.until("connected again", |r| {
        r.peer.state(c) == tcp::State::Established
    });
    r.peer.send(c, b"lots\n");
    let mut got = String::new();
    r.until("error and close", |r| {
        assert!(!r.app.serve_sdbench(|_, _| panic!("not a request")));
        got.push_str(&r.peer.take_text(c));
        !r.peer.tcp(c).may_recv()
    });
    assert_eq!(
        got,
        "sdbench error: expected a number of MiB from 1 to 4096\r\n"
    );
}

#[test]
fn diagnostic_services_are_off_when_the_settings_say_so() {
    let (mut board, peer_end, _wire) = wire();
    let resources = Box::leak(Box::new(Resources::new()));
    let mut settings = Settings::new(NetConfig::TEST_NET);
    assert_eq!(settings.diag, cfg!(feature = "diag"));
    settings.diag = false;
    let mut app = App::new(resources, &settings, &mut board, MemFs::default(), 0);
    let mut peer = Peer::new(peer_end);
    let c = peer.connect(SocketAddr::new(addr("192.0.2.2:0").ip(), 19));
    for now in 1..200 {
        app.poll(now, &mut board);
        peer.poll(now);
    }
    assert_eq!(peer.state(c), tcp::State::Closed, "refused with RST");
}

#[test]
fn active_mode_retr_over_ipv4_and_ipv6() {
    let file: Vec<u8> = (0..9_000u32).map(|i| (i % 13) as u8).collect();
    let mut r = Rig::new(MemFs::default().with_file("/f.bin", &file));
    for (control, port_cmd, port) in [
        ("192.0.2.2:21", "PORT 192,0,2,1,7,208", 2000),
        ("[2001:db8::2]:21", "EPRT |2|2001:db8::1|2001|", 2001),
    ] {
        let c = r.login(control);
        let l = r.peer.listen(port);
        assert!(r.command(c, port_cmd).starts_with("200"), "{port_cmd}");
        r.peer.send(c, b"RETR f.bin\r\n");
        assert!(r.reply(c).starts_with("150"));
        assert_eq!(r.drain(l), file);
        r.peer.tcp(l).close();
        assert!(r.reply(c).starts_with("226"));
        assert!(r.command(c, "QUIT").starts_with("221"));
        r.until("server closes", |r| !r.peer.tcp(c).may_recv());
        r.peer.tcp(c).close();
    }
    r.until("all sockets back", |r| {
        r.app.census()
            == Census {
                control_listening: CONTROL_SOCKETS,
                data_free: DATA_SOCKETS,
                owned: 0,
                closing: 0,
            }
    });
}

#[test]
fn four_sessions_transfer_at_once_and_then_again() {
    let file: Vec<u8> = (0..30_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let mut r = Rig::new(MemFs::default().with_file("/f.bin", &file));
    let clients: Vec<SocketHandle> = (0..MAX_SESSIONS).map(|_| r.login("192.0.2.2:21")).collect();
    // Two rounds: the second finds the first round's data sockets reclaimed.
    for round in 0..2 {
        let data: Vec<SocketHandle> = clients
            .iter()
            .map(|&c| {
                let port = pasv_port(&r.command(c, "PASV"));
                let d = r
                    .peer
                    .connect(SocketAddr::new(addr("192.0.2.2:0").ip(), port));
                r.peer.send(c, b"RETR f.bin\r\n");
                d
            })
            .collect();
        for &c in &clients {
            assert!(r.reply(c).starts_with("150"), "round {round}");
        }
        let mut got = vec![Vec::new(); data.len()];
        r.until("all four downloads", |r| {
            let mut done = true;
            for (d, g) in data.iter().zip(got.iter_mut()) {
                let sock = r.peer.tcp(*d);
                while sock.can_recv() {
                    sock.recv(|b| {
                        g.extend_from_slice(b);
                        (b.len(), ())
                    })
                    .unwrap();
                }
                done &= !sock.may_recv();
            }
            done
        });
        for (d, g) in data.iter().zip(&got) {
            assert_eq!(g, &file, "round {round}");
            r.peer.tcp(*d).close();
        }
        for &c in &clients {
            assert!(r.reply(c).starts_with("226"), "round {round}");
        }
    }
}

#[test]
fn a_burst_past_the_limit_all_get_421_and_a_close_never_a_reset() {
    let mut r = Rig::new(MemFs::default());
    let clients: Vec<SocketHandle> = (0..MAX_SESSIONS)
        .map(|_| {
            let c = r.peer.connect(addr("192.0.2.2:21"));
            assert!(r.reply(c).starts_with("220"));
            c
        })
        .collect();
    // More clients at once than the spare control socket and the refusers
    // together: their SYNs leave in one poll of the peer.
    let burst = 1 + REFUSERS + 2;
    let extra: Vec<SocketHandle> = (0..burst)
        .map(|_| r.peer.connect(addr("192.0.2.2:21")))
        .collect();
    for &c in &extra {
        let reply = r.reply(c);
        assert!(reply.starts_with("421 "), "{reply:?}");
        r.until("refused client closed", |r| !r.peer.tcp(c).may_recv());
        // The board's FIN, not a reset (which would leave it CLOSED).
        assert_eq!(r.peer.state(c), tcp::State::CloseWait);
        r.peer.tcp(c).close();
    }
    assert_eq!(r.app.sessions(), MAX_SESSIONS);
    // The sessions are untouched, and once one leaves a newcomer gets in.
    assert!(r.command(clients[1], "NOOP").starts_with("200"));
    assert!(r.command(clients[0], "QUIT").starts_with("221"));
    r.until("session ended", |r| r.app.sessions() == MAX_SESSIONS - 1);
    r.peer.tcp(clients[0]).close();
    let late = r.peer.connect(addr("192.0.2.2:21"));
    assert!(r.reply(late).starts_with("220"));
    // Every refuser and control socket listens again.
    r.run(100);
    let c = r.app.census();
    assert_eq!(c.closing, 0, "{c:?}");
}
