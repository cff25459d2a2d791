//! The harness: plays scripted FTP client sessions against a target (the host
//! server, the virtual board and the firmware under QEMU), snapshots the transcripts,
//! replays captured sessions and records new ones.
//!
//! It is a client and nothing else: it reaches every target over TCP, like
//! FileZilla does. See `scenarios/README.md` for the scenario format and
//! `../shared/DESIGN.md` ("The harness") for the contracts.
//!
//! - [`scenario`]: the scenario file format (parser).
//! - [`fixture`]: fixture trees, filler bytes, checksums.
//! - [`client`]: a literal FTP client (control and data connections).
//! - [`player`]: plays a scenario into a [`transcript::Transcript`].
//! - [`redact`]: the one table of redactions.
//! - [`snapshot`]: insta-format snapshot files, compared by the CLI.
//! - [`target`]: what can serve (host-dir, host-fat, sim, qemu, qemu-10).
//! - [`netns`]: the network namespaces the board targets live in.
//! - [`board`]: QEMU binaries, the firmware, fixture images for the boards.
//! - [`run`]: every scenario on every target, the table, the verdict.
//! - [`replay`]: captured sessions (pcap, pcapng, text logs) replayed.
//! - [`record`]: a proxy that writes a live session as a scenario.
//! - [`bench`], [`footprint`]: throughput and footprint (issue 6).
//! - [`netfuzz`]: the network fuzzer (issue 7).
//! - [`testkit`]: boards with SD cards for tests (load, faults).
//! - [`cable`]: cable pull on a running board (QMP `set_link`, TAP down).

pub mod bench;
pub mod board;
pub mod cable;
pub mod capture;
pub mod client;
pub mod fixture;
pub mod footprint;
pub mod image;
pub mod load;
pub mod netfuzz;
pub mod netns;
pub mod player;
pub mod record;
pub mod redact;
pub mod replay;
pub mod run;
pub mod scenario;
pub mod snapshot;
pub mod target;
pub mod testkit;
pub mod transcript;
