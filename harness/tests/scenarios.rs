//! `cargo test -p harness`: every scenario on every host target that can run
//! here, asserted through insta against `scenarios/snapshots/`, the same
//! files `cargo run -p harness` compares with (so `cargo insta review` works
//! on what either of them found).

use std::panic::{catch_unwind, AssertUnwindSafe};

use harness::run::{self, Options};
use harness::target::{self, Context, Kind};

#[test]
fn every_scenario_matches_its_snapshot_on_every_host_target() {
    let dir = target::workspace_root().join("scenarios");
    let opts = Options::new(dir.clone());
    let mut errors = Vec::new();
    let scenarios = run::load_scenarios(&opts, &mut errors);
    assert!(errors.is_empty(), "scenarios that do not parse:\n{}", errors.join("\n"));
    assert!(scenarios.len() >= 20, "expected the client, rfc and badinput sets, found {}", scenarios.len());

    let ctx = Context::new(None);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut problems = Vec::new();
    let mut ran = 0;
    for t in target::ALL.iter().filter(|t| matches!(t.kind, Kind::Host(_))) {
        if let Err(u) = t.probe(&ctx) {
            // Not a missing tool: a part of the project still to land. Said
            // loudly, and the other target still runs.
            eprintln!("!!! target {} cannot run here: {}", t.name, u.reason);
            assert!(!u.missing_tool || std::env::var("CI").is_err(), "target {}: {}", t.name, u.reason);
            continue;
        }
        for s in &scenarios {
            let tree = run::fixture_for(s, &dir).unwrap();
            let played = rt.block_on(async {
                let server = t.start(&ctx, &tree, None).await.unwrap_or_else(|e| panic!("{} on {}: {e:#}", s.id, t.name));
                let p = harness::player::play(s, server.addr, &tree, None).await;
                server.stop().await;
                p
            });
            ran += 1;
            for f in played.failures() {
                problems.push(format!("{} on {}: {f}", s.id, t.name));
            }
            let transcript = played.transcript.render(true);
            let mut settings = insta::Settings::clone_current();
            settings.set_snapshot_path(dir.join("snapshots"));
            settings.set_prepend_module_to_snapshot(false);
            settings.set_description(s.header.description.clone());
            settings.set_input_file(&s.path);
            let r = catch_unwind(AssertUnwindSafe(|| {
                settings.bind(|| insta::assert_snapshot!(s.snapshot_name(), transcript));
            }));
            if r.is_err() {
                problems.push(format!("{} on {}: transcript differs from scenarios/snapshots/{}.snap", s.id, t.name, s.snapshot_name()));
            }
        }
    }
    assert!(ran > 0, "no host target could run");
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}
