//! Replies as they arrive on a control connection, checked for form.
//!
//! Whatever a client sends, every reply must be one a client can frame
//! (RFC 959 §4.2): lines end with CRLF; a reply's first line is three
//! digits (the first 1-5, the second 0-5), then a space or (multi-line) a
//! hyphen, then text; a multi-line reply ends with a line that starts with
//! the same code and a space; no line inside it starts with another code
//! and a space (a client would take it for the end). No line holds an
//! ASCII control byte but tab: a name the client sent must not come back as
//! a line break or a terminal escape. (DEL and the C1 controls are legal in
//! FAT long names and the engine accepts them in names, so they may come
//! back in 257/550 replies; they are not flagged.) Lines are at most
//! [`MAX_LINE`] bytes.

/// Longest reply line accepted (the engine's whole reply buffer is 512).
pub const MAX_LINE: usize = 1024;
/// Most lines in one reply.
pub const MAX_LINES: usize = 10_000;

/// A complete reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn text(&self) -> &str {
        self.lines.first().map_or("", |l| l.get(4..).unwrap_or(""))
    }
}

/// What [`Parser::feed`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Reply(Reply),
    /// A line that breaks the rules; the parser resynchronises on the next
    /// line.
    Malformed {
        why: String,
        line: Vec<u8>,
    },
}

/// Frames replies out of a byte stream, in any split.
#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
    /// Inside a multi-line reply: its code and lines so far.
    multi: Option<(u16, Vec<String>)>,
}

fn show(b: &[u8]) -> String {
    super::input::quoted(b)
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Take bytes; return every reply (or malformed line) they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = self.buf.drain(..=i).collect();
            if let Some(e) = self.line(raw) {
                out.push(e);
            }
        }
        if self.buf.len() > MAX_LINE {
            let raw = std::mem::take(&mut self.buf);
            out.push(Event::Malformed {
                why: format!("a reply line longer than {MAX_LINE} bytes"),
                line: raw[..MAX_LINE.min(raw.len())].to_vec(),
            });
            // Drop up to the next line end.
            self.multi = None;
        }
        out
    }

    /// The connection ended: anything left unfinished is malformed.
    pub fn finish(&mut self) -> Option<Event> {
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            return Some(Event::Malformed {
                why: "the connection ended inside a reply line".into(),
                line,
            });
        }
        if let Some((code, lines)) = self.multi.take() {
            return Some(Event::Malformed {
                why: format!(
                    "the connection ended inside a multi-line {code} reply ({} lines)",
                    lines.len()
                ),
                line: lines.join("\n").into_bytes(),
            });
        }
        None
    }

    fn line(&mut self, raw: Vec<u8>) -> Option<Event> {
        let bad = |why: String, line: &[u8]| {
            Some(Event::Malformed {
                why,
                line: line.to_vec(),
            })
        };
        let Some(body) = raw.strip_suffix(b"\r\n") else {
            self.multi = None;
            return bad("a reply line ends with a bare LF".into(), &raw);
        };
        if body.len() > MAX_LINE {
            self.multi = None;
            return bad(format!("a reply line of {} bytes", body.len()), body);
        }
        if let Some(c) = body.iter().find(|&&c| c < 0x20 && c != b'\t') {
            self.multi = None;
            return bad(
                format!("control byte 0x{c:02x} in a reply line {}", show(body)),
                body,
            );
        }
        let text = String::from_utf8_lossy(body).into_owned();
        let code_of = |b: &[u8]| -> Option<u16> {
            (b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(&b[..3]).unwrap().parse().unwrap())
        };
        if let Some((code, mut lines)) = self.multi.take() {
            if lines.len() >= MAX_LINES {
                return bad(
                    format!("a {code} reply of more than {MAX_LINES} lines"),
                    body,
                );
            }
            match (code_of(body), body.get(3)) {
                (Some(c), Some(b' ')) | (Some(c), None) if c == code => {
                    lines.push(text);
                    return Some(Event::Reply(Reply { code, lines }));
                }
                (Some(c), Some(b' ')) => {
                    return bad(
                        format!(
                            "inside a multi-line {code} reply, a line that starts with another code ({c}): {}",
                            show(body)
                        ),
                        body,
                    );
                }
                _ => {
                    lines.push(text);
                    self.multi = Some((code, lines));
                    return None;
                }
            }
        }
        let Some(code) = code_of(body) else {
            return bad(
                format!("a reply that does not start with a code: {}", show(body)),
                body,
            );
        };
        if !(b'1'..=b'5').contains(&body[0]) || !(b'0'..=b'5').contains(&body[1]) {
            return bad(
                format!("reply code {code} is not one RFC 959 defines"),
                body,
            );
        }
        match body.get(3) {
            Some(b' ') if body.len() > 4 => Some(Event::Reply(Reply {
                code,
                lines: vec![text],
            })),
            Some(b'-') => {
                self.multi = Some((code, vec![text]));
                None
            }
            Some(b' ') | None => bad(
                format!("reply {code} has no text (FileZilla drops such lines)"),
                body,
            ),
            Some(_) => bad(
                format!(
                    "reply code {code} is not followed by a space or hyphen: {}",
                    show(body)
                ),
                body,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8]) -> Vec<Event> {
        let mut p = Parser::new();
        let mut v = p.feed(bytes);
        v.extend(p.finish());
        v
    }

    fn codes(ev: &[Event]) -> Vec<u16> {
        ev.iter()
            .map(|e| match e {
                Event::Reply(r) => r.code,
                Event::Malformed { .. } => 0,
            })
            .collect()
    }

    #[test]
    fn good_replies_in_any_split() {
        let s = b"220 ready\r\n211-Features:\r\n MDTM\r\n SIZE\r\n211 End\r\n257 \"/a\"\"b\" created\r\n";
        let whole = all(s);
        assert_eq!(codes(&whole), [220, 211, 257]);
        if let Event::Reply(r) = &whole[1] {
            assert_eq!(r.lines.len(), 4);
        }
        for cut in 0..s.len() {
            let mut p = Parser::new();
            let mut v = p.feed(&s[..cut]);
            v.extend(p.feed(&s[cut..]));
            v.extend(p.finish());
            assert_eq!(v, whole, "cut at {cut}");
        }
    }

    #[test]
    fn malformed_replies() {
        let bad = |s: &[u8]| {
            let v = all(s);
            assert!(
                v.iter().any(|e| matches!(e, Event::Malformed { .. })),
                "{} passed: {v:?}",
                show(s)
            );
        };
        bad(b"200 ok\n");
        bad(b"20 ok\r\n");
        bad(b"hello\r\n");
        bad(b"200\r\n");
        bad(b"200 \r\n");
        bad(b"200x\r\n");
        bad(b"700 ok\r\n");
        bad(b"290 ok\r\n");
        bad(b"200 o\rk\r\n");
        bad(b"550 a\x1b[2Jb\r\n");
        bad(b"211-a\r\n 226 b\r\n213 c\r\n");
        bad(b"211-a\r\n x\r\n");
        bad(b"200 unfinished");
        let mut long = b"200 ".to_vec();
        long.extend(std::iter::repeat_n(b'a', 2000));
        long.extend_from_slice(b"\r\n");
        bad(&long);
    }

    #[test]
    fn continuation_lines_may_repeat_the_code_with_a_hyphen() {
        assert_eq!(codes(&all(b"214-a\r\n214-b\r\n  c\r\n214 end\r\n")), [214]);
    }
}
