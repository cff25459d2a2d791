//! Targets: the things that serve FTP for the harness to talk to.
//!
//! | name       | what                                                     | status        |
//! |------------|----------------------------------------------------------|---------------|
//! | `host-dir` | the `sim` binary on host sockets, a host directory as root | here        |
//! | `host-fat` | the `sim` binary on host sockets, a FAT disk image       | here          |
//! | `sim`      | the virtual board on smoltcp + TAP in a network namespace | issue 4      |
//! | `qemu`     | the firmware in `qemu-system-arm` (lm3s6965evb)          | issue 5       |
//!
//! Every target does the same three things: say whether it can run here (and
//! why not), start with a fixture tree in place, and stop. A started target
//! is a [`Server`]: an address the harness reaches over TCP, nothing else.
//! A target that needs a network namespace (sim, qemu) will report the
//! namespace's name in [`Server::netns`] and make its address reachable from
//! the harness (a veth pair into the namespace), so the player never changes.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::client::{self, Control};
use crate::fixture::{Entry, Tree};

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
    /// The firmware under QEMU (issue 5).
    Qemu,
}

/// A target the harness knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub name: &'static str,
    pub kind: Kind,
}

/// Every target, in the order the table shows them.
pub const ALL: &[Target] = &[
    Target { name: "host-dir", kind: Kind::Host(Storage::Dir) },
    Target { name: "host-fat", kind: Kind::Host(Storage::Image) },
    Target { name: "sim", kind: Kind::Sim },
    Target { name: "qemu", kind: Kind::Qemu },
];

/// Why a target cannot run here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable {
    pub reason: String,
    /// A tool the machine lacks (`qemu-system-arm`, root for namespaces):
    /// under `CI=true` that is a failure, not a note.
    pub missing_tool: bool,
}

/// Size of the FAT image a `host-fat` target formats for each scenario.
pub const IMAGE_SIZE: u64 = 64 << 20;

/// Shared by all targets of a run: where the `sim` binary is.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Explicit `sim` binary (`--sim-bin` or `HARNESS_SIM_BIN`).
    pub sim_bin: Option<PathBuf>,
    /// Resolved once per run.
    resolved: Arc<Mutex<Option<Result<PathBuf, String>>>>,
    /// Whether `sim --image` serves, found out once per run.
    image_ok: Arc<Mutex<Option<Result<(), String>>>>,
}

