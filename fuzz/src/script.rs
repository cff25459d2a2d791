//! Plain-text sessions into [`Scenario`]s: the scenario files under
//! `scenarios/` (see `scenarios/README.md`), and the fuzz-only scripts under
//! `fuzz/sessions/`, which add the steps a scenario cannot express.
//!
//! Scenario steps understood (replies, `recv`, `wait` and `expect close` are
//! the client reading, which the fuzz client always does, so they vanish):
//!
//! ```text
//! connect [NAME]   use NAME|N   login   > LINE   raw BYTES   send DATA
//! sleep 2s|200ms   close
//! ```
//!
//! After `> PASV` and `> EPSV` the client connects to the passive port at
//! once, as the harness does; `PORT *` and `EPRT *` name the client.
//!
//! Fuzz-only steps:
//!
//! ```text
//! flags N            the header byte (scenario::FLAG_*, driver::FLAG_*), first
//! connect-from other|mapped   a connection from another host / as ::ffff:a.b.c.d
//! pipe BYTES         bytes on the control connection, no polling after them
//! passive [other|mapped] [N]  connect to the Nth newest passive listener
//! data BYTES         bytes on the newest data connection
//! data-fin | data-rst | ctrl-fin | ctrl-rst
//! advance MS         the clock moves on
//! cap ctrl|data N    send buffer of the current control / newest data socket
//!                    (N an index into scenario::CAPS)
//! reading ctrl|data  stop (or resume) reading that socket
//! refuse             active connections fail (again: succeed)
//! ```
//!
//! BYTES: quoted strings with `\r \n \t \0 \\ \" \xHH`, each optionally
//! followed by `x COUNT`. DATA: `text "..."`, `filler SIZE` (capped at 4
//! KB), `fixture PATH` (some bytes), `nothing`.

use std::collections::BTreeMap;

use crate::scenario::{Action, From, Scenario, Target};

/// Data longer than this is cut in seeds (keeps the corpus small).
pub const MAX_DATA: usize = 4096;

pub const PORT_SELF: &str = "PORT 192,0,2,2,195,80";
pub const EPRT_SELF: &str = "EPRT |1|192.0.2.2|50000|";

/// Parses quoted byte strings (`"..." x N "..."`).
pub fn parse_bytes(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut chars = s.trim().chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => return Ok(out),
            Some('"') => {}
            Some(c) => return Err(format!("expected a quoted string at {c:?} in {s:?}")),
        }
        let mut piece = Vec::new();
        loop {
            match chars.next() {
                None => return Err(format!("unterminated string in {s:?}")),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('r') => piece.push(b'\r'),
                    Some('n') => piece.push(b'\n'),
                    Some('t') => piece.push(b'\t'),
                    Some('0') => piece.push(0),
                    Some('\\') => piece.push(b'\\'),
                    Some('"') => piece.push(b'"'),
                    Some('x') => {
                        let h: String = [chars.next(), chars.next()].iter().flatten().collect();
                        let b = u8::from_str_radix(&h, 16)
                            .map_err(|_| format!("bad \\x escape in {s:?}"))?;
                        piece.push(b);
                    }
                    other => return Err(format!("bad escape {other:?} in {s:?}")),
                },
                Some(c) => {
                    let mut b = [0u8; 4];
                    piece.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                }
            }
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut count = 1;
        if chars.peek() == Some(&'x') {
            chars.next();
            let n: String = {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                let mut n = String::new();
                while chars.peek().is_some_and(|c| c.is_ascii_digit()) {
                    n.push(chars.next().unwrap());
                }
                n
            };
            count = n
                .parse()
                .map_err(|_| format!("bad repeat count in {s:?}"))?;
        }
        for _ in 0..count {
            out.extend_from_slice(&piece);
        }
    }
}

fn filler(n: usize) -> Vec<u8> {
    (0..n.min(MAX_DATA)).map(|i| (i * 31 % 253) as u8).collect()
}

fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (num, mul) = if let Some(n) = s.strip_suffix(['K', 'k']) {
        (n, 1024)
    } else if let Some(n) = s.strip_suffix(['M', 'm']) {
        (n, 1024 * 1024)
    } else {
        (s, 1)
    };
    num.parse::<usize>()
        .map(|n| n * mul)
        .map_err(|_| format!("bad size {s:?}"))
}

fn parse_data(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    let (kind, rest) = s.split_once(' ').unwrap_or((s, ""));
    match kind {
        "text" => parse_bytes(rest),
        "filler" => Ok(filler(parse_size(rest)?)),
        "fixture" => Ok(format!("contents of {rest}\r\n").into_bytes()),
        "nothing" => Ok(Vec::new()),
        _ => Err(format!("unknown data {s:?}")),
    }
}

fn parse_ms(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let v = if let Some(n) = s.strip_suffix("ms") {
        n.parse::<u32>().ok()
    } else if let Some(n) = s.strip_suffix('s') {
        n.parse::<u32>().ok().map(|n| n * 1000)
    } else {
        s.parse::<u32>().ok()
    };
    v.ok_or_else(|| format!("bad duration {s:?}"))
}

/// Removes a comment: `#` at the start of a line or after two spaces.
fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    match line.find("  #") {
        Some(i) => &line[..i],
        None => line,
    }
}

fn from_word(w: &str) -> From {
    match w {
        "other" => From::Other,
        "mapped" => From::ClientMapped,
        _ => From::Client,
    }
}

/// A scenario or fuzz script as a [`Scenario`] (the first connection is
/// the one the driver opens by itself).
pub fn parse(text: &str) -> Result<Scenario, String> {
    let mut s = Scenario::default();
    let mut login = ("test".to_string(), "test".to_string());
    let mut names: BTreeMap<String, u8> = BTreeMap::new();
    let mut conns = 0u8; // connections opened so far
    let mut cur = 0u8;
    let has_header = text.lines().any(|l| l.trim() == "---");
    let mut in_header = has_header;
    for raw_line in text.lines() {
        let line = strip_comment(raw_line).trim_end();
        let line = line.trim_start();
        if line.is_empty() {
            continue;
        }
        if in_header {
            if line == "---" {
                in_header = false;
            } else if let Some(l) = line.strip_prefix("login:") {
                let mut it = l.split_whitespace();
                login = (
                    it.next().unwrap_or("test").to_string(),
                    it.next().unwrap_or("").to_string(),
                );
            }
            continue;
        }
        let (step, arg) = line.split_once(' ').unwrap_or((line, ""));
        let arg_t = arg.trim();
        let send = |bytes: Vec<u8>, poll: bool| Action::Send {
            conn: cur,
            bytes,
            poll,
        };
        match step {
            "connect" | "connect-from" => {
                let (name, from) = if step == "connect" {
                    (arg_t, From::Client)
                } else {
                    ("", from_word(arg_t))
                };
                if conns > 0 || from != From::Client {
                    s.actions.push(Action::Connect(from));
                }
                if conns == 0 && from != From::Client {
                    conns = 1; // the driver's own first connection
                }
                cur = conns;
                conns += 1;
                if !name.is_empty() {
                    names.insert(name.to_string(), cur);
                }
            }
            "use" => {
                cur = match (names.get(arg_t), arg_t.parse::<u8>()) {
                    (Some(&n), _) | (None, Ok(n)) => n,
                    _ => return Err(format!("use of unknown connection {arg_t:?}")),
                };
            }
            "login" => {
                s.actions
                    .push(send(format!("USER {}\r\n", login.0).into_bytes(), true));
                s.actions
                    .push(send(format!("PASS {}\r\n", login.1).into_bytes(), true));
            }
            ">" => {
                let cmd = match arg.trim_end() {
                    "PORT *" => PORT_SELF,
                    "EPRT *" => EPRT_SELF,
                    c => c,
                };
                s.actions
                    .push(send(format!("{cmd}\r\n").into_bytes(), true));
                let verb = cmd.split(' ').next().unwrap_or("").to_ascii_uppercase();
                let all = cmd.to_ascii_uppercase().contains("ALL");
                if verb == "PASV" || (verb == "EPSV" && !all) {
                    s.actions.push(Action::Passive {
                        which: 0,
                        from: From::Client,
                    });
                }
            }
            "raw" => s.actions.push(send(parse_bytes(arg)?, true)),
            "pipe" => s.actions.push(send(parse_bytes(arg)?, false)),
            "send" => {
                s.actions.push(Action::Data {
                    which: 0,
                    bytes: parse_data(arg)?,
                });
                s.actions.push(Action::DataFin(0));
            }
            "data" => s.actions.push(Action::Data {
                which: 0,
                bytes: parse_bytes(arg)?,
            }),
            "sleep" | "advance" => s.actions.push(Action::Advance(parse_ms(arg)?)),
            "close" | "ctrl-fin" => s.actions.push(Action::CtrlFin(cur)),
            "ctrl-rst" => s.actions.push(Action::CtrlRst(cur)),
            "data-fin" => s.actions.push(Action::DataFin(0)),
            "data-rst" => s.actions.push(Action::DataRst(0)),
            "passive" => {
                let mut from = From::Client;
                let mut which = 0;
                for w in arg.split_whitespace() {
                    match w.parse::<u8>() {
                        Ok(n) => which = n,
                        Err(_) => from = from_word(w),
                    }
                }
                s.actions.push(Action::Passive { which, from });
            }
            "cap" | "reading" => {
                let mut it = arg.split_whitespace();
                let target = match it.next() {
                    Some("ctrl") => Target::Ctrl(cur),
                    Some("data") => Target::Data(0),
                    other => return Err(format!("{step}: ctrl or data, not {other:?}")),
                };
                if step == "cap" {
                    let n: u8 = it
                        .next()
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| format!("cap needs an index into CAPS: {line:?}"))?;
                    s.actions.push(Action::Cap(target, n));
                } else {
                    s.actions.push(Action::Reading(target));
                }
            }
            "refuse" => s.actions.push(Action::Refuse),
            "flags" => {
                s.flags = arg_t
                    .parse()
                    .map_err(|_| format!("flags needs a number: {line:?}"))?
            }
            "<" | "recv" | "wait" | "expect" => {}
            other => return Err(format!("unknown step {other:?} in {line:?}")),
        }
    }
    Ok(s)
}

