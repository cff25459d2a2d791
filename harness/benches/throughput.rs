//! `cargo bench -p harness`: RETR and STOR of 64 KB, 1 MB and 16 MB, TYPE I,
//! passive, on the host target (`sim --listen` on 127.0.0.1), the virtual
//! board (`sim --tap` in a namespace) and the firmware under QEMU, through
//! the harness's own minimal client (`harness::bench::ftp`). Each iteration
//! is timed from the `150` reply to the `226` (criterion's `iter_custom`),
//! throughput in bytes. A target that cannot run here is skipped with a loud
//! notice; a target is started only when one of its benchmarks is selected
//! (`cargo bench -p harness -- sim/` starts only the virtual board). With
//! `cargo bench`, `harness` (dev profile `bench` = release) measures a
//! release `sim`.
//!
//! `harness bench` (the CLI) is the place for ceilings, the peer and the
//! table; this is criterion's statistics and history (`target/criterion`).

use std::sync::mpsc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use harness::bench::ftp::{Login, Session};
use harness::bench::{Plan, file_path, size_label};
use harness::fixture::Tree;
use harness::target::{Context, Server, StartOptions, StorageArg, Target};

const TARGETS: &[&str] = &["host-dir", "sim", "qemu"];
const SIZES: &[u64] = &[64 << 10, 1 << 20, 16 << 20];

enum Job {
    Retr(u64),
    Stor(u64),
}

/// A logged-in client on a thread of its own (inside the target's
/// namespace when it has one), doing one timed transfer per request.
struct Worker {
    tx: mpsc::Sender<(Job, mpsc::Sender<Result<Duration, String>>)>,
}

