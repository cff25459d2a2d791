//! Boards with SD cards, for tests that run real clients and faults against
//! the virtual board and QEMU (tests/boards.rs, the load and fault tests):
//!
//! - [`board`]: the target if it and the tools a test needs can run here;
//!   otherwise [`not_run`] fails under `CI=true` and prints a loud notice.
//! - [`Card`]: a fresh 64 MiB SD image; files put and read with mtools
//!   while no board runs; [`Card::assert_clean`] runs `fsck.fat -n`.
//! - [`Board`]: a target started on a card, in its network namespace
//!   ([`Board::cmd`] runs a tool there); stopped and its namespace removed
//!   when dropped.
//! - [`run`]: a tool run to completion with a time limit; trees and bytes.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::fixture::Tree as Fixture;
use crate::target::{self, Context, Server, StartOptions, StorageArg, Target};

/// How long one tool (curl, lftp, mcopy, fsck.fat) may run.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(300);

// ---------------------------------------------------------------------------
// Preconditions
// ---------------------------------------------------------------------------

pub fn under_ci() -> bool {
    crate::snapshot::is_ci()
}

/// Fails under CI, says so loudly otherwise; the caller then returns.
pub fn not_run(test: &str, why: &str) {
    let msg = format!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !!! {test}: NOT RUN: {why}\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
    assert!(!under_ci(), "{msg}");
    // Straight to stderr: the test harness captures eprintln! of passing tests.
    let _ = std::io::stderr().write_all(msg.as_bytes());
}

pub fn ctx() -> &'static Context {
    static C: OnceLock<Context> = OnceLock::new();
    C.get_or_init(|| Context::new(None))
}

/// One board at a time: they share two cores with everything else.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|p| p.into_inner())
}

/// One `#[test]` per board (`sim`, `qemu`, `qemu_10`) for each function
/// `fn NAME(t: Target)` of the calling test file, one board at a time, each
/// run only when [`board`] says it can (with the tools listed after the
/// name: `on_every_board!(curl_transfers: ["curl"], load: [])`).
#[macro_export]
macro_rules! on_every_board {
    ($($name:ident: [$($tool:literal),*]),* $(,)?) => {$(
        mod $name {
            fn on(board: &str) {
                let _one = $crate::testkit::one_at_a_time();
                let test = concat!(stringify!($name), " on ");
                if let Some(t) = $crate::testkit::board(board, &format!("{test}{board}"), &[$($tool),*]) {
                    let t0 = std::time::Instant::now();
                    super::$name(t);
                    eprintln!("{test}{board}: {:.1} s", t0.elapsed().as_secs_f64());
                }
            }
            #[test]
            fn sim() { on("sim") }
            #[test]
            fn qemu() { on("qemu") }
            #[test]
            fn qemu_10() { on("qemu-10") }
        }
    )*};
}

/// The target, if it and every tool the test needs can run here.
pub fn board(name: &str, test: &str, tools: &[&str]) -> Option<Target> {
    let t = Target::by_name(name).unwrap();
    if let Some(why) = crate::netns::missing_privilege() {
        not_run(test, &why);
        return None;
    }
    if let Err(u) = t.probe(ctx()) {
        not_run(
            test,
            &format!("target {name} cannot run here: {}", u.reason),
        );
        return None;
    }
    for tool in ["fsck.fat", "mcopy", "mmd"].iter().chain(tools) {
        if !target::have_tool(tool)
            && !Path::new("/usr/sbin").join(tool).exists()
            && !Path::new("/sbin").join(tool).exists()
        {
            not_run(
                test,
                &format!("`{tool}` is not installed (.ci/run installs it)"),
            );
            return None;
        }
    }
    Some(t)
}

// ---------------------------------------------------------------------------
// Tools run to completion, trees, bytes
// ---------------------------------------------------------------------------

