//! Targets: the things that serve FTP for the harness to talk to.
//!
//! | name       | what                                                        |
//! |------------|-------------------------------------------------------------|
//! | `host-dir` | the `sim` binary on host sockets, a host directory as root  |
//! | `host-fat` | the `sim` binary on host sockets, a FAT disk image          |
//! | `sim`      | the virtual board: `sim --tap` (ftpd-app on smoltcp) on a TAP device in a namespace of its own, a FAT image |
//! | `qemu`     | the firmware in the system's `qemu-system-arm` (lm3s6965evb), TAP in a namespace (root) or user networking |
//! | `qemu-10`  | the same on the second QEMU (`/opt/qemu10`, `$QEMU_EXTRA`)  |
//!
//! Every target does the same three things: say whether it can run here (and
//! why not), start with a fixture tree in place, and stop. A started target
//! is a [`Server`]: an address the harness reaches over TCP, nothing else.
//! The board targets live in a network namespace of their own
//! ([`crate::netns`]): [`Server::netns`] names it, and the runner plays
//! scenarios from a thread inside it ([`play_in_netns`]), so the player
//! never changes. Their log (the board's session events, or the QEMU
//! console) is kept in a file when the caller asks ([`StartOptions::log`]).

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::board::{self, Which};
use crate::client::{self, Control};
use crate::fixture::{Entry, Tree};
use crate::netns::{self, Netns};

/// Where a host target keeps its files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// A host directory, filled directly with the fixture tree.
    Dir,
    /// A FAT disk image, formatted fresh and filled over FTP.
    Image,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The `sim` binary on host sockets (127.0.0.1).
    Host(Storage),
    /// The virtual board on TAP in a namespace (issue 4).
    Sim,
    /// The firmware under QEMU (issue 5), on one of the two QEMUs.
    Qemu(Which),
}

/// A target the harness knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub name: &'static str,
    pub kind: Kind,
}

/// Every target, in the order the table shows them.
pub const ALL: &[Target] = &[
    Target {
        name: "host-dir",
        kind: Kind::Host(Storage::Dir),
    },
    Target {
        name: "host-fat",
        kind: Kind::Host(Storage::Image),
    },
    Target {
        name: "sim",
        kind: Kind::Sim,
    },
    Target {
        name: "qemu",
        kind: Kind::Qemu(Which::System),
    },
    Target {
        name: "qemu-10",
        kind: Kind::Qemu(Which::Extra),
    },
];

/// Why a target cannot run here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable {
    pub reason: String,
    /// A tool the machine lacks (`qemu-system-arm`, root for namespaces):
    /// under `CI=true` that is a failure, not a note.
    pub missing_tool: bool,
}

/// Size of the FAT image a `host-fat` target formats for each scenario,
/// and of the board targets' SD card (a power of two, as QEMU wants).
pub const IMAGE_SIZE: u64 = 64 << 20;

/// How long a board may take from start to serving.
const BOOT_TIMEOUT: Duration = Duration::from_secs(30);

/// How QEMU gets its network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QemuNet {
    /// TAP in a namespace of ours (root): the board at 192.0.2.2:21.
    Tap,
    /// QEMU user networking, ports forwarded on 127.0.0.1 (no privileges).
    User,
}

type Cached<T> = Arc<Mutex<Option<Result<T, String>>>>;

/// Shared by all targets of a run: where the `sim` binary and the firmware
/// are, the fixture images made so far.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Explicit `sim` binary (`--sim-bin` or `HARNESS_SIM_BIN`).
    pub sim_bin: Option<PathBuf>,
    /// Resolved once per run.
    resolved: Cached<PathBuf>,
    /// Whether `sim --image` serves, found out once per run.
    image_ok: Cached<()>,
    /// The QEMU board's firmware, built once per run.
    firmware: Cached<PathBuf>,
    /// Fixture trees on images, made once per run: (key, image).
    images: Arc<Mutex<Vec<(String, PathBuf)>>>,
    image_dir: Arc<Mutex<Option<tempfile::TempDir>>>,
}

impl Context {
    pub fn new(sim_bin: Option<PathBuf>) -> Self {
        let sim_bin = sim_bin.or_else(|| std::env::var_os("HARNESS_SIM_BIN").map(PathBuf::from));
        Context {
            sim_bin,
            ..Default::default()
        }
    }

    /// The `sim` binary: given, or built with cargo (quietly, once), or found
    /// next to the running harness.
    pub fn sim_binary(&self) -> Result<PathBuf, String> {
        let mut r = self.resolved.lock().unwrap();
        if let Some(r) = r.as_ref() {
            return r.clone();
        }
        let found = self.find_sim();
        *r = Some(found.clone());
        found
    }

