//! The command line of the `sim` binary, and how it becomes an engine
//! [`Config`].

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::{ArgAction, ArgGroup, Parser};
use ftpd::{Account, Config};

use crate::serve::MAX_SESSIONS;

/// The FTP server on the host: the ftpd engine on host sockets, serving a
/// directory (or, later, a FAT image).
#[derive(Parser, Debug)]
#[command(name = "sim", version, about)]
#[command(group(ArgGroup::new("storage").required(true).args(["root", "image"])))]
pub struct Cli {
    /// Address for FTP control connections (IPv4 or IPv6, e.g. [::1]:2121;
    /// an IPv6 address takes IPv6 clients only; port 0 picks a free port).
    /// The address really used is printed as `listening on ftp://ADDR:PORT`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:2121")]
    pub listen: SocketAddr,

    /// Network mode of the virtual board: the firmware application on smoltcp
    /// over this TAP device instead of host sockets. The TAP device and its
    /// host-side address must exist in this process's network namespace; the
    /// board answers at 192.0.2.2 and 2001:db8::2 (`harness serve --target sim`
    /// prepares all of it).
    #[arg(long, value_name = "IFNAME", conflicts_with = "listen")]
    pub tap: Option<String>,

    /// Serve this host directory (jailed: symlinks cannot lead out).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Serve this FAT disk image (SD-card image with an MBR, or a bare volume).
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,

    /// Tests of a failing card (hidden): with --image, block writes number
    /// AFTER to AFTER+COUNT-1 since the start fail with an I/O error.
    #[arg(long, value_name = "AFTER,COUNT", value_parser = parse_fail_writes,
          requires = "image", hide = true)]
    pub fail_writes: Option<(u64, u64)>,

    /// An account NAME:PASS[:ro|:rw][:ROOT], repeatable. ROOT is a path in
    /// the served tree that becomes the user's `/`. Without any --user, the
    /// default account is test:test, read-write, at `/`.
    #[arg(long = "user", value_name = "NAME:PASS[:ro][:ROOT]", value_parser = parse_user, action = ArgAction::Append)]
    pub users: Vec<UserSpec>,

    /// Refuse `anonymous`/`ftp` logins (allowed read-only by default).
    #[arg(long)]
    pub no_anonymous: bool,

    /// Sessions served at once; one more gets `421`.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=MAX_SESSIONS as i64))]
    pub max_sessions: u16,

    /// Passive data ports, inclusive range A-B [default: 50000-50099].
    #[arg(long, value_name = "A-B", value_parser = parse_port_range)]
    pub pasv_ports: Option<(u16, u16)>,

    /// IPv4 address advertised in PASV replies (NAT, port forwarding);
    /// by default the control connection's local address.
    #[arg(long, value_name = "IP")]
    pub pasv_address: Option<Ipv4Addr>,

    /// Seconds without a command before a session is closed with `421`.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub idle_timeout: u64,

    /// Seconds a data connection may take to come, or a transfer may stall.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub data_timeout: u64,

    /// Also serve the diagnostic raw-TCP services, the benchmarks' network
    /// ceiling: discard (RFC 863) and chargen (RFC 864). With --tap: the
    /// firmware's own (ftpd-app feature `diag`) on the board's address, ports
    /// 9 and 19 (and sdbench on 7, which answers with an error here); with
    /// --listen: std sockets on the listen IP, ports from --diag-ports. One
    /// log line says where: `diag: discard ADDR:PORT chargen ADDR:PORT`.
    #[arg(long)]
    pub diag: bool,

    /// --listen mode: ports of discard and chargen [default: the control
    /// port + 1 and + 2; any free ports when the control port is 0].
    #[arg(long, value_name = "D,C", value_parser = parse_diag_ports,
          requires = "diag", conflicts_with = "tap")]
    pub diag_ports: Option<(u16, u16)>,

    /// Also append the log to this file.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// More log (-v: debug, -vv: trace).
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,
}

/// Where the server gets its network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    /// Host TCP sockets, control listener on this address.
    Host(SocketAddr),
    /// The firmware application on smoltcp over a TAP device (issue 4).
    Tap(String),
}

/// What the server serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageMode {
    Dir(PathBuf),
    Image(PathBuf),
}

