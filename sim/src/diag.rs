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

/// Sends the pattern until the client goes away.
fn do_chargen(mut s: TcpStream) -> io::Result<u64> {
    let mut p = Pattern::default();
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0;
    loop {
        p.fill(&mut buf);
        if s.write_all(&buf).is_err() {
            return Ok(total);
        }
        total += buf.len() as u64;
    }
}
