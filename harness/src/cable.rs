//! Cable pull: the board's Ethernet link taken down and brought back while
//! it runs, the same call for both board kinds (issue 7, "Faults"):
//!
//! - QEMU: `set_link stellaris_enet.0 off|on` through the QMP socket the
//!   harness gives every QEMU board (`Server::qmp`, `qemu/run-lm3s6965.sh
//!   --qmp`). QEMU drops every frame both ways while the link is down; the
//!   firmware is not told (the Stellaris model has no PHY), as with a cable
//!   pulled at the far end of a switch.
//! - The virtual board (`sim --tap`): the host side of its TAP device down
//!   and up (`ip -n NS link set ftpd0 down`). The kernel drops what the
//!   host sends and fails the board's writes with `EIO`, which the board
//!   counts as frames lost on the wire (`ftpd_app::host::Tap`).
//!
//! [`Qmp`] is a small QMP client (one JSON object per line): greeting,
//! `qmp_capabilities`, then commands; events in between are skipped.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::target::Server;

/// The QEMU board's NIC, as QMP names it.
pub const QEMU_NIC: &str = "stellaris_enet.0";
/// How long one QMP exchange may take.
pub const QMP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest QMP line accepted.
const MAX_LINE: u64 = 1 << 20;
/// Most event lines skipped while waiting for one command's answer.
const MAX_EVENTS: usize = 10_000;

/// A board's cable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cable {
    /// QEMU: the NIC's link through QMP.
    Qmp { socket: PathBuf, nic: String },
    /// The virtual board: the TAP device `dev` in namespace `netns`.
    Tap { netns: String, dev: String },
}

impl Cable {
    /// The cable of a running board: QMP when it has a socket (QEMU), else
    /// its TAP device (the virtual board).
    pub fn of(server: &Server) -> anyhow::Result<Cable> {
        if let Some(q) = &server.qmp {
            return Ok(Cable::Qmp {
                socket: q.clone(),
                nic: QEMU_NIC.to_string(),
            });
        }
        if let Some(ns) = &server.netns {
            return Ok(Cable::Tap {
                netns: ns.clone(),
                dev: crate::netns::TAP.to_string(),
            });
        }
        bail!(
            "target {} has no cable to pull (neither a QMP socket nor a TAP device)",
            server.target
        )
    }

    /// Take the link down.
    pub fn pull(&self) -> anyhow::Result<()> {
        self.set(false)
    }

    /// Bring the link back.
    pub fn plug(&self) -> anyhow::Result<()> {
        self.set(true)
    }

    pub fn set(&self, up: bool) -> anyhow::Result<()> {
        match self {
            Cable::Qmp { socket, nic } => {
                let mut q = Qmp::connect(socket)?;
                q.execute(
                    "set_link",
                    Some(&format!(r#"{{"name":{},"up":{up}}}"#, json_string(nic))),
                )
                .with_context(|| format!("set_link {nic} up={up}"))?;
                Ok(())
            }
            Cable::Tap { netns, dev } => {
                let out = Command::new("ip")
                    .args(["-n", netns, "link", "set", dev])
                    .arg(if up { "up" } else { "down" })
                    .output()
                    .context("running ip (iproute2)")?;
                if !out.status.success() {
                    bail!(
                        "ip -n {netns} link set {dev} {}: {}",
                        if up { "up" } else { "down" },
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
                Ok(())
            }
        }
    }
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A QMP connection in command mode.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connect, read the greeting and enter command mode. QEMU serves one
    /// client at a time (the next one is greeted when the first leaves), and
    /// its socket appears shortly after QEMU starts: connecting is retried
    /// for [`QMP_TIMEOUT`].
    pub fn connect(path: &Path) -> anyhow::Result<Qmp> {
        let deadline = Instant::now() + QMP_TIMEOUT;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("QMP socket {}", path.display()));
                }
            }
        };
        stream.set_read_timeout(Some(QMP_TIMEOUT))?;
        stream.set_write_timeout(Some(QMP_TIMEOUT))?;
        let mut q = Qmp {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        let greeting = q.line()?;
        if !greeting.trim_start().starts_with(r#"{"QMP""#) {
            bail!("not a QMP greeting: {greeting:?}");
        }
        q.execute("qmp_capabilities", None)?;
        Ok(q)
    }

    fn line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        let n = (&mut self.reader)
            .take(MAX_LINE)
            .read_line(&mut line)
            .context("reading from QMP")?;
        if n == 0 {
            bail!("QMP closed the connection");
        }
        if !line.ends_with('\n') {
            bail!("QMP line longer than {MAX_LINE} bytes or cut short");
        }
        Ok(line.trim_end().to_string())
    }

