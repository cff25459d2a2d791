//! Scenario files: what a client sends, what it needs back, and what travels
//! on the data connection.
//!
//! A scenario is a plain-text file under `scenarios/<set>/<name>.ftp`. The
//! format is documented for people in `scenarios/README.md`; this module is
//! its parser. In short:
//!
//! ```text
//! client: FileZilla 3.62
//! description: logon, browse, download on a second connection
//! fixture: basic
//! login: test test
//! ---
//! connect browse
//! < 220
//! login
//! > PASV
//! < 227
//! > MLSD
//! < 150
//! recv listing
//! < 226
//! ```
//!
//! Parsing never touches the network: a scenario is data, checked completely
//! before anything is played, and every error names its line.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A parsed scenario file.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// `<set>/<name>`, e.g. `filezilla/browse`: the scenario's identity in
    /// tables, on the command line and (with `/` as `__`) in snapshot names.
    pub id: String,
    /// The file it was read from (may be empty for scenarios made in memory).
    pub path: PathBuf,
    pub header: Header,
    pub steps: Vec<Step>,
    /// The file's text, unchanged.
    pub source: String,
}

/// The part above `---`.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// The client modelled (free text).
    pub client: String,
    /// One line saying what the scenario shows.
    pub description: String,
    /// The fixture tree created fresh before the scenario runs
    /// (`scenarios/fixtures/<name>.tree`); `None` for an empty root.
    pub fixture: Option<String>,
    /// User and password that the `login` step sends.
    pub login: Option<(String, String)>,
    /// How long to wait for a reply or a data connection.
    pub timeout: Duration,
}

/// What a reply must be: any of several codes or classes, and optionally a
/// pattern for the text of its first line.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplySpec {
    pub codes: Vec<CodePattern>,
    /// Glob (`*` matches any run of characters) the first line's text must
    /// match, the text being what follows the code and its separator.
    pub text: Option<String>,
}

/// `226` (exact), `2xx` (class), or `any`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodePattern {
    Exact(u16),
    Class(u8),
    Any,
}

/// What the client does with the bytes of a data connection.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// A file of the scenario's fixture tree.
    Fixture(String),
    /// `n` bytes of the harness's deterministic filler.
    Filler(u64),
    /// These bytes (escapes decoded).
    Bytes(Vec<u8>),
    /// No bytes at all.
    Nothing,
    /// (receive only) a directory listing: its lines go into the transcript,
    /// normalised and sorted.
    Listing,
    /// (receive only) anything: the transcript records size and checksum.
    Any,
}

/// One line of a scenario body.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Open a control connection with this name and make it current; the
    /// greeting is read by the `<` lines that follow.
    Connect(String),
    /// Make an open connection current.
    Use(String),
    /// Send a command line (CRLF appended). In `PORT *` and `EPRT *` the
    /// harness listens and puts its own address in place of `*`.
    Send(String),
    /// Send bytes exactly as given, no CRLF added, no reply read implicitly.
    Raw(Vec<u8>),
    /// Read the next reply and check it.
    Expect(ReplySpec),
    /// Read replies until one matches, within the duration.
    Wait(ReplySpec, Duration),
    /// Receive the data connection of the transfer in progress.
    Recv(Payload),
    /// Send on the data connection of the transfer in progress, then close it.
    SendData(Payload),
    /// `USER` and `PASS` with the header's login, expecting `331` and `230`.
    Login,
    /// Pause.
    Sleep(Duration),
    /// Close the current control connection from the client side (no QUIT).
    Close,
    /// The server must close the current control connection.
    ExpectClose,
}

/// A scenario that does not parse: file, line and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// The default time a reply or data connection may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Commands whose reply opens a data transfer.
pub fn is_transfer_command(verb: &str) -> Option<Direction> {
    match verb.to_ascii_uppercase().as_str() {
        "LIST" | "NLST" | "MLSD" | "RETR" => Some(Direction::Download),
        "STOR" | "STOU" | "APPE" => Some(Direction::Upload),
        _ => None,
    }
}

/// Which way a transfer's bytes go, seen from the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Download,
    Upload,
}

impl ReplySpec {
    /// Does a reply with this code and first-line text satisfy the spec?
    pub fn matches(&self, code: u16, text: &str) -> bool {
        let code_ok = self.codes.iter().any(|c| match *c {
            CodePattern::Exact(n) => n == code,
            CodePattern::Class(k) => u16::from(k) == code / 100,
            CodePattern::Any => true,
        });
        code_ok && self.text.as_deref().is_none_or(|p| glob_match(p, text))
    }

