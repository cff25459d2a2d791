//! `harness bench --footprint --no-qemu`: the report is printed and written
//! (Markdown and CSV), with every figure issue 6 asks for, and
//! `--check-floors` fails exactly when a floor is not met. Builds the probes
//! and both boards' firmware (the Cortex-M targets must be installed:
//! without them the test fails under `CI=true` and says loudly that it did
//! not run otherwise).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use harness::testkit::{not_run, run};

fn installed_targets() -> String {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn footprint(out: &Path, extra: &[&str]) -> harness::testkit::Output {
    run(
        Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(["bench", "--footprint", "--no-qemu", "--out"])
            .arg(out)
            .args(extra),
        Duration::from_secs(900),
    )
}

/// The number in the Markdown row that starts with `| item |`, column `col`.
fn cell(md: &str, item: &str, col: usize) -> Option<u64> {
    let line = md.lines().find(|l| l.starts_with(&format!("| {item} |")))?;
    let c = line.split('|').nth(col + 2)?.trim().replace(' ', "");
    c.parse().ok()
}

#[test]
fn footprint_report_without_qemu() {
    let have = installed_targets();
    for t in ["thumbv7m-none-eabi", "thumbv7em-none-eabihf"] {
        if !have.lines().any(|l| l.trim() == t) {
            not_run(
                "footprint_report_without_qemu",
                &format!("rustup target {t} is not installed (rustup target add {t})"),
            );
            return;
        }
    }
    let out = tempfile::tempdir().unwrap();
    let o = footprint(out.path(), &[]);
    assert!(
        o.status.success(),
        "harness bench --footprint --no-qemu failed:\n{}\n{}",
        o.stdout(),
        o.stderr()
    );
    let md = std::fs::read_to_string(out.path().join("footprint.md")).expect("footprint.md");
    let csv = std::fs::read_to_string(out.path().join("footprint.csv")).expect("footprint.csv");
    // What is printed is what is written.
    assert!(o.stdout().contains(md.trim()), "stdout:\n{}", o.stdout());

    // The engine at both opt-levels, and its floor.
    let z = cell(&md, ".text + .rodata", 0).expect("engine flash at z");
    let s = cell(&md, ".text + .rodata", 1).expect("engine flash at s");
    assert!(z > 1000 && s > 1000, "engine flash {z} / {s}:\n{md}");
    // One session, split into engine state and socket buffers.
    let state = cell(&md, "engine state (a session slot of the server)", 0).unwrap();
    let buffers = cell(&md, "socket buffers", 0).unwrap();
    let sock = cell(&md, "smoltcp socket state (2 sockets)", 0).unwrap();
    assert_eq!(
        cell(&md, "one session in all", 0),
        Some(state + buffers + sock),
        "{md}"
    );
    // The whole firmware of both boards (and the diag build).
    for col in 0..3 {
        let flash = cell(&md, "flash (vectors + .text + .rodata + .data)", col).unwrap();
        let ram = cell(&md, "static RAM (.data + .bss)", col).unwrap();
        let stack = cell(&md, "stack area", col).unwrap();
        assert!(flash > 10_000 && ram > 10_000 && stack > 1000, "{md}");
    }
    // On the QEMU board, statics + stack + the boot parameters are its SRAM.
    let qemu_ram = cell(&md, "static RAM (.data + .bss)", 0).unwrap();
    let qemu_stack = cell(&md, "stack area", 0).unwrap();
    assert_eq!(qemu_ram + qemu_stack + 64, 64 * 1024, "{md}");
    // The stack is not measured, and the report says so.
    assert!(md.contains("not measured (--no-qemu)"), "{md}");
    assert!(
        md.contains("| QEMU firmware: 4 sessions, stack peak + 4 KB margin | – | margin ≥ 4096, four at once served | not measured |"),
        "{md}"
    );
    // The floors have verdicts.
    let engine_floor = md
        .lines()
        .find(|l| l.starts_with("| engine flash at opt-level z |"))
        .expect("engine floor row");
    assert_eq!(
        engine_floor.ends_with("| ok |"),
        z < 16 * 1024,
        "{engine_floor}"
    );
    assert_eq!(
        md.lines()
            .find(|l| l.starts_with("| engine state of one session |"))
            .unwrap()
            .ends_with("| ok |"),
        state < 1024
    );
    // The CSV holds the same figures.
    assert!(csv.starts_with("table,item,column,bytes,note\n"), "{csv}");
    assert!(
        csv.lines().any(|l| l
            == format!(
                "engine flash,.text + .rodata,opt-level z,{z},engine probe − baseline probe"
            )),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("floor,engine state of one session,")),
        "{csv}"
    );

    // --check-floors: non-zero exactly when the report has a NOT MET.
    let out2 = tempfile::tempdir().unwrap();
    let o = footprint(out2.path(), &["--check-floors"]);
    let md2 = std::fs::read_to_string(out2.path().join("footprint.md")).unwrap();
    assert_eq!(
        o.status.success(),
        !md2.contains("NOT MET"),
        "exit status {:?} with the floors:\n{md2}",
        o.status
    );
}