    /// The QEMU board's firmware ELF, built (once) if needed.
    pub fn firmware(&self) -> Result<PathBuf, String> {
        let mut r = self.firmware.lock().unwrap();
        if let Some(r) = r.as_ref() {
            return r.clone();
        }
        let found = board::build_firmware();
        *r = Some(found.clone());
        found
    }

    /// Does this `sim` serve a FAT image? Asked once: format a fresh image,
    /// start `sim --image` on it, and see whether it serves or says why not.
    pub fn sim_serves_images(&self) -> Result<(), String> {
        let mut r = self.image_ok.lock().unwrap();
        if let Some(r) = r.as_ref() {
            return r.clone();
        }
        let found = (|| {
            let bin = self.sim_binary()?;
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let img = dir.path().join("probe.img");
            crate::image::create(&img, IMAGE_SIZE)?;
            let listen =
                SocketAddr::from((Ipv4Addr::LOCALHOST, free_port().map_err(|e| e.to_string())?));
            // A runtime of its own on a thread of its own: the probe may be
            // called from inside the caller's runtime.
            std::thread::scope(|sc| {
                sc.spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    rt.block_on(async {
                        match spawn_sim(&bin, listen, "--image", &img).await {
                            Ok(server) => {
                                server.stop().await;
                                Ok(())
                            }
                            Err(e) => {
                                let msg = format!("{e:#}");
                                let last = msg
                                    .lines()
                                    .rev()
                                    .find(|l| !l.trim().is_empty())
                                    .unwrap_or(&msg);
                                // Drop the log line's timestamp and level.
                                let why = last
                                    .split_once(" ERROR ")
                                    .map_or(last, |(_, w)| w)
                                    .to_string();
                                Err(format!("`sim --image` does not serve here: {why}"))
                            }
                        }
                    })
                })
                .join()
                .unwrap_or_else(|_| Err("probing `sim --image` panicked".into()))
            })
        })();
        *r = Some(found.clone());
        found
    }

    fn find_sim(&self) -> Result<PathBuf, String> {
        if let Some(p) = &self.sim_bin {
            return if p.is_file() {
                Ok(p.clone())
            } else {
                Err(format!("sim binary {} does not exist", p.display()))
            };
        }
        let built = build_sim();
        if let Ok(p) = &built {
            return Ok(p.clone());
        }
        // Next to this executable (target/<profile>/harness) or one level up
        // (target/<profile>/deps/harness-* for tests).
        if let Ok(exe) = std::env::current_exe() {
            for dir in exe.ancestors().skip(1).take(2) {
                let p = dir.join(format!("sim{}", std::env::consts::EXE_SUFFIX));
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
        Err(format!("no sim binary: {}", built.unwrap_err()))
    }

    /// A fresh copy, at `dest`, of an SD image holding `tree` (made once per
    /// run and tree: formatted, then filled over FTP by the host server on
    /// that image, then stopped cleanly). Every copy is byte-identical.
    pub async fn fixture_image(&self, tree: &Tree, dest: &Path) -> anyhow::Result<()> {
        let key = format!(
            "{}-{}",
            tree.name,
            crate::fixture::checksum(format!("{:?}", tree.entries).as_bytes())
        );
        let cached = self
            .images
            .lock()
            .unwrap()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, p)| p.clone());
        let master = match cached {
            Some(p) => p,
            None => {
                let dir = {
                    let mut d = self.image_dir.lock().unwrap();
                    if d.is_none() {
                        *d = Some(
                            tempfile::Builder::new()
                                .prefix("harness-images-")
                                .tempdir()?,
                        );
                    }
                    d.as_ref().unwrap().path().to_path_buf()
                };
                let img = dir.join(format!("{}.img", self.images.lock().unwrap().len()));
                crate::image::create(&img, IMAGE_SIZE).map_err(|e| anyhow!(e))?;
                if !tree.entries.is_empty() {
                    let bin = self.sim_binary().map_err(|e| anyhow!(e))?;
                    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
                    let server = spawn_sim(&bin, listen, "--image", &img).await?;
                    let seeded = seed_over_ftp(server.addr, tree).await;
                    let log = server.stop_gracefully().await;
                    seeded.with_context(|| {
                        format!(
                            "putting fixture `{}` on an image over FTP; server log:\n{log}",
                            tree.name
                        )
                    })?;
                }
                self.images.lock().unwrap().push((key, img.clone()));
                img
            }
        };
        board::sparse_copy(&master, dest)
            .with_context(|| format!("copying {} to {}", master.display(), dest.display()))
    }
}

/// The workspace root (harness/..), known at build time.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Where the harness keeps what a run leaves to look at (logs, consoles):
/// `target/harness/` (or under `$CARGO_TARGET_DIR`).
pub fn harness_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("harness")
}

