//! Snapshot files in insta's format, read and written by the CLI itself.
//!
//! `cargo test -p harness` asserts the same transcripts through insta's
//! macros; the CLI compares against the very same `.snap` files and, on a
//! mismatch, leaves a `.snap.new` beside them (as insta does), so that
//! `cargo insta review` works whichever of the two found the difference.
//!
//! Like insta, and like our CI, nothing is written when `CI` is set.

use std::path::{Path, PathBuf};

/// The test file that asserts these snapshots (insta's `source:` field).
pub const SOURCE: &str = "harness/tests/scenarios.rs";

/// Where the snapshot of `name` lives.
pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.snap"))
}

/// The body of a `.snap` file (what follows the metadata block), normalised
/// as insta compares it: line ends to LF, trailing whitespace at the end
/// trimmed.
pub fn read_body(path: &Path) -> std::io::Result<Option<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(body_of(&text)))
}

fn body_of(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let body = if let Some(rest) = text.strip_prefix("---\n") {
        match rest.find("\n---\n") {
            Some(i) => &rest[i + 5..],
            None => rest,
        }
    } else {
        &text[..]
    };
    normalise(body)
}

/// What insta compares: LF line ends and no trailing blank space at the end.
pub fn normalise(s: &str) -> String {
    s.replace("\r\n", "\n").trim_end().to_string()
}

/// Quote a metadata value the way insta's YAML emitter needs it.
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.starts_with(|c: char| c.is_whitespace() || "-?:,[]{}#&*!|>'\"%@`".contains(c))
        && !s.ends_with(char::is_whitespace)
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.chars().any(|c| c.is_control())
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "~" | "yes" | "no"
        );
    if plain {
        s.to_string()
    } else {
        let mut q = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => q.push_str("\\\""),
                '\\' => q.push_str("\\\\"),
                '\n' => q.push_str("\\n"),
                c if c.is_control() => q.push_str(&format!("\\u{:04x}", c as u32)),
                c => q.push(c),
            }
        }
        q.push('"');
        q
    }
}

/// A whole `.snap` file.
pub fn render(description: &str, input_file: &str, body: &str) -> String {
    format!(
        "---\nsource: {}\ndescription: {}\nexpression: transcript\ninput_file: {}\n---\n{}\n",
        SOURCE,
        yaml_str(description),
        yaml_str(input_file),
        normalise(body)
    )
}

/// The result of comparing one transcript with its snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compared {
    Same,
    /// No snapshot yet.
    New,
    /// Differs; the old body is kept for the diff.
    Differs(String),
}

pub fn compare(path: &Path, body: &str) -> std::io::Result<Compared> {
    Ok(match read_body(path)? {
        None => Compared::New,
        Some(old) if old == normalise(body) => Compared::Same,
        Some(old) => Compared::Differs(old),
    })
}

/// Should snapshots be written? Never under CI.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Write `.snap` (when `accept`) or `.snap.new` (for `cargo insta review`).
pub fn write(
    path: &Path,
    accept: bool,
    description: &str,
    input_file: &str,
    body: &str,
) -> std::io::Result<PathBuf> {
    let target = if accept {
        path.to_path_buf()
    } else {
        path.with_extension("snap.new")
    };
    if let Some(d) = target.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(&target, render(description, input_file, body))?;
    if accept {
        let _ = std::fs::remove_file(path.with_extension("snap.new"));
    }
    Ok(target)
}

/// A unified diff of snapshot against transcript, `-` old, `+` new.
pub fn diff(old: &str, new: &str) -> String {
    let d = similar::TextDiff::from_lines(old, new);
    let mut out = String::new();
    for group in d.grouped_ops(3) {
        out.push_str("@@\n");
        for op in group {
            for ch in d.iter_changes(&op) {
                let sign = match ch.tag() {
                    similar::ChangeTag::Delete => '-',
                    similar::ChangeTag::Insert => '+',
                    similar::ChangeTag::Equal => ' ',
                };
                out.push(sign);
                out.push_str(ch.value().trim_end_matches('\n'));
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "chrome__browse");
        assert_eq!(compare(&p, "C: USER x\n").unwrap(), Compared::New);
        write(
            &p,
            true,
            "Chrome: browse a tree",
            "scenarios/chrome/browse.ftp",
            "C: USER x\nS: 331 ok\n",
        )
        .unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with(
                "---\nsource: harness/tests/scenarios.rs\ndescription: \"Chrome: browse a tree\"\n"
            ),
            "{text}"
        );
        assert_eq!(compare(&p, "C: USER x\nS: 331 ok").unwrap(), Compared::Same);
        assert!(matches!(
            compare(&p, "C: USER y\n").unwrap(),
            Compared::Differs(_)
        ));
        let new = write(&p, false, "d", "f", "C: USER y\n").unwrap();
        assert!(new.to_string_lossy().ends_with(".snap.new"));
    }

    #[test]
    fn body_of_insta_file() {
        let t = "---\nsource: a\nexpression: x\n---\nline 1\nline 2\n\n";
        assert_eq!(body_of(t), "line 1\nline 2");
    }

    #[test]
    fn yaml_quoting() {
        assert_eq!(yaml_str("plain text"), "plain text");
        assert_eq!(yaml_str("a: b"), "\"a: b\"");
        assert_eq!(yaml_str("\"q\""), "\"\\\"q\\\"\"");
        assert_eq!(yaml_str("123"), "\"123\"");
    }

    #[test]
    fn diff_marks_changes() {
        let d = diff("a\nb\nc\n", "a\nB\nc\n");
        assert!(
            d.contains("-b\n") && d.contains("+B\n") && d.contains(" a\n"),
            "{d}"
        );
    }
}
