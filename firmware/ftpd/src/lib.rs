//! # ftpd: an FTP server engine for microcontrollers
//!
//! `#![no_std]`, no allocator, no `unsafe`. Every buffer has a compile-time
//! bound. The engine speaks RFC 959 plus the extensions modern clients use
//! (RFC 2389 FEAT/OPTS, RFC 2428 EPSV/EPRT, RFC 3659 SIZE/MDTM/MLST/MLSD/REST
//! STREAM, RFC 2640 UTF-8), and knows nothing of the board, the TCP/IP stack
//! or the file system it runs on.
//!
//! ## Layers
//!
//! - [`proto`]: bytes to types and back: a command line into a [`proto::Command`],
//!   a [`proto::ReplyCode`] and text into reply bytes. Pure functions.
//! - [`path`]: resolving a client path against the working directory and the
//!   user's root, so that nothing reaches outside it.
//! - [`session`]: one FTP session's state machine.
//! - [`Server`]: the poll loop that ties sessions to a [`Net`] and a
//!   [`Storage`], and owns the few buffers shared by all sessions.
//!
//! ## Driving it
//!
//! ```text
//! let mut server: Server<MyNet, MyFs, 4> = Server::new(&config, &mut data_buf);
//! loop {
//!     let poll = server.poll(Instant::from_millis(clock.ms()), &mut net, &mut fs);
//!     if !poll.progressed { sleep_until(poll.next_wake) }
//! }
//! ```
#![cfg_attr(not(any(test, feature = "testing")), no_std)]
#![forbid(unsafe_code)]

pub mod config;
pub mod list;
pub mod net;
pub mod path;
pub mod proto;
mod server;
pub mod session;
pub mod storage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;

pub use config::{Account, Config};
pub use net::{Net, NetError, SockState};
pub use server::{Poll, Server};
pub use storage::{DateTime, DirEntry, Kind, Metadata, Storage, WriteMode};
pub use time::Instant;

/// Longest command line accepted, CRLF included; longer lines get `500`.
pub const MAX_LINE: usize = 512;
/// Longest path (after resolution, user root included).
pub const MAX_PATH: usize = 256;
/// Longest reply the engine sends in one piece; the control socket's send
/// buffer must hold at least this much.
pub const MAX_REPLY: usize = 512;

/// One log line per session event, through the `log` facade when the `log`
/// feature is on; nothing at all otherwise.
#[macro_export]
#[doc(hidden)]
macro_rules! event {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")]
        ::log::info!($($arg)*);
        #[cfg(not(feature = "log"))]
        if false {
            let _ = format_args!($($arg)*);
        }
    }};
}
