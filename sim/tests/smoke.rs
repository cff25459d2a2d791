//! The `sim` binary end to end: started on 127.0.0.1:0 (or [::1]:0), the
//! `listening on ftp://ADDR:PORT` line awaited, then FTP spoken over a plain
//! `TcpStream`, as any client would.
//!
//! These tests need the real engine (`ftpd::Server`); against a stub they
//! fail (no `220` greeting), they are not ignored.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

/// Hang guard only: a broken server fails the test instead of hanging it.
const GUARD: Duration = Duration::from_secs(20);

struct Sim {
    child: Child,
    addr: SocketAddr,
    stdout_rest: Option<BufReader<std::process::ChildStdout>>,
    stderr_path: PathBuf,
}

impl Sim {
    fn start(dir: &Path, args: &[&str]) -> Sim {
        let stderr_path = dir.join("stderr.txt");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr_path).unwrap())
            .spawn()
            .expect("start sim");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let Some(addr) = line.trim_end().strip_prefix("listening on ftp://") else {
            let _ = child.kill();
            panic!(
                "expected the listening line, got {line:?}; stderr:\n{}",
                fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        };
        let addr: SocketAddr = addr.parse().expect("ADDR:PORT");
        assert_ne!(addr.port(), 0);
        Sim {
            child,
            addr,
            stdout_rest: Some(out),
            stderr_path,
        }
    }

    fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Sends `sig` and waits for the exit; returns the status and the rest
    /// of stdout.
    fn stop(&mut self, sig: Signal) -> (ExitStatus, String) {
        kill_process(Pid::from_child(&self.child), sig).unwrap();
        let end = Instant::now() + GUARD;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("sim did not stop on {sig:?}");
            }
            thread::sleep(Duration::from_millis(10));
        };
        let mut rest = String::new();
        self.stdout_rest
            .take()
            .unwrap()
            .read_to_string(&mut rest)
            .unwrap();
        (status, rest)
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Just enough of an FTP client.
struct Client {
    ctrl: BufReader<TcpStream>,
    peer: SocketAddr,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(GUARD)).unwrap();
        Client {
            ctrl: BufReader::new(s),
            peer: addr,
        }
    }

    /// One reply, multi-line replies joined: (code, full text).
    fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        let mut first = String::new();
        self.ctrl.read_line(&mut first).unwrap();
        assert!(
            first.ends_with("\r\n"),
            "reply line without CRLF: {first:?}"
        );
        text.push_str(&first);
        let code: u16 = first
            .get(..3)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| {
                panic!("not a reply: {first:?}");
            });
        if first.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{code} ");
            loop {
                let mut line = String::new();
                assert!(
                    self.ctrl.read_line(&mut line).unwrap() > 0,
                    "EOF in a multi-line reply"
                );
                text.push_str(&line);
                if line.starts_with(&end) {
                    break;
                }
            }
        }
        (code, text)
    }

    fn cmd(&mut self, line: &str) -> (u16, String) {
        self.ctrl
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.reply()
    }

    fn expect(&mut self, line: &str, code: u16) -> String {
        let (got, text) = self.cmd(line);
        assert_eq!(got, code, "{line} -> {text}");
        text
    }

    fn login(&mut self, user: &str, pass: &str) {
        assert_eq!(self.reply().0, 220);
        self.expect(&format!("USER {user}"), 331);
        self.expect(&format!("PASS {pass}"), 230);
    }

    /// EPSV, then the data connection.
    fn epsv(&mut self) -> TcpStream {
        let text = self.expect("EPSV", 229);
        // 229 Entering Extended Passive Mode (|||port|)
        let inner = text
            .split("(|||")
            .nth(1)
            .and_then(|t| t.split('|').next())
            .unwrap();
        let port: u16 = inner.parse().unwrap();
        let d = TcpStream::connect((self.peer.ip(), port)).unwrap();
        d.set_read_timeout(Some(GUARD)).unwrap();
        d
    }

    /// A download or a listing: the bytes, with 150 before and 226 after.
    fn fetch(&mut self, line: &str) -> Vec<u8> {
        let mut d = self.epsv();
        let (code, text) = self.cmd(line);
        assert!(code == 150 || code == 125, "{line} -> {text}");
        let mut data = Vec::new();
        d.read_to_end(&mut data).unwrap();
        assert_eq!(self.reply().0, 226, "after {line}");
        data
    }

    fn store(&mut self, line: &str, bytes: &[u8]) -> (u16, String) {
        let mut d = self.epsv();
        let (code, text) = self.cmd(line);
        if code != 150 && code != 125 {
            return (code, text);
        }
        d.write_all(bytes).unwrap();
        d.shutdown(Shutdown::Write).unwrap();
        drop(d);
        self.reply()
    }
}

fn base_args(root: &Path) -> Vec<String> {
    vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--root".into(),
        root.display().to_string(),
    ]
}

