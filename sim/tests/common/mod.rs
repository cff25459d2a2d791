//! Shared pieces of the client integration tests: a storage fixture for each
//! backend (host directory, bare FAT image, FAT image behind an MBR), the
//! `sim` server as a child process guarded by `Drop`, external tools run
//! with a time limit, and tree comparison.
//!
//! Seeding and reading back never go through the server: the directory
//! backend uses `std::fs`, the FAT backends use mtools (`mcopy`, `mmd`) and
//! `fsck.fat`, tools nobody here wrote.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

// The helpers every test crate of this workspace shares live in the
// harness's test kit; the names here are the ones sim's tests grew up with.
#[allow(unused_imports)] // not every test crate uses every one
pub use harness::testkit::{
    Output, Tree, bytes as random_bytes, read_tree, run, same_bytes as assert_same_bytes,
    same_tree as assert_same_tree, under_ci, write_tree,
};

/// Path of the server binary cargo built for these tests.
pub const SIM: &str = env!("CARGO_BIN_EXE_sim");

/// How long an external client command may run before it is killed.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// Size of the FAT images, in KiB (64 MiB: FAT32 with 512-byte clusters).
const IMAGE_KIB: u64 = 65536;
/// First sector of the partition in the MBR variant (1 MiB, as SD cards).
const MBR_START_SECTOR: u64 = 2048;

/// The storage a test's server serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `--root DIR`
    Dir,
    /// `--image IMG`, a bare FAT32 volume made by `mkfs.fat` (no partition table).
    Fat,
    /// `--image IMG`, an SD-card-like image: MBR, one FAT32 partition at 1 MiB.
    FatMbr,
}

impl Backend {
    pub fn is_fat(self) -> bool {
        self != Backend::Dir
    }
}

/// Generates one `#[test]` per backend for a function `fn NAME(b: Backend)`:
/// `NAME::dir`, `NAME::fat` and `NAME::fat_mbr`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[test]
            fn dir() { super::$name(common::Backend::Dir) }
            #[test]
            fn fat() { super::$name(common::Backend::Fat) }
            #[test]
            fn fat_mbr() { super::$name(common::Backend::FatMbr) }
        }
    )*};
}

/// True when `tool` can be run. When it cannot: under CI the test fails; otherwise
/// a loud message is printed (the caller then returns without checking anything).
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        let msg = format!(
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !!! `{tool}` is not installed: THIS TEST DID NOT RUN (install it; .ci/run does)\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
        );
        if under_ci() {
            panic!("{msg}");
        }
        // Straight to stderr, not through `eprintln!`: the test harness
        // captures the macros' output of passing tests, and this must show.
        let _ = std::io::stderr().write_all(msg.as_bytes());
    }
    found
}

/// Every tool in `tools` is available (see [`have_tool`]).
pub fn have_tools(tools: &[&str]) -> bool {
    // Not `all`: every missing tool is reported, not only the first.
    let mut ok = true;
    for t in tools {
        ok &= have_tool(t);
    }
    ok
}

/// The storage of one test: a temporary directory holding the served
/// directory or image, the server's log, and scratch space for clients.
pub struct Fixture {
    pub backend: Backend,
    tmp: tempfile::TempDir,
}

impl Fixture {
    /// A fresh, empty storage of the given kind (a FAT image is formatted with `mkfs.fat`).
    /// `None` (after a loud message) when a needed tool is missing outside CI.
    pub fn new(backend: Backend) -> Option<Fixture> {
        let tmp = tempfile::Builder::new()
            .prefix("sim-clients-")
            .tempdir()
            .unwrap();
        let fx = Fixture { backend, tmp };
        fs::create_dir(fx.scratch()).unwrap();
        match backend {
            Backend::Dir => fs::create_dir(fx.root()).unwrap(),
            Backend::Fat | Backend::FatMbr => {
                if !have_tools(&["mkfs.fat", "fsck.fat", "mcopy"]) {
                    return None;
                }
                fx.format_image();
            }
        }
        Some(fx)
    }

    /// Scratch directory for the client side of a test.
    pub fn scratch(&self) -> PathBuf {
        self.tmp.path().join("client")
    }

    /// The served directory (`Backend::Dir`).
    pub fn root(&self) -> PathBuf {
        self.tmp.path().join("root")
    }

    /// The served image (FAT backends).
    pub fn image(&self) -> PathBuf {
        self.tmp.path().join("sd.img")
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.tmp.path().join("sim.log")
    }

