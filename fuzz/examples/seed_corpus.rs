//! Regenerates the committed seed corpus and the session regressions:
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example seed_corpus
//! ```
//!
//! - `seeds/session/`: every scenario under `scenarios/` and every script
//!   under `fuzz/sessions/` (except `known-bug-*`), as `session` inputs;
//! - `seeds/command_parser/`: every command line those send, and the
//!   hand-made lines below (over-long, Telnet, bare LF, NUL, PORT/EPRT);
//! - `seeds/path_resolution/`: every path argument those send, from the
//!   working directory the script had reached, and hand-made escapes;
//! - `regressions/session/known-bug-*`: the `known-bug-*` scripts, which
//!   pass unless the `known-bugs` feature is on (fuzz/README.md).
//!
//! Files are named by what they hold (a hash), so a rerun changes nothing
//! unless a scenario did.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use ftpd_fuzz::path_model::{PathInput, ROOTS};
use ftpd_fuzz::script;

/// Hand-made command lines (bytes as the client sends them).
const LINES: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"NOOP\n",
    b"NOOP\r",
    b"NOOP",
    b"noop\r\nPWD\r\nNOOP\n",
    b"PWD\r\r\n",
    b"RETR a\0b\r\n",
    b"\0\r\n",
    b"RETR \xff\xfe\r\n",
    b"RETR \xc3\r\n",
    b"\xff\xf4\xff\xf2ABOR\r\n",
    b"\xff\xfb\x01NOOP\r\n",
    b"\xff\xfd\x03NOOP\r\n",
    b"NO\xff\xffOP\r\n",
    b"NO\xff",
    b"NO\xff\xfb",
    b"\xff\xfb\r\nNOOP\r\n",
    b"\xff\xff\xff\xff\xff\xff\r\n",
    b"USER  test\r\n",
    b"USER\r\n",
    b"PASS\r\n",
    b"PASS \r\n",
    b"CWD\r\n",
    b"CWD ../../..\r\n",
    b"RETR ../../etc/passwd\r\n",
    b"LIST -la /../\r\n",
    b"PORT 192,0,2,2,195,80\r\n",
    b"PORT 192,0,2,66,195,80\r\n",
    b"PORT 192,0,2,2,0,21\r\n",
    b"PORT 256,0,0,1,1,1\r\n",
    b"PORT 1,2,3,4,5\r\n",
    b"PORT 1,2,3,4,5,6,7\r\n",
    b"PORT  1 , 2 ,3,4,5,6 \r\n",
    b"PORT 00000000000000000001,2,3,4,5,6\r\n",
    b"PORT 18446744073709551616,2,3,4,5,6\r\n",
    b"EPRT |1|192.0.2.2|50000|\r\n",
    b"EPRT |2|::1|50000|\r\n",
    b"EPRT |2|::ffff:192.0.2.2|50000|\r\n",
    b"EPRT !1!192.0.2.2!50000!\r\n",
    b"EPRT |3|x|1|\r\n",
    b"EPRT |1|192.0.2.2|99999|\r\n",
    b"EPRT |1|192.0.2.2|5\r\n",
    b"EPRT |1|192.0.2.2|5||\r\n",
    b"EPRT \xc3\xa9\r\n",
    b"EPRT 1\r\n",
    b"EPSV\r\n",
    b"EPSV 1\r\n",
    b"EPSV 2\r\n",
    b"EPSV ALL\r\n",
    b"EPSV 99999999999999999999999\r\n",
    b"TYPE A N\r\n",
    b"TYPE L 8\r\n",
    b"TYPE  I\r\n",
    b"TYPE AA\r\n",
    b"REST 18446744073709551615\r\n",
    b"REST 18446744073709551616\r\n",
    b"REST -1\r\n",
    b"MODE s\r\n",
    b"STRU r\r\n",
    b"OPTS UTF8 ON\r\n",
    b"OPTS MLST type;size;\r\n",
    b"HELP retr\r\n",
    b"SITE HELP\r\n",
    b"AUTH TLS\r\n",
    b"XCWD /\r\n",
    b"\xc3\xa9\xc3\xa9 x\r\n",
    b"STAT -la /\r\n",
];

