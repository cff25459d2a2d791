//! Client paths into confined storage paths.
//!
//! A client names files relative to its working directory or absolutely,
//! with `.`, `..`, repeated and trailing slashes. [`resolve`] turns that into
//! a normalised *virtual* path (what `PWD` shows), in which `..` at the root
//! stays at the root: there is no way to write a path that leaves it.
//! [`to_storage`] then prefixes the user's root to get the path the
//! [`crate::Storage`] sees.

use core::fmt;

use crate::MAX_PATH;

/// A fixed-capacity path string: `/`-separated, always valid UTF-8.
#[derive(Clone)]
pub struct PathBuf {
    buf: Bytes<MAX_PATH>,
    len: u16,
}

/// A byte buffer aligned to four bytes: cleared and copied by the
/// word-aligned `memclr`/`memcpy`, so no byte-aligned `memclr` is linked.
#[derive(Clone)]
#[repr(align(4))]
pub(crate) struct Bytes<const N: usize>(pub [u8; N]);

/// A zeroed buffer, out of line: cleared whole through a 4-byte aligned
/// pointer (inlined, the optimiser clears all but a first byte written
/// next, from an unaligned address).
#[inline(never)]
pub(crate) fn zeroed<const N: usize>() -> Bytes<N> {
    Bytes([0; N])
}

/// Why a path cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// `553`: longer than [`MAX_PATH`].
    TooLong,
}

impl PathBuf {
    /// The root, `/`.
    pub fn root() -> Self {
        let mut p = PathBuf {
            buf: zeroed(),
            len: 1,
        };
        p.buf.0[0] = b'/';
        p
    }

    /// Back to the root, `/`, in place.
    pub fn set_root(&mut self) {
        self.buf.0[0] = b'/';
        self.len = 1;
    }

    pub fn as_str(&self) -> &str {
        // Only whole `&str` pieces are ever pushed, so this cannot fail.
        core::str::from_utf8(&self.buf.0[..self.len as usize]).unwrap_or("/")
    }

    pub fn is_root(&self) -> bool {
        self.len == 1
    }

    /// Appends bytes; only whole UTF-8 pieces may be pushed (a `&str`, or
    /// a piece of one cut at an ASCII byte).
    fn push_bytes(&mut self, s: &[u8]) -> Result<(), PathError> {
        let len = self.len as usize;
        if len + s.len() > MAX_PATH {
            return Err(PathError::TooLong);
        }
        self.buf.0[len..len + s.len()].copy_from_slice(s);
        self.len = (len + s.len()) as u16;
        Ok(())
    }

    /// Appends one component (no `/` in it).
    pub fn push(&mut self, name: &str) -> Result<(), PathError> {
        self.push_name(name.as_bytes())
    }

    fn push_name(&mut self, name: &[u8]) -> Result<(), PathError> {
        if !self.is_root() {
            self.push_bytes(b"/")?;
        }
        self.push_bytes(name)
    }

    /// Where the last `/` is.
    fn last_slash(&self) -> Option<usize> {
        self.buf.0[..self.len as usize]
            .iter()
            .rposition(|&b| b == b'/')
    }

    /// Removes the last component; the root stays the root.
    pub fn pop(&mut self) {
        let cut = self.last_slash().unwrap_or(0).max(1);
        self.len = cut as u16;
    }

    /// The last component (empty for the root).
    pub fn file_name(&self) -> &str {
        let from = self.last_slash().map_or(0, |i| i + 1);
        self.as_str().get(from..).unwrap_or("")
    }

    /// Copies `s`, which must already be a normalised absolute path.
    pub fn from_normalised(s: &str) -> Result<Self, PathError> {
        let mut p = PathBuf {
            buf: zeroed(),
            len: 0,
        };
        p.push_bytes(s.as_bytes())?;
        Ok(p)
    }
}

