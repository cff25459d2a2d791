//! In-memory [`Net`] and [`Storage`] for tests and fuzzing: a network
//! whose "client side" the test drives by hand, and a file system in a map.
//! Compiled for the crate's own tests and with the `testing` feature.

use std::collections::{BTreeMap, VecDeque};
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::net::{Net, NetError, SockState};
use crate::storage::{self, DateTime, DirEntry, Kind, Metadata, Storage, WriteMode};

// ---- an in-memory network -------------------------------------------------

#[derive(Debug)]
pub struct Sock {
    pub state: SockState,
    /// Bytes from the client to the server.
    pub rx: VecDeque<u8>,
    /// Bytes from the server to the client.
    pub tx: Vec<u8>,
    pub cap: usize,
    pub local: SocketAddr,
    pub peer: Option<SocketAddr>,
    /// The client sent FIN.
    pub fin: bool,
    pub reset: bool,
    /// The server gave the handle back.
    pub released: bool,
    pub server_closed: bool,
}

pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

#[derive(Default)]
pub struct MockNet {
    pub socks: Vec<Sock>,
    pub accept_queue: VecDeque<usize>,
    /// Active connects succeed at once unless this is set.
    pub refuse_connects: bool,
}

impl MockNet {
    pub fn new_sock(
        &mut self,
        state: SockState,
        local: SocketAddr,
        peer: Option<SocketAddr>,
    ) -> usize {
        self.socks.push(Sock {
            state,
            rx: VecDeque::new(),
            tx: Vec::new(),
            cap: 64 * 1024,
            local,
            peer,
            fin: false,
            reset: false,
            released: false,
            server_closed: false,
        });
        self.socks.len() - 1
    }

    pub fn client_connects(&mut self, from: IpAddr, port: u16) -> usize {
        let s = self.new_sock(
            SockState::Established,
            SocketAddr::new(SERVER_IP.into(), 21),
            Some(SocketAddr::new(from, port)),
        );
        self.accept_queue.push_back(s);
        s
    }

    /// The client connects to a passive port; returns the socket.
    pub fn connect_passive(&mut self, port: u16, from: IpAddr) -> Option<usize> {
        let i = self.socks.iter().position(|s| {
            s.state == SockState::Listening && !s.released && s.local.port() == port
        })?;
        self.socks[i].state = SockState::Established;
        self.socks[i].peer = Some(SocketAddr::new(from, 40000));
        Some(i)
    }

    pub fn take(&mut self, s: usize) -> String {
        String::from_utf8_lossy(&core::mem::take(&mut self.socks[s].tx)).into_owned()
    }

    pub fn take_bytes(&mut self, s: usize) -> Vec<u8> {
        core::mem::take(&mut self.socks[s].tx)
    }
}

impl Net for MockNet {
    type Socket = usize;

    fn accept(&mut self) -> Option<usize> {
        self.accept_queue.pop_front()
    }

    fn listen(&mut self, addr: SocketAddr) -> Result<usize, NetError> {
        let busy = self
            .socks
            .iter()
            .any(|s| !s.released && s.state == SockState::Listening && s.local == addr);
        if busy {
            return Err(NetError::AddrInUse);
        }
        Ok(self.new_sock(SockState::Listening, addr, None))
    }

    fn connect(&mut self, local: IpAddr, remote: SocketAddr) -> Result<usize, NetError> {
        let state = if self.refuse_connects {
            SockState::Closed
        } else {
            SockState::Established
        };
        Ok(self.new_sock(state, SocketAddr::new(local, 20), Some(remote)))
    }

    fn state(&self, s: usize) -> SockState {
        let k = &self.socks[s];
        if k.reset {
            SockState::Closed
        } else if k.fin && k.state == SockState::Established {
            SockState::PeerClosed
        } else {
            k.state
        }
    }

    fn local_addr(&self, s: usize) -> Option<SocketAddr> {
        Some(self.socks[s].local)
    }

    fn peer_addr(&self, s: usize) -> Option<SocketAddr> {
        self.socks[s].peer
    }

    fn peek(&mut self, s: usize, buf: &mut [u8]) -> Result<usize, NetError> {
        let k = &self.socks[s];
        assert!(!k.released, "peek on a released socket");
        if k.reset {
            return Err(NetError::Reset);
        }
        if k.rx.is_empty() && k.fin {
            return Err(NetError::Closed);
        }
        let n = buf.len().min(k.rx.len());
        for (d, s) in buf.iter_mut().zip(k.rx.iter()) {
            *d = *s;
        }
        Ok(n)
    }