impl Context {
    pub fn new(sim_bin: Option<PathBuf>) -> Self {
        let sim_bin = sim_bin.or_else(|| std::env::var_os("HARNESS_SIM_BIN").map(PathBuf::from));
        Context { sim_bin, resolved: Arc::default(), image_ok: Arc::default() }
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
            let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port().map_err(|e| e.to_string())?));
            // A runtime of its own on a thread of its own: the probe may be
            // called from inside the caller's runtime.
            std::thread::scope(|sc| {
                sc.spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
                    rt.block_on(async {
                        match spawn_sim(&bin, listen, "--image", &img).await {
                            Ok(server) => {
                                server.stop().await;
                                Ok(())
                            }
                            Err(e) => {
                                let msg = format!("{e:#}");
                                let last = msg.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(&msg);
                                // Drop the log line's timestamp and level.
                                let why = last.split_once(" ERROR ").map_or(last, |(_, w)| w).to_string();
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
            return if p.is_file() { Ok(p.clone()) } else { Err(format!("sim binary {} does not exist", p.display())) };
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
}

/// The workspace root (harness/..), known at build time.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `cargo build -p sim` in the same profile as this harness; the path of the
/// executable cargo reports.
fn build_sim() -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "-p", "sim", "--bin", "sim", "--message-format=json"]).current_dir(workspace_root());
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let out = cmd.stderr(Stdio::piped()).output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        return Err(format!("`cargo build -p sim` failed:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n")));
    }
    let re = regex::Regex::new(r#""executable":"([^"]+)""#).unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"name\":\"sim\""))
        .filter_map(|l| re.captures(l).map(|c| PathBuf::from(c[1].replace("\\\\", "\\"))))
        .next_back()
        .ok_or_else(|| "cargo built sim but reported no executable".to_string())
}

/// Does a program exist on PATH?
pub fn have_tool(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
}

impl Target {
    pub fn by_name(name: &str) -> Option<Target> {
        ALL.iter().copied().find(|t| t.name == name)
    }

    /// Can this target run on this machine?
    pub fn probe(&self, ctx: &Context) -> Result<(), Unavailable> {
        match self.kind {
            Kind::Host(storage) => {
                ctx.sim_binary().map_err(|reason| Unavailable { reason, missing_tool: false })?;
                if storage == Storage::Image {
                    crate::image::available().map_err(|reason| Unavailable { reason, missing_tool: false })?;
                    ctx.sim_serves_images().map_err(|reason| Unavailable { reason, missing_tool: false })?;
                }
                Ok(())
            }
            Kind::Sim => Err(Unavailable {
                reason: "the virtual board on TAP is not built yet (issue 4); use --target host-dir/host-fat".into(),
                missing_tool: false,
            }),
            Kind::Qemu => {
                if !have_tool("qemu-system-arm") {
                    return Err(Unavailable {
                        reason: "qemu-system-arm is not installed (apt-get install qemu-system-arm)".into(),
                        missing_tool: true,
                    });
                }
                Err(Unavailable { reason: "the QEMU board is not built yet (issue 5)".into(), missing_tool: false })
            }
        }
    }

    /// Start the target with `tree` in place. `root`/`image` override the
    /// fresh temporary storage (for `harness serve`).
    pub async fn start(&self, ctx: &Context, tree: &Tree, over: Option<&StorageArg>) -> anyhow::Result<Server> {
        let Kind::Host(storage) = self.kind else {
            let u = self.probe(ctx).err().map_or_else(|| "not implemented".into(), |u| u.reason);
            bail!("target {} cannot start: {u}", self.name);
        };
        let bin = ctx.sim_binary().map_err(|e| anyhow!(e))?;
        let dir = tempfile::Builder::new().prefix("harness-").tempdir()?;
        let (arg, path, seed) = match (over, storage) {
            (Some(StorageArg::Root(p)), _) => ("--root", p.clone(), false),
            (Some(StorageArg::Image(p)), _) => ("--image", p.clone(), false),
            (None, Storage::Dir) => {
                let root = dir.path().join("root");
                std::fs::create_dir(&root)?;
                tree.materialize(&root).context("creating the fixture tree")?;
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
        let mut server = spawn_sim(&bin, listen, arg, &path).await?;
        server.tempdir = Some(dir);
        if seed {
            seed_over_ftp(server.addr, tree).await.with_context(|| format!("filling the image with fixture `{}` over FTP", tree.name))?;
        }
        Ok(server)
    }
}

/// Storage given on the command line.
#[derive(Clone, Debug)]
pub enum StorageArg {
    Root(PathBuf),
    Image(PathBuf),
}

/// A running target.
pub struct Server {
    pub addr: SocketAddr,
    /// The network namespace it lives in (sim, qemu), if any.
    pub netns: Option<String>,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    tempdir: Option<tempfile::TempDir>,
}

impl Server {
    /// What the server printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Has the process exited?
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Stop the server (it is killed: the engine must survive that, and the
    /// harness has nothing to flush).
    pub async fn stop(mut self) -> String {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), c.wait()).await;
        }
        self.log()
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
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
    }
}

/// A port that was free a moment ago.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// A passive port range of its own for each server, below Linux's ephemeral
/// range (32768 and up), so that servers started side by side (cargo test
/// and the CLI, or several test threads) do not compete for ports.
pub fn pasv_range(control_port: u16) -> String {
    let base = 20000 + 100 * (control_port % 127);
    format!("{base}-{}", base + 99)
}

/// Spawn `sim --listen ADDR --root|--image PATH`; ready when it accepts.
pub async fn spawn_sim(bin: &Path, listen: SocketAddr, storage_flag: &str, path: &Path) -> anyhow::Result<Server> {
    let mut cmd = Command::new(bin);
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe and touches nothing of the parent.
    unsafe {
        // If the harness dies without stopping its server (SIGKILL, a
        // crash), the kernel ends the server too: no stray servers.
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
        });
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
    let log = Arc::new(Mutex::new(String::new()));
    for pipe in [child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>), child.stderr.take().map(|s| Box::new(s) as _)]
        .into_iter()
        .flatten()
    {
        let log = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                let mut g = log.lock().unwrap();
                if g.len() < 1 << 20 {
                    g.push_str(&l);
                    g.push('\n');
                }
            }
        });
    }
    let mut server = Server { addr: listen, netns: None, child: Some(child), log, tempdir: None };
    // Ready when the port accepts a connection: whatever the server prints.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = server.exited() {
            bail!("{} exited ({status}) before serving:\n{}", bin.display(), server.log());
        }
        if let Ok(s) = client::connect(listen, Duration::from_millis(500)).await {
            // Close at once: the engine must shrug off a client that leaves.
            drop(s);
            return Ok(server);
        }
        if tokio::time::Instant::now() > deadline {
            let log = server.stop().await;
            bail!("{} did not accept connections on {listen} within 20 s:\n{log}", bin.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
            bail!("`{line}` answered `{}` (wanted {want})", r.lines.join(" / "));
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
                let a = client::parse_pasv(r.text()).ok_or_else(|| anyhow!("unparsable 227: {}", r.text()))?;
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
    let (ns, s, t) = (netns.to_string(), scenario.clone(), tree.clone());
    tokio::task::spawn_blocking(move || -> anyhow::Result<crate::player::Played> {
        enter_netns(&ns)?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let mut show = |tr: &crate::transcript::Transcript, e: &crate::transcript::Entry| {
            for l in tr.render_entry(e, false) {
                eprintln!("    {l}");
            }
        };
        let observer: Option<crate::player::Observer<'_>> = if verbose { Some(&mut show) } else { None };
        Ok(rt.block_on(crate::player::play(&s, addr, &t, observer)))
    })
    .await?
}

/// Move the calling thread into the network namespace `name`.
fn enter_netns(name: &str) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    let path = Path::new("/run/netns").join(name);
    let f = std::fs::File::open(&path).with_context(|| format!("network namespace {name} ({})", path.display()))?;
    // SAFETY: setns on a valid namespace fd affects only this thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        bail!("entering network namespace {name}: {} (needs root)", std::io::Error::last_os_error());
    }
    Ok(())
}
