//! Bytes to types and back: pure code, no I/O, no allocation.
//!
//! - [`line`] frames the control channel into command lines;
//! - [`command`] parses a line into a [`Command`];
//! - [`reply`] names reply codes and writes replies.

pub mod command;
pub mod line;
pub mod reply;

pub use command::{Command, EpsvArg, ParseError, TransferType, parse};
pub use reply::{ReplyCode, Writer};
