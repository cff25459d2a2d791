//! An independent model of `ftpd::path::resolve`, and the `path_resolution`
//! target's input.
//!
//! The model keeps a list of components, as a person would describe the
//! rules: an absolute argument starts from the root, a relative one from the
//! working directory; empty and `.` components are skipped, `..` drops the
//! last component (the root stays the root), anything else is appended; a
//! path that gets longer than `MAX_PATH` at any step is refused.

use arbitrary::{Arbitrary, Result, Unstructured};

/// User roots the target tries (storage paths; `""` and `"/"` both mean the
/// whole medium, a trailing slash is allowed, the long one leaves little
/// room below it).
pub const ROOTS: [&str; 7] = [
    "/",
    "",
    "/srv",
    "/srv/home/",
    "/a/b/c",
    "/pub",
    "/rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr",
];

/// `root`: an index into [`ROOTS`]; then the argument of a `CWD` that sets
/// the working directory, a `\n`, and the argument under test. Bytes that
/// are not UTF-8 become U+FFFD and NUL bytes are dropped: the command parser
/// refuses both before any path is resolved.
#[derive(Debug)]
pub struct PathInput {
    pub root: &'static str,
    pub cwd_arg: String,
    pub arg: String,
}

impl PathInput {
    /// The bytes that decode to this input (for the seed corpus).
    pub fn encode(root: usize, cwd_arg: &str, arg: &str) -> Vec<u8> {
        let mut v = vec![root as u8];
        v.extend_from_slice(cwd_arg.as_bytes());
        v.push(b'\n');
        v.extend_from_slice(arg.as_bytes());
        v
    }
}

impl<'a> Arbitrary<'a> for PathInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let root = ROOTS[usize::from(u8::arbitrary(u)?) % ROOTS.len()];
        let rest = u.bytes(u.len())?;
        let (cwd_arg, arg) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (&b""[..], rest),
        };
        Ok(PathInput {
            root,
            cwd_arg: String::from_utf8_lossy(cwd_arg).replace('\0', ""),
            arg: String::from_utf8_lossy(arg).replace('\0', ""),
        })
    }

    fn arbitrary_take_rest(mut u: Unstructured<'a>) -> Result<Self> {
        Self::arbitrary(&mut u)
    }
}

/// What `resolve(cwd, arg)` should give: `None` when too long.
pub fn resolve(cwd: &str, arg: &str, max: usize) -> Option<String> {
    let mut parts: Vec<&str> = if arg.starts_with('/') {
        Vec::new()
    } else {
        cwd.split('/').filter(|c| !c.is_empty()).collect()
    };
    let len = |p: &[&str]| p.iter().map(|c| c.len() + 1).sum::<usize>().max(1);
    for part in arg.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => {
                parts.push(name);
                if len(&parts) > max {
                    return None;
                }
            }
        }
    }
    Some(if parts.is_empty() {
        "/".to_string()
    } else {
        parts.iter().map(|c| format!("/{c}")).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_agrees_with_the_documented_examples() {
        assert_eq!(
            resolve("/a", "../../../etc/passwd", 256).unwrap(),
            "/etc/passwd"
        );
        assert_eq!(resolve("/a", "b//c///", 256).unwrap(), "/a/b/c");
        assert_eq!(resolve("/", "..", 256).unwrap(), "/");
        assert_eq!(resolve("/", "a/../../b", 256).unwrap(), "/b");
        assert_eq!(resolve("/", &"x".repeat(256), 256), None);
        assert_eq!(resolve("/", &"x".repeat(255), 256).unwrap().len(), 256);
    }
}
