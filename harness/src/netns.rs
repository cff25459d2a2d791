//! Network namespaces of the harness's own, with the host side of a board's
//! cable in them (DESIGN.md, "Networking rules for tests").
//!
//! A TAP device and every address on it live only inside a namespace that
//! the harness creates (`ftpd-sim-PID-N`, `ftpd-qemu-PID-N`) and removes when
//! the target stops: on `Drop`, on Ctrl-C (see [`remove_all`]) and, after a
//! crash or a `kill -9`, at the next run, which deletes every namespace with
//! its prefix whose process is gone. Inside:
//!
//! ```text
//! lo                  up
//! ftpd0 (TAP)         192.0.2.1/24, 2001:db8::1/64 nodad, keep_addr_on_down=1, up
//! the board           192.0.2.2, 2001:db8::2 (the far end of the TAP device)
//! ```
//!
//! The harness reaches the board from a thread that enters the namespace
//! ([`run_in`]); anyone else with `ip netns exec NAME CLIENT`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, bail};

/// The TAP device's name inside every namespace (one board per namespace).
pub const TAP: &str = "ftpd0";
/// The host side of the cable.
pub const HOST_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const HOST_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// The board (`ftpd_app::NetConfig::TEST_NET`, the QEMU board's TAP default).
pub const BOARD_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const BOARD_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
/// The board's FTP control port on TAP.
pub const FTP_PORT: u16 = 21;

/// The board's FTP address on TAP, IPv4 or IPv6.
pub fn board_addr(v6: bool) -> SocketAddr {
    let ip: IpAddr = if v6 { BOARD_V6.into() } else { BOARD_V4.into() };
    SocketAddr::new(ip, FTP_PORT)
}

/// Why this machine cannot make a namespace with a TAP device in it, if it
/// cannot: not root, no `/dev/net/tun`, no `ip`.
pub fn missing_privilege() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root: a network namespace with a TAP device needs CAP_NET_ADMIN (run as root, e.g. sudo -E)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some(
            "/dev/net/tun is missing (modprobe tun; in a container: --device /dev/net/tun)".into(),
        );
    }
    if !crate::target::have_tool("ip") {
        return Some("`ip` is not installed (apt-get install iproute2)".into());
    }
    None
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Names of the namespaces this process made and has not removed yet.
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A namespace of ours with the TAP device set up; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Create `ftpd-KIND-PID-N` with `lo` and the TAP device up. Namespaces
    /// of earlier runs whose process is gone are removed first.
    pub fn create(kind: &str) -> anyhow::Result<Netns> {
        if let Some(why) = missing_privilege() {
            bail!("{why}");
        }
        let prefix = format!("ftpd-{kind}-");
        remove_leftovers(&prefix);
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{prefix}{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let _ = ip(&["netns", "del", &name]);
        ip(&["netns", "add", &name])?;
        LIVE.lock().unwrap().push(name.clone());
        let ns = Netns { name };
        ns.setup()
            .with_context(|| format!("setting up network namespace {}", ns.name))?;
        Ok(ns)
    }

    fn setup(&self) -> anyhow::Result<()> {
        let n = self.name.as_str();
        ip(&["-n", n, "link", "set", "lo", "up"])?;
        ip(&["-n", n, "tuntap", "add", "dev", TAP, "mode", "tap"])?;
        // The kernel drops the host side's IPv6 address when the link goes
        // down (a cable pull) unless told to keep it.
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                n,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{TAP}.keep_addr_on_down=1"),
            ])
            .output()?;
        if !out.status.success() {
            bail!(
                "sysctl keep_addr_on_down: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        ip(&["-n", n, "addr", "add", &format!("{HOST_V4}/24"), "dev", TAP])?;
        ip(&[
            "-n",
            n,
            "-6",
            "addr",
            "add",
            &format!("{HOST_V6}/64"),
            "dev",
            TAP,
            "nodad",
        ])?;
        ip(&["-n", n, "link", "set", TAP, "up"])?;
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NAME program`: a command that runs inside.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// The same, for std (tests, tools run to completion).
    pub fn std_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
        LIVE.lock().unwrap().retain(|n| n != &self.name);
    }
}

/// Remove every namespace this process still has (Ctrl-C, fatal error
/// paths that will not run destructors).
pub fn remove_all() {
    let names = std::mem::take(&mut *LIVE.lock().unwrap());
    for n in names {
        let _ = ip(&["netns", "del", &n]);
    }
}

/// Delete namespaces named `PREFIX<pid>-<n>` whose process no longer runs.
pub fn remove_leftovers(prefix: &str) -> Vec<String> {
    let mut removed = Vec::new();
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return removed;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && !Path::new(&format!("/proc/{pid}")).exists()
            && ip(&["netns", "del", name]).is_ok()
        {
            removed.push(name.to_string());
        }
    }
    removed
}

/// Does a namespace of this name exist?
pub fn exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// Move the calling thread into the network namespace `name`.
pub fn enter(name: &str) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    let path = Path::new("/run/netns").join(name);
    let f = std::fs::File::open(&path)
        .with_context(|| format!("network namespace {name} ({})", path.display()))?;
    // SAFETY: setns on a valid namespace fd affects only this thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        bail!(
            "entering network namespace {name}: {} (needs root)",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Run `f`'s future on a thread of its own inside namespace `name` (a
/// runtime of its own too: sockets belong to the namespace of the thread
/// that opens them).
pub async fn run_in<T, F, Fut>(name: &str, f: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    let ns = name.to_string();
    tokio::task::spawn_blocking(move || -> anyhow::Result<T> {
        enter(&ns)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(rt.block_on(f()))
    })
    .await?
}

/// [`run_in`] for code that is not async.
pub fn run_in_blocking<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let ns = name.to_string();
    std::thread::spawn(move || -> anyhow::Result<T> {
        enter(&ns)?;
        Ok(f())
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(board_addr(false).to_string(), "192.0.2.2:21");
        assert_eq!(board_addr(true).to_string(), "[2001:db8::2]:21");
    }

    #[test]
    fn leftovers_of_live_processes_stay() {
        // Nothing of ours is named like this; the call must not fail without
        // privileges either.
        assert!(remove_leftovers("ftpd-nothing-here-").is_empty());
    }
}
