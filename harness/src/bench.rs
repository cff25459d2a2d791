//! `harness bench` and `cargo bench -p harness` (issue 6): RETR/STOR
//! throughput per target and size, next to a peer (vsftpd) and the ceilings
//! of the same path (raw TCP through the diagnostic discard/chargen service,
//! raw block-device reads and writes); scaling with concurrent transfers and
//! listing sizes; `--footprint` prints the flash/RAM report
//! ([`crate::footprint`]).
//!
//! How each figure is taken (all MB = 10^6 bytes):
//! - **FTP**: the harness's own minimal client ([`ftp`]), TYPE I, PASV; one
//!   logged-in session per target; time from the `150` to the `226`; the
//!   median of `--repeat` runs. Run from inside the target's network
//!   namespace when it has one.
//! - **peer**: vsftpd ([`peer`]) with the same files, on 127.0.0.1 next to
//!   the host targets, inside the namespace at 192.0.2.1 for `sim`; none
//!   for QEMU (nothing else can sit on the board's path).
//! - **raw TCP**: bytes into the target's discard service (STOR ceiling)
//!   and out of its chargen service (RETR ceiling), same sizes, same client.
//! - **storage**: `ftpd_fat::host::bench_sequential` on a copy of the
//!   target's own image (host-fat, sim).

pub mod ftp;
pub mod peer;
pub mod report;

use std::io::{IsTerminal as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;

use crate::fixture::{Entry, Tree};
use crate::target::{Context, Kind, Server, StartOptions, Storage, StorageArg, Target};
use ftp::{Login, Session};

/// `harness bench` options.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct BenchArgs {
    /// Print the flash and RAM footprint report instead of throughput.
    #[arg(long)]
    pub footprint: bool,
    /// With --footprint: skip the stack measurement on QEMU.
    #[arg(long, requires = "footprint")]
    pub no_qemu: bool,
    /// Targets to measure (globs over host-dir, host-fat, sim, qemu,
    /// qemu-10; `host` is host-*); default all that can run here.
    #[arg(long = "target", short = 't')]
    pub targets: Vec<String>,
    /// File sizes, comma-separated (K = 1024, M = 1024 K).
    #[arg(long, value_delimiter = ',', default_value = "64K,1M,16M")]
    pub sizes: Vec<String>,
    /// Runs per figure; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// CI's short run: the smallest size, one run, a subset of the scaling
    /// figures. Checks that everything works and the files appear, not the
    /// timings.
    #[arg(long)]
    pub quick: bool,
    /// A floor that is not met makes the exit status non-zero.
    #[arg(long)]
    pub check_floors: bool,
    /// Where the CSV, Markdown and SVG go (default target/bench).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// What one run measures.
#[derive(Clone, Debug)]
pub struct Plan {
    pub sizes: Vec<u64>,
    pub repeat: usize,
    /// Concurrent sessions for the scaling figures, and the size each moves.
    pub concurrency: Vec<usize>,
    pub concurrency_size: u64,
    /// Directory sizes for LIST/MLSD.
    pub listings: Vec<usize>,
    pub quick: bool,
}

impl Plan {
    pub fn new(args: &BenchArgs) -> anyhow::Result<Plan> {
        let mut sizes = Vec::new();
        for s in &args.sizes {
            let n =
                crate::scenario::parse_size(s.trim()).map_err(|e| anyhow!("--sizes {s}: {e}"))?;
            if n == 0 || n > 32 << 20 {
                anyhow::bail!(
                    "--sizes {s}: between 1 byte and 32M (the board's SD image is 64 MiB)"
                );
            }
            sizes.push(n);
        }
        sizes.sort_unstable();
        sizes.dedup();
        if sizes.is_empty() {
            anyhow::bail!("--sizes: none given");
        }
        if args.repeat == 0 || args.repeat > 100 {
            anyhow::bail!("--repeat: 1 to 100");
        }
        if args.quick {
            return Ok(Plan {
                sizes: vec![sizes[0]],
                repeat: 1,
                concurrency: vec![1, 2],
                concurrency_size: sizes[0],
                listings: vec![10, 100],
                quick: true,
            });
        }
        // At most 1 MiB: four uploads at once must fit the 64 MiB SD image
        // beside the files served (four 16 MiB ones do not, and end in 452).
        let concurrency_size = sizes
            .iter()
            .copied()
            .filter(|&s| s <= 1 << 20)
            .max()
            .unwrap_or(1 << 20);
        Ok(Plan {
            sizes,
            repeat: args.repeat,
            concurrency: vec![1, 2, 4],
            concurrency_size,
            listings: vec![10, 100, 1000],
            quick: false,
        })
    }

    /// The files every target (and the peer) serves: `/bench/<size>.bin`,
    /// `/up` for uploads, `/lN` with N empty files for the listings.
    pub fn tree(&self) -> Tree {
        let mut entries = vec![Entry::Dir("bench".into()), Entry::Dir("up".into())];
        let mut sizes = self.sizes.clone();
        sizes.push(self.concurrency_size);
        sizes.sort_unstable();
        sizes.dedup();
        for s in sizes {
            entries.push(Entry::File(
                file_path(s)[1..].to_string(),
                crate::fixture::filler(s),
            ));
        }
        for &n in &self.listings {
            entries.push(Entry::Dir(format!("l{n}")));
            for i in 0..n {
                entries.push(Entry::File(format!("l{n}/f{i:04}.txt"), Vec::new()));
            }
        }
        Tree {
            name: format!("bench-{}", if self.quick { "quick" } else { "full" }),
            entries,
        }
    }
}

/// `64K`, `1M`, `16M`, or bytes.
pub fn size_label(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{}M", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{}K", n >> 10)
    } else {
        format!("{n}B")
    }
}

