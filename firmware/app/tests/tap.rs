//! The virtual board on a real TAP device: `host::run_tap` serves inside a
//! network namespace this test creates (`ftpd-test-app-PID-N`, TAP `ftpd0`
//! with 192.0.2.1/24 and 2001:db8::1/64 on the host side, the board at
//! 192.0.2.2 and 2001:db8::2), and clients run in the same namespace.
//!
//! Needs root, `/dev/net/tun` and `ip` (iproute2); the FTP-level checks also
//! use `curl` when it is installed. Without them the tests fail when `CI` is
//! `true` and say loudly that they did not run otherwise.

use std::io::Read;
#[cfg(feature = "diag")]
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use ftpd::Storage;
use ftpd::storage::{DirEntry, Error, Kind, Metadata, Result as FsResult, WriteMode};
use ftpd_app::{NetConfig, Settings, host};

const PREFIX: &str = "ftpd-test-app-";
const TAP: &str = "ftpd0";
const TIMEOUT: Duration = Duration::from_secs(10);

/// Says why this machine cannot run the TAP tests, if it cannot.
fn missing_privilege() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some(
            "not root (creating a network namespace and a TAP device needs CAP_NET_ADMIN)".into(),
        );
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("`ip` (iproute2) is not installed".into());
    }
    None
}

/// True when the test may go on; otherwise fails under CI, warns elsewhere.
fn can_run(test: &str) -> bool {
    let Some(why) = missing_privilege() else {
        return true;
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: cannot run the TAP test under CI: {why}");
    }
    eprintln!("\n*** {test}: NOT RUN: {why} ***\n");
    false
}

fn installed(tool: &str) -> bool {
    Command::new(tool).arg("-V").output().is_ok()
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A network namespace with the host side of the board's cable in it.
struct Netns {
    name: String,
}

impl Netns {
    fn create() -> Netns {
        remove_leftovers();
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]).unwrap();
        let ns = Netns { name };
        let n = ns.name.as_str();
        for cmd in [
            &["netns", "exec", n, "ip", "link", "set", "lo", "up"][..],
            &[
                "netns", "exec", n, "ip", "tuntap", "add", "dev", TAP, "mode", "tap",
            ],
            &[
                "netns",
                "exec",
                n,
                "ip",
                "addr",
                "add",
                "192.0.2.1/24",
                "dev",
                TAP,
            ],
            &[
                "netns",
                "exec",
                n,
                "ip",
                "-6",
                "addr",
                "add",
                "2001:db8::1/64",
                "dev",
                TAP,
                "nodad",
            ],
            &["netns", "exec", n, "ip", "link", "set", TAP, "up"],
        ] {
            ip(cmd).unwrap();
        }
        ns
    }

    /// Moves the calling thread into the namespace.
    fn enter(&self) {
        let f = std::fs::File::open(format!("/run/netns/{}", self.name)).unwrap();
        // SAFETY: setns on an open namespace file; affects this thread only.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
    }

    /// Runs `f` in a new thread inside the namespace.
    fn spawn<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
        let ns = Netns {
            name: self.name.clone(),
        };
        std::thread::spawn(move || {
            ns.enter();
            std::mem::forget(ns); // not the owner: must not delete it
            f()
        })
    }

    fn exec(&self, cmd: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .output()
            .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Deletes namespaces of earlier runs of this test whose process is gone.
fn remove_leftovers() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// The board running `run_tap` in its namespace, stopped on drop.
struct Board {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<std::io::Result<BenchFs>>>,
}

impl Board {
    fn start(ns: &Netns) -> Board {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready) = mpsc::channel();
        let flag = stop.clone();
        let thread = ns.spawn(move || {
            let settings = Settings::new(NetConfig::TEST_NET);
            host::run_tap(TAP, &settings, BenchFs, &flag, &mut |line| {
                eprintln!("{line}");
                let _ = ready_tx.send(());
            })
        });
        let mut board = Board {
            stop,
            thread: Some(thread),
        };
        if ready.recv_timeout(TIMEOUT).is_err() {
            let err = board.finish();
            panic!("the board did not start: {err:?}");
        }
        board
    }

    fn running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t.join().expect("the board panicked").map(drop),
            None => Ok(()),
        }
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        let r = self.finish();
        if !std::thread::panicking() {
            r.expect("run_tap failed");
        }
    }
}

/// Connects from inside the namespace and returns what the server says
/// first (up to the first CRLF), or the error.
fn first_line(ns: &Netns, to: &str) -> Result<String, String> {
    let to: SocketAddr = to.parse().unwrap();
    ns.spawn(move || {
        let mut s =
            TcpStream::connect_timeout(&to, TIMEOUT).map_err(|e| format!("connect {to}: {e}"))?;
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            match s.read(&mut byte) {
                Ok(0) => break,
                Ok(_) => line.push(byte[0]),
                Err(e) => {
                    return Err(format!(
                        "read from {to}: {e} (got {:?})",
                        String::from_utf8_lossy(&line)
                    ));
                }
            }
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    })
    .join()
    .unwrap()
}

