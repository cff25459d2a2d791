//! Test fixtures: two smoltcp interfaces wired back to back in memory, a
//! client-side peer, and a tiny in-memory [`Storage`].

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::string::String;
use std::vec::Vec;

use ftpd::Storage;
use ftpd::storage::{DirEntry, Error, Kind, Metadata, Result as FsResult, WriteMode};
use smoltcp::iface::{Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;

use crate::NetConfig;

/// The board's addresses: [`NetConfig::TEST_NET`].
pub const BOARD: NetConfig = NetConfig::TEST_NET;

/// The peer's addresses.
pub const PEER: NetConfig = NetConfig {
    mac: [0x02, 0, 0, 0, 0, 0x01],
    ipv4: Some((std::net::Ipv4Addr::new(192, 0, 2, 1), 24)),
    ipv4_gateway: None,
    ipv6: Some((std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 64)),
    ipv6_gateway: None,
    random_seed: 7,
};

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A cable: one frame queue per direction, and a switch to pull it.
#[derive(Default)]
pub struct Wire {
    queues: [VecDeque<Vec<u8>>; 2],
    pub down: bool,
}

impl Wire {
    /// Frames waiting for side `side` to receive them.
    pub fn queued(&self, side: usize) -> usize {
        self.queues[side].len()
    }

    /// Frames waiting for side `side`, oldest first.
    pub fn frames(&self, side: usize) -> Vec<Vec<u8>> {
        self.queues[side].iter().cloned().collect()
    }
}

/// One end of a [`Wire`]: side 0 is the board, side 1 the peer.
#[derive(Clone)]
pub struct End {
    wire: Rc<RefCell<Wire>>,
    side: usize,
}

pub fn wire() -> (End, End, Rc<RefCell<Wire>>) {
    let w = Rc::new(RefCell::new(Wire::default()));
    (
        End {
            wire: w.clone(),
            side: 0,
        },
        End {
            wire: w.clone(),
            side: 1,
        },
        w,
    )
}

impl Device for End {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx)> {
        let frame = self.wire.borrow_mut().queues[self.side].pop_front()?;
        Some((Rx(frame), Tx(self.clone())))
    }
    fn transmit(&mut self, _: Instant) -> Option<Tx> {
        Some(Tx(self.clone()))
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

pub struct Rx(Vec<u8>);
impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

pub struct Tx(End);
impl phy::TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        let mut w = self.0.wire.borrow_mut();
        if !w.down {
            w.queues[1 - self.0.side].push_back(frame);
        }
        r
    }
}

/// A buffer that lives for the rest of the test process.
pub fn leak(n: usize) -> &'static mut [u8] {
    vec![0u8; n].leak()
}

/// The client side: a plain smoltcp stack with a few sockets.
pub struct Peer {
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    pub dev: End,
    next_port: u16,
}

