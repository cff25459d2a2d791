//! Control-channel framing: bytes into command lines.
//!
//! RFC 959 ends every command with CRLF. Real clients are looser: some send
//! bare LF, and a client that sends `ABOR` as TCP urgent data (Python's
//! ftplib) can lose the LF to the out-of-band byte. So a line ends at CR or
//! LF, and empty lines are skipped. Telnet commands (RFC 854) are removed:
//! `IAC IAC` is a literal 0xFF, `IAC WILL/WONT/DO/DONT x` and `IAC <cmd>`
//! vanish (lftp sends `IAC IP IAC DM` before `ABOR`; FAR answers option
//! negotiation).

const IAC: u8 = 0xFF;

/// What [`extract`] found at the front of the received bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A command line of `len` bytes is in `out`; drop `consumed` input bytes.
    Line { consumed: usize, len: usize },
    /// Only a line terminator (or Telnet noise): drop `consumed` bytes.
    Empty { consumed: usize },
    /// No complete line yet.
    Partial,
    /// No terminator within `out.len()` bytes: drop `consumed` bytes, answer
    /// `500`, and keep dropping until the next terminator.
    TooLong { consumed: usize },
}

/// Looks for one line at the front of `raw`, copying it without Telnet
/// sequences into `out`. A line must be shorter than `out`: one that fills
/// it is too long whether or not its terminator has arrived yet, so the
/// verdict never depends on how the bytes were split into segments, and
/// `out.len()` bytes of lookahead always suffice (the control socket's
/// receive buffer must hold that many).
pub fn extract(raw: &[u8], out: &mut [u8]) -> Frame {
    let mut i = 0;
    let mut len = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'\r' || b == b'\n' {
            if len == out.len() {
                return Frame::TooLong { consumed: i };
            }
            let mut consumed = i + 1;
            if b == b'\r' && raw.get(i + 1) == Some(&b'\n') {
                consumed += 1;
            }
            return if len == 0 {
                Frame::Empty { consumed }
            } else {
                Frame::Line { consumed, len }
            };
        }
        let Some((byte, step)) = telnet(raw, i) else {
            return unfinished(len, out.len(), i);
        };
        if let Some(byte) = byte {
            if len == out.len() {
                return Frame::TooLong { consumed: i };
            }
            out[len] = byte;
            len += 1;
        }
        i += step;
    }
    unfinished(len, out.len(), i)
}

/// The input ended (at byte `at`) before the line did: too long already if
/// the line fills the buffer, otherwise wait for more.
fn unfinished(len: usize, cap: usize, at: usize) -> Frame {
    if len == cap {
        Frame::TooLong { consumed: at }
    } else {
        Frame::Partial
    }
}

/// While discarding an over-long line: how many bytes to drop, and whether
/// the terminator was found (discarding ends). Telnet sequences are skipped
/// as [`extract`] skips them (a CR that is an option byte ends nothing), and
/// a sequence cut by the end of the input is left for the next call.
pub fn skip_to_terminator(raw: &[u8]) -> (usize, bool) {
    let mut i = 0;
    while i < raw.len() {
        match telnet(raw, i) {
            None => return (i, false),
            Some((Some(b'\r' | b'\n'), _)) => return (i + 1, true),
            Some((_, step)) => i += step,
        }
    }
    (raw.len(), false)
}