    /// Run `command` with `arguments` (a JSON object) and return its
    /// `{"return": ...}` line; an `{"error": ...}` answer is an error.
    pub fn execute(&mut self, command: &str, arguments: Option<&str>) -> anyhow::Result<String> {
        let msg = match arguments {
            Some(a) => format!(r#"{{"execute":{},"arguments":{a}}}"#, json_string(command)),
            None => format!(r#"{{"execute":{}}}"#, json_string(command)),
        };
        self.writer
            .write_all(format!("{msg}\n").as_bytes())
            .context("writing to QMP")?;
        for _ in 0..MAX_EVENTS {
            let line = self.line()?;
            let head = line.trim_start();
            if head.starts_with(r#"{"event""#) {
                continue;
            }
            if head.starts_with(r#"{"return""#) {
                return Ok(line);
            }
            if head.starts_with(r#"{"error""#) {
                bail!("QMP {command}: {line}");
            }
            bail!("QMP {command}: unexpected answer {line:?}");
        }
        bail!("QMP {command}: no answer among {MAX_EVENTS} events")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A fake QMP server: greets, then answers each line from `answers`
    /// (several lines per command allowed) and records what it was sent.
    fn fake(
        answers: Vec<&'static str>,
    ) -> (tempfile::TempDir, std::thread::JoinHandle<Vec<String>>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let l = UnixListener::bind(&path).unwrap();
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            w.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n")
                .unwrap();
            let mut got = Vec::new();
            for a in answers {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap() == 0 {
                    break;
                }
                got.push(line.trim_end().to_string());
                w.write_all(a.as_bytes()).unwrap();
            }
            got
        });
        (dir, h)
    }

    #[test]
    fn set_link_through_qmp() {
        let (dir, h) = fake(vec![
            "{\"return\": {}}\r\n",
            "{\"event\": \"NIC_RX_FILTER_CHANGED\", \"data\": {}}\r\n{\"return\": {}}\r\n",
        ]);
        let cable = Cable::Qmp {
            socket: dir.path().join("qmp.sock"),
            nic: QEMU_NIC.into(),
        };
        cable.pull().unwrap();
        assert_eq!(
            h.join().unwrap(),
            [
                r#"{"execute":"qmp_capabilities"}"#,
                r#"{"execute":"set_link","arguments":{"name":"stellaris_enet.0","up":false}}"#,
            ]
        );
    }

    #[test]
    fn qmp_errors_are_errors() {
        let (dir, h) = fake(vec![
            "{\"return\": {}}\n",
            "{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"Device 'x' not found\"}}\n",
        ]);
        let cable = Cable::Qmp {
            socket: dir.path().join("qmp.sock"),
            nic: "x".into(),
        };
        let e = format!("{:#}", cable.plug().unwrap_err());
        assert!(e.contains("DeviceNotFound"), "{e}");
        h.join().unwrap();
    }

    #[test]
    fn not_qmp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let l = UnixListener::bind(&path).unwrap();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.write_all(b"hello\n").unwrap();
        });
        let e = format!("{:#}", Qmp::connect(&path).err().unwrap());
        assert!(e.contains("not a QMP greeting"), "{e}");
        h.join().unwrap();
    }

    #[test]
    fn json_strings() {
        assert_eq!(json_string("a\"b\\c\n"), r#""a\"b\\c\u000a""#);
    }
}
