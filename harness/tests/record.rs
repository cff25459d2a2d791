//! `harness serve --record FILE`: a session played by hand (here: curl, in
//! passive and active mode) becomes a scenario that replays cleanly.
//!
//! Needs `curl`: fails under CI=true without it, says so loudly otherwise.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use harness::fixture::Tree;
use harness::scenario::Scenario;
use harness::target::{self, Context, Target};

#[test]
fn a_recorded_curl_session_is_a_scenario_that_plays_back() {
    if !target::have_tool("curl") {
        let msg = "record test needs curl (apt-get install -y curl)";
        assert!(std::env::var("CI").is_err(), "{msg}");
        eprintln!("\n!!!!!!!!!! SKIPPED: {msg} !!!!!!!!!!\n");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("recorded.ftp");
    let up = dir.path().join("up.bin");
    std::fs::write(&up, harness::fixture::filler(3000)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "serve",
            "--target",
            "host",
            "--fixture",
            "basic",
            "--record",
        ])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("READY ftp://")
        .unwrap_or_else(|| panic!("no READY line: {line:?}"))
        .to_string();
    let base = format!("ftp://test:test@{addr}");
    let curl = |args: &[&str]| {
        let o = Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    };
    let got = curl(&[&format!("{base}/sub/file.bin")]);
    assert_eq!(
        got,
        harness::fixture::filler(4096),
        "the proxy relays data unchanged"
    );
    curl(&["-T", up.to_str().unwrap(), &format!("{base}/sub/up.bin")]);
    let listing = curl(&["-P", "127.0.0.1", &format!("{base}/sub/")]);
    assert!(
        String::from_utf8_lossy(&listing).contains("up.bin"),
        "active mode through the proxy"
    );
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());

    let text = std::fs::read_to_string(&out).unwrap();
    for want in [
        "fixture: basic",
        "> RETR file.bin",
        "recv any",
        "send filler 3000",
        "> EPRT *",
        "expect close",
    ] {
        assert!(text.contains(want), "`{want}` missing from:\n{text}");
    }
    // The recording plays back against a fresh server without a failed check.
    let s = Scenario::parse("recorded/session", &text).unwrap();
    let tree = Tree::load(
        &target::workspace_root().join("scenarios/fixtures"),
        "basic",
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let played = rt.block_on(async {
        let server = Target::by_name("host-dir")
            .unwrap()
            .start(&Context::new(None), &tree, None)
            .await
            .unwrap();
        let p = harness::player::play(&s, server.addr, &tree, None).await;
        server.stop().await;
        p
    });
    assert!(
        played.failures().is_empty(),
        "{}",
        played.transcript.render(false)
    );
}