    fn format_image(&self) {
        let img = self.image();
        match self.backend {
            Backend::Fat => {
                run(
                    Command::new("mkfs.fat")
                        .args(["-C", "-F", "32"])
                        .arg(&img)
                        .arg(IMAGE_KIB.to_string()),
                    TOOL_TIMEOUT,
                )
                .ok("mkfs.fat");
            }
            Backend::FatMbr => {
                let total = IMAGE_KIB * 2;
                let f = fs::File::create(&img).unwrap();
                f.set_len(total * 512).unwrap();
                drop(f);
                let start = MBR_START_SECTOR.to_string();
                run(
                    Command::new("mkfs.fat")
                        .args(["-F", "32", "--offset", &start, "-h", &start])
                        .arg(&img),
                    TOOL_TIMEOUT,
                )
                .ok("mkfs.fat --offset");
                // The partition table: one FAT32 (LBA) partition, the rest of the image.
                let mut mbr = [0u8; 512];
                let e = &mut mbr[446..462];
                e[0] = 0x00; // not bootable
                e[1..4].copy_from_slice(&[0xFE, 0xFF, 0xFF]); // CHS: use LBA
                e[4] = 0x0C; // FAT32 LBA
                e[5..8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
                e[8..12].copy_from_slice(&(MBR_START_SECTOR as u32).to_le_bytes());
                e[12..16].copy_from_slice(&((total - MBR_START_SECTOR) as u32).to_le_bytes());
                mbr[510] = 0x55;
                mbr[511] = 0xAA;
                let mut f = fs::OpenOptions::new().write(true).open(&img).unwrap();
                f.write_all(&mbr).unwrap();
            }
            Backend::Dir => unreachable!(),
        }
    }

    /// mtools' `-i` argument for the image (with the partition offset for the MBR variant).
    fn mtools_image(&self) -> String {
        let img = self.image().to_str().unwrap().to_string();
        match self.backend {
            Backend::FatMbr => format!("{img}@@{}", MBR_START_SECTOR * 512),
            _ => img,
        }
    }

    fn mtools(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        // UTF-8 long names need a UTF-8 locale; a freshly made image of an odd
        // geometry must not be refused.
        c.env("LC_ALL", "C.UTF-8")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(self.mtools_image());
        c
    }

    /// Creates a directory (and its parents) in the storage, not through the server.
    pub fn mkdir(&self, path: &str) {
        match self.backend {
            Backend::Dir => {
                fs::create_dir_all(self.root().join(path.trim_start_matches('/'))).unwrap()
            }
            _ => {
                let mut so_far = String::new();
                for comp in path.split('/').filter(|c| !c.is_empty()) {
                    so_far.push('/');
                    so_far.push_str(comp);
                    if !self.exists(&so_far) {
                        run(self.mtools("mmd").arg(format!("::{so_far}")), TOOL_TIMEOUT)
                            .ok(&format!("mmd {so_far}"));
                    }
                }
            }
        }
    }

    /// Writes a file into the storage, not through the server (parents created).
    pub fn put(&self, path: &str, data: &[u8]) {
        let path = format!("/{}", path.trim_start_matches('/'));
        if let Some((parent, _)) = path.rsplit_once('/') {
            if !parent.is_empty() {
                self.mkdir(parent);
            }
        }
        match self.backend {
            Backend::Dir => fs::write(self.root().join(&path[1..]), data).unwrap(),
            _ => {
                let src = self.tmp.path().join("seed.tmp");
                fs::write(&src, data).unwrap();
                run(
                    self.mtools("mcopy")
                        .arg("-o")
                        .arg(&src)
                        .arg(format!("::{path}")),
                    TOOL_TIMEOUT,
                )
                .ok(&format!("mcopy to {path}"));
                fs::remove_file(src).unwrap();
            }
        }
    }

    /// Writes a whole tree under `dir` in the storage.
    pub fn put_tree(&self, dir: &str, tree: &Tree) {
        self.mkdir(dir);
        for (rel, content) in tree {
            let p = format!("{}/{rel}", dir.trim_end_matches('/'));
            match content {
                None => self.mkdir(&p),
                Some(data) => self.put(&p, data),
            }
        }
    }

    /// Does `path` exist in the storage (file or directory)?
    pub fn exists(&self, path: &str) -> bool {
        match self.backend {
            Backend::Dir => self.root().join(path.trim_start_matches('/')).exists(),
            _ => {
                let out = run(
                    self.mtools("mdir").arg("-b").arg(format!("::{path}")),
                    TOOL_TIMEOUT,
                );
                out.status.success()
            }
        }
    }

    /// A file's bytes as the storage holds them (read with `mcopy` on FAT), or `None`.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        let path = format!("/{}", path.trim_start_matches('/'));
        match self.backend {
            Backend::Dir => fs::read(self.root().join(&path[1..])).ok(),
            _ => {
                let out = run(
                    self.mtools("mcopy").arg(format!("::{path}")).arg("-"),
                    TOOL_TIMEOUT,
                );
                out.status.success().then_some(out.stdout)
            }
        }
    }

    /// The tree under `dir` as the storage holds it (extracted with `mcopy -s` on FAT).
    pub fn read_tree(&self, dir: &str) -> Tree {
        let dir = dir.trim_matches('/');
        match self.backend {
            Backend::Dir => read_tree(&self.root().join(dir)),
            _ => {
                let dest = self.tmp.path().join("extract");
                let _ = fs::remove_dir_all(&dest);
                fs::create_dir(&dest).unwrap();
                let name = dir.rsplit('/').next().unwrap();
                run(
                    self.mtools("mcopy")
                        .arg("-s")
                        .arg("-n")
                        .arg(format!("::/{dir}"))
                        .arg(&dest),
                    TOOL_TIMEOUT,
                )
                .ok(&format!("mcopy -s /{dir}"));
                let tree = read_tree(&dest.join(name));
                fs::remove_dir_all(&dest).unwrap();
                tree
            }
        }
    }

