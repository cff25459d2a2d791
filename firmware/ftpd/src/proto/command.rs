//! Command lines into typed commands (RFC 959 §4.1, RFC 2389, 2428, 3659).
//!
//! A command line is a verb, optionally followed by one space and an
//! argument. Verbs are case-insensitive. The argument is kept byte-exact
//! (file names may contain spaces); only the line terminator is removed by
//! the caller ([`super::line`]). Parsing never allocates and never panics:
//! whatever the bytes, the result is a [`Command`] or a [`ParseError`] that
//! names the reply to send.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

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

/// Parses one command line (terminator already removed, Telnet sequences
/// already stripped).
pub fn parse<'a>(line: &'a [u8]) -> Result<Command<'a>, ParseError> {
    if line.contains(&0) {
        return Err(ParseError::BadBytes);
    }
    let line = core::str::from_utf8(line).map_err(|_| ParseError::BadBytes)?;
    let (verb, arg) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    if verb.len() > 4 || verb.is_empty() {
        return Err(ParseError::Unknown);
    }
    let mut up = [0u8; 4];
    for (d, s) in up.iter_mut().zip(verb.bytes()) {
        *d = s.to_ascii_uppercase();
    }
    let verb = &up[..verb.len()];

    use Command as C;
    let need = |c: fn(&'a str) -> Command<'a>| -> Result<Command<'a>, ParseError> {
        if arg.is_empty() {
            Err(ParseError::MissingArgument)
        } else {
            Ok(c(arg))
        }
    };
    let bare = |c: Command<'a>| -> Result<Command<'a>, ParseError> {
        if arg.trim().is_empty() {
            Ok(c)
        } else {
            Err(ParseError::UnexpectedArgument)
        }
    };
    match verb {
        b"USER" => need(C::User),
        // An empty password is a password (anonymous clients send one).
        b"PASS" => Ok(C::Pass(arg)),
        b"ACCT" => Ok(C::Acct),
        b"QUIT" => bare(C::Quit),
        b"REIN" => bare(C::Rein),
        b"CWD" | b"XCWD" => Ok(C::Cwd(arg)),
        b"CDUP" | b"XCUP" => bare(C::Cdup),
        b"PWD" | b"XPWD" => bare(C::Pwd),
        b"MKD" | b"XMKD" => need(C::Mkd),
        b"RMD" | b"XRMD" => need(C::Rmd),
        b"DELE" => need(C::Dele),
        b"RNFR" => need(C::Rnfr),
        b"RNTO" => need(C::Rnto),
        b"LIST" => Ok(C::List(arg)),
        b"NLST" => Ok(C::Nlst(arg)),
        b"MLSD" => Ok(C::Mlsd(arg)),
        b"MLST" => Ok(C::Mlst(arg)),
        b"RETR" => need(C::Retr),
        b"STOR" => need(C::Stor),
        b"STOU" => bare(C::Stou),
        b"APPE" => need(C::Appe),
        b"REST" => parse_rest(arg),
        b"ALLO" => {
            if arg.is_empty() {
                Err(ParseError::MissingArgument)
            } else {
                Ok(C::Allo)
            }
        }
        b"TYPE" => parse_type(arg),
        b"STRU" => match arg {
            "" => Err(ParseError::MissingArgument),
            "F" | "f" => Ok(C::Stru),
            "R" | "r" | "P" | "p" => Err(ParseError::UnsupportedParameter),
            _ => Err(ParseError::BadArgument),
        },
        b"MODE" => match arg {
            "" => Err(ParseError::MissingArgument),
            "S" | "s" => Ok(C::Mode),
            "B" | "b" | "C" | "c" | "Z" | "z" => Err(ParseError::UnsupportedParameter),
            _ => Err(ParseError::BadArgument),
        },
        b"PORT" => parse_port(arg).map(C::Port),
        b"PASV" => bare(C::Pasv),
        b"EPSV" => parse_epsv(arg),
        b"EPRT" => parse_eprt(arg).map(C::Eprt),
        b"ABOR" => bare(C::Abor),
        b"SYST" => bare(C::Syst),
        b"STAT" => Ok(C::Stat(arg)),
        b"HELP" => Ok(C::Help(arg)),
        b"NOOP" => bare(C::Noop),
        b"SITE" => need(C::Site),
        b"FEAT" => bare(C::Feat),
        b"OPTS" => need(C::Opts),
        b"SIZE" => need(C::Size),
        b"MDTM" => need(C::Mdtm),
        b"CLNT" => Ok(C::Clnt),
        b"AUTH" | b"PBSZ" | b"PROT" | b"CCC" | b"LANG" | b"HOST" | b"MFMT" | b"MFCT" | b"MFF"
        | b"SMNT" | b"LPSV" | b"LPRT" | b"ADAT" | b"MIC" | b"CONF" | b"ENC" | b"AVBL" | b"DSIZ"
        | b"RMDA" | b"XCRC" | b"XMD5" | b"XSHA" | b"HASH" => Ok(C::NotImplemented),
        _ => Err(ParseError::Unknown),
    }
}