fn start(dir: &Path, extra: &[&str]) -> Sim {
    let root = dir.join("root");
    fs::create_dir_all(&root).unwrap();
    let mut args = base_args(&root);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Sim::start(dir, &args)
}

#[test]
fn ftp_session_over_host_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("sim.log");
    let mut sim = start(dir.path(), &["--log", log.to_str().unwrap()]);
    let root = dir.path().join("root");
    let mut c = sim.connect();
    c.login("test", "test");
    c.expect("SYST", 215);
    assert!(c.expect("PWD", 257).contains("\"/\""));
    c.expect("TYPE I", 200);

    // Upload, then read it back byte for byte (a little over 1 MiB, so
    // the transfer takes many engine steps).
    let payload: Vec<u8> = (0..1_200_000u32).map(|i| (i % 251) as u8).collect();
    let (code, text) = c.store("STOR hello.bin", &payload);
    assert_eq!(code, 226, "{text}");
    assert!(
        fs::read(root.join("hello.bin")).unwrap() == payload,
        "bytes on disk"
    );
    assert!(
        c.expect("SIZE hello.bin", 213)
            .contains(&payload.len().to_string())
    );
    assert!(c.fetch("RETR hello.bin") == payload, "bytes downloaded");
    // Resume: REST then RETR.
    c.expect("REST 1000000", 350);
    assert!(c.fetch("RETR hello.bin") == payload[1_000_000..]);

    c.expect("MKD sub dir", 257);
    assert!(root.join("sub dir").is_dir());
    c.expect("CWD sub dir", 250);
    assert!(c.expect("PWD", 257).contains("\"/sub dir\""));
    let (code, _) = c.store("STOR inner.txt", b"inner\r\n");
    assert_eq!(code, 226);
    c.expect("CDUP", 250);
    let listing = String::from_utf8(c.fetch("LIST")).unwrap();
    assert!(
        listing.contains("hello.bin") && listing.contains("sub dir"),
        "{listing}"
    );
    let names = String::from_utf8(c.fetch("NLST")).unwrap();
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["hello.bin", "sub dir"]);

    c.expect("RNFR hello.bin", 350);
    c.expect("RNTO firmware-v1.2.3.bin", 250);
    assert!(root.join("firmware-v1.2.3.bin").is_file());
    c.expect("DELE firmware-v1.2.3.bin", 250);
    assert!(!root.join("firmware-v1.2.3.bin").exists());
    c.expect("RETR nothing-here", 550);
    // No path leads out of the root.
    c.expect("CWD ../../..", 250);
    assert!(c.expect("PWD", 257).contains("\"/\""));
    c.expect("QUIT", 221);

    let (status, rest) = sim.stop(Signal::TERM);
    assert!(status.success(), "{status:?}");
    assert!(
        !rest.contains("listening on"),
        "exactly one listening line: {rest:?}"
    );
    // One log line per command, with the session, on stderr and in --log.
    for text in [sim.stderr(), fs::read_to_string(&log).unwrap()] {
        for cmd in [
            "USER test",
            "STOR hello.bin",
            "RETR hello.bin",
            "MKD sub dir",
            "QUIT",
        ] {
            assert!(
                text.lines().any(|l| l.contains("[1]") && l.contains(cmd)),
                "{cmd} in log:\n{text}"
            );
        }
        assert!(!text.contains("PASS test"), "passwords are not logged");
    }
}

#[test]
fn ipv6_listen_and_epsv() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("v6.txt"), b"over IPv6").unwrap();
    let mut sim = Sim::start(
        dir.path(),
        &["--listen", "[::1]:0", "--root", root.to_str().unwrap()],
    );
    assert!(sim.addr.is_ipv6());
    let mut c = sim.connect();
    c.login("test", "test");
    c.expect("TYPE I", 200);
    assert_eq!(c.fetch("RETR v6.txt"), b"over IPv6");
    c.expect("QUIT", 221);
    assert!(sim.stop(Signal::INT).0.success());
}

