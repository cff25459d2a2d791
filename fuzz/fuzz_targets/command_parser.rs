//! Control-channel framing (`proto::line`) and command parsing
//! (`proto::command::parse`) on arbitrary bytes.
//!
//! - neither ever panics;
//! - the bytes are framed as the session does it (extract, skip an
//!   over-long line to its terminator, repeat) with the engine's line buffer
//!   and with a tiny one, and every frame is consistent: it consumes at
//!   least one byte and no more than there is, a line ends at CR or LF and
//!   holds neither, an over-long line is reported only after a full buffer,
//!   and without Telnet bytes a line is exactly the bytes before its
//!   terminator; every line extract produces is parsed;
//! - framing does not depend on how the bytes were split across packets:
//!   delivered in two pieces, cut anywhere, they give the same lines;
//! - parsing: NUL or invalid UTF-8 is `BadBytes`; the verb is
//!   case-insensitive (flipping the case of its letters changes nothing); a
//!   path-like argument is exactly the bytes after the first space; and
//!   every command round-trips: written back in canonical form
//!   (`PORT h1,..,p2`, `EPRT |1|ip|port|`, `TYPE I`, `REST n`, ...) it parses
//!   to the same command.
#![no_main]

use ftpd::MAX_LINE;
use ftpd::proto::command::{Command, EpsvArg, ParseError, TransferType, parse};
use ftpd::proto::line::{Frame, extract, skip_to_terminator};
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;

const IAC: u8 = 0xff;

/// The argument a path-like command carries.
fn text_arg<'a>(c: &Command<'a>) -> Option<&'a str> {
    use Command as C;
    match *c {
        C::User(a)
        | C::Pass(a)
        | C::Cwd(a)
        | C::Mkd(a)
        | C::Rmd(a)
        | C::Dele(a)
        | C::Rnfr(a)
        | C::Rnto(a)
        | C::List(a)
        | C::Nlst(a)
        | C::Mlsd(a)
        | C::Mlst(a)
        | C::Retr(a)
        | C::Stor(a)
        | C::Appe(a)
        | C::Stat(a)
        | C::Help(a)
        | C::Site(a)
        | C::Opts(a)
        | C::Size(a)
        | C::Mdtm(a) => Some(a),
        _ => None,
    }
}

/// The command written back as a client would send it, when that is
/// unambiguous.
fn canonical(c: &Command<'_>) -> Option<String> {
    use Command as C;
    let with = |verb: &str, a: &str| {
        if a.is_empty() {
            verb.to_string()
        } else {
            format!("{verb} {a}")
        }
    };
    Some(match *c {
        C::User(a) => with("USER", a),
        C::Pass(a) => with("PASS", a),
        C::Cwd(a) => with("CWD", a),
        C::Mkd(a) => with("MKD", a),
        C::Rmd(a) => with("RMD", a),
        C::Dele(a) => with("DELE", a),
        C::Rnfr(a) => with("RNFR", a),
        C::Rnto(a) => with("RNTO", a),
        C::List(a) => with("LIST", a),
        C::Nlst(a) => with("NLST", a),
        C::Mlsd(a) => with("MLSD", a),
        C::Mlst(a) => with("MLST", a),
        C::Retr(a) => with("RETR", a),
        C::Stor(a) => with("STOR", a),
        C::Appe(a) => with("APPE", a),
        C::Stat(a) => with("STAT", a),
        C::Help(a) => with("HELP", a),
        C::Site(a) => with("SITE", a),
        C::Opts(a) => with("OPTS", a),
        C::Size(a) => with("SIZE", a),
        C::Mdtm(a) => with("MDTM", a),
        C::Quit => "QUIT".into(),
        C::Rein => "REIN".into(),
        C::Cdup => "CDUP".into(),
        C::Pwd => "PWD".into(),
        C::Stou => "STOU".into(),
        C::Pasv => "PASV".into(),
        C::Abor => "ABOR".into(),
        C::Syst => "SYST".into(),
        C::Noop => "NOOP".into(),
        C::Feat => "FEAT".into(),
        C::Stru => "STRU F".into(),
        C::Mode => "MODE S".into(),
        C::Rest(n) => format!("REST {n}"),
        C::Type(TransferType::Ascii) => "TYPE A".into(),
        C::Type(TransferType::Image) => "TYPE I".into(),
        C::Epsv(EpsvArg::Any) => "EPSV".into(),
        C::Epsv(EpsvArg::V4) => "EPSV 1".into(),
        C::Epsv(EpsvArg::V6) => "EPSV 2".into(),
        C::Epsv(EpsvArg::All) => "EPSV ALL".into(),
        C::Port(a) => {
            let o = a.ip().octets();
            let p = a.port();
            format!(
                "PORT {},{},{},{},{},{}",
                o[0],
                o[1],
                o[2],
                o[3],
                p >> 8,
                p & 0xff
            )
        }
        C::Eprt(SocketAddr::V4(a)) => format!("EPRT |1|{}|{}|", a.ip(), a.port()),
        C::Eprt(SocketAddr::V6(a)) => format!("EPRT |2|{}|{}|", a.ip(), a.port()),
        // These ignore their argument, or stand for many verbs.
        C::Acct | C::Allo | C::Clnt | C::NotImplemented => return None,
    })
}

