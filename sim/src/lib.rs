//! The virtual board's host side: the `ftpd` engine on host sockets
//! ([`net::HostNet`]) and a host directory ([`fs::HostFs`]), plus the loop
//! that drives it ([`serve`]). The binary (`src/main.rs`) is the CLI.

pub mod cli;
pub mod diag;
pub mod fs;
pub mod logger;
pub mod net;
pub mod serve;
pub mod time;

pub use fs::HostFs;
pub use net::HostNet;