    fn consume(&mut self, s: usize, n: usize) {
        self.socks[s].rx.drain(..n);
    }

    fn recv(&mut self, s: usize, buf: &mut [u8]) -> Result<usize, NetError> {
        let n = self.peek(s, buf)?;
        self.consume(s, n);
        Ok(n)
    }

    fn send_capacity(&self, s: usize) -> usize {
        let k = &self.socks[s];
        k.cap.saturating_sub(k.tx.len())
    }

    fn send(&mut self, s: usize, data: &[u8]) -> Result<usize, NetError> {
        let k = &mut self.socks[s];
        assert!(!k.released, "send on a released socket");
        if k.reset {
            return Err(NetError::Reset);
        }
        let n = data.len().min(k.cap.saturating_sub(k.tx.len()));
        k.tx.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn send_drained(&self, _s: usize) -> bool {
        true
    }

    fn close(&mut self, s: usize) {
        let k = &mut self.socks[s];
        assert!(!k.released, "double release of socket {s}");
        k.released = true;
        k.server_closed = true;
    }

    fn abort(&mut self, s: usize) {
        let k = &mut self.socks[s];
        assert!(!k.released, "double release of socket {s}");
        k.released = true;
        k.reset = true;
    }
}

// ---- an in-memory file system ---------------------------------------------

pub const MTIME: DateTime = DateTime {
    year: 2024,
    month: 1,
    day: 2,
    hour: 3,
    minute: 4,
    second: 5,
};

#[derive(Default)]
pub struct MemFs {
    /// Path -> file contents; directories have `None`.
    pub nodes: BTreeMap<String, Option<Vec<u8>>>,
    pub open: usize,
    /// Bytes the medium holds in all (for the disk-full test).
    pub capacity: Option<usize>,
}

pub struct MemFile {
    pub path: String,
    pub pos: usize,
    pub data: Vec<u8>,
    pub write: bool,
}

impl MemFs {
    pub fn new() -> Self {
        let mut fs = MemFs::default();
        fs.nodes.insert("/".into(), None);
        fs
    }
    pub fn dir(mut self, p: &str) -> Self {
        self.nodes.insert(p.into(), None);
        self
    }
    pub fn file(mut self, p: &str, data: &[u8]) -> Self {
        self.nodes.insert(p.into(), Some(data.to_vec()));
        self
    }
    pub fn parent(p: &str) -> &str {
        match p.rfind('/') {
            Some(0) => "/",
            Some(i) => &p[..i],
            None => "/",
        }
    }
    pub fn check_parent(&self, p: &str) -> storage::Result<()> {
        match self.nodes.get(Self::parent(p)) {
            Some(None) => Ok(()),
            Some(Some(_)) => Err(storage::Error::NotADirectory),
            None => Err(storage::Error::NotFound),
        }
    }
    pub fn used(&self) -> usize {
        self.nodes
            .values()
            .map(|v| v.as_ref().map_or(0, Vec::len))
            .sum()
    }
    pub fn children(&self, p: &str) -> Vec<String> {
        let prefix = if p == "/" {
            "/".to_string()
        } else {
            format!("{p}/")
        };
        self.nodes
            .keys()
            .filter(|k| {
                k.starts_with(&prefix) && k.len() > prefix.len() && !k[prefix.len()..].contains('/')
            })
            .cloned()
            .collect()
    }
    pub fn get(&self, p: &str) -> Option<&Vec<u8>> {
        self.nodes.get(p).and_then(|n| n.as_ref())
    }
}

impl Storage for MemFs {
    type File = MemFile;

    fn open_read(&mut self, path: &str, offset: u64) -> storage::Result<MemFile> {
        match self.nodes.get(path) {
            Some(Some(d)) => {
                if offset as usize > d.len() {
                    return Err(storage::Error::InvalidOffset);
                }
                self.open += 1;
                Ok(MemFile {
                    path: path.into(),
                    pos: offset as usize,
                    data: d.clone(),
                    write: false,
                })
            }
            Some(None) => Err(storage::Error::IsADirectory),
            None => Err(storage::Error::NotFound),
        }
    }