impl Cli {
    pub fn network(&self) -> NetworkMode {
        match &self.tap {
            Some(ifname) => NetworkMode::Tap(ifname.clone()),
            None => NetworkMode::Host(self.listen),
        }
    }

    pub fn storage(&self) -> StorageMode {
        match (&self.root, &self.image) {
            (Some(dir), _) => StorageMode::Dir(dir.clone()),
            (None, Some(img)) => StorageMode::Image(img.clone()),
            // clap's "storage" group requires one of them.
            (None, None) => unreachable!("--root or --image is required"),
        }
    }

    /// The ports of the host-socket diag services, given the control port
    /// asked for (0: any free ports).
    pub fn diag_ports(&self, control_port: u16) -> (u16, u16) {
        self.diag_ports.unwrap_or(match control_port {
            0 | 65534.. => (0, 0),
            p => (p + 1, p + 2),
        })
    }

    pub fn log_level(&self) -> log::LevelFilter {
        match self.verbose {
            0 => log::LevelFilter::Info,
            1 => log::LevelFilter::Debug,
            _ => log::LevelFilter::Trace,
        }
    }

    /// The engine configuration; `accounts` is what [`Cli::accounts`] made.
    pub fn config<'a>(&self, accounts: &'a [Account<'a>]) -> Config<'a> {
        let defaults = Config::default();
        Config {
            accounts,
            anonymous_root: if self.no_anonymous {
                None
            } else {
                defaults.anonymous_root
            },
            max_sessions: usize::from(self.max_sessions),
            idle_timeout_ms: self.idle_timeout.saturating_mul(1000),
            data_timeout_ms: self.data_timeout.saturating_mul(1000),
            pasv_ports: self.pasv_ports.unwrap_or(defaults.pasv_ports),
            pasv_address: self.pasv_address,
            ..defaults
        }
    }

    /// The accounts, borrowing from the parsed command line.
    pub fn accounts(&self) -> Vec<Account<'_>> {
        if self.users.is_empty() {
            return ftpd::config::DEFAULT_ACCOUNTS.to_vec();
        }
        self.users
            .iter()
            .map(|u| Account {
                user: &u.name,
                pass: &u.pass,
                root: &u.root,
                writable: u.writable,
            })
            .collect()
    }
}

/// One `--user` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub name: String,
    pub pass: String,
    pub writable: bool,
    /// Absolute, normalised storage path.
    pub root: String,
}

/// Parses `NAME:PASS[:ro|:rw][:ROOT]`. The password cannot contain `:`;
/// ROOT starts with `/` and may contain anything after that.
pub fn parse_user(s: &str) -> Result<UserSpec, String> {
    let mut parts = s.splitn(3, ':');
    let name = parts.next().unwrap_or_default();
    let pass = parts.next().ok_or("expected NAME:PASS[:ro][:ROOT]")?;
    if name.is_empty() || pass.is_empty() {
        return Err("user name and password must not be empty".into());
    }
    if name.chars().any(char::is_whitespace) {
        return Err("user name must not contain spaces".into());
    }
    let mut writable = true;
    let mut root = "/";
    if let Some(rest) = parts.next() {
        let (flag, tail) = match rest.split_once(':') {
            Some((f, t)) if f == "ro" || f == "rw" => (Some(f), Some(t)),
            _ if rest == "ro" || rest == "rw" => (Some(rest), None),
            _ => (None, Some(rest)),
        };
        if let Some(f) = flag {
            writable = f == "rw";
        }
        if let Some(t) = tail {
            if !t.starts_with('/') {
                return Err(format!(
                    "expected `ro`, `rw` or an absolute ROOT, got `{t}`"
                ));
            }
            root = t;
        }
    }
    Ok(UserSpec {
        name: name.into(),
        pass: pass.into(),
        writable,
        root: normalise_root(root)?,
    })
}

/// `/a//b/` -> `/a/b`; `.` and `..` are refused (a root is written plainly).
fn normalise_root(root: &str) -> Result<String, String> {
    let mut out = String::new();
    for c in root.split('/').filter(|c| !c.is_empty()) {
        if c == "." || c == ".." {
            return Err(format!("ROOT `{root}` must not contain `.` or `..`"));
        }
        out.push('/');
        out.push_str(c);
    }
    if out.is_empty() {
        out.push('/');
    }
    if out.len() > ftpd::MAX_PATH {
        return Err(format!("ROOT is longer than {} bytes", ftpd::MAX_PATH));
    }
    Ok(out)
}

