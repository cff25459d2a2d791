//! What the board targets need besides a namespace: the QEMU binaries, the
//! firmware ELF, and SD images that hold a scenario's fixture tree.
//!
//! - QEMU: target `qemu` runs the system's `qemu-system-arm` (or `$QEMU`),
//!   target `qemu-10` the second QEMU that `.ci/run` unpacks into
//!   `/opt/qemu10/root` (or the first path in `$QEMU_EXTRA`). They are
//!   started only through `qemu/run-lm3s6965.sh`, the one description of the
//!   board's command line.
//! - Firmware: `cargo build --release` in `firmware/board-lm3s6965` (a
//!   workspace of its own, built for `thumbv7m-none-eabi`), once per run; or
//!   `$HARNESS_FIRMWARE`.
//! - Fixture images: a fixture tree is put on a fresh FAT32 image once per
//!   run, over FTP, by the host server (`sim --image`, the same FAT code as
//!   the boards); every scenario then boots on a sparse copy of it, so all
//!   scenarios that share a fixture start from byte-identical cards.

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::target::workspace_root;

/// Which of the two QEMUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Which {
    /// `$QEMU` or `qemu-system-arm` on PATH (Debian bookworm: 7.2).
    System,
    /// `$QEMU_EXTRA` (first path) or the 10.0.2 that `.ci/run` unpacks.
    Extra,
}

/// Where `.ci/run` unpacks bookworm-backports' QEMU 10.0.2.
pub const QEMU10_DEFAULT: &str = "/opt/qemu10/root/usr/bin/qemu-system-arm";

/// A QEMU that can run the board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Qemu {
    pub path: PathBuf,
    /// `QEMU emulator version 7.2.22 (Debian ...)`.
    pub version: String,
}

/// Why a QEMU cannot be used, and whether that is a missing tool (a failure
/// under `CI=true`) or merely an optional one that is absent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoQemu {
    pub reason: String,
    pub missing_tool: bool,
}

