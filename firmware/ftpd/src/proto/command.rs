//! Command lines into typed commands (RFC 959 §4.1, RFC 2389, 2428, 3659).
//!
//! A command line is a verb, optionally followed by one space and an
//! argument. Verbs are case-insensitive. The argument is kept byte-exact
//! (file names may contain spaces); only the line terminator is removed by
//! the caller ([`super::line`]). Parsing never allocates and never panics:
//! whatever the bytes, the result is a [`Command`] or a [`ParseError`] that
//! names the reply to send.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

use crate::time::U64;

/// Representation type (`TYPE`), RFC 959 §3.1.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferType {
    /// `TYPE A` (also `A N`, `A T`): line endings converted to CRLF on the wire.
    Ascii,
    /// `TYPE I` or `TYPE L 8`: bytes as they are.
    Image,
}

/// Argument of `EPSV` (RFC 2428 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpsvArg {
    /// Bare `EPSV`: the control connection's family.
    Any,
    /// `EPSV 1` / `EPSV 2`: IPv4 / IPv6.
    V4,
    V6,
    /// `EPSV ALL`: from now on only EPSV sets up data connections.
    All,
}

/// A parsed command. Arguments borrow from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    User(&'a str),
    Pass(&'a str),
    Acct,
    Quit,
    Rein,
    /// `CWD`/`XCWD`; a bare `CWD` (lftp) goes to the user's root.
    Cwd(&'a str),
    /// `CDUP`/`XCUP`.
    Cdup,
    /// `PWD`/`XPWD`.
    Pwd,
    Mkd(&'a str),
    Rmd(&'a str),
    Dele(&'a str),
    Rnfr(&'a str),
    Rnto(&'a str),
    /// `LIST [options] [path]`; the argument is raw, options are skipped later.
    List(&'a str),
    Nlst(&'a str),
    Mlsd(&'a str),
    Mlst(&'a str),
    Retr(&'a str),
    Stor(&'a str),
    Stou,
    Appe(&'a str),
    Rest(u64),
    Allo,
    Type(TransferType),
    /// `STRU F` (the only structure supported).
    Stru,
    /// `MODE S` (the only mode supported).
    Mode,
    Port(SocketAddrV4),
    Pasv,
    Epsv(EpsvArg),
    Eprt(SocketAddr),
    Abor,
    Syst,
    Stat(&'a str),
    Help(&'a str),
    Noop,
    Site(&'a str),
    Feat,
    Opts(&'a str),
    Size(&'a str),
    Mdtm(&'a str),
    Clnt,
    /// A verb we know of but do not implement (AUTH, PBSZ, PROT, LANG,
    /// HOST, MFMT, ...): `502`.
    NotImplemented,
}

/// Why a line is not a command; each maps to one reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// `500`: not a verb we know.
    Unknown,
    /// `500`: the line holds a NUL byte or is not UTF-8.
    BadBytes,
    /// `501`: the verb needs an argument.
    MissingArgument,
    /// `501`: the verb takes no argument.
    UnexpectedArgument,
    /// `501`: the argument is malformed (PORT, EPRT, REST, TYPE, ...).
    BadArgument,
    /// `504`: a parameter we do not implement (`TYPE E`, `MODE B`, `STRU R`).
    UnsupportedParameter,
    /// `522`: `EPRT`/`EPSV` with a network protocol we do not know.
    UnsupportedProtocol,
}

impl Command<'_> {
    /// True for commands that are answered before login (RFC 959 leaves it to
    /// the server; lftp sends FEAT, OPTS and CLNT before USER).
    pub fn allowed_before_login(&self) -> bool {
        matches!(
            self,
            Command::User(_)
                | Command::Pass(_)
                | Command::Acct
                | Command::Quit
                | Command::Rein
                | Command::Feat
                | Command::Syst
                | Command::Help(_)
                | Command::Noop
                | Command::Opts(_)
                | Command::Clnt
                | Command::NotImplemented
        )
    }

    /// True for commands answered while a transfer runs (RFC 959 §4.1.3:
    /// ABOR, STAT, QUIT; NOOP because lftp keeps the connection alive with it).
    pub fn allowed_during_transfer(&self) -> bool {
        matches!(
            self,
            Command::Abor | Command::Stat("") | Command::Quit | Command::Noop
        )
    }
}

// What a verb is. The first groups say what the argument must be: NEED
// verbs want one (`501` without), ANY verbs take one or none, BARE verbs
// none (only white space); the rest look at it themselves.
pub(crate) const USER: u8 = 0;
pub(crate) const MKD: u8 = 1;
pub(crate) const RMD: u8 = 2;
pub(crate) const DELE: u8 = 3;
pub(crate) const RNFR: u8 = 4;
pub(crate) const RNTO: u8 = 5;
pub(crate) const RETR: u8 = 6;
pub(crate) const STOR: u8 = 7;
pub(crate) const APPE: u8 = 8;
pub(crate) const SITE: u8 = 9;
pub(crate) const OPTS: u8 = 10;
pub(crate) const SIZE: u8 = 11;
pub(crate) const MDTM: u8 = 12;
pub(crate) const ANY: u8 = 13;
pub(crate) const PASS: u8 = ANY;
pub(crate) const CWD: u8 = 14;
pub(crate) const LIST: u8 = 15;
pub(crate) const NLST: u8 = 16;
pub(crate) const MLSD: u8 = 17;
pub(crate) const MLST: u8 = 18;
pub(crate) const STAT: u8 = 19;
pub(crate) const HELP: u8 = 20;
pub(crate) const BARE: u8 = 21;
pub(crate) const QUIT: u8 = BARE;
pub(crate) const REIN: u8 = 22;
pub(crate) const CDUP: u8 = 23;
pub(crate) const PWD: u8 = 24;
pub(crate) const STOU: u8 = 25;
pub(crate) const PASV: u8 = 26;
pub(crate) const ABOR: u8 = 27;
pub(crate) const SYST: u8 = 28;
pub(crate) const NOOP: u8 = 29;
pub(crate) const FEAT: u8 = 30;
pub(crate) const OWN: u8 = 31;
pub(crate) const ACCT: u8 = OWN;
pub(crate) const CLNT: u8 = 32;
pub(crate) const NOT_IMPL: u8 = 33;
pub(crate) const REST: u8 = 34;
pub(crate) const ALLO: u8 = 35;
pub(crate) const TYPE: u8 = 36;
pub(crate) const STRU: u8 = 37;
pub(crate) const MODE: u8 = 38;
pub(crate) const PORT: u8 = 39;
pub(crate) const EPSV: u8 = 40;
pub(crate) const EPRT: u8 = 41;

/// Every verb known, upper case, three-letter verbs padded with a space:
/// first the [`IMPLEMENTED`] ones in alphabetical order (`HELP` lists them
/// from here), then those answered with `502`.
const VERBS: [([u8; 4], u8); 69] = [
    (*b"ABOR", ABOR),
    (*b"ACCT", ACCT),
    (*b"ALLO", ALLO),
    (*b"APPE", APPE),
    (*b"CDUP", CDUP),
    (*b"CLNT", CLNT),
    (*b"CWD ", CWD),
    (*b"DELE", DELE),
    (*b"EPRT", EPRT),
    (*b"EPSV", EPSV),
    (*b"FEAT", FEAT),
    (*b"HELP", HELP),
    (*b"LIST", LIST),
    (*b"MDTM", MDTM),
    (*b"MKD ", MKD),
    (*b"MLSD", MLSD),
    (*b"MLST", MLST),
    (*b"MODE", MODE),
    (*b"NLST", NLST),
    (*b"NOOP", NOOP),
    (*b"OPTS", OPTS),
    (*b"PASS", PASS),
    (*b"PASV", PASV),
    (*b"PORT", PORT),
    (*b"PWD ", PWD),
    (*b"QUIT", QUIT),
    (*b"REIN", REIN),
    (*b"REST", REST),
    (*b"RETR", RETR),
    (*b"RMD ", RMD),
    (*b"RNFR", RNFR),
    (*b"RNTO", RNTO),
    (*b"SITE", SITE),
    (*b"SIZE", SIZE),
    (*b"STAT", STAT),
    (*b"STOR", STOR),
    (*b"STOU", STOU),
    (*b"STRU", STRU),
    (*b"SYST", SYST),
    (*b"TYPE", TYPE),
    (*b"USER", USER),
    (*b"XCUP", CDUP),
    (*b"XCWD", CWD),
    (*b"XMKD", MKD),
    (*b"XPWD", PWD),
    (*b"XRMD", RMD),
    (*b"AUTH", NOT_IMPL),
    (*b"PBSZ", NOT_IMPL),
    (*b"PROT", NOT_IMPL),
    (*b"CCC ", NOT_IMPL),
    (*b"LANG", NOT_IMPL),
    (*b"HOST", NOT_IMPL),
    (*b"MFMT", NOT_IMPL),
    (*b"MFCT", NOT_IMPL),
    (*b"MFF ", NOT_IMPL),
    (*b"SMNT", NOT_IMPL),
    (*b"LPSV", NOT_IMPL),
    (*b"LPRT", NOT_IMPL),
    (*b"ADAT", NOT_IMPL),
    (*b"MIC ", NOT_IMPL),
    (*b"CONF", NOT_IMPL),
    (*b"ENC ", NOT_IMPL),
    (*b"AVBL", NOT_IMPL),
    (*b"DSIZ", NOT_IMPL),
    (*b"RMDA", NOT_IMPL),
    (*b"XCRC", NOT_IMPL),
    (*b"XMD5", NOT_IMPL),
    (*b"XSHA", NOT_IMPL),
    (*b"HASH", NOT_IMPL),
];

/// How many of [`VERBS`] are implemented (they come first).
const IMPLEMENTED: usize = 46;

/// The implemented verbs in alphabetical order, as `HELP` shows them.
pub(crate) fn implemented() -> impl Iterator<Item = &'static [u8]> {
    VERBS[..IMPLEMENTED].iter().map(|(v, _)| match v {
        [_, _, _, b' '] => &v[..3],
        _ => &v[..],
    })
}

/// Parses one command line (terminator already removed, Telnet sequences
/// already stripped).
pub fn parse<'a>(line: &'a [u8]) -> Result<Command<'a>, ParseError> {
    let (k, arg) = verb(line)?;
    let mut t = Typed::NONE;
    typed(k, arg, &mut t)?;
    use Command as C;
    Ok(match k {
        USER => C::User(arg),
        MKD => C::Mkd(arg),
        RMD => C::Rmd(arg),
        DELE => C::Dele(arg),
        RNFR => C::Rnfr(arg),
        RNTO => C::Rnto(arg),
        RETR => C::Retr(arg),
        STOR => C::Stor(arg),
        APPE => C::Appe(arg),
        SITE => C::Site(arg),
        OPTS => C::Opts(arg),
        SIZE => C::Size(arg),
        MDTM => C::Mdtm(arg),
        // An empty password is a password (anonymous clients send one).
        PASS => C::Pass(arg),
        CWD => C::Cwd(arg),
        LIST => C::List(arg),
        NLST => C::Nlst(arg),
        MLSD => C::Mlsd(arg),
        MLST => C::Mlst(arg),
        STAT => C::Stat(arg),
        HELP => C::Help(arg),
        QUIT => C::Quit,
        REIN => C::Rein,
        CDUP => C::Cdup,
        PWD => C::Pwd,
        STOU => C::Stou,
        PASV => C::Pasv,
        ABOR => C::Abor,
        SYST => C::Syst,
        NOOP => C::Noop,
        FEAT => C::Feat,
        ACCT => C::Acct,
        CLNT => C::Clnt,
        REST => C::Rest(t.num.0),
        ALLO => C::Allo,
        TYPE => C::Type(t.ty),
        STRU => C::Stru,
        MODE => C::Mode,
        PORT => match t.addr {
            SocketAddr::V4(a) => C::Port(a),
            SocketAddr::V6(_) => return Err(ParseError::BadArgument),
        },
        EPSV => C::Epsv(t.epsv),
        EPRT => C::Eprt(t.addr),
        _ => C::NotImplemented,
    })
}

/// The argument of a verb that takes a typed one (`REST`, `TYPE`, `PORT`,
/// `EPSV`, `EPRT`); the fields the verb does not use hold defaults.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Typed {
    pub num: U64,
    pub ty: TransferType,
    pub epsv: EpsvArg,
    pub addr: SocketAddr,
}

impl Typed {
    /// What [`typed`] starts from.
    pub const NONE: Typed = Typed {
        num: U64(0),
        ty: TransferType::Ascii,
        epsv: EpsvArg::Any,
        addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
    };
}

/// Checks and converts the argument of verb kind `k` (see [`verb`]) into
/// `t`, which the caller keeps (nothing is returned by value).
#[inline(never)]
pub(crate) fn typed(k: u8, arg: &str, t: &mut Typed) -> Result<(), ParseError> {
    if k < REST {
        return Ok(());
    }
    if arg.is_empty() && k != EPSV {
        return Err(ParseError::MissingArgument);
    }
    match k {
        REST => {
            t.num = parse_u64(arg.as_bytes())
                .map(U64)
                .ok_or(ParseError::BadArgument)?
        }
        TYPE => t.ty = parse_type(arg)?,
        STRU | MODE => {
            let (ok, known) = if k == STRU {
                (b'F', &b"RP"[..])
            } else {
                (b'S', &b"BCZ"[..])
            };
            one_letter(arg, ok, known)?
        }
        PORT => t.addr = SocketAddr::V4(parse_port(arg)?),
        EPSV => t.epsv = parse_epsv(arg)?,
        EPRT => parse_eprt(arg, &mut t.addr)?,
        _ => {}
    }
    Ok(())
}

/// The checks every line goes through: no NUL, UTF-8, a known verb, an
/// argument where one is needed and none where none is allowed. Returns
/// the verb's kind (the constants above) and its argument.
pub(crate) fn verb(line: &[u8]) -> Result<(u8, &str), ParseError> {
    if has(line, 0) {
        return Err(ParseError::BadBytes);
    }
    let line = core::str::from_utf8(line).map_err(|_| ParseError::BadBytes)?;
    let b = line.as_bytes();
    let sp = b.iter().position(|&c| c == b' ').unwrap_or(b.len());
    let arg = line.get(sp + 1..).unwrap_or("");
    if sp > 4 || sp == 0 {
        return Err(ParseError::Unknown);
    }
    let mut up = *b"    ";
    for (d, s) in up.iter_mut().zip(b) {
        *d = s.to_ascii_uppercase();
    }
    let k = match VERBS.iter().find(|v| v.0 == up) {
        Some(v) => v.1,
        None => return Err(ParseError::Unknown),
    };
    if k < ANY && arg.is_empty() {
        return Err(ParseError::MissingArgument);
    }
    if (BARE..OWN).contains(&k) && !trim(arg).is_empty() {
        return Err(ParseError::UnexpectedArgument);
    }
    Ok((k, arg))
}

/// `STRU` and `MODE`: the one letter supported, letters known but not
/// supported (`504`), anything else (`501`).
fn one_letter(arg: &str, ok: u8, known: &[u8]) -> Result<(), ParseError> {
    match *arg.as_bytes() {
        [] => Err(ParseError::MissingArgument),
        [c] if c.to_ascii_uppercase() == ok => Ok(()),
        [c] if has(known, c.to_ascii_uppercase()) => Err(ParseError::UnsupportedParameter),
        _ => Err(ParseError::BadArgument),
    }
}

/// Whether `c`, one to three bytes read as a big-endian number, is the
/// UTF-8 form of a Unicode white-space character (`char::is_whitespace`).
fn is_space(c: u32) -> bool {
    matches!(
        c,
        0x09..=0x0D
            | 0x20
            | 0xC2_85
            | 0xC2_A0
            | 0xE1_9A_80
            | 0xE2_80_80..=0xE2_80_8A
            | 0xE2_80_A8
            | 0xE2_80_A9
            | 0xE2_80_AF
            | 0xE2_81_9F
            | 0xE3_80_80
    )
}

/// How long the white-space character at the start (or, with `back`, at
/// the end) of `b` is; 0 if there is none.
fn space_len(b: &[u8], back: bool) -> usize {
    let mut c = 0;
    for n in 1..b.len().min(3) + 1 {
        if back {
            c |= u32::from(b[b.len() - n]) << (8 * (n - 1));
        } else {
            c = c << 8 | u32::from(b[n - 1]);
        }
        if is_space(c) {
            return n;
        }
    }
    0
}

/// The bounds of `b` without white space (`char::is_whitespace`) at the
/// start and the end, without Unicode tables. The start is found first,
/// so it is also where `trim_start` would begin.
fn trim_range(b: &[u8]) -> (usize, usize) {
    let (mut i, mut j) = (0, b.len());
    loop {
        match space_len(&b[i..j], false) {
            0 => break,
            n => i += n,
        }
    }
    loop {
        match space_len(&b[i..j], true) {
            0 => break,
            n => j -= n,
        }
    }
    (i, j)
}

/// `str::trim`.
pub(crate) fn trim(s: &str) -> &str {
    let (i, j) = trim_range(s.as_bytes());
    s.get(i..j).unwrap_or("")
}

/// `str::trim_start`.
pub(crate) fn trim_start(s: &str) -> &str {
    let (i, _) = trim_range(s.as_bytes());
    s.get(i..).unwrap_or("")
}

/// `trim` for bytes.
pub(crate) fn trim_bytes(b: &[u8]) -> &[u8] {
    let (i, j) = trim_range(b);
    &b[i..j]
}

/// Digits only (at most 20), no sign, no overflow.
fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

/// The bytes before the first space, and those after it.
pub(crate) fn split_word(b: &[u8]) -> (&[u8], &[u8]) {
    match b.iter().position(|&c| c == b' ') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &[]),
    }
}

/// ASCII case-insensitive equality of bytes.
pub(crate) fn eq_ic(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// `slice::contains` for bytes, as a plain loop (the `core` one is a
/// word-at-a-time search several times the size).
#[allow(clippy::manual_contains)]
fn has(b: &[u8], c: u8) -> bool {
    b.iter().any(|&x| x == c)
}

fn parse_type(arg: &str) -> Result<TransferType, ParseError> {
    // Words separated by spaces (only spaces), empty words skipped; at
    // most two.
    let mut p = Parser {
        s: arg.as_bytes(),
        i: 0,
    };
    let mut w = [&p.s[..0]; 3];
    for x in &mut w {
        while p.eat(b' ') {}
        *x = p.field(b' ');
    }
    let [first, second, third] = w;
    if !third.is_empty() {
        return Err(ParseError::BadArgument);
    }
    let n = if second.is_empty() { 1 } else { 2 };
    let Some(&c) = first.first() else {
        return Err(ParseError::MissingArgument);
    };
    // The second word when it is one letter (upper case), else 0.
    let s2 = match *second {
        [l] => l.to_ascii_uppercase(),
        _ => 0,
    };
    let t = match (c.to_ascii_uppercase(), n) {
        (b'A', 1) => TransferType::Ascii,
        (b'A', _) if s2 == b'N' || s2 == b'T' => TransferType::Ascii,
        (b'A', _) if s2 == b'C' => return Err(ParseError::UnsupportedParameter),
        (b'I', 1) => TransferType::Image,
        (b'L', 2) if second == b"8" => TransferType::Image,
        (b'L', 2) | (b'E', _) => return Err(ParseError::UnsupportedParameter),
        _ => return Err(ParseError::BadArgument),
    };
    if first.len() != 1 {
        return Err(ParseError::BadArgument);
    }
    Ok(t)
}

/// `PORT h1,h2,h3,h4,p1,p2` (RFC 959 §4.1.2): six numbers up to 255,
/// white space around each allowed.
fn parse_port(arg: &str) -> Result<SocketAddrV4, ParseError> {
    let mut p = Parser {
        s: trim_bytes(arg.as_bytes()),
        i: 0,
    };
    let mut n = [0u8; 6];
    for (k, d) in n.iter_mut().enumerate() {
        *d = p
            .sep(k == 0, b',')
            .then(|| parse_u64(trim_bytes(p.field(b','))))
            .flatten()
            .and_then(|v| u8::try_from(v).ok())
            .ok_or(ParseError::BadArgument)?;
    }
    p.done(Some(())).ok_or(ParseError::BadArgument)?;
    let ip = Ipv4Addr::new(n[0], n[1], n[2], n[3]);
    Ok(SocketAddrV4::new(
        ip,
        u16::from(n[4]) << 8 | u16::from(n[5]),
    ))
}

/// `EPSV [1|2|ALL]` (RFC 2428 §3).
fn parse_epsv(arg: &str) -> Result<EpsvArg, ParseError> {
    Ok(match trim_bytes(arg.as_bytes()) {
        b"" => EpsvArg::Any,
        b"1" => EpsvArg::V4,
        b"2" => EpsvArg::V6,
        a if eq_ic(a, b"ALL") => EpsvArg::All,
        a => return Err(protocol_error(a)),
    })
}

/// A network protocol number we do not know is `522`, anything else `501`.
#[inline(always)]
fn protocol_error(p: &[u8]) -> ParseError {
    match parse_u64(p) {
        Some(_) => ParseError::UnsupportedProtocol,
        None => ParseError::BadArgument,
    }
}

/// `EPRT |proto|addr|port|` with any delimiter (RFC 2428 §2), into `out`.
fn parse_eprt(arg: &str, out: &mut SocketAddr) -> Result<(), ParseError> {
    let arg = trim_bytes(arg.as_bytes());
    let (&d, arg) = arg.split_first().ok_or(ParseError::MissingArgument)?;
    // A delimiter is printable ASCII other than a digit (a non-ASCII first
    // character starts with a byte above 126).
    if !(33..=126).contains(&d) || d.is_ascii_digit() {
        return Err(ParseError::BadArgument);
    }
    // Three fields, each ended by the delimiter, and nothing after them.
    let mut p = Parser { s: arg, i: 0 };
    let mut f = [arg; 3];
    for x in &mut f {
        *x = p.field(d);
        if !p.eat(d) {
            return Err(ParseError::BadArgument);
        }
    }
    let [proto, addr, port] = f;
    p.done(Some(())).ok_or(ParseError::BadArgument)?;
    let port = parse_u64(port)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(ParseError::BadArgument)?;
    let mut a = Parser { s: addr, i: 0 };
    let mut o = [0u8; 16];
    let ip = match proto {
        b"1" => a.ipv4().map(|o| IpAddr::V4(o.into())),
        b"2" => a.ipv6(&mut o).then(|| IpAddr::V6(o.into())),
        p => return Err(protocol_error(p)),
    };
    *out = SocketAddr::new(a.done(ip).ok_or(ParseError::BadArgument)?, port);
    Ok(())
}

/// `core::net`'s address grammar, without its parser's code size.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    /// The bytes up to the next `sep` or the end; `sep` is not consumed.
    fn field(&mut self, sep: u8) -> &'a [u8] {
        let rest = self.s.get(self.i..).unwrap_or(&[]);
        let n = rest.iter().position(|&c| c == sep).unwrap_or(rest.len());
        self.i += n;
        &rest[..n]
    }

    #[inline(never)]
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.s.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    /// `eat(sep)` unless this is the first item.
    fn sep(&mut self, first: bool, sep: u8) -> bool {
        first || self.eat(sep)
    }

    /// A run of one to `max` digits: hex groups with `radix` 16 (`max` 4);
    /// with `radix` 10 (`max` 3) IPv4 octets: no leading zero unless the
    /// number is `0` (the caller checks that it is at most 255). Nothing is
    /// consumed on failure.
    fn number(&mut self, radix: u32, max: u32) -> Option<u32> {
        let start = self.i;
        let hex = radix == 16;
        let mut v = 0u32;
        let mut n = 0;
        while let Some(&c) = self.s.get(self.i) {
            // A digit's value, or at least `radix` for anything else.
            let d = match c {
                b'0'..=b'9' => u32::from(c - b'0'),
                _ => u32::from((c | 0x20).wrapping_sub(b'a')).wrapping_add(10),
            };
            if d >= radix {
                break;
            }
            // One digit too many, or a decimal digit after a leading zero.
            if n == max || (!hex && n > 0 && v == 0) {
                n = 0;
                break;
            }
            v = v * radix + d;
            n += 1;
            self.i += 1;
        }
        if n == 0 {
            self.i = start;
            return None;
        }
        Some(v)
    }

    fn ipv4(&mut self) -> Option<[u8; 4]> {
        let start = self.i;
        let mut o = [0u8; 4];
        for (k, slot) in o.iter_mut().enumerate() {
            let v = self.sep(k == 0, b'.').then(|| self.number(10, 3));
            match v.flatten().and_then(|v| u8::try_from(v).ok()) {
                Some(v) => *slot = v,
                None => {
                    self.i = start;
                    return None;
                }
            }
        }
        Some(o)
    }

    /// Groups separated by `:`, with at most one `::` standing for as many
    /// zero groups as are missing; the last two groups may be written as an
    /// IPv4 address.
    ///
    /// As `core` reads it: the groups before `::` (at most eight), then, if
    /// there are fewer than eight and no IPv4 address ended them, `::` and
    /// at most `7 - head` groups after it. An IPv4 address is tried first
    /// wherever it would still fit, and ends the groups.
    /// The address's sixteen bytes (groups in network order) go into `o`,
    /// which must be all zeros; false if there is no address (`o` is then
    /// garbage).
    fn ipv6(&mut self, o: &mut [u8; 16]) -> bool {
        // (Every index is below 16 by construction; `& 15` spares the
        // bounds checks.)
        // Bytes read (two per group).
        let mut n = 0;
        // Where `::` stands (the bytes before it); 16 while there is none.
        let mut gap = 16;
        loop {
            // No `:` before the first group, nor right after `::`.
            let first = n == 0 || n == gap;
            let cap = if gap < 16 { 14 } else { 16 };
            let save = self.i;
            if n < cap && self.sep(first, b':') {
                if n + 4 <= cap
                    && let Some(v4) = self.ipv4()
                {
                    for &b in &v4 {
                        o[n & 15] = b;
                        n += 1;
                    }
                    if gap == 16 && n != 16 {
                        return false;
                    }
                    break;
                }
                if let Some(v) = self.number(16, 4) {
                    o[n & 15] = (v >> 8) as u8;
                    o[(n + 1) & 15] = v as u8;
                    n += 2;
                    continue;
                }
            }
            self.i = save;
            if gap < 16 || n == 16 {
                break;
            }
            if !(self.eat(b':') && self.eat(b':')) {
                return false;
            }
            gap = n;
        }
        // The bytes after `::` move to the end, from the last one down
        // (each up by at least two, to a place already moved from or
        // never written); zeros stay where they were.
        let shift = 16 - n;
        for k in (gap..n).rev() {
            o[(k + shift) & 15] = o[k & 15];
            o[k & 15] = 0;
        }
        true
    }

    fn done<T>(&self, v: Option<T>) -> Option<T> {
        v.filter(|_| self.i == self.s.len())
    }
}

/// `Ipv4Addr::from_str`.
pub fn parse_ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    let mut p = Parser { s, i: 0 };
    let v = p.ipv4();
    p.done(v).map(Ipv4Addr::from)
}

/// `Ipv6Addr::from_str`.
pub fn parse_ipv6(s: &[u8]) -> Option<Ipv6Addr> {
    let mut p = Parser { s, i: 0 };
    let mut o = [0u8; 16];
    let v = p.ipv6(&mut o).then_some(o);
    p.done(v).map(Ipv6Addr::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Command as C;

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(parse(b"user test"), Ok(C::User("test")));
        assert_eq!(parse(b"UsEr test"), Ok(C::User("test")));
        assert_eq!(parse(b"noop"), Ok(C::Noop));
    }

    #[test]
    fn arguments_keep_spaces() {
        assert_eq!(parse(b"RETR my file .txt"), Ok(C::Retr("my file .txt")));
        assert_eq!(
            parse(b"STOR Report 2026 (final).pdf"),
            Ok(C::Stor("Report 2026 (final).pdf"))
        );
    }

    #[test]
    fn x_aliases_map_to_rfc_959_verbs() {
        assert_eq!(parse(b"XCWD a"), Ok(C::Cwd("a")));
        assert_eq!(parse(b"XPWD"), Ok(C::Pwd));
        assert_eq!(parse(b"XMKD a"), Ok(C::Mkd("a")));
        assert_eq!(parse(b"XRMD a"), Ok(C::Rmd("a")));
        assert_eq!(parse(b"XCUP"), Ok(C::Cdup));
    }

    #[test]
    fn missing_and_extra_arguments_are_501() {
        assert_eq!(parse(b"RETR"), Err(ParseError::MissingArgument));
        assert_eq!(parse(b"USER"), Err(ParseError::MissingArgument));
        assert_eq!(parse(b"MKD"), Err(ParseError::MissingArgument));
        assert_eq!(parse(b"PWD now"), Err(ParseError::UnexpectedArgument));
        assert_eq!(parse(b"PASV x"), Err(ParseError::UnexpectedArgument));
        assert_eq!(parse(b"CWD"), Ok(C::Cwd("")));
        assert_eq!(parse(b"PASS"), Ok(C::Pass("")));
    }

    #[test]
    fn unknown_and_bad_bytes_are_500() {
        assert_eq!(parse(b"FOO"), Err(ParseError::Unknown));
        assert_eq!(parse(b"RETRIEVE x"), Err(ParseError::Unknown));
        assert_eq!(parse(b""), Err(ParseError::Unknown));
        assert_eq!(parse(b"RETR a\0b"), Err(ParseError::BadBytes));
        assert_eq!(parse(b"RETR \xff\xfe"), Err(ParseError::BadBytes));
    }

    #[test]
    fn utf8_paths_pass_through() {
        assert_eq!(parse("RETR Grüße.txt".as_bytes()), Ok(C::Retr("Grüße.txt")));
    }

    #[test]
    fn type_variants() {
        assert_eq!(parse(b"TYPE I"), Ok(C::Type(TransferType::Image)));
        assert_eq!(parse(b"TYPE i"), Ok(C::Type(TransferType::Image)));
        assert_eq!(parse(b"TYPE A"), Ok(C::Type(TransferType::Ascii)));
        assert_eq!(parse(b"TYPE A N"), Ok(C::Type(TransferType::Ascii)));
        assert_eq!(parse(b"TYPE A T"), Ok(C::Type(TransferType::Ascii)));
        assert_eq!(parse(b"TYPE L 8"), Ok(C::Type(TransferType::Image)));
        assert_eq!(parse(b"TYPE A C"), Err(ParseError::UnsupportedParameter));
        assert_eq!(parse(b"TYPE E"), Err(ParseError::UnsupportedParameter));
        assert_eq!(parse(b"TYPE L 7"), Err(ParseError::UnsupportedParameter));
        assert_eq!(parse(b"TYPE X"), Err(ParseError::BadArgument));
        assert_eq!(parse(b"TYPE II"), Err(ParseError::BadArgument));
        assert_eq!(parse(b"TYPE"), Err(ParseError::MissingArgument));
    }

    #[test]
    fn type_words_are_split_at_spaces() {
        assert_eq!(parse(b"TYPE  I"), Ok(C::Type(TransferType::Image)));
        assert_eq!(parse(b"TYPE A  N "), Ok(C::Type(TransferType::Ascii)));
        assert_eq!(parse(b"TYPE  "), Err(ParseError::MissingArgument));
        assert_eq!(parse(b"TYPE A N X"), Err(ParseError::BadArgument));
        assert_eq!(parse(b"TYPE L 8 8"), Err(ParseError::BadArgument));
        assert_eq!(parse(b"TYPE AX C"), Err(ParseError::UnsupportedParameter));
        assert_eq!(parse(b"TYPE LOCAL 8"), Err(ParseError::BadArgument));
        assert_eq!(parse(b"TYPE Image"), Err(ParseError::BadArgument));
        assert_eq!(parse(b"TYPE EBCDIC"), Err(ParseError::UnsupportedParameter));
        assert_eq!(parse(b"TYPE A\tN"), Err(ParseError::BadArgument));
    }

    #[test]
    fn port_and_eprt_fields() {
        assert_eq!(
            parse(b"PORT  1 , 2,3,4 ,0, 255 "),
            Ok(C::Port(SocketAddrV4::new(Ipv4Addr::new(1, 2, 3, 4), 255)))
        );
        assert_eq!(
            parse(b"PORT 001,2,3,4,0,00000000000000000001"),
            Ok(C::Port(SocketAddrV4::new(Ipv4Addr::new(1, 2, 3, 4), 1)))
        );
        assert_eq!(parse(b"PORT 1,2,3,4,5,6,"), Err(ParseError::BadArgument));
        assert_eq!(parse(b"PORT ,1,2,3,4,5"), Err(ParseError::BadArgument));
        assert_eq!(parse(b"PORT 1,2,3,4,5,"), Err(ParseError::BadArgument));
        assert_eq!(parse(b"PORT  "), Err(ParseError::BadArgument));
        assert_eq!(
            parse(b"EPRT  |2|1:2::3|65535| "),
            Ok(C::Eprt("[1:2::3]:65535".parse().unwrap()))
        );
        assert_eq!(
            parse(b"EPRT |1|127.0.0.1|21||"),
            Err(ParseError::BadArgument)
        );
        assert_eq!(
            parse(b"EPRT |1|127.0.0.1|21|x"),
            Err(ParseError::BadArgument)
        );
        assert_eq!(parse(b"EPRT |1|127.0.0.1|"), Err(ParseError::BadArgument));
        assert_eq!(parse(b"EPRT |3|x|99999|"), Err(ParseError::BadArgument));
        assert_eq!(parse(b"EPRT |x|1.2.3.4|21|"), Err(ParseError::BadArgument));
        assert_eq!(parse(b"EPRT 1|1.2.3.4|21|"), Err(ParseError::BadArgument));
        assert_eq!(
            parse(b"EPRT |1|1.2.3.4|1025|"),
            Ok(C::Eprt("1.2.3.4:1025".parse().unwrap()))
        );
    }

    #[test]
    fn mode_and_stru() {
        assert_eq!(parse(b"MODE S"), Ok(C::Mode));
        assert_eq!(parse(b"MODE Z"), Err(ParseError::UnsupportedParameter));
        assert_eq!(parse(b"MODE Q"), Err(ParseError::BadArgument));
        assert_eq!(parse(b"STRU F"), Ok(C::Stru));
        assert_eq!(parse(b"STRU R"), Err(ParseError::UnsupportedParameter));
    }

    #[test]
    fn port_parses_and_rejects() {
        assert_eq!(
            parse(b"PORT 127,0,0,1,195,80"),
            Ok(C::Port(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 50000)))
        );
        assert_eq!(parse(b"PORT 127,0,0,1,195"), Err(ParseError::BadArgument));
        assert_eq!(
            parse(b"PORT 127,0,0,1,195,80,1"),
            Err(ParseError::BadArgument)
        );
        assert_eq!(parse(b"PORT 256,0,0,1,1,1"), Err(ParseError::BadArgument));
        assert_eq!(parse(b"PORT a,b,c,d,e,f"), Err(ParseError::BadArgument));
        assert_eq!(parse(b"PORT"), Err(ParseError::MissingArgument));
    }

    #[test]
    fn eprt_parses_both_families() {
        assert_eq!(
            parse(b"EPRT |1|127.0.0.1|50000|"),
            Ok(C::Eprt("127.0.0.1:50000".parse().unwrap()))
        );
        assert_eq!(
            parse(b"EPRT |2|::1|50000|"),
            Ok(C::Eprt("[::1]:50000".parse().unwrap()))
        );
        assert_eq!(
            parse(b"EPRT !1!127.0.0.1!21!"),
            Ok(C::Eprt("127.0.0.1:21".parse().unwrap()))
        );
        assert_eq!(parse(b"EPRT |3|x|1|"), Err(ParseError::UnsupportedProtocol));
        assert_eq!(parse(b"EPRT |1|::1|1|"), Err(ParseError::BadArgument));
        assert_eq!(
            parse(b"EPRT |1|127.0.0.1|99999|"),
            Err(ParseError::BadArgument)
        );
        assert_eq!(parse(b"EPRT |1|127.0.0.1|5"), Err(ParseError::BadArgument));
        assert_eq!(parse(b"EPRT"), Err(ParseError::MissingArgument));
    }

    #[test]
    fn epsv_arguments() {
        assert_eq!(parse(b"EPSV"), Ok(C::Epsv(EpsvArg::Any)));
        assert_eq!(parse(b"EPSV 1"), Ok(C::Epsv(EpsvArg::V4)));
        assert_eq!(parse(b"EPSV 2"), Ok(C::Epsv(EpsvArg::V6)));
        assert_eq!(parse(b"EPSV all"), Ok(C::Epsv(EpsvArg::All)));
        assert_eq!(parse(b"EPSV 7"), Err(ParseError::UnsupportedProtocol));
        assert_eq!(parse(b"EPSV x"), Err(ParseError::BadArgument));
    }

    #[test]
    fn rest_offsets() {
        assert_eq!(parse(b"REST 0"), Ok(C::Rest(0)));
        assert_eq!(parse(b"REST 1234567890123"), Ok(C::Rest(1_234_567_890_123)));
        assert_eq!(parse(b"REST -1"), Err(ParseError::BadArgument));
        assert_eq!(
            parse(b"REST 99999999999999999999"),
            Err(ParseError::BadArgument)
        );
        assert_eq!(parse(b"REST"), Err(ParseError::MissingArgument));
        assert_eq!(parse(b"REST 18446744073709551615"), Ok(C::Rest(u64::MAX)));
        assert_eq!(
            parse(b"REST 18446744073709551616"),
            Err(ParseError::BadArgument)
        );
        assert_eq!(
            parse(b"REST 000000000000000000009"),
            Err(ParseError::BadArgument)
        );
        assert_eq!(parse(b"REST 00000000000000000009"), Ok(C::Rest(9)));
        assert_eq!(parse(b"REST 1 "), Err(ParseError::BadArgument));
    }

    #[test]
    fn tls_and_other_extensions_are_not_implemented() {
        assert_eq!(parse(b"AUTH TLS"), Ok(C::NotImplemented));
        assert_eq!(parse(b"AUTH SSL"), Ok(C::NotImplemented));
        assert_eq!(parse(b"MFMT 20240101000000 a"), Ok(C::NotImplemented));
        assert_eq!(parse(b"CLNT FileZilla"), Ok(C::Clnt));
    }

    #[test]
    fn before_login_set() {
        assert!(parse(b"FEAT").unwrap().allowed_before_login());
        assert!(parse(b"OPTS UTF8 ON").unwrap().allowed_before_login());
        assert!(!parse(b"LIST").unwrap().allowed_before_login());
        assert!(!parse(b"RETR a").unwrap().allowed_before_login());
    }

    /// A small deterministic generator for the cross-checks below.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 16) as usize
        }
        fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
            &from[self.next() % from.len()]
        }
    }

    #[test]
    fn address_parsers_agree_with_core() {
        let seeds = [
            "0.0.0.0",
            "127.0.0.1",
            "255.255.255.255",
            "1.2.3.04",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "01.1.1.1",
            "0.0.0.00",
            "1..2.3",
            "::",
            "::1",
            "1::",
            "1::2",
            "::ffff:1.2.3.4",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5:6:7:1.2.3.4",
            "::1.2.3.4",
            "1.2.3.4::",
            ":::",
            "1:::2",
            "12345::",
            "fFfF::",
            "0000:0000::",
            "2001:db8::1:0:0:1",
            "::1:2:3:4:5:6:7",
            "::1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "1:2:3:4:5:6::7",
            ":1::",
            "1:",
            "1.2.3.4:5",
            "",
            ".",
            ":",
            "1::2::3",
            "1:2:3:4:5::1.2.3.4",
            "1:2:3:4:5:6::1.2.3.4",
            "a:b:c:d:e:f:0.0.0.0",
        ];
        let alphabet = b"0123456789abcdefABCDEFgx:.:.:. ";
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut cases: std::vec::Vec<std::string::String> =
            seeds.iter().map(|s| s.to_string()).collect();
        for _ in 0..200_000 {
            let mut c: std::vec::Vec<u8> = if rng.next().is_multiple_of(2) {
                (*rng.pick(&seeds)).as_bytes().to_vec()
            } else {
                std::vec::Vec::new()
            };
            for _ in 0..rng.next() % 6 {
                let b = *rng.pick(alphabet);
                match rng.next() % 3 {
                    0 if !c.is_empty() => {
                        let i = rng.next() % c.len();
                        c[i] = b;
                    }
                    1 if !c.is_empty() => {
                        let i = rng.next() % c.len();
                        c.remove(i);
                    }
                    _ => {
                        let i = rng.next() % (c.len() + 1);
                        c.insert(i, b);
                    }
                }
            }
            cases.push(std::string::String::from_utf8(c).unwrap());
        }
        for c in &cases {
            assert_eq!(parse_ipv4(c.as_bytes()), c.parse().ok(), "IPv4 {c:?}");
            assert_eq!(parse_ipv6(c.as_bytes()), c.parse().ok(), "IPv6 {c:?}");
            // EPRT reads the address with the same parser, not through
            // `parse_ipv4`/`parse_ipv6`.
            for (proto, want) in [
                ("1", c.parse::<Ipv4Addr>().ok().map(IpAddr::V4)),
                ("2", c.parse::<Ipv6Addr>().ok().map(IpAddr::V6)),
            ] {
                let line = std::format!("EPRT |{proto}|{c}|21|");
                let want = want
                    .map(|ip| C::Eprt(SocketAddr::new(ip, 21)))
                    .ok_or(ParseError::BadArgument);
                assert_eq!(parse(line.as_bytes()), want, "{line:?}");
            }
        }
    }

    #[test]
    fn trimming_agrees_with_core() {
        let pieces = [
            "", " ", "\t", "\u{b}", "\u{c}", "\u{85}", "\u{a0}", "\u{1680}", "\u{2000}",
            "\u{200a}", "\u{200b}", "\u{2028}", "\u{2029}", "\u{202f}", "\u{205f}", "\u{3000}",
            "\u{feff}", "a", "é", "\u{2030}", "\u{1681}", "x y", "\u{e000}",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..50_000 {
            let mut s = std::string::String::new();
            for _ in 0..rng.next() % 6 {
                let p: &&str = rng.pick(&pieces);
                s.push_str(p);
            }
            assert_eq!(trim(&s), s.trim(), "{s:?}");
            assert_eq!(trim_start(&s), s.trim_start(), "{s:?}");
        }
    }
}
