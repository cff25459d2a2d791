//! Replies: codes (RFC 959 §4.2) and their bytes.
//!
//! Every reply line carries text after the code (FileZilla drops lines of
//! three characters or fewer). A multi-line reply is `ddd-first line`,
//! continuation lines that start with a space, and `ddd last line`
//! (RFC 959 §4.2); continuation lines are indented so none can be mistaken
//! for the end.

use core::fmt;

macro_rules! reply_codes {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, )*) => {
        /// A reply code, named for what it means.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u16)]
        pub enum ReplyCode { $( $(#[$doc])* $name = $code, )* }
    };
}

reply_codes! {
    /// 125: data connection already open; transfer starting.
    DataAlreadyOpen = 125,
    /// 150: file status okay; about to open the data connection.
    FileStatusOk = 150,
    /// 200: command okay.
    Ok = 200,
    /// 202: command not needed here (ACCT).
    Superfluous = 202,
    /// 211: system status / FEAT.
    SystemStatus = 211,
    /// 213: file status (SIZE, MDTM, STAT path).
    FileStatus = 213,
    /// 214: help message.
    Help = 214,
    /// 215: system type.
    SystemType = 215,
    /// 220: service ready.
    ServiceReady = 220,
    /// 221: closing control connection.
    Closing = 221,
    /// 225: data connection open, no transfer in progress.
    DataOpenNoTransfer = 225,
    /// 226: closing data connection; file action successful.
    TransferComplete = 226,
    /// 227: entering passive mode (h1,h2,h3,h4,p1,p2).
    PassiveMode = 227,
    /// 229: entering extended passive mode (|||port|).
    ExtendedPassiveMode = 229,
    /// 230: user logged in.
    LoggedIn = 230,
    /// 250: requested file action okay, completed.
    FileActionOk = 250,
    /// 257: "PATHNAME" created / is current directory.
    PathCreated = 257,
    /// 331: user name okay, need password.
    NeedPassword = 331,
    /// 350: requested file action pending further information (RNFR, REST).
    FileActionPending = 350,
    /// 421: service not available, closing control connection.
    ServiceNotAvailable = 421,
    /// 425: can't open data connection.
    CantOpenDataConnection = 425,
    /// 426: connection closed; transfer aborted.
    TransferAborted = 426,
    /// 450: file unavailable (busy).
    FileBusy = 450,
    /// 451: local error in processing.
    LocalError = 451,
    /// 452: insufficient storage space.
    InsufficientStorage = 452,
    /// 500: syntax error, command unrecognized.
    SyntaxError = 500,
    /// 501: syntax error in parameters or arguments.
    ArgumentSyntaxError = 501,
    /// 502: command not implemented.
    NotImplemented = 502,
    /// 503: bad sequence of commands.
    BadSequence = 503,
    /// 504: command not implemented for that parameter.
    ParameterNotImplemented = 504,
    /// 522: network protocol not supported (RFC 2428).
    ProtocolNotSupported = 522,
    /// 530: not logged in.
    NotLoggedIn = 530,
    /// 550: file unavailable (not found, no access).
    FileUnavailable = 550,
    /// 552: exceeded storage allocation.
    ExceededStorage = 552,
    /// 553: file name not allowed.
    NameNotAllowed = 553,
    /// 554: requested action not taken: invalid REST parameter (RFC 3659).
    InvalidRestart = 554,
}

impl ReplyCode {
    pub const fn code(self) -> u16 {
        self as u16
    }
}

/// Formats replies into a caller-provided buffer. Text that does not fit is
/// cut (the reply stays well-formed: the final line is always complete).
pub struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
    overflow: bool,
}

/// Bytes kept free for the final line of a multi-line reply.
const FINAL_LINE_RESERVE: usize = 64;

impl<'b> Writer<'b> {
    pub fn new(buf: &'b mut [u8]) -> Self {
        Writer {
            buf,
            len: 0,
            overflow: false,
        }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    fn put(&mut self, s: &[u8], limit: usize) {
        let room = limit.saturating_sub(self.len);
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
        if n < s.len() {
            self.overflow = true;
        }
    }

    fn body_limit(&self) -> usize {
        self.buf.len().saturating_sub(FINAL_LINE_RESERVE)
    }

    /// A single-line reply: `code text\r\n`.
    pub fn line(&mut self, code: ReplyCode, text: fmt::Arguments<'_>) {
        self.code(code, b' ');
        let limit = self.buf.len() - 2;
        let _ = fmt::write(&mut Bounded { w: self, limit }, text);
        self.put(b"\r\n", self.buf.len());
    }

    /// First line of a multi-line reply: `code-text\r\n`.
    pub fn first(&mut self, code: ReplyCode, text: fmt::Arguments<'_>) {
        self.code(code, b'-');
        let limit = self.body_limit();
        let _ = fmt::write(&mut Bounded { w: self, limit }, text);
        self.put(b"\r\n", self.buf.len());
    }

    /// A continuation line, indented by one space.
    pub fn cont(&mut self, text: fmt::Arguments<'_>) {
        let limit = self.body_limit();
        if self.len + 3 > limit {
            self.overflow = true;
            return;
        }
        self.put(b" ", limit);
        let _ = fmt::write(
            &mut Bounded {
                w: self,
                limit: limit - 2,
            },
            text,
        );
        self.put(b"\r\n", self.buf.len());
    }

    /// Last line of a multi-line reply.
    pub fn last(&mut self, code: ReplyCode, text: fmt::Arguments<'_>) {
        self.line(code, text)
    }

    fn code(&mut self, code: ReplyCode, sep: u8) {
        let c = code.code();
        let digits = [
            b'0' + (c / 100) as u8,
            b'0' + (c / 10 % 10) as u8,
            b'0' + (c % 10) as u8,
            sep,
        ];
        self.put(&digits, self.buf.len());
    }
}

struct Bounded<'w, 'b> {
    w: &'w mut Writer<'b>,
    limit: usize,
}

impl fmt::Write for Bounded<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Never let a CR or LF from a file name break the framing.
        for chunk in s.split(['\r', '\n']) {
            self.w.put(chunk.as_bytes(), self.limit);
        }
        Ok(())
    }
}

