//! `harness`: run the scenarios, serve a target, make an image, replay or
//! record a session. `cargo run -p harness` is `harness run`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use harness::fixture::Tree;
use harness::run::{self, Options};
use harness::target::{self, Context, StartOptions, StorageArg, Target};

#[derive(Parser)]
#[command(
    name = "harness",
    version,
    about = "Scripted FTP client sessions, snapshots, replay and record"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args, Clone, Default)]
struct RunArgs {
    /// Targets to run (globs over host-dir, host-fat, sim, qemu, qemu-10; `host`
    /// is host-*); default all.
    #[arg(long = "target", short = 't')]
    targets: Vec<String>,
    /// Scenarios to run (globs over ids such as `filezilla/*`); default all.
    #[arg(long = "scenario", short = 's')]
    scenarios: Vec<String>,
    /// Print the live dialogue.
    #[arg(long, short)]
    verbose: bool,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// Accept new and changed transcripts as snapshots (never under CI).
    /// Also set by INSTA_UPDATE=always. Review them first!
    #[arg(long)]
    accept: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Clone, Default)]
struct Common {
    /// The scenarios folder.
    #[arg(long, global = true)]
    scenarios_dir: Option<PathBuf>,
    /// The `sim` binary to use (default: built with cargo).
    #[arg(long, global = true)]
    sim_bin: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run scenarios on targets and compare with the snapshots (the default).
    Run(RunArgs),
    /// List scenarios and targets.
    List(RunArgs),
    /// Start a target and serve until Ctrl-C; prints `READY ftp://ADDR:PORT`
    /// (plus ` netns NAME` for the boards on TAP: run clients with
    /// `ip netns exec NAME ...`).
    Serve {
        /// host (host-dir), host-fat, sim (the virtual board on TAP), qemu, qemu-10.
        #[arg(long, short = 't', default_value = "host")]
        target: String,
        /// Serve this host directory (host, sim).
        #[arg(long, conflicts_with = "image")]
        root: Option<PathBuf>,
        /// Serve this FAT image (the SD card of sim and qemu; QEMU wants a
        /// power-of-two size: `harness image create sd.img --size 64M`).
        #[arg(long)]
        image: Option<PathBuf>,
        /// Start with this fixture tree (when no --root/--image is given).
        #[arg(long)]
        fixture: Option<String>,
        /// Also record every session through a proxy into this scenario file.
        #[arg(long)]
        record: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Measure throughput (RETR/STOR per target and size, against vsftpd
    /// and the raw ceilings) or, with --footprint, flash and RAM.
    Bench {
        #[command(flatten)]
        args: harness::bench::BenchArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Fuzz a running target over the network.
    Fuzz {
        #[command(flatten)]
        args: harness::netfuzz::FuzzArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Disk images.
    Image {
        #[command(subcommand)]
        cmd: ImageCmd,
    },
    /// Replay a captured session (pcap, pcapng, text log, scenario) against a target.
    Replay {
        file: PathBuf,
        #[arg(long, short = 't', default_value = "host-dir")]
        target: String,
        /// Replies must have the same code (default: the same class).
        #[arg(long)]
        strict: bool,
        /// Replies must have the same code and text (after redaction).
        #[arg(long, conflicts_with = "strict")]
        text: bool,
        /// Log in as USER:PASS instead of the captured credentials.
        #[arg(long)]
        login: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Record a session played by hand through a proxy as a scenario file.
    Record {
        /// The scenario file to write.
        out: PathBuf,
        #[arg(long, short = 't', default_value = "host")]
        target: String,
        #[arg(long)]
        root: Option<PathBuf>,
        #[arg(long)]
        fixture: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum ImageCmd {
    /// Create and format a FAT image (QEMU wants a power-of-two size).
    Create {
        file: PathBuf,
        #[arg(long, default_value = "64M")]
        size: String,
    },
}

fn scenarios_dir(c: &Common) -> PathBuf {
    c.scenarios_dir
        .clone()
        .unwrap_or_else(|| target::workspace_root().join("scenarios"))
}

fn host_alias(name: &str) -> &str {
    if name == "host" { "host-dir" } else { name }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(async move {
        match cli.command {
            None => cmd_run(cli.run).await,
            Some(Cmd::Run(a)) => cmd_run(a).await,
            Some(Cmd::List(a)) => cmd_list(a),
            Some(Cmd::Serve {
                target,
                root,
                image,
                fixture,
                record,
                common,
            }) => {
                let storage = root.map(StorageArg::Root).or(image.map(StorageArg::Image));
                cmd_serve(&target, storage, fixture, record, &common).await
            }
            Some(Cmd::Record {
                out,
                target,
                root,
                fixture,
                common,
            }) => {
                cmd_serve(
                    &target,
                    root.map(StorageArg::Root),
                    fixture,
                    Some(out),
                    &common,
                )
                .await
            }
            Some(Cmd::Bench { args, common }) => {
                harness::bench::main(&Context::new(common.sim_bin), args).await
            }
            Some(Cmd::Fuzz { args, common }) => {
                harness::netfuzz::main(&Context::new(common.sim_bin), args).await
            }
            Some(Cmd::Image {
                cmd: ImageCmd::Create { file, size },
            }) => cmd_image(&file, &size),
            Some(Cmd::Replay {
                file,
                target,
                strict,
                text,
                login,
                common,
            }) => cmd_replay(&file, &target, strict, text, login, &common).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("harness: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn cmd_run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let mut opts = Options::new(scenarios_dir(&a.common));
    opts.targets = a
        .targets
        .iter()
        .map(|t| host_alias(t).to_string())
        .collect();
    if a.targets.iter().any(|t| t == "host") {
        opts.targets.push("host-*".into());
    }
    opts.scenarios = a.scenarios;
    opts.verbose = a.verbose;
    opts.progress = !a.quiet;
    opts.accept = a.accept || std::env::var("INSTA_UPDATE").is_ok_and(|v| v == "always");
    let ctx = Context::new(a.common.sim_bin);
    // Ctrl-C or SIGTERM: dropping the run stops its server (QEMU, sim) and
    // removes its namespace before the process exits.
    let report = tokio::select! {
        r = run::run(&ctx, &opts) => r,
        sig = stop_signal() => {
            eprintln!("\nharness: {sig}: stopping");
            harness::netns::remove_all();
            std::process::exit(130);
        }
    };
    let details = report.details();
    if !details.is_empty() {
        println!("{details}");
    }
    if !report.passed()
        && !harness::snapshot::is_ci()
        && report.outcomes.iter().any(|o| o.written.is_some())
    {
        println!(
            "review new snapshots with `cargo insta review` (or rerun with --accept after reading the diffs)\n"
        );
    }
    print!("{}", report.table());
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn cmd_list(a: RunArgs) -> anyhow::Result<ExitCode> {
    let mut opts = Options::new(scenarios_dir(&a.common));
    opts.scenarios = a.scenarios;
    let mut errors = vec![];
    for s in run::load_scenarios(&opts, &mut errors) {
        println!(
            "{:<32} {:<20} {}",
            s.id, s.header.client, s.header.description
        );
    }
    let ctx = Context::new(a.common.sim_bin);
    for t in target::ALL {
        match t.probe(&ctx) {
            Ok(()) => println!("target {:<9} can run here", t.name),
            Err(u) => println!("target {:<9} cannot run here: {}", t.name, u.reason),
        }
    }
    for e in &errors {
        eprintln!("error: {e}");
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn cmd_serve(
    target: &str,
    storage: Option<StorageArg>,
    fixture: Option<String>,
    record: Option<PathBuf>,
    common: &Common,
) -> anyhow::Result<ExitCode> {
    let name = match (host_alias(target), &storage) {
        ("host-dir", Some(StorageArg::Image(_))) => "host-fat",
        (n, _) => n,
    };
    let t = Target::by_name(name).ok_or_else(|| {
        anyhow::anyhow!("unknown target `{target}` (host, host-dir, host-fat, sim, qemu, qemu-10)")
    })?;
    let dir = scenarios_dir(common);
    let tree = match &fixture {
        Some(f) => Tree::load(&dir.join("fixtures"), f).map_err(|e| anyhow::anyhow!(e))?,
        None => Tree::default(),
    };
    let ctx = Context::new(common.sim_bin.clone());
    if let Err(u) = t.probe(&ctx) {
        let hint = if u.missing_tool && harness::snapshot::is_ci() {
            " (a failure under CI=true)"
        } else {
            ""
        };
        anyhow::bail!("target {} cannot run here{hint}: {}", t.name, u.reason);
    }
    if record.is_some() && !matches!(t.kind, harness::target::Kind::Host(_)) {
        anyhow::bail!(
            "--record works with the host targets only for now (the proxy would have to live in the board's namespace); use --target host"
        );
    }
    // The server's log (for the boards: one line per session event, or the
    // QEMU console) goes to the terminal and to a file kept with the run.
    let log = target::harness_dir().join(format!("serve-{}-{}.log", t.name, std::process::id()));
    remove_old_serve_logs();
    let opts = StartOptions {
        storage,
        log: Some(log.clone()),
        echo: true,
        ..Default::default()
    };
    let started = tokio::select! {
        r = t.start_with(&ctx, &tree, &opts) => r,
        sig = stop_signal() => {
            eprintln!("harness: {sig} while starting: stopping");
            harness::netns::remove_all();
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut server = started?;
    eprintln!("harness: {} log: {}", t.name, log.display());
    if let Some(d) = t.describe() {
        eprintln!("harness: {d}");
    }
    let addr = match &record {
        None => server.addr,
        Some(out) => harness::record::start_with(server.addr, out.clone(), fixture.clone()).await?,
    };
    let ns = server
        .netns
        .as_ref()
        .map(|n| format!(" netns {n}"))
        .unwrap_or_default();
    println!("READY ftp://{addr}{ns}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tokio::select! {
        sig = stop_signal() => {
            eprintln!("harness: {sig}: stopping");
        }
        status = server.wait() => {
            // Its log is already on the terminal (and in the file).
            server.stop().await;
            eprintln!("harness: the server exited ({status:?}); its log: {}", log.display());
            return Ok(ExitCode::FAILURE);
        }
    }
    if let Some(out) = &record {
        harness::record::finish().await;
        eprintln!("recorded into {}", out.display());
    }
    // As Ctrl-C would stop the server itself: `sim` unmounts its image.
    server.stop_gracefully().await;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C (SIGINT) or SIGTERM, whichever comes first; its name.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut i), Ok(mut t)) => tokio::select! {
            _ = i.recv() => "SIGINT",
            _ = t.recv() => "SIGTERM",
        },
        _ => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

/// Logs of `serve` processes that are gone: the newest 20 are kept (a
/// person reads the last one after stopping), older ones go.
fn remove_old_serve_logs() {
    let Ok(dir) = std::fs::read_dir(target::harness_dir()) else {
        return;
    };
    let mut old = Vec::new();
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_prefix("serve-").and_then(|n| {
            n.strip_suffix(".log")
                .or_else(|| n.strip_suffix(".console"))
        }) else {
            continue;
        };
        let pid = stem.rsplit('-').next().unwrap_or("");
        if !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let mtime = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            old.push((mtime, e.path()));
        }
    }
    old.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (_, p) in old.into_iter().skip(20) {
        let _ = std::fs::remove_file(p);
    }
}

fn cmd_image(file: &std::path::Path, size: &str) -> anyhow::Result<ExitCode> {
    let size = harness::scenario::parse_size(size).map_err(|e| anyhow::anyhow!(e))?;
    harness::image::check_size(size).map_err(|e| anyhow::anyhow!(e))?;
    harness::image::create(file, size).map_err(|e| anyhow::anyhow!(e))?;
    println!("created {} ({size} bytes)", file.display());
    Ok(ExitCode::SUCCESS)
}

async fn cmd_replay(
    file: &std::path::Path,
    target: &str,
    strict: bool,
    text: bool,
    login: Option<String>,
    common: &Common,
) -> anyhow::Result<ExitCode> {
    let t = Target::by_name(host_alias(target))
        .ok_or_else(|| anyhow::anyhow!("unknown target `{target}`"))?;
    let mode = if text {
        harness::replay::Compare::Text
    } else if strict {
        harness::replay::Compare::Code
    } else {
        harness::replay::Compare::Class
    };
    let login = match login {
        Some(l) => {
            let (u, p) = l
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("--login wants USER:PASS"))?;
            Some((u.to_string(), p.to_string()))
        }
        None => None,
    };
    let ctx = Context::new(common.sim_bin.clone());
    let session = harness::replay::load(file)?;
    let outcome = harness::replay::replay(&ctx, &t, &session, mode, login.as_ref()).await?;
    print!("{}", outcome.side_by_side());
    println!("{}", outcome.summary());
    Ok(if outcome.agrees() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
