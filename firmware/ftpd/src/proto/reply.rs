//! Replies: codes (RFC 959 §4.2) and their bytes.
//!
//! Every reply line carries text after the code (FileZilla drops lines of
//! three characters or fewer). A multi-line reply is `ddd-first line`,
//! continuation lines that start with a space, and `ddd last line`
//! (RFC 959 §4.2); continuation lines are indented so none can be mistaken
//! for the end.

use core::net::{IpAddr, Ipv4Addr};

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

/// Writes replies (and listing lines) into a caller-provided buffer,
/// without `core::fmt`: text, numbers and addresses are put in piece by
/// piece. Text that does not fit is cut (a reply stays well-formed: the
/// final line is always complete).
pub struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
    /// Where the piece being written must end.
    limit: usize,
    overflow: bool,
    /// A continuation line that found no room: drop it whole.
    mute: bool,
}

// Markers in a [`Writer::fill`] template (control bytes, never in a
// reply text): write them as `\x01`..`\x04` in the literal.
const ARG_BYTE: u8 = 1;
const UPPER_BYTE: u8 = 2;
const QUOTED_BYTE: u8 = 3;
const NUM_BYTE: u8 = 4;

/// Bytes kept free for the final line of a multi-line reply.
const FINAL_LINE_RESERVE: usize = 64;

/// `n / base` and `n % base` (`base` at most 16) for a `u64` with 32-bit
/// divisions only (no 64-bit division routine in the firmware).
fn divmod(n: u64, base: u32) -> (u64, u32) {
    let hi = (n >> 32) as u32;
    let lo = n as u32;
    let (qh, r) = (hi / base, hi % base);
    let x = (r << 16) | (lo >> 16);
    let (qm, r) = (x / base, x % base);
    let y = (r << 16) | (lo & 0xffff);
    let (ql, r) = (y / base, y % base);
    ((u64::from(qh) << 32) | u64::from((qm << 16) | ql), r)
}