/// The command lines a script sends (for the `command_parser` seeds):
/// `>` lines with CRLF, `login` lines, and `raw`/`pipe` bytes as they are.
pub fn command_lines(text: &str) -> Vec<Vec<u8>> {
    let Ok(s) = parse(text) else {
        return Vec::new();
    };
    s.actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { bytes, .. } if !bytes.is_empty() => Some(bytes.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_with_escapes_and_repeats() {
        assert_eq!(
            parse_bytes(r#""NOOP " "A" x 3 "\r\n""#).unwrap(),
            b"NOOP AAA\r\n".to_vec()
        );
        assert_eq!(
            parse_bytes(r#""\xff\xf4\xff\xf2ABOR\r\n""#).unwrap(),
            b"\xff\xf4\xff\xf2ABOR\r\n".to_vec()
        );
        assert_eq!(parse_bytes(r#""a\0\"b""#).unwrap(), b"a\0\"b".to_vec());
    }

    #[test]
    fn a_scenario_becomes_actions() {
        let s = parse(
            "login: u p\n---\nconnect a\n< 220\nlogin\n> PASV  # passive\n< 227\n\
             > MKD a#b\nsend text \"x\"\nconnect b\nuse a\nsleep 2s\nclose\n",
        )
        .unwrap();
        let send = |b: &str| Action::Send {
            conn: 0,
            bytes: b.as_bytes().to_vec(),
            poll: true,
        };
        assert_eq!(
            s.actions,
            vec![
                send("USER u\r\n"),
                send("PASS p\r\n"),
                send("PASV\r\n"),
                Action::Passive {
                    which: 0,
                    from: From::Client
                },
                send("MKD a#b\r\n"),
                Action::Data {
                    which: 0,
                    bytes: b"x".to_vec()
                },
                Action::DataFin(0),
                Action::Connect(From::Client),
                Action::Advance(2000),
                Action::CtrlFin(0),
            ]
        );
    }
}