fn parse_rest(arg: &str) -> Result<Command<'_>, ParseError> {
    if arg.is_empty() {
        return Err(ParseError::MissingArgument);
    }
    parse_u64(arg)
        .map(Command::Rest)
        .ok_or(ParseError::BadArgument)
}

fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_type(arg: &str) -> Result<Command<'_>, ParseError> {
    let mut it = arg.split(' ').filter(|s| !s.is_empty());
    let first = it.next().ok_or(ParseError::MissingArgument)?;
    let second = it.next();
    if it.next().is_some() {
        return Err(ParseError::BadArgument);
    }
    let t = match (first.to_ascii_uppercase_byte(), second) {
        (b'A', None) => TransferType::Ascii,
        (b'A', Some(f)) if f.eq_ignore_ascii_case("N") || f.eq_ignore_ascii_case("T") => {
            TransferType::Ascii
        }
        (b'A', Some(f)) if f.eq_ignore_ascii_case("C") => {
            return Err(ParseError::UnsupportedParameter);
        }
        (b'I', None) => TransferType::Image,
        (b'L', Some("8")) => TransferType::Image,
        (b'L', Some(_)) | (b'E', _) => return Err(ParseError::UnsupportedParameter),
        _ => return Err(ParseError::BadArgument),
    };
    if first.len() != 1 {
        return Err(ParseError::BadArgument);
    }
    Ok(Command::Type(t))
}

trait FirstByte {
    fn to_ascii_uppercase_byte(&self) -> u8;
}
impl FirstByte for str {
    fn to_ascii_uppercase_byte(&self) -> u8 {
        self.as_bytes()
            .first()
            .map_or(0, |b| b.to_ascii_uppercase())
    }
}

/// `PORT h1,h2,h3,h4,p1,p2` (RFC 959 §4.1.2).
fn parse_port(arg: &str) -> Result<SocketAddrV4, ParseError> {
    if arg.is_empty() {
        return Err(ParseError::MissingArgument);
    }
    let mut n = [0u8; 6];
    let mut count = 0;
    for part in arg.trim().split(',') {
        if count == 6 {
            return Err(ParseError::BadArgument);
        }
        let v = parse_u64(part.trim()).ok_or(ParseError::BadArgument)?;
        n[count] = u8::try_from(v).map_err(|_| ParseError::BadArgument)?;
        count += 1;
    }
    if count != 6 {
        return Err(ParseError::BadArgument);
    }
    let ip = Ipv4Addr::new(n[0], n[1], n[2], n[3]);
    Ok(SocketAddrV4::new(
        ip,
        u16::from(n[4]) << 8 | u16::from(n[5]),
    ))
}

/// `EPSV [1|2|ALL]` (RFC 2428 §3).
fn parse_epsv(arg: &str) -> Result<Command<'_>, ParseError> {
    Ok(Command::Epsv(match arg.trim() {
        "" => EpsvArg::Any,
        "1" => EpsvArg::V4,
        "2" => EpsvArg::V6,
        a if a.eq_ignore_ascii_case("ALL") => EpsvArg::All,
        a if parse_u64(a).is_some() => return Err(ParseError::UnsupportedProtocol),
        _ => return Err(ParseError::BadArgument),
    }))
}

/// `EPRT |proto|addr|port|` with any delimiter (RFC 2428 §2).
fn parse_eprt(arg: &str) -> Result<SocketAddr, ParseError> {
    let arg = arg.trim();
    let d = arg.chars().next().ok_or(ParseError::MissingArgument)?;
    if !(33..=126).contains(&(d as u32)) || d.is_ascii_digit() {
        return Err(ParseError::BadArgument);
    }
    let mut it = arg[d.len_utf8()..].split(d);
    let (proto, addr, port, rest) = (it.next(), it.next(), it.next(), it.next());
    let (Some(proto), Some(addr), Some(port), Some("")) = (proto, addr, port, rest) else {
        return Err(ParseError::BadArgument);
    };
    if it.next().is_some() {
        return Err(ParseError::BadArgument);
    }
    let port = parse_u64(port)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(ParseError::BadArgument)?;
    let ip = match proto {
        "1" => IpAddr::V4(
            addr.parse::<Ipv4Addr>()
                .map_err(|_| ParseError::BadArgument)?,
        ),
        "2" => IpAddr::V6(
            addr.parse::<Ipv6Addr>()
                .map_err(|_| ParseError::BadArgument)?,
        ),
        p if parse_u64(p).is_some() => return Err(ParseError::UnsupportedProtocol),
        _ => return Err(ParseError::BadArgument),
    };
    Ok(SocketAddr::new(ip, port))
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
}