/// Hand-made (cwd argument, argument) pairs for `path_resolution`.
const PATHS: &[(&str, &str)] = &[
    ("", ".."),
    ("", "../../.."),
    ("sub", "../../etc/passwd"),
    ("sub/deeper", "/../../x"),
    ("", "a/../../b"),
    ("", "..."),
    ("", "./././"),
    ("a", "b//c///"),
    ("", "//"),
    ("", "/"),
    ("", ""),
    ("", "..\\..\\secret"),
    ("pub", "../pub_secret/x"),
    ("", "my dir/Gr\u{fc}\u{df}e.txt"),
    ("", " x "),
    ("x", "..//..//../x/./y/.."),
];

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

struct Out {
    dir: PathBuf,
    written: BTreeSet<String>,
}

impl Out {
    fn new(dir: PathBuf) -> Self {
        fs::create_dir_all(&dir).unwrap();
        Out {
            dir,
            written: BTreeSet::new(),
        }
    }

    fn put(&mut self, prefix: &str, bytes: &[u8]) {
        let name = format!("{prefix}-{:016x}", fnv(bytes));
        fs::write(self.dir.join(&name), bytes).unwrap();
        self.written.insert(name);
    }

    /// Removes files of a previous run that were not written this time.
    fn prune(&self, prefixes: &[&str]) {
        for e in fs::read_dir(&self.dir).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            if prefixes.iter().any(|p| name.starts_with(p)) && !self.written.contains(&name) {
                fs::remove_file(self.dir.join(&name)).unwrap();
            }
        }
    }
}

fn scripts(dir: &Path, ext: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == ext) {
                let name = p
                    .strip_prefix(dir)
                    .unwrap()
                    .with_extension("")
                    .to_string_lossy()
                    .replace('/', "__");
                found.push((name, fs::read_to_string(&p).unwrap()));
            }
        }
    }
    found.sort();
    found
}

const PATH_VERBS: &[&str] = &[
    "CWD", "XCWD", "RETR", "STOR", "APPE", "MKD", "XMKD", "RMD", "XRMD", "DELE", "RNFR", "RNTO",
    "LIST", "NLST", "MLSD", "MLST", "SIZE", "MDTM", "STAT",
];

fn main() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let repo = fuzz.parent().unwrap();
    let mut sessions = Out::new(fuzz.join("seeds/session"));
    let mut regressions = Out::new(fuzz.join("regressions/session"));
    let mut lines = Out::new(fuzz.join("seeds/command_parser"));
    let mut paths = Out::new(fuzz.join("seeds/path_resolution"));

    let mut all = scripts(&repo.join("scenarios"), "ftp");
    let n_scenarios = all.len();
    all.extend(
        scripts(&fuzz.join("sessions"), "fuzz")
            .into_iter()
            .map(|(n, t)| (format!("fuzz__{n}"), t)),
    );
    for (i, (name, text)) in all.iter().enumerate() {
        let scenario = script::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        if name.starts_with("fuzz__known-bug-") {
            regressions.put(name.trim_start_matches("fuzz__"), &scenario.encode());
        } else {
            sessions.put(name, &scenario.encode());
        }
        let mut cwd = String::new();
        for (j, line) in script::command_lines(text).iter().enumerate() {
            lines.put("line", line);
            let text = String::from_utf8_lossy(line);
            let text = text.trim_end_matches(['\r', '\n']);
            let (verb, arg) = text.split_once(' ').unwrap_or((text, ""));
            let verb = verb.to_ascii_uppercase();
            if PATH_VERBS.contains(&verb.as_str()) && !arg.is_empty() {
                let root = (i + j) % ROOTS.len();
                paths.put("path", &PathInput::encode(root, &cwd, arg));
                if verb == "CWD" || verb == "XCWD" {
                    cwd = if arg.starts_with('/') {
                        arg.to_string()
                    } else {
                        format!("{cwd}/{arg}")
                    };
                }
            }
        }
    }
    for l in LINES {
        lines.put("hand", l);
    }
    for (i, (cwd, arg)) in PATHS.iter().enumerate() {
        for root in [i % ROOTS.len(), (i + 3) % ROOTS.len()] {
            paths.put("hand", &PathInput::encode(root, cwd, arg));
        }
    }
    sessions.prune(&[""]);
    regressions.prune(&["known-bug-"]);
    lines.prune(&["line-", "hand-"]);
    paths.prune(&["path-", "hand-"]);
    println!(
        "{} scenarios and {} fuzz scripts: seeds/session {}, seeds/command_parser {}, \
         seeds/path_resolution {}, regressions/session known-bug-* {}",
        n_scenarios,
        all.len() - n_scenarios,
        sessions.written.len(),
        lines.written.len(),
        paths.written.len(),
        regressions.written.len()
    );
}