fn on_path(bin: &str) -> Option<PathBuf> {
    if bin.contains('/') {
        return Path::new(bin).is_file().then(|| PathBuf::from(bin));
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// Find one of the QEMUs and ask its version.
pub fn find_qemu(which: Which) -> Result<Qemu, NoQemu> {
    let (name, must) = match which {
        Which::System => (
            std::env::var("QEMU").unwrap_or_else(|_| "qemu-system-arm".into()),
            true,
        ),
        Which::Extra => match std::env::var("QEMU_EXTRA")
            .ok()
            .and_then(|v| v.split(':').find(|s| !s.is_empty()).map(String::from))
        {
            Some(p) => (p, true),
            None => (QEMU10_DEFAULT.to_string(), false),
        },
    };
    let Some(path) = on_path(&name) else {
        let reason = match which {
            Which::System => {
                format!("{name} is not installed (apt-get install qemu-system-arm, or set QEMU)")
            }
            Which::Extra if must => format!("QEMU_EXTRA names {name}, which does not exist"),
            Which::Extra => format!(
                "no second QEMU at {QEMU10_DEFAULT} (.ci/run unpacks 10.0.2 there; or set QEMU_EXTRA)"
            ),
        };
        // An absent optional second QEMU is still a failure under CI,
        // where .ci/run always provides it.
        return Err(NoQemu {
            reason,
            missing_tool: true,
        });
    };
    let out = std::process::Command::new(&path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NoQemu {
            reason: format!("{}: {e}", path.display()),
            missing_tool: true,
        })?;
    let version = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if !out.status.success() || version.is_empty() {
        return Err(NoQemu {
            reason: format!(
                "{} --version failed: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            missing_tool: true,
        });
    }
    Ok(Qemu { path, version })
}

/// `qemu/run-lm3s6965.sh`.
pub fn run_script() -> PathBuf {
    workspace_root().join("qemu/run-lm3s6965.sh")
}

/// The board crate's directory.
pub fn board_dir() -> PathBuf {
    workspace_root().join("firmware/board-lm3s6965")
}

/// Build the QEMU board's firmware (release) and return the ELF's path.
/// `$HARNESS_FIRMWARE` names a prebuilt ELF instead.
pub fn build_firmware() -> Result<PathBuf, String> {
    build_firmware_with("HARNESS_FIRMWARE", &[])
}

/// The firmware with its diagnostic services (feature `diag`: discard,
/// chargen, sdbench), for `harness bench`; built into its own target dir so
/// that it never replaces the normal one. `$HARNESS_DIAG_FIRMWARE` names a
/// prebuilt ELF instead.
pub fn build_diag_firmware() -> Result<PathBuf, String> {
    build_firmware_with(
        "HARNESS_DIAG_FIRMWARE",
        &["--features", "diag", "--target-dir", "target/diag"],
    )
}

fn build_firmware_with(env: &str, extra: &[&str]) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{env}={} does not exist", p.display()))
        };
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let child = std::process::Command::new(cargo)
        .args(["build", "--release", "--message-format=json"])
        .args(extra)
        .current_dir(board_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let out = crate::target::output_saying_when_slow(
        child,
        "harness: building the QEMU board's firmware (cargo build --release in firmware/board-lm3s6965)...",
    )
    .map_err(|e| format!("cargo build of the firmware: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        return Err(format!(
            "building the firmware (cargo build --release in firmware/board-lm3s6965) failed \
             (rustup target add thumbv7m-none-eabi?):\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    let re = regex::Regex::new(r#""executable":"([^"]+)""#).unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\"") && l.contains("board-lm3s6965"))
        .filter_map(|l| {
            re.captures(l)
                .map(|c| PathBuf::from(c[1].replace("\\\\", "\\")))
        })
        .next_back()
        .ok_or_else(|| "cargo built the firmware but reported no executable".to_string())
}

/// `n` consecutive ports on 127.0.0.1 that were free a moment ago (QEMU's
/// user networking forwards the passive range 1:1), and one more for FTP.
pub fn free_ports(n: u16) -> Result<(u16, u16), String> {
    let single = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| e.to_string())?
        .local_addr()
        .map_err(|e| e.to_string())?
        .port();
    let seed = (std::process::id() as u64).wrapping_mul(7919)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64);
    'outer: for attempt in 0..200u64 {
        let base = 40_000 + ((seed.wrapping_add(attempt * 97)) % 20_000) as u16;
        if (base..base + n).contains(&single) {
            continue;
        }
        let mut held = Vec::new();
        for p in base..base + n {
            match TcpListener::bind((Ipv4Addr::LOCALHOST, p)) {
                Ok(l) => held.push(l),
                Err(_) => continue 'outer,
            }
        }
        return Ok((single, base));
    }
    Err("no run of free ports on 127.0.0.1".into())
}

/// Copy an image keeping its holes (a fresh 64 MiB image is a few KB on
/// disk; copying it per scenario must stay cheap).
pub fn sparse_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut src = std::fs::File::open(from)?;
    let len = src.metadata()?.len();
    let mut dst = std::fs::File::create(to)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = 0u64;
    while pos < len {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|&b| b == 0) {
            dst.seek(SeekFrom::Current(n as i64))?;
        } else {
            dst.write_all(&buf[..n])?;
        }
        pos += n as u64;
    }
    dst.set_len(len)?;
    dst.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_copy_is_exact() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        let mut data = vec![0u8; 300_000];
        data[70_000..70_010].copy_from_slice(b"0123456789");
        data[299_999] = 1;
        std::fs::write(&a, &data).unwrap();
        sparse_copy(&a, &d.path().join("b")).unwrap();
        assert_eq!(std::fs::read(d.path().join("b")).unwrap(), data);
        // Trailing zeros are kept as length.
        std::fs::write(&a, [1u8, 0, 0, 0]).unwrap();
        sparse_copy(&a, &d.path().join("c")).unwrap();
        assert_eq!(std::fs::read(d.path().join("c")).unwrap(), [1, 0, 0, 0]);
    }

    #[test]
    fn free_port_runs() {
        let (one, base) = free_ports(10).unwrap();
        assert!(!(base..base + 10).contains(&one));
    }
}
