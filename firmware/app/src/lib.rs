//! # ftpd-app: the FTP server application, written once for every board
//!
//! The QEMU board (`lm3s6965evb`), the STM32F4-Discovery and the virtual
//! board (`sim --tap`) all run this crate; a board adds only its drivers: an
//! Ethernet device for smoltcp, a [`ftpd::Storage`] (FAT on its SD card), a
//! millisecond clock.
//!
//! - [`net::SmolNet`]: the engine's [`ftpd::Net`] over a smoltcp 0.13
//!   interface, IPv4 and IPv6, with socket pools in caller-provided storage.
//! - [`App`]: the configuration (accounts, limits, passive ports), the
//!   engine, the adapter and the storage in one poll loop.
//! - `diag` (feature `diag`): raw-TCP discard and chargen services (the
//!   network ceiling for the benchmarks) and sdbench (the storage ceiling).
//! - `host` (feature `std`): the virtual board's TAP glue, `host::run_tap`.
//!
//! `#![no_std]`, no allocator. Builds for `thumbv7m-none-eabi`,
//! `thumbv7em-none-eabihf` and the host.
//!
//! ## Driving it from a board
//!
//! ```text
//! let res = ftpd_app::Resources::take().unwrap();
//! let settings = ftpd_app::Settings::new(ftpd_app::NetConfig { mac, ..ftpd_app::NetConfig::TEST_NET });
//! let mut app = ftpd_app::App::new(res, &settings, &mut eth, sd_storage, clock.ms());
//! loop {
//!     let wake = app.poll(clock.ms(), &mut eth);
//!     sleep_until_irq_or(wake); // None: until the NIC interrupts
//! }
//! ```
//!
//! ## RAM budget (QEMU board: 64 KB SRAM, 4 sessions)
//!
//! The virtual board uses the very same constants, so what fits and runs
//! there holds on QEMU. Sizes below are for `thumbv7m-none-eabi`; the
//! compile-time check at the bottom of this file keeps [`Resources`] within
//! [`RESOURCES_BUDGET`] on 32-bit targets.
//!
//! | item | count × size | bytes |
//! |---|---|---|
//! | control sockets, RX + TX ([`CONTROL_RX`] + [`CONTROL_TX`]) | 5 × (512 + 1024) | 7 680 |
//! | refuser sockets, RX + TX ([`REFUSER_RX`] + [`REFUSER_TX`]) | 3 × (8 + 48) | 168 |
//! | data sockets, RX + TX ([`DATA_RX`] + [`DATA_TX`]) | 5 × (2048 + 2048) | 20 480 |
//! | smoltcp socket state (`SocketStorage`: TCP state, assembler, timers) | 13 × 392 + 8 (tag) | 5 104 |
//! | engine shared data buffer ([`ENGINE_BUF`]) | 1 × 2048 | 2 048 |
//! | **[`Resources`] total** | | **35 480** |
//! | [`AppNet`]: smoltcp `Interface` (576: neighbour cache, addresses, routes) + pools | | 840 |
//! | with feature `diag`: 3 more sockets, 3 × 392 + 2048 + 64 + 64 + 2048 + 64 + 128 | | + 5 592 |
//!
//! [`Resources`] is all zeros until [`App::new`] makes the socket slots, so
//! its `static` is in `.bss`: RAM only, no flash for an initial image (the
//! empty socket slots are copied from a 3.9 KB constant instead, see
//! `SocketSlots`). [`App::new`] builds nothing large on the stack: the
//! engine's state is written where the [`App`] is returned.
//!
//! That leaves about 30 KB of the 64 KB for the rest of the QEMU firmware:
//! the engine's session state (issue 6's floor: under 1 KB per session, so
//! under 4 KB for four), the FAT layer and its block buffers (a few KB), the
//! NIC driver's frame buffers (about 3 KB) and the stack with its 4 KB
//! margin. The diagnostic build takes 5 KB of that slack; it is a
//! measurement build, not the one that ships.
//!
//! Why these sizes: a control connection holds at most one command line
//! ([`ftpd::MAX_LINE`] = 512 bytes), and the engine writes a reply only when
//! [`ftpd::MAX_REPLY`] (512) bytes are free in the control TX buffer, so 1024
//! lets one reply be queued while the previous one is unacknowledged. Data
//! windows of 2 KB are what the budget allows; the engine's buffer matches
//! them so one storage read fills one socket. Five control sockets =
//! [`MAX_SESSIONS`] + 1, so that the client past the limit is connected and
//! hears `421`, and three refusers with 56 bytes of buffers (1.3 KB with
//! their socket state) answer a burst of clients past the limit with `421`
//! while the spare is busy, instead of a reset; five data sockets = one per
//! session + 1 for a socket still closing (FIN-WAIT, LAST-ACK).
#![cfg_attr(not(any(test, feature = "std")), no_std)]

