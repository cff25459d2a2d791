//! The `session` target's input: a header byte and a list of client actions.
//!
//! The byte format is decoded through [`arbitrary::Unstructured`] and is
//! deliberately simple and invertible, so that [`Scenario::encode`] can turn
//! the scripted sessions under `scenarios/` into seed inputs (see
//! `examples/seed_corpus.rs`) and a person can read a crashing input with
//! `cargo run --example show_session -- FILE`.
//!
//! ```text
//! input   = header action*
//! header  = flags (one byte, see `FLAG_*`)
//! action  = op (byte, taken modulo OPS) operands
//!   CONNECT     from                     a new control connection
//!   SEND        conn len16 bytes         bytes on a control connection, then poll
//!   PIPE        conn len16 bytes         the same without polling (pipelining,
//!                                        a line split at any point)
//!   PASSIVE     which from               the client connects to a passive port
//!   DATA        which len16 bytes        bytes on a data connection
//!   CTRL_FIN    conn                     FIN / RST on a control connection
//!   CTRL_RST    conn
//!   DATA_FIN    which                    FIN / RST on a data connection
//!   DATA_RST    which
//!   ADVANCE     ms32                     the clock moves on
//!   CAP         target cap               a socket's send buffer size (`CAPS`)
//!   READING     target                   the client stops/starts reading a socket
//!   REFUSE                               active connects fail / succeed
//! conn, which, target, from, cap: one byte, used modulo what exists;
//! len16, ms32: little-endian; bytes: `len16` bytes or what is left.
//! ```

use arbitrary::{Arbitrary, Result, Unstructured};

pub const OP_CONNECT: u8 = 0;
pub const OP_SEND: u8 = 1;
pub const OP_PIPE: u8 = 2;
pub const OP_PASSIVE: u8 = 3;
pub const OP_DATA: u8 = 4;
pub const OP_CTRL_FIN: u8 = 5;
pub const OP_CTRL_RST: u8 = 6;
pub const OP_DATA_FIN: u8 = 7;
pub const OP_DATA_RST: u8 = 8;
pub const OP_ADVANCE: u8 = 9;
pub const OP_CAP: u8 = 10;
pub const OP_READING: u8 = 11;
pub const OP_REFUSE: u8 = 12;
pub const OPS: u8 = 13;

/// Only one passive port: a second PASV while one listens must cope.
pub const FLAG_ONE_PASV_PORT: u8 = 1;
/// `pasv_address` is set (NAT / QEMU user networking).
pub const FLAG_PASV_ADDRESS: u8 = 2;
/// `max_sessions` 1 instead of 2: the second client gets `421`.
pub const FLAG_ONE_SESSION: u8 = 4;
/// At the end the clients leave with FIN instead of RST.
pub const FLAG_END_WITH_FIN: u8 = 8;
/// A data buffer of 600 bytes instead of 4096 (a small board).
pub const FLAG_SMALL_BUFFER: u8 = 16;

/// Send-buffer sizes the `CAP` action picks from: around `MAX_REPLY` (512),
/// around `MAX_LINE`, tiny, and the default.
pub const CAPS: [usize; 10] = [0, 1, 64, 511, 512, 513, 600, 1024, 4096, 64 * 1024];

/// Where a connection comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum From {
    /// The client's own address ([`ftpd::testing::CLIENT_IP`]).
    Client,
    /// Another host (port stealing, a second client).
    Other,
    /// The client's address as an IPv4-mapped IPv6 address.
    ClientMapped,
}

impl From {
    fn decode(b: u8) -> Self {
        match b % 3 {
            0 => From::Client,
            1 => From::Other,
            _ => From::ClientMapped,
        }
    }
    fn encode(self) -> u8 {
        match self {
            From::Client => 0,
            From::Other => 1,
            From::ClientMapped => 2,
        }
    }
}

/// A socket the client holds: a control connection or a data connection,
/// counted newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Ctrl(u8),
    Data(u8),
}

