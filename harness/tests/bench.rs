//! `harness bench --quick` as CI runs it: it finishes, prints the table with
//! a row per target and size, and writes the CSV, Markdown and SVG files.
//! Timings are not judged (they depend on the machine's load).

use std::path::Path;
use std::process::Command;

fn bench(args: &[&str], out: &Path) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("bench")
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .expect("running harness bench");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A figure cell: a number or `n/a`.
fn figure(c: &str) -> bool {
    c == "n/a" || c.parse::<f64>().is_ok_and(|v| v > 0.0)
}

/// The outputs of a quick run on `target` are all there and well formed.
fn check_quick(target: &str, out: &Path, stdout: &str) {
    // The table: a header, then one row per target and size (quick: 64K).
    let head = stdout
        .lines()
        .position(|l| l.starts_with("target") && l.contains("RETR") && l.contains("STOR/peer"))
        .unwrap_or_else(|| panic!("no table header in:\n{stdout}"));
    let row: Vec<&str> = stdout
        .lines()
        .nth(head + 1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row.len(), 14, "row shape: {row:?}");
    assert_eq!((row[0], row[1]), (target, "64K"), "{row:?}");
    // FTP figures are numbers on every target that runs; the rest may be n/a.
    assert!(row[2].parse::<f64>().is_ok_and(|v| v > 0.0), "RETR {row:?}");
    assert!(row[3].parse::<f64>().is_ok_and(|v| v > 0.0), "STOR {row:?}");
    for c in &row[4..6] {
        assert!(figure(c), "{row:?}");
    }
    for c in &row[6..8] {
        assert!(c.ends_with('%') || *c == "n/a", "{row:?}");
    }
    assert!(stdout.contains(&format!("\n{target} (")), "{stdout}");
    assert!(stdout.contains("concurrent 64K transfers"), "{stdout}");
    assert!(stdout.contains("LIST grows"), "{stdout}");
    for f in ["bench.csv", "bench.md", "bench.svg"] {
        assert!(
            stdout.contains(&format!("wrote {}", out.join(f).display())),
            "{f} not announced:\n{stdout}"
        );
    }
    let csv = std::fs::read_to_string(out.join("bench.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("target,section,size_bytes,count,metric,value,unit,note")
    );
    let rows: Vec<&str> = lines.collect();
    // 8 throughput figures for one size, 2 x 2 concurrency, 2 x 2 listings.
    assert_eq!(rows.len(), 8 + 4 + 4, "{csv}");
    assert!(
        rows.iter().all(|r| r.starts_with(&format!("{target},"))),
        "{csv}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with(&format!("{target},throughput,65536,1,ftp_retr,"))),
        "{csv}"
    );
    let md = std::fs::read_to_string(out.join("bench.md")).unwrap();
    for want in [
        "# harness bench",
        "- CPU: ",
        "- load average",
        "- date: ",
        &format!("## {target}"),
    ] {
        assert!(md.contains(want), "{want} missing from bench.md:\n{md}");
    }
    let svg = std::fs::read_to_string(out.join("bench.svg")).unwrap();
    assert!(
        svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    assert!(svg.contains(&format!("{target} 64K")), "{svg}");
}

#[test]
fn quick_on_host_dir() {
    let out = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = bench(&["--quick", "--target", "host-dir"], out.path());
    assert!(ok, "harness bench failed:\n{stdout}\n{stderr}");
    check_quick("host-dir", out.path(), &stdout);
}

#[test]
fn quick_on_sim() {
    if let Some(why) = harness::netns::missing_privilege() {
        harness::testkit::not_run("quick_on_sim", &why);
        return;
    }
    let _one = harness::testkit::one_at_a_time();
    let out = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = bench(&["--quick", "--target", "sim"], out.path());
    assert!(ok, "harness bench failed:\n{stdout}\n{stderr}");
    check_quick("sim", out.path(), &stdout);
    // As root the virtual board has its diag services and vsftpd its namespace.
    assert!(stdout.contains("inside namespace ftpd-sim-"), "{stdout}");
    assert!(stdout.contains("Floors (issue 6):"), "{stdout}");
}

#[test]
fn bad_arguments_are_refused_clearly() {
    let out = tempfile::tempdir().unwrap();
    for (args, want) in [
        (&["--sizes", "0"][..], "--sizes 0"),
        (&["--sizes", "1G"][..], "--sizes 1G"),
        (&["--repeat", "0"][..], "--repeat"),
        (&["--target", "nope"][..], "no such target"),
    ] {
        let (ok, stdout, stderr) = bench(args, out.path());
        assert!(!ok, "{args:?} was accepted:\n{stdout}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