    /// Parse `226`, `2xx`, `4xx|5xx`, `any`, optionally followed by a text
    /// pattern: `257 "/sub"*`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (codes, text) = match s.split_once(char::is_whitespace) {
            Some((c, t)) => (c, Some(t.trim().to_string())),
            None => (s, None),
        };
        let mut out = Vec::new();
        for c in codes.split('|') {
            out.push(parse_code(c)?);
        }
        Ok(ReplySpec {
            codes: out,
            text: text.filter(|t| !t.is_empty()),
        })
    }
}

impl fmt::Display for ReplySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.codes.iter().enumerate() {
            if i > 0 {
                f.write_str("|")?;
            }
            match c {
                CodePattern::Exact(n) => write!(f, "{n}")?,
                CodePattern::Class(k) => write!(f, "{k}xx")?,
                CodePattern::Any => f.write_str("any")?,
            }
        }
        if let Some(t) = &self.text {
            write!(f, " {t}")?;
        }
        Ok(())
    }
}

fn parse_code(c: &str) -> Result<CodePattern, String> {
    let b = c.as_bytes();
    if c.eq_ignore_ascii_case("any") {
        return Ok(CodePattern::Any);
    }
    if b.len() == 3 && (b'1'..=b'6').contains(&b[0]) {
        if b[1..].eq_ignore_ascii_case(b"xx") {
            return Ok(CodePattern::Class(b[0] - b'0'));
        }
        if b[1].is_ascii_digit() && b[2].is_ascii_digit() {
            return Ok(CodePattern::Exact(c.parse().unwrap()));
        }
    }
    Err(format!(
        "`{c}` is not a reply code (226), class (2xx) or `any`"
    ))
}

/// `*` matches any run of characters, `?` one character; everything else is
/// literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with one backtrack point: linear for these sizes.
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Parse a duration written `250ms`, `2s`, `1.5s` or `1m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("`{s}` is not a duration (250ms, 2s, 1.5s, 1m)");
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| s.split_at(i))
        .ok_or_else(bad)?;
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    if !(0.0..=3600.0).contains(&secs) {
        return Err(format!("`{s}` is out of range (at most one hour)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parse a size written `4096`, `64K`, `1M` (binary multiples).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let bad = || format!("`{s}` is not a size (4096, 64K, 1M)");
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1024),
        Some('M' | 'm') => (&s[..s.len() - 1], 1024 * 1024),
        Some('G' | 'g') => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .map_err(|_| bad())?
        .checked_mul(mult)
        .ok_or_else(bad)
}

/// Decode a sequence of quoted segments, each optionally repeated:
/// `"NOOP " "A" x 600 "\r\n"`. Escapes: `\r \n \t \0 \\ \" \xHH`.
pub fn parse_bytes(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err("expected a quoted string".into());
    }
    while !rest.is_empty() {
        let (seg, after) = parse_quoted(rest)?;
        rest = after.trim_start();
        let mut times = 1usize;
        if let Some(r) = rest.strip_prefix('x').or_else(|| rest.strip_prefix('*')) {
            let r = r.trim_start();
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            times = r[..end]
                .parse()
                .map_err(|_| format!("expected a count after `x` in `{s}`"))?;
            if times > 1 << 20 {
                return Err(format!("repeat count {times} is too large"));
            }
            rest = r[end..].trim_start();
        }
        for _ in 0..times {
            out.extend_from_slice(&seg);
        }
    }
    Ok(out)
}

fn parse_quoted(s: &str) -> Result<(Vec<u8>, &str), String> {
    let body = s
        .strip_prefix('"')
        .ok_or_else(|| format!("expected `\"` at `{s}`"))?;
    let mut out = Vec::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &body[i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'r')) => out.push(b'\r'),
                Some((_, 'n')) => out.push(b'\n'),
                Some((_, 't')) => out.push(b'\t'),
                Some((_, '0')) => out.push(0),
                Some((_, '\\')) => out.push(b'\\'),
                Some((_, '"')) => out.push(b'"'),
                Some((_, 'x')) => {
                    let hex: String = (0..2)
                        .filter_map(|_| chars.next().map(|(_, c)| c))
                        .collect();
                    let v = u8::from_str_radix(&hex, 16)
                        .map_err(|_| format!("bad escape `\\x{hex}`"))?;
                    out.push(v);
                }
                other => {
                    return Err(format!(
                        "unknown escape `\\{}`",
                        other.map_or(' ', |(_, c)| c)
                    ));
                }
            },
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Err(format!("unterminated string `{s}`"))
}