/// `cargo build -p sim` in the same profile as this harness; the path of the
/// executable cargo reports.
fn build_sim() -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args([
        "build",
        "-p",
        "sim",
        "--bin",
        "sim",
        "--message-format=json",
    ])
    .current_dir(workspace_root());
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let out = output_saying_when_slow(child, "harness: building sim (cargo build -p sim)...")
        .map_err(|e| format!("cargo build -p sim: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        return Err(format!(
            "`cargo build -p sim` failed:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    let re = regex::Regex::new(r#""executable":"([^"]+)""#).unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"name\":\"sim\""))
        .filter_map(|l| {
            re.captures(l)
                .map(|c| PathBuf::from(c[1].replace("\\\\", "\\")))
        })
        .next_back()
        .ok_or_else(|| "cargo built sim but reported no executable".to_string())
}

/// Waits for `child` like `Command::output`, and prints `note` on stderr
/// once if it takes more than a second (a first build: minutes of silence
/// otherwise).
pub fn output_saying_when_slow(
    child: std::process::Child,
    note: &str,
) -> std::io::Result<std::process::Output> {
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = tx.send(());
        out
    });
    if rx.recv_timeout(Duration::from_secs(1)).is_err() {
        eprintln!("{note}");
    }
    waiter
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Does a program exist on PATH?
pub fn have_tool(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
}

/// How QEMU is networked here: TAP when this process may make namespaces,
/// else user networking. `HARNESS_QEMU_NET=user|tap` forces one.
pub fn qemu_net() -> QemuNet {
    match std::env::var("HARNESS_QEMU_NET").as_deref() {
        Ok("user") => QemuNet::User,
        Ok("tap") => QemuNet::Tap,
        _ if netns::missing_privilege().is_none() => QemuNet::Tap,
        _ => QemuNet::User,
    }
}

/// How to start a target.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Serve this storage instead of a fresh one with the fixture on it.
    pub storage: Option<StorageArg>,
    /// Also write the server's log (for QEMU: the console) to this file.
    pub log: Option<PathBuf>,
    /// Also print the server's log on stderr as it comes (`serve`).
    pub echo: bool,
    /// The engine's idle timeout in seconds (`sim --idle-timeout`, the QEMU
    /// script's `--idle-timeout`); `None`: the board's default (300 s).
    /// The boards only (sim, qemu, qemu-10).
    pub idle_timeout: Option<u64>,
    /// The engine's data timeout in seconds, likewise (default 30 s).
    pub data_timeout: Option<u64>,
}

impl StartOptions {
    /// `--idle-timeout S --data-timeout S` for `sim` and the QEMU script.
    fn timeout_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (flag, s) in [
            ("--idle-timeout", self.idle_timeout),
            ("--data-timeout", self.data_timeout),
        ] {
            if let Some(s) = s {
                v.push(flag.to_string());
                v.push(s.to_string());
            }
        }
        v
    }
}

impl Target {
    pub fn by_name(name: &str) -> Option<Target> {
        ALL.iter().copied().find(|t| t.name == name)
    }

    /// Can this target run on this machine?
    pub fn probe(&self, ctx: &Context) -> Result<(), Unavailable> {
        let sim = || {
            ctx.sim_binary().map_err(|reason| Unavailable {
                reason,
                missing_tool: false,
            })
        };
        match self.kind {
            Kind::Host(storage) => {
                sim()?;
                if storage == Storage::Image {
                    crate::image::available().map_err(|reason| Unavailable {
                        reason,
                        missing_tool: false,
                    })?;
                    ctx.sim_serves_images().map_err(|reason| Unavailable {
                        reason,
                        missing_tool: false,
                    })?;
                }
                Ok(())
            }
            Kind::Sim => {
                if let Some(why) = netns::missing_privilege() {
                    return Err(Unavailable {
                        reason: format!(
                            "{why}. The virtual board runs on a TAP device in a network namespace of its own; \
                             without that, use --target host-dir or host-fat (the same engine on host sockets)"
                        ),
                        missing_tool: true,
                    });
                }
                sim()?;
                ctx.sim_serves_images().map_err(|reason| Unavailable {
                    reason,
                    missing_tool: false,
                })
            }
            Kind::Qemu(which) => {
                board::find_qemu(which).map_err(|n| Unavailable {
                    reason: n.reason,
                    missing_tool: n.missing_tool,
                })?;
                if !board::run_script().is_file() {
                    return Err(Unavailable {
                        reason: format!("{} is missing", board::run_script().display()),
                        missing_tool: false,
                    });
                }
                // Building the firmware is part of running the target: a
                // build that fails is a failure under CI, not a skip.
                ctx.firmware().map_err(|reason| Unavailable {
                    reason,
                    missing_tool: true,
                })?;
                // The fixture images are made by the host server.
                sim()?;
                ctx.sim_serves_images().map_err(|reason| Unavailable {
                    reason,
                    missing_tool: false,
                })
            }
        }
    }

