//! # ftpd-footprint: what the engine costs on a Cortex-M3
//!
//! Three probe firmwares for `thumbv7m-none-eabi`, linked (never run) by
//! `cargo run` in this directory, which then reads their ELF files and prints
//! the table (see `src/main.rs`):
//!
//! - `engine`: `ftpd::Server<Net, Storage, 4>` over the do-nothing [`Net`]
//!   and [`Storage`] below, polled in a loop;
//! - `baseline`: the same firmware without the engine: the same entry, panic
//!   handler and [`Net`]/[`Storage`] code, called directly;
//! - `resources`: `ftpd_app::Resources` in its `static`, to check that it
//!   costs no flash (it must be all zeros, in `.bss`).
//!
//! The engine's flash is `engine - baseline` (`.text + .rodata`): everything
//! the engine adds to a firmware, the parts of `core` it pulls in included.
//!
//! Sizes of types on the target are handed to the host tool as the sizes of
//! zeroed arrays in `.bss` (`FOOTPRINT_*` symbols): the ELF's symbol table
//! says how long each array is.
//!
//! The do-nothing implementations answer through [`core::hint::black_box`],
//! so the optimiser cannot tell what they return and keeps every path of the
//! engine that a real network and file system could reach.
#![no_std]

use core::hint::black_box;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use ftpd::net::{NetError, SockState};
use ftpd::storage::{DirEntry, Error, Kind, Metadata, Result, WriteMode};

/// A socket handle the size of `ftpd-app`'s (slot and generation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sock(pub u16, pub u16);

/// A file handle the size of `ftpd-fat`'s (slot and serial).
#[derive(Debug)]
pub struct File(pub u16, pub u16);

/// Sessions of the probe's server: the QEMU board's `ftpd_app::MAX_SESSIONS`.
pub const SESSIONS: usize = 4;

/// Whatever the optimiser cannot know.
fn opaque<T>(v: T) -> T {
    black_box(v)
}

fn addr() -> SocketAddr {
    opaque(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 21))
}

/// Receives whatever the optimiser cannot know into `buf`.
fn fill(buf: &mut [u8]) -> usize {
    let n = opaque(0usize).min(buf.len());
    black_box(&mut buf[..n]);
    n
}

/// A network with nothing behind it, see the crate docs.
pub struct Net;

impl ftpd::Net for Net {
    type Socket = Sock;

    fn accept(&mut self) -> Option<Sock> {
        opaque(None)
    }
    fn listen(&mut self, a: SocketAddr) -> core::result::Result<Sock, NetError> {
        black_box(a);
        opaque(Err(NetError::Exhausted))
    }
    fn connect(
        &mut self,
        local: IpAddr,
        remote: SocketAddr,
    ) -> core::result::Result<Sock, NetError> {
        black_box((local, remote));
        opaque(Err(NetError::Unreachable))
    }
    fn state(&self, s: Sock) -> SockState {
        black_box(s);
        opaque(SockState::Closed)
    }
    fn local_addr(&self, s: Sock) -> Option<SocketAddr> {
        black_box(s);
        Some(addr())
    }
    fn peer_addr(&self, s: Sock) -> Option<SocketAddr> {
        black_box(s);
        Some(addr())
    }
    fn peek(&mut self, s: Sock, buf: &mut [u8]) -> core::result::Result<usize, NetError> {
        black_box(s);
        let n = fill(buf);
        opaque(Ok(n))
    }
    fn consume(&mut self, s: Sock, n: usize) {
        black_box((s, n));
    }
    fn recv(&mut self, s: Sock, buf: &mut [u8]) -> core::result::Result<usize, NetError> {
        black_box(s);
        let n = fill(buf);
        opaque(Ok(n))
    }
    fn send_capacity(&self, s: Sock) -> usize {
        black_box(s);
        opaque(0)
    }
    fn send(&mut self, s: Sock, data: &[u8]) -> core::result::Result<usize, NetError> {
        black_box((s, data));
        opaque(Ok(data.len()))
    }
    fn send_drained(&self, s: Sock) -> bool {
        black_box(s);
        opaque(true)
    }
    fn close(&mut self, s: Sock) {
        black_box(s);
    }
    fn abort(&mut self, s: Sock) {
        black_box(s);
    }
}