impl Worker {
    fn start(server: &Server) -> Result<Worker, String> {
        let (tx, rx) = mpsc::channel::<(Job, mpsc::Sender<Result<Duration, String>>)>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let ns = server.netns.clone();
        let addr = server.addr;
        std::thread::spawn(move || {
            let setup = (|| -> Result<_, String> {
                if let Some(ns) = &ns {
                    harness::netns::enter(ns).map_err(|e| format!("{e:#}"))?;
                }
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                let s = rt
                    .block_on(Session::open(addr, &Login::test()))
                    .map_err(|e| format!("{e:#}"))?;
                Ok((rt, s))
            })();
            let (rt, mut s) = match setup {
                Ok(x) => {
                    let _ = ready_tx.send(Ok(()));
                    x
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let pattern = harness::fixture::filler(256 * 1024);
            for (job, reply) in rx {
                let r = rt.block_on(async {
                    match job {
                        Job::Retr(n) => s.retr(&file_path(n), n).await,
                        Job::Stor(n) => {
                            s.stor(&format!("/up/{}", &file_path(n)[7..]), n, &pattern)
                                .await
                        }
                    }
                });
                let _ = reply.send(
                    r.map(|span| span.end.duration_since(span.start))
                        .map_err(|e| format!("{e:#}")),
                );
            }
            rt.block_on(s.quit());
        });
        ready_rx
            .recv()
            .map_err(|_| "client thread died".to_string())??;
        Ok(Worker { tx })
    }

    fn run(&self, job: Job) -> Duration {
        let (tx, rx) = mpsc::channel();
        self.tx.send((job, tx)).expect("client thread gone");
        match rx.recv().expect("client thread gone") {
            Ok(d) => d,
            Err(e) => panic!("transfer failed: {e}"),
        }
    }
}

/// Start a target with the bench files on it, and its client.
fn start(
    rt: &tokio::runtime::Runtime,
    ctx: &Context,
    target: Target,
    tree: &Tree,
    dir: &std::path::Path,
) -> Result<(Server, Worker), String> {
    eprintln!("throughput: starting {}", target.name);
    let server = rt.block_on(async {
        let opts = if target.name == "host-dir" {
            StartOptions::default()
        } else {
            let img = dir.join("sd.img");
            ctx.fixture_image(tree, &img)
                .await
                .map_err(|e| format!("{e:#}"))?;
            StartOptions {
                storage: Some(StorageArg::Image(img)),
                ..Default::default()
            }
        };
        target
            .start_with(ctx, tree, &opts)
            .await
            .map_err(|e| format!("{e:#}"))
    })?;
    let w = Worker::start(&server)?;
    Ok((server, w))
}

/// criterion's filter (the first free argument), as it would match ids.
fn selected(id: &str) -> bool {
    let mut args = std::env::args().skip(1);
    let mut filter = None;
    while let Some(a) = args.next() {
        if a.starts_with('-') {
            // Options of criterion that take a value.
            if matches!(
                a.as_str(),
                "--save-baseline"
                    | "-s"
                    | "--baseline"
                    | "-b"
                    | "--load-baseline"
                    | "--sample-size"
                    | "--warm-up-time"
                    | "--measurement-time"
                    | "--nresamples"
                    | "--noise-threshold"
                    | "--confidence-level"
                    | "--significance-level"
                    | "--profile-time"
                    | "--plotting-backend"
                    | "--output-format"
                    | "--color"
                    | "-c"
                    | "--format"
            ) {
                args.next();
            }
            continue;
        }
        filter = Some(a);
        break;
    }
    match filter {
        None => true,
        Some(f) => regex::Regex::new(&f).map_or_else(|_| id.contains(&f), |re| re.is_match(id)),
    }
}

fn loud(msg: &str) {
    eprintln!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !!! throughput benchmarks SKIPPED for {msg}\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let ctx = Context::new(None);
    let args = harness::bench::BenchArgs {
        sizes: vec!["64K".into(), "1M".into(), "16M".into()],
        repeat: 1,
        ..Default::default()
    };
    let mut plan = Plan::new(&args).expect("plan");
    plan.listings.clear();
    let tree = plan.tree();
    for name in TARGETS {
        let target = Target::by_name(name).expect("known target");
        if let Err(u) = target.probe(&ctx) {
            loud(&format!("{name}: cannot run here: {}", u.reason));
            continue;
        }
        let ids: Vec<String> = SIZES
            .iter()
            .flat_map(|&s| ["RETR", "STOR"].map(|op| format!("{name}/{op}/{}", size_label(s))))
            .collect();
        if !ids.iter().any(|id| selected(id)) {
            continue;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let (server, w) = match start(&rt, &ctx, target, &tree, dir.path()) {
            Ok(x) => x,
            Err(e) => {
                loud(&format!("{name}: could not start: {e}"));
                continue;
            }
        };
        let mut g = c.benchmark_group(*name);
        g.sampling_mode(SamplingMode::Flat);
        for &size in SIZES {
            // The QEMU board moves about 1 MB/s: ten 16 MB samples each way
            // (and the warm-up) take 5 to 10 minutes.
            if name.starts_with("qemu")
                && size >= 16 << 20
                && std::env::var_os("HARNESS_BENCH_QEMU_16M").is_none()
            {
                loud(&format!(
                    "{name}/{{RETR,STOR}}/16M: the QEMU board moves about 1 MB/s, so 10 samples each way take 5 to 10 minutes; set HARNESS_BENCH_QEMU_16M=1 to run them (`harness bench` measures 16M on QEMU with --repeat runs)"
                ));
                continue;
            }
            g.throughput(Throughput::Bytes(size));
            // Few samples of the large file: each is a whole transfer.
            g.sample_size(10);
            if size >= 16 << 20 {
                g.measurement_time(Duration::from_secs(5));
            }
            for op in ["RETR", "STOR"] {
                g.bench_with_input(BenchmarkId::new(op, size_label(size)), &size, |b, &size| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| {
                                w.run(if op == "RETR" {
                                    Job::Retr(size)
                                } else {
                                    Job::Stor(size)
                                })
                            })
                            .sum()
                    });
                });
            }
        }
        g.finish();
        drop(w);
        rt.block_on(server.stop());
    }
    c.final_summary();
}
