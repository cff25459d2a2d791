//! The loop that drives the engine on the host.
//!
//! Each turn: move bytes between the kernel and [`HostNet`]'s buffers, give
//! the engine the time (monotonic milliseconds and the host's UTC calendar
//! time) and let it poll; when it made no progress, block in
//! [`HostNet::wait`] until a socket is ready, the engine's `next_wake`
//! passes, or a signal writes to the wake-up pipe. No fixed sleeps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ftpd::{Config, Server, Storage};

use crate::net::HostNet;
use crate::time::utc_now;

/// Session slots compiled into the host server (`--max-sessions` may be
/// at most this).
pub const MAX_SESSIONS: usize = 16;
/// The engine's data buffer, shared by all sessions.
pub const DATA_BUF: usize = 64 * 1024;
/// What control connections the engine never took (or still holds) are
/// told when the server stops.
pub const GOODBYE: &[u8] = b"421 Service not available, server shutting down.\r\n";
/// How long closing connections get to finish when the server stops.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Serves until `stop` becomes true (a signal handler sets it and writes to
/// [`HostNet::waker`]), then closes every session: `421` and an orderly
/// close on control connections, a reset on data connections.
pub fn run<S: Storage>(net: &mut HostNet, fs: &mut S, config: Config<'_>, stop: &AtomicBool) {
    let mut data_buf = vec![0u8; DATA_BUF];
    let mut server: Server<'_, HostNet, S, MAX_SESSIONS> = Server::new(config, &mut data_buf);
    let start = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        net.pump();
        server.set_utc(utc_now());
        let now = ftpd::Instant::from_millis(start.elapsed().as_millis() as u64);
        let poll = server.poll(now, net, fs);
        if !poll.progressed && !stop.load(Ordering::SeqCst) {
            let deadline = poll
                .next_wake
                .map(|w| start + Duration::from_millis(w.millis()));
            net.wait(deadline);
        }
    }
    log::info!("stopping: closing {} session(s)", server.sessions());
    // The engine says 421 to its sessions and closes their sockets; the
    // network then flushes those closes and turns away connections the
    // engine never took.
    server.shutdown(net, fs);
    drop(server);
    net.shutdown(GOODBYE, SHUTDOWN_GRACE);
}