/// A file system with nothing in it, see the crate docs.
pub struct Storage;

fn meta() -> Metadata {
    opaque(Metadata {
        kind: Kind::File,
        size: 0,
        modified: None,
    })
}

impl ftpd::Storage for Storage {
    type File = File;

    fn open_read(&mut self, path: &str, offset: u64) -> Result<File> {
        black_box((path, offset));
        opaque(Err(Error::NotFound))
    }
    fn open_write(&mut self, path: &str, mode: WriteMode) -> Result<File> {
        black_box((path, mode));
        opaque(Err(Error::NoSpace))
    }
    fn read(&mut self, file: &mut File, buf: &mut [u8]) -> Result<usize> {
        black_box(file);
        let n = fill(buf);
        opaque(Ok(n))
    }
    fn write(&mut self, file: &mut File, data: &[u8]) -> Result<()> {
        black_box((file, data));
        opaque(Ok(()))
    }
    fn close(&mut self, file: File) -> Result<()> {
        black_box(file);
        opaque(Ok(()))
    }
    fn metadata(&mut self, path: &str) -> Result<Metadata> {
        black_box(path);
        Ok(meta())
    }
    fn list(
        &mut self,
        path: &str,
        skip: usize,
        f: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<()> {
        black_box((path, skip));
        while opaque(true) {
            if !f(&DirEntry {
                name: opaque("name"),
                meta: meta(),
            }) {
                break;
            }
        }
        opaque(Ok(()))
    }
    fn mkdir(&mut self, path: &str) -> Result<()> {
        black_box(path);
        opaque(Ok(()))
    }
    fn rmdir(&mut self, path: &str) -> Result<()> {
        black_box(path);
        opaque(Ok(()))
    }
    fn remove(&mut self, path: &str) -> Result<()> {
        black_box(path);
        opaque(Ok(()))
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        black_box((from, to));
        opaque(Ok(()))
    }
    fn free_space(&mut self) -> Option<u64> {
        opaque(None)
    }
    fn open_files(&self) -> usize {
        opaque(0)
    }
}

/// Calls every method of [`Net`] and [`Storage`] once, as the engine could:
/// what the baseline firmware runs instead of the engine.
pub fn exercise(net: &mut Net, fs: &mut Storage) {
    use ftpd::{Net as _, Storage as _};
    let mut buf = [0u8; 8];
    let s = Sock(opaque(0), opaque(0));
    black_box(net.accept());
    black_box(net.listen(addr()).ok());
    black_box(net.connect(addr().ip(), addr()).ok());
    black_box(net.state(s));
    black_box(net.local_addr(s));
    black_box(net.peer_addr(s));
    black_box(net.peek(s, &mut buf).ok());
    net.consume(s, opaque(0));
    black_box(net.recv(s, &mut buf).ok());
    black_box(net.send_capacity(s));
    black_box(net.send(s, &buf).ok());
    black_box(net.send_drained(s));
    net.close(s);
    net.abort(s);
    let p = opaque("/");
    if let Ok(mut f) = fs.open_read(p, 0) {
        black_box(fs.read(&mut f, &mut buf).ok());
        black_box(fs.close(f).ok());
    }
    if let Ok(mut f) = fs.open_write(p, WriteMode::Truncate) {
        black_box(fs.write(&mut f, &buf).ok());
        black_box(fs.close(f).ok());
    }
    black_box(fs.metadata(p).ok());
    black_box(fs.list(p, 0, &mut |e| black_box(e.meta.size) == 0).ok());
    black_box(fs.mkdir(p).ok());
    black_box(fs.rmdir(p).ok());
    black_box(fs.remove(p).ok());
    black_box(fs.rename(p, p).ok());
    black_box(fs.free_space());
    black_box(fs.open_files());
}

/// The probes' panic handler: no message, no formatting (the engine's flash
/// must not include what a board's panic handler chooses to print).
#[cfg(target_os = "none")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        black_box(());
    }
}