/// Displays a path inside double quotes with embedded quotes doubled
/// (RFC 959 Appendix II), as in `257 "/a ""b""" created`.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for (i, part) in self.0.split('"').enumerate() {
            if i > 0 {
                f.write_str("\"\"")?;
            }
            f.write_str(part)?;
        }
        f.write_str("\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    fn text(f: impl FnOnce(&mut Writer<'_>)) -> String {
        let mut buf = [0u8; 160];
        let mut w = Writer::new(&mut buf);
        f(&mut w);
        String::from_utf8(w.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn single_line() {
        assert_eq!(
            text(|w| w.line(ReplyCode::Ok, format_args!("NOOP ok."))),
            "200 NOOP ok.\r\n"
        );
        assert_eq!(
            text(|w| w.line(ReplyCode::ServiceNotAvailable, format_args!("Timeout."))),
            "421 Timeout.\r\n"
        );
    }

    #[test]
    fn multi_line_form() {
        let s = text(|w| {
            w.first(ReplyCode::SystemStatus, format_args!("Features:"));
            w.cont(format_args!("SIZE"));
            w.last(ReplyCode::SystemStatus, format_args!("End"));
        });
        assert_eq!(s, "211-Features:\r\n SIZE\r\n211 End\r\n");
    }

    #[test]
    fn quotes_are_doubled() {
        let s = text(|w| {
            w.line(
                ReplyCode::PathCreated,
                format_args!("{} created.", Quoted("/a \"b\"")),
            )
        });
        assert_eq!(s, "257 \"/a \"\"b\"\"\" created.\r\n");
    }

    #[test]
    fn crlf_in_text_cannot_forge_a_reply() {
        let s = text(|w| w.line(ReplyCode::FileUnavailable, format_args!("{}", "a\r\n230 b")));
        assert_eq!(s, "550 a230 b\r\n");
    }

    #[test]
    fn overflow_keeps_the_last_line_whole() {
        let mut buf = [0u8; 100];
        let mut w = Writer::new(&mut buf);
        w.first(ReplyCode::Help, format_args!("Commands:"));
        for _ in 0..20 {
            w.cont(format_args!("ABCDEFGHIJ"));
        }
        w.last(ReplyCode::Help, format_args!("Help OK."));
        let s = core::str::from_utf8(w.as_bytes()).unwrap();
        assert!(w.overflowed());
        assert!(s.ends_with("214 Help OK.\r\n"), "{s:?}");
        assert!(s.starts_with("214-Commands:\r\n"));
    }

    #[test]
    fn long_single_line_is_cut_but_terminated() {
        let mut buf = [0u8; 20];
        let mut w = Writer::new(&mut buf);
        w.line(
            ReplyCode::FileUnavailable,
            format_args!("{}", "x".repeat(50)),
        );
        assert_eq!(w.as_bytes().len(), 20);
        assert!(w.as_bytes().ends_with(b"\r\n"));
    }
}
