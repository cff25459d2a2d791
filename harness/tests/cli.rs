//! The `harness` binary as users and CI call it.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn harness() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_harness"));
    c.env_remove("INSTA_UPDATE");
    c
}

/// A scenarios folder with one scenario and the fixture it needs.
fn scenarios_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("demo")).unwrap();
    std::fs::create_dir_all(d.path().join("fixtures")).unwrap();
    std::fs::write(
        d.path().join("fixtures/one.tree"),
        "file hello.txt text \"hello\\r\\n\"\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("demo/size.ftp"),
        "description: SIZE of a fixture file\nfixture: one\nlogin: test test\n---\nconnect\n< 220\nlogin\n> SIZE hello.txt\n< 213 7\n> QUIT\n< 221\n",
    )
    .unwrap();
    d
}

fn run(dir: &Path, extra: &[&str], ci: bool) -> (i32, String) {
    let mut c = harness();
    c.args(["run", "--quiet", "-t", "host-dir", "--scenarios-dir"])
        .arg(dir)
        .args(extra);
    if ci {
        c.env("CI", "true");
    } else {
        c.env_remove("CI");
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn run_new_then_accepted_then_mismatch_with_diff() {
    let d = scenarios_dir();
    let snap = d.path().join("snapshots/demo__size.snap");
    // No snapshot: a failure, and under CI nothing is written.
    let (code, out) = run(d.path(), &[], true);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("NEW"), "{out}");
    assert!(!snap.exists() && !snap.with_extension("snap.new").exists());
    // Accepted (outside CI), then the same run agrees.
    let (code, out) = run(d.path(), &["--accept"], false);
    assert_eq!(code, 1, "{out}");
    assert!(snap.exists(), "{out}");
    let (code, out) = run(d.path(), &[], true);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("demo/size") && out.contains(" ok ") && out.contains("1 passed, 0 failed"),
        "{out}"
    );
    // Someone edits the snapshot: the run fails and shows the diff.
    let text = std::fs::read_to_string(&snap)
        .unwrap()
        .replace("213 7", "213 8");
    std::fs::write(&snap, text).unwrap();
    let (code, out) = run(d.path(), &[], true);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("MISMATCH") && out.contains("-S: 213 8") && out.contains("+S: 213 7"),
        "{out}"
    );
}

#[test]
fn failed_check_is_reported_and_never_accepted() {
    let d = scenarios_dir();
    let f = d.path().join("demo/size.ftp");
    std::fs::write(
        &f,
        std::fs::read_to_string(&f)
            .unwrap()
            .replace("< 213 7", "< 213 9"),
    )
    .unwrap();
    let (code, out) = run(d.path(), &["--accept"], false);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL") && out.contains("expected 213 9, got 213 7"),
        "{out}"
    );
    assert!(!d.path().join("snapshots/demo__size.snap").exists());
}

#[test]
fn unparsable_scenario_names_file_and_line() {
    let d = scenarios_dir();
    std::fs::write(
        d.path().join("demo/bad.ftp"),
        "description: x\n---\nconnect\n< 2\n",
    )
    .unwrap();
    let (code, out) = run(d.path(), &["-s", "demo/*"], true);
    assert_ne!(code, 0);
    assert!(out.contains("bad.ftp:4:"), "{out}");
}

#[test]
fn unavailable_targets_are_named() {
    let d = scenarios_dir();
    let mut c = harness();
    // A QEMU that does not exist: the target cannot run, and says why.
    let out = c
        .args(["run", "--quiet", "-t", "qemu", "--scenarios-dir"])
        .arg(d.path())
        .env("QEMU", "/nonexistent/qemu-system-arm")
        .env_remove("CI")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text.contains("target qemu did not run: /nonexistent/qemu-system-arm is not installed"),
        "{text}"
    );
    // Under CI a missing QEMU is a failure, said so in the table.
    let out = harness()
        .args([
            "run",
            "--quiet",
            "-t",
            "host-dir",
            "-t",
            "qemu",
            "--scenarios-dir",
        ])
        .arg(d.path())
        .env("QEMU", "/nonexistent/qemu-system-arm")
        .env("CI", "true")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("target qemu did not run (FAILURE under CI)"),
        "{text}"
    );
}

#[test]
fn serve_prints_ready_and_serves() {
    let mut child = harness()
        .args(["serve", "--target", "host", "--fixture", "basic"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let result = (|| {
        let addr = line
            .trim()
            .strip_prefix("READY ftp://")
            .ok_or(format!("no READY line: {line:?}"))?;
        let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).map_err(|e| e.to_string())?;
        if &buf[..3] != b"220" {
            return Err(format!("greeting {buf:?}"));
        }
        Ok(())
    })();
    // Ctrl-C: the harness stops its server and exits cleanly.
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    result.unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn image_create_formats_and_refuses_sizes_qemu_cannot_use() {
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("sd.img");
    let out = harness()
        .args(["image", "create"])
        .arg(&img)
        .args(["--size", "64M"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 64 << 20);
    let bad = d.path().join("bad.img");
    let out = harness()
        .args(["image", "create"])
        .arg(&bad)
        .args(["--size", "48M"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a power of two"));
    assert!(!bad.exists());
}
