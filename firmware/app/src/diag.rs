//! Diagnostic raw-TCP services (feature `diag`): the network ceiling with no
//! FTP and no file system in the path.
//!
//! - **discard** (RFC 863, port 9): reads and drops everything; the STOR
//!   ceiling. It closes when the client does.
//! - **chargen** (RFC 864, port 19): sends the classic rotating 72-column
//!   pattern for as long as the client reads; the RETR ceiling. The client
//!   measures what it needs and closes.
//!
//! Both use data-socket buffer sizes ([`crate::DATA_RX`] / [`crate::DATA_TX`]
//! in the direction that matters), so they measure the same windows that FTP
//! transfers get. One connection at a time per service; the adapter
//! ([`crate::net::SmolNet`]) listens again when it ends.

use smoltcp::socket::tcp::{self, State};

/// Port of the discard service.
pub const DISCARD_PORT: u16 = 9;
/// Port of the chargen service.
pub const CHARGEN_PORT: u16 = 19;

/// A diagnostic service and its position in its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Discard,
    /// `line` is the first character of the current line (0..95), `col`
    /// the position in it (0..74, CR LF at 72 and 73).
    Chargen {
        line: u8,
        col: u8,
    },
}

const LINE: u8 = 72;
const PRINTABLE: u8 = 95;

impl Service {
    /// A chargen service at the start of its pattern.
    pub const CHARGEN: Service = Service::Chargen { line: 0, col: 0 };

    pub fn port(self) -> u16 {
        match self {
            Service::Discard => DISCARD_PORT,
            Service::Chargen { .. } => CHARGEN_PORT,
        }
    }
}

/// The services' socket buffers: the direction that carries the stream gets
/// a data socket's size, the other a token.
pub struct Buffers {
    pub(crate) discard_rx: [u8; crate::DATA_RX],
    pub(crate) discard_tx: [u8; TOKEN],
    pub(crate) chargen_rx: [u8; TOKEN],
    pub(crate) chargen_tx: [u8; crate::DATA_TX],
}

const TOKEN: usize = 64;

impl Default for Buffers {
    fn default() -> Self {
        Buffers::new()
    }
}

impl Buffers {
    pub const fn new() -> Buffers {
        Buffers {
            discard_rx: [0; crate::DATA_RX],
            discard_tx: [0; TOKEN],
            chargen_rx: [0; TOKEN],
            chargen_tx: [0; crate::DATA_TX],
        }
    }
}

/// Serves one poll's worth on `sock`; true when bytes moved.
pub(crate) fn serve(service: &mut Service, sock: &mut tcp::Socket) -> bool {
    let mut moved = false;
    // Both services drop what they receive.
    for _ in 0..2 {
        match sock.recv(|b| (b.len(), b.len())) {
            Ok(n) if n > 0 => moved = true,
            _ => break,
        }
    }
    if let Service::Chargen { line, col } = service {
        for _ in 0..2 {
            if !sock.may_send() {
                break;
            }
            let n = sock
                .send(|buf| {
                    for b in buf.iter_mut() {
                        *b = next_char(line, col);
                    }
                    (buf.len(), buf.len())
                })
                .unwrap_or(0);
            moved |= n > 0;
        }
    }
    match sock.state() {
        // The client is done: finish our side too.
        State::CloseWait => sock.close(),
        // A new connection starts the pattern again.
        State::Listen | State::SynReceived => {
            if let Service::Chargen { line, col } = service {
                (*line, *col) = (0, 0);
            }
        }
        _ => {}
    }
    moved
}

fn next_char(line: &mut u8, col: &mut u8) -> u8 {
    let c = match *col {
        c if c < LINE => b' ' + (*line + c) % PRINTABLE,
        LINE => b'\r',
        _ => b'\n',
    };
    *col += 1;
    if *col == LINE + 2 {
        *col = 0;
        *line = (*line + 1) % PRINTABLE;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chargen_pattern_is_rfc_864() {
        let (mut line, mut col) = (0, 0);
        let out: std::vec::Vec<u8> = (0..74 * 96)
            .map(|_| next_char(&mut line, &mut col))
            .collect();
        let lines: std::vec::Vec<&[u8]> = out.chunks(74).collect();
        assert_eq!(
            &lines[0][..72],
            &(32u8..104).collect::<std::vec::Vec<_>>()[..]
        );
        assert_eq!(&lines[0][72..], b"\r\n");
        assert_eq!(lines[1][0], b'!');
        assert_eq!(lines[1][71], b'h', "line 2 runs from '!' to 'h'");
        // After 95 lines the pattern starts over.
        assert_eq!(lines[95], lines[0]);
    }
}
