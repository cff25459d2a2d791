//! `harness fuzz` (issue 7): a network fuzzer against a running target.
//!
//! ```text
//! harness fuzz --target sim --seconds 60 [--seed S] [--connections N] [--session K]
//! ```
//!
//! It starts the target on a fresh FAT image holding the `rich` fixture,
//! then for `--seconds` runs `--connections` clients at once (the session
//! limit is 4; one more slot is left for a prober), each playing one
//! session after another:
//!
//! - **fuzz sessions** ([`input::plan`]): a login (or a wrong one, or none),
//!   then 1 to 80 lines: command lines of the scenarios and the libFuzzer
//!   seeds, as they are or mutated (bits, bytes, NUL/CR/LF, Telnet IAC
//!   sequences, UTF-8 and invalid UTF-8, lines past 512 bytes, huge numbers,
//!   other verbs), typed commands with hostile arguments (paths past the
//!   root, long and odd names, huge REST/ALLO, every malformed PORT/EPRT),
//!   random bytes. Written all at once (pipelined), line by line after each
//!   reply, byte by byte with TCP_NODELAY, cut at random points, or dripped;
//!   ended by QUIT, FIN, or a reset (also in the middle). Every 227/229
//!   reply gets a data connection (written to, read to the end, dropped,
//!   reset, held, or rarely none); PORT/EPRT to the client's listener get
//!   the same when the server connects.
//! - **split sweeps** (every 20th session): a login and a few commands with
//!   no lasting effect, sent whole, then in two writes split at every
//!   position: the reply codes must be the same every time.
//!
//! Checks while it runs: every reply is well-formed ([`reply`]); every
//! connection is greeted (220, or 421 past the session limit) within 10 s;
//! after the client's FIN the server finishes and closes, with never more
//! than 45 s of silence (`--hang-after`; the data timeout is 30 s); a
//! transfer's 1xx is followed by its final reply before the server closes;
//! the server process stays up and a prober connecting every 2 s is greeted
//! (or refused outright by a board whose sockets are all taken: counted as
//! "connects failed", as for the fuzz clients). Afterwards a normal session
//! works (login, PWD, LIST, STOR and RETR with the checksum right, STAT
//! shows one session and no open file within 45 s), the server stops
//! cleanly, its log shows no panic (nor a reboot of the QEMU board), and
//! `fsck.fat -n` finds the image clean.
//!
//! Reproducing: the run's seed is printed; a session is a function of the
//! seed and its number (plus the client's address in PORT lines), and a
//! failing one is written to `target/netfuzz/crash-SEED-K.txt` with the
//! exact bytes it sent (scenario `raw` syntax) and everything it saw.
//! `harness fuzz --target T --seed SEED --session K` plays that session
//! alone; `--trace` writes every session's file, failed or not. `--addr
//! 127.0.0.1:PORT` fuzzes a server started elsewhere (loopback only; no
//! image or log checks).
//!
//! Safety: the fuzzer only talks to the target (loopback, or the board in
//! its namespace), and a PORT/EPRT line it sends never names another host
//! outside loopback or the namespace's test network (see [`input`]). It does
//! not fuzz `host-dir`: the server would serve a real directory, and a
//! jail bug would let it delete files outside it.

pub mod input;
pub mod reply;
pub mod session;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};

use crate::client::{self, Control};
use crate::fixture::Tree;
use crate::target::{Context, Kind, StartOptions, StorageArg, Target};

/// `harness fuzz` options.
#[derive(clap::Args, Clone, Debug)]
pub struct FuzzArgs {
    /// The target to fuzz (host-fat, sim, qemu, qemu-10).
    #[arg(long, short = 't', default_value = "sim")]
    pub target: String,
    /// How long to fuzz (sessions in flight then get up to 10 s to end).
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// The run's seed (decimal or 0x-hex); random when not given.
    #[arg(long, value_parser = parse_seed)]
    pub seed: Option<u64>,
    /// Clients at once (the targets serve 4 sessions; one more slot is the
    /// prober's). More than 3 also fuzzes the session limit (421).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=16))]
    pub connections: u64,
    /// Play only this session of the seed (reproduce a crash file).
    #[arg(long)]
    pub session: Option<u64>,
    /// Print each failure's events as they happen.
    #[arg(long, short)]
    pub verbose: bool,
    /// Also write every session's events to target/netfuzz/trace-SEED-K.txt.
    #[arg(long)]
    pub trace: bool,
    /// Fuzz a server already running at this loopback address instead of
    /// starting a target (no image or log checks then).
    #[arg(long)]
    pub addr: Option<SocketAddr>,
    /// After the client's FIN, the longest silence before the server must
    /// have closed (default 45 s: the engine's data timeout is 30 s).
    #[arg(long, value_name = "SECS")]
    pub hang_after: Option<u64>,
}