fn check_parse(line: &[u8]) {
    let r = parse(line);
    let _ = r.map(|c| (c.allowed_before_login(), c.allowed_during_transfer()));
    let Ok(text) = std::str::from_utf8(line) else {
        assert_eq!(r, Err(ParseError::BadBytes), "invalid UTF-8 {line:?}");
        return;
    };
    if line.contains(&0) {
        assert_eq!(r, Err(ParseError::BadBytes), "NUL in {line:?}");
        return;
    }
    let verb_len = text.find(' ').unwrap_or(text.len());

    // Case-insensitive verbs: flip every ASCII letter of the verb.
    let mut flipped = line.to_vec();
    for b in &mut flipped[..verb_len] {
        if b.is_ascii_alphabetic() {
            *b ^= 0x20;
        }
    }
    assert_eq!(
        parse(&flipped),
        r,
        "{text:?} and {:?}",
        String::from_utf8_lossy(&flipped)
    );

    let Ok(cmd) = r else { return };
    assert!(
        (3..=4).contains(&verb_len),
        "a verb of {verb_len} bytes in {text:?}"
    );
    if let Some(a) = text_arg(&cmd) {
        let after = text.split_once(' ').map_or("", |(_, a)| a);
        assert_eq!(a, after, "the argument of {text:?} is not byte-exact");
    }
    if let Some(c) = canonical(&cmd) {
        assert_eq!(
            parse(c.as_bytes()),
            Ok(cmd),
            "{text:?} written back as {c:?}"
        );
    }
}

/// One frame at the front of `raw`, with the line it produced.
fn frame(raw: &[u8], cap: usize) -> (Frame, Vec<u8>) {
    let mut out = vec![0u8; cap];
    let f = extract(raw, &mut out);
    let line = match f {
        Frame::Line { len, .. } => out[..len].to_vec(),
        _ => Vec::new(),
    };
    (f, line)
}

fn is_eol(b: u8) -> bool {
    b == b'\r' || b == b'\n'
}