/// Remove a trailing comment: `#` at the start of the line or after two or
/// more spaces (so `MKD a#b` and `MKD a #b` keep their `#`).
fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    let mut in_quotes = false;
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_quotes => i += 1,
            b'"' => in_quotes = !in_quotes,
            b'#' if !in_quotes && i >= 2 && b[i - 1] == b' ' && b[i - 2] == b' ' => {
                return line[..i].trim_end();
            }
            _ => {}
        }
        i += 1;
    }
    line.trim_end()
}

fn parse_payload(words: &str, recv: bool) -> Result<Payload, String> {
    let words = words.trim();
    let (kind, arg) = match words.split_once(char::is_whitespace) {
        Some((k, a)) => (k, a.trim()),
        None => (words, ""),
    };
    let none = |p: Payload| {
        if arg.is_empty() {
            Ok(p)
        } else {
            Err(format!("`{kind}` takes no argument"))
        }
    };
    match kind {
        "" => Ok(if recv { Payload::Any } else { Payload::Nothing }),
        "fixture" if !arg.is_empty() => Ok(Payload::Fixture(arg.to_string())),
        "filler" => Ok(Payload::Filler(parse_size(arg)?)),
        "text" => Ok(Payload::Bytes(parse_bytes(arg)?)),
        "nothing" => none(Payload::Nothing),
        "listing" if recv => none(Payload::Listing),
        "any" if recv => none(Payload::Any),
        _ => Err(format!(
            "unknown data `{words}`: use fixture PATH, filler SIZE, text \"...\", nothing{}",
            if recv { ", listing, any" } else { "" }
        )),
    }
}

impl Scenario {
    /// Read and parse a scenario file; `id` is derived from its path relative
    /// to `base` (the `scenarios/` folder).
    pub fn load(path: &Path, base: &Path) -> Result<Self, ParseError> {
        let rel = path.strip_prefix(base).unwrap_or(path);
        let id = rel.with_extension("").to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(path).map_err(|e| ParseError {
            file: path.display().to_string(),
            line: 0,
            message: e.to_string(),
        })?;
        let mut s = Self::parse(&id, &text).map_err(|mut e| {
            e.file = path.display().to_string();
            e
        })?;
        s.path = path.to_path_buf();
        Ok(s)
    }