/// Parses `D,C`: two ports (0: any free one), not the same unless 0.
pub fn parse_diag_ports(s: &str) -> Result<(u16, u16), String> {
    let (d, c) = s.split_once(',').ok_or("expected D,C, e.g. 2122,2123")?;
    let d: u16 = d.trim().parse().map_err(|e| format!("port `{d}`: {e}"))?;
    let c: u16 = c.trim().parse().map_err(|e| format!("port `{c}`: {e}"))?;
    if d == c && d != 0 {
        return Err(format!("discard and chargen need two ports, got {d} twice"));
    }
    Ok((d, c))
}

/// Parses `AFTER,COUNT` (block counts).
pub fn parse_fail_writes(s: &str) -> Result<(u64, u64), String> {
    let (a, c) = s
        .split_once(',')
        .ok_or("expected AFTER,COUNT, e.g. 1000,32")?;
    let a = a.trim().parse().map_err(|e| format!("`{a}`: {e}"))?;
    let c = c.trim().parse().map_err(|e| format!("`{c}`: {e}"))?;
    Ok((a, c))
}

/// Parses `A-B` (inclusive, A <= B, both non-zero).
pub fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s.split_once('-').ok_or("expected A-B, e.g. 50000-50099")?;
    let a: u16 = a.trim().parse().map_err(|e| format!("port `{a}`: {e}"))?;
    let b: u16 = b.trim().parse().map_err(|e| format!("port `{b}`: {e}"))?;
    if a == 0 || a > b {
        return Err(format!("`{s}` is not a range of ports (1 <= A <= B)"));
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, pass: &str, writable: bool, root: &str) -> UserSpec {
        UserSpec {
            name: name.into(),
            pass: pass.into(),
            writable,
            root: root.into(),
        }
    }

    #[test]
    fn user_forms() {
        assert_eq!(
            parse_user("bob:secret"),
            Ok(user("bob", "secret", true, "/"))
        );
        assert_eq!(
            parse_user("bob:secret:ro"),
            Ok(user("bob", "secret", false, "/"))
        );
        assert_eq!(
            parse_user("bob:secret:rw"),
            Ok(user("bob", "secret", true, "/"))
        );
        assert_eq!(
            parse_user("bob:secret:/pub"),
            Ok(user("bob", "secret", true, "/pub"))
        );
        assert_eq!(
            parse_user("bob:secret:ro:/pub/x/"),
            Ok(user("bob", "secret", false, "/pub/x"))
        );
        assert_eq!(
            parse_user("bob:s:ro://a//b"),
            Ok(user("bob", "s", false, "/a/b"))
        );
        // A root may contain ':' after its leading '/'.
        assert_eq!(parse_user("bob:s:/a:b"), Ok(user("bob", "s", true, "/a:b")));
    }

    #[test]
    fn bad_users() {
        assert!(parse_user("bob").is_err());
        assert!(parse_user(":pass").is_err());
        assert!(parse_user("bob:").is_err());
        assert!(parse_user("bob:pw:readonly").is_err());
        assert!(parse_user("bob:pw:ro:pub").is_err());
        assert!(parse_user("bob:pw:/a/../b").is_err());
        assert!(parse_user("b o b:pw").is_err());
    }

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("50000-50099"), Ok((50000, 50099)));
        assert_eq!(parse_port_range("2000-2000"), Ok((2000, 2000)));
        assert!(parse_port_range("50099-50000").is_err());
        assert!(parse_port_range("0-10").is_err());
        assert!(parse_port_range("50000").is_err());
        assert!(parse_port_range("a-b").is_err());
        assert!(parse_port_range("1-70000").is_err());
    }

    #[test]
    fn diag_options() {
        let cli = Cli::try_parse_from(["sim", "--root", "a", "--diag"]).unwrap();
        assert!(cli.diag);
        assert_eq!(cli.diag_ports(2121), (2122, 2123));
        assert_eq!(cli.diag_ports(0), (0, 0));
        assert_eq!(cli.diag_ports(65535), (0, 0));
        let cli =
            Cli::try_parse_from(["sim", "--root", "a", "--diag", "--diag-ports", "9009,9019"])
                .unwrap();
        assert_eq!(cli.diag_ports(2121), (9009, 9019));
        assert!(!Cli::try_parse_from(["sim", "--root", "a"]).unwrap().diag);
        assert!(
            Cli::try_parse_from(["sim", "--root", "a", "--diag-ports", "1,2"]).is_err(),
            "--diag-ports needs --diag"
        );
        assert!(
            Cli::try_parse_from([
                "sim",
                "--root",
                "a",
                "--tap",
                "t",
                "--diag",
                "--diag-ports",
                "1,2"
            ])
            .is_err(),
            "the board's ports are fixed"
        );
        assert_eq!(parse_diag_ports("0,0"), Ok((0, 0)));
        assert!(parse_diag_ports("5,5").is_err());
        assert!(parse_diag_ports("5").is_err());
        assert!(parse_diag_ports("5,x").is_err());
        assert!(parse_diag_ports("5,70000").is_err());
    }

    #[test]
    fn defaults_make_the_documented_config() {
        let cli = Cli::try_parse_from(["sim", "--root", "/tmp"]).unwrap();
        assert_eq!(
            cli.network(),
            NetworkMode::Host("127.0.0.1:2121".parse().unwrap())
        );
        assert_eq!(cli.storage(), StorageMode::Dir("/tmp".into()));
        let accounts = cli.accounts();
        let config = cli.config(&accounts);
        assert_eq!(config.accounts.len(), 1);
        let a = config.accounts[0];
        assert_eq!(
            (a.user, a.pass, a.root, a.writable),
            ("test", "test", "/", true)
        );
        assert_eq!(config.anonymous_root, Some("/"));
        assert_eq!(config.max_sessions, 4);
        assert_eq!(config.idle_timeout_ms, 300_000);
        assert_eq!(
            config.pasv_ports,
            (50000, 50099),
            "as the --pasv-ports help says"
        );
        assert_eq!(config.pasv_address, None);
    }

    #[test]
    fn options_reach_the_config() {
        let cli = Cli::try_parse_from([
            "sim",
            "--listen",
            "[::1]:0",
            "--root",
            "/srv",
            "--user",
            "alice:pw:ro:/pub",
            "--user",
            "bob:pw2",
            "--no-anonymous",
            "--max-sessions",
            "8",
            "--pasv-ports",
            "40000-40009",
            "--pasv-address",
            "192.0.2.7",
            "--idle-timeout",
            "60",
            "--data-timeout",
            "5",
        ])
        .unwrap();
        assert_eq!(cli.network(), NetworkMode::Host("[::1]:0".parse().unwrap()));
        let accounts = cli.accounts();
        let config = cli.config(&accounts);
        let got: Vec<_> = config
            .accounts
            .iter()
            .map(|a| (a.user, a.pass, a.root, a.writable))
            .collect();
        assert_eq!(
            got,
            [("alice", "pw", "/pub", false), ("bob", "pw2", "/", true)]
        );
        assert_eq!(config.anonymous_root, None);
        assert_eq!(config.max_sessions, 8);
        assert_eq!(config.pasv_ports, (40000, 40009));
        assert_eq!(config.pasv_address, Some(Ipv4Addr::new(192, 0, 2, 7)));
        assert_eq!(config.idle_timeout_ms, 60_000);
        assert_eq!(config.data_timeout_ms, 5_000);
    }

    #[test]
    fn storage_and_network_modes() {
        assert!(
            Cli::try_parse_from(["sim"]).is_err(),
            "--root or --image is required"
        );
        assert!(Cli::try_parse_from(["sim", "--root", "a", "--image", "b"]).is_err());
        let cli = Cli::try_parse_from(["sim", "--image", "sd.img"]).unwrap();
        assert_eq!(cli.storage(), StorageMode::Image("sd.img".into()));
        let cli = Cli::try_parse_from(["sim", "--image", "sd.img", "--tap", "tap0"]).unwrap();
        assert_eq!(cli.network(), NetworkMode::Tap("tap0".into()));
        assert!(Cli::try_parse_from(["sim", "--root", "a", "--max-sessions", "0"]).is_err());
        let too_many = (MAX_SESSIONS + 1).to_string();
        assert!(Cli::try_parse_from(["sim", "--root", "a", "--max-sessions", &too_many]).is_err());
    }
}
