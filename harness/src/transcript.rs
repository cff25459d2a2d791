//! A session's transcript: every command, every reply line, data summaries,
//! and the checks that failed. Rendered redacted (for snapshots) or raw
//! (for `-v` and debugging).
//!
//! ```text
//! [browse] C: PASV
//! [browse] S: 227 Entering Passive Mode ([ADDR],[PORT]).
//! [browse] C: MLSD
//! [browse] S: 150 Opening data connection
//! [browse] D| type=file;size=11;modify=[TIME]; readme.txt
//! [browse] D: listing, 1 line, CRLF
//! [browse] S: 226 Transfer complete
//! !! [browse] expected 250, got 550 No such directory
//! ```
//!
//! The connection prefix appears only when a scenario opens more than one
//! control connection.

use crate::redact::redact;

/// One transcript entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A line with a marker (`C:`, `S:`, `D:`, `C>`, `--`).
    Line {
        conn: String,
        mark: &'static str,
        text: String,
    },
    /// A directory listing: redacted, then sorted, so that the order in which
    /// a file system returns entries does not matter.
    Listing { conn: String, lines: Vec<String> },
    /// A failed check.
    Failure { conn: String, text: String },
}

#[derive(Clone, Debug, Default)]
pub struct Transcript {
    pub entries: Vec<Entry>,
    /// Show `[conn]` prefixes.
    pub prefixed: bool,
}

impl Transcript {
    pub fn new(prefixed: bool) -> Self {
        Transcript {
            entries: Vec::new(),
            prefixed,
        }
    }

    pub fn push(&mut self, conn: &str, mark: &'static str, text: impl Into<String>) {
        self.entries.push(Entry::Line {
            conn: conn.to_string(),
            mark,
            text: text.into(),
        });
    }

    pub fn failures(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Failure { text, .. } => Some(text.as_str()),
            _ => None,
        })
    }

    fn prefix(&self, conn: &str) -> String {
        if self.prefixed {
            format!("[{conn}] ")
        } else {
            String::new()
        }
    }

    /// Render one entry; `redacted` applies the redaction table.
    pub fn render_entry(&self, e: &Entry, redacted: bool) -> Vec<String> {
        let r = |s: &str| if redacted { redact(s) } else { s.to_string() };
        match e {
            // `C:` is a command as the scenario wrote it, shown as is; `C*` is
            // one the harness completed (PORT *), redacted and shown as `C:`.
            Entry::Line {
                conn,
                mark: "C:",
                text,
            } => vec![
                format!("{}C: {text}", self.prefix(conn))
                    .trim_end()
                    .to_string(),
            ],
            Entry::Line {
                conn,
                mark: "C*",
                text,
            } => vec![
                format!("{}C: {}", self.prefix(conn), r(text))
                    .trim_end()
                    .to_string(),
            ],
            Entry::Line { conn, mark, text } => vec![
                format!("{}{mark} {}", self.prefix(conn), r(text))
                    .trim_end()
                    .to_string(),
            ],
            Entry::Listing { conn, lines } => {
                let mut ls: Vec<String> = lines.iter().map(|l| r(l)).collect();
                ls.sort();
                ls.into_iter()
                    .map(|l| {
                        format!("{}D| {l}", self.prefix(conn))
                            .trim_end()
                            .to_string()
                    })
                    .collect()
            }
            Entry::Failure { conn, text } => vec![format!("!! {}{}", self.prefix(conn), r(text))],
        }
    }

    /// The text that snapshots hold.
    pub fn render(&self, redacted: bool) -> String {
        let mut out = String::new();
        for e in &self.entries {
            for l in self.render_entry(e, redacted) {
                out.push_str(&l);
                out.push('\n');
            }
        }
        out
    }
}