/// The byte at `raw[i]` (`i` in bounds) as the line sees it, and how many
/// input bytes it takes: a plain byte is itself, `IAC IAC` a literal 0xFF,
/// other Telnet sequences nothing. `None` when the input ends inside a
/// sequence (it is left for the next call).
#[inline(always)]
fn telnet(raw: &[u8], i: usize) -> Option<(Option<u8>, usize)> {
    let b = raw[i];
    if b != IAC {
        return Some((Some(b), 1));
    }
    Some(match raw.get(i + 1)? {
        &IAC => (Some(IAC), 2),
        0xFB..=0xFE if i + 2 >= raw.len() => return None,
        0xFB..=0xFE => (None, 3),
        0xF0..=0xFA => (None, 2),
        _ => (None, 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(raw: &[u8]) -> (Frame, std::vec::Vec<u8>) {
        let mut out = [0u8; 16];
        let f = extract(raw, &mut out);
        let line = match f {
            Frame::Line { len, .. } => out[..len].to_vec(),
            _ => vec![],
        };
        (f, line)
    }

    #[test]
    fn crlf_lf_and_cr_end_a_line() {
        assert_eq!(
            one(b"NOOP\r\nPWD\r\n"),
            (
                Frame::Line {
                    consumed: 6,
                    len: 4
                },
                b"NOOP".to_vec()
            )
        );
        assert_eq!(
            one(b"NOOP\nPWD"),
            (
                Frame::Line {
                    consumed: 5,
                    len: 4
                },
                b"NOOP".to_vec()
            )
        );
        assert_eq!(
            one(b"ABOR\r"),
            (
                Frame::Line {
                    consumed: 5,
                    len: 4
                },
                b"ABOR".to_vec()
            )
        );
    }

    #[test]
    fn empty_lines_are_skipped() {
        assert_eq!(one(b"\r\nNOOP").0, Frame::Empty { consumed: 2 });
        assert_eq!(one(b"\n").0, Frame::Empty { consumed: 1 });
    }

    #[test]
    fn partial_until_terminator() {
        assert_eq!(one(b"NOO").0, Frame::Partial);
        assert_eq!(one(b"").0, Frame::Partial);
        assert_eq!(one(b"AB\xff").0, Frame::Partial);
        assert_eq!(one(b"AB\xff\xfd").0, Frame::Partial);
    }

    #[test]
    fn telnet_sequences_are_removed() {
        // lftp: IAC IP IAC DM ABOR
        assert_eq!(one(b"\xff\xf4\xff\xf2ABOR\r\n").1, b"ABOR".to_vec());
        // option negotiation inside a line
        assert_eq!(one(b"NO\xff\xfb\x01OP\r\n").1, b"NOOP".to_vec());
        // escaped 0xFF stays (and later fails UTF-8 validation)
        assert_eq!(one(b"A\xff\xffB\n").1, b"A\xffB".to_vec());
        // IAC before an ordinary byte: only the IAC goes
        assert_eq!(one(b"\xffNOOP\n").1, b"NOOP".to_vec());
    }

    #[test]
    fn too_long_is_reported_not_truncated() {
        let raw = [b'A'; 40];
        assert_eq!(one(&raw).0, Frame::TooLong { consumed: 16 });
        // A line that fills the buffer is too long, with or without its
        // terminator in the same segment.
        assert_eq!(one(&[b'A'; 16]).0, Frame::TooLong { consumed: 16 });
        let mut exact = [b'A'; 17];
        exact[16] = b'\n';
        assert_eq!(one(&exact).0, Frame::TooLong { consumed: 16 });
        let mut fits = [b'A'; 16];
        fits[15] = b'\n';
        assert!(matches!(one(&fits).0, Frame::Line { len: 15, .. }));
        assert_eq!(one(&[b'A'; 15]).0, Frame::Partial);
        // Also when the input ends inside a Telnet sequence.
        let mut iac = [b'A'; 17];
        iac[16] = 0xff;
        assert_eq!(one(&iac).0, Frame::TooLong { consumed: 16 });
    }

    #[test]
    fn skipping_finds_the_terminator() {
        assert_eq!(skip_to_terminator(b"xxxx\r\nNOOP"), (5, true));
        assert_eq!(skip_to_terminator(b"xxxx"), (4, false));
        // IAC DONT <CR>: the CR is an option byte, not the end of the line.
        assert_eq!(skip_to_terminator(b"x\xff\xfe\rx\n"), (6, true));
        assert_eq!(skip_to_terminator(b"x\xff\xfe"), (1, false));
        assert_eq!(skip_to_terminator(b"\xff"), (0, false));
    }
}