/// What a finished external command left.
#[derive(Debug)]
pub struct Output {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    /// Did a verbose client (`curl -v`) send a command line starting with
    /// `prefix`? (curl shows them on stderr as `> COMMAND`.)
    pub fn sent(&self, prefix: &str) -> bool {
        self.stderr()
            .lines()
            .any(|l| l.strip_prefix("> ").is_some_and(|c| c.starts_with(prefix)))
    }
    /// Panics unless the client sent a command line starting with `prefix`.
    #[track_caller]
    pub fn assert_sent(&self, prefix: &str) {
        assert!(
            self.sent(prefix),
            "the client did not send `{prefix}...`:\n{}",
            self.stderr()
        );
    }
    /// The local files a `wget -nv` run fetched: its `URL: ... -> "PATH"` lines.
    pub fn wget_fetched(&self) -> Vec<String> {
        self.stderr()
            .lines()
            .filter(|l| l.contains(" URL: "))
            .filter_map(|l| {
                l.split(" -> \"")
                    .nth(1)?
                    .split('"')
                    .next()
                    .map(String::from)
            })
            .collect()
    }
    /// Panics with the command's output unless it exited 0.
    #[track_caller]
    pub fn ok(self, what: &str) -> Output {
        assert!(
            self.status.success(),
            "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// Run with a time limit (killed after it), stdin from /dev/null.
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            b
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{shown} did not finish within {limit:?} and was killed\n--- stdout\n{}\n--- stderr\n{}",
                    String::from_utf8_lossy(&out.join().unwrap_or_default()),
                    String::from_utf8_lossy(&err.join().unwrap_or_default())
                );
            }
        }
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Deterministic bytes, different per seed.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[track_caller]
pub fn same_bytes(what: &str, got: &[u8], want: &[u8]) {
    if got != want {
        let at = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{what}: got {} bytes ({}), expected {} ({}); first difference at byte {at}",
            got.len(),
            crate::fixture::checksum(got),
            want.len(),
            crate::fixture::checksum(want)
        );
    }
}

/// Relative path -> None for a directory, the bytes for a file.
pub type Tree = BTreeMap<String, Option<Vec<u8>>>;