#[test]
fn tcp_reaches_the_board_over_ipv4_and_ipv6() {
    if !can_run("tcp_reaches_the_board_over_ipv4_and_ipv6") {
        return;
    }
    let ns = Netns::create();
    let board = Board::start(&ns);
    if installed("ping") {
        for to in ["192.0.2.2", "2001:db8::2"] {
            let ping = ns.exec(&["ping", "-c", "1", "-W", "5", to]);
            assert!(
                ping.status.success(),
                "ping {to}: {}",
                String::from_utf8_lossy(&ping.stdout)
            );
        }
    } else {
        eprintln!("*** ping is not installed: ICMP echo not checked ***");
    }
    for to in ["192.0.2.2:21", "[2001:db8::2]:21"] {
        let r = ns
            .spawn(move || TcpStream::connect_timeout(&to.parse().unwrap(), TIMEOUT).map(drop))
            .join()
            .unwrap();
        assert!(r.is_ok(), "TCP connect to {to}: {r:?}");
    }
    // Nothing listens on port 22: refused at once, not a timeout.
    let r = ns
        .spawn(|| TcpStream::connect_timeout(&"192.0.2.2:22".parse().unwrap(), TIMEOUT))
        .join()
        .unwrap();
    assert_eq!(
        r.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    assert!(board.running());
}

#[test]
fn ftp_greeting_and_listing_over_tap() {
    if !can_run("ftp_greeting_and_listing_over_tap") {
        return;
    }
    let ns = Netns::create();
    let _board = Board::start(&ns);
    for to in ["192.0.2.2:21", "[2001:db8::2]:21"] {
        let line = first_line(&ns, to).unwrap();
        assert!(line.starts_with("220 "), "greeting from {to}: {line:?}");
    }
    if !installed("curl") {
        eprintln!("*** curl is not installed: FTP listing not checked ***");
        return;
    }
    for url in [
        "ftp://test:test@192.0.2.2/",
        "ftp://test:test@[2001:db8::2]/",
    ] {
        let curl = ns.exec(&["curl", "-sS", "--max-time", "10", "--list-only", url]);
        assert!(
            curl.status.success(),
            "curl {url}: {}",
            String::from_utf8_lossy(&curl.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&curl.stdout).trim_end(),
            "big.bin",
            "NLST of {url}"
        );
    }
}

/// RETR and STOR of 16 MB with curl next to the raw-TCP ceiling (chargen,
/// discard) on the same TAP path. Prints the figures; asserts only that
/// every byte arrives.
#[cfg(feature = "diag")]
#[test]
fn transfer_figures_over_tap() {
    if !can_run("transfer_figures_over_tap") || !installed("curl") {
        return;
    }
    let ns = Netns::create();
    let _board = Board::start(&ns);
    let out = ns.exec(&[
        "curl",
        "-sS",
        "--max-time",
        "60",
        "-o",
        "/dev/null",
        "-w",
        "%{size_download} %{speed_download}",
        "ftp://test:test@192.0.2.2/big.bin",
    ]);
    assert!(
        out.status.success(),
        "RETR: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut it = text.split_whitespace().map(|x| x.parse::<f64>().unwrap());
    let (size, retr) = (it.next().unwrap(), it.next().unwrap());
    assert_eq!(size as u64, BIG);

    let upload = std::env::temp_dir().join(format!("ftpd-app-tap-{}.bin", std::process::id()));
    std::fs::write(&upload, (0..BIG).map(big_byte).collect::<Vec<u8>>()).unwrap();
    let out = ns.exec(&[
        "curl",
        "-sS",
        "--max-time",
        "60",
        "-T",
        upload.to_str().unwrap(),
        "-w",
        "%{size_upload} %{speed_upload}",
        "ftp://test:test@192.0.2.2/up.bin",
    ]);
    let _ = std::fs::remove_file(&upload);
    assert!(
        out.status.success(),
        "STOR: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut it = text.split_whitespace().map(|x| x.parse::<f64>().unwrap());
    let (size, stor) = (it.next().unwrap(), it.next().unwrap());
    assert_eq!(size as u64, BIG);

    let (chargen, discard) = ns
        .spawn(|| {
            let mut buf = vec![0u8; 64 << 10];
            let mut s =
                TcpStream::connect_timeout(&"192.0.2.2:19".parse().unwrap(), TIMEOUT).unwrap();
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            let t = std::time::Instant::now();
            for _ in 0..BIG / buf.len() as u64 {
                s.read_exact(&mut buf).unwrap();
            }
            let chargen = BIG as f64 / t.elapsed().as_secs_f64();
            let mut s =
                TcpStream::connect_timeout(&"192.0.2.2:9".parse().unwrap(), TIMEOUT).unwrap();
            let t = std::time::Instant::now();
            for _ in 0..BIG / buf.len() as u64 {
                s.write_all(&buf).unwrap();
            }
            s.shutdown(std::net::Shutdown::Write).unwrap();
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            assert_eq!(s.read(&mut buf).unwrap(), 0, "discard closes after us");
            (chargen, BIG as f64 / t.elapsed().as_secs_f64())
        })
        .join()
        .unwrap();
    let mb = |x: f64| x / 1e6;
    eprintln!(
        "16 MB over TAP (this build's profile): RETR {:.1} MB/s, chargen {:.1} MB/s ({:.0} %); \
         STOR {:.1} MB/s, discard {:.1} MB/s ({:.0} %)",
        mb(retr),
        mb(chargen),
        100.0 * retr / chargen,
        mb(stor),
        mb(discard),
        100.0 * stor / discard
    );
}

/// Cable pull: the TAP link goes down under a running stream (the chargen
/// service) and comes back; the board keeps running and the stream resumes.
#[cfg(feature = "diag")]
#[test]
fn the_board_survives_a_cable_pull() {
    if !can_run("the_board_survives_a_cable_pull") {
        return;
    }
    let ns = Netns::create();
    let board = Board::start(&ns);
    let (pulled_tx, pulled) = mpsc::channel::<()>();
    let (read_tx, read) = mpsc::channel::<()>();
    let client = ns.spawn(move || -> Result<(), String> {
        let to = "192.0.2.2:19".parse().unwrap();
        let mut s = TcpStream::connect_timeout(&to, TIMEOUT).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut buf = vec![0u8; 1_000_000];
        let t = std::time::Instant::now();
        s.read_exact(&mut buf)
            .map_err(|e| format!("before the pull: {e}"))?;
        eprintln!("chargen over TAP: 1 MB in {:?}", t.elapsed());
        read_tx.send(()).unwrap();
        pulled.recv().unwrap();
        // Read through whatever the kernel buffered, then new data.
        for _ in 0..3 {
            s.read_exact(&mut buf)
                .map_err(|e| format!("after the pull: {e}"))?;
        }
        s.write_all(b"bye").map_err(|e| e.to_string())?;
        Ok(())
    });
    read.recv_timeout(TIMEOUT).expect("stream started");
    ip(&["netns", "exec", &ns.name, "ip", "link", "set", TAP, "down"]).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(board.running(), "the board stopped while the link was down");
    ip(&["netns", "exec", &ns.name, "ip", "link", "set", TAP, "up"]).unwrap();
    pulled_tx.send(()).unwrap();
    client.join().unwrap().unwrap();
    assert!(board.running());
}

/// A storage with one generated file, `/big.bin` ([`BIG`] bytes), whose
/// writes go nowhere: the file system costs nothing in a throughput figure.
struct BenchFs;

const BIG: u64 = 16 << 20;

fn big_byte(i: u64) -> u8 {
    (i % 251) as u8
}

impl Storage for BenchFs {
    /// Read position, or `None` for a sink.
    type File = Option<u64>;
    fn open_read(&mut self, path: &str, offset: u64) -> FsResult<Option<u64>> {
        match path {
            "/big.bin" => Ok(Some(offset)),
            "/" => Err(Error::IsADirectory),
            _ => Err(Error::NotFound),
        }
    }
    fn open_write(&mut self, path: &str, _: WriteMode) -> FsResult<Option<u64>> {
        match path {
            "/" => Err(Error::IsADirectory),
            _ => Ok(None),
        }
    }
    fn read(&mut self, file: &mut Option<u64>, buf: &mut [u8]) -> FsResult<usize> {
        let pos = file.as_mut().ok_or(Error::Io)?;
        let n = (BIG.saturating_sub(*pos) as usize).min(buf.len());
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = big_byte(*pos + i as u64);
        }
        *pos += n as u64;
        Ok(n)
    }
    fn write(&mut self, _: &mut Option<u64>, _: &[u8]) -> FsResult<()> {
        Ok(())
    }
    fn close(&mut self, _: Option<u64>) -> FsResult<()> {
        Ok(())
    }
    fn metadata(&mut self, path: &str) -> FsResult<Metadata> {
        match path {
            "/" => Ok(Metadata {
                kind: Kind::Dir,
                size: 0,
                modified: None,
            }),
            "/big.bin" => Ok(Metadata {
                kind: Kind::File,
                size: BIG,
                modified: None,
            }),
            _ => Err(Error::NotFound),
        }
    }
    fn list(
        &mut self,
        path: &str,
        skip: usize,
        f: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> FsResult<()> {
        if self.metadata(path)?.kind != Kind::Dir {
            return Err(Error::NotADirectory);
        }
        if skip == 0 {
            f(&DirEntry {
                name: "big.bin",
                meta: self.metadata("/big.bin")?,
            });
        }
        Ok(())
    }
    fn mkdir(&mut self, _: &str) -> FsResult<()> {
        Err(Error::PermissionDenied)
    }
    fn rmdir(&mut self, _: &str) -> FsResult<()> {
        Err(Error::NotFound)
    }
    fn remove(&mut self, _: &str) -> FsResult<()> {
        Err(Error::NotFound)
    }
    fn rename(&mut self, _: &str, _: &str) -> FsResult<()> {
        Err(Error::NotFound)
    }
}