    /// One line about what exactly runs (QEMU version, networking), for
    /// the table.
    pub fn describe(&self) -> Option<String> {
        match self.kind {
            Kind::Host(_) => None,
            Kind::Sim => {
                Some("sim --tap: ftpd-app on smoltcp, TAP in a network namespace, FAT image".into())
            }
            Kind::Qemu(w) => board::find_qemu(w).ok().map(|q| {
                let net = match qemu_net() {
                    QemuNet::Tap => "TAP in a network namespace",
                    QemuNet::User => "user networking on 127.0.0.1",
                };
                format!("{} ({}), {net}", q.version, q.path.display())
            }),
        }
    }

    /// Why this target, as it runs here, cannot play `s` at all (not a
    /// failure of the server): QEMU's user networking puts the board behind
    /// NAT, so the address a client sends in `PORT`/`EPRT` (127.0.0.1) is
    /// not the one the board sees it come from (10.0.2.2), and the board
    /// rightly refuses it (bounce protection). TAP, as root, has no such gap.
    pub fn cannot_play(&self, s: &crate::scenario::Scenario) -> Option<String> {
        if matches!(self.kind, Kind::Qemu(_)) && qemu_net() == QemuNet::User && uses_active_mode(s)
        {
            return Some(format!(
                "{} uses active mode (PORT/EPRT *), which cannot cross QEMU's user-mode NAT \
                 (the board sees the client as 10.0.2.2, the client offers 127.0.0.1); run as root \
                 for TAP networking in a namespace",
                s.id
            ));
        }
        None
    }

    /// Start the target with `tree` in place. `over` overrides the fresh
    /// temporary storage (for `harness serve`).
    pub async fn start(
        &self,
        ctx: &Context,
        tree: &Tree,
        over: Option<&StorageArg>,
    ) -> anyhow::Result<Server> {
        self.start_with(
            ctx,
            tree,
            &StartOptions {
                storage: over.cloned(),
                ..Default::default()
            },
        )
        .await
    }

    /// [`Target::start`] with every option.
    pub async fn start_with(
        &self,
        ctx: &Context,
        tree: &Tree,
        opts: &StartOptions,
    ) -> anyhow::Result<Server> {
        self.start_diag(ctx, tree, opts, false).await
    }

    /// [`Target::start_with`]; `diag` also serves the diagnostic raw-TCP
    /// services (`sim --diag`, the QEMU board's diag firmware): the
    /// ceilings of `harness bench`.
    pub async fn start_diag(
        &self,
        ctx: &Context,
        tree: &Tree,
        opts: &StartOptions,
        diag: bool,
    ) -> anyhow::Result<Server> {
        let mut server = match self.kind {
            Kind::Host(storage) => self.start_host(ctx, tree, storage, opts, diag).await?,
            Kind::Sim => start_sim_tap(ctx, tree, opts, diag).await?,
            Kind::Qemu(which) => start_qemu(ctx, which, tree, opts, diag).await?,
        };
        server.target = self.name;
        Ok(server)
    }

    async fn start_host(
        &self,
        ctx: &Context,
        tree: &Tree,
        storage: Storage,
        opts: &StartOptions,
        diag: bool,
    ) -> anyhow::Result<Server> {
        let bin = ctx.sim_binary().map_err(|e| anyhow!(e))?;
        let dir = tempfile::Builder::new().prefix("harness-").tempdir()?;
        let (arg, path, seed) = match (&opts.storage, storage) {
            (Some(StorageArg::Root(p)), _) => ("--root", p.clone(), false),
            (Some(StorageArg::Image(p)), _) => ("--image", p.clone(), false),
            (None, Storage::Dir) => {
                let root = dir.path().join("root");
                std::fs::create_dir(&root)?;
                tree.materialize(&root)
                    .context("creating the fixture tree")?;
                ("--root", root, false)
            }
            (None, Storage::Image) => {
                let img = dir.path().join("sd.img");
                crate::image::create(&img, IMAGE_SIZE).map_err(|e| anyhow!(e))?;
                ("--image", img, true)
            }
        };
        let port = free_port()?;
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let log = LogSink::new(opts.log.as_deref(), opts.echo)?;
        let mut server = spawn_sim_with(&bin, listen, arg, &path, log, diag).await?;
        server.tempdir = Some(dir);
        if seed {
            seed_over_ftp(server.addr, tree).await.with_context(|| {
                format!("filling the image with fixture `{}` over FTP", tree.name)
            })?;
        }
        Ok(server)
    }
}

