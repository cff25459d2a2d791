//! `harness fuzz` against real targets: the host server on a FAT image
//! (always) and the virtual board on TAP (as root). Each run must pass
//! every check of the fuzzer (well-formed replies, no hang, the server
//! alive, a normal session afterwards, `fsck.fat -n` clean).
//!
//! The seeds are fixed, so a failure here reproduces with the command the
//! test prints; CI also runs `harness fuzz --target sim --seconds 60` with
//! a fresh seed every time, to explore.

use std::process::Command;
use std::time::Instant;

use harness::testkit::not_run;

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

/// A fake server on loopback that frames replies wrongly or never closes:
/// the fuzzer must fail, say why, and write a crash file.
mod broken_servers {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::time::Duration;

    #[derive(Clone, Copy)]
    enum Fault {
        /// Replies end with a bare LF.
        BareLf,
        /// Correct replies, but the connection stays open after the
        /// client's FIN.
        NeverClose,
    }

    /// Serves for 60 s at most, each connection for 20 s at most.
    fn serve(fault: Fault) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        l.set_nonblocking(false).unwrap();
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            for s in l.incoming() {
                if start.elapsed() > Duration::from_secs(60) {
                    return;
                }
                let Ok(mut s) = s else { continue };
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
                    let end = match fault {
                        Fault::BareLf => "\n",
                        Fault::NeverClose => "\r\n",
                    };
                    let _ = write!(s, "220 fake\r\n");
                    let mut r = BufReader::new(s.try_clone().unwrap());
                    let mut line = Vec::new();
                    loop {
                        line.clear();
                        match r.read_until(b'\n', &mut line) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {
                                let _ = write!(s, "200 ok{end}");
                            }
                        }
                    }
                    if let Fault::NeverClose = fault {
                        std::thread::sleep(Duration::from_secs(20));
                    }
                });
            }
        });
        addr
    }

    fn crash_file(text: &str) -> String {
        let re = regex::Regex::new(r"\((/[^)]*crash-[0-9a-f]+-\d+\.txt)\)").unwrap();
        let path = re
            .captures(text)
            .unwrap_or_else(|| panic!("no crash file named in:\n{text}"))[1]
            .to_string();
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn bare_lf_replies_fail_the_run() {
        let a = serve(Fault::BareLf).to_string();
        let (ok, text) = super::fuzz(&[
            "--addr",
            &a,
            "--seconds",
            "2",
            "--connections",
            "1",
            "--seed",
            "7",
        ]);
        assert!(!ok, "passed against a broken server:\n{text}");
        assert!(text.contains("bare LF"), "{text}");
        let crash = crash_file(&text);
        assert!(
            crash.contains("--seed 0x0000000000000007 --session"),
            "{crash}"
        );
        assert!(crash.contains("raw \""), "{crash}");
    }

    #[test]
    fn a_server_that_never_closes_is_a_hang() {
        let a = serve(Fault::NeverClose).to_string();
        let (ok, text) = super::fuzz(&[
            "--addr",
            &a,
            "--seconds",
            "2",
            "--connections",
            "1",
            "--seed",
            "8",
            "--hang-after",
            "2",
        ]);
        assert!(!ok, "passed against a server that never closes:\n{text}");
        assert!(text.contains("hang: "), "{text}");
        crash_file(&text);
    }

    #[test]
    fn only_loopback() {
        let (ok, text) = super::fuzz(&["--addr", "192.0.2.7:21", "--seconds", "1"]);
        assert!(!ok && text.contains("loopback"), "{text}");
    }
}