/// Frames all of `raw` the way the session reads its control connection.
fn frame_all(raw: &[u8], cap: usize) {
    let mut rest = raw;
    let mut discarding = false;
    while !rest.is_empty() {
        if discarding {
            let (n, found) = skip_to_terminator(rest);
            assert!(n <= rest.len());
            if n == 0 {
                // A Telnet sequence cut by the end of the input waits.
                assert!(!found && rest[0] == IAC);
                break;
            }
            // A terminator ends the skip; a CR/LF inside a Telnet sequence
            // (an option byte) does not.
            assert!(!found || is_eol(rest[n - 1]));
            rest = &rest[n..];
            discarding = !found;
            continue;
        }
        let (f, line) = frame(rest, cap);
        let no_telnet = !rest.contains(&IAC);
        match f {
            Frame::Line { consumed, len } => {
                assert!(len >= 1 && len <= cap, "{f:?} with a buffer of {cap}");
                assert!(consumed > len, "{f:?}");
                assert!(consumed <= rest.len(), "{f:?} of {} bytes", rest.len());
                assert!(is_eol(rest[consumed - 1]), "{f:?} does not end at CR/LF");
                assert!(!line.iter().copied().any(is_eol), "{line:?} holds CR/LF");
                if no_telnet {
                    assert_eq!(&line[..], &rest[..len]);
                    assert!(consumed == len + 1 || rest[len..consumed] == *b"\r\n");
                }
                check_parse(&line);
                rest = &rest[consumed..];
            }
            Frame::Empty { consumed } => {
                assert!(consumed >= 1 && consumed <= rest.len(), "{f:?}");
                assert!(is_eol(rest[consumed - 1]), "{f:?} does not end at CR/LF");
                rest = &rest[consumed..];
            }
            Frame::TooLong { consumed } => {
                assert!(
                    consumed >= cap && consumed <= rest.len(),
                    "{f:?} (buffer {cap})"
                );
                if no_telnet {
                    assert!(!rest[..consumed].iter().copied().any(is_eol), "{f:?}");
                }
                rest = &rest[consumed..];
                discarding = true;
            }
            Frame::Partial => {
                if no_telnet {
                    assert!(
                        !rest.iter().copied().any(is_eol),
                        "Partial with a terminator"
                    );
                    assert!(rest.len() < cap || cap == 0, "Partial past a full buffer");
                }
                break;
            }
        }
    }
}

/// What the session makes of a stream: its lines, and `None` for each
/// over-long line; empty lines and Telnet noise leave no trace.
type Events = Vec<Option<Vec<u8>>>;

/// Frames `chunks` as they arrive one after the other, keeping what is not
/// yet a whole line for the next chunk, as the session does with the bytes
/// waiting in its socket. Also tells whether an over-long line was reported
/// exactly at the end of the bytes received so far.
fn events(chunks: &[&[u8]], cap: usize) -> (Events, bool) {
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut discarding = false;
    let mut too_long_at_end = false;
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        let mut at = 0;
        while at < buf.len() {
            let rest = &buf[at..];
            if discarding {
                let (n, found) = skip_to_terminator(rest);
                at += n;
                discarding = !found;
                if n == 0 {
                    break; // a cut Telnet sequence waits for the next chunk
                }
                continue;
            }
            let (f, line) = frame(rest, cap);
            match f {
                Frame::Line { consumed, .. } => {
                    out.push(Some(line));
                    at += consumed;
                }
                Frame::Empty { consumed } => at += consumed,
                Frame::TooLong { consumed } => {
                    too_long_at_end |= consumed == rest.len();
                    out.push(None);
                    at += consumed;
                    discarding = true;
                }
                Frame::Partial => break,
            }
        }
        buf.drain(..at);
    }
    (out, too_long_at_end)
}

/// The lines do not depend on where the bytes were split into packets.
fn split_invariant(raw: &[u8], cap: usize) {
    let (whole, _) = events(&[raw], cap);
    let cuts: Vec<usize> = if raw.len() <= 48 {
        (1..raw.len()).collect()
    } else {
        let step = raw.len() / 24;
        (1..raw.len())
            .step_by(step)
            .chain([cap.min(raw.len() - 1)])
            .collect()
    };
    for k in cuts {
        let (split, _) = events(&[&raw[..k], &raw[k..]], cap);
        assert_eq!(
            split,
            whole,
            "{} bytes split after {k} are framed differently (buffer {cap})",
            raw.len()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    check_parse(data);
    let tiny = 1 + usize::from(data.first().copied().unwrap_or(0) % 24);
    for cap in [MAX_LINE, tiny] {
        frame_all(data, cap);
        split_invariant(data, cap);
    }
});