    fn open_write(&mut self, path: &str, mode: WriteMode) -> storage::Result<MemFile> {
        self.check_parent(path)?;
        let existing = match self.nodes.get(path) {
            Some(None) => return Err(storage::Error::IsADirectory),
            Some(Some(d)) => Some(d.clone()),
            None => None,
        };
        let data = match (mode, existing) {
            (WriteMode::CreateNew, Some(_)) => return Err(storage::Error::AlreadyExists),
            (WriteMode::Truncate | WriteMode::CreateNew, _) => vec![],
            (WriteMode::Append, e) => e.unwrap_or_default(),
            (WriteMode::At(n), e) => {
                let mut d = e.unwrap_or_default();
                if n as usize > d.len() {
                    return Err(storage::Error::InvalidOffset);
                }
                d.truncate(n as usize);
                d
            }
        };
        self.nodes.insert(path.into(), Some(data.clone()));
        self.open += 1;
        Ok(MemFile {
            path: path.into(),
            pos: data.len(),
            data,
            write: true,
        })
    }

    fn read(&mut self, f: &mut MemFile, buf: &mut [u8]) -> storage::Result<usize> {
        let n = buf.len().min(f.data.len() - f.pos);
        buf[..n].copy_from_slice(&f.data[f.pos..f.pos + n]);
        f.pos += n;
        Ok(n)
    }

    fn write(&mut self, f: &mut MemFile, data: &[u8]) -> storage::Result<()> {
        if let Some(cap) = self.capacity {
            if self.used() + f.data.len() + data.len() > cap {
                return Err(storage::Error::NoSpace);
            }
        }
        f.data.extend_from_slice(data);
        Ok(())
    }

    fn close(&mut self, f: MemFile) -> storage::Result<()> {
        self.open -= 1;
        if f.write {
            self.nodes.insert(f.path, Some(f.data));
        }
        Ok(())
    }

    fn metadata(&mut self, path: &str) -> storage::Result<Metadata> {
        match self.nodes.get(path) {
            Some(Some(d)) => Ok(Metadata {
                kind: Kind::File,
                size: d.len() as u64,
                modified: Some(MTIME),
            }),
            Some(None) => Ok(Metadata {
                kind: Kind::Dir,
                size: 0,
                modified: Some(MTIME),
            }),
            None => {
                self.check_parent(path)?;
                Err(storage::Error::NotFound)
            }
        }
    }

    fn list(
        &mut self,
        path: &str,
        skip: usize,
        f: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> storage::Result<()> {
        if self.nodes.get(path) != Some(&None) {
            return Err(storage::Error::NotADirectory);
        }
        for child in self.children(path).into_iter().skip(skip) {
            let meta = self.metadata(&child)?;
            let name = &child[child.rfind('/').unwrap() + 1..];
            if !f(&DirEntry { name, meta }) {
                break;
            }
        }
        Ok(())
    }

    fn mkdir(&mut self, path: &str) -> storage::Result<()> {
        self.check_parent(path)?;
        if self.nodes.contains_key(path) {
            return Err(storage::Error::AlreadyExists);
        }
        self.nodes.insert(path.into(), None);
        Ok(())
    }

    fn rmdir(&mut self, path: &str) -> storage::Result<()> {
        match self.nodes.get(path) {
            Some(None) if !self.children(path).is_empty() => Err(storage::Error::DirectoryNotEmpty),
            Some(None) => {
                self.nodes.remove(path);
                Ok(())
            }
            Some(Some(_)) => Err(storage::Error::NotADirectory),
            None => Err(storage::Error::NotFound),
        }
    }

    fn remove(&mut self, path: &str) -> storage::Result<()> {
        match self.nodes.get(path) {
            Some(Some(_)) => {
                self.nodes.remove(path);
                Ok(())
            }
            Some(None) => Err(storage::Error::IsADirectory),
            None => Err(storage::Error::NotFound),
        }
    }

    fn rename(&mut self, from: &str, to: &str) -> storage::Result<()> {
        if !self.nodes.contains_key(from) {
            return Err(storage::Error::NotFound);
        }
        if self.nodes.contains_key(to) {
            return Err(storage::Error::AlreadyExists);
        }
        self.check_parent(to)?;
        let moved: Vec<String> = self
            .nodes
            .keys()
            .filter(|k| *k == from || k.starts_with(&format!("{from}/")))
            .cloned()
            .collect();
        for k in moved {
            let v = self.nodes.remove(&k).unwrap();
            self.nodes.insert(format!("{to}{}", &k[from.len()..]), v);
        }
        Ok(())
    }

    fn free_space(&mut self) -> Option<u64> {
        self.capacity.map(|c| (c - self.used()) as u64)
    }

    fn open_files(&self) -> usize {
        self.open
    }
}
