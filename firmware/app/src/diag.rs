//! Diagnostic raw-TCP services (feature `diag`): the ceilings of the
//! benchmarks (issue 6), with no FTP (or no network) in the path.
//!
//! - **discard** (RFC 863, port 9): reads and drops everything; the STOR
//!   ceiling. It closes when the client does.
//! - **chargen** (RFC 864, port 19): sends the classic rotating 72-column
//!   pattern for as long as the client reads; the RETR ceiling. The client
//!   measures what it needs and closes.
//! - **sdbench** (port 7, this project's own): the storage ceiling. The
//!   client sends one line, a number of MiB in decimal (`16\n`); the board
//!   reads that much from the start of its card sequentially through the
//!   FAT layer's block cache (one multi-block command per cache line), then
//!   reads and writes every line back unchanged, and answers one line and
//!   closes:
//!
//!   ```text
//!   sdbench bytes=16777216 read_ms=812 write_ms=1630
//!   sdbench error: <why>
//!   ```
//!
//!   `write_ms` is the time of the writes alone (the second pass less the
//!   first). The card's content is unchanged (the cache is flushed first),
//!   but the board serves nothing else while it runs: run it with no
//!   transfer under way. The board does the work (it owns the block device):
//!   it calls [`crate::App::serve_sdbench`] in its loop. A board that does
//!   not answers nothing and the client's read times out.
//!
//! Discard and chargen use data-socket buffer sizes ([`crate::DATA_RX`] /
//! [`crate::DATA_TX`] in the direction that matters), so they measure the
//! same windows that FTP transfers get. One connection at a time per
//! service; the adapter ([`crate::net::SmolNet`]) listens again when it
//! ends. They run when [`crate::Settings::diag`] is on (the default with the
//! feature); the virtual board compiles them always and turns them on with
//! `sim --diag`.

use smoltcp::socket::tcp::{self, State};

/// Port of the discard service.
pub const DISCARD_PORT: u16 = 9;
/// Port of the chargen service.
pub const CHARGEN_PORT: u16 = 19;
/// Port of the sdbench service.
pub const SDBENCH_PORT: u16 = 7;
/// The most MiB one sdbench request may ask for.
pub const SDBENCH_MAX_MIB: u32 = 4096;

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
    SdBench(SdBench),
}

/// Where an sdbench connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdBench {
    /// Waiting for the request line.
    Idle,
    /// Asked for this many MiB; the board has not answered yet.
    Pending(u32),
    /// Answered; closing.
    Answered,
}

/// What a board measured for an sdbench request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdBenchResult {
    /// Bytes read, then written back.
    pub bytes: u64,
    pub read_ms: u64,
    pub write_ms: u64,
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
            Service::SdBench(_) => SDBENCH_PORT,
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
    pub(crate) sdbench_rx: [u8; TOKEN],
    pub(crate) sdbench_tx: [u8; 2 * TOKEN],
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
            sdbench_rx: [0; TOKEN],
            sdbench_tx: [0; 2 * TOKEN],
        }
    }
}

