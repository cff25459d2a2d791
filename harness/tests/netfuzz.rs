//! `harness fuzz` against real targets: the host server on a FAT image
//! (always) and the virtual board on TAP (as root). Each run must pass
//! every check of the fuzzer (well-formed replies, no hang, the server
//! alive, a normal session afterwards, `fsck.fat -n` clean).
//!
//! The seeds are fixed, so a failure here reproduces with the command the
//! test prints; CI also runs `harness fuzz --target sim --seconds 60` with
//! a fresh seed every time, to explore.

use std::io::Write;
use std::process::Command;
use std::time::Instant;

fn under_ci() -> bool {
    harness::snapshot::is_ci()
}

/// Fails under CI, says so loudly otherwise; the caller then returns.
fn not_run(test: &str, why: &str) {
    let msg = format!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !!! {test}: NOT RUN: {why}\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
    assert!(!under_ci(), "{msg}");
    let _ = std::io::stderr().write_all(msg.as_bytes());
}

/// `harness fuzz ARGS`: its exit status and output, echoed.
fn fuzz(args: &[&str]) -> (bool, String) {
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("fuzz")
        .args(args)
        .output()
        .expect("running harness fuzz");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "$ harness fuzz {} ({:.1} s)\n{text}",
        args.join(" "),
        t0.elapsed().as_secs_f64()
    );
    (out.status.success(), text)
}

fn assert_passed(ok: bool, text: &str, what: &str) {
    assert!(ok, "{what} failed:\n{text}");
    for needle in ["PASS", "normal session afterwards: login", "checksum right"] {
        assert!(text.contains(needle), "{what}: no `{needle}` in:\n{text}");
    }
    if !text.contains("fsck.fat -n: clean") {
        // Only when fsck.fat is missing (the fuzzer fails under CI then).
        assert!(
            text.contains("NOT CHECKED"),
            "{what}: the image was not checked:\n{text}"
        );
        not_run(what, "the image check (fsck.fat is not installed)");
    }
}

#[test]
fn host_fat_10s() {
    let (ok, text) = fuzz(&[
        "--target",
        "host-fat",
        "--seconds",
        "10",
        "--seed",
        "0x5eed0001",
    ]);
    assert_passed(ok, &text, "harness fuzz --target host-fat");
    // Something was fuzzed, of every kind.
    let re =
        regex::Regex::new(r"(\d+) fuzz sessions and (\d+) split sweeps.* (\d+) data connections")
            .unwrap();
    let c = re.captures(&text).expect("a summary line");
    let n = |i: usize| c[i].parse::<u64>().unwrap();
    assert!(n(1) >= 10, "only {} sessions in 10 s", n(1));
    assert!(n(2) >= 1, "no split sweep in 10 s");
    assert!(n(3) >= 1, "no data connection in 10 s");
}

/// One session of a seed plays alone (what a crash file says to run).
#[test]
fn one_session_replays_alone() {
    let (ok, text) = fuzz(&[
        "--target",
        "host-fat",
        "--seconds",
        "5",
        "--seed",
        "0x5eed0002",
        "--session",
        "3",
    ]);
    assert_passed(ok, &text, "harness fuzz --session 3");
    assert!(
        text.contains("and 1 split sweeps"),
        "session 3 is a split sweep:\n{text}"
    );
}

#[test]
fn unknown_and_unsafe_targets_are_refused() {
    let (ok, text) = fuzz(&["--target", "host-dir", "--seconds", "1"]);
    assert!(!ok && text.contains("host-fat"), "{text}");
    let (ok, text) = fuzz(&["--target", "nothing", "--seconds", "1"]);
    assert!(!ok && text.contains("unknown target"), "{text}");
}

#[test]
fn sim_30s() {
    let test = "netfuzz sim_30s";
    if let Some(why) = harness::netns::missing_privilege() {
        not_run(test, &why);
        return;
    }
    let ctx = harness::target::Context::new(None);
    let t = harness::target::Target::by_name("sim").unwrap();
    if let Err(u) = t.probe(&ctx) {
        not_run(test, &format!("target sim cannot run here: {}", u.reason));
        return;
    }
    let (ok, text) = fuzz(&["--target", "sim", "--seconds", "30", "--seed", "0x5eed0003"]);
    assert_passed(ok, &text, "harness fuzz --target sim");
}
