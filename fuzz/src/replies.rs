//! Checks the bytes a server sends on a control connection, as they come.
//!
//! What every reply line must look like (RFC 959 §4.2, and the engine's own
//! rule that every line carries text after the code: FileZilla drops reply
//! lines of three characters or fewer):
//! - a line ends with CRLF and holds no other CR or LF;
//! - a reply line is three digits (first one 1-5), then ` ` (last line) or
//!   `-` (first line of a multi-line reply), then text that is not blank;
//! - inside a multi-line reply, continuation lines start with a space (so
//!   none can be taken for the end) and the reply ends with the same code
//!   followed by a space.
//!
//! The engine sends whole replies only, so after each poll no partial line
//! may be left: a partial line means a reply was cut (a send that did not
//! fit the socket).
//!
//! Every line inside a multi-line reply is indented (no reply of another
//! command lands inside it: fixed engine bug, fuzz/README.md "Findings").

use std::fmt::Write as _;

#[derive(Default, Debug)]
pub struct ReplyChecker {
    /// Bytes of a line not yet ended by CRLF.
    partial: Vec<u8>,
    /// Inside a multi-line reply with this code.
    multi: Option<[u8; 3]>,
    /// Every complete line, for assertions and failure messages.
    pub lines: Vec<String>,
}

impl ReplyChecker {
    /// Feeds newly sent bytes; panics on a malformed line.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.partial.push(b);
            if self.partial.ends_with(b"\r\n") {
                let line = core::mem::take(&mut self.partial);
                self.line(&line[..line.len() - 2]);
            }
        }
    }

    /// True while no reply is cut in the middle.
    pub fn complete(&self) -> bool {
        self.partial.is_empty()
    }

    pub fn pending(&self) -> &[u8] {
        &self.partial
    }

    /// True when a multi-line reply is still open.
    pub fn in_multi_line(&self) -> bool {
        self.multi.is_some()
    }

    fn line(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line).into_owned();
        self.lines.push(text.clone());
        assert!(
            !line.contains(&b'\r') && !line.contains(&b'\n'),
            "a reply line holds a bare CR or LF: {text:?}\n{}",
            self.context()
        );
        if let Some(code) = self.multi {
            if line.len() >= 4 && line[..3] == code && line[3] == b' ' {
                self.multi = None;
                self.check_text(&text, &line[4..]);
                return;
            }
            assert!(
                line.first() == Some(&b' '),
                "a continuation line of a {} reply does not start with a space: {text:?}\n{}",
                String::from_utf8_lossy(&code),
                self.context()
            );
            return;
        }
        assert!(
            line.len() >= 4
                && line[..3].iter().all(u8::is_ascii_digit)
                && (b'1'..=b'5').contains(&line[0])
                && (line[3] == b' ' || line[3] == b'-'),
            "a reply line does not start with a code and a separator: {text:?}\n{}",
            self.context()
        );
        self.check_text(&text, &line[4..]);
        if line[3] == b'-' {
            self.multi = Some([line[0], line[1], line[2]]);
        }
    }

    fn check_text(&self, text: &str, after_code: &[u8]) {
        assert!(
            after_code.iter().any(|b| !b.is_ascii_whitespace()),
            "a reply line without text after the code: {text:?}\n{}",
            self.context()
        );
    }

    /// The last lines seen, for failure messages.
    pub fn context(&self) -> String {
        let mut s = String::from("last reply lines:\n");
        let from = self.lines.len().saturating_sub(12);
        for l in &self.lines[from..] {
            let _ = writeln!(s, "  {l:?}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_replies_pass() {
        let mut c = ReplyChecker::default();
        c.feed(b"220 ready\r\n211-Features:\r\n SIZE\r\n211 End\r\n");
        c.feed(b"213-Status of /:\r\n drwx a\r\n213 End of status.\r\n");
        assert!(c.complete());
        c.feed(b"200 NO");
        assert!(!c.complete());
        c.feed(b"OP ok.\r\n");
        assert!(c.complete());
    }

    #[test]
    #[should_panic(expected = "without text")]
    fn code_without_text_fails() {
        ReplyChecker::default().feed(b"200 \r\n");
    }

    #[test]
    #[should_panic(expected = "does not start with a code")]
    fn bare_code_fails() {
        ReplyChecker::default().feed(b"200\r\n");
    }

    #[test]
    #[should_panic(expected = "211 reply")]
    fn unindented_continuation_fails() {
        ReplyChecker::default().feed(b"211-a\r\nSIZE\r\n211 b\r\n");
    }
}
