//! The poll loop: accepts control connections, enforces the session limit,
//! and gives every session its turn.
//!
//! # Why a poll loop
//!
//! The engine is driven by repeated calls to [`Server::poll`] rather than by
//! one async task per session. On a 64 KB microcontroller this buys three
//! things: one stack for everything (its peak is measured once, with a
//! painted stack), no executor or per-task future whose size the compiler
//! decides, and buffers shared by all sessions — a session is only ever in
//! the middle of one step, so one command-line buffer, one reply buffer and
//! one data buffer serve them all. A session's own state stays under 1 KB.
//! The cost is that transfers are explicit state machines
//! ([`crate::session`]); they are the part tested most.

use crate::config::Config;
use crate::net::Net;
use crate::path::{Bytes, zeroed};
use crate::proto::reply::{ReplyCode, Writer};
use crate::session::{Ctx, Session, Step};
use crate::storage::{DateTime, Storage};
use crate::time::Instant;
use crate::{MAX_LINE, MAX_REPLY};

/// Every slot empty, out of line: building the array and copying it into
/// the server took more code inlined into the caller than a call does.
#[inline(never)]
fn empty_slots<T, const N: usize>() -> [Option<T>; N] {
    core::array::from_fn(|_| None)
}

/// What one call of [`Server::poll`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Poll {
    /// Something happened; call again at once.
    pub progressed: bool,
    /// Nothing to do before this time unless the network delivers something.
    pub next_wake: Option<Instant>,
}

/// An FTP server with room for `MAX` sessions (at most
/// [`Config::max_sessions`] of them are used).
pub struct Server<'a, N: Net, S: Storage, const MAX: usize> {
    config: Config<'a>,
    sessions: [Option<Session<N::Socket, S::File>>; MAX],
    data_buf: &'a mut [u8],
    line: Bytes<MAX_LINE>,
    reply: Bytes<MAX_REPLY>,
    next_port: u16,
    next_id: u32,
    utc: Option<DateTime>,
}

impl<'a, N: Net, S: Storage, const MAX: usize> Server<'a, N, S, MAX> {
    /// A server using `data_buf` for every transfer (its size bounds how
    /// much one session moves per step: a few KB on a board, more on a host).
    /// It should hold at least [`MAX_LINE`] bytes (one listing line).
    pub fn new(config: Config<'a>, data_buf: &'a mut [u8]) -> Self {
        Server {
            next_port: config.pasv_ports.0,
            config,
            sessions: empty_slots(),
            data_buf,
            line: zeroed(),
            reply: zeroed(),
            next_id: 1,
            utc: None,
        }
    }

    /// Sets today's date and time (UTC), when the platform has a clock:
    /// `LIST` then shows times for recent files as `ls` does.
    pub fn set_utc(&mut self, now: Option<DateTime>) {
        self.utc = now;
    }

    /// Sessions open right now.
    pub fn sessions(&self) -> usize {
        self.sessions.iter().filter(|s| s.is_some()).count()
    }

    /// Accepts new connections and moves every session one step (out of
    /// line: inlined into the firmware's loop it took more flash).
    #[inline(never)]
    pub fn poll(&mut self, now: Instant, net: &mut N, fs: &mut S) -> Poll {
        let mut progressed = false;
        let mut next_wake: Option<Instant> = None;
        let limit = self.config.max_sessions.min(MAX);

        while let Some(sock) = net.accept() {
            progressed = true;
            let open = self.sessions();
            let slot = if open < limit {
                self.sessions.iter().position(|s| s.is_none())
            } else {
                None
            };
            // The greeting, or why not: one reply either way.
            let (code, tpl, text) = match slot {
                Some(_) => (ReplyCode::ServiceReady, "\x01", self.config.banner),
                None => (
                    ReplyCode::ServiceNotAvailable,
                    "Too many connections (\x04), try again later.",
                    "",
                ),
            };
            let mut w = Writer::new(&mut self.reply.0);
            w.begin(code).fill(tpl, text, limit as u64).end();
            let _ = net.send(sock, w.as_bytes());
            let Some(i) = slot else {
                crate::event!(
                    "refused a connection: {} sessions open (limit {})",
                    open,
                    limit
                );
                net.close(sock);
                continue;
            };
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            if !Session::start(&mut self.sessions[i], id, sock, net, now) {
                net.abort(sock);
            }
        }

        // One context for every session's turn.
        let sessions_open = self.sessions();
        let mut ctx = Ctx {
            net: &mut *net,
            fs: &mut *fs,
            now,
            config: &self.config,
            data: &mut *self.data_buf,
            line: &mut self.line.0,
            reply: &mut self.reply.0,
            next_port: &mut self.next_port,
            utc: self.utc.as_ref(),
            sessions_open,
        };
        for slot in self.sessions.iter_mut() {
            let Some(session) = slot.as_mut() else {
                continue;
            };
            let Step {
                progressed: p,
                wake,
                done,
            } = session.poll(&mut ctx);
            progressed |= p;
            if let Some(w) = wake {
                crate::time::earliest(&mut next_wake, w);
            }
            if done {
                crate::event!("[{}] closed", session.id());
                *slot = None;
                progressed = true;
            }
        }
        Poll {
            progressed,
            next_wake,
        }
    }

    /// Closes every session with `421` (the server is shutting down).
    pub fn shutdown(&mut self, net: &mut N, fs: &mut S) {
        for slot in self.sessions.iter_mut() {
            if let Some(mut s) = slot.take() {
                s.shutdown(net, fs, &mut self.reply.0);
            }
        }
    }
}