fn parse_seed(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("`{s}` is not a seed: {e}"))
}

/// Time limits, after the target's own (data timeout 30 s, failed login 1 s).
#[derive(Clone, Debug)]
pub struct Limits {
    pub connect: Duration,
    /// A connection must be greeted within this.
    pub greeting: Duration,
    /// After the client's FIN: longest silence before the server closes.
    pub gap: Duration,
    /// Sessions in flight at the deadline get this long to end.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect: Duration::from_secs(10),
            greeting: Duration::from_secs(10),
            gap: Duration::from_secs(45),
            grace: Duration::from_secs(10),
        }
    }
}

/// Counts for the summary.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub sessions: u64,
    pub sweeps: u64,
    pub connections: u64,
    /// Greeted with 421 (session limit).
    pub refused: u64,
    pub connect_errors: u64,
    pub commands: u64,
    pub bytes: u64,
    pub data_conns: u64,
    pub resets: u64,
    /// Sessions cut at the deadline.
    pub cut: u64,
    pub classes: [u64; 6],
    pub codes: BTreeMap<u16, u64>,
}

/// What every session shares.
pub struct Shared {
    pub seed: u64,
    pub target: String,
    /// How to name the target again: `--target sim`, `--addr A`.
    pub rerun: String,
    pub out_dir: PathBuf,
    pub deadline: Instant,
    pub limits: Limits,
    pub verbose: bool,
    pub trace: bool,
    stop: AtomicBool,
    next: AtomicU64,
    pub stats: Mutex<Stats>,
    pub failures: Mutex<Vec<String>>,
}

/// More failures than this end the run early.
const MAX_FAILURES: usize = 10;

impl Shared {
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub fn count_reply(&self, code: u16) {
        let mut s = self.stats.lock().unwrap();
        s.classes[(code / 100).min(5) as usize] += 1;
        *s.codes.entry(code).or_default() += 1;
    }

    /// Record a failure of session `k` and write its crash file.
    pub fn fail(&self, k: u64, what: &str, log: &session::SessionLog) {
        let file = self
            .out_dir
            .join(format!("crash-{:016x}-{k}.txt", self.seed));
        let body = format!(
            "# harness fuzz: a failure\n# target {}, seed {:#018x}, session {k}\n# {what}\n\
             # rerun this session alone: harness fuzz {} --seed {:#018x} --session {k}\n{}",
            self.target,
            self.seed,
            self.rerun,
            self.seed,
            log.render()
        );
        let written = std::fs::write(&file, &body).is_ok();
        let line = format!(
            "session {k}: {what}{}",
            if written {
                format!(" ({})", file.display())
            } else {
                String::new()
            }
        );
        eprintln!("netfuzz: FAIL {line}");
        if self.verbose {
            eprintln!("{body}");
        }
        let mut f = self.failures.lock().unwrap();
        f.push(line);
        if f.len() >= MAX_FAILURES {
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    /// With `--trace`: every session's events, failed or not.
    pub fn trace(&self, k: u64, log: &session::SessionLog) {
        if self.trace {
            let file = self
                .out_dir
                .join(format!("trace-{:016x}-{k}.txt", self.seed));
            let _ = std::fs::write(file, log.render());
        }
    }

    fn fail_plain(&self, what: String) {
        eprintln!("netfuzz: FAIL {what}");
        self.failures.lock().unwrap().push(what);
    }
}

/// `target/netfuzz` (or under `$CARGO_TARGET_DIR`).
pub fn out_dir() -> PathBuf {
    crate::target::harness_dir()
        .parent()
        .map_or_else(|| PathBuf::from("netfuzz"), |p| p.join("netfuzz"))
}

/// Runs `harness fuzz`.
pub async fn main(ctx: &Context, args: FuzzArgs) -> anyhow::Result<ExitCode> {
    let seed = args.seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        input::session_seed(t.as_nanos() as u64, std::process::id() as u64)
    });
    let out = out_dir();
    std::fs::create_dir_all(&out)?;
    let root = crate::target::workspace_root();
    let (corpus, note) = input::Corpus::load(&root);
    let mut limits = Limits::default();
    if let Some(s) = args.hang_after {
        limits.gap = Duration::from_secs(s);
    }