/// The file of size `n` (an 8.3 name).
pub fn file_path(n: u64) -> String {
    format!("/bench/{}.bin", size_label(n).to_ascii_lowercase())
}

/// A figure, or why there is none.
pub type Figure = Result<f64, String>;

/// One size on one target, all in MB/s.
#[derive(Clone, Debug)]
pub struct SizeRow {
    pub size: u64,
    pub retr: Figure,
    pub stor: Figure,
    pub raw_retr: Figure,
    pub raw_stor: Figure,
    pub peer_retr: Figure,
    pub peer_stor: Figure,
    pub disk_read: Figure,
    pub disk_write: Figure,
}

/// Aggregate throughput of `n` sessions at once (MB/s).
#[derive(Clone, Debug)]
pub struct ConcRow {
    pub n: usize,
    pub retr: Figure,
    pub stor: Figure,
}

/// LIST and MLSD of a directory of `entries` files (milliseconds).
#[derive(Clone, Debug)]
pub struct ListRow {
    pub entries: usize,
    pub list_ms: Figure,
    pub mlsd_ms: Figure,
}

/// Everything measured on one target.
#[derive(Clone, Debug)]
pub struct TargetResult {
    pub target: &'static str,
    pub describe: String,
    /// Where the peer, the raw-TCP services and the storage figure come from.
    pub peer_where: String,
    pub raw_where: String,
    pub disk_where: String,
    pub rows: Vec<SizeRow>,
    pub concurrency: Vec<ConcRow>,
    pub concurrency_size: u64,
    pub listings: Vec<ListRow>,
    /// FTP measurements that failed (the target's fault, not an n/a).
    pub failures: Vec<String>,
}

/// A target that was not measured, and why.
#[derive(Clone, Debug)]
pub struct Skipped {
    pub target: &'static str,
    pub reason: String,
}

/// The whole run.
#[derive(Clone, Debug)]
pub struct Report {
    pub plan: Plan,
    pub results: Vec<TargetResult>,
    pub skipped: Vec<Skipped>,
    pub machine: report::Machine,
}

/// The floors of issue 6: on sim and QEMU, 16 MB RETR >= 70 % of raw TCP,
/// STOR >= 50 %.
pub const FLOOR_SIZE: u64 = 16 << 20;
pub const RETR_FLOOR: f64 = 0.70;
pub const STOR_FLOOR: f64 = 0.50;

/// A floor's verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Floor {
    pub target: &'static str,
    pub what: &'static str,
    pub ratio: Result<f64, String>,
    pub floor: f64,
    /// The most this transfer can reach, as a fraction of raw TCP, when the
    /// network and the storage take turns on one CPU (both boards and the
    /// virtual board are one poll loop, and neither has DMA): a byte costs
    /// `1/raw + 1/storage`, so the bound is `storage / (raw + storage)`.
    /// `None` without a storage ceiling from the same run.
    pub bound: Option<f64>,
}

impl Floor {
    pub fn passed(&self) -> Option<bool> {
        self.ratio.as_ref().ok().map(|r| *r >= self.floor)
    }

    pub fn verdict(&self) -> String {
        match &self.ratio {
            Ok(r) => {
                format!(
                    "{:<8} {} {:>5.1} % of raw TCP (floor {:.0} %): {}",
                    self.target,
                    self.what,
                    r * 100.0,
                    self.floor * 100.0,
                    if *r >= self.floor { "PASS" } else { "FAIL" }
                ) + &match self.bound {
                    // Why a floor cannot be met on this path, when it cannot.
                    Some(b) if b < self.floor && *r < self.floor => format!(
                        "; the storage ceiling allows at most {:.1} % (network and storage \
                     in series on one CPU): {:.0} % of that reached",
                        b * 100.0,
                        r / b * 100.0
                    ),
                    _ => String::new(),
                }
            }
            Err(why) => format!(
                "{:<8} {} n/a ({why}) (floor {:.0} %): not checked",
                self.target,
                self.what,
                self.floor * 100.0
            ),
        }
    }
}

impl Report {
    pub fn floors(&self) -> Vec<Floor> {
        let mut out = Vec::new();
        for r in &self.results {
            let Some(t) = Target::by_name(r.target) else {
                continue;
            };
            if matches!(t.kind, Kind::Host(_)) {
                continue;
            }
            let row = r.rows.iter().find(|x| x.size == FLOOR_SIZE);
            for (what, floor) in [("16M RETR", RETR_FLOOR), ("16M STOR", STOR_FLOOR)] {
                let ratio = match row {
                    None => Err("16M not measured in this run".to_string()),
                    Some(row) => {
                        let (f, raw) = if what.ends_with("RETR") {
                            (&row.retr, &row.raw_retr)
                        } else {
                            (&row.stor, &row.raw_stor)
                        };
                        match (f, raw) {
                            (Ok(f), Ok(raw)) if *raw > 0.0 => Ok(f / raw),
                            (Err(e), _) => Err(format!("FTP: {e}")),
                            (_, Err(e)) => Err(format!("raw TCP: {e}")),
                            _ => Err("raw TCP measured 0".into()),
                        }
                    }
                };
                let bound = row.and_then(|row| {
                    let (raw, disk) = if what.ends_with("RETR") {
                        (&row.raw_retr, &row.disk_read)
                    } else {
                        (&row.raw_stor, &row.disk_write)
                    };
                    match (raw, disk) {
                        (Ok(raw), Ok(disk)) if raw + disk > 0.0 => Some(disk / (raw + disk)),
                        _ => None,
                    }
                });
                out.push(Floor {
                    target: r.target,
                    what,
                    ratio,
                    floor,
                    bound,
                });
            }
        }
        out
    }
}

