//! [`MemFs`] with the [`Storage`] path contract checked on every call.
//!
//! `ftpd::storage` promises backends that every path is absolute and
//! normalised: it starts with `/`, has no `.`, `..` or empty components, no
//! trailing slash (the root is `/`), no NUL, and fits [`ftpd::MAX_PATH`].
//! A backend such as a host directory relies on that for its jail, so the
//! session target asserts it on every storage call the engine makes.
//!
//! With `jail` set (every account's root lies there), it also asserts that
//! no path leaves that directory: the jail seen from the storage side.

use ftpd::storage::{self, DirEntry, Metadata, Storage, WriteMode};
use ftpd::testing::{MemFile, MemFs};

pub struct CheckedFs {
    pub fs: MemFs,
    pub jail: Option<&'static str>,
}

/// Panics unless `p` is a path the engine may hand to a backend.
pub fn check_storage_path(p: &str) {
    let ok = p.starts_with('/')
        && p.len() <= ftpd::MAX_PATH
        && !p.contains('\0')
        && (p == "/"
            || p[1..]
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".."));
    assert!(
        ok,
        "the engine handed storage a path that breaks the contract: {p:?}"
    );
}

impl CheckedFs {
    fn check(&self, p: &str) {
        check_storage_path(p);
        if let Some(j) = self.jail {
            let inside = p == j || (p.starts_with(j) && p.as_bytes().get(j.len()) == Some(&b'/'));
            assert!(
                inside,
                "a storage path outside every user's root {j:?}: {p:?}"
            );
        }
    }
}

impl Storage for CheckedFs {
    type File = MemFile;

    fn open_read(&mut self, path: &str, offset: u64) -> storage::Result<MemFile> {
        self.check(path);
        self.fs.open_read(path, offset)
    }
    fn open_write(&mut self, path: &str, mode: WriteMode) -> storage::Result<MemFile> {
        self.check(path);
        self.fs.open_write(path, mode)
    }
    fn read(&mut self, f: &mut MemFile, buf: &mut [u8]) -> storage::Result<usize> {
        self.fs.read(f, buf)
    }
    fn write(&mut self, f: &mut MemFile, data: &[u8]) -> storage::Result<()> {
        self.fs.write(f, data)
    }
    fn close(&mut self, f: MemFile) -> storage::Result<()> {
        self.fs.close(f)
    }
    fn metadata(&mut self, path: &str) -> storage::Result<Metadata> {
        self.check(path);
        self.fs.metadata(path)
    }
    fn list(
        &mut self,
        path: &str,
        skip: usize,
        f: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> storage::Result<()> {
        self.check(path);
        self.fs.list(path, skip, f)
    }
    fn mkdir(&mut self, path: &str) -> storage::Result<()> {
        self.check(path);
        self.fs.mkdir(path)
    }
    fn rmdir(&mut self, path: &str) -> storage::Result<()> {
        self.check(path);
        self.fs.rmdir(path)
    }
    fn remove(&mut self, path: &str) -> storage::Result<()> {
        self.check(path);
        self.fs.remove(path)
    }
    fn rename(&mut self, from: &str, to: &str) -> storage::Result<()> {
        self.check(from);
        self.check(to);
        self.fs.rename(from, to)
    }
    fn free_space(&mut self) -> Option<u64> {
        self.fs.free_space()
    }
    fn open_files(&self) -> usize {
        self.fs.open_files()
    }
}