    /// Parse scenario text.
    pub fn parse(id: &str, text: &str) -> Result<Self, ParseError> {
        let err = |line: usize, message: String| ParseError {
            file: id.to_string(),
            line,
            message,
        };
        let mut header = Header {
            client: String::new(),
            description: String::new(),
            fixture: None,
            login: None,
            timeout: DEFAULT_TIMEOUT,
        };
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        let mut saw_separator = false;
        for (n, line) in lines.by_ref() {
            let line = strip_comment(line);
            if line.is_empty() {
                continue;
            }
            if line.trim() == "---" {
                saw_separator = true;
                break;
            }
            let (key, value) = line
                .split_once(':')
                .ok_or_else(|| err(n, format!("expected `key: value` or `---`, found `{line}`")))?;
            let value = value.trim().to_string();
            match key.trim() {
                "client" => header.client = value,
                "description" => header.description = value,
                "fixture" => {
                    header.fixture = (value != "none" && !value.is_empty()).then_some(value)
                }
                "login" => {
                    let mut w = value.split_whitespace();
                    match (w.next(), w.next(), w.next()) {
                        (Some(u), Some(p), None) => {
                            header.login = Some((u.to_string(), p.to_string()))
                        }
                        (Some("none"), None, None) => header.login = None,
                        _ => {
                            return Err(err(n, "login: expected `USER PASSWORD` or `none`".into()));
                        }
                    }
                }
                "timeout" => header.timeout = parse_duration(&value).map_err(|m| err(n, m))?,
                other => {
                    return Err(err(
                        n,
                        format!(
                            "unknown header field `{other}` (client, description, fixture, login, timeout)"
                        ),
                    ));
                }
            }
        }
        if !saw_separator {
            return Err(err(
                0,
                "no `---` line between the header and the steps".into(),
            ));
        }
        if header.description.is_empty() {
            return Err(err(0, "the header needs a `description:`".into()));
        }

        let mut steps = Vec::new();
        let mut open: Vec<String> = Vec::new();
        for (n, raw_line) in lines {
            let line = strip_comment(raw_line);
            if line.is_empty() {
                continue;
            }
            let step = if let Some(cmd) = line.strip_prefix('>') {
                let cmd = cmd.strip_prefix(' ').unwrap_or(cmd);
                if cmd.is_empty() {
                    return Err(err(n, "`>` needs a command".into()));
                }
                Step::Send(cmd.to_string())
            } else if let Some(spec) = line.strip_prefix('<') {
                Step::Expect(ReplySpec::parse(spec).map_err(|m| err(n, m))?)
            } else {
                let (word, rest) = match line.split_once(char::is_whitespace) {
                    Some((w, r)) => (w, r.trim()),
                    None => (line, ""),
                };
                match word {
                    "connect" | "use" => {
                        let name = if rest.is_empty() {
                            "1".to_string()
                        } else {
                            rest.to_string()
                        };
                        if name.contains(char::is_whitespace) {
                            return Err(err(n, format!("connection names are one word: `{name}`")));
                        }
                        if word == "connect" {
                            open.push(name.clone());
                            Step::Connect(name)
                        } else {
                            if !open.contains(&name) {
                                return Err(err(
                                    n,
                                    format!("`use {name}` before `connect {name}`"),
                                ));
                            }
                            Step::Use(name)
                        }
                    }
                    "raw" => Step::Raw(parse_bytes(rest).map_err(|m| err(n, m))?),
                    "wait" => {
                        let (spec, within) = match rest.split_once(" within ") {
                            Some((s, d)) => (s, parse_duration(d).map_err(|m| err(n, m))?),
                            None => (rest, header.timeout),
                        };
                        Step::Wait(ReplySpec::parse(spec).map_err(|m| err(n, m))?, within)
                    }
                    "recv" => Step::Recv(parse_payload(rest, true).map_err(|m| err(n, m))?),
                    "send" => Step::SendData(parse_payload(rest, false).map_err(|m| err(n, m))?),
                    "login" if rest.is_empty() => {
                        if header.login.is_none() {
                            return Err(err(
                                n,
                                "`login` needs `login: USER PASSWORD` in the header".into(),
                            ));
                        }
                        Step::Login
                    }
                    "sleep" => Step::Sleep(parse_duration(rest).map_err(|m| err(n, m))?),
                    "close" if rest.is_empty() => Step::Close,
                    "expect" if rest == "close" => Step::ExpectClose,
                    _ => return Err(err(n, format!("unknown step `{line}`"))),
                }
            };
            if steps.is_empty() && !matches!(step, Step::Connect(_)) {
                return Err(err(n, "the first step must be `connect`".into()));
            }
            steps.push(step);
        }
        if steps.is_empty() {
            return Err(err(0, "no steps".into()));
        }
        Ok(Scenario {
            id: id.to_string(),
            path: PathBuf::new(),
            header,
            steps,
            source: text.to_string(),
        })
    }

    /// Snapshot name: `filezilla/browse` becomes `filezilla__browse`.
    pub fn snapshot_name(&self) -> String {
        self.id.replace('/', "__")
    }

    /// How many control connections the scenario opens.
    pub fn connection_count(&self) -> usize {
        let mut names: Vec<&str> = Vec::new();
        for s in &self.steps {
            if let Step::Connect(n) = s {
                if !names.contains(&n.as_str()) {
                    names.push(n);
                }
            }
        }
        names.len()
    }
}