/// Runs `harness bench`.
pub async fn main(ctx: &Context, args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.footprint {
        let opts = crate::footprint::Options {
            no_qemu: args.no_qemu,
            check_floors: args.check_floors,
            out: args.out.clone(),
        };
        return crate::footprint::main(ctx, &opts).await;
    }
    let plan = Plan::new(&args)?;
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| crate::target::harness_dir().with_file_name("bench"));
    // Timings of a debug `sim` say little: the full run measures a release
    // build (CI's quick run does not judge timings and saves the build).
    let ctx = if ctx.sim_bin.is_none() && cfg!(debug_assertions) && !plan.quick {
        eprintln!("bench: building sim --release (timings of a debug build say little)");
        match build_release_sim() {
            Ok(p) => Context::new(Some(p)),
            Err(e) => {
                eprintln!("bench: {e}; measuring the debug build");
                ctx.clone()
            }
        }
    } else {
        ctx.clone()
    };
    let mut globs: Vec<String> = args
        .targets
        .iter()
        .map(|t| {
            if t == "host" {
                "host-*".into()
            } else {
                t.clone()
            }
        })
        .collect();
    if globs.is_empty() {
        globs.push("*".into());
    }
    let chosen: Vec<Target> = crate::target::ALL
        .iter()
        .copied()
        .filter(|t| globs.iter().any(|g| crate::scenario::glob_match(g, t.name)))
        .collect();
    if chosen.is_empty() {
        anyhow::bail!(
            "--target {}: no such target (host-dir, host-fat, sim, qemu, qemu-10)",
            args.targets.join(",")
        );
    }
    let progress = Progress::new(&plan, chosen.len());
    let tree = plan.tree();
    let mut report = Report {
        plan: plan.clone(),
        results: Vec::new(),
        skipped: Vec::new(),
        machine: report::Machine::now(),
    };
    report.machine.sim = match ctx.sim_binary() {
        Ok(p) => format!(
            "{} ({})",
            p.display(),
            if p.components().any(|c| c.as_os_str() == "release") {
                "release build"
            } else {
                "debug build: timings say little"
            }
        ),
        Err(e) => format!("none ({})", first_line(&e)),
    };
    for t in chosen {
        if let Err(u) = t.probe(&ctx) {
            progress.note(&format!("{}: cannot run here: {}", t.name, u.reason));
            report.skipped.push(Skipped {
                target: t.name,
                reason: u.reason,
            });
            continue;
        }
        progress.note(&format!("{}: starting", t.name));
        let started = Instant::now();
        let r = tokio::select! {
            r = bench_target(&ctx, t, &plan, &tree, &progress) => r,
            _ = tokio::signal::ctrl_c() => {
                progress.clear();
                crate::netns::remove_all();
                eprintln!("bench: interrupted");
                std::process::exit(130);
            }
        };
        match r {
            Ok(r) => {
                progress.note(&format!(
                    "{}: done in {:.0} s",
                    t.name,
                    started.elapsed().as_secs_f64()
                ));
                report.results.push(r);
            }
            Err(e) => {
                progress.note(&format!("{}: failed: {e:#}", t.name));
                report
                    .results
                    .push(TargetResult::failed(t, &plan, format!("{e:#}")));
            }
        }
    }
    progress.clear();
    report.machine.load_after = report::loadavg();
    print!("{}", report::table(&report));
    let files = report::write_all(&report, &out_dir)?;
    println!();
    for f in &files {
        println!("wrote {}", f.display());
    }
    let failed = report.results.iter().any(|r| !r.failures.is_empty());
    let floor_failed = report.floors().iter().any(|f| f.passed() == Some(false));
    Ok(if failed || (args.check_floors && floor_failed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn build_release_sim() -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "sim",
            "--bin",
            "sim",
            "--message-format=json",
        ])
        .current_dir(crate::target::workspace_root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err("`cargo build --release -p sim` failed".into());
    }
    let re = regex::Regex::new(r#""executable":"([^"]+)""#).unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"name\":\"sim\""))
        .filter_map(|l| re.captures(l).map(|c| PathBuf::from(&c[1])))
        .next_back()
        .ok_or_else(|| "cargo reported no sim executable".into())
}