#[test]
fn accounts_and_limits_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir_all(root.join("pub")).unwrap();
    fs::write(root.join("pub/readme.txt"), b"public").unwrap();
    fs::write(root.join("secret.txt"), b"not for bob").unwrap();
    let mut sim = start(
        dir.path(),
        &[
            "--user",
            "bob:pw:ro:/pub",
            "--no-anonymous",
            "--max-sessions",
            "1",
            "--pasv-address",
            "192.0.2.7",
        ],
    );
    let mut c = sim.connect();
    c.login("bob", "pw");
    // bob's / is /pub, read-only (what he can list: `user_root_confines_listings`).
    c.expect("TYPE I", 200);
    assert_eq!(c.fetch("RETR readme.txt"), b"public");
    c.expect("RETR ../secret.txt", 550);
    c.expect("RETR /secret.txt", 550);
    let (code, text) = c.store("STOR new.txt", b"x");
    assert_eq!(code, 550, "read-only: {text}");
    assert!(!root.join("pub/new.txt").exists());
    // The advertised passive address (nothing connects to it).
    assert!(c.expect("PASV", 227).contains("(192,0,2,7,"));
    // One session at most: the next one is turned away with 421.
    let mut second = sim.connect();
    assert_eq!(second.reply().0, 421);
    c.expect("QUIT", 221);
    drop(c);
    // The default account is gone, and so is anonymous.
    let mut third = connect_when_free(&sim);
    third.expect("USER test", 331);
    assert_ne!(third.cmd("PASS test").0, 230);
    drop(third);
    let mut fourth = connect_when_free(&sim);
    fourth.expect("USER anonymous", 331);
    assert_ne!(fourth.cmd("PASS guest@").0, 230);
    assert!(sim.stop(Signal::TERM).0.success());
}

#[test]
fn user_root_confines_listings() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir_all(root.join("pub/docs")).unwrap();
    fs::write(root.join("pub/readme.txt"), b"public").unwrap();
    fs::write(root.join("secret.txt"), b"not for bob").unwrap();
    let mut sim = start(dir.path(), &["--user", "bob:pw:ro:/pub"]);
    let mut c = sim.connect();
    c.login("bob", "pw");
    for cmd in ["NLST", "NLST /", "LIST", "MLSD"] {
        let listing = String::from_utf8(c.fetch(cmd)).unwrap();
        assert!(
            listing.contains("readme.txt") && listing.contains("docs"),
            "{cmd}: {listing}"
        );
        assert!(
            !listing.contains("secret.txt"),
            "{cmd} shows the real root: {listing}"
        );
    }
    let (code, stat) = c.cmd("STAT /");
    assert!(code == 211 || code == 212 || code == 213, "{stat}");
    assert!(
        stat.contains("readme.txt") && !stat.contains("secret.txt"),
        "STAT /: {stat}"
    );
    c.expect("CWD docs", 250);
    assert_eq!(c.fetch("NLST"), b"");
    c.expect("QUIT", 221);
    assert!(sim.stop(Signal::TERM).0.success());
}

/// A session once the single slot is free again (the previous session's
/// close is seen by the server a moment after the client's).
fn connect_when_free(sim: &Sim) -> Client {
    let end = Instant::now() + GUARD;
    loop {
        let mut c = sim.connect();
        match c.reply().0 {
            220 => return c,
            421 if Instant::now() < end => thread::sleep(Duration::from_millis(20)),
            code => panic!("greeting {code}"),
        }
    }
}

/// A client that half-closes its control connection while RETR waits for
/// the data connection, then resets it: the server sees the reset at once
/// and frees the session's slot, as the boards do, instead of holding it
/// until the 30 s data timeout.
#[test]
fn fin_then_reset_while_a_transfer_waits_frees_the_slot() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = start(dir.path(), &["--max-sessions", "1"]);
    fs::write(dir.path().join("root/f.bin"), vec![7u8; 100_000]).unwrap();
    let mut c = sim.connect();
    c.login("test", "test");
    c.expect("TYPE I", 200);
    c.expect("PASV", 227);
    let s = c.ctrl.get_mut();
    s.write_all(b"RETR f.bin\r\n").unwrap();
    thread::sleep(Duration::from_millis(200));
    s.shutdown(Shutdown::Write).unwrap();
    thread::sleep(Duration::from_millis(200));
    socket2::SockRef::from(&*s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(c);
    let t0 = Instant::now();
    let mut next = connect_when_free(&sim);
    let waited = t0.elapsed();
    assert!(
        waited < Duration::from_secs(10),
        "the slot came free only after {waited:?} (the data timeout is 30 s)"
    );
    next.expect("USER test", 331);
    next.expect("PASS test", 230);
    next.expect("QUIT", 221);
    assert!(sim.stop(Signal::TERM).0.success());
}

#[test]
fn stop_on_sigterm_and_sigint_says_421_and_exits_0() {
    for sig in [Signal::TERM, Signal::INT] {
        let dir = tempfile::tempdir().unwrap();
        let mut sim = start(dir.path(), &[]);
        let mut c = sim.connect();
        c.login("test", "test");
        let (status, rest) = sim.stop(sig);
        assert!(status.success(), "{sig:?}: {status:?}");
        assert!(rest.is_empty(), "nothing more on stdout: {rest:?}");
        assert_eq!(c.reply().0, 421, "{sig:?}: the session is told");
        let mut tail = Vec::new();
        c.ctrl
            .read_to_end(&mut tail)
            .expect("then an orderly close");
        assert!(tail.is_empty());
    }
}

#[test]
fn missing_root_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let out = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--root",
            missing.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no listening line");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-dir"), "{err}");
}
