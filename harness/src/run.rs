//! `harness run`: every scenario on every target that can run here, each
//! transcript compared with its snapshot, a table, a verdict.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fixture::Tree;
use crate::scenario::{self, Scenario, glob_match};
use crate::snapshot::{self, Compared};
use crate::target::{ALL, Context, StartOptions, Target};

/// What to run and how.
#[derive(Clone, Debug)]
pub struct Options {
    /// `scenarios/` folder (fixtures in `fixtures/`, snapshots in `snapshots/`).
    pub scenarios_dir: PathBuf,
    /// Globs over target names; empty = all.
    pub targets: Vec<String>,
    /// Globs over scenario ids (`filezilla/*`); empty = all.
    pub scenarios: Vec<String>,
    /// Print the live dialogue.
    pub verbose: bool,
    /// Progress line on stderr.
    pub progress: bool,
    /// Write `.snap` files (instead of `.snap.new`) for new or changed
    /// transcripts.
    pub accept: bool,
}

impl Options {
    pub fn new(scenarios_dir: PathBuf) -> Self {
        Options {
            scenarios_dir,
            targets: vec![],
            scenarios: vec![],
            verbose: false,
            progress: false,
            accept: false,
        }
    }
}

/// How one scenario went on one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Transcript equals the snapshot and every check passed.
    Ok,
    /// No snapshot yet.
    New,
    /// Transcript differs from the snapshot.
    Mismatch,
    /// A check of the scenario failed (wrong reply class, data differs...).
    Fail,
    /// The target or the harness could not play it.
    Error(String),
    /// This target, as it runs here, cannot play this scenario, for the
    /// reason given (QEMU on user networking and active mode). Named in
    /// the table; a failure under `CI=true`.
    NotApplicable(String),
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::New => "NEW",
            Verdict::Mismatch => "MISMATCH",
            Verdict::Fail => "FAIL",
            Verdict::Error(_) => "ERROR",
            Verdict::NotApplicable(_) => "n/a",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub scenario: String,
    pub target: String,
    pub verdict: Verdict,
    /// How long the scenario's dialogue took.
    pub elapsed: Duration,
    /// Start (boot) to stop, the dialogue included.
    pub total: Duration,
    /// The server's log (the board's session events, QEMU's console).
    pub log: Option<PathBuf>,
    pub failures: Vec<String>,
    pub diff: Option<String>,
    pub written: Option<PathBuf>,
}

/// A target that did not run, and why.
#[derive(Clone, Debug)]
pub struct Skipped {
    pub target: String,
    pub reason: String,
    pub is_failure: bool,
}

/// What ran as a target, and for how long.
#[derive(Clone, Debug)]
pub struct TargetRun {
    pub target: String,
    /// What exactly ran (QEMU version, networking), when that says more than the name.
    pub detail: Option<String>,
    pub scenarios: usize,
    /// Wall time for all its scenarios, starts and stops included.
    pub wall: Duration,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
    pub skipped: Vec<Skipped>,
    pub errors: Vec<String>,
    pub targets: Vec<TargetRun>,
}

impl Report {
    pub fn passed(&self) -> bool {
        let ok = |v: &Verdict| {
            *v == Verdict::Ok || (matches!(v, Verdict::NotApplicable(_)) && !snapshot::is_ci())
        };
        self.errors.is_empty()
            && self.outcomes.iter().all(|o| ok(&o.verdict))
            && !self.skipped.iter().any(|s| s.is_failure)
    }

    /// The results table.
    pub fn table(&self) -> String {
        let w = self
            .outcomes
            .iter()
            .map(|o| o.scenario.len())
            .max()
            .unwrap_or(8)
            .max(8);
        let mut s = format!(
            "{:<w$}  {:<9} {:<9} {:>7}\n",
            "scenario", "target", "result", "time"
        );
        for o in &self.outcomes {
            s.push_str(&format!(
                "{:<w$}  {:<9} {:<9} {:>6.2}s\n",
                o.scenario,
                o.target,
                o.verdict.label(),
                o.elapsed.as_secs_f64()
            ));
        }
        for t in &self.targets {
            let per = if t.scenarios > 0 {
                t.wall.as_secs_f64() / t.scenarios as f64
            } else {
                0.0
            };
            s.push_str(&format!(
                "target {}: {} scenario{} in {:.1}s ({per:.2}s each, start and stop included){}\n",
                t.target,
                t.scenarios,
                if t.scenarios == 1 { "" } else { "s" },
                t.wall.as_secs_f64(),
                t.detail
                    .as_ref()
                    .map(|d| format!("; {d}"))
                    .unwrap_or_default()
            ));
        }
        for k in &self.skipped {
            s.push_str(&format!(
                "target {} did not run{}: {}\n",
                k.target,
                if k.is_failure {
                    " (FAILURE under CI)"
                } else {
                    ""
                },
                k.reason
            ));
        }
        let n = |v: &str| {
            self.outcomes
                .iter()
                .filter(|o| o.verdict.label() == v)
                .count()
        };
        let na = if snapshot::is_ci() { 0 } else { n("n/a") };
        s.push_str(&format!(
            "({} mismatch, {} new, {} fail, {} error, {} n/a)\n",
            n("MISMATCH"),
            n("NEW"),
            n("FAIL"),
            n("ERROR"),
            n("n/a")
        ));
        // Alone on the last line, in the form CI logs are read for.
        s.push_str(&format!(
            "{} passed, {} failed\n",
            n("ok"),
            self.outcomes.len() - n("ok") - na
        ));
        s
    }