/// Show bytes as the scenario format writes them: printable ASCII as is,
/// escapes for the rest, long runs of one byte as `"A" x 600`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut segs: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let run = bytes[i..].iter().take_while(|&&c| c == b).count();
        if run >= 16 {
            if !cur.is_empty() {
                segs.push(format!("\"{cur}\""));
                cur.clear();
            }
            segs.push(format!("\"{}\" x {run}", escape_byte(b)));
            i += run;
            continue;
        }
        cur.push_str(&escape_byte(b));
        i += 1;
    }
    if !cur.is_empty() || segs.is_empty() {
        segs.push(format!("\"{cur}\""));
    }
    segs.join(" ")
}

fn escape_byte(b: u8) -> String {
    match b {
        b'\r' => "\\r".into(),
        b'\n' => "\\n".into(),
        b'\t' => "\\t".into(),
        0 => "\\0".into(),
        b'\\' => "\\\\".into(),
        b'"' => "\\\"".into(),
        0x20..=0x7e => (b as char).to_string(),
        _ => format!("\\x{b:02x}"),
    }
}

/// A reply line as text for the transcript: control characters escaped so a
/// stray NUL or ESC is visible and cannot disturb a terminal.
pub fn visible(line: &str) -> String {
    let mut s = String::with_capacity(line.len());
    for c in line.chars() {
        match c {
            '\0' => s.push_str("\\0"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push('\t'),
            c if c.is_control() => s.push_str(&format!("\\x{:02x}", c as u32)),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse_bytes;

    #[test]
    fn escape_round_trips_through_the_scenario_syntax() {
        for b in [
            &b"NOOP\r\n"[..],
            b"\xff\xf4\xff\xf2ABOR\r\n",
            b"a\0b\"c\\",
            b"",
        ] {
            assert_eq!(parse_bytes(&escape_bytes(b)).unwrap(), b);
        }
        let long: Vec<u8> = [&b"NOOP "[..], &[b'A'; 600][..], b"\r\n"].concat();
        assert_eq!(escape_bytes(&long), "\"NOOP \" \"A\" x 600 \"\\r\\n\"");
        assert_eq!(parse_bytes(&escape_bytes(&long)).unwrap(), long);
    }

    #[test]
    fn listing_sorted_after_redaction_and_prefix_when_asked() {
        let mut t = Transcript::new(true);
        t.push("a", "C:", "PASV");
        t.push("a", "C:", "PORT 127,0,0,2,4,1");
        t.push("a", "C*", "PORT 127,0,0,1,4,1");
        t.push("a", "S:", "227 Entering Passive Mode (127,0,0,1,195,80).");
        t.entries.push(Entry::Listing {
            conn: "a".into(),
            lines: vec![
                "-rw-r--r-- 1 u g 5 Jan 02 10:00 zeta".into(),
                "drwxr-xr-x 1 u g 0 Feb 01 09:00 alpha".into(),
            ],
        });
        t.entries.push(Entry::Failure {
            conn: "a".into(),
            text: "expected 250, got 550".into(),
        });
        assert_eq!(
            t.render(true),
            "[a] C: PASV\n[a] C: PORT 127,0,0,2,4,1\n[a] C: PORT [ADDR],[PORT]\n[a] S: 227 Entering Passive Mode ([ADDR],[PORT]).\n\
             [a] D| -rw-r--r-- 1 u g 5 [DATE] zeta\n[a] D| drwxr-xr-x 1 u g 0 [DATE] alpha\n\
             !! [a] expected 250, got 550\n"
        );
        assert_eq!(t.failures().count(), 1);
        let t2 = Transcript {
            prefixed: false,
            ..t
        };
        assert!(t2.render(false).starts_with("C: PASV\nC: PORT 127,0,0,2,4,1\nC: PORT 127,0,0,1,4,1\nS: 227 Entering Passive Mode (127,0,0,1,195,80).\n"));
    }

    #[test]
    fn control_characters_are_visible() {
        assert_eq!(visible("500 bad\0cmd\x1b"), "500 bad\\0cmd\\x1b");
    }
}