    // The target: started here on a fresh image, or (--addr) a server
    // someone else runs on loopback.
    let mut started = None;
    let (name, addr, netns) = match args.addr {
        Some(addr) => {
            if !addr.ip().is_loopback() {
                bail!(
                    "--addr must be a loopback address (the fuzzer talks to nothing else): {addr}"
                );
            }
            ("external".to_string(), addr, None)
        }
        None => {
            let t = Target::by_name(&args.target).ok_or_else(|| {
                anyhow!(
                    "unknown target `{}` (host-fat, sim, qemu, qemu-10)",
                    args.target
                )
            })?;
            if matches!(t.kind, Kind::Host(crate::target::Storage::Dir)) {
                bail!(
                    "harness fuzz does not fuzz host-dir: it serves a real directory, and a bug in the jail would let the fuzzer delete files outside it; use --target host-fat (the same server on a FAT image)"
                );
            }
            if let Err(u) = t.probe(ctx) {
                let hint = if crate::snapshot::is_ci() {
                    " (a failure under CI=true)"
                } else {
                    ""
                };
                bail!("target {} cannot run here{hint}: {}", t.name, u.reason);
            }
            // A fresh image with the conformance tree on it, kept to check
            // after.
            let dir = tempfile::Builder::new()
                .prefix("harness-netfuzz-")
                .tempdir()?;
            let image = dir.path().join("sd.img");
            let tree =
                Tree::load(&root.join("scenarios/fixtures"), "rich").map_err(|e| anyhow!(e))?;
            ctx.fixture_image(&tree, &image).await?;
            let server_log = out.join(format!("server-{}.log", t.name));
            let opts = StartOptions {
                storage: Some(StorageArg::Image(image.clone())),
                log: Some(server_log.clone()),
                echo: false,
                ..Default::default()
            };
            let server = t.start_with(ctx, &Tree::default(), &opts).await?;
            let (addr, netns) = (server.addr, server.netns.clone());
            started = Some((t, server, dir, image, server_log));
            (t.name.to_string(), addr, netns)
        }
    };
    println!(
        "netfuzz: target {name}, {} s, {} connections, seed {seed:#018x}",
        args.seconds, args.connections
    );
    println!("netfuzz: {note}");
    if let Some((_, _, _, _, log)) = &started {
        println!(
            "netfuzz: serving on {addr}{}; the server's log: {}",
            netns
                .as_deref()
                .map(|n| format!(" in namespace {n}"))
                .unwrap_or_default(),
            log.display()
        );
    }

    let sh = Arc::new(Shared {
        seed,
        target: name.clone(),
        rerun: match args.addr {
            Some(a) => format!("--addr {a}"),
            None => format!("--target {name}"),
        },
        out_dir: out.clone(),
        deadline: Instant::now() + Duration::from_secs(args.seconds),
        limits,
        verbose: args.verbose,
        trace: args.trace,
        stop: AtomicBool::new(false),
        next: AtomicU64::new(0),
        stats: Mutex::new(Stats::default()),
        failures: Mutex::new(Vec::new()),
    });
    let t0 = Instant::now();