pub mod app;
#[cfg(feature = "diag")]
pub mod diag;
#[cfg(feature = "std")]
pub mod host;
pub mod net;
#[cfg(test)]
mod testing;

pub use app::{App, AppNet, NetConfig, Resources, Settings, ftp_config};
pub use net::{Census, SmolNet, Sock};

/// Sessions served at once; the next client gets `421`.
pub const MAX_SESSIONS: usize = 4;
/// The FTP control port.
pub const FTP_PORT: u16 = 21;
/// Control sockets: one per session plus one for the client to refuse.
pub const CONTROL_SOCKETS: usize = MAX_SESSIONS + 1;
/// Refuser sockets: they answer a burst of clients past the limit with
/// `421` while the spare control socket is busy (see [`net`]).
pub const REFUSERS: usize = 3;
/// Refuser receive buffer: the client has nothing to say before the greeting.
pub const REFUSER_RX: usize = 8;
/// Refuser transmit buffer: the refusal line, [`net::REFUSAL`].
pub const REFUSER_TX: usize = 48;
/// Data sockets: one per session plus one still closing.
pub const DATA_SOCKETS: usize = MAX_SESSIONS + 1;
/// Control socket receive buffer: one full command line.
pub const CONTROL_RX: usize = ftpd::MAX_LINE;
/// Control socket transmit buffer: the longest reply.
pub const CONTROL_TX: usize = 1024;
/// Data socket receive buffer (the STOR window).
pub const DATA_RX: usize = 2048;
/// Data socket transmit buffer (the RETR window).
pub const DATA_TX: usize = 2048;
/// The engine's data buffer, shared by all sessions.
pub const ENGINE_BUF: usize = 2048;
/// Sockets of the diagnostic services.
pub const DIAG_SOCKETS: usize = if cfg!(feature = "diag") { 3 } else { 0 };
/// Every socket the application owns.
pub const SOCKETS: usize = CONTROL_SOCKETS + REFUSERS + DATA_SOCKETS + DIAG_SOCKETS;

/// What [`Resources`] may take on a 32-bit target, without and with the
/// diagnostic services.
pub const RESOURCES_BUDGET: usize = if cfg!(feature = "diag") {
    41 * 1024
} else {
    35 * 1024
};

const _: () = assert!(
    CONTROL_RX >= ftpd::MAX_LINE,
    "a control socket must hold a command line"
);
const _: () = assert!(
    CONTROL_TX >= ftpd::MAX_REPLY,
    "the engine replies only when MAX_REPLY bytes are free"
);
const _: () = assert!(
    REFUSER_TX >= net::REFUSAL.len(),
    "a refuser socket must hold the refusal line"
);
const _: () = assert!(
    DATA_TX >= ftpd::MAX_LINE,
    "the engine lists only when a line fits"
);

#[cfg(target_pointer_width = "32")]
const _: () = assert!(
    core::mem::size_of::<Resources<'static>>() <= RESOURCES_BUDGET,
    "the application's buffers outgrew the QEMU board's RAM budget (see the crate docs)"
);