impl Peer {
    pub fn new(mut dev: End) -> Peer {
        let iface = crate::app::interface(&PEER, &mut dev, 0);
        let storage: &'static mut [SocketStorage<'static>] =
            Vec::from_iter((0..16).map(|_| SocketStorage::EMPTY)).leak();
        Peer {
            iface,
            sockets: SocketSet::new(storage),
            dev,
            next_port: 40000,
        }
    }

    pub fn poll(&mut self, now: u64) {
        self.iface.poll(
            Instant::from_millis(now as i64),
            &mut self.dev,
            &mut self.sockets,
        );
    }

    /// A new TCP socket with 8 KB buffers.
    pub fn socket(&mut self) -> SocketHandle {
        let s = tcp::Socket::new(
            tcp::SocketBuffer::new(leak(8192)),
            tcp::SocketBuffer::new(leak(8192)),
        );
        self.sockets.add(s)
    }

    pub fn connect(&mut self, remote: SocketAddr) -> SocketHandle {
        let h = self.socket();
        self.next_port += 1;
        let port = self.next_port;
        let sock = self.sockets.get_mut::<tcp::Socket>(h);
        sock.connect(self.iface.context(), remote, port).unwrap();
        h
    }

    pub fn listen(&mut self, port: u16) -> SocketHandle {
        let h = self.socket();
        self.sockets.get_mut::<tcp::Socket>(h).listen(port).unwrap();
        h
    }

    pub fn tcp(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }

    pub fn state(&mut self, h: SocketHandle) -> tcp::State {
        self.tcp(h).state()
    }

    /// Everything received so far on `h`, as text.
    pub fn take_text(&mut self, h: SocketHandle) -> String {
        let mut out = Vec::new();
        let sock = self.tcp(h);
        while sock.can_recv() {
            sock.recv(|b| {
                out.extend_from_slice(b);
                (b.len(), ())
            })
            .unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    pub fn send(&mut self, h: SocketHandle, data: &[u8]) {
        let n = self.tcp(h).send_slice(data).unwrap();
        assert_eq!(n, data.len(), "peer send buffer full");
    }
}

/// An in-memory file system: paths to file contents or directories.
#[derive(Default)]
pub struct MemFs {
    pub nodes: BTreeMap<String, Option<Vec<u8>>>,
    open: usize,
}

pub struct MemFile {
    path: String,
    pos: usize,
    write: bool,
}

impl MemFs {
    pub fn with_file(mut self, path: &str, data: &[u8]) -> MemFs {
        self.nodes.insert(path.into(), Some(data.to_vec()));
        self
    }

    fn parent_is_dir(&self, path: &str) -> bool {
        let parent = &path[..path.rfind('/').unwrap_or(0)];
        parent.is_empty() || matches!(self.nodes.get(parent), Some(None))
    }
}

impl Storage for MemFs {
    type File = MemFile;

    fn open_read(&mut self, path: &str, offset: u64) -> FsResult<MemFile> {
        match self.nodes.get(path) {
            Some(Some(_)) => {
                self.open += 1;
                Ok(MemFile {
                    path: path.into(),
                    pos: offset as usize,
                    write: false,
                })
            }
            Some(None) => Err(Error::IsADirectory),
            None => Err(Error::NotFound),
        }
    }

    fn open_write(&mut self, path: &str, mode: WriteMode) -> FsResult<MemFile> {
        if !self.parent_is_dir(path) {
            return Err(Error::NotFound);
        }
        let existing = self.nodes.get(path).cloned();
        let (data, pos) = match (existing, mode) {
            (Some(None), _) => return Err(Error::IsADirectory),
            (Some(Some(_)), WriteMode::CreateNew) => return Err(Error::AlreadyExists),
            (Some(Some(d)), WriteMode::Append) => {
                let n = d.len();
                (d, n)
            }
            (Some(Some(mut d)), WriteMode::At(n)) => {
                if n as usize > d.len() {
                    return Err(Error::InvalidOffset);
                }
                d.truncate(n as usize);
                (d, n as usize)
            }
            (None, WriteMode::At(n)) if n > 0 => return Err(Error::InvalidOffset),
            _ => (Vec::new(), 0),
        };
        self.nodes.insert(path.into(), Some(data));
        self.open += 1;
        Ok(MemFile {
            path: path.into(),
            pos,
            write: true,
        })
    }

    fn read(&mut self, file: &mut MemFile, buf: &mut [u8]) -> FsResult<usize> {
        let Some(Some(data)) = self.nodes.get(&file.path) else {
            return Err(Error::Io);
        };
        let rest = data.get(file.pos..).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        file.pos += n;
        Ok(n)
    }

    fn write(&mut self, file: &mut MemFile, data: &[u8]) -> FsResult<()> {
        assert!(file.write);
        let Some(Some(d)) = self.nodes.get_mut(&file.path) else {
            return Err(Error::Io);
        };
        d.truncate(file.pos);
        d.extend_from_slice(data);
        file.pos += data.len();
        Ok(())
    }

    fn close(&mut self, _file: MemFile) -> FsResult<()> {
        self.open -= 1;
        Ok(())
    }

    fn metadata(&mut self, path: &str) -> FsResult<Metadata> {
        let (kind, size) = match (path, self.nodes.get(path)) {
            ("/", _) | (_, Some(None)) => (Kind::Dir, 0),
            (_, Some(Some(d))) => (Kind::File, d.len() as u64),
            (_, None) => return Err(Error::NotFound),
        };
        Ok(Metadata {
            kind,
            size,
            modified: None,
        })
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
        let prefix = if path == "/" {
            String::from("/")
        } else {
            format!("{path}/")
        };
        let children = self
            .nodes
            .iter()
            .filter(|(p, _)| p.starts_with(&prefix) && !p[prefix.len()..].contains('/'));
        for (p, node) in children.skip(skip) {
            let meta = Metadata {
                kind: if node.is_some() {
                    Kind::File
                } else {
                    Kind::Dir
                },
                size: node.as_ref().map_or(0, |d| d.len() as u64),
                modified: None,
            };
            if !f(&DirEntry {
                name: &p[prefix.len()..],
                meta,
            }) {
                break;
            }
        }
        Ok(())
    }

    fn mkdir(&mut self, path: &str) -> FsResult<()> {
        if self.nodes.contains_key(path) || path == "/" {
            return Err(Error::AlreadyExists);
        }
        self.nodes.insert(path.into(), None);
        Ok(())
    }

    fn rmdir(&mut self, path: &str) -> FsResult<()> {
        match self.nodes.get(path) {
            Some(None) => {
                let prefix = format!("{path}/");
                if self.nodes.keys().any(|p| p.starts_with(&prefix)) {
                    return Err(Error::DirectoryNotEmpty);
                }
                self.nodes.remove(path);
                Ok(())
            }
            Some(Some(_)) => Err(Error::NotADirectory),
            None => Err(Error::NotFound),
        }
    }

    fn remove(&mut self, path: &str) -> FsResult<()> {
        match self.nodes.get(path) {
            Some(Some(_)) => {
                self.nodes.remove(path);
                Ok(())
            }
            Some(None) => Err(Error::IsADirectory),
            None => Err(Error::NotFound),
        }
    }

    fn rename(&mut self, from: &str, to: &str) -> FsResult<()> {
        if self.nodes.contains_key(to) {
            return Err(Error::AlreadyExists);
        }
        let node = self.nodes.remove(from).ok_or(Error::NotFound)?;
        self.nodes.insert(to.into(), node);
        Ok(())
    }

    fn open_files(&self) -> usize {
        self.open
    }
}
