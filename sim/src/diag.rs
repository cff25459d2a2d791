//! `sim --diag` on host sockets: the discard (RFC 863) and chargen (RFC 864)
//! services of the firmware's diagnostic build, with plain std sockets, so
//! that the benchmarks have the raw-TCP ceiling of the host target too.
//!
//! (With `--tap`, the virtual board serves ftpd-app's own services on
//! smoltcp instead: see `ftpd_app::diag`.)
//!
//! Each service takes any number of connections, one thread each; the
//! threads end with the connection or the process.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::thread;

use ftpd_app::diag::Pattern;

/// Where the services listen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiagAddrs {
    pub discard: SocketAddr,
    pub chargen: SocketAddr,
}

/// Binds discard on `ip:ports.0` and chargen on `ip:ports.1` (0: any free
/// port) and serves them from background threads.
pub fn spawn(ip: IpAddr, ports: (u16, u16)) -> io::Result<DiagAddrs> {
    let discard = TcpListener::bind((ip, ports.0))?;
    let chargen = TcpListener::bind((ip, ports.1))?;
    let addrs = DiagAddrs {
        discard: discard.local_addr()?,
        chargen: chargen.local_addr()?,
    };
    serve(discard, "discard", do_discard)?;
    serve(chargen, "chargen", do_chargen)?;
    Ok(addrs)
}

fn serve(
    l: TcpListener,
    name: &'static str,
    f: fn(TcpStream) -> io::Result<u64>,
) -> io::Result<()> {
    thread::Builder::new()
        .name(format!("diag-{name}"))
        .spawn(move || {
            for conn in l.incoming() {
                let Ok(s) = conn else { continue };
                let peer = s.peer_addr().ok();
                let _ = thread::Builder::new().spawn(move || {
                    let r = f(s);
                    log::debug!("diag {name}: {peer:?}: {r:?} bytes");
                });
            }
        })?;
    Ok(())
}

/// Reads and drops everything; closes when the client does.
fn do_discard(mut s: TcpStream) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0;
    loop {
        match s.read(&mut buf)? {
            0 => return Ok(total),
            n => total += n as u64,
        }
    }
}

/// One period of the pattern: 95 lines of 74 bytes, after which it repeats.
const PERIOD: usize = 95 * 74;

/// Sends the pattern until the client goes away. The buffer holds whole
/// periods, so it is filled once and sent again and again: a ceiling must
/// not be slowed by making its bytes.
fn do_chargen(mut s: TcpStream) -> io::Result<u64> {
    let mut buf = vec![0u8; PERIOD * 9];
    Pattern::default().fill(&mut buf);
    let mut total = 0;
    loop {
        if s.write_all(&buf).is_err() {
            return Ok(total);
        }
        total += buf.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_repeats_after_one_period_and_not_before() {
        let mut two = vec![0u8; 2 * PERIOD];
        Pattern::default().fill(&mut two);
        assert_eq!(two[..PERIOD], two[PERIOD..]);
        // Not a shorter period: line 1 differs from line 0.
        assert_ne!(two[..74], two[74..148]);
    }
}