impl<'b> Writer<'b> {
    #[inline(never)]
    pub fn new(buf: &'b mut [u8]) -> Self {
        let limit = buf.len();
        Writer {
            buf,
            len: 0,
            limit,
            overflow: false,
            mute: false,
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

    /// Forgets everything after the first `len` bytes (and any overflow).
    pub fn truncate(&mut self, len: usize) {
        self.len = len.min(self.len);
        self.overflow = false;
    }

    /// Bytes as they are, cut at the limit.
    pub fn raw(&mut self, s: &[u8]) -> &mut Self {
        for &b in s {
            self.push(b);
        }
        self
    }

    /// One byte (cheaper to call than [`Writer::raw`] with one).
    pub fn byte(&mut self, b: u8) -> &mut Self {
        self.push(b);
        self
    }

    /// One byte, if there is room before the limit.
    #[inline(never)]
    fn push(&mut self, b: u8) {
        match self.buf.get_mut(self.len) {
            Some(c) if self.len < self.limit => {
                *c = b;
                self.len += 1;
            }
            _ => self.overflow = true,
        }
    }

    /// Text; a CR or LF (from a file name) never breaks the framing.
    pub fn text(&mut self, s: &str) -> &mut Self {
        self.filtered(s.as_bytes(), false, false)
    }

    /// Text with ASCII letters upper-cased.
    pub fn upper(&mut self, s: &str) -> &mut Self {
        self.filtered(s.as_bytes(), true, false)
    }

    /// A path inside double quotes with embedded quotes doubled (RFC 959
    /// Appendix II), as in `257 "/a ""b""" created`.
    pub fn quoted(&mut self, s: &str) -> &mut Self {
        self.push(b'"');
        self.filtered(s.as_bytes(), false, true);
        self.push(b'"');
        self
    }

    fn filtered(&mut self, s: &[u8], upper: bool, quote: bool) -> &mut Self {
        for &b in s {
            match b {
                b'\r' | b'\n' => {}
                b'"' if quote => {
                    self.push(b);
                    self.push(b);
                }
                _ => self.push(if upper { b.to_ascii_uppercase() } else { b }),
            }
        }
        self
    }

    /// A template: its bytes as they are, except the markers `\x01` (`s`
    /// as [`Writer::text`]), `\x02` (`s` as [`Writer::upper`]), `\x03` (`s`
    /// as [`Writer::quoted`]) and `\x04` (`n`). One call and one literal
    /// per reply instead of a chain of pieces.
    pub fn fill(&mut self, tpl: &str, s: &str, n: u64) -> &mut Self {
        for &b in tpl.as_bytes() {
            match b {
                ARG_BYTE..=QUOTED_BYTE => {
                    let quote = b == QUOTED_BYTE;
                    if quote {
                        self.push(b'"');
                    }
                    self.filtered(s.as_bytes(), b == UPPER_BYTE, quote);
                    if quote {
                        self.push(b'"');
                    }
                }
                NUM_BYTE => _ = self.num(n),
                _ => self.push(b),
            }
        }
        self
    }

    /// A decimal number.
    pub fn num(&mut self, n: u64) -> &mut Self {
        self.num_pad(n, 0, b' ')
    }

    /// A decimal number right-aligned in `width` with `pad`.
    pub fn num_pad(&mut self, n: u64, width: usize, pad: u8) -> &mut Self {
        self.digits(n, 10, width, pad)
    }

    /// `n` in `base` (lower-case hex digits), right-aligned in `width`
    /// with `pad`: the higher digits first (recursion, at most 20 deep),
    /// then the last one (no digit buffer to clear and index).
    fn digits(&mut self, n: u64, base: u32, width: usize, pad: u8) -> &mut Self {
        let (q, r) = divmod(n, base);
        if q != 0 {
            self.digits(q, base, width.saturating_sub(1), pad);
        } else {
            for _ in 1..width {
                self.push(pad);
            }
        }
        let r = r as u8;
        self.byte(if r < 10 { b'0' + r } else { b'a' - 10 + r })
    }

    /// An IPv4 address, `a.b.c.d`.
    pub fn ipv4(&mut self, ip: Ipv4Addr) -> &mut Self {
        self.decimals(&ip.octets(), b'.')
    }

    /// Bytes as decimal numbers with `sep` between them (`a.b.c.d`, and the
    /// `h1,h2,h3,h4,p1,p2` of a `227` reply).
    pub fn decimals(&mut self, v: &[u8], sep: u8) -> &mut Self {
        for (i, &o) in v.iter().enumerate() {
            if i > 0 {
                self.push(sep);
            }
            self.num(u64::from(o));
        }
        self
    }

    /// An IP address as `core` displays it (RFC 5952 for IPv6: lower-case
    /// hex, the longest run of two or more zero groups as `::`, IPv4-mapped
    /// addresses as `::ffff:a.b.c.d`).
    pub fn ip(&mut self, ip: IpAddr) -> &mut Self {
        let o = match ip {
            IpAddr::V4(v4) => return self.ipv4(v4),
            IpAddr::V6(v6) => v6.octets(),
        };
        let group = |i: usize| u16::from(o[2 * i]) << 8 | u16::from(o[2 * i + 1]);
        if (0..5).all(|i| group(i) == 0) && group(5) == 0xffff {
            return self.raw(b"::ffff:").decimals(&o[12..], b'.');
        }
        // The first longest run of two or more zero groups (none: start 8).
        let (mut start, mut len, mut run) = (8, 1, 0);
        for i in 0..8 {
            run = if group(i) == 0 { run + 1 } else { 0 };
            if run > len {
                len = run;
                start = i + 1 - run;
            }
        }
        let mut i = 0;
        while i < 8 {
            if i == start {
                self.raw(b"::");
                i += len;
                continue;
            }
            if i > 0 && i != start + len {
                self.push(b':');
            }
            // Lower-case hex without leading zeros.
            self.digits(u64::from(group(i)), 16, 0, b' ');
            i += 1;
        }
        self
    }

    fn code(&mut self, code: ReplyCode, sep: u8, limit: usize) -> &mut Self {
        self.mute = false;
        self.limit = self.buf.len();
        // Every code has three digits.
        self.num(u64::from(code.code())).push(sep);
        self.limit = limit;
        self
    }

    fn body_limit(&self) -> usize {
        self.buf.len().saturating_sub(FINAL_LINE_RESERVE)
    }

    /// Starts a single-line reply (or the last line of a multi-line one):
    /// `code text`; [`Writer::end`] finishes it.
    pub fn begin(&mut self, code: ReplyCode) -> &mut Self {
        let limit = self.buf.len() - 2;
        self.code(code, b' ', limit)
    }

    /// Starts the first line of a multi-line reply: `code-text`.
    pub fn begin_first(&mut self, code: ReplyCode) -> &mut Self {
        let limit = self.body_limit();
        self.code(code, b'-', limit)
    }

    /// Starts a continuation line, indented by one space; a line that has
    /// no room is left out whole.
    pub fn begin_cont(&mut self) -> &mut Self {
        let limit = self.body_limit();
        self.limit = limit;
        if self.len + 3 > limit {
            self.overflow = true;
            self.mute = true;
            self.limit = self.len;
            return self;
        }
        self.push(b' ');
        self.limit = limit - 2;
        self
    }

    /// Ends the line begun last with CRLF.
    pub fn end(&mut self) {
        self.limit = self.buf.len();
        if !core::mem::take(&mut self.mute) {
            self.raw(b"\r\n");
        }
    }

    /// A single-line reply: `code text\r\n`.
    pub fn line(&mut self, code: ReplyCode, text: &str) {
        self.begin(code).text(text).end();
    }

    /// First line of a multi-line reply: `code-text\r\n`.
    pub fn first(&mut self, code: ReplyCode, text: &str) {
        self.begin_first(code).text(text).end();
    }

    /// A continuation line, indented by one space.
    pub fn cont(&mut self, text: &str) {
        self.begin_cont().text(text).end();
    }

    /// Last line of a multi-line reply.
    pub fn last(&mut self, code: ReplyCode, text: &str) {
        self.line(code, text)
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
            text(|w| w.line(ReplyCode::Ok, "NOOP ok.")),
            "200 NOOP ok.\r\n"
        );
        assert_eq!(
            text(|w| w.line(ReplyCode::ServiceNotAvailable, "Timeout.")),
            "421 Timeout.\r\n"
        );
    }

    #[test]
    fn multi_line_form() {
        let s = text(|w| {
            w.first(ReplyCode::SystemStatus, "Features:");
            w.cont("SIZE");
            w.last(ReplyCode::SystemStatus, "End");
        });
        assert_eq!(s, "211-Features:\r\n SIZE\r\n211 End\r\n");
    }

    #[test]
    fn quotes_are_doubled() {
        let s = text(|w| {
            w.begin(ReplyCode::PathCreated)
                .quoted("/a \"b\"")
                .text(" created.")
                .end()
        });
        assert_eq!(s, "257 \"/a \"\"b\"\"\" created.\r\n");
    }

    #[test]
    fn crlf_in_text_cannot_forge_a_reply() {
        let s = text(|w| w.line(ReplyCode::FileUnavailable, "a\r\n230 b"));
        assert_eq!(s, "550 a230 b\r\n");
    }

    #[test]
    fn overflow_keeps_the_last_line_whole() {
        let mut buf = [0u8; 100];
        let mut w = Writer::new(&mut buf);
        w.first(ReplyCode::Help, "Commands:");
        for _ in 0..20 {
            w.cont("ABCDEFGHIJ");
        }
        w.last(ReplyCode::Help, "Help OK.");
        let s = core::str::from_utf8(w.as_bytes()).unwrap();
        assert!(w.overflowed());
        assert!(s.ends_with("214 Help OK.\r\n"), "{s:?}");
        assert!(s.starts_with("214-Commands:\r\n"));
    }

    #[test]
    fn numbers_without_core_fmt() {
        let edge = [
            0,
            1,
            9,
            10,
            99,
            4096,
            u64::from(u32::MAX),
            1 << 32,
            1 << 40,
            u64::MAX,
        ];
        for n in edge {
            assert_eq!(
                text(|w| {
                    w.num(n);
                }),
                std::format!("{n}")
            );
            assert_eq!(
                text(|w| {
                    w.num_pad(n, 12, b' ');
                }),
                std::format!("{n:>12}")
            );
            assert_eq!(
                text(|w| {
                    w.num_pad(n, 4, b'0');
                }),
                std::format!("{n:04}")
            );
            assert_eq!(
                text(|w| {
                    w.digits(n, 16, 0, b' ');
                }),
                std::format!("{n:x}")
            );
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = x >> (x % 64);
            assert_eq!(
                text(|w| {
                    w.num(n);
                }),
                std::format!("{n}")
            );
        }
    }

    #[test]
    fn addresses_print_as_core_prints_them() {
        use core::net::Ipv6Addr;
        let mut cases: std::vec::Vec<IpAddr> = [
            "0.0.0.0",
            "127.0.0.1",
            "192.0.2.2",
            "255.255.255.255",
            "::",
            "::1",
            "1::",
            "2001:db8::1",
            "2001:db8:0:0:1:0:0:1",
            "2001:0:0:1:0:0:0:1",
            "1:0:1:0:1:0:1:0",
            "::ffff:192.0.2.1",
            "::192.0.2.1",
            "fe80::abcd:ef01",
            "1:2:3:4:5:6:7:8",
            "0:0:1::",
            "1:0:0:2:0:0:0:3",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        // Every pattern of zero and non-zero groups, plain and IPv4-mapped.
        for bits in 0..256u32 {
            let mut g = [0u16; 8];
            for (i, s) in g.iter_mut().enumerate() {
                if bits & (1 << i) != 0 {
                    *s = (i as u16 + 1) * 0x1011;
                }
            }
            cases.push(IpAddr::V6(Ipv6Addr::from(g)));
            g[5] = 0xffff;
            cases.push(IpAddr::V6(Ipv6Addr::from(g)));
        }
        for ip in cases {
            assert_eq!(
                text(|w| {
                    w.ip(ip);
                }),
                std::format!("{ip}")
            );
        }
    }

    #[test]
    fn ipv6_groups_of_every_width_print_as_core_prints_them() {
        use core::net::Ipv6Addr;
        let widths = [0, 1, 0xf, 0x10, 0xab, 0xff, 0x100, 0xfff, 0x1000, 0xffff];
        for (k, &v) in widths.iter().enumerate() {
            for at in 0..8 {
                let mut g = [0u16; 8];
                g[at] = v;
                g[(at + 3) % 8] = widths[(k + 1) % widths.len()];
                g[(at + 5) % 8] = 0xffff;
                let ip = IpAddr::V6(Ipv6Addr::from(g));
                assert_eq!(
                    text(|w| {
                        w.ip(ip);
                    }),
                    std::format!("{ip}")
                );
            }
        }
    }

    #[test]
    fn long_single_line_is_cut_but_terminated() {
        let mut buf = [0u8; 20];
        let mut w = Writer::new(&mut buf);
        w.line(ReplyCode::FileUnavailable, &"x".repeat(50));
        assert_eq!(w.as_bytes().len(), 20);
        assert!(w.as_bytes().ends_with(b"\r\n"));
    }
}