pub fn read_tree(dir: &Path) -> Tree {
    pub fn walk(base: &Path, dir: &Path, out: &mut Tree) {
        for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let e = e.unwrap();
            let p = e.path();
            let rel = p
                .strip_prefix(base)
                .unwrap()
                .to_str()
                .expect("UTF-8 name")
                .to_string();
            if e.file_type().unwrap().is_dir() {
                out.insert(rel, None);
                walk(base, &p, out);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Tree::new();
    walk(dir, dir, &mut out);
    out
}

/// The tree the real-client tests mirror (lftp both ways, `wget -m`):
/// nested directories, long names, a UTF-8 name, names with spaces, empty
/// directories, a directory of 60 long names, a 5 MB file.
pub fn mirror_tree() -> Tree {
    let mut t = Tree::new();
    let mut file = |p: &str, d: Vec<u8>| {
        t.insert(p.to_string(), Some(d));
    };
    file("firmware-v1.2.3.bin", bytes(100_003, 20));
    file("Report 2026 (final).pdf", bytes(250_000, 21));
    file("Grüße.txt", "Grüße, Welt!\n".as_bytes().to_vec());
    file("big.bin", bytes(5 * 1024 * 1024, 22));
    file("nested/a/b/c/deep.txt", b"deep down\n".to_vec());
    file("nested/a/b/other.dat", bytes(70_000, 23));
    file(
        "nested/a/x y/z.txt",
        b"spaces in a directory name\n".to_vec(),
    );
    file("nested/zero.bin", Vec::new());
    file(
        "a rather long directory name indeed/and a long file name inside it.txt",
        b"long\n".to_vec(),
    );
    for i in 0..60 {
        file(
            &format!("many/a rather long file name, number {i:02}.txt"),
            format!("file {i}\n").into_bytes(),
        );
    }
    for d in [
        "many",
        "empty",
        "nested",
        "nested/a",
        "nested/a/b",
        "nested/a/b/c",
        "nested/a/x y",
        "nested/empty-too",
        "a rather long directory name indeed",
    ] {
        t.insert(d.to_string(), None);
    }
    t
}

pub fn write_tree(dir: &Path, tree: &Tree) {
    std::fs::create_dir_all(dir).unwrap();
    for (rel, content) in tree {
        let p = dir.join(rel);
        match content {
            None => std::fs::create_dir_all(&p).unwrap(),
            Some(d) => {
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, d).unwrap();
            }
        }
    }
}

#[track_caller]
pub fn same_tree(what: &str, got: &Tree, want: &Tree) {
    let mut problems = Vec::new();
    for (k, v) in want {
        match (got.get(k), v) {
            (None, _) => problems.push(format!("missing: {k}")),
            (Some(None), None) => {}
            (Some(Some(_)), None) => problems.push(format!("{k}: a file, expected a directory")),
            (Some(None), Some(_)) => problems.push(format!("{k}: a directory, expected a file")),
            (Some(Some(a)), Some(b)) if a != b => problems.push(format!(
                "{k}: contents differ ({} bytes, expected {})",
                a.len(),
                b.len()
            )),
            _ => {}
        }
    }
    for k in got.keys().filter(|k| !want.contains_key(*k)) {
        problems.push(format!("unexpected: {k}"));
    }
    assert!(
        problems.is_empty(),
        "{what}: trees differ:\n  {}",
        problems.join("\n  ")
    );
}

/// What sim/tests/ftplib_all.py leaves under `/ftplib` (its `keep` and `ls`
/// directories), for the tests that run it on a host backend or a board.
pub fn ftplib_all_tree() -> Tree {
    // The script's own pattern: `bytes((i*31 + (i>>8) + k) & 255 ...)`.
    let pattern = |n: usize, k: usize| -> Vec<u8> {
        (0..n)
            .map(|i| ((i * 31 + (i >> 8) + k) & 0xFF) as u8)
            .collect()
    };
    let mut want = Tree::new();
    let mut file = |p: &str, d: &[u8]| {
        want.insert(p.to_string(), Some(d.to_vec()));
    };
    file("keep/ascii.txt", b"line one\nline two\n");
    file("keep/resumed.bin", &pattern(200_000, 4));
    file("keep/appended.txt", b"first\nsecond\n");
    file("keep/appe-new.txt", b"created by APPE\n");
    file("keep/Grüße.txt", "Grüße\n".as_bytes());
    file("keep/Report 2026 (final).pdf", b"rename me");
    file("keep/firmware-v1.2.3.bin", &pattern(70_000, 5));
    file("keep/d2/f", b"in d1");
    file("ls/f1.bin", b"12345");
    file("ls/name with spaces.txt", b"");
    for d in ["keep", "keep/d2", "ls", "ls/dir"] {
        want.insert(d.to_string(), None);
    }
    want
}

// ---------------------------------------------------------------------------
// A board with its SD card
// ---------------------------------------------------------------------------

/// The SD image of one test, read and written with mtools while no board runs.
pub struct Card {
    pub dir: tempfile::TempDir,
}

impl Card {
    /// A fresh card, formatted by `harness image create`'s code (FAT32 in
    /// an MBR partition, 64 MiB: a power of two for QEMU). No `Default`:
    /// making one writes and formats a file, which a default value should not.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Card {
        Card::with(target::IMAGE_SIZE, crate::image::FatType::Fat32)
    }

    /// A fresh card of `size` bytes (a power of two for QEMU) formatted
    /// as `fat` (FAT16 needs at least 4085 clusters: 4 MiB and up).
    pub fn with(size: u64, fat: crate::image::FatType) -> Card {
        let dir = tempfile::Builder::new()
            .prefix("harness-boards-")
            .tempdir()
            .unwrap();
        let c = Card { dir };
        crate::image::create_with(&c.image(), size, fat).unwrap();
        std::fs::create_dir(c.scratch()).unwrap();
        c
    }

    pub fn image(&self) -> PathBuf {
        self.dir.path().join("sd.img")
    }

    /// Client-side files.
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().join("client")
    }

    /// mtools' `-i IMAGE@@OFFSET`: the first partition's start, from the MBR.
    pub fn mtools(&self, tool: &str) -> Command {
        let mut mbr = [0u8; 512];
        std::fs::File::open(self.image())
            .unwrap()
            .read_exact(&mut mbr)
            .unwrap();
        let lba = u32::from_le_bytes(mbr[454..458].try_into().unwrap()) as u64;
        let mut c = Command::new(tool);
        c.env("LC_ALL", "C.UTF-8")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(format!("{}@@{}", self.image().display(), lba * 512));
        c
    }

    /// Put `tree` under `/DIR` (no server involved).
    pub fn put_tree(&self, dir: &str, tree: &Tree) {
        let local = self.dir.path().join("seed").join(dir);
        let _ = std::fs::remove_dir_all(&local);
        write_tree(&local, tree);
        run(
            self.mtools("mcopy")
                .arg("-s")
                .arg("-Q")
                .arg(&local)
                .arg("::/"),
            TOOL_TIMEOUT,
        )
        .ok(&format!("mcopy -s {dir} onto the card"));
    }

    /// Put one file at the root.
    pub fn put(&self, name: &str, data: &[u8]) {
        let src = self.dir.path().join("seed.tmp");
        std::fs::write(&src, data).unwrap();
        run(
            self.mtools("mcopy")
                .arg("-o")
                .arg(&src)
                .arg(format!("::/{name}")),
            TOOL_TIMEOUT,
        )
        .ok(&format!("mcopy {name} onto the card"));
        std::fs::remove_file(src).unwrap();
    }

    /// A file as the card holds it (`mcopy`).
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        let out = run(
            self.mtools("mcopy").arg(format!("::{path}")).arg("-"),
            TOOL_TIMEOUT,
        );
        out.status.success().then_some(out.stdout)
    }

    /// The tree under `/DIR` as the card holds it (`mcopy -s`).
    pub fn read_tree(&self, dir: &str) -> Tree {
        let dest = self.dir.path().join("extract");
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::create_dir(&dest).unwrap();
        run(
            self.mtools("mcopy")
                .arg("-s")
                .arg("-n")
                .arg(format!("::/{dir}"))
                .arg(&dest),
            TOOL_TIMEOUT,
        )
        .ok(&format!("mcopy -s /{dir} off the card"));
        let name = dir.rsplit('/').next().unwrap();
        read_tree(&dest.join(name))
    }

    /// `fsck.fat -n` on the partition: no error, nothing to repair.
    pub fn assert_clean(&self) {
        let out = self.fsck();
        assert!(
            out.status.success(),
            "fsck.fat -n found problems:\n{}{}",
            out.stdout(),
            out.stderr()
        );
    }

    /// `fsck.fat -n` on the partition (a copy of it: fsck.fat wants a
    /// volume, not a disk), whatever it finds.
    pub fn fsck(&self) -> Output {
        let mut mbr = vec![0u8; 512];
        let mut f = std::fs::File::open(self.image()).unwrap();
        f.read_exact(&mut mbr).unwrap();
        let lba = u32::from_le_bytes(mbr[454..458].try_into().unwrap()) as u64;
        let part = self.dir.path().join("partition.img");
        {
            use std::io::{Seek, SeekFrom};
            f.seek(SeekFrom::Start(lba * 512)).unwrap();
            let mut out = std::fs::File::create(&part).unwrap();
            std::io::copy(&mut f, &mut out).unwrap();
        }
        let out = run(Command::new("fsck.fat").arg("-n").arg(&part), TOOL_TIMEOUT);
        let _ = std::fs::remove_file(&part);
        out
    }
}

