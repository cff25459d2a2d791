//! Replay of real captures: curl against the host server, captured with
//! tcpdump on loopback, replayed against a fresh host server.
//!
//! Needs `tcpdump` (and the right to capture on `lo`) and `curl`. Without
//! them the test fails under CI=true and says so loudly otherwise.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use harness::fixture::Tree;
use harness::replay::{self, Compare, Input};
use harness::target::{self, Context, Target};

fn tools_present() -> bool {
    let missing: Vec<&str> = ["tcpdump", "curl"]
        .into_iter()
        .filter(|t| !target::have_tool(t))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "replay test needs {} (apt-get install -y tcpdump curl)",
        missing.join(" and ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{msg}");
    }
    eprintln!("\n!!!!!!!!!! SKIPPED: {msg} !!!!!!!!!!\n");
    false
}

fn curl(args: &[&str]) -> std::process::Output {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Capture curl sessions against a fresh host server into `pcap`, and keep
/// curl -v's control-channel log in `log`.
fn capture(pcap: &Path, log: &Path, upload: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ctx = Context::new(None);
    let tree = Tree::load(
        &target::workspace_root().join("scenarios/fixtures"),
        "basic",
    )
    .unwrap();
    let host = Target::by_name("host-dir").unwrap();
    let server = rt.block_on(host.start(&ctx, &tree, None)).unwrap();
    let port = server.addr.port();
    let range = target::pasv_range(port);
    let filter = format!("tcp and host 127.0.0.1 and (port {port} or portrange {range})");
    let mut td = Command::new("tcpdump")
        .args(["-i", "lo", "-s", "0", "-U", "-n", "--immediate-mode", "-w"])
        .arg(pcap)
        .arg(&filter)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // tcpdump says "listening on lo" once it captures.
    let mut err = BufReader::new(td.stderr.take().unwrap());
    let mut line = String::new();
    for _ in 0..5 {
        line.clear();
        if err.read_line(&mut line).unwrap() == 0 || line.contains("listening on") {
            break;
        }
    }
    assert!(
        line.contains("listening on"),
        "tcpdump did not start: {line}"
    );
    let base = format!("ftp://test:test@{}", server.addr);
    let dl = curl(&["-v", &format!("{base}/sub/file.bin"), "-o", "/dev/null"]);
    curl(&[&format!("{base}/")]);
    curl(&[
        "-T",
        upload.to_str().unwrap(),
        &format!("{base}/sub/upload.bin"),
    ]);
    curl(&["-l", &format!("{base}/sub/")]);
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-INT", &td.id().to_string()])
        .status();
    let status = td.wait().unwrap();
    assert!(
        status.success() || status.code() == Some(0) || status.code().is_none(),
        "tcpdump: {status}"
    );
    rt.block_on(server.stop());
    std::fs::write(log, &dl.stderr).unwrap();
}

#[test]
fn curl_session_captured_with_tcpdump_replays_and_agrees() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (pcap, log, up) = (
        dir.path().join("s.pcap"),
        dir.path().join("curl.log"),
        dir.path().join("up.bin"),
    );
    std::fs::write(&up, harness::fixture::filler(3000)).unwrap();
    capture(&pcap, &log, &up);

    let Input::Session(s) = replay::load(&pcap).unwrap() else {
        panic!("a pcap is a session")
    };
    assert_eq!(s.connections, 4, "{s:#?}");
    let retr = s
        .exchanges
        .iter()
        .find(|e| e.command.as_deref() == Some("RETR file.bin"))
        .expect("RETR in the capture");
    assert_eq!(
        retr.data.as_ref().and_then(|d| d.bytes.clone()),
        Some(harness::fixture::filler(4096)),
        "the data connection was matched"
    );
    let stor = s
        .exchanges
        .iter()
        .find(|e| e.command.as_deref() == Some("STOR upload.bin"))
        .expect("STOR in the capture");
    assert_eq!(stor.data.as_ref().and_then(|d| d.len), Some(3000));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ctx = Context::new(None);
    let host = Target::by_name("host-dir").unwrap();
    let input = Input::Session(s);
    let o = rt
        .block_on(replay::replay(&ctx, &host, &input, Compare::Code, None))
        .unwrap();
    let view = o.side_by_side();
    assert!(o.agrees(), "{view}\n{}", o.summary());
    assert!(
        view.contains("data: 4096 bytes, the same as captured"),
        "{view}"
    );
    // With a wrong login the replay must disagree (a test that can fail).
    let bad = ("test".to_string(), "wrong".to_string());
    let o = rt
        .block_on(replay::replay(
            &ctx,
            &host,
            &input,
            Compare::Class,
            Some(&bad),
        ))
        .unwrap();
    assert!(!o.agrees(), "{}", o.side_by_side());

    // curl -v's log of the download replays too.
    let text = replay::load(&log).unwrap();
    let o = rt
        .block_on(replay::replay(&ctx, &host, &text, Compare::Code, None))
        .unwrap();
    assert!(o.agrees(), "{}\n{}", o.side_by_side(), o.summary());

    // The same capture cut short is refused with a clear error, from the CLI.
    let bytes = std::fs::read(&pcap).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("replay")
        .arg(&cut)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("damaged") && err.contains("middle of a packet"),
        "{err}"
    );
    // And the whole capture, from the CLI, agrees (exit 0).
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("replay")
        .arg(&pcap)
        .arg("--strict")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The same capture as pcapng (what Wireshark and tshark write).
    if target::have_tool("editcap") {
        let ng = dir.path().join("s.pcapng");
        assert!(
            Command::new("editcap")
                .args(["-F", "pcapng"])
                .arg(&pcap)
                .arg(&ng)
                .status()
                .unwrap()
                .success()
        );
        assert_eq!(
            &std::fs::read(&ng).unwrap()[..4],
            b"\x0a\x0d\x0d\x0a",
            "a pcapng section header"
        );
        let out = Command::new(env!("CARGO_BIN_EXE_harness"))
            .arg("replay")
            .arg(&ng)
            .arg("--strict")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    } else {
        let msg = "the pcapng part needs editcap (apt-get install -y tshark)";
        assert!(std::env::var("CI").is_err(), "{msg}");
        eprintln!("\n!!!!!!!!!! SKIPPED: {msg} !!!!!!!!!!\n");
    }
}