/// Equal when the paths are (bytes past the end do not count).
impl PartialEq for PathBuf {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for PathBuf {}

impl fmt::Debug for PathBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for PathBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Resolves `arg` against the virtual working directory `cwd`.
pub fn resolve(cwd: &PathBuf, arg: &str) -> Result<PathBuf, PathError> {
    let mut out = cwd.clone();
    resolve_in(&mut out, arg)?;
    Ok(out)
}

/// [`resolve`] in place: `out` holds the working directory and receives
/// the result (no path is moved or returned by value).
pub fn resolve_in(out: &mut PathBuf, arg: &str) -> Result<(), PathError> {
    let arg = arg.as_bytes();
    if arg.first() == Some(&b'/') {
        out.set_root();
    }
    let mut rest = arg;
    loop {
        let n = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
        let (part, more) = rest.split_at(n);
        match part {
            b"" | b"." => {}
            b".." => out.pop(),
            name => out.push_name(name)?,
        }
        match more.split_first() {
            Some((_, tail)) => rest = tail,
            None => return Ok(()),
        }
    }
}

/// The storage path of virtual path `v` for a user whose root is `root`.
pub fn to_storage(root: &str, v: &PathBuf) -> Result<PathBuf, PathError> {
    let mut p = PathBuf::root();
    to_storage_in(&mut p, root, v)?;
    Ok(p)
}

/// [`to_storage`] into `out` (whatever it held before).
pub fn to_storage_in(out: &mut PathBuf, root: &str, v: &PathBuf) -> Result<(), PathError> {
    let mut root = root.as_bytes();
    while let [rest @ .., b'/'] = root {
        root = rest;
    }
    // An empty root (the user sees the whole storage) takes `v` as it is,
    // even `/`; any other root takes it as its tail, but not `/`.
    out.len = 0;
    out.push_bytes(root)?;
    if !root.is_empty() && v.is_root() {
        return Ok(());
    }
    out.push_bytes(&v.buf.0[..v.len as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(cwd: &str, arg: &str) -> std::string::String {
        let cwd = PathBuf::from_normalised(cwd).unwrap();
        resolve(&cwd, arg).unwrap().as_str().into()
    }

    #[test]
    fn absolute_and_relative() {
        assert_eq!(r("/", "a"), "/a");
        assert_eq!(r("/a", "b"), "/a/b");
        assert_eq!(r("/a", "/b"), "/b");
        assert_eq!(r("/a", ""), "/a");
    }

    #[test]
    fn dots_and_slashes_are_normalised() {
        assert_eq!(r("/a", "./b/"), "/a/b");
        assert_eq!(r("/a", "b//c///"), "/a/b/c");
        assert_eq!(r("/a/b", ".."), "/a");
        assert_eq!(r("/a/b", "../c"), "/a/c");
        assert_eq!(r("/", "sub/"), "/sub");
        assert_eq!(r("/", "/sub/"), "/sub");
    }

    #[test]
    fn dotdot_never_leaves_the_root() {
        assert_eq!(r("/", ".."), "/");
        assert_eq!(r("/", "../../.."), "/");
        assert_eq!(r("/a", "../../../etc/passwd"), "/etc/passwd");
        assert_eq!(r("/a", "/../../x"), "/x");
        assert_eq!(r("/", "a/../../b"), "/b");
    }

    #[test]
    fn spaces_and_utf8_are_names() {
        assert_eq!(r("/", "my dir/Grüße.txt"), "/my dir/Grüße.txt");
        assert_eq!(r("/", " x "), "/ x ");
        assert_eq!(r("/", "..."), "/...");
    }

    #[test]
    fn too_long_is_an_error() {
        let long = "x".repeat(MAX_PATH);
        assert_eq!(resolve(&PathBuf::root(), &long), Err(PathError::TooLong));
    }

    #[test]
    fn storage_path_is_under_the_user_root() {
        let v = PathBuf::from_normalised("/a/b").unwrap();
        assert_eq!(to_storage("/", &v).unwrap().as_str(), "/a/b");
        assert_eq!(to_storage("/pub", &v).unwrap().as_str(), "/pub/a/b");
        assert_eq!(
            to_storage("/pub/", &PathBuf::root()).unwrap().as_str(),
            "/pub"
        );
    }

    #[test]
    fn in_place_variants_overwrite_what_was_there() {
        let v = PathBuf::from_normalised("/a/b").unwrap();
        let mut out = PathBuf::from_normalised("/some/older/longer/path").unwrap();
        to_storage_in(&mut out, "/pub", &v).unwrap();
        assert_eq!(out.as_str(), "/pub/a/b");
        to_storage_in(&mut out, "/", &v).unwrap();
        assert_eq!(out.as_str(), "/a/b");
        to_storage_in(&mut out, "", &PathBuf::root()).unwrap();
        assert_eq!(out.as_str(), "/");
        to_storage_in(&mut out, "/pub//", &PathBuf::root()).unwrap();
        assert_eq!(out.as_str(), "/pub");
        let long = PathBuf::from_normalised(&"/x".repeat(MAX_PATH / 2)).unwrap();
        assert_eq!(
            to_storage_in(&mut out, "/pub", &long),
            Err(PathError::TooLong)
        );
        let mut p = PathBuf::from_normalised("/a").unwrap();
        resolve_in(&mut p, "b/../c").unwrap();
        assert_eq!(p.as_str(), "/a/c");
        resolve_in(&mut p, "/d").unwrap();
        assert_eq!(p.as_str(), "/d");
    }

    #[test]
    fn equality_ignores_bytes_past_the_end() {
        let a = resolve(&PathBuf::root(), "abc/../x").unwrap();
        assert_eq!(a, PathBuf::from_normalised("/x").unwrap());
    }

    #[test]
    fn pop_and_name() {
        let mut p = PathBuf::from_normalised("/a/b").unwrap();
        assert_eq!(p.file_name(), "b");
        p.pop();
        assert_eq!(p.as_str(), "/a");
        p.pop();
        assert_eq!(p.as_str(), "/");
        p.pop();
        assert_eq!(p.as_str(), "/");
        assert_eq!(p.file_name(), "");
    }
}
