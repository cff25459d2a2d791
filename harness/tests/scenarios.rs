//! `cargo test -p harness`: every scenario on the host targets and the
//! virtual board (`sim`, on TAP in a namespace of its own: needs root),
//! asserted through insta against `scenarios/snapshots/`, the same files
//! `cargo run -p harness` compares with (so `cargo insta review` works on
//! what either of them found). The QEMU targets play the same scenarios in
//! `cargo run -p harness` (they take a minute each; `.ci/test` runs it).

use std::panic::{AssertUnwindSafe, catch_unwind};

use harness::run::{self, Options};
use harness::target::{self, Context, Kind};

#[test]
fn every_scenario_matches_its_snapshot_on_host_and_sim() {
    let dir = target::workspace_root().join("scenarios");
    let opts = Options::new(dir.clone());
    let mut errors = Vec::new();
    let scenarios = run::load_scenarios(&opts, &mut errors);
    assert!(
        errors.is_empty(),
        "scenarios that do not parse:\n{}",
        errors.join("\n")
    );
    assert!(
        scenarios.len() >= 20,
        "expected the client, rfc and badinput sets, found {}",
        scenarios.len()
    );

    let ctx = Context::new(None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut problems = Vec::new();
    let mut ran = 0;
    for t in target::ALL
        .iter()
        .filter(|t| matches!(t.kind, Kind::Host(_) | Kind::Sim))
    {
        if let Err(u) = t.probe(&ctx) {
            // Said loudly, and the other targets still run; a missing tool
            // (root for the namespace of `sim`) fails under CI.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!(
                    "\n!!!!!!!! target {} NOT RUN: {} !!!!!!!!\n",
                    t.name, u.reason
                )
                .as_bytes(),
            );
            assert!(
                !u.missing_tool || !harness::snapshot::is_ci(),
                "target {}: {}",
                t.name,
                u.reason
            );
            continue;
        }
        for s in &scenarios {
            let tree = run::fixture_for(s, &dir).unwrap();
            let played = rt.block_on(async {
                let server = t
                    .start(&ctx, &tree, None)
                    .await
                    .unwrap_or_else(|e| panic!("{} on {}: {e:#}", s.id, t.name));
                let p = target::play_on(&server, s, &tree, false).await;
                let log = server.stop().await;
                p.unwrap_or_else(|e| panic!("{} on {}: {e:#}\n{log}", s.id, t.name))
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
                problems.push(format!(
                    "{} on {}: transcript differs from scenarios/snapshots/{}.snap",
                    s.id,
                    t.name,
                    s.snapshot_name()
                ));
            }
        }
    }
    assert!(ran > 0, "no host target could run");
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
