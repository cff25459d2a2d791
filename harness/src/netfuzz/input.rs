//! What the network fuzzer sends: a seeded random generator, the corpus
//! (every command line of the scenarios and the libFuzzer seeds), mutations,
//! and whole session plans.
//!
//! Everything here is a pure function of a seed, so a session is rebuilt
//! exactly from `(run seed, session number)` (`harness fuzz --seed S
//! --session K`). The only inputs from the network are the client's own
//! address and the port it listens on for active data connections, which
//! go into `PORT`/`EPRT` arguments.
//!
//! Safety: a mutated line must never make the server connect anywhere but
//! the client (if its bounce protection had a bug). [`Stream`] therefore
//! refuses any unit after which some line of the stream, framed as
//! leniently as a server might frame it, starts with `PORT` or `EPRT`
//! without being one of the arguments [`port_line`] builds: those only name
//! the client, loopback or addresses inside the test network.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

/// SplitMix64: small, fast, and the same on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `pct` percent.
    pub fn pct(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Index into a table of weights.
    pub fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

/// The seed of session `k` of a run.
pub fn session_seed(run: u64, k: u64) -> u64 {
    Rng::new(run ^ k.wrapping_mul(0xd6e8_feb8_6659_fd93)).next_u64()
}

/// Command lines to start from.
#[derive(Clone, Debug, Default)]
pub struct Corpus {
    /// Lines without their terminator (scenario `>` steps, logins).
    pub lines: Vec<Vec<u8>>,
    /// Byte strings sent as they are (scenario `raw` steps, libFuzzer seeds).
    pub raws: Vec<Vec<u8>>,
}

impl Corpus {
    /// Every scenario under `root/scenarios` and every libFuzzer seed under
    /// `root/fuzz/seeds/command_parser`; a built-in list when neither is
    /// there. Returns the corpus and a note on what was read.
    pub fn load(root: &Path) -> (Corpus, String) {
        let mut c = Corpus::default();
        let dir = root.join("scenarios");
        let mut scenarios = 0;
        if let Ok(files) = crate::scenario::discover(&dir) {
            for f in files {
                let Ok(s) = crate::scenario::Scenario::load(&f, &dir) else {
                    continue;
                };
                scenarios += 1;
                for st in &s.steps {
                    match st {
                        crate::scenario::Step::Send(l)
                            if !l.contains('*') || !starts_port(l.as_bytes()) =>
                        {
                            c.lines.push(l.as_bytes().to_vec());
                        }
                        crate::scenario::Step::Raw(b) => c.raws.push(b.clone()),
                        crate::scenario::Step::Login => {
                            if let Some((u, p)) = &s.header.login {
                                c.lines.push(format!("USER {u}").into_bytes());
                                c.lines.push(format!("PASS {p}").into_bytes());
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        let mut seeds = 0;
        if let Ok(rd) = std::fs::read_dir(root.join("fuzz/seeds/command_parser")) {
            let mut files: Vec<_> = rd.flatten().map(|e| e.path()).collect();
            files.sort();
            for f in files {
                if let Ok(b) = std::fs::read(&f) {
                    if !b.is_empty() && b.len() <= 4096 {
                        c.raws.push(b);
                        seeds += 1;
                    }
                }
            }
        }
        for l in BUILTIN {
            c.lines.push(l.as_bytes().to_vec());
        }
        c.lines.sort();
        c.lines.dedup();
        c.raws.sort();
        c.raws.dedup();
        let note = format!(
            "corpus: {} lines and {} raw inputs from {scenarios} scenarios and {seeds} libFuzzer seeds",
            c.lines.len(),
            c.raws.len()
        );
        (c, note)
    }
}

/// Always in the corpus (and all of it when the repository is not there).
const BUILTIN: &[&str] = &[
    "USER test",
    "PASS test",
    "USER anonymous",
    "PASS guest@",
    "SYST",
    "FEAT",
    "OPTS UTF8 ON",
    "PWD",
    "TYPE I",
    "TYPE A",
    "PASV",
    "EPSV",
    "LIST",
    "LIST -la",
    "NLST",
    "MLSD",
    "MLST readme.txt",
    "RETR readme.txt",
    "RETR big.bin",
    "STOR up.bin",
    "APPE up.bin",
    "STOU",
    "SIZE big.bin",
    "MDTM readme.txt",
    "REST 100",
    "CWD sub",
    "CDUP",
    "MKD newdir",
    "RMD newdir",
    "RNFR readme.txt",
    "RNTO renamed.txt",
    "DELE renamed.txt",
    "STAT",
    "STAT sub",
    "HELP",
    "NOOP",
    "ABOR",
    "ALLO 1000",
    "MODE S",
    "STRU F",
    "REIN",
    "ACCT x",
    "SITE HELP",
    "EPSV ALL",
];

pub const VERBS: &[&str] = &[
    "USER", "PASS", "ACCT", "QUIT", "REIN", "CWD", "XCWD", "CDUP", "XCUP", "PWD", "XPWD", "MKD",
    "XMKD", "RMD", "XRMD", "DELE", "RNFR", "RNTO", "LIST", "NLST", "RETR", "STOR", "STOU", "APPE",
    "REST", "ALLO", "TYPE", "STRU", "MODE", "PASV", "ABOR", "SYST", "STAT", "HELP", "NOOP", "SITE",
    "FEAT", "OPTS", "EPSV", "SIZE", "MDTM", "MLST", "MLSD", "AUTH", "PBSZ", "PROT", "LPRT", "LPSV",
    "CLNT", "XRCP", "HOST", "MFMT", "SMNT",
];

const PATHS: &[&str] = &[
    "readme.txt",
    "lines.txt",
    "empty.txt",
    "big.bin",
    "sub",
    "sub/file.bin",
    "sub/deeper",
    "sub/deeper/leaf.txt",
    "with space",
    "with space/a file.txt",
    "données",
    "données/été.txt",
    "/",
    ".",
    "..",
    "../..",
    "/../../../etc/passwd",
    "sub/../../..",
    "//sub//file.bin",
    "./sub/./deeper/..",
    "*",
    "-la",
    "-la sub",
    "-a -l",
    "sub/",
    "nothere",
    "nothere/deeper/x",
    "new.txt",
    "fz.bin",
    "fzdir",
    "fzdir/inner",
    "a\"b",
    "a\"\"b\"",
    "%s%n%x",
    "CON",
    "NUL.txt",
    "trailing. ",
    " leading",
    "a\\b",
    "?",
    "名前.txt",
    "\u{1F600}.bin",
    "ABCDEFGHI.TXTX",
    "x.y.z.w",
    ".hidden",
    "...",
    "a:b",
];

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "100",
    "4096",
    "1048575",
    "1048576",
    "1048577",
    "-1",
    "+5",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999999999999",
    "0x10",
    "1e9",
    "00000000000000000000000000000000000001",
    "",
    "abc",
    "1 2",
];

/// Bytes a mutation likes to insert.
const SPECIAL: &[&[u8]] = &[
    b"\0",
    b"\r",
    b"\n",
    b"\r\n",
    b"\xff",
    b"\xff\xff",
    b"\xff\xf4\xff\xf2",
    b"\xff\xfb\x01",
    b"\xff\xfd",
    b"\xff\xfa\x18\x01\xff\xf0",
    b"\xff\xf1",
    b"\x80",
    b"\xc0\xaf",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"\xef\xbb\xbf",
    b"\xf0\x9f\x98\x80",
    "é".as_bytes(),
    "日本".as_bytes(),
    b" ",
    b"  ",
    b"\t",
    b"/",
    b"..",
    b"../",
    b"\"",
    b"%",
    b"*",
    b",",
    b"|",
    b"-",
    b"\x7f",
    b"\x1b[2J",
];

/// How a session writes its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// Everything in one write.
    Pipelined,
    /// One unit at a time, each after the previous one's reply (or 2 s).
    Interactive,
    /// One byte per write (TCP_NODELAY) with short pauses.
    Bytewise,
    /// One stream cut at a few random points, pauses between.
    Splits,
    /// Unit by unit with random pauses, not waiting for replies.
    Drip,
}

/// How a session ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// `QUIT` (appended), then FIN; the server must close.
    QuitFin,
    /// FIN after the last byte; the server must finish and close.
    Fin,
    /// Reset after the last byte.
    Rst,
    /// Reset after this many bytes.
    RstAt(usize),
}

/// One fuzz session: the bytes and how to send them.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Units in order: one generated line each, with its terminator (or
    /// none, so that it runs into the next).
    pub units: Vec<Vec<u8>>,
    pub mode: WriteMode,
    pub end: End,
    /// Cut points of `Splits` (offsets into the whole stream, ascending).
    pub cuts: Vec<usize>,
    /// What the plan is made of, for the crash file.
    pub summary: String,
}

impl Plan {
    pub fn stream(&self) -> Vec<u8> {
        self.units.concat()
    }
}

/// Where PORT/EPRT may point: the client, its active-mode listener.
#[derive(Clone, Copy, Debug)]
pub struct Addrs {
    /// The client's end of the control connection.
    pub local: SocketAddr,
    /// The port the client listens on for active data connections.
    pub listen_port: u16,
}

/// A builder for a session's byte stream that keeps every `PORT`/`EPRT`
/// line one of ours (see the module docs).
pub struct Stream {
    units: Vec<Vec<u8>>,
    allowed: Vec<Vec<u8>>,
}

impl Stream {
    fn new() -> Stream {
        Stream {
            units: vec![],
            allowed: vec![],
        }
    }

    /// Append `unit` if the stream stays safe; `port` marks a line built by
    /// [`port_line`] (its text without terminator is allowed).
    fn push(&mut self, unit: Vec<u8>, port: Option<&[u8]>) -> bool {
        if let Some(p) = port {
            self.allowed.push(strip_telnet(p));
        }
        self.units.push(unit);
        if self.safe() {
            true
        } else {
            self.units.pop();
            if port.is_some() {
                self.allowed.pop();
            }
            false
        }
    }

    fn safe(&self) -> bool {
        let all = self.units.concat();
        lenient_lines(&all).iter().all(|l| {
            let t = trim_start(l);
            !starts_port(t) || self.allowed.iter().any(|a| trim_start(a) == t)
        })
    }
}

/// Telnet sequences removed the way a server does (`IAC IAC` is 0xFF).
pub fn strip_telnet(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == 0xff {
            match b.get(i + 1) {
                Some(0xff) => {
                    out.push(0xff);
                    i += 2;
                }
                Some(0xfb..=0xfe) => i += 3,
                Some(0xf0..=0xfa) => i += 2,
                _ => i += 1,
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Lines as the most lenient server might see them: Telnet removed, ended
/// by CR or LF, NULs dropped.
fn lenient_lines(b: &[u8]) -> Vec<Vec<u8>> {
    strip_telnet(b)
        .split(|&c| c == b'\r' || c == b'\n')
        .map(|l| l.iter().copied().filter(|&c| c != 0).collect())
        .collect()
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .take_while(|c| c.is_ascii_whitespace() || **c == 0)
        .count();
    &b[n..]
}

/// Does a line start with PORT or EPRT (any case)?
fn starts_port(b: &[u8]) -> bool {
    let b = trim_start(b);
    b.len() >= 4 && {
        let v = b[..4].to_ascii_uppercase();
        v == b"PORT" || v == b"EPRT"
    }
}

/// A `PORT` or `EPRT` line that names only the client, loopback or the test
/// network, valid or malformed. Returns the line without terminator.
pub fn port_line(rng: &mut Rng, a: &Addrs) -> Vec<u8> {
    let ip = match a.local.ip() {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(_) => Ipv4Addr::LOCALHOST,
    };
    let o = ip.octets();
    // Another host, in the same safe range: 127/8 or the client's /24
    // (192.0.2.0/24 inside a namespace).
    let third = if o[0] == 127 {
        Ipv4Addr::new(
            127,
            rng.range(0, 255) as u8,
            rng.range(0, 255) as u8,
            rng.range(2, 254) as u8,
        )
    } else {
        let mut last = rng.range(3, 254) as u8;
        if last == o[3] {
            last = last.wrapping_add(1).max(3);
        }
        Ipv4Addr::new(o[0], o[1], o[2], last)
    };
    let lp = a.listen_port;
    let rp = rng.range(1024, 65535) as u16;
    let low = rng.range(0, 1023) as u16;
    let fmt_port = |ip: Ipv4Addr, p: u16| {
        let o = ip.octets();
        format!("{},{},{},{},{},{}", o[0], o[1], o[2], o[3], p >> 8, p & 255)
    };
    let c = |i: usize| o[i].to_string();
    let eprt = rng.pct(40);
    let s = if eprt {
        let arg = match rng.below(14) {
            0..=4 => format!("|1|{ip}|{lp}|"),
            5 => format!("|1|{ip}|{rp}|"),
            6 => format!("|1|{ip}|{low}|"),
            7 => format!("|1|{third}|{lp}|"),
            8 => format!("|2|::1|{lp}|"),
            9 => format!("|1|{ip}|{}|", rng.pick(NUMBERS)),
            10 => format!(
                "|{}|{ip}|{lp}|",
                rng.pick(&["3", "0", "", "99999999999", "a"])
            ),
            11 => rng
                .pick(&[
                    format!("!1!{ip}!{lp}!"),
                    format!("|1|{ip}|{lp}"),
                    "||||".to_string(),
                    "|1|||".to_string(),
                    format!("|1|localhost|{lp}|"),
                    format!("|1|{ip} |{lp}|"),
                    format!("|1|{ip}|{lp}|extra|"),
                    String::new(),
                ])
                .clone(),
            12 => format!("|2|::ffff:{ip}|{lp}|"),
            _ => format!("\u{1}1\u{1}{ip}\u{1}{lp}\u{1}"),
        };
        format!("EPRT {arg}")
    } else {
        let arg = match rng.below(14) {
            0..=4 => fmt_port(ip, lp),
            5 => fmt_port(ip, rp),
            6 => fmt_port(ip, low),
            7 => fmt_port(third, rp),
            8 => format!("{},{},{},{},{}", c(0), c(1), c(2), c(3), lp >> 8),
            9 => format!(
                "{},{},{},{},{},{},7",
                c(0),
                c(1),
                c(2),
                c(3),
                lp >> 8,
                lp & 255
            ),
            10 => format!(
                "{},{},{},{},{},{}",
                c(0),
                c(1),
                c(2),
                c(3),
                rng.pick(NUMBERS),
                rng.pick(NUMBERS)
            ),
            // Out of range: 256 more than the real octet, in case someone
            // reduces modulo 256.
            11 => format!(
                "{},{},{},{},{},{}",
                o[0] as u16 + 256,
                c(1),
                c(2),
                c(3),
                lp >> 8,
                lp & 255
            ),
            12 => format!(
                "{}, {}, {}, {}, {}, {}",
                c(0),
                c(1),
                c(2),
                c(3),
                lp >> 8,
                lp & 255
            ),
            _ => rng
                .pick(&[
                    String::new(),
                    ",,,,,".to_string(),
                    format!("{},{},{},{}", c(0), c(1), c(2), c(3)),
                    format!("({})", fmt_port(ip, lp)),
                    format!("{},", fmt_port(ip, lp)),
                    format!("{},{},{},{},-1,-1", c(0), c(1), c(2), c(3)),
                ])
                .clone(),
        };
        format!("PORT {arg}")
    };
    s.into_bytes()
}

fn terminator(rng: &mut Rng) -> &'static [u8] {
    match rng.weighted(&[80, 7, 5, 3, 3, 2]) {
        0 => b"\r\n",
        1 => b"\n",
        2 => b"\r",
        3 => b"",
        4 => b"\r\r\n",
        _ => b"\n\r",
    }
}

fn path_arg(rng: &mut Rng) -> Vec<u8> {
    match rng.below(10) {
        0 => {
            // Long: past the path bound, or past the line.
            let n = *rng.pick(&[100usize, 255, 256, 257, 300, 500, 511, 600]);
            let ch = *rng.pick(b"a/.d");
            let mut v = vec![ch; n];
            if ch == b'/' {
                v[n - 1] = b'x';
            }
            v
        }
        1 => {
            let depth = rng.range(2, 80) as usize;
            let seg = *rng.pick(&["a", "..", ".", "sub", "ééé"]);
            vec![seg; depth].join("/").into_bytes()
        }
        2 => {
            let mut v = rng.pick(PATHS).as_bytes().to_vec();
            let s = *rng.pick(SPECIAL);
            let at = rng.below(v.len() as u64 + 1) as usize;
            v.splice(at..at, s.iter().copied());
            v
        }
        _ => rng.pick(PATHS).as_bytes().to_vec(),
    }
}

/// A command built from the verb table and typed arguments.
fn structured(rng: &mut Rng) -> Vec<u8> {
    let verb = *rng.pick(VERBS);
    let verb: String = match rng.below(10) {
        0 => verb.to_ascii_lowercase(),
        1 => verb
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 1 {
                    c.to_ascii_lowercase()
                } else {
                    c
                }
            })
            .collect(),
        _ => verb.to_string(),
    };
    let upper = verb.to_ascii_uppercase();
    let arg: Vec<u8> = match upper.as_str() {
        "REST" | "ALLO" => rng.pick(NUMBERS).as_bytes().to_vec(),
        "TYPE" => rng
            .pick(&[
                "I", "A", "A N", "A T", "E", "L 8", "L 7", "L", "X", "i", "a", "I I", "",
            ])
            .as_bytes()
            .to_vec(),
        "MODE" => rng.pick(&["S", "B", "C", "Z", ""]).as_bytes().to_vec(),
        "STRU" => rng.pick(&["F", "R", "P", ""]).as_bytes().to_vec(),
        "OPTS" => rng
            .pick(&[
                "UTF8 ON",
                "UTF8 OFF",
                "UTF8",
                "MLST type;size;",
                "MLST",
                "MLST nosuch;",
                "MLST type;size;modify;perm;unique;",
                "",
                "NOTHING",
            ])
            .as_bytes()
            .to_vec(),
        "EPSV" => rng
            .pick(&["", "1", "2", "ALL", "all", "3", "-1"])
            .as_bytes()
            .to_vec(),
        "USER" => rng
            .pick(&[
                "test",
                "anonymous",
                "ftp",
                "root",
                "",
                "test test",
                "TEST",
                "a\"b",
            ])
            .as_bytes()
            .to_vec(),
        "PASS" => rng
            .pick(&["test", "x", "", "guest@", "TEST"])
            .as_bytes()
            .to_vec(),
        "SITE" => rng
            .pick(&["HELP", "CHMOD 755 readme.txt", "UMASK 022", "IDLE 1", ""])
            .as_bytes()
            .to_vec(),
        "AUTH" => rng.pick(&["TLS", "SSL", ""]).as_bytes().to_vec(),
        "PASV" | "SYST" | "NOOP" | "PWD" | "XPWD" | "CDUP" | "XCUP" | "ABOR" | "FEAT" | "REIN"
        | "QUIT" | "STOU" => {
            if rng.pct(80) {
                vec![]
            } else {
                path_arg(rng)
            }
        }
        _ => {
            if rng.pct(5) {
                vec![]
            } else {
                path_arg(rng)
            }
        }
    };
    let mut v = verb.into_bytes();
    if !arg.is_empty() || rng.pct(10) {
        v.push(b' ');
    }
    v.extend_from_slice(&arg);
    v
}

/// One to a few mutations of `line`.
fn mutate(rng: &mut Rng, corpus: &Corpus, mut line: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.range(1, 4) {
        let len = line.len() as u64;
        match rng.below(12) {
            0 if len > 0 => {
                let i = rng.below(len) as usize;
                line[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len) as usize;
                line[i] = rng.pick(SPECIAL)[0];
            }
            2 => {
                let at = rng.below(len + 1) as usize;
                let s = *rng.pick(SPECIAL);
                line.splice(at..at, s.iter().copied());
            }
            3 if len > 1 => {
                let a = rng.below(len) as usize;
                let b = (a + rng.range(1, 16) as usize).min(line.len());
                line.drain(a..b);
            }
            4 if len > 0 => {
                // Repeat a piece until the line is long.
                let a = rng.below(len) as usize;
                let b = (a + rng.range(1, 8) as usize).min(line.len());
                let piece = line[a..b].to_vec();
                let target = *rng.pick(&[100usize, 500, 510, 511, 512, 513, 600, 1500, 5000]);
                while line.len() < target {
                    line.extend_from_slice(&piece);
                }
            }
            5 => {
                // A number somewhere: huge.
                let n = rng.pick(NUMBERS).as_bytes();
                match line.iter().position(u8::is_ascii_digit) {
                    Some(i) => {
                        let j = i + line[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                        line.splice(i..j, n.iter().copied());
                    }
                    None => {
                        line.push(b' ');
                        line.extend_from_slice(n);
                    }
                }
            }
            6 => {
                // Another verb, same argument.
                let sp = line.iter().position(|&c| c == b' ').unwrap_or(line.len());
                let v = rng.pick(VERBS).as_bytes();
                line.splice(0..sp, v.iter().copied());
            }
            7 if len > 0 => {
                line.truncate(rng.below(len) as usize);
            }
            8 => {
                // Splice with another corpus line.
                if let Some(other) = corpus
                    .lines
                    .get(rng.below(corpus.lines.len() as u64) as usize)
                {
                    let cut = rng.below(len + 1) as usize;
                    let from = rng.below(other.len() as u64 + 1) as usize;
                    line.truncate(cut);
                    line.extend_from_slice(&other[from..]);
                }
            }
            9 => {
                let at = rng.below(len + 1) as usize;
                let n = rng.range(1, 8) as usize;
                let junk: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                line.splice(at..at, junk);
            }
            10 => line.make_ascii_lowercase(),
            _ => {
                let at = rng.below(len + 1) as usize;
                line.splice(at..at, rng.pick(&[&b" "[..], b"\t", b"  "]).iter().copied());
            }
        }
    }
    line
}

/// A data connection set up and used: PASV/EPSV (or PORT/EPRT to the
/// client's listener), maybe REST or TYPE, a transfer command, maybe ABOR.
fn transfer(rng: &mut Rng, a: &Addrs) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut u = Vec::new();
    let mut port = None;
    match rng.weighted(&[40, 40, 10, 10]) {
        0 => u.extend_from_slice(b"PASV\r\n"),
        1 => u.extend_from_slice(b"EPSV\r\n"),
        _ => {
            let ip = a.local.ip();
            let p = if rng.pct(50) || !ip.is_ipv4() {
                format!(
                    "EPRT {}",
                    crate::client::eprt_arg(SocketAddr::new(ip, a.listen_port))
                )
            } else {
                format!(
                    "PORT {}",
                    crate::client::port_arg(SocketAddr::new(ip, a.listen_port)).unwrap()
                )
            };
            u.extend_from_slice(p.as_bytes());
            u.extend_from_slice(b"\r\n");
            port = Some(p.into_bytes());
        }
    }
    if rng.pct(20) {
        u.extend_from_slice(rng.pick::<&[u8]>(&[b"TYPE A\r\n", b"TYPE I\r\n"]));
    }
    let verb = *rng.pick(&[
        "RETR", "RETR", "STOR", "STOR", "APPE", "STOU", "LIST", "NLST", "MLSD", "LIST -la",
    ]);
    if verb == "RETR" && rng.pct(30) {
        u.extend_from_slice(format!("REST {}\r\n", rng.pick(NUMBERS)).as_bytes());
    }
    u.extend_from_slice(verb.as_bytes());
    let arg: Vec<u8> = match verb {
        "RETR" => rng
            .pick(&[
                "big.bin",
                "readme.txt",
                "sub/file.bin",
                "lines.txt",
                "empty.txt",
                "fz.bin",
                "sub",
            ])
            .as_bytes()
            .to_vec(),
        "STOR" | "APPE" => {
            if rng.pct(80) {
                rng.pick(&["fz.bin", "fz2.txt", "sub/fz.bin", "fzdir/x", "empty.txt"])
                    .as_bytes()
                    .to_vec()
            } else {
                path_arg(rng)
            }
        }
        "STOU" => vec![],
        _ => {
            if rng.pct(50) {
                vec![]
            } else {
                path_arg(rng)
            }
        }
    };
    if !arg.is_empty() {
        u.push(b' ');
        u.extend_from_slice(&arg);
    }
    u.extend_from_slice(b"\r\n");
    if rng.pct(10) {
        u.extend_from_slice(b"ABOR\r\n");
    }
    (u, port)
}

/// One unit: a line (with terminator) and, for PORT/EPRT, the line itself.
fn unit(rng: &mut Rng, corpus: &Corpus, a: &Addrs) -> (Vec<u8>, Option<Vec<u8>>) {
    let pick_line = |rng: &mut Rng| -> Vec<u8> {
        if corpus.lines.is_empty() {
            structured(rng)
        } else {
            rng.pick(&corpus.lines).clone()
        }
    };
    let mut line = match rng.weighted(&[18, 30, 26, 5, 4, 5, 12]) {
        0 => pick_line(rng),
        1 => {
            let l = pick_line(rng);
            mutate(rng, corpus, l)
        }
        2 => structured(rng),
        3 => {
            let p = port_line(rng, a);
            let mut u = p.clone();
            u.extend_from_slice(b"\r\n");
            return (u, Some(p));
        }
        4 => {
            // Pure noise.
            let n = rng.range(1, 64) as usize;
            (0..n).map(|_| rng.next_u64() as u8).collect()
        }
        6 => return transfer(rng, a),
        _ => {
            // A raw input as it is (it carries its own terminators).
            if corpus.raws.is_empty() {
                structured(rng)
            } else {
                return (rng.pick(&corpus.raws).clone(), None);
            }
        }
    };
    line.extend_from_slice(terminator(rng));
    (line, None)
}

/// The fuzz session `seed` for a client at `a`.
pub fn plan(seed: u64, corpus: &Corpus, a: &Addrs) -> Plan {
    let mut rng = Rng::new(seed);
    let mut s = Stream::new();
    let login = rng.weighted(&[70, 10, 8, 7, 5]);
    let login_name = ["test", "anonymous", "none", "bad password", "fuzzed"][login];
    match login {
        0 => {
            s.push(b"USER test\r\n".to_vec(), None);
            s.push(b"PASS test\r\n".to_vec(), None);
        }
        1 => {
            s.push(b"USER anonymous\r\n".to_vec(), None);
            s.push(b"PASS fuzz@\r\n".to_vec(), None);
        }
        2 => {}
        3 => {
            for _ in 0..rng.range(1, 3) {
                s.push(b"USER test\r\n".to_vec(), None);
                s.push(b"PASS wrong\r\n".to_vec(), None);
            }
            s.push(b"USER test\r\n".to_vec(), None);
            s.push(b"PASS test\r\n".to_vec(), None);
        }
        _ => {
            let l = mutate(&mut rng, corpus, b"USER test".to_vec());
            s.push([l, b"\r\n".to_vec()].concat(), None);
            s.push(b"PASS test\r\n".to_vec(), None);
        }
    }
    let n = match rng.below(10) {
        0..=5 => rng.range(1, 10),
        6..=8 => rng.range(10, 30),
        _ => rng.range(30, 80),
    };
    for _ in 0..n {
        for _try in 0..10 {
            let (u, p) = unit(&mut rng, corpus, a);
            if s.push(u, p.as_deref()) {
                break;
            }
        }
    }
    let mode = match rng.weighted(&[25, 30, 10, 25, 10]) {
        0 => WriteMode::Pipelined,
        1 => WriteMode::Interactive,
        2 => WriteMode::Bytewise,
        3 => WriteMode::Splits,
        _ => WriteMode::Drip,
    };
    let len: usize = s.units.iter().map(Vec::len).sum();
    let end = match rng.weighted(&[45, 35, 10, 10]) {
        0 => {
            // QUIT on a line of its own (whatever came before).
            s.push(b"\r\nQUIT\r\n".to_vec(), None);
            End::QuitFin
        }
        1 => End::Fin,
        2 => End::Rst,
        _ => End::RstAt(rng.below(len as u64 + 1) as usize),
    };
    let total: usize = s.units.iter().map(Vec::len).sum();
    let mut cuts: Vec<usize> = (0..rng.range(1, 6))
        .map(|_| rng.range(1, total.max(2) as u64 - 1) as usize)
        .collect();
    cuts.sort();
    cuts.dedup();
    let summary = format!(
        "login {login_name}, {} units, {total} bytes, {mode:?}, end {end:?}",
        s.units.len()
    );
    Plan {
        units: s.units,
        mode,
        end,
        cuts,
        summary,
    }
}

/// Commands whose replies depend on nothing but the session's own state
/// (not on files: fuzz sessions running alongside delete and rename them):
/// a split sweep compares their reply codes across every split.
const NEUTRAL: &[&str] = &[
    "NOOP",
    "PWD",
    "XPWD",
    "CWD /",
    "CWD ../../..",
    "CDUP",
    "TYPE I",
    "TYPE A",
    "TYPE X",
    "MODE S",
    "STRU F",
    "SYST",
    "STAT",
    "HELP",
    "FEAT",
    "OPTS UTF8 ON",
    "REST 100",
    "REST 99999999999999999999",
    "ALLO 10",
    "BOGUS",
    "\u{ff}\u{f4}NOOP",
    "MLST /",
    "SIZE /",
    "RNTO x",
    "PORT 1,2",
    "EPSV ALL",
];

/// The bytes of a split sweep: a login and a few state-neutral commands
/// with mixed terminators and Telnet bytes, short enough to cut at every
/// position.
pub fn sweep_payload(seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = b"USER test\r\nPASS test\r\n".to_vec();
    let n = rng.range(2, 6);
    for _ in 0..n {
        let l = *rng.pick(NEUTRAL);
        // Latin-1 chars in the table stand for raw bytes (Telnet).
        if l.starts_with('\u{ff}') {
            out.extend_from_slice(b"\xff\xf4\xff\xf2NOOP");
        } else if rng.pct(15) {
            // Telnet inside the verb.
            out.extend_from_slice(&l.as_bytes()[..1]);
            out.extend_from_slice(rng.pick::<&[u8]>(&[b"\xff\xfb\x01", b"\xff\xf1", b"\xff\xff"]));
            out.extend_from_slice(&l.as_bytes()[1..]);
        } else {
            out.extend_from_slice(l.as_bytes());
        }
        out.extend_from_slice(rng.pick::<&[u8]>(&[b"\r\n", b"\r\n", b"\n", b"\r"]));
    }
    if rng.pct(30) {
        out.extend_from_slice(b"QUIT\r\n");
    }
    out
}

/// Bytes as a scenario `raw` step writes them (`"NOOP\r\n"`, `\xHH`).
pub fn quoted(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\0' => s.push_str("\\0"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> Addrs {
        Addrs {
            local: "127.0.0.1:40000".parse().unwrap(),
            listen_port: 40001,
        }
    }

    #[test]
    fn plans_are_a_function_of_the_seed() {
        let c = Corpus::load(&crate::target::workspace_root()).0;
        for k in 0..50 {
            let a = plan(session_seed(7, k), &c, &addrs());
            let b = plan(session_seed(7, k), &c, &addrs());
            assert_eq!(a.units, b.units);
            assert_eq!(a.summary, b.summary);
        }
        assert_ne!(
            plan(session_seed(7, 1), &c, &addrs()).units,
            plan(session_seed(8, 1), &c, &addrs()).units
        );
    }

    #[test]
    fn the_corpus_holds_the_scenarios_and_the_seeds() {
        let (c, note) = Corpus::load(&crate::target::workspace_root());
        assert!(c.lines.iter().any(|l| l == b"FEAT"), "{note}");
        assert!(c.raws.len() > 100, "{note}");
    }

    /// No plan ever holds a PORT/EPRT line that names anything but the
    /// client, loopback or the test network.
    #[test]
    fn port_lines_only_name_safe_addresses() {
        let c = Corpus::load(&crate::target::workspace_root()).0;
        let a = addrs();
        let mut ports = 0;
        let re = regex::Regex::new(r"(\d+)[.,]\s*\d+[.,]\s*\d+[.,]\s*\d+").unwrap();
        for k in 0..2000 {
            let p = plan(session_seed(99, k), &c, &a);
            for l in lenient_lines(&p.stream()) {
                let t = trim_start(&l);
                if !starts_port(t) {
                    continue;
                }
                ports += 1;
                let text = String::from_utf8_lossy(t).to_string();
                // Every dotted or comma-separated address in it starts
                // with 127 (or 383, 127 + 256), or is ::1.
                for cap in re.captures_iter(&text) {
                    assert!(
                        cap[1] == *"127" || cap[1] == *"383",
                        "unsafe address in {text:?}"
                    );
                }
            }
        }
        assert!(ports > 100, "only {ports} PORT/EPRT lines in 2000 plans");
    }

    #[test]
    fn unsafe_lines_are_refused() {
        let mut s = Stream::new();
        assert!(!s.push(b"PORT 10,0,0,1,4,1\r\n".to_vec(), None));
        assert!(!s.push(b"NOOP\r\n p\xff\xf1ORT 10,0,0,1,4,1\r\n".to_vec(), None));
        assert!(s.push(b"NOOP\r\nPO".to_vec(), None));
        assert!(!s.push(b"RT 8,8,8,8,0,80\r\n".to_vec(), None));
        assert!(s.push(b"\r\n".to_vec(), None));
        let mut r = Rng::new(1);
        let p = port_line(&mut r, &addrs());
        let mut u = p.clone();
        u.extend_from_slice(b"\r\n");
        assert!(s.push(u, Some(&p)));
    }

    #[test]
    fn telnet_is_stripped_like_a_server() {
        assert_eq!(
            strip_telnet(b"A\xff\xffB\xff\xfb\x01C\xff\xf4D\xff"),
            b"A\xffBCD"
        );
    }

    #[test]
    fn sweeps_are_short() {
        for k in 0..200 {
            let p = sweep_payload(k);
            assert!(p.starts_with(b"USER test\r\nPASS test\r\n"));
            assert!(p.len() < 200, "{}", quoted(&p));
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quoted(b"A\r\n\xff\"\\"), r#""A\r\n\xff\"\\""#);
        let back = crate::scenario::parse_bytes(&quoted(b"x\x00\x80\r")).unwrap();
        assert_eq!(back, b"x\x00\x80\r");
    }
}