/// A started board serving a [`Card`], in its namespace.
pub struct Board {
    pub rt: tokio::runtime::Runtime,
    pub server: Option<Server>,
    pub netns: String,
    pub name: &'static str,
}

impl Board {
    pub fn start(t: Target, card: &Card) -> Board {
        Board::start_with(t, card, StartOptions::default())
    }

    /// [`Board::start`] with options of its own (timeouts); the card's
    /// image and a log file next to it are filled in.
    pub fn start_with(t: Target, card: &Card, mut opts: StartOptions) -> Board {
        // Worker threads keep reading the board's output while the test
        // runs its clients.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        opts.storage = Some(StorageArg::Image(card.image()));
        opts.log = Some(card.dir.path().join("board.log"));
        let server = rt
            .block_on(t.start_with(ctx(), &Fixture::default(), &opts))
            .unwrap_or_else(|e| panic!("starting {}: {e:#}", t.name));
        let netns = server
            .netns
            .clone()
            .expect("a board on TAP lives in a namespace");
        Board {
            rt,
            server: Some(server),
            netns,
            name: t.name,
        }
    }

    /// `ip netns exec NS program`.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.netns, program]);
        c
    }

    pub fn log(&self) -> String {
        self.server.as_ref().map(|s| s.log()).unwrap_or_default()
    }

    /// Stop the board (SIGTERM: the virtual board unmounts; QEMU just ends)
    /// and return its log. The namespace is gone afterwards.
    pub fn stop(mut self) -> String {
        let s = self.server.take().unwrap();
        let log = self.rt.block_on(s.stop_gracefully());
        assert!(
            !crate::netns::exists(&self.netns),
            "namespace {} still exists after the board stopped",
            self.netns
        );
        log
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            if std::thread::panicking() {
                eprintln!("--- {} log:\n{}", self.name, s.log());
            }
            self.rt.block_on(s.stop());
        }
    }
}