/// Serves one poll's worth on `sock`; true when bytes moved.
pub(crate) fn serve(service: &mut Service, sock: &mut tcp::Socket) -> bool {
    if let Service::SdBench(state) = service {
        return serve_sdbench(state, sock);
    }
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

/// The sdbench socket: reads the request line, refuses a bad one, closes
/// after the answer.
fn serve_sdbench(state: &mut SdBench, sock: &mut tcp::Socket) -> bool {
    match sock.state() {
        State::Listen | State::SynReceived | State::Closed | State::TimeWait => {
            *state = SdBench::Idle;
            return false;
        }
        State::Established | State::CloseWait => {}
        _ => return false,
    }
    if *state != SdBench::Idle {
        if *state == SdBench::Answered && sock.state() == State::CloseWait {
            sock.close();
        }
        return false;
    }
    let mut line = [0u8; TOKEN];
    let n = sock.peek_slice(&mut line).unwrap_or(0);
    let Some(end) = line[..n].iter().position(|&b| b == b'\n') else {
        if n == TOKEN || sock.state() == State::CloseWait {
            answer(
                state,
                sock,
                b"sdbench error: expected a number of MiB and a newline\r\n",
            );
        }
        return false;
    };
    let _ = sock.recv_slice(&mut line[..end + 1]);
    match parse_mib(&line[..end]) {
        Some(mib) => *state = SdBench::Pending(mib),
        None => answer(
            state,
            sock,
            b"sdbench error: expected a number of MiB from 1 to 4096\r\n",
        ),
    }
    true
}

/// `16`, `16\r`, ` 16 ` -> 16; nothing else.
fn parse_mib(line: &[u8]) -> Option<u32> {
    let t = line.trim_ascii();
    if t.is_empty() || t.len() > 4 || !t.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = t.iter().fold(0u32, |a, &d| a * 10 + u32::from(d - b'0'));
    (1..=SDBENCH_MAX_MIB).contains(&n).then_some(n)
}

/// Sends the answer line and closes.
pub(crate) fn answer(state: &mut SdBench, sock: &mut tcp::Socket, line: &[u8]) {
    let _ = sock.send_slice(line);
    sock.close();
    *state = SdBench::Answered;
}

/// The answer line for a measurement or an error.
pub(crate) fn format_answer(out: &mut [u8; 2 * TOKEN], r: Result<SdBenchResult, &str>) -> usize {
    use core::fmt::Write;
    struct W<'a>(&'a mut [u8], usize);
    impl Write for W<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let room = self.0.len() - self.1;
            let n = s.len().min(room);
            self.0[self.1..self.1 + n].copy_from_slice(&s.as_bytes()[..n]);
            self.1 += n;
            Ok(())
        }
    }
    let mut w = W(&mut out[..2 * TOKEN - 2], 0);
    let _ = match r {
        Ok(r) => write!(
            w,
            "sdbench bytes={} read_ms={} write_ms={}",
            r.bytes, r.read_ms, r.write_ms
        ),
        Err(e) => write!(w, "sdbench error: {e}"),
    };
    let n = w.1;
    out[n..n + 2].copy_from_slice(b"\r\n");
    n + 2
}

/// The RFC 864 pattern from its start: fills buffers with the bytes that
/// follow. The virtual board's host-socket services share it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pattern {
    line: u8,
    col: u8,
}

impl Pattern {
    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf.iter_mut() {
            *b = next_char(&mut self.line, &mut self.col);
        }
    }
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
        let mut p = Pattern::default();
        let mut again = vec![0u8; out.len()];
        let (a, b) = again.split_at_mut(1000);
        p.fill(a);
        p.fill(b);
        assert_eq!(again, out, "Pattern::fill continues where it stopped");
    }

    #[test]
    fn sdbench_requests_and_answers() {
        assert_eq!(parse_mib(b"16"), Some(16));
        assert_eq!(parse_mib(b" 16\r"), Some(16));
        assert_eq!(parse_mib(b"4096"), Some(4096));
        for bad in [&b""[..], b"0", b"4097", b"-1", b"1 6", b"sixteen", b"99999"] {
            assert_eq!(parse_mib(bad), None, "{:?}", bad);
        }
        let mut out = [0u8; 2 * TOKEN];
        let ok = SdBenchResult {
            bytes: 16 << 20,
            read_ms: 812,
            write_ms: 1630,
        };
        let n = format_answer(&mut out, Ok(ok));
        assert_eq!(
            &out[..n],
            b"sdbench bytes=16777216 read_ms=812 write_ms=1630\r\n"
        );
        let n = format_answer(&mut out, Err("card error"));
        assert_eq!(&out[..n], b"sdbench error: card error\r\n");
        let long = core::str::from_utf8(&[b'x'; 300]).unwrap();
        let n = format_answer(&mut out, Err(long));
        assert_eq!(n, out.len(), "cut to the buffer");
        assert!(out.ends_with(b"\r\n"));
    }
}
