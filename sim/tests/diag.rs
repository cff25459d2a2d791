//! `sim --diag` on host sockets: the discard and chargen services answer
//! where the log line says, discard swallows what it is sent and closes
//! after the client, chargen sends the RFC 864 pattern.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use common::{Backend, Fixture};

const GUARD: Duration = Duration::from_secs(20);

/// The two addresses of the `diag: discard A chargen B` log line.
fn diag_addrs(fx: &Fixture) -> (SocketAddr, SocketAddr) {
    let log = std::fs::read_to_string(fx.log_path()).unwrap();
    let line = log
        .lines()
        .find_map(|l| l.split_once("diag: discard ").map(|(_, r)| r.to_string()))
        .unwrap_or_else(|| panic!("no diag line in the log:\n{log}"));
    let (d, c) = line.split_once(" chargen ").expect("`A chargen B`");
    (d.trim().parse().unwrap(), c.trim().parse().unwrap())
}

/// The RFC 864 pattern, written out from the RFC's description: line `i`
/// is the 72 printable characters starting at `' ' + i % 95`, then CR LF.
fn rfc864(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 74);
    let mut i = 0;
    while out.len() < len {
        out.extend((0..72).map(|k| b' ' + ((i + k) % 95) as u8));
        out.extend_from_slice(b"\r\n");
        i += 1;
    }
    out.truncate(len);
    out
}

#[test]
fn discard_and_chargen_on_host_sockets() {
    let fx = Fixture::new(Backend::Dir).unwrap();
    let server = fx.start(&["--diag"]);
    let (discard, chargen) = diag_addrs(&fx);
    assert_eq!(discard.ip(), server.addr.ip());
    assert_ne!(discard.port(), server.port());
    assert_ne!(discard.port(), chargen.port());

    // discard: 3 MB in, nothing out, closed after we are done.
    let mut s = TcpStream::connect_timeout(&discard, GUARD).unwrap();
    s.set_read_timeout(Some(GUARD)).unwrap();
    let block = vec![0x5a; 64 << 10];
    for _ in 0..48 {
        s.write_all(&block).unwrap();
    }
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "discard sends nothing");

    // chargen: the pattern over several of its 95-line periods.
    let want = rfc864(1 << 20);
    let mut s = TcpStream::connect_timeout(&chargen, GUARD).unwrap();
    s.set_read_timeout(Some(GUARD)).unwrap();
    let mut got = vec![0u8; want.len()];
    s.read_exact(&mut got).unwrap();
    assert!(got == want, "chargen sends the RFC 864 pattern");
    drop(s);
    // A second client starts at the beginning again.
    let mut s = TcpStream::connect_timeout(&chargen, GUARD).unwrap();
    s.set_read_timeout(Some(GUARD)).unwrap();
    let mut got = vec![0u8; 74];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, want[..74]);
    server.stop();
}

#[test]
fn diag_ports_on_request_and_off_without_diag() {
    let fx = Fixture::new(Backend::Dir).unwrap();
    let server = fx.start(&[]);
    let log = std::fs::read_to_string(fx.log_path()).unwrap();
    assert!(!log.contains("diag:"), "no services without --diag:\n{log}");
    server.stop();

    // Two free ports, asked for by number.
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (d, c) = (free(), free());
    let fx = Fixture::new(Backend::Dir).unwrap();
    let server = fx.start(&["--diag", "--diag-ports", &format!("{d},{c}")]);
    let (discard, chargen) = diag_addrs(&fx);
    assert_eq!((discard.port(), chargen.port()), (d, c));
    let mut s = TcpStream::connect_timeout(&chargen, GUARD).unwrap();
    s.set_read_timeout(Some(GUARD)).unwrap();
    let mut got = [0u8; 10];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b" !\"#$%&'()");
    server.stop();
}