/// Does the scenario open active data connections (`PORT *`, `EPRT *`)?
pub fn uses_active_mode(s: &crate::scenario::Scenario) -> bool {
    s.steps.iter().any(|st| match st {
        crate::scenario::Step::Send(line) => {
            let mut w = line.split_whitespace();
            let verb = w.next().unwrap_or("").to_ascii_uppercase();
            (verb == "PORT" || verb == "EPRT") && w.next() == Some("*")
        }
        _ => false,
    })
}

/// Storage given on the command line.
#[derive(Clone, Debug)]
pub enum StorageArg {
    Root(PathBuf),
    Image(PathBuf),
}

/// Where a server's log goes: kept in memory (for reports), and optionally
/// a file and the terminal.
#[derive(Clone, Debug)]
pub struct LogSink(Arc<Mutex<LogInner>>);

#[derive(Debug)]
struct LogInner {
    text: String,
    file: Option<(PathBuf, std::fs::File)>,
    echo: bool,
}

impl LogSink {
    pub fn new(file: Option<&Path>, echo: bool) -> anyhow::Result<LogSink> {
        let file = match file {
            Some(p) => {
                if let Some(d) = p.parent() {
                    std::fs::create_dir_all(d)
                        .with_context(|| format!("creating {}", d.display()))?;
                }
                Some((
                    p.to_path_buf(),
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                ))
            }
            None => None,
        };
        Ok(LogSink(Arc::new(Mutex::new(LogInner {
            text: String::new(),
            file,
            echo,
        }))))
    }

    pub fn line(&self, l: &str) {
        let mut g = self.0.lock().unwrap();
        if g.text.len() < 1 << 20 {
            g.text.push_str(l);
            g.text.push('\n');
        }
        if let Some((_, f)) = g.file.as_mut() {
            let _ = writeln!(f, "{l}");
        }
        if g.echo {
            eprintln!("{l}");
        }
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap().text.clone()
    }

    pub fn path(&self) -> Option<PathBuf> {
        self.0.lock().unwrap().file.as_ref().map(|(p, _)| p.clone())
    }

    /// Copy every line of a child's stdout and stderr into the sink.
    fn follow(&self, child: &mut Child) {
        for pipe in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let sink = self.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(pipe).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    sink.line(&l);
                }
            });
        }
    }
}

/// A file that another process appends to (QEMU's console), copied line by
/// line into a [`LogSink`].
#[derive(Debug)]
struct Tail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Tail {
    fn new(path: PathBuf) -> Tail {
        Tail {
            path,
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// Read what is new; whole lines go to `sink`. `flush` also sends a
    /// last line without its end.
    fn pump(&mut self, sink: &LogSink, flush: bool) {
        use std::io::{Read, Seek};
        if let Ok(mut f) = std::fs::File::open(&self.path) {
            if f.seek(std::io::SeekFrom::Start(self.offset)).is_ok() {
                let mut buf = Vec::new();
                if let Ok(n) = f.take(1 << 20).read_to_end(&mut buf) {
                    self.offset += n as u64;
                    self.partial.extend_from_slice(&buf);
                }
            }
        }
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            sink.line(&format!("console: {text}"));
        }
        if flush && !self.partial.is_empty() {
            let text = String::from_utf8_lossy(&self.partial).into_owned();
            sink.line(&format!("console: {}", text.trim_end_matches('\r')));
            self.partial.clear();
        }
    }
}

/// A running target.
pub struct Server {
    pub addr: SocketAddr,
    /// The network namespace it lives in (sim, qemu), if any.
    pub netns: Option<String>,
    /// The target's name (`host-dir`, `sim`, `qemu`...).
    pub target: &'static str,
    /// QEMU's QMP socket (cable pull: `set_link stellaris_enet.0`).
    pub qmp: Option<PathBuf>,
    /// QEMU's console input (and a copy of its output) on a unix socket:
    /// write `s` for the board's statistics (see [`crate::load::console_stats`]).
    pub console: Option<PathBuf>,
    /// The image the board serves (sim, qemu), to check after it stops.
    pub image: Option<PathBuf>,
    child: Option<Child>,
    log: LogSink,
    tail: Option<Arc<Mutex<Tail>>>,
    tail_task: Option<tokio::task::JoinHandle<()>>,
    tempdir: Option<tempfile::TempDir>,
    /// Dropped after the child is gone (field order matters for Drop too:
    /// `Server::drop` kills the child first).
    ns: Option<Netns>,
}

impl Server {
    fn new(addr: SocketAddr, child: Child, log: LogSink) -> Server {
        Server {
            addr,
            netns: None,
            target: "",
            qmp: None,
            console: None,
            image: None,
            child: Some(child),
            log,
            tail: None,
            tail_task: None,
            tempdir: None,
            ns: None,
        }
    }

    /// What the server printed so far.
    pub fn log(&self) -> String {
        self.pump();
        self.log.text()
    }

    /// The file the log also goes to, if any.
    pub fn log_path(&self) -> Option<PathBuf> {
        self.log.path()
    }