impl Target {
    fn decode(b: u8) -> Self {
        if b & 0x80 == 0 {
            Target::Ctrl(b & 0x7f)
        } else {
            Target::Data(b & 0x7f)
        }
    }
    fn encode(self) -> u8 {
        match self {
            Target::Ctrl(i) => i & 0x7f,
            Target::Data(i) => 0x80 | (i & 0x7f),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Connect(From),
    /// Bytes on control connection `conn` (in the order connections were
    /// opened, the first one being 0); `poll: false` pushes them without
    /// letting the server run (pipelining, a line split in pieces).
    Send {
        conn: u8,
        bytes: Vec<u8>,
        poll: bool,
    },
    /// Connect to a listening passive port, newest listener first.
    Passive {
        which: u8,
        from: From,
    },
    /// Bytes on a data connection, newest first.
    Data {
        which: u8,
        bytes: Vec<u8>,
    },
    CtrlFin(u8),
    CtrlRst(u8),
    DataFin(u8),
    DataRst(u8),
    Advance(u32),
    /// Send-buffer size of a socket, an index into [`CAPS`].
    Cap(Target, u8),
    /// Toggle whether the client reads a socket.
    Reading(Target),
    /// Toggle whether active connections (PORT/EPRT) are refused.
    Refuse,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scenario {
    pub flags: u8,
    pub actions: Vec<Action>,
}

/// Longest action list decoded (keeps one run short).
pub const MAX_ACTIONS: usize = 256;

fn byte(u: &mut Unstructured<'_>) -> Result<u8> {
    u8::arbitrary(u)
}

fn len16(u: &mut Unstructured<'_>) -> Result<usize> {
    let lo = byte(u)?;
    let hi = byte(u)?;
    Ok(usize::from(u16::from_le_bytes([lo, hi])))
}

fn bytes(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let n = len16(u)?.min(u.len());
    Ok(u.bytes(n)?.to_vec())
}

impl Action {
    fn decode(u: &mut Unstructured<'_>) -> Result<Self> {
        let op = byte(u)? % OPS;
        Ok(match op {
            OP_CONNECT => Action::Connect(From::decode(byte(u)?)),
            OP_SEND | OP_PIPE => Action::Send {
                conn: byte(u)?,
                bytes: bytes(u)?,
                poll: op == OP_SEND,
            },
            OP_PASSIVE => Action::Passive {
                which: byte(u)?,
                from: From::decode(byte(u)?),
            },
            OP_DATA => Action::Data {
                which: byte(u)?,
                bytes: bytes(u)?,
            },
            OP_CTRL_FIN => Action::CtrlFin(byte(u)?),
            OP_CTRL_RST => Action::CtrlRst(byte(u)?),
            OP_DATA_FIN => Action::DataFin(byte(u)?),
            OP_DATA_RST => Action::DataRst(byte(u)?),
            OP_ADVANCE => {
                let mut b = [0u8; 4];
                for x in &mut b {
                    *x = byte(u)?;
                }
                Action::Advance(u32::from_le_bytes(b))
            }
            OP_CAP => Action::Cap(Target::decode(byte(u)?), byte(u)?),
            OP_READING => Action::Reading(Target::decode(byte(u)?)),
            _ => Action::Refuse,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let with_bytes = |op: u8, first: u8, b: &[u8], out: &mut Vec<u8>| {
            let n = u16::try_from(b.len()).expect("at most 65535 bytes per action");
            out.push(op);
            out.push(first);
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(b);
        };
        match self {
            Action::Connect(f) => out.extend_from_slice(&[OP_CONNECT, f.encode()]),
            Action::Send { conn, bytes, poll } => {
                let op = if *poll { OP_SEND } else { OP_PIPE };
                with_bytes(op, *conn, bytes, out)
            }
            Action::Passive { which, from } => {
                out.extend_from_slice(&[OP_PASSIVE, *which, from.encode()])
            }
            Action::Data { which, bytes } => with_bytes(OP_DATA, *which, bytes, out),
            Action::CtrlFin(c) => out.extend_from_slice(&[OP_CTRL_FIN, *c]),
            Action::CtrlRst(c) => out.extend_from_slice(&[OP_CTRL_RST, *c]),
            Action::DataFin(c) => out.extend_from_slice(&[OP_DATA_FIN, *c]),
            Action::DataRst(c) => out.extend_from_slice(&[OP_DATA_RST, *c]),
            Action::Advance(ms) => {
                out.push(OP_ADVANCE);
                out.extend_from_slice(&ms.to_le_bytes());
            }
            Action::Cap(t, c) => out.extend_from_slice(&[OP_CAP, t.encode(), *c]),
            Action::Reading(t) => out.extend_from_slice(&[OP_READING, t.encode()]),
            Action::Refuse => out.push(OP_REFUSE),
        }
    }
}

impl Scenario {
    /// The bytes that decode to this scenario.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.flags];
        for a in &self.actions {
            a.encode(&mut out);
        }
        out
    }

    fn decode(u: &mut Unstructured<'_>) -> Result<Self> {
        let flags = byte(u)?;
        let mut actions = Vec::new();
        while !u.is_empty() && actions.len() < MAX_ACTIONS {
            actions.push(Action::decode(u)?);
        }
        Ok(Scenario { flags, actions })
    }
}

impl<'a> Arbitrary<'a> for Scenario {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Scenario::decode(u)
    }

    fn arbitrary_take_rest(mut u: Unstructured<'a>) -> Result<Self> {
        Scenario::decode(&mut u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        let s = Scenario {
            flags: FLAG_END_WITH_FIN | FLAG_ONE_SESSION,
            actions: vec![
                Action::Connect(From::Other),
                Action::Send {
                    conn: 1,
                    bytes: b"USER test\r\n".to_vec(),
                    poll: true,
                },
                Action::Send {
                    conn: 0,
                    bytes: vec![0xff; 700],
                    poll: false,
                },
                Action::Passive {
                    which: 0,
                    from: From::ClientMapped,
                },
                Action::Data {
                    which: 3,
                    bytes: b"data".to_vec(),
                },
                Action::CtrlFin(0),
                Action::CtrlRst(1),
                Action::DataFin(2),
                Action::DataRst(3),
                Action::Advance(300_001),
                Action::Cap(Target::Data(2), 4),
                Action::Reading(Target::Ctrl(1)),
                Action::Refuse,
            ],
        };
        let bytes = s.encode();
        let back = Scenario::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap();
        assert_eq!(back, s);
    }
}