    /// Details of everything that is not ok: failed checks and diffs.
    pub fn details(&self) -> String {
        let mut s = String::new();
        for o in self.outcomes.iter().filter(|o| o.verdict != Verdict::Ok) {
            s.push_str(&format!(
                "--- {} on {}: {}\n",
                o.scenario,
                o.target,
                o.verdict.label()
            ));
            if let Verdict::Error(e) | Verdict::NotApplicable(e) = &o.verdict {
                s.push_str(&format!("{e}\n"));
            }
            for f in &o.failures {
                s.push_str(&format!("  !! {f}\n"));
            }
            if let Some(d) = &o.diff {
                s.push_str("  snapshot (-) vs this run (+):\n");
                for l in d.lines() {
                    s.push_str(&format!("  {l}\n"));
                }
            }
            if let Some(p) = &o.written {
                s.push_str(&format!("  wrote {}\n", p.display()));
            }
            if let Some(p) = &o.log {
                s.push_str(&format!("  server log: {}\n", p.display()));
            }
        }
        for e in &self.errors {
            s.push_str(&format!("error: {e}\n"));
        }
        s
    }
}

fn selected(name: &str, globs: &[String]) -> bool {
    globs.is_empty() || globs.iter().any(|g| glob_match(g, name))
}

/// Load every scenario matching the options; parse errors are reported.
pub fn load_scenarios(opts: &Options, errors: &mut Vec<String>) -> Vec<Scenario> {
    let files = match scenario::discover(&opts.scenarios_dir) {
        Ok(f) => f,
        Err(e) => {
            errors.push(format!("reading {}: {e}", opts.scenarios_dir.display()));
            return vec![];
        }
    };
    let mut out = Vec::new();
    for f in files {
        match Scenario::load(&f, &opts.scenarios_dir) {
            Ok(s) if selected(&s.id, &opts.scenarios) => out.push(s),
            Ok(_) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    out
}

/// Load a scenario's fixture tree (empty when it names none).
pub fn fixture_for(s: &Scenario, scenarios_dir: &Path) -> Result<Tree, String> {
    match &s.header.fixture {
        None => Ok(Tree::default()),
        Some(name) => Tree::load(&scenarios_dir.join("fixtures"), name),
    }
}

/// Where a scenario's server log is kept: `target/harness/logs/TARGET/SET__NAME.log`
/// (QEMU's console beside it, `.console`), overwritten by the next run.
pub fn log_path(target: &str, scenario: &str) -> PathBuf {
    crate::target::harness_dir()
        .join("logs")
        .join(target)
        .join(format!("{}.log", scenario.replace('/', "__")))
}

/// Play one scenario on one started-fresh target and compare.
pub async fn run_one(
    ctx: &Context,
    target: &Target,
    s: &Scenario,
    opts: &Options,
) -> (Outcome, String) {
    let mut outcome = Outcome {
        scenario: s.id.clone(),
        target: target.name.to_string(),
        verdict: Verdict::Ok,
        elapsed: Duration::ZERO,
        total: Duration::ZERO,
        log: None,
        failures: vec![],
        diff: None,
        written: None,
    };
    let tree = match fixture_for(s, &opts.scenarios_dir) {
        Ok(t) => t,
        Err(e) => {
            outcome.verdict = Verdict::Error(e);
            return (outcome, String::new());
        }
    };
    if let Some(why) = target.cannot_play(s) {
        outcome.verdict = Verdict::NotApplicable(why);
        return (outcome, String::new());
    }
    let t0 = std::time::Instant::now();
    let log_file = log_path(target.name, &s.id);
    let start = StartOptions {
        log: Some(log_file.clone()),
        ..Default::default()
    };
    let server = match target.start_with(ctx, &tree, &start).await {
        Ok(srv) => srv,
        Err(e) => {
            outcome.verdict = Verdict::Error(format!("{e:#}"));
            outcome.log = Some(log_file);
            return (outcome, String::new());
        }
    };
    outcome.log = server.log_path();
    let played = match crate::target::play_on(&server, s, &tree, opts.verbose).await {
        Ok(p) => p,
        Err(e) => {
            server.stop().await;
            outcome.verdict = Verdict::Error(format!("{e:#}"));
            return (outcome, String::new());
        }
    };
    let log = server.stop().await;
    outcome.total = t0.elapsed();
    outcome.elapsed = played.elapsed;
    outcome.failures = played.failures();
    let body = played.transcript.render(true);
    let snap = snapshot::path(&opts.scenarios_dir.join("snapshots"), &s.snapshot_name());
    let input = format!("scenarios/{}.ftp", s.id);
    // A transcript whose checks failed is never accepted as a snapshot: it
    // would bless wrong behaviour. It still gets a `.snap.new` to look at.
    let accept = opts.accept && outcome.failures.is_empty() && !snapshot::is_ci();
    match snapshot::compare(&snap, &body) {
        Err(e) => outcome.verdict = Verdict::Error(format!("reading {}: {e}", snap.display())),
        Ok(c) => {
            let write = |accept: bool| {
                if snapshot::is_ci() && !accept {
                    None
                } else {
                    snapshot::write(&snap, accept, &s.header.description, &input, &body).ok()
                }
            };
            match c {
                Compared::Same => {}
                Compared::New => {
                    outcome.verdict = Verdict::New;
                    outcome.diff = Some(snapshot::diff("", &snapshot::normalise(&body)));
                    outcome.written = write(accept);
                }
                Compared::Differs(old) => {
                    outcome.verdict = Verdict::Mismatch;
                    outcome.diff = Some(snapshot::diff(&old, &snapshot::normalise(&body)));
                    outcome.written = write(accept);
                }
            }
        }
    }
    if !outcome.failures.is_empty()
        && matches!(
            outcome.verdict,
            Verdict::Ok | Verdict::New | Verdict::Mismatch
        )
    {
        outcome.verdict = Verdict::Fail;
    }
    (outcome, log)
}

/// Run everything the options select.
pub async fn run(ctx: &Context, opts: &Options) -> Report {
    let mut report = Report::default();
    let scenarios = load_scenarios(opts, &mut report.errors);
    if scenarios.is_empty() && report.errors.is_empty() {
        report.errors.push(format!(
            "no scenario matches {:?} under {}",
            opts.scenarios,
            opts.scenarios_dir.display()
        ));
    }
    let mut targets = Vec::new();
    for t in ALL.iter().filter(|t| selected(t.name, &opts.targets)) {
        match t.probe(ctx) {
            Ok(()) => targets.push(*t),
            Err(u) => report.skipped.push(Skipped {
                target: t.name.to_string(),
                reason: u.reason,
                is_failure: u.missing_tool && snapshot::is_ci(),
            }),
        }
    }
    if targets.is_empty() {
        report
            .errors
            .push("no selected target can run here (see the reasons above)".into());
    }
    let total = targets.len() * scenarios.len();
    let tty = std::io::stderr().is_terminal();
    let mut n = 0;
    for t in &targets {
        let t0 = std::time::Instant::now();
        for s in &scenarios {
            n += 1;
            if opts.progress || opts.verbose {
                let line = format!("[{n}/{total}] {} on {}", s.id, t.name);
                if tty && !opts.verbose {
                    eprint!("\r\x1b[2K{line}");
                } else {
                    eprintln!("{line}");
                }
                let _ = std::io::stderr().flush();
            }
            let (o, log) = run_one(ctx, t, s, opts).await;
            if opts.verbose && !log.is_empty() {
                eprintln!(
                    "    server log:\n{}",
                    log.lines()
                        .map(|l| format!("      {l}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            report.outcomes.push(o);
        }
        report.targets.push(TargetRun {
            target: t.name.to_string(),
            detail: t.describe(),
            scenarios: scenarios.len(),
            wall: t0.elapsed(),
        });
    }
    if (opts.progress && tty) && !opts.verbose {
        eprint!("\r\x1b[2K");
    }
    report
}