    // The fuzzing, inside the board's namespace when it has one; meanwhile
    // this task watches the server process.
    let body = {
        let (sh, corpus) = (sh.clone(), Arc::new(corpus));
        let (conns, only) = (args.connections, args.session);
        let f = move || fuzz_all(sh, addr, corpus, conns, only);
        in_netns(netns.clone(), f)
    };
    tokio::pin!(body);
    let mut died = false;
    loop {
        tokio::select! {
            r = &mut body => {
                if let Err(e) = r {
                    sh.fail_plain(format!("the fuzzer itself failed: {e:#}"));
                }
                break;
            }
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                if let Some((_, server, ..)) = started.as_mut() {
                    if !died {
                        if let Some(st) = server.exited() {
                            died = true;
                            sh.stop.store(true, Ordering::Relaxed);
                            sh.fail_plain(format!("the server process exited ({st}) during the run"));
                        }
                    }
                }
            }
        }
    }
    let fuzzed = t0.elapsed();

    // A normal session still works.
    if !died {
        let lim = sh.limits.clone();
        let r = in_netns(netns.clone(), move || normal_session(addr, lim)).await;
        match r.and_then(|r| r) {
            Ok(s) => println!("netfuzz: normal session afterwards: {s}"),
            Err(e) => sh.fail_plain(format!("normal session afterwards: {e:#}")),
        }
    }
    let fsck = match started {
        Some((t, server, _dir, image, server_log)) => {
            drop(server.stop_gracefully().await);
            check_server_log(&sh, &server_log, t.kind);
            check_image(&sh, &image, &out)
        }
        None => "not checked (--addr)".to_string(),
    };

    // Summary.
    let st = sh.stats.lock().unwrap().clone();
    let top: Vec<String> = {
        let mut v: Vec<(&u16, &u64)> = st.codes.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1));
        v.iter().take(12).map(|(c, n)| format!("{c}×{n}")).collect()
    };
    println!(
        "netfuzz: {:.1} s fuzzing: {} fuzz sessions and {} split sweeps, {} connections ({} refused with 421, {} connects failed), \
         {} commands in {} bytes, {} data connections, {} resets, {} cut at the deadline",
        fuzzed.as_secs_f64(),
        st.sessions,
        st.sweeps,
        st.connections,
        st.refused,
        st.connect_errors,
        st.commands,
        st.bytes,
        st.data_conns,
        st.resets,
        st.cut
    );
    println!(
        "netfuzz: replies 1xx {}, 2xx {}, 3xx {}, 4xx {}, 5xx {}; most frequent: {}",
        st.classes[1],
        st.classes[2],
        st.classes[3],
        st.classes[4],
        st.classes[5],
        top.join(" ")
    );
    println!("netfuzz: image: {fsck}");
    if st.sessions + st.sweeps == 0 {
        sh.fail_plain("no session got through: nothing was fuzzed".into());
    }
    let failures = sh.failures.lock().unwrap().clone();
    if failures.is_empty() {
        println!("netfuzz: seed {seed:#018x}: PASS");
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "netfuzz: seed {seed:#018x}: FAIL ({} failures)",
            failures.len()
        );
        for f in &failures {
            println!("  {f}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// Run `f`'s future inside namespace `ns` (on a thread of its own), or
/// here when there is none.
async fn in_netns<T, F, Fut>(ns: Option<String>, f: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    match ns {
        Some(ns) => crate::netns::run_in(&ns, f).await,
        None => Ok(f().await),
    }
}

/// The workers (and the prober) until the deadline.
async fn fuzz_all(
    sh: Arc<Shared>,
    addr: SocketAddr,
    corpus: Arc<input::Corpus>,
    conns: u64,
    only: Option<u64>,
) {
    let env = Arc::new(session::Env {
        addr,
        corpus,
        sh: sh.clone(),
    });
    if let Some(k) = only {
        session::run(&env, k).await;
        return;
    }
    let mut workers = Vec::new();
    for _ in 0..conns {
        let env = env.clone();
        workers.push(tokio::spawn(async move {
            while Instant::now() < env.sh.deadline && !env.sh.stopping() {
                let k = env.sh.next.fetch_add(1, Ordering::Relaxed);
                session::run(&env, k).await;
            }
        }));
    }
    let prober = tokio::spawn(probe(sh.clone(), addr));
    for w in workers {
        if let Err(e) = w.await {
            sh.fail_plain(format!("a fuzz worker panicked: {e}"));
        }
    }
    prober.abort();
}

/// Every 2 s a new connection must be greeted (220, or 421 when the
/// sessions are all taken) within the greeting limit; two misses in a row
/// are a failure.
async fn probe(sh: Arc<Shared>, addr: SocketAddr) {
    let mut misses = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let r = async {
            let mut c = Control::connect(addr, sh.limits.connect).await?;
            let r = c
                .read_reply(sh.limits.greeting)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let _ = c.send_line("QUIT").await;
            if r.code == 220 || r.code == 421 {
                Ok(())
            } else {
                Err(std::io::Error::other(format!("greeting {:?}", r.lines)))
            }
        }
        .await;
        match r {
            Ok(()) => misses = 0,
            // A board with every socket taken refuses (RST) rather than
            // greet with 421 when more clients than its sockets come at
            // once (--connections above 3): alive, not a miss.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                sh.stats.lock().unwrap().connect_errors += 1;
                misses = 0;
            }
            Err(e) => {
                misses += 1;
                if misses == 2 {
                    sh.fail_plain(format!("the prober was not greeted twice in a row: {e}"));
                    sh.stop.store(true, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Login, PWD, LIST, STOR and RETR of a small file with its checksum,
/// STAT until only this session is left with no open file, DELE, QUIT.
/// Retries while the server answers 421 (sessions still ending).
pub async fn normal_session(addr: SocketAddr, lim: Limits) -> anyhow::Result<String> {
    let t = Duration::from_secs(20);
    let until = Instant::now() + lim.gap;
    let mut c = loop {
        let mut c = Control::connect(addr, lim.connect).await?;
        let r = c
            .read_reply(t)
            .await
            .map_err(|e| anyhow!("greeting: {e}"))?;
        match r.code {
            220 => break c,
            421 if Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            _ => bail!("greeting: {}", r.lines.join(" / ")),
        }
    };
    async fn step(c: &mut Control, line: &str, want: &[u16]) -> anyhow::Result<client::Reply> {
        c.send_line(line).await?;
        let r = c
            .read_reply(Duration::from_secs(40))
            .await
            .map_err(|e| anyhow!("{line}: {e}"))?;
        if !want.contains(&r.code) {
            bail!(
                "`{line}` answered `{}` (wanted {want:?})",
                r.lines.join(" / ")
            );
        }
        Ok(r)
    }
    // EPSV until a data socket is free: sockets of sessions that just
    // ended may still be closing (425 "try later").
    async fn passive(c: &mut Control) -> anyhow::Result<tokio::net::TcpStream> {
        let t0 = Instant::now();
        let r = loop {
            let r = step(c, "EPSV", &[229, 425]).await?;
            if r.code == 229 {
                break r;
            }
            if t0.elapsed() > Duration::from_secs(60) {
                bail!("EPSV still answered `{}` after 60 s", r.lines.join(" / "));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        if t0.elapsed() > Duration::from_millis(400) {
            println!(
                "netfuzz: note: EPSV answered 425 (no data socket free) for {:.1} s after the fuzzing",
                t0.elapsed().as_secs_f64()
            );
        }
        let port = client::parse_epsv(r.text()).ok_or_else(|| anyhow!("229 without a port"))?;
        Ok(client::connect(SocketAddr::new(c.peer.ip(), port), Duration::from_secs(10)).await?)
    }
    step(&mut c, "USER test", &[331]).await?;
    step(&mut c, "PASS test", &[230]).await?;
    step(&mut c, "PWD", &[257]).await?;
    step(&mut c, "TYPE I", &[200]).await?;
    let mut d = passive(&mut c).await?;
    step(&mut c, "LIST", &[150, 125]).await?;
    let listing = client::read_all(&mut d, t).await?;
    let r = c
        .read_reply(t)
        .await
        .map_err(|e| anyhow!("after LIST: {e}"))?;
    if r.code != 226 {
        bail!("LIST ended with `{}`", r.lines.join(" / "));
    }
    let listing = String::from_utf8_lossy(&listing).into_owned();
    if !listing.contains("readme.txt") && !listing.contains("sub") {
        // The fuzzer may delete files, but not everything it cannot see.
        eprintln!("netfuzz: note: the root listing after fuzzing:\n{listing}");
    }
    let body: Vec<u8> = {
        let mut r = input::Rng::new(0xc0ffee);
        (0..20_000).map(|_| r.next_u64() as u8).collect()
    };
    let mut d = passive(&mut c).await?;
    step(&mut c, "STOR /netfuzz-check.bin", &[150, 125]).await?;
    client::write_all_and_close(&mut d, &body, t).await?;
    drop(d);
    let r = c
        .read_reply(t)
        .await
        .map_err(|e| anyhow!("after STOR: {e}"))?;
    if r.code != 226 {
        bail!("STOR ended with `{}`", r.lines.join(" / "));
    }
    let mut d = passive(&mut c).await?;
    step(&mut c, "RETR /netfuzz-check.bin", &[150, 125]).await?;
    let back = client::read_all(&mut d, t).await?;
    let r = c
        .read_reply(t)
        .await
        .map_err(|e| anyhow!("after RETR: {e}"))?;
    if r.code != 226 {
        bail!("RETR ended with `{}`", r.lines.join(" / "));
    }
    let (want, got) = (
        crate::fixture::checksum(&body),
        crate::fixture::checksum(&back),
    );
    if want != got {
        bail!(
            "RETR gave {} bytes ({got}), STOR sent {} ({want})",
            back.len(),
            body.len()
        );
    }
    // Every fuzz session gone, every file closed.
    let waited = Instant::now();
    let mut first = None;
    loop {
        let r = step(&mut c, "STAT", &[211]).await?;
        let last = r.lines.join(" / ");
        let one = r
            .lines
            .iter()
            .any(|l| l.trim().starts_with("Sessions: 1 of"));
        let closed = r.lines.iter().any(|l| l.trim() == "Open files: 0");
        if one && closed {
            if let Some(f) = first.filter(|_| waited.elapsed() > Duration::from_secs(1)) {
                println!(
                    "netfuzz: note: STAT showed other sessions or open files for {:.1} s after the fuzzing ({f})",
                    waited.elapsed().as_secs_f64()
                );
            }
            break;
        }
        if first.is_none() {
            first = Some(
                r.lines
                    .iter()
                    .filter(|l| l.contains("Sessions:") || l.contains("Open files:"))
                    .map(|l| l.trim())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        if Instant::now() > until {
            bail!(
                "STAT still shows other sessions or open files after {:?}: {last}",
                lim.gap
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    step(&mut c, "DELE /netfuzz-check.bin", &[250]).await?;
    step(&mut c, "QUIT", &[221]).await?;
    Ok(format!(
        "login, PWD, LIST ({} bytes), STOR + RETR of {} bytes (checksum right), STAT: one session, no open file; QUIT",
        listing.len(),
        body.len()
    ))
}

/// The server's log after it stopped: no panic, and the QEMU board did
/// not reboot.
fn check_server_log(sh: &Shared, path: &Path, kind: Kind) {
    let Ok(text) = std::fs::read(path) else {
        sh.fail_plain(format!("cannot read the server log {}", path.display()));
        return;
    };
    let text = String::from_utf8_lossy(&text);
    for needle in ["panicked at", "PANIC", "HARD FAULT"] {
        if let Some(l) = text.lines().find(|l| l.contains(needle)) {
            sh.fail_plain(format!(
                "the server log shows `{}` ({})",
                l.trim(),
                path.display()
            ));
        }
    }
    if matches!(kind, Kind::Qemu(_)) {
        let boots = text
            .lines()
            .filter(|l| l.contains(" ready: ftp://"))
            .count();
        if boots > 1 {
            sh.fail_plain(format!(
                "the board booted {boots} times during the run ({})",
                path.display()
            ));
        }
    }
}

/// `fsck.fat -n` on the image; keeps a copy next to the crash files when
/// it is not clean.
fn check_image(sh: &Shared, image: &Path, out: &Path) -> String {
    match crate::image::fsck(image) {
        Ok(_) => "fsck.fat -n: clean".into(),
        Err(crate::image::FsckError::Missing(why)) => {
            if crate::snapshot::is_ci() {
                sh.fail_plain(format!("the image was not checked: {why}"));
            } else {
                eprintln!(
                    "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                     !!! netfuzz: the image was NOT checked: {why}\n\
                     !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
                );
            }
            format!("NOT CHECKED ({why})")
        }
        Err(crate::image::FsckError::Unclean(report)) => {
            let keep = out.join(format!("image-{:016x}.img", sh.seed));
            let kept = crate::board::sparse_copy(image, &keep).is_ok();
            sh.fail_plain(format!(
                "fsck.fat -n: the image is not clean{}:\n{report}",
                if kept {
                    format!(" (kept as {})", keep.display())
                } else {
                    String::new()
                }
            ));
            "NOT CLEAN".into()
        }
        Err(crate::image::FsckError::Other(e)) => {
            sh.fail_plain(format!("checking the image: {e}"));
            "check failed".into()
        }
    }
}
