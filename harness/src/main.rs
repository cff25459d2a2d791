//! `harness`: run the scenarios, serve a target, make an image, replay or
//! record a session. `cargo run -p harness` is `harness run`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use harness::fixture::Tree;
use harness::run::{self, Options};
use harness::target::{self, Context, StorageArg, Target};

#[derive(Parser)]
#[command(name = "harness", version, about = "Scripted FTP client sessions, snapshots, replay and record")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args, Clone, Default)]
struct RunArgs {
    /// Targets to run (globs over host-dir, host-fat, sim, qemu); default all.
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
    /// Start a target and serve until Ctrl-C; prints `READY ftp://ADDR:PORT`.
    Serve {
        #[arg(long, short = 't', default_value = "host")]
        target: String,
        /// Serve this host directory.
        #[arg(long, conflicts_with = "image")]
        root: Option<PathBuf>,
        /// Serve this FAT image.
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
    c.scenarios_dir.clone().unwrap_or_else(|| target::workspace_root().join("scenarios"))
}

fn host_alias(name: &str) -> &str {
    if name == "host" { "host-dir" } else { name }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let result = rt.block_on(async move {
        match cli.command {
            None => cmd_run(cli.run).await,
            Some(Cmd::Run(a)) => cmd_run(a).await,
            Some(Cmd::List(a)) => cmd_list(a),
            Some(Cmd::Serve { target, root, image, fixture, record, common }) => {
                let storage = root.map(StorageArg::Root).or(image.map(StorageArg::Image));
                cmd_serve(&target, storage, fixture, record, &common).await
            }
            Some(Cmd::Record { out, target, root, fixture, common }) => {
                cmd_serve(&target, root.map(StorageArg::Root), fixture, Some(out), &common).await
            }
            Some(Cmd::Image { cmd: ImageCmd::Create { file, size } }) => cmd_image(&file, &size),
            Some(Cmd::Replay { file, target, strict, text, login, common }) => {
                cmd_replay(&file, &target, strict, text, login, &common).await
            }
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
    opts.targets = a.targets.iter().map(|t| host_alias(t).to_string()).collect();
    if a.targets.iter().any(|t| t == "host") {
        opts.targets.push("host-*".into());
    }
    opts.scenarios = a.scenarios;
    opts.verbose = a.verbose;
    opts.progress = !a.quiet;
    opts.accept = a.accept || std::env::var("INSTA_UPDATE").is_ok_and(|v| v == "always");
    let ctx = Context::new(a.common.sim_bin);
    let report = run::run(&ctx, &opts).await;
    let details = report.details();
    if !details.is_empty() {
        println!("{details}");
    }
    if !report.passed() && !harness::snapshot::is_ci() && report.outcomes.iter().any(|o| o.written.is_some()) {
        println!("review new snapshots with `cargo insta review` (or rerun with --accept after reading the diffs)\n");
    }
    print!("{}", report.table());
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn cmd_list(a: RunArgs) -> anyhow::Result<ExitCode> {
    let mut opts = Options::new(scenarios_dir(&a.common));
    opts.scenarios = a.scenarios;
    let mut errors = vec![];
    for s in run::load_scenarios(&opts, &mut errors) {
        println!("{:<32} {:<20} {}", s.id, s.header.client, s.header.description);
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
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
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
    let t = Target::by_name(name).ok_or_else(|| anyhow::anyhow!("unknown target `{target}` (host, host-dir, host-fat, sim, qemu)"))?;
    let dir = scenarios_dir(common);
    let tree = match &fixture {
        Some(f) => Tree::load(&dir.join("fixtures"), f).map_err(|e| anyhow::anyhow!(e))?,
        None => Tree::default(),
    };
    let ctx = Context::new(common.sim_bin.clone());
    let mut server = t.start(&ctx, &tree, storage.as_ref()).await?;
    let addr = match &record {
        None => server.addr,
        Some(out) => harness::record::start_with(server.addr, out.clone(), fixture.clone()).await?,
    };
    let ns = server.netns.as_ref().map(|n| format!(" netns {n}")).unwrap_or_default();
    println!("READY ftp://{addr}{ns}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {
            eprintln!("stopping");
        }
        status = server.wait() => {
            eprintln!("the server exited ({status:?}):\n{}", server.log());
            return Ok(ExitCode::FAILURE);
        }
    }
    if let Some(out) = &record {
        harness::record::finish().await;
        eprintln!("recorded into {}", out.display());
    }
    server.stop().await;
    Ok(ExitCode::SUCCESS)
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
    let t = Target::by_name(host_alias(target)).ok_or_else(|| anyhow::anyhow!("unknown target `{target}`"))?;
    let mode = if text {
        harness::replay::Compare::Text
    } else if strict {
        harness::replay::Compare::Code
    } else {
        harness::replay::Compare::Class
    };
    let login = match login {
        Some(l) => {
            let (u, p) = l.split_once(':').ok_or_else(|| anyhow::anyhow!("--login wants USER:PASS"))?;
            Some((u.to_string(), p.to_string()))
        }
        None => None,
    };
    let ctx = Context::new(common.sim_bin.clone());
    let session = harness::replay::load(file)?;
    let outcome = harness::replay::replay(&ctx, &t, &session, mode, login.as_ref()).await?;
    print!("{}", outcome.side_by_side());
    println!("{}", outcome.summary());
    Ok(if outcome.agrees() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
