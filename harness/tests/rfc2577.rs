//! RFC 2577 port stealing, through the real network path of each target: a
//! third host connects to the passive port the server just opened for its
//! client, before the client does. The server must not serve the thief (no
//! byte of the listing reaches it: the connection is refused, reset or
//! closed empty) and the real client's transfer must still work.
//!
//! - host-dir (`sim --listen 127.0.0.1`): the thief is 127.0.0.2 (another
//!   loopback address, another host as far as the server can tell).
//! - sim (virtual board on TAP) and qemu: the thief is 192.0.2.3, a second
//!   address on the host side of the board's cable, inside the board's
//!   namespace.
//!
//! Bounce (PORT/EPRT toward a third address or a port below 1024), brute
//! force, user enumeration and paths leaving the root are played by the
//! scenarios (`scenarios/badinput/*`, `scenarios/rfc/login.ftp`) on every
//! target.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use harness::load::Ftp;
use harness::target::Target;
use harness::testkit::{self, Board, Card};

const LIMIT: Duration = Duration::from_secs(20);
/// The thief's own address on the boards' side of the cable.
const THIEF_ON_TAP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);

/// What the thief got from the passive port.
#[derive(Debug)]
enum Thief {
    /// The connection was refused or reset, or timed out unanswered.
    Refused(#[allow(dead_code, reason = "shown through Debug")] std::io::ErrorKind),
    /// Connected; then the server closed (or reset) it having sent these
    /// bytes, or sent nothing for a while.
    Got(Vec<u8>),
}

/// Connect to `port` on `server` from `from`; read what comes for up to 3 s.
fn steal(from: IpAddr, server: SocketAddr) -> Thief {
    let sock = socket2_connect(from, server);
    let mut s = match sock {
        Ok(s) => s,
        Err(e) => return Thief::Refused(e.kind()),
    };
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    Thief::Got(got)
}

/// A TCP connection from a chosen local address (std cannot bind before
/// connecting, libc can).
fn socket2_connect(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let (IpAddr::V4(from), SocketAddr::V4(to)) = (from, to) else {
        panic!("IPv4 only here");
    };
    // SAFETY: plain socket calls on a descriptor we own; it is handed to a
    // TcpStream (which closes it) or closed here on failure.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let close_with = |e: std::io::Error| {
            libc::close(fd);
            Err(e)
        };
        let sa = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(ip).to_be(),
            },
            sin_zero: [0; 8],
        };
        let local = sa(from, 0);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, &local as *const _ as *const libc::sockaddr, len) != 0 {
            return close_with(std::io::Error::last_os_error());
        }
        let tv = libc::timeval {
            tv_sec: 5,
            tv_usec: 0,
        };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        let remote = sa(*to.ip(), to.port());
        if libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len) != 0 {
            return close_with(std::io::Error::last_os_error());
        }
        Ok(TcpStream::from_raw_fd(fd))
    }
}

/// The scenario: log in, open a passive port, let the thief at it first,
/// then LIST through it as the client. Runs where `server` is reachable.
fn steal_then_list(server: SocketAddr, thief: IpAddr) {
    let mut ftp = Ftp::login(server, "test", "test", LIMIT).expect("login");
    ftp.expect("MKD stolen", 257).expect("MKD");
    for name in ["a.txt", "b.txt"] {
        ftp.stor(&format!("stolen/{name}"), b"secret listing\r\n")
            .expect("STOR");
    }
    for verb in ["PASV", "EPSV"] {
        let r = ftp.cmd(verb).expect(verb);
        let port = match verb {
            "PASV" => harness::client::parse_pasv(r.text()).map(|a| a.port()),
            _ => harness::client::parse_epsv(r.text()),
        }
        .unwrap_or_else(|| panic!("{verb}: unparsable reply {:?}", r.lines));
        let data = SocketAddr::new(server.ip(), port);
        // The thief comes first, and then asks for the listing it hopes to
        // receive by being the first to connect.
        let got = steal(thief, data);
        if let Thief::Got(bytes) = &got {
            assert!(
                bytes.is_empty(),
                "{verb}: the thief at {thief} received {} bytes from the passive port: {:?}",
                bytes.len(),
                String::from_utf8_lossy(bytes)
            );
        }
        // The real client still gets its listing through the same port.
        let mut d = TcpStream::connect_timeout(&data, LIMIT)
            .unwrap_or_else(|e| panic!("{verb}: the client's own data connection: {e}"));
        d.set_read_timeout(Some(LIMIT)).unwrap();
        ftp.start("NLST stolen").expect("NLST after the thief");
        let mut listing = String::new();
        d.read_to_string(&mut listing).expect("the listing");
        drop(d);
        ftp.finish("NLST").expect("226 after NLST");
        let mut names: Vec<&str> = listing
            .lines()
            .map(|l| l.rsplit('/').next().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["a.txt", "b.txt"], "{verb}: listing {listing:?}");
        eprintln!("{verb}: thief from {thief}: {got:?}; the client's listing came through");
    }
    ftp.quit().expect("QUIT");
}

#[test]
fn port_stealing_on_host_dir() {
    let t = Target::by_name("host-dir").unwrap();
    if let Err(u) = t.probe(testkit::ctx()) {
        testkit::not_run("port_stealing_on_host_dir", &u.reason);
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt
        .block_on(t.start(testkit::ctx(), &Default::default(), None))
        .expect("start host-dir");
    let addr = server.addr;
    std::thread::spawn(move || steal_then_list(addr, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))))
        .join()
        .unwrap_or_else(|p| {
            eprintln!("--- server log:\n{}", server.log());
            std::panic::resume_unwind(p)
        });
    rt.block_on(server.stop());
}

fn on_board(name: &str) {
    let test = format!("port_stealing on {name}");
    let Some(t) = testkit::board(name, &test, &[]) else {
        return;
    };
    let card = Card::new();
    let b = Board::start(t, &card);
    testkit::run(
        b.cmd("ip")
            .args(["addr", "add", "192.0.2.3/24", "dev", harness::netns::TAP]),
        Duration::from_secs(10),
    )
    .ok("adding the thief's address");
    let addr = harness::netns::board_addr(false);
    harness::netns::run_in_blocking(&b.netns, move || {
        steal_then_list(addr, IpAddr::V4(THIEF_ON_TAP))
    })
    .expect("entering the namespace");
    b.stop();
    card.assert_clean();
}

#[test]
fn port_stealing_on_sim() {
    on_board("sim");
}

#[test]
fn port_stealing_on_qemu() {
    on_board("qemu");
}