/// Every `*.ftp` file under `dir/<set>/`, sorted by id.
pub fn discover(dir: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let mut out = Vec::new();
    for set in std::fs::read_dir(dir)? {
        let set = set?.path();
        if !set.is_dir()
            || set
                .file_name()
                .is_some_and(|n| n == "snapshots" || n == "fixtures")
        {
            continue;
        }
        for f in std::fs::read_dir(&set)? {
            let f = f?.path();
            if f.extension().is_some_and(|e| e == "ftp") {
                out.push(f);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# A comment above the header
client: FileZilla 3.62
description: logon and list
fixture: basic
login: test test
timeout: 2s
---
connect browse      # comments after two spaces
< 220
> AUTH TLS
< 4xx|5xx
login
> PORT *
< 200
> MKD a#b
< 257 \"/a#b\"*
> LIST
< 150
recv listing
< 226
connect xfer
< 2xx
> STOR up.bin
< 150
send filler 64K
< 226
use browse
raw \"NOOP\" \"A\" x 3 \"\\r\\n\"
wait 421 within 30s
expect close
";

    #[test]
    fn parse_sample_gives_every_step() {
        let s = Scenario::parse("filezilla/logon", SAMPLE).unwrap();
        assert_eq!(s.header.client, "FileZilla 3.62");
        assert_eq!(s.header.fixture.as_deref(), Some("basic"));
        assert_eq!(s.header.login, Some(("test".into(), "test".into())));
        assert_eq!(s.header.timeout, Duration::from_secs(2));
        assert_eq!(s.steps[0], Step::Connect("browse".into()));
        assert_eq!(s.steps[2], Step::Send("AUTH TLS".into()));
        assert_eq!(
            s.steps[3],
            Step::Expect(ReplySpec {
                codes: vec![CodePattern::Class(4), CodePattern::Class(5)],
                text: None
            })
        );
        assert_eq!(s.steps[4], Step::Login);
        assert_eq!(s.steps[7], Step::Send("MKD a#b".into()));
        assert_eq!(s.steps[11], Step::Recv(Payload::Listing));
        assert_eq!(s.steps[17], Step::SendData(Payload::Filler(65536)));
        assert_eq!(s.steps[20], Step::Raw(b"NOOPAAA\r\n".to_vec()));
        assert!(matches!(s.steps[21], Step::Wait(_, d) if d == Duration::from_secs(30)));
        assert_eq!(s.steps[22], Step::ExpectClose);
        assert_eq!(s.connection_count(), 2);
        assert_eq!(s.snapshot_name(), "filezilla__logon");
    }

    #[test]
    fn reply_spec_with_text_glob() {
        let spec = ReplySpec::parse("257 \"/sub\"*").unwrap();
        assert!(spec.matches(257, "\"/sub\" is the current directory"));
        assert!(!spec.matches(257, "\"/other\" is the current directory"));
        assert!(!spec.matches(250, "\"/sub\""));
        let exact = ReplySpec::parse("213 4096").unwrap();
        assert!(exact.matches(213, "4096"));
        assert!(!exact.matches(213, "4096 bytes"));
        assert!(ReplySpec::parse("any").unwrap().matches(999, ""));
        assert_eq!(ReplySpec::parse("2xx|550").unwrap().to_string(), "2xx|550");
    }

    #[test]
    fn bad_reply_codes_are_rejected() {
        for bad in ["22", "2x", "700", "abc", "2xxx"] {
            assert!(ReplySpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn raw_escapes_and_repeats() {
        assert_eq!(
            parse_bytes(r#""\xff\xf4\xff\xf2ABOR\r\n""#).unwrap(),
            b"\xff\xf4\xff\xf2ABOR\r\n"
        );
        assert_eq!(parse_bytes(r#""a\0b""#).unwrap(), b"a\0b");
        assert_eq!(parse_bytes(r#""ab" x 2 "c""#).unwrap(), b"ababc");
        assert!(parse_bytes(r#""open"#).is_err());
        assert!(parse_bytes(r#""\q""#).is_err());
    }

    #[test]
    fn errors_name_the_line() {
        let e = Scenario::parse("x", "description: d\n---\nconnect\n< 22\n").unwrap_err();
        assert_eq!(e.line, 4);
        let e = Scenario::parse("x", "description: d\n---\n> USER a\n").unwrap_err();
        assert!(e.message.contains("first step"), "{e}");
        let e = Scenario::parse("x", "description: d\n---\nconnect\nuse other\n").unwrap_err();
        assert!(e.message.contains("before `connect other`"), "{e}");
        let e = Scenario::parse("x", "description: d\n---\nconnect\nlogin\n").unwrap_err();
        assert!(e.message.contains("login"), "{e}");
        let e = Scenario::parse("x", "description: d\nconnect\n").unwrap_err();
        assert!(e.message.contains("key: value"), "{e}");
        assert!(
            Scenario::parse("x", "client: c\n---\nconnect\n")
                .unwrap_err()
                .message
                .contains("description")
        );
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("2").is_err());
        assert_eq!(parse_size("64K").unwrap(), 65536);
        assert_eq!(parse_size("1M").unwrap(), 1 << 20);
        assert!(parse_size("x").is_err());
    }

    #[test]
    fn glob() {
        assert!(glob_match("*", ""));
        assert!(glob_match("a*c", "abbbc"));
        assert!(glob_match("filezilla/*", "filezilla/browse"));
        assert!(!glob_match("filezilla/*", "chrome/browse"));
        assert!(glob_match("?b", "ab"));
        assert!(!glob_match("a", "ab"));
    }
}
