//! What the application decides: accounts, limits, timeouts, ports.

use core::net::Ipv4Addr;

/// A login. `root` is a storage path (absolute, normalised) that becomes `/`
/// for this user; nothing outside it is reachable.
#[derive(Clone, Copy, Debug)]
pub struct Account<'a> {
    pub user: &'a str,
    pub pass: &'a str,
    pub root: &'a str,
    pub writable: bool,
}

/// Server configuration. [`Config::default`] gives the documented defaults:
/// user `test` / password `test` read-write at `/`, anonymous read-only.
#[derive(Clone, Copy, Debug)]
pub struct Config<'a> {
    pub accounts: &'a [Account<'a>],
    /// Root of `anonymous` / `ftp` logins (any password, read-only); `None`
    /// disables anonymous access.
    pub anonymous_root: Option<&'a str>,
    /// Text of the `220` greeting.
    pub banner: &'a str,
    /// Sessions served at once (at most the server's `MAX` slots); one more
    /// gets `421` and is closed.
    pub max_sessions: usize,
    /// A control connection with no command for this long gets `421`.
    pub idle_timeout_ms: u64,
    /// A data connection that does not come (or a transfer that makes no
    /// progress) for this long ends with `425` (`426` mid-transfer).
    pub data_timeout_ms: u64,
    /// A wrong password is answered after this delay (RFC 2577).
    pub login_fail_delay_ms: u64,
    /// After this many failed logins the session is closed with `421`.
    pub max_login_failures: u8,
    /// Passive ports, inclusive. Keep clear of ports browsers block.
    pub pasv_ports: (u16, u16),
    /// Address advertised in the `227` reply (NAT, QEMU user networking);
    /// `None` advertises the control connection's local address.
    pub pasv_address: Option<Ipv4Addr>,
}

/// The defaults documented in the README and used by the harness.
pub const DEFAULT_ACCOUNTS: &[Account<'static>] = &[Account {
    user: "test",
    pass: "test",
    root: "/",
    writable: true,
}];

impl Default for Config<'static> {
    fn default() -> Self {
        Config {
            accounts: DEFAULT_ACCOUNTS,
            anonymous_root: Some("/"),
            banner: "ftpd ready",
            max_sessions: 4,
            idle_timeout_ms: 300_000,
            data_timeout_ms: 30_000,
            login_fail_delay_ms: 1_000,
            max_login_failures: 3,
            pasv_ports: (50000, 50099),
            pasv_address: None,
        }
    }
}