    /// After a test that wrote: the FAT image must pass `fsck.fat -n` with
    /// nothing to report. (Nothing to do for a directory.)
    pub fn assert_clean(&self) {
        if !self.backend.is_fat() {
            return;
        }
        // fsck.fat cannot start at an offset: check a copy of the partition.
        let volume = match self.backend {
            Backend::FatMbr => {
                let part = self.tmp.path().join("partition.img");
                let mut src = fs::File::open(self.image()).unwrap();
                let mut skip = vec![0u8; (MBR_START_SECTOR * 512) as usize];
                src.read_exact(&mut skip).unwrap();
                let mut dst = fs::File::create(&part).unwrap();
                std::io::copy(&mut src, &mut dst).unwrap();
                part
            }
            _ => self.image(),
        };
        let out = run(
            Command::new("fsck.fat").arg("-n").arg(&volume),
            TOOL_TIMEOUT,
        );
        let text = format!("{}{}", out.stdout(), out.stderr());
        // Clean: the version banner and the one summary line, nothing else.
        let unexpected: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter(|l| !l.starts_with("fsck.fat "))
            .filter(|l| !(l.contains(" files, ") && l.contains(" clusters")))
            .collect();
        assert!(
            out.status.success() && unexpected.is_empty(),
            "fsck.fat -n reports problems on the image (exit {:?}):\n{text}",
            out.status.code()
        );
    }

    /// Starts `sim` on this storage, listening on a free loopback port.
    pub fn start(&self, extra: &[&str]) -> Server {
        let mut cmd = Command::new(SIM);
        cmd.args(["--listen", "127.0.0.1:0"]);
        match self.backend {
            Backend::Dir => cmd.arg("--root").arg(self.root()),
            _ => cmd.arg("--image").arg(self.image()),
        };
        cmd.args(extra);
        Server::spawn(cmd, self.log_path())
    }
}

/// A running `sim`. Dropping it kills the process (also when a test panics),
/// and on a panic shows the end of the server's log.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    fn spawn(mut cmd: Command, log: PathBuf) -> Server {
        let log_file = fs::File::create(&log).unwrap();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SIM}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let mut server = Server {
            child: Some(child),
            addr: "127.0.0.1:9".parse().unwrap(),
            log,
        };
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Some(Ok(line))) => line,
            other => {
                let status = server.child.as_mut().unwrap().try_wait().ok().flatten();
                panic!(
                    "sim did not announce its address ({other:?}, exit {status:?}); its log:\n{}",
                    fs::read_to_string(&server.log).unwrap_or_default()
                );
            }
        };
        let addr = line
            .strip_prefix("listening on ftp://")
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from sim: {line:?}"));
        server.addr = addr;
        server
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `ftp://USER:PASS@127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self, user: &str, pass: &str) -> String {
        format!("ftp://{user}:{pass}@{}", self.addr)
    }

    /// Kills the server outright (SIGKILL), as a power cut would.
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
    }

    /// Stops the server as Ctrl-C does (SIGTERM), waiting for it to exit;
    /// panics if it does not stop cleanly.
    pub fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        match status {
            Some(s) if s.success() => {}
            _ => panic!(
                "sim did not stop cleanly on SIGTERM (exit {status:?}); its log:\n{}",
                tail(&log, 80)
            ),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            if thread::panicking() {
                let log = fs::read_to_string(&self.log).unwrap_or_default();
                eprintln!("---- end of the server's log ----\n{}", tail(&log, 80));
            }
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A minimal line-oriented FTP control connection, for the checks no client
/// library exposes (greetings refused with 421 and the like). Read timeouts bound every call.
pub struct Control {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Control {
    pub fn connect(addr: SocketAddr) -> Control {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Control {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        }
    }

    /// One whole reply (multi-line replies joined with `\n`), or `None` at EOF.
    pub fn reply(&mut self) -> Option<(u16, String)> {
        let mut first = String::new();
        if self.reader.read_line(&mut first).ok()? == 0 {
            return None;
        }
        let code: u16 = first.get(..3)?.parse().ok()?;
        let mut text = first.trim_end().to_string();
        if first.as_bytes().get(3) == Some(&b'-') {
            loop {
                let mut l = String::new();
                if self.reader.read_line(&mut l).ok()? == 0 {
                    break;
                }
                text.push('\n');
                text.push_str(l.trim_end());
                if l.len() >= 4 && l.starts_with(&first[..3]) && l.as_bytes()[3] == b' ' {
                    break;
                }
            }
        }
        Some((code, text))
    }

    pub fn cmd(&mut self, line: &str) -> Option<(u16, String)> {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .ok()?;
        self.reply()
    }

    /// True when the server has closed the connection (EOF within the read timeout).
    pub fn closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0))
    }
}