    /// The process's id (QEMU's own: the run script ends with `exec`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    fn pump(&self) {
        if let Some(t) = &self.tail {
            t.lock().unwrap().pump(&self.log, false);
        }
    }

    /// Has the process exited?
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Stop the server (it is killed: the engine must survive that, and the
    /// harness has nothing to flush).
    pub async fn stop(mut self) -> String {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), c.wait()).await;
        }
        self.finish()
    }

    /// Stop the server as Ctrl-C would (SIGTERM, then a kill after 10 s):
    /// `sim` unmounts its image cleanly.
    pub async fn stop_gracefully(mut self) -> String {
        if let Some(mut c) = self.child.take() {
            if let Some(pid) = c.id() {
                // SAFETY: a signal to our own child, which has not been reaped.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            }
            if tokio::time::timeout(Duration::from_secs(10), c.wait())
                .await
                .is_err()
            {
                let _ = c.start_kill();
                let _ = tokio::time::timeout(Duration::from_secs(5), c.wait()).await;
                self.log
                    .line("harness: the server ignored SIGTERM for 10 s and was killed");
            }
        }
        self.finish()
    }

    fn finish(&mut self) -> String {
        if let Some(t) = self.tail_task.take() {
            t.abort();
        }
        if let Some(t) = &self.tail {
            t.lock().unwrap().pump(&self.log, true);
        }
        self.ns = None;
        self.log.text()
    }

    /// Wait until the server exits (Ctrl-C handling is the caller's).
    pub async fn wait(&mut self) -> Option<std::process::ExitStatus> {
        match self.child.as_mut() {
            Some(c) => c.wait().await.ok(),
            None => None,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(t) = self.tail_task.take() {
            t.abort();
        }
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
            // Reap it before the namespace goes, where possible.
            for _ in 0..50 {
                if c.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.ns = None;
    }
}

/// A port that was free a moment ago.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// A passive port range of its own for each server, below Linux's ephemeral
/// range (32768 and up), so that servers started side by side (cargo test
/// and the CLI, or several test threads) do not compete for ports.
pub fn pasv_range(control_port: u16) -> String {
    let base = 20000 + 100 * (control_port % 127);
    format!("{base}-{}", base + 99)
}

/// The child dies with the harness (SIGKILL, a crash): no stray servers or
/// QEMUs. Survives `exec` (the run script, `ip netns exec`).
fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe and touches nothing of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// Spawn `sim --listen ADDR --root|--image PATH`; ready when it accepts.
pub async fn spawn_sim(
    bin: &Path,
    listen: SocketAddr,
    storage_flag: &str,
    path: &Path,
) -> anyhow::Result<Server> {
    spawn_sim_with(
        bin,
        listen,
        storage_flag,
        path,
        LogSink::new(None, false)?,
        false,
    )
    .await
}

async fn spawn_sim_with(
    bin: &Path,
    listen: SocketAddr,
    storage_flag: &str,
    path: &Path,
    log: LogSink,
    diag: bool,
) -> anyhow::Result<Server> {
    let mut cmd = Command::new(bin);
    die_with_parent(&mut cmd);
    if diag {
        // Free ports (the log line says which), not the two after `listen`.
        cmd.args(["--diag", "--diag-ports", "0,0"]);
    }
    let mut child = cmd
        .arg("--listen")
        .arg(listen.to_string())
        .arg("--pasv-ports")
        .arg(pasv_range(listen.port()))
        .arg(storage_flag)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    log.follow(&mut child);
    let mut server = Server::new(listen, child, log);
    // Ready when the port accepts a connection: whatever the server prints.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = server.exited() {
            bail!(
                "{} exited ({status}) before serving:\n{}",
                bin.display(),
                server.log()
            );
        }
        if let Ok(s) = client::connect(listen, Duration::from_millis(500)).await {
            // Close at once: the engine must shrug off a client that leaves.
            drop(s);
            return Ok(server);
        }
        if tokio::time::Instant::now() > deadline {
            let log = server.stop().await;
            bail!(
                "{} did not accept connections on {listen} within 20 s:\n{log}",
                bin.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until the server's log shows `needle` (the board says it serves),
/// or it exits, or `limit` passes.
async fn wait_for_log(
    server: &mut Server,
    needle: &str,
    limit: Duration,
    what: &str,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if server.log().contains(needle) {
            return Ok(());
        }
        if let Some(status) = server.exited() {
            tokio::time::sleep(Duration::from_millis(100)).await; // let the pipes drain
            bail!("{what} exited ({status}) before serving:\n{}", server.log());
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "{what} did not report `{needle}` within {limit:?}:\n{}",
                server.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The storage a board target serves: the one given, or a fresh copy of
/// the fixture image in `dir`.
async fn board_image(
    ctx: &Context,
    tree: &Tree,
    opts: &StartOptions,
    dir: &Path,
    qemu: bool,
) -> anyhow::Result<(&'static str, PathBuf)> {
    match &opts.storage {
        Some(StorageArg::Root(p)) if !qemu => Ok(("--root", p.clone())),
        Some(StorageArg::Root(_)) => bail!(
            "the QEMU board serves an SD image: use --image FILE (make one with `harness image create`)"
        ),
        Some(StorageArg::Image(p)) => {
            let len = std::fs::metadata(p)
                .with_context(|| format!("SD image {}", p.display()))?
                .len();
            if qemu {
                crate::image::check_size(len).map_err(|e| anyhow!("{}: {e}", p.display()))?;
            }
            Ok(("--image", p.clone()))
        }
        None => {
            let img = dir.join("sd.img");
            ctx.fixture_image(tree, &img).await?;
            Ok(("--image", img))
        }
    }
}

/// The virtual board: `ip netns exec NS sim --tap ftpd0 --image IMG` in a
/// namespace of its own; serving once it reports the TAP device open.
async fn start_sim_tap(
    ctx: &Context,
    tree: &Tree,
    opts: &StartOptions,
    diag: bool,
) -> anyhow::Result<Server> {
    if let Some(why) = netns::missing_privilege() {
        bail!("target sim cannot start: {why}; use --target host-dir or host-fat");
    }
    let bin = ctx.sim_binary().map_err(|e| anyhow!(e))?;
    let dir = tempfile::Builder::new().prefix("harness-sim-").tempdir()?;
    let (flag, path) = board_image(ctx, tree, opts, dir.path(), false).await?;
    let ns = Netns::create("sim")?;
    let log = LogSink::new(opts.log.as_deref(), opts.echo)?;
    let mut cmd = ns.command(&bin);
    die_with_parent(&mut cmd);
    let mut child = cmd
        .args(["--tap", netns::TAP])
        .args(opts.timeout_args())
        .args(diag.then_some("--diag"))
        .arg(flag)
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} in namespace {}", bin.display(), ns.name()))?;
    log.follow(&mut child);
    let mut server = Server::new(netns::board_addr(false), child, log);
    server.netns = Some(ns.name().to_string());
    server.image = (flag == "--image").then_some(path);
    server.ns = Some(ns);
    server.tempdir = Some(dir);
    // `run_tap` logs this once the TAP device is open and the board polls.
    wait_for_log(
        &mut server,
        "serving FTP on",
        Duration::from_secs(20),
        "sim --tap",
    )
    .await?;
    Ok(server)
}

/// The firmware in QEMU through `qemu/run-lm3s6965.sh`: TAP in a namespace
/// of its own when we may, else user networking on 127.0.0.1; serving once
/// the console prints its `ready` line.
async fn start_qemu(
    ctx: &Context,
    which: Which,
    tree: &Tree,
    opts: &StartOptions,
    diag: bool,
) -> anyhow::Result<Server> {
    let qemu = board::find_qemu(which).map_err(|n| anyhow!(n.reason))?;
    let elf = if diag {
        board::build_diag_firmware()
    } else {
        ctx.firmware()
    }
    .map_err(|e| anyhow!(e))?;
    let dir = tempfile::Builder::new().prefix("harness-qemu-").tempdir()?;
    let (_, image) = board_image(ctx, tree, opts, dir.path(), true).await?;
    let console = match &opts.log {
        Some(l) => l.with_extension("console"),
        None => dir.path().join("console"),
    };
    let _ = std::fs::remove_file(&console);
    let qmp = dir.path().join("qmp.sock");
    let console_socket = dir.path().join("console.sock");
    let net = qemu_net();
    let (ns, mut cmd, addr) = match net {
        QemuNet::Tap => {
            let ns = Netns::create("qemu")?;
            let mut cmd = ns.command(board::run_script());
            cmd.args(["--net", &format!("tap:{}", netns::TAP)]);
            (Some(ns), cmd, netns::board_addr(false))
        }
        QemuNet::User => {
            // The passive range is forwarded 1:1; the board advertises
            // 127.0.0.1 in 227 replies (the script's default in user mode).
            let (ftp, pasv) = board::free_ports(10).map_err(|e| anyhow!(e))?;
            let mut cmd = Command::new(board::run_script());
            cmd.args([
                "--net",
                "user",
                "--ftp-port",
                &ftp.to_string(),
                "--pasv-ports",
                &format!("{pasv}-{}", pasv + 9),
            ]);
            (None, cmd, SocketAddr::from((Ipv4Addr::LOCALHOST, ftp)))
        }
    };
    die_with_parent(&mut cmd);
    cmd.arg("--qemu")
        .arg(&qemu.path)
        .arg("--image")
        .arg(&image)
        .args(opts.timeout_args())
        .arg("--serial")
        .arg(&console)
        .arg("--console-socket")
        .arg(&console_socket)
        .arg("--qmp")
        .arg(&qmp)
        .arg("--kernel")
        .arg(&elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let log = LogSink::new(opts.log.as_deref(), opts.echo)?;
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", board::run_script().display()))?;
    log.follow(&mut child);
    let mut server = Server::new(addr, child, log.clone());
    server.netns = ns.as_ref().map(|n| n.name().to_string());
    server.ns = ns;
    server.qmp = Some(qmp);
    server.console = Some(console_socket);
    server.image = Some(image);
    server.tempdir = Some(dir);
    let tail = Arc::new(Mutex::new(Tail::new(console)));
    server.tail = Some(tail.clone());
    server.tail_task = Some(tokio::spawn(async move {
        // Bounded by the server: aborted when it stops.
        loop {
            tail.lock().unwrap().pump(&log, false);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }));
    wait_for_log(
        &mut server,
        " ready: ftp://",
        BOOT_TIMEOUT,
        &format!("QEMU ({})", qemu.version),
    )
    .await?;
    Ok(server)
}

/// Create a fixture tree on a running server as user `test`, over FTP.
pub async fn seed_over_ftp(addr: SocketAddr, tree: &Tree) -> anyhow::Result<()> {
    if tree.entries.is_empty() {
        return Ok(());
    }
    let t = Duration::from_secs(10);
    let mut c = Control::connect(addr, t).await?;
    let step = async |c: &mut Control, line: &str, want: u16| -> anyhow::Result<client::Reply> {
        if !line.is_empty() {
            c.send_line(line).await?;
        }
        let r = c.read_reply(t).await.map_err(|e| anyhow!("{line}: {e}"))?;
        if r.code / 100 != want / 100 {
            bail!(
                "`{line}` answered `{}` (wanted {want})",
                r.lines.join(" / ")
            );
        }
        Ok(r)
    };
    step(&mut c, "", 220).await?;
    step(&mut c, "USER test", 331).await?;
    step(&mut c, "PASS test", 230).await?;
    step(&mut c, "TYPE I", 200).await?;
    for e in &tree.entries {
        match e {
            Entry::Dir(p) => {
                step(&mut c, &format!("MKD /{p}"), 257).await?;
            }
            Entry::File(p, bytes) => {
                let r = step(&mut c, "PASV", 227).await?;
                let a = client::parse_pasv(r.text())
                    .ok_or_else(|| anyhow!("unparsable 227: {}", r.text()))?;
                let mut data = client::connect(a, t).await?;
                step(&mut c, &format!("STOR /{p}"), 150).await?;
                client::write_all_and_close(&mut data, bytes, t).await?;
                drop(data);
                step(&mut c, "", 226).await?;
            }
        }
    }
    let _ = c.send_line("QUIT").await;
    let _ = c.read_reply(t).await;
    Ok(())
}

/// Play a scenario from inside the network namespace `netns` (a name under
/// `/run/netns`, as `ip netns add` makes): a thread of its own enters the
/// namespace and runs the player there, so targets whose address lives only
/// in a namespace (sim on TAP, QEMU on TAP) need nothing else from the
/// runner. `verbose` prints the dialogue as it happens.
pub async fn play_in_netns(
    netns: &str,
    scenario: &crate::scenario::Scenario,
    addr: SocketAddr,
    tree: &Tree,
    verbose: bool,
) -> anyhow::Result<crate::player::Played> {
    let (s, t) = (scenario.clone(), tree.clone());
    netns::run_in(netns, move || async move {
        let mut show = |tr: &crate::transcript::Transcript, e: &crate::transcript::Entry| {
            for l in tr.render_entry(e, false) {
                eprintln!("    {l}");
            }
        };
        let observer: Option<crate::player::Observer<'_>> =
            if verbose { Some(&mut show) } else { None };
        crate::player::play(&s, addr, &t, observer).await
    })
    .await
}

/// Play a scenario against a started server, from inside its namespace if
/// it has one.
pub async fn play_on(
    server: &Server,
    scenario: &crate::scenario::Scenario,
    tree: &Tree,
    verbose: bool,
) -> anyhow::Result<crate::player::Played> {
    match &server.netns {
        Some(ns) => play_in_netns(ns, scenario, server.addr, tree, verbose).await,
        None => {
            let mut show = |t: &crate::transcript::Transcript, e: &crate::transcript::Entry| {
                for l in t.render_entry(e, false) {
                    eprintln!("    {l}");
                }
            };
            let observer: Option<crate::player::Observer<'_>> =
                if verbose { Some(&mut show) } else { None };
            Ok(crate::player::play(scenario, server.addr, tree, observer).await)
        }
    }
}
