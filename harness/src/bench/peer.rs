//! The peer: Debian's vsftpd serving the same files on the same path, so
//! the ratio engine/peer comes out of one run. Anonymous login (as root,
//! vsftpd chroots anonymous sessions into `anon_root`), uploads into `/up`;
//! its configuration is written to a temporary directory.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::fixture::Tree;

/// The binary Debian installs.
pub const VSFTPD: &str = "/usr/sbin/vsftpd";

/// A running vsftpd; stopped when dropped.
pub struct Vsftpd {
    child: Child,
    pub addr: SocketAddr,
    /// Its log file (vsftpd_log_file).
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

/// Why vsftpd cannot be the peer here, if it cannot.
pub fn unavailable() -> Option<String> {
    if !Path::new(VSFTPD).is_file() {
        return Some(format!(
            "{VSFTPD} is not installed (apt-get install vsftpd)"
        ));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("vsftpd's anonymous chroot needs root".into());
    }
    None
}

/// The installed version (`dpkg-query`), or "vsftpd".
pub fn version() -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "vsftpd"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| format!("vsftpd {}", String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or_else(|| "vsftpd".into())
}

impl Vsftpd {
    /// Start vsftpd on `listen` with `tree` in its root, inside network
    /// namespace `netns` if given (`ip netns exec`). Readiness is the
    /// caller's to check (from inside the namespace).
    pub fn start(tree: &Tree, listen: SocketAddr, netns: Option<&str>) -> Result<Vsftpd, String> {
        if let Some(why) = unavailable() {
            return Err(why);
        }
        let e = |what: &str, err: std::io::Error| format!("vsftpd peer: {what}: {err}");
        let dir = tempfile::Builder::new()
            .prefix("harness-vsftpd-")
            .tempdir()
            .map_err(|x| e("temp dir", x))?;
        let root = dir.path().join("root");
        let empty = dir.path().join("empty");
        std::fs::create_dir(&root).map_err(|x| e("root", x))?;
        std::fs::create_dir(&empty).map_err(|x| e("empty", x))?;
        tree.materialize(&root).map_err(|x| e("files", x))?;
        let up = root.join("up");
        std::fs::create_dir_all(&up).map_err(|x| e("up", x))?;
        use std::os::unix::fs::PermissionsExt as _;
        // The chroot is entered as root, then vsftpd runs as `ftp`: every
        // directory must be readable, `/up` writable, files world-readable.
        let set = |p: &Path, mode: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        };
        set(dir.path(), 0o755).map_err(|x| e("chmod", x))?;
        chmod_tree(&root).map_err(|x| e("chmod", x))?;
        set(&up, 0o777).map_err(|x| e("chmod up", x))?;
        let log = dir.path().join("vsftpd.log");
        let conf = dir.path().join("vsftpd.conf");
        let pasv = 40000 + (listen.port() % 100) * 50;
        let text = format!(
            "listen=YES\nlisten_ipv6=NO\nlisten_address={ip}\nlisten_port={port}\nbackground=NO\n\
             anonymous_enable=YES\nno_anon_password=YES\nanon_root={root}\nlocal_enable=NO\n\
             write_enable=YES\nanon_upload_enable=YES\nanon_mkdir_write_enable=YES\n\
             anon_other_write_enable=YES\nanon_umask=022\nallow_writeable_chroot=YES\n\
             pasv_enable=YES\npasv_min_port={pasv}\npasv_max_port={pmax}\nport_enable=YES\n\
             connect_from_port_20=NO\nsecure_chroot_dir={empty}\nseccomp_sandbox=NO\n\
             isolate=NO\nisolate_network=NO\nxferlog_enable=NO\nvsftpd_log_file={log}\n\
             dual_log_enable=NO\nmax_clients=50\nmax_per_ip=50\nuse_sendfile=YES\n\
             ftpd_banner=vsftpd peer\n",
            ip = listen.ip(),
            port = listen.port(),
            root = root.display(),
            pmax = pasv + 49,
            empty = empty.display(),
            log = log.display(),
        );
        std::fs::write(&conf, text).map_err(|x| e("config", x))?;
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, VSFTPD]);
                c
            }
            None => Command::new(VSFTPD),
        };
        cmd.arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; vsftpd dies with the harness.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|x| e("starting", x))?;
        Ok(Vsftpd {
            child,
            addr: listen,
            log,
            _dir: dir,
        })
    }

    /// Has it exited (bad configuration)? Its stderr then.
    pub fn failed(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(st)) => {
                let mut err = String::new();
                if let Some(mut s) = self.child.stderr.take() {
                    use std::io::Read as _;
                    let _ = s.read_to_string(&mut err);
                }
                Some(format!("vsftpd exited ({st}): {}", err.trim()))
            }
            _ => None,
        }
    }
}

fn chmod_tree(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    for e in std::fs::read_dir(p)? {
        let e = e?;
        let path = e.path();
        if e.file_type()?.is_dir() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
            chmod_tree(&path)?;
        } else {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        }
    }
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
}

impl Drop for Vsftpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