impl TargetResult {
    fn empty(t: Target, plan: &Plan) -> TargetResult {
        TargetResult {
            target: t.name,
            describe: t.describe().unwrap_or_else(|| match t.kind {
                Kind::Host(Storage::Dir) => "sim --listen 127.0.0.1, host directory".into(),
                _ => "sim --listen 127.0.0.1, FAT image".into(),
            }),
            peer_where: String::new(),
            raw_where: String::new(),
            disk_where: String::new(),
            rows: Vec::new(),
            concurrency: Vec::new(),
            concurrency_size: plan.concurrency_size,
            listings: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn failed(t: Target, plan: &Plan, why: String) -> TargetResult {
        let mut r = TargetResult::empty(t, plan);
        let na = || Err(format!("target failed: {}", first_line(&why)));
        r.rows = plan
            .sizes
            .iter()
            .map(|&size| SizeRow {
                size,
                retr: na(),
                stor: na(),
                raw_retr: na(),
                raw_stor: na(),
                peer_retr: na(),
                peer_stor: na(),
                disk_read: na(),
                disk_write: na(),
            })
            .collect();
        r.failures.push(why);
        r
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// MB/s of `bytes` in `secs`.
pub fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs.max(1e-9)
}

/// The median of some numbers (the mean of the middle two for an even count).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Least-squares line `t = a + b n`: (a, b).
pub fn fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let sx: f64 = points.iter().map(|p| p.0).sum();
    let sy: f64 = points.iter().map(|p| p.1).sum();
    let sxx: f64 = points.iter().map(|p| p.0 * p.0).sum();
    let sxy: f64 = points.iter().map(|p| p.0 * p.1).sum();
    let d = n * sxx - sx * sx;
    if d.abs() < 1e-12 {
        return None;
    }
    let b = (n * sxy - sx * sy) / d;
    Some(((sy - b * sx) / n, b))
}

/// The progress line on stderr (a terminal gets one updating line; a log
/// gets the notes only).
pub struct Progress {
    state: Mutex<(usize, usize)>,
    tty: bool,
    started: Instant,
}

impl Progress {
    fn new(plan: &Plan, targets: usize) -> Arc<Progress> {
        let per_target = plan.sizes.len() * plan.repeat * 6
            + plan.concurrency.len() * 2 * plan.repeat
            + plan.listings.len() * 2
            + plan.sizes.len();
        Arc::new(Progress {
            state: Mutex::new((0, per_target * targets)),
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
        })
    }

    /// One step done; `what` is being measured now.
    pub fn step(&self, target: &str, what: &str) {
        let (done, total) = {
            let mut g = self.state.lock().unwrap();
            g.0 += 1;
            *g
        };
        if self.tty {
            let mut e = std::io::stderr().lock();
            let _ = write!(
                e,
                "\r\x1b[K[bench {:>3}/{total} {:>4.0}s] {target}: {what}",
                done.min(total),
                self.started.elapsed().as_secs_f64()
            );
            let _ = e.flush();
        }
    }

    /// A line that stays.
    pub fn note(&self, line: &str) {
        self.clear();
        eprintln!("bench: {line}");
    }

    fn clear(&self) {
        if self.tty {
            eprint!("\r\x1b[K");
        }
    }
}

/// The diagnostic services of a target started with them: discard,
/// chargen, and the board's sdbench. `sim` logs `diag: discard ADDR
/// chargen ADDR`; the QEMU board's console says `diag: discard 9 chargen 19
/// sdbench 7` (ports on the board's address).
pub struct Diag {
    pub discard: SocketAddr,
    pub chargen: SocketAddr,
    pub sdbench: Option<SocketAddr>,
}

/// Read where the diag services are from the server's log (waiting up to
/// `limit` for the line).
async fn diag_addrs(server: &Server, limit: Duration) -> Result<Diag, String> {
    let re = regex::Regex::new(r"diag: discard (\S+) chargen (\S+)(?: sdbench (\d+))?").unwrap();
    let at = |s: &str| -> Option<SocketAddr> {
        s.parse().ok().or_else(|| {
            s.parse::<u16>()
                .ok()
                .map(|p| SocketAddr::new(server.addr.ip(), p))
        })
    };
    let deadline = Instant::now() + limit;
    loop {
        let log = server.log();
        if let Some(c) = re.captures(&log) {
            return match (at(&c[1]), at(&c[2])) {
                (Some(discard), Some(chargen)) => Ok(Diag {
                    discard,
                    chargen,
                    sdbench: c.get(3).and_then(|p| at(p.as_str())),
                }),
                _ => Err(format!("unreadable diag line `{}`", &c[0])),
            };
        }
        if Instant::now() > deadline {
            return Err("the target started with diag services never said where they are (`diag: discard ... chargen ...`)".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Measure one target.
async fn bench_target(
    ctx: &Context,
    t: Target,
    plan: &Plan,
    tree: &Tree,
    progress: &Arc<Progress>,
) -> anyhow::Result<TargetResult> {
    let mut result = TargetResult::empty(t, plan);
    let dir = tempfile::Builder::new()
        .prefix("harness-bench-")
        .tempdir()?;
    // The storage the target serves.
    progress.step(t.name, "preparing the files");
    let opts = match t.kind {
        Kind::Host(Storage::Dir) => StartOptions::default(),
        _ => {
            let img = dir.path().join("sd.img");
            ctx.fixture_image(tree, &img).await?;
            StartOptions {
                storage: Some(StorageArg::Image(img)),
                ..Default::default()
            }
        }
    };
    let image = match &opts.storage {
        Some(StorageArg::Image(p)) => Some(p.clone()),
        _ => None,
    };
    progress.step(t.name, "starting");
    // With the diagnostic services if it can; the FTP figures without them
    // otherwise (the ceilings then say why not).
    let (server, diag) = match t.start_diag(ctx, tree, &opts, true).await {
        Ok(s) => {
            let d = diag_addrs(&s, Duration::from_secs(3)).await;
            (s, d)
        }
        Err(e) => {
            let why = format!(
                "the target did not start with its diag services: {}",
                first_line(&format!("{e:#}"))
            );
            progress.note(&format!("{}: {why}; measuring without them", t.name));
            (t.start_with(ctx, tree, &opts).await?, Err(why))
        }
    };
    // The peer.
    let (peer_listen, peer_ns, peer_where): (Option<SocketAddr>, Option<String>, String) = match t
        .kind
    {
        Kind::Host(_) => {
            let port = free_port()?;
            let a = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            (
                Some(a),
                None,
                format!(
                    "{} on {a} (host loopback, next to the target)",
                    peer::version()
                ),
            )
        }
        Kind::Sim => {
            let a = SocketAddr::from((crate::netns::HOST_V4, 2121));
            let ns = server.netns.clone().unwrap_or_default();
            (
                Some(a),
                Some(ns.clone()),
                format!(
                    "{} on {a} inside namespace {ns} (the host side of the TAP; the client reaches it over the namespace's own stack, not through the TAP)",
                    peer::version()
                ),
            )
        }
        Kind::Qemu(_) => (
            None,
            None,
            "none: the board's path (QEMU's emulated NIC) has only the board on it".into(),
        ),
    };
    let mut vsftpd = None;
    let peer_state: Result<SocketAddr, String> = match peer_listen {
        None => Err("no peer on the board's path".into()),
        Some(a) => match peer::Vsftpd::start(tree, a, peer_ns.as_deref()) {
            Ok(v) => {
                vsftpd = Some(v);
                Ok(a)
            }
            Err(e) => Err(e),
        },
    };
    result.peer_where = match &peer_state {
        Ok(_) => peer_where,
        Err(e) => format!("n/a ({e})"),
    };
    result.raw_where = match &diag {
        Ok(d) => format!(
            "discard {} / chargen {} of the target (diag services), same client, same namespace",
            d.discard, d.chargen
        ),
        Err(e) => format!("n/a ({e})"),
    };
    let sdbench = match (&diag, t.kind) {
        (Ok(d), Kind::Qemu(_)) => d.sdbench,
        _ => None,
    };
    // Everything on the network from inside the target's namespace.
    let job = Job {
        target: t.name,
        addr: server.addr,
        peer: peer_state.clone(),
        diag: diag
            .as_ref()
            .map(|d| (d.discard, d.chargen))
            .map_err(Clone::clone),
        sdbench,
        plan: plan.clone(),
        progress: progress.clone(),
    };
    let measured = match &server.netns {
        Some(ns) => crate::netns::run_in(ns, move || job.run()).await?,
        None => job.run().await,
    };
    if let Some(mut v) = vsftpd.take() {
        if let Some(why) = v.failed() {
            result.peer_where = format!("n/a ({why})");
        }
    }
    drop(vsftpd);
    result.rows = measured.rows;
    result.concurrency = measured.concurrency;
    result.listings = measured.listings;
    result.failures = measured.failures;
    // The storage ceiling, on a copy of the target's own image.
    let disk: Box<dyn Fn(u64) -> (Figure, Figure)> = match (&image, t.kind) {
        (Some(img), Kind::Host(_) | Kind::Sim) => {
            let copy = dir.path().join("disk-bench.img");
            crate::board::sparse_copy(img, &copy)?;
            result.disk_where = format!(
                "ftpd_fat::host::bench_sequential on a copy of the target's image ({}), in process",
                copy.display()
            );
            Box::new(
                move |size| match ftpd_fat::host::bench_sequential(&copy, size) {
                    Ok((bytes, r, w)) => (timed(bytes, r), timed(bytes, w)),
                    Err(e) => (Err(format!("{e}")), Err(format!("{e}"))),
                },
            )
        }
        (_, Kind::Qemu(_)) => {
            result.disk_where = match (sdbench, &diag) {
                (Some(a), _) => format!(
                    "the board's sdbench service at {a} (sequential reads and writes of the SD card through the firmware's block cache, timed by the board in ms; whole MiB, so sizes under 1 MiB show the 1 MiB figure)"
                ),
                (None, Ok(_)) => "n/a (the board's console named no sdbench port)".into(),
                (None, Err(e)) => format!("n/a ({e})"),
            };
            Box::new(|_| (Err(String::new()), Err(String::new())))
        }
        _ => {
            let why = "a host directory: no block device".to_string();
            result.disk_where = format!("n/a ({why})");
            Box::new(move |_| (Err(why.clone()), Err(why.clone())))
        }
    };
    for row in &mut result.rows {
        if matches!(t.kind, Kind::Qemu(_)) {
            // Measured by the board, in the job above.
            continue;
        }
        progress.step(t.name, &format!("storage ceiling {}", size_label(row.size)));
        let mut reads = Vec::new();
        let mut writes = Vec::new();
        let mut err = None;
        for _ in 0..plan.repeat {
            match disk(row.size) {
                (Ok(r), Ok(w)) => {
                    reads.push(r);
                    writes.push(w);
                }
                (r, w) => {
                    err = Some((r, w));
                    break;
                }
            }
        }
        (row.disk_read, row.disk_write) = match err {
            Some(e) => e,
            None => (Ok(median(&mut reads)), Ok(median(&mut writes))),
        };
    }
    let log = server.stop().await;
    if !result.failures.is_empty() {
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        result.failures.push(format!(
            "the server's last log lines:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    Ok(result)
}

/// MB/s, unless the time is too short to mean anything.
fn timed(bytes: u64, t: Duration) -> Figure {
    if t < Duration::from_micros(50) {
        Err(format!(
            "too short to time ({} us for {bytes} bytes)",
            t.as_micros()
        ))
    } else {
        Ok(mbps(bytes, t.as_secs_f64()))
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// The network half of a target's measurement, run where the target is
/// reachable.
struct Job {
    target: &'static str,
    addr: SocketAddr,
    peer: Result<SocketAddr, String>,
    /// discard, chargen.
    diag: Result<(SocketAddr, SocketAddr), String>,
    sdbench: Option<SocketAddr>,
    plan: Plan,
    progress: Arc<Progress>,
}

struct Measured {
    rows: Vec<SizeRow>,
    concurrency: Vec<ConcRow>,
    listings: Vec<ListRow>,
    failures: Vec<String>,
}

/// The bytes STOR sends (repeated): incompressible, the fixture filler.
fn pattern() -> Vec<u8> {
    crate::fixture::filler(256 * 1024)
}

impl Job {
    async fn run(self) -> Measured {
        let pat = pattern();
        let mut failures = Vec::new();
        let p = &self.progress;
        let name = self.target;
        // The peer must answer before it is measured.
        let peer: Result<SocketAddr, String> = match self.peer.clone() {
            Ok(a) => wait_ready(a).await.map(|_| a),
            Err(e) => Err(e),
        };
        let mut rows = Vec::new();
        // Sessions stay open across sizes and runs.
        let mut ours = Session::open(self.addr, &Login::test()).await;
        let mut theirs = match &peer {
            Ok(a) => Session::open(*a, &Login::anonymous())
                .await
                .map_err(|e| format!("vsftpd: {e:#}")),
            Err(e) => Err(e.clone()),
        };
        if let Err(e) = &ours {
            failures.push(format!("login: {e:#}"));
        }
        // Is there a raw-TCP service at all? One short probe.
        let raw_state = match self.diag.clone() {
            Ok((d, c)) => probe_diag(d, c).await.map(|_| (d, c)),
            Err(e) => Err(e),
        };
        for &size in &self.plan.sizes {
            let label = size_label(size);
            let path = file_path(size);
            let up = format!("/up/{}", &path[7..]);
            let r = self.plan.repeat;
            let mut row = SizeRow {
                size,
                retr: Err("not measured".into()),
                stor: Err("not measured".into()),
                raw_retr: Err("not measured".into()),
                raw_stor: Err("not measured".into()),
                peer_retr: Err("not measured".into()),
                peer_stor: Err("not measured".into()),
                disk_read: Err("not measured".into()),
                disk_write: Err("not measured".into()),
            };
            // The six series run interleaved, round by round, so that a
            // change of load on a shared machine hits the FTP figures and
            // their ceilings alike.
            let raw = raw_state.clone();
            let mut series: [(Vec<f64>, Option<String>); 6] = Default::default();
            let ours_err = ours.as_ref().err().map(|e| format!("login failed: {e:#}"));
            let theirs_err = theirs.as_ref().err().cloned();
            for (k, e) in [
                (0, &ours_err),
                (3, &ours_err),
                (1, &raw.as_ref().err().cloned()),
                (4, &raw.as_ref().err().cloned()),
                (2, &theirs_err),
                (5, &theirs_err),
            ] {
                series[k].1 = e.clone();
            }
            for i in 0..r {
                for (k, what) in [
                    "RETR",
                    "raw TCP out",
                    "vsftpd RETR",
                    "STOR",
                    "raw TCP in",
                    "vsftpd STOR",
                ]
                .into_iter()
                .enumerate()
                {
                    if series[k].1.is_some() {
                        continue;
                    }
                    p.step(name, &format!("{what} {label} ({}/{r})", i + 1));
                    let t = match (k, &mut ours, &raw, &mut theirs) {
                        (0, Ok(s), _, _) => s.retr(&path, size).await,
                        (3, Ok(s), _, _) => s.stor(&up, size, &pat).await,
                        (1, _, Ok((_, chargen)), _) => ftp::chargen(*chargen, size).await,
                        (4, _, Ok((discard, _)), _) => ftp::discard(*discard, size, &pat).await,
                        (2, _, _, Ok(s)) => s.retr(&path, size).await,
                        (5, _, _, Ok(s)) => s.stor(&up, size, &pat).await,
                        _ => continue,
                    };
                    match t {
                        Ok(span) => series[k].0.push(span.secs()),
                        Err(e) => series[k].1 = Some(format!("{e:#}")),
                    }
                }
            }
            let [f0, f1, f2, f3, f4, f5] = series.map(|(mut v, e)| match e {
                Some(e) => Err(e),
                None => Ok(mbps(size, median(&mut v))),
            });
            (row.retr, row.raw_retr, row.peer_retr) = (f0, f1, f2);
            (row.stor, row.raw_stor, row.peer_stor) = (f3, f4, f5);
            if ours.is_ok() {
                for (what, f) in [("RETR", &row.retr), ("STOR", &row.stor)] {
                    if let Err(e) = f {
                        failures.push(format!("{what} {label}: {e}"));
                    }
                }
            }
            rows.push(row);
        }
        // The board's storage ceiling, with nothing else in flight.
        if let Some(a) = self.sdbench {
            for row in &mut rows {
                let mib = row.size.div_ceil(1 << 20).max(1);
                let mut reads = Vec::new();
                let mut writes = Vec::new();
                let mut err = None;
                for i in 0..self.plan.repeat {
                    p.step(
                        name,
                        &format!("sdbench {mib} MiB ({}/{})", i + 1, self.plan.repeat),
                    );
                    match sdbench(a, mib).await {
                        Ok((r, w)) => {
                            reads.push(r);
                            writes.push(w);
                        }
                        Err(e) => {
                            err = Some(e);
                            break;
                        }
                    }
                }
                (row.disk_read, row.disk_write) = match err {
                    Some(e) => (Err(e.clone()), Err(e)),
                    None => (Ok(median(&mut reads)), Ok(median(&mut writes))),
                };
            }
        }
        if let Ok(s) = ours {
            s.quit().await;
        }
        if let Ok(s) = theirs {
            s.quit().await;
        }
        // Scaling: n sessions at once.
        let cs = self.plan.concurrency_size;
        let mut concurrency = Vec::new();
        for &n in &self.plan.concurrency {
            let agg = async |stor: bool| -> Figure {
                let what = if stor { "STOR" } else { "RETR" };
                let mut v = Vec::new();
                for i in 0..self.plan.repeat {
                    p.step(
                        name,
                        &format!(
                            "{n} x {what} {} at once ({}/{})",
                            size_label(cs),
                            i + 1,
                            self.plan.repeat
                        ),
                    );
                    let path = if stor {
                        "/up/c.bin".to_string()
                    } else {
                        file_path(cs)
                    };
                    let s = ftp::concurrent(self.addr, &Login::test(), n, stor, &path, cs, &pat)
                        .await
                        .map_err(|e| format!("{e:#}"))?;
                    v.push(mbps(s.bytes, s.secs()));
                }
                Ok(median(&mut v))
            };
            let retr = agg(false).await;
            let stor = agg(true).await;
            for (what, f) in [("RETR", &retr), ("STOR", &stor)] {
                if let Err(e) = f {
                    failures.push(format!("{n} x {what} at once: {e}"));
                }
            }
            concurrency.push(ConcRow { n, retr, stor });
        }
        // Listings.
        let mut listings = Vec::new();
        let mut s = Session::open(self.addr, &Login::test()).await;
        for &n in &self.plan.listings {
            let mut one = async |verb: &str| -> Figure {
                p.step(name, &format!("{verb} of {n} entries"));
                let s = s.as_mut().map_err(|e| format!("login: {e:#}"))?;
                let mut times = Vec::new();
                for _ in 0..self.plan.repeat {
                    let (t, lines) = s
                        .listing(verb, &format!("/l{n}"))
                        .await
                        .map_err(|e| format!("{e:#}"))?;
                    if lines < n {
                        return Err(format!("{verb} /l{n}: {lines} lines, wanted {n}"));
                    }
                    times.push(t.as_secs_f64() * 1e3);
                }
                Ok(median(&mut times))
            };
            let list_ms = one("LIST").await;
            let mlsd_ms = one("MLSD").await;
            for (what, f) in [("LIST", &list_ms), ("MLSD", &mlsd_ms)] {
                if let Err(e) = f {
                    failures.push(format!("{what} of {n}: {e}"));
                }
            }
            listings.push(ListRow {
                entries: n,
                list_ms,
                mlsd_ms,
            });
        }
        if let Ok(s) = s {
            s.quit().await;
        }
        Measured {
            rows,
            concurrency,
            listings,
            failures,
        }
    }
}

/// Until something accepts on `a` (a peer just started), at most 10 s.
async fn wait_ready(a: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match crate::client::connect(a, Duration::from_millis(500)).await {
            Ok(s) => {
                drop(s);
                return Ok(());
            }
            Err(e) if Instant::now() > deadline => {
                return Err(format!("vsftpd did not accept on {a} within 10 s: {e}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The board's sdbench: send `MiB\n`, read `sdbench bytes=B read_ms=R
/// write_ms=W`; (read MB/s, write MB/s).
async fn sdbench(a: SocketAddr, mib: u64) -> Result<(f64, f64), String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = ftp::connect_service(a, "sdbench")
        .await
        .map_err(|e| format!("{e:#}"))?;
    s.write_all(format!("{mib}\n").as_bytes())
        .await
        .map_err(|e| format!("sdbench at {a}: {e}"))?;
    let mut text = Vec::new();
    tokio::time::timeout(Duration::from_secs(120), s.read_to_end(&mut text))
        .await
        .map_err(|_| format!("sdbench at {a}: no answer within 120 s"))?
        .map_err(|e| format!("sdbench at {a}: {e}"))?;
    let text = String::from_utf8_lossy(&text);
    parse_sdbench(text.trim())
}

/// `sdbench bytes=16777216 read_ms=812 write_ms=1630`: (read, write) MB/s.
pub fn parse_sdbench(line: &str) -> Result<(f64, f64), String> {
    let field = |k: &str| -> Option<u64> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k)?.strip_prefix('=')?.parse().ok())
    };
    match (field("bytes"), field("read_ms"), field("write_ms")) {
        (Some(b), Some(r), Some(w)) => {
            let rate = |ms: u64| {
                if ms == 0 {
                    Err(format!("too short to time ({b} bytes in < 1 ms)"))
                } else {
                    Ok(mbps(b, ms as f64 / 1e3))
                }
            };
            Ok((rate(r)?, rate(w)?))
        }
        _ => Err(format!("sdbench answered `{line}`")),
    }
}

/// Does the target offer the diagnostic services? A connection to each.
async fn probe_diag(discard: SocketAddr, chargen: SocketAddr) -> Result<(), String> {
    for (what, a) in [("discard", discard), ("chargen", chargen)] {
        match crate::client::connect(a, Duration::from_secs(3)).await {
            Ok(s) => drop(s),
            Err(e) => {
                return Err(format!(
                    "no {what} service at {a} ({e}): the target runs without its diagnostic build"
                ));
            }
        }
    }
    // Let the services see the closes before the first measurement.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_fit() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        let (a, b) = fit(&[(10.0, 2.0), (100.0, 11.0), (1000.0, 101.0)]).unwrap();
        assert!((a - 1.0).abs() < 1e-9 && (b - 0.1).abs() < 1e-9, "{a} {b}");
        assert!(fit(&[(1.0, 1.0)]).is_none());
    }

    #[test]
    fn sdbench_lines() {
        let (r, w) = parse_sdbench("sdbench bytes=16000000 read_ms=800 write_ms=1600").unwrap();
        assert!((r - 20.0).abs() < 1e-9 && (w - 10.0).abs() < 1e-9);
        assert!(
            parse_sdbench("sdbench error: card busy")
                .unwrap_err()
                .contains("card busy")
        );
        assert!(parse_sdbench("sdbench bytes=1 read_ms=0 write_ms=1").is_err());
    }

    #[test]
    fn sizes_and_names() {
        assert_eq!(size_label(64 << 10), "64K");
        assert_eq!(size_label(16 << 20), "16M");
        assert_eq!(size_label(1000), "1000B");
        assert_eq!(file_path(1 << 20), "/bench/1m.bin");
        let args = BenchArgs {
            sizes: vec!["16M".into(), "64K".into(), "1M".into()],
            repeat: 3,
            ..Default::default()
        };
        let p = Plan::new(&args).unwrap();
        assert_eq!(p.sizes, [64 << 10, 1 << 20, 16 << 20]);
        assert_eq!(p.concurrency_size, 1 << 20);
        // Only big sizes asked for: the concurrent transfers still use
        // 1 MiB files (4 x 16 MiB of uploads would fill the board's card).
        let big = Plan::new(&BenchArgs {
            sizes: vec!["16M".into()],
            repeat: 1,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (big.sizes.as_slice(), big.concurrency_size),
            (&[16u64 << 20][..], 1 << 20)
        );
        assert!(big.tree().file("bench/1m.bin").is_some());
        let q = Plan::new(&BenchArgs {
            quick: true,
            ..args.clone()
        })
        .unwrap();
        assert_eq!((q.sizes.as_slice(), q.repeat), (&[64u64 << 10][..], 1));
        let bad = BenchArgs {
            sizes: vec!["1G".into()],
            repeat: 1,
            ..Default::default()
        };
        assert!(Plan::new(&bad).is_err());
        let t = p.tree();
        assert!(t.file("bench/16m.bin").is_some_and(|b| b.len() == 16 << 20));
        assert!(t.file("l1000/f0999.txt").is_some());
    }

    #[test]
    fn floors_need_both_figures() {
        let row = |retr: Figure, raw: Figure| SizeRow {
            size: FLOOR_SIZE,
            retr,
            stor: Ok(5.0),
            raw_retr: raw,
            raw_stor: Ok(8.0),
            peer_retr: Err("x".into()),
            peer_stor: Err("x".into()),
            disk_read: Err("x".into()),
            disk_write: Err("x".into()),
        };
        let mut r = TargetResult::empty(
            Target::by_name("sim").unwrap(),
            &Plan::new(&BenchArgs {
                sizes: vec!["16M".into()],
                repeat: 1,
                ..Default::default()
            })
            .unwrap(),
        );
        r.rows = vec![row(Ok(6.0), Ok(10.0))];
        let mut host = r.clone();
        host.target = "host-dir";
        let report = Report {
            plan: Plan::new(&BenchArgs {
                sizes: vec!["16M".into()],
                repeat: 1,
                ..Default::default()
            })
            .unwrap(),
            results: vec![r.clone(), host],
            skipped: vec![],
            machine: report::Machine::default(),
        };
        let f = report.floors();
        // Host targets have no floors.
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].passed(), Some(false)); // 60 % < 70 %
        assert_eq!(f[1].passed(), Some(true)); // 62.5 % >= 50 %
        assert!(f[0].verdict().ends_with("FAIL"), "{}", f[0].verdict());
        assert_eq!(f[0].bound, None); // no storage ceiling in this run
        // A storage ceiling below the network's caps what FTP can reach:
        // 10 MB/s raw, 2.5 MB/s storage -> at most 20 %; 1.5 MB/s is 15 %.
        let mut capped = r.clone();
        capped.rows = vec![SizeRow {
            disk_read: Ok(2.5),
            disk_write: Ok(1000.0),
            ..row(Ok(1.5), Ok(10.0))
        }];
        let report2 = Report {
            results: vec![capped],
            ..report.clone()
        };
        let f = report2.floors();
        assert!((f[0].bound.unwrap() - 0.2).abs() < 1e-9);
        assert!(
            f[0].verdict().contains("allows at most 20.0 %")
                && f[0].verdict().contains("75 % of that"),
            "{}",
            f[0].verdict()
        );
        // A passing floor, or a bound above the floor, adds nothing.
        assert!(f[1].verdict().ends_with("PASS"), "{}", f[1].verdict());
        r.rows = vec![row(Ok(6.0), Err("no diag".into()))];
        let report = Report {
            results: vec![r],
            ..report
        };
        assert_eq!(report.floors()[0].passed(), None);
        assert!(
            report.floors()[0]
                .verdict()
                .contains("n/a (raw TCP: no diag)")
        );
    }
}
