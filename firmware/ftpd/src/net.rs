//! The network as the engine sees it: a handful of non-blocking TCP sockets.
//!
//! The engine is driven by a poll loop ([`crate::Server::poll`]); every call
//! here must return at once. The same trait is implemented over smoltcp
//! (device and virtual board, `ftpd-app`) and over host sockets (`sim`).
//!
//! # Socket model
//!
//! The model is smoltcp's, because it is the stricter one:
//!
//! - The FTP control port is the adapter's business: [`Net::accept`] hands
//!   the engine each new, established control connection. The engine may
//!   refuse it (session limit) by sending `421` and closing it.
//! - A data listener ([`Net::listen`]) accepts exactly **one** connection:
//!   the same handle then moves from [`SockState::Listening`] to
//!   [`SockState::Established`], and [`Net::peer_addr`] tells who connected.
//! - [`Net::close`] and [`Net::abort`] give the handle back: the engine never
//!   uses it again, and the adapter reclaims the socket when TCP is done with
//!   it (a closing socket still sends its queued data, then FIN).
//! - Receiving never blocks: `Ok(0)` means "nothing yet"; the end of the
//!   peer's data is [`NetError::Closed`] (orderly FIN) or
//!   [`NetError::Reset`].
//! - A control socket's receive buffer holds at least [`crate::MAX_LINE`]
//!   bytes: that much lookahead decides whether a command line is too long.
//! - Sending never blocks: [`Net::send_capacity`] tells how many bytes the
//!   next `send` accepts in full. The engine formats a reply only when the
//!   whole reply fits, so no session needs a reply buffer of its own.

use core::net::{IpAddr, SocketAddr};

/// Where a socket is in its life, as far as the engine cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockState {
    /// A data listener waiting for its one connection.
    Listening,
    /// An active (PORT/EPRT) connection being set up.
    Connecting,
    /// Connected; data may flow both ways.
    Established,
    /// The peer has sent FIN; buffered data can still be received, and the
    /// socket can still send.
    PeerClosed,
    /// Gone: refused, reset, timed out, or closed both ways.
    Closed,
}

/// Why a socket operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// The peer finished sending (FIN) and every byte has been read.
    Closed,
    /// The connection was reset or timed out.
    Reset,
    /// No socket is free for a new listener or connection.
    Exhausted,
    /// The local port is already in use.
    AddrInUse,
    /// The address cannot be used (wrong family, no route, ...).
    Unreachable,
}

/// Non-blocking TCP sockets, see the module docs.
pub trait Net {
    /// A socket handle; cheap to copy, meaningless after close/abort.
    type Socket: Copy + PartialEq + core::fmt::Debug;

    /// A new, established connection on the FTP control port, if any.
    fn accept(&mut self) -> Option<Self::Socket>;
    /// Opens a data listener on `addr` (the control connection's local IP and
    /// a port the engine picked from its passive range).
    fn listen(&mut self, addr: SocketAddr) -> Result<Self::Socket, NetError>;
    /// Starts an active data connection from `local` (the control
    /// connection's local IP) to `remote`.
    fn connect(&mut self, local: IpAddr, remote: SocketAddr) -> Result<Self::Socket, NetError>;

    fn state(&self, s: Self::Socket) -> SockState;
    fn local_addr(&self, s: Self::Socket) -> Option<SocketAddr>;
    fn peer_addr(&self, s: Self::Socket) -> Option<SocketAddr>;

    /// Copies received bytes into `buf` without consuming them.
    fn peek(&mut self, s: Self::Socket, buf: &mut [u8]) -> Result<usize, NetError>;
    /// Drops `n` received bytes (at most what `peek` returned).
    fn consume(&mut self, s: Self::Socket, n: usize);
    /// Moves received bytes into `buf`.
    fn recv(&mut self, s: Self::Socket, buf: &mut [u8]) -> Result<usize, NetError>;

    /// How many bytes the next [`Net::send`] accepts in full.
    fn send_capacity(&self, s: Self::Socket) -> usize;
    /// Queues bytes for sending; returns how many were taken.
    fn send(&mut self, s: Self::Socket, data: &[u8]) -> Result<usize, NetError>;
    /// True when every queued byte has been sent (and, where the stack can
    /// tell, acknowledged).
    fn send_drained(&self, s: Self::Socket) -> bool;

    /// Orderly close: queued data goes out, then FIN. The handle is given back.
    fn close(&mut self, s: Self::Socket);
    /// Reset at once. The handle is given back.
    fn abort(&mut self, s: Self::Socket);
}
