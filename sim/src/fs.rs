//! [`HostFs`]: the engine's [`Storage`] over a host directory, jailed to it.
//!
//! The engine hands over absolute, normalised paths that never climb above
//! `/` (see `ftpd::storage`); `/` is the directory given to
//! [`HostFs::new`]. What the engine cannot see are **symbolic links** inside
//! the tree: one could lead anywhere on the host. So:
//!
//! - A path that is *followed* (open, metadata, list) is resolved with
//!   `canonicalize` and must land inside the root; a link leading out (or a
//!   dangling link one could create through) is [`Error::PermissionDenied`].
//!   Links that stay inside the tree work as the host's own tools see them.
//! - A path whose last component is *not* followed (mkdir, rmdir, delete,
//!   rename act on the link itself) needs only its parent inside the root.
//! - Listings leave out entries a client could not use: links leading out,
//!   dangling links, names that are not UTF-8, and anything that is neither a
//!   regular file nor a directory (a FIFO would block the server on open).
//!
//! The checks are made just before each operation; the tree is the
//! operator's, and nothing an FTP client can do creates a link, so there is
//! no client-driven race between check and use.
//!
//! Listings are sorted by name (byte order), so `skip` is stable across the
//! calls of one resumed listing. A file written through [`Storage::write`]
//! is `fsync`ed on close, and so is its directory: the `226` the engine
//! sends afterwards means data and directory entry are on the disk.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ftpd::storage::{Error, Result};
use ftpd::{DirEntry, Kind, Metadata, Storage, WriteMode};
use rustix::io::Errno;

use crate::time::datetime_from_system_time;

/// A host directory as an FTP file system; see the module docs.
pub struct HostFs {
    root: PathBuf,
    open: usize,
}

/// A file opened through [`HostFs`].
pub struct HostFile {
    file: File,
    /// For a file opened for writing: its directory, synced on close.
    dir: Option<PathBuf>,
}

impl HostFs {
    /// Serves the directory `root` (which must exist).
    pub fn new(root: impl AsRef<Path>) -> io::Result<HostFs> {
        let root = fs::canonicalize(root.as_ref())?;
        if !fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(
                ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(HostFs { root, open: 0 })
    }

    /// The host directory that is `/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of an engine path, without any check of the tree.
    fn host_path(&self, path: &str) -> Result<PathBuf> {
        let rest = path.strip_prefix('/').ok_or(Error::InvalidName)?;
        let mut p = self.root.clone();
        if rest.is_empty() {
            return Ok(p);
        }
        for c in rest.split('/') {
            // The engine never sends these; refuse rather than trust.
            if c.is_empty() || c == "." || c == ".." || c.contains('\0') {
                return Err(Error::InvalidName);
            }
            p.push(c);
        }
        Ok(p)
    }

    /// `p` resolves (following every link) to a place inside the root.
    /// When it does not resolve at all, the error is that of the host
    /// (not found, not a directory), unless an ancestor already leads out.
    fn check_followed(&self, p: &Path) -> Result<PathBuf> {
        match fs::canonicalize(p) {
            Ok(c) if c.starts_with(&self.root) => Ok(c),
            Ok(_) => Err(Error::PermissionDenied),
            Err(e) => {
                if p != self.root {
                    if let Some(parent) = p.parent() {
                        self.check_followed(parent)?;
                    }
                }
                Err(map_io(&e))
            }
        }
    }

    /// For operations that follow the whole path.
    fn followed(&self, path: &str) -> Result<PathBuf> {
        let p = self.host_path(path)?;
        self.check_followed(&p)?;
        Ok(p)
    }

    /// For operations on the last component itself (not followed): the
    /// parent must resolve inside the root.
    fn unfollowed(&self, path: &str) -> Result<PathBuf> {
        let p = self.host_path(path)?;
        if p == self.root {
            return Ok(p);
        }
        let parent = p.parent().ok_or(Error::PermissionDenied)?;
        let parent = self.check_followed(parent)?;
        if !fs::metadata(&parent).map_err(|e| map_io(&e))?.is_dir() {
            return Err(Error::NotADirectory);
        }
        Ok(p)
    }

    fn opened(&mut self, file: File, dir: Option<PathBuf>) -> HostFile {
        self.open += 1;
        HostFile { file, dir }
    }
}

/// The engine's view of host metadata; `None` for what is neither a regular
/// file nor a directory.
fn to_metadata(m: &fs::Metadata) -> Option<Metadata> {
    let kind = if m.is_dir() {
        Kind::Dir
    } else if m.is_file() {
        Kind::File
    } else {
        return None;
    };
    Some(Metadata {
        kind,
        size: m.len(),
        modified: m.modified().ok().and_then(datetime_from_system_time),
    })
}

/// A host error in the engine's words. The `errno` decides where there is
/// one, the `ErrorKind` otherwise.
pub fn map_io(e: &io::Error) -> Error {
    if let Some(errno) = Errno::from_io_error(e) {
        return match errno {
            Errno::NOENT => Error::NotFound,
            Errno::NOTDIR => Error::NotADirectory,
            Errno::ISDIR => Error::IsADirectory,
            Errno::EXIST => Error::AlreadyExists,
            Errno::NOTEMPTY => Error::DirectoryNotEmpty,
            // Too many levels of links: a loop, not something to follow.
            Errno::ACCESS | Errno::PERM | Errno::ROFS | Errno::LOOP => Error::PermissionDenied,
            Errno::NOSPC | Errno::DQUOT | Errno::FBIG => Error::NoSpace,
            Errno::NAMETOOLONG => Error::NameTooLong,
            Errno::ILSEQ => Error::InvalidName,
            Errno::MFILE | Errno::NFILE | Errno::BUSY | Errno::TXTBSY | Errno::AGAIN => Error::Busy,
            _ => Error::Io,
        };
    }
    match e.kind() {
        ErrorKind::NotFound => Error::NotFound,
        ErrorKind::NotADirectory => Error::NotADirectory,
        ErrorKind::IsADirectory => Error::IsADirectory,
        ErrorKind::AlreadyExists => Error::AlreadyExists,
        ErrorKind::DirectoryNotEmpty => Error::DirectoryNotEmpty,
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => Error::PermissionDenied,
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => {
            Error::NoSpace
        }
        ErrorKind::WriteZero => Error::NoSpace,
        ErrorKind::InvalidFilename => Error::InvalidName,
        ErrorKind::ResourceBusy | ErrorKind::ExecutableFileBusy | ErrorKind::WouldBlock => {
            Error::Busy
        }
        _ => Error::Io,
    }
}

impl Storage for HostFs {
    type File = HostFile;

    fn open_read(&mut self, path: &str, offset: u64) -> Result<HostFile> {
        let p = self.followed(path)?;
        let meta = fs::metadata(&p).map_err(|e| map_io(&e))?;
        if meta.is_dir() {
            return Err(Error::IsADirectory);
        }
        if !meta.is_file() {
            return Err(Error::PermissionDenied);
        }
        if offset > meta.len() {
            return Err(Error::InvalidOffset);
        }
        let mut file = File::open(&p).map_err(|e| map_io(&e))?;
        file.seek(SeekFrom::Start(offset)).map_err(|e| map_io(&e))?;
        Ok(self.opened(file, None))
    }

    fn open_write(&mut self, path: &str, mode: WriteMode) -> Result<HostFile> {
        let p = self.unfollowed(path)?;
        if p == self.root {
            return Err(Error::IsADirectory);
        }
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                // Writing follows the link: it must lead to a file inside
                // (a dangling link would create a file wherever it points).
                match fs::canonicalize(&p) {
                    Ok(c) if c.starts_with(&self.root) => {}
                    _ => return Err(Error::PermissionDenied),
                }
                let m = fs::metadata(&p).map_err(|e| map_io(&e))?;
                if m.is_dir() {
                    return Err(Error::IsADirectory);
                }
                if !m.is_file() {
                    return Err(Error::PermissionDenied);
                }
            }
            Ok(m) if m.is_dir() => return Err(Error::IsADirectory),
            Ok(m) if !m.is_file() => return Err(Error::PermissionDenied),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(map_io(&e)),
        }
        let mut opts = OpenOptions::new();
        opts.write(true);
        let file = match mode {
            WriteMode::Truncate => opts.create(true).truncate(true).open(&p),
            WriteMode::Append => opts.create(true).append(true).open(&p),
            WriteMode::CreateNew => opts.create_new(true).open(&p),
            WriteMode::At(0) => opts.create(true).truncate(true).open(&p),
            WriteMode::At(n) => {
                let mut file = opts.open(&p).map_err(|e| map_io(&e))?;
                let len = file.metadata().map_err(|e| map_io(&e))?.len();
                if n > len {
                    return Err(Error::InvalidOffset);
                }
                // The result is exactly the first n bytes plus what comes.
                file.set_len(n).map_err(|e| map_io(&e))?;
                file.seek(SeekFrom::Start(n)).map_err(|e| map_io(&e))?;
                Ok(file)
            }
        }
        .map_err(|e| map_io(&e))?;
        let dir = p.parent().map(Path::to_path_buf);
        Ok(self.opened(file, dir))
    }

    fn read(&mut self, file: &mut HostFile, buf: &mut [u8]) -> Result<usize> {
        loop {
            match file.file.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(map_io(&e)),
            }
        }
    }

    fn write(&mut self, file: &mut HostFile, data: &[u8]) -> Result<()> {
        file.file.write_all(data).map_err(|e| map_io(&e))
    }

    fn close(&mut self, file: HostFile) -> Result<()> {
        self.open = self.open.saturating_sub(1);
        let HostFile { file, dir } = file;
        if let Some(dir) = dir {
            file.sync_all().map_err(|e| map_io(&e))?;
            drop(file);
            // The directory entry (a new file, a new size) is durable too.
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| map_io(&e))?;
        }
        Ok(())
    }

    fn metadata(&mut self, path: &str) -> Result<Metadata> {
        let p = self.followed(path)?;
        let m = fs::metadata(&p).map_err(|e| map_io(&e))?;
        to_metadata(&m).ok_or(Error::PermissionDenied)
    }

    fn list(
        &mut self,
        path: &str,
        skip: usize,
        f: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<()> {
        let p = self.followed(path)?;
        if !fs::metadata(&p).map_err(|e| map_io(&e))?.is_dir() {
            return Err(Error::NotADirectory);
        }
        let mut entries: Vec<(String, Metadata)> = Vec::new();
        for item in fs::read_dir(&p).map_err(|e| map_io(&e))? {
            let item = item.map_err(|e| map_io(&e))?;
            let Ok(name) = item.file_name().into_string() else {
                continue;
            };
            let Ok(ft) = item.file_type() else { continue };
            let full = item.path();
            if ft.is_symlink() {
                match fs::canonicalize(&full) {
                    Ok(c) if c.starts_with(&self.root) => {}
                    _ => continue,
                }
            }
            let Ok(m) = fs::metadata(&full) else { continue };
            let Some(meta) = to_metadata(&m) else {
                continue;
            };
            entries.push((name, meta));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, meta) in entries.iter().skip(skip) {
            if !f(&DirEntry { name, meta: *meta }) {
                break;
            }
        }
        Ok(())
    }

    fn mkdir(&mut self, path: &str) -> Result<()> {
        let p = self.unfollowed(path)?;
        if p == self.root {
            return Err(Error::AlreadyExists);
        }
        fs::create_dir(&p).map_err(|e| map_io(&e))
    }

    fn rmdir(&mut self, path: &str) -> Result<()> {
        let p = self.unfollowed(path)?;
        if p == self.root {
            return Err(Error::PermissionDenied);
        }
        fs::remove_dir(&p).map_err(|e| map_io(&e))
    }

    fn remove(&mut self, path: &str) -> Result<()> {
        let p = self.unfollowed(path)?;
        if p == self.root {
            return Err(Error::IsADirectory);
        }
        let m = fs::symlink_metadata(&p).map_err(|e| map_io(&e))?;
        if m.is_dir() {
            return Err(Error::IsADirectory);
        }
        fs::remove_file(&p).map_err(|e| map_io(&e))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        let src = self.unfollowed(from)?;
        let dst = self.unfollowed(to)?;
        if src == self.root || dst == self.root {
            return Err(Error::PermissionDenied);
        }
        fs::symlink_metadata(&src).map_err(|e| map_io(&e))?;
        // rename(2) replaces an existing target; the contract says it must
        // not exist.
        match fs::symlink_metadata(&dst) {
            Ok(_) => return Err(Error::AlreadyExists),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(map_io(&e)),
        }
        fs::rename(&src, &dst).map_err(|e| match Errno::from_io_error(&e) {
            // A directory into itself: that name cannot be used.
            Some(Errno::INVAL) => Error::InvalidName,
            _ => map_io(&e),
        })
    }

    fn free_space(&mut self) -> Option<u64> {
        let st = rustix::fs::statvfs(&self.root).ok()?;
        Some(st.f_bavail.saturating_mul(st.f_frsize))
    }

    fn open_files(&self) -> usize {
        self.open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftpd::DateTime;
    use std::os::unix::fs::symlink;
    use std::time::{Duration, UNIX_EPOCH};
    use tempfile::TempDir;

    fn setup() -> (TempDir, HostFs) {
        let dir = tempfile::tempdir().unwrap();
        let fs = HostFs::new(dir.path()).unwrap();
        (dir, fs)
    }

    fn put(dir: &TempDir, rel: &str, data: &[u8]) {
        let p = dir.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }

    fn read_all(fs: &mut HostFs, path: &str, offset: u64) -> Result<Vec<u8>> {
        let mut f = fs.open_read(path, offset)?;
        let mut out = Vec::new();
        let mut buf = [0u8; 7]; // odd size: several reads
        loop {
            let n = fs.read(&mut f, &mut buf)?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        fs.close(f)?;
        Ok(out)
    }

    fn write_file(fs: &mut HostFs, path: &str, mode: WriteMode, data: &[u8]) -> Result<()> {
        let mut f = fs.open_write(path, mode)?;
        fs.write(&mut f, data)?;
        fs.close(f)
    }

    fn names(fs: &mut HostFs, path: &str, skip: usize) -> Result<Vec<String>> {
        let mut out = Vec::new();
        fs.list(path, skip, &mut |e| {
            out.push(e.name.to_string());
            true
        })?;
        Ok(out)
    }

    fn on_disk(dir: &TempDir, rel: &str) -> Vec<u8> {
        fs::read(dir.path().join(rel)).unwrap()
    }

    #[test]
    fn new_needs_an_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(HostFs::new(dir.path().join("missing")).is_err());
        put(&dir, "file", b"x");
        assert!(HostFs::new(dir.path().join("file")).is_err());
        let fs = HostFs::new(dir.path()).unwrap();
        assert_eq!(fs.root(), fs::canonicalize(dir.path()).unwrap());
    }

    #[test]
    fn metadata_of_root_file_and_dir() {
        let (dir, mut fs) = setup();
        put(&dir, "a.txt", b"hello");
        fs::create_dir(dir.path().join("sub")).unwrap();
        // 2025-12-31 23:59:59 UTC
        let t = UNIX_EPOCH + Duration::from_secs(1_767_225_599);
        File::options()
            .write(true)
            .open(dir.path().join("a.txt"))
            .unwrap()
            .set_modified(t)
            .unwrap();

        assert_eq!(fs.metadata("/").unwrap().kind, Kind::Dir);
        let m = fs.metadata("/a.txt").unwrap();
        assert_eq!(m.kind, Kind::File);
        assert_eq!(m.size, 5);
        assert_eq!(
            m.modified,
            Some(DateTime {
                year: 2025,
                month: 12,
                day: 31,
                hour: 23,
                minute: 59,
                second: 59
            })
        );
        assert_eq!(fs.metadata("/sub").unwrap().kind, Kind::Dir);
        assert_eq!(fs.metadata("/missing"), Err(Error::NotFound));
        assert_eq!(fs.metadata("/a.txt/x"), Err(Error::NotADirectory));
        assert_eq!(fs.metadata("/missing/x"), Err(Error::NotFound));
    }

    #[test]
    fn paths_the_engine_never_sends_are_refused() {
        let (_dir, mut fs) = setup();
        for p in ["", "relative", "/a/../b", "/./a", "//a", "/a/", "/a\0b"] {
            assert_eq!(fs.metadata(p), Err(Error::InvalidName), "{p:?}");
        }
    }

    #[test]
    fn read_whole_file_and_from_offset() {
        let (dir, mut fs) = setup();
        put(&dir, "d/f.bin", b"0123456789abcdefghij");
        assert_eq!(
            read_all(&mut fs, "/d/f.bin", 0).unwrap(),
            b"0123456789abcdefghij"
        );
        assert_eq!(read_all(&mut fs, "/d/f.bin", 15).unwrap(), b"fghij");
        assert_eq!(read_all(&mut fs, "/d/f.bin", 20).unwrap(), b"");
        assert_eq!(
            fs.open_read("/d/f.bin", 21).err(),
            Some(Error::InvalidOffset)
        );
        assert_eq!(fs.open_read("/d", 0).err(), Some(Error::IsADirectory));
        assert_eq!(fs.open_read("/", 0).err(), Some(Error::IsADirectory));
        assert_eq!(fs.open_read("/d/none", 0).err(), Some(Error::NotFound));
        assert_eq!(
            fs.open_read("/d/f.bin/x", 0).err(),
            Some(Error::NotADirectory)
        );
        assert_eq!(fs.open_files(), 0);
    }

    #[test]
    fn utf8_and_space_names() {
        let (_dir, mut fs) = setup();
        let name = "/Report 2026 (final) – Ünïcødé.pdf";
        write_file(&mut fs, name, WriteMode::Truncate, b"pdf").unwrap();
        assert_eq!(read_all(&mut fs, name, 0).unwrap(), b"pdf");
        assert_eq!(names(&mut fs, "/", 0).unwrap(), [&name[1..]]);
    }

    #[test]
    fn write_truncate_creates_and_replaces() {
        let (dir, mut fs) = setup();
        write_file(&mut fs, "/new.txt", WriteMode::Truncate, b"first version").unwrap();
        assert_eq!(on_disk(&dir, "new.txt"), b"first version");
        write_file(&mut fs, "/new.txt", WriteMode::Truncate, b"v2").unwrap();
        assert_eq!(on_disk(&dir, "new.txt"), b"v2");
        assert_eq!(
            fs.open_write("/nodir/x", WriteMode::Truncate).err(),
            Some(Error::NotFound)
        );
        assert_eq!(
            fs.open_write("/new.txt/x", WriteMode::Truncate).err(),
            Some(Error::NotADirectory)
        );
        fs::create_dir(dir.path().join("d")).unwrap();
        assert_eq!(
            fs.open_write("/d", WriteMode::Truncate).err(),
            Some(Error::IsADirectory)
        );
        assert_eq!(
            fs.open_write("/", WriteMode::Truncate).err(),
            Some(Error::IsADirectory)
        );
    }

    #[test]
    fn write_append() {
        let (dir, mut fs) = setup();
        write_file(&mut fs, "/log", WriteMode::Append, b"one\n").unwrap();
        write_file(&mut fs, "/log", WriteMode::Append, b"two\n").unwrap();
        assert_eq!(on_disk(&dir, "log"), b"one\ntwo\n");
    }

    #[test]
    fn write_at_offset_keeps_the_prefix_and_cuts_the_rest() {
        let (dir, mut fs) = setup();
        put(&dir, "f", b"hello world, and more");
        write_file(&mut fs, "/f", WriteMode::At(6), b"there").unwrap();
        assert_eq!(on_disk(&dir, "f"), b"hello there");
        // At the very end: a plain resume.
        write_file(&mut fs, "/f", WriteMode::At(11), b"!").unwrap();
        assert_eq!(on_disk(&dir, "f"), b"hello there!");
        // Past the end: refused, file untouched.
        assert_eq!(
            fs.open_write("/f", WriteMode::At(13)).err(),
            Some(Error::InvalidOffset)
        );
        assert_eq!(on_disk(&dir, "f"), b"hello there!");
        // A missing file can only be written from 0.
        assert_eq!(
            fs.open_write("/g", WriteMode::At(3)).err(),
            Some(Error::NotFound)
        );
        write_file(&mut fs, "/g", WriteMode::At(0), b"new").unwrap();
        assert_eq!(on_disk(&dir, "g"), b"new");
        // At(0) on an existing file is a full rewrite.
        write_file(&mut fs, "/f", WriteMode::At(0), b"x").unwrap();
        assert_eq!(on_disk(&dir, "f"), b"x");
        assert_eq!(fs.open_files(), 0);
    }

    #[test]
    fn write_create_new() {
        let (dir, mut fs) = setup();
        write_file(&mut fs, "/u", WriteMode::CreateNew, b"unique").unwrap();
        assert_eq!(
            fs.open_write("/u", WriteMode::CreateNew).err(),
            Some(Error::AlreadyExists)
        );
        assert_eq!(on_disk(&dir, "u"), b"unique");
    }

    #[test]
    fn open_files_counts_until_close() {
        let (dir, mut fs) = setup();
        put(&dir, "a", b"a");
        let r = fs.open_read("/a", 0).unwrap();
        let w = fs.open_write("/b", WriteMode::Truncate).unwrap();
        assert_eq!(fs.open_files(), 2);
        fs.close(r).unwrap();
        assert_eq!(fs.open_files(), 1);
        fs.close(w).unwrap();
        assert_eq!(fs.open_files(), 0);
        // A refused open holds nothing.
        assert!(fs.open_read("/missing", 0).is_err());
        assert!(fs.open_write("/a", WriteMode::At(9)).is_err());
        assert_eq!(fs.open_files(), 0);
    }

    #[test]
    fn data_is_in_the_file_once_close_returns() {
        let (dir, mut fs) = setup();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut f = fs.open_write("/big.bin", WriteMode::Truncate).unwrap();
        for chunk in data.chunks(4096) {
            fs.write(&mut f, chunk).unwrap();
        }
        fs.close(f).unwrap();
        assert_eq!(on_disk(&dir, "big.bin"), data);
        assert_eq!(fs.metadata("/big.bin").unwrap().size, data.len() as u64);
    }

    #[test]
    fn full_medium_is_no_space() {
        // /dev/full answers every write with ENOSPC.
        let mut fs = HostFs::new("/").unwrap();
        let file = OpenOptions::new().write(true).open("/dev/full").unwrap();
        let mut f = fs.opened(file, None);
        assert_eq!(fs.write(&mut f, b"data"), Err(Error::NoSpace));
        fs.close(f).unwrap();
        assert_eq!(fs.open_files(), 0);
    }

    #[test]
    fn list_is_sorted_skippable_and_stoppable() {
        let (dir, mut fs) = setup();
        for n in ["b", "a", "C", "d d", "é"] {
            put(&dir, &format!("top/{n}"), n.as_bytes());
        }
        fs::create_dir(dir.path().join("top/sub")).unwrap();
        assert_eq!(
            names(&mut fs, "/top", 0).unwrap(),
            ["C", "a", "b", "d d", "sub", "é"]
        );
        assert_eq!(names(&mut fs, "/top", 4).unwrap(), ["sub", "é"]);
        assert_eq!(names(&mut fs, "/top", 6).unwrap(), Vec::<String>::new());
        assert_eq!(names(&mut fs, "/top", 60).unwrap(), Vec::<String>::new());
        let mut seen = Vec::new();
        fs.list("/top", 1, &mut |e| {
            seen.push((e.name.to_string(), e.meta.kind, e.meta.size));
            seen.len() < 2
        })
        .unwrap();
        assert_eq!(
            seen,
            [("a".into(), Kind::File, 1), ("b".into(), Kind::File, 1)]
        );
        let mut kinds = Vec::new();
        fs.list("/top", 4, &mut |e| {
            kinds.push(e.meta.kind);
            true
        })
        .unwrap();
        assert_eq!(kinds, [Kind::Dir, Kind::File]);
        assert_eq!(names(&mut fs, "/", 0).unwrap(), ["top"]);
        assert_eq!(names(&mut fs, "/top/a", 0), Err(Error::NotADirectory));
        assert_eq!(names(&mut fs, "/nope", 0), Err(Error::NotFound));
    }

    #[test]
    fn list_leaves_out_what_a_client_cannot_use() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let (dir, mut fs) = setup();
        put(&dir, "ok", b"");
        fs::write(dir.path().join(OsStr::from_bytes(b"latin1-\xe9")), b"").unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        symlink("missing-target", dir.path().join("dangling")).unwrap();
        assert_eq!(names(&mut fs, "/", 0).unwrap(), ["ok"]);
        // A FIFO is neither read nor written: it would block the server.
        assert_eq!(
            fs.open_read("/fifo", 0).err(),
            Some(Error::PermissionDenied)
        );
        assert_eq!(
            fs.open_write("/fifo", WriteMode::Truncate).err(),
            Some(Error::PermissionDenied)
        );
        assert_eq!(fs.metadata("/fifo"), Err(Error::PermissionDenied));
    }

    #[test]
    fn mkdir() {
        let (dir, mut fs) = setup();
        fs.mkdir("/new").unwrap();
        assert!(dir.path().join("new").is_dir());
        fs.mkdir("/new/deeper").unwrap();
        assert!(dir.path().join("new/deeper").is_dir());
        assert_eq!(fs.mkdir("/new"), Err(Error::AlreadyExists));
        assert_eq!(fs.mkdir("/"), Err(Error::AlreadyExists));
        assert_eq!(fs.mkdir("/a/b"), Err(Error::NotFound));
        put(&dir, "file", b"");
        assert_eq!(fs.mkdir("/file"), Err(Error::AlreadyExists));
        assert_eq!(fs.mkdir("/file/x"), Err(Error::NotADirectory));
        let long = format!("/{}", "n".repeat(300));
        assert_eq!(fs.mkdir(&long), Err(Error::NameTooLong));
    }

    #[test]
    fn rmdir() {
        let (dir, mut fs) = setup();
        put(&dir, "full/f", b"");
        fs::create_dir(dir.path().join("empty")).unwrap();
        fs.rmdir("/empty").unwrap();
        assert!(!dir.path().join("empty").exists());
        assert_eq!(fs.rmdir("/full"), Err(Error::DirectoryNotEmpty));
        assert_eq!(fs.rmdir("/full/f"), Err(Error::NotADirectory));
        assert_eq!(fs.rmdir("/empty"), Err(Error::NotFound));
        assert_eq!(fs.rmdir("/"), Err(Error::PermissionDenied));
        assert!(dir.path().is_dir());
    }

    #[test]
    fn remove() {
        let (dir, mut fs) = setup();
        put(&dir, "d/f", b"x");
        fs.remove("/d/f").unwrap();
        assert!(!dir.path().join("d/f").exists());
        assert_eq!(fs.remove("/d/f"), Err(Error::NotFound));
        assert_eq!(fs.remove("/d"), Err(Error::IsADirectory));
        assert_eq!(fs.remove("/"), Err(Error::IsADirectory));
        assert!(dir.path().join("d").is_dir());
    }

    #[test]
    fn rename() {
        let (dir, mut fs) = setup();
        put(&dir, "a.txt", b"A");
        put(&dir, "b.txt", b"B");
        put(&dir, "d/inner", b"I");
        fs.rename("/a.txt", "/firmware-v1.2.3.bin").unwrap();
        assert_eq!(on_disk(&dir, "firmware-v1.2.3.bin"), b"A");
        assert!(!dir.path().join("a.txt").exists());
        // The target must not exist: nothing is overwritten.
        assert_eq!(
            fs.rename("/firmware-v1.2.3.bin", "/b.txt"),
            Err(Error::AlreadyExists)
        );
        assert_eq!(on_disk(&dir, "b.txt"), b"B");
        assert_eq!(fs.rename("/missing", "/x"), Err(Error::NotFound));
        assert_eq!(fs.rename("/b.txt", "/nodir/x"), Err(Error::NotFound));
        // Directories move with their content, also into another directory.
        fs.mkdir("/e").unwrap();
        fs.rename("/d", "/e/d2").unwrap();
        assert_eq!(on_disk(&dir, "e/d2/inner"), b"I");
        // Not into itself.
        assert_eq!(fs.rename("/e", "/e/d2/e"), Err(Error::InvalidName));
        assert_eq!(fs.rename("/", "/x"), Err(Error::PermissionDenied));
    }

    #[test]
    fn free_space_is_reported() {
        let (_dir, mut fs) = setup();
        let free = fs.free_space().expect("statvfs works on the temp dir");
        let st = rustix::fs::statvfs(fs.root()).unwrap();
        assert!(free <= st.f_blocks * st.f_frsize);
    }

    /// A file link and a directory link inside the tree, both to /etc.
    fn escape_setup() -> (TempDir, HostFs) {
        let (dir, fs) = setup();
        symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
        symlink("/etc", dir.path().join("etc")).unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        symlink("../../../../../../../../etc", dir.path().join("sub/up")).unwrap();
        (dir, fs)
    }

    #[test]
    fn file_symlink_to_etc_is_refused() {
        let (dir, mut fs) = escape_setup();
        let before = fs::read("/etc/passwd").unwrap();
        assert_eq!(fs.metadata("/passwd"), Err(Error::PermissionDenied));
        assert_eq!(
            fs.open_read("/passwd", 0).err(),
            Some(Error::PermissionDenied)
        );
        for mode in [
            WriteMode::Truncate,
            WriteMode::Append,
            WriteMode::At(0),
            WriteMode::CreateNew,
        ] {
            assert!(fs.open_write("/passwd", mode).is_err(), "{mode:?}");
        }
        assert_eq!(fs.open_files(), 0);
        assert_eq!(fs::read("/etc/passwd").unwrap(), before);
        assert_eq!(names(&mut fs, "/passwd", 0), Err(Error::PermissionDenied));
        assert!(
            !names(&mut fs, "/", 0)
                .unwrap()
                .contains(&"passwd".to_string())
        );
        // Removing the link removes the link, not its target.
        fs.remove("/passwd").unwrap();
        assert!(fs::symlink_metadata(dir.path().join("passwd")).is_err());
        assert_eq!(fs::read("/etc/passwd").unwrap(), before);
    }

    #[test]
    fn directory_symlink_to_etc_is_refused() {
        let (_dir, mut fs) = escape_setup();
        for root in ["/etc", "/sub/up"] {
            assert_eq!(fs.metadata(root), Err(Error::PermissionDenied), "{root}");
            assert_eq!(
                names(&mut fs, root, 0),
                Err(Error::PermissionDenied),
                "{root}"
            );
            let inside = format!("{root}/passwd");
            assert_eq!(
                fs.metadata(&inside),
                Err(Error::PermissionDenied),
                "{inside}"
            );
            assert_eq!(
                fs.open_read(&inside, 0).err(),
                Some(Error::PermissionDenied)
            );
            assert_eq!(
                fs.open_write(&format!("{root}/sim-test-new"), WriteMode::Truncate)
                    .err(),
                Some(Error::PermissionDenied)
            );
            // Even what does not exist out there is not told apart.
            assert_eq!(
                fs.metadata(&format!("{root}/no-such-file")),
                Err(Error::PermissionDenied)
            );
            assert_eq!(
                fs.mkdir(&format!("{root}/sim-test-dir")),
                Err(Error::PermissionDenied)
            );
            assert_eq!(
                fs.rmdir(&format!("{root}/sim-test-dir")),
                Err(Error::PermissionDenied)
            );
            assert_eq!(fs.remove(&inside), Err(Error::PermissionDenied));
            assert_eq!(fs.rename(&inside, "/stolen"), Err(Error::PermissionDenied));
            assert_eq!(
                fs.rename("/sub", &format!("{root}/sub")),
                Err(Error::PermissionDenied)
            );
        }
        assert!(!Path::new("/etc/sim-test-new").exists());
        assert!(!Path::new("/etc/sim-test-dir").exists());
        assert!(Path::new("/etc/passwd").exists());
        assert_eq!(names(&mut fs, "/", 0).unwrap(), ["sub"]);
        assert_eq!(names(&mut fs, "/sub", 0).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn dangling_symlink_cannot_create_outside() {
        let (dir, mut fs) = setup();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("created-through-link");
        symlink(&target, dir.path().join("trap")).unwrap();
        assert_eq!(
            fs.open_write("/trap", WriteMode::Truncate).err(),
            Some(Error::PermissionDenied)
        );
        assert!(!target.exists());
    }

    #[test]
    fn symlinks_inside_the_tree_work() {
        let (dir, mut fs) = setup();
        put(&dir, "real/file.txt", b"inside");
        symlink("real", dir.path().join("alias")).unwrap();
        symlink("real/file.txt", dir.path().join("shortcut")).unwrap();
        assert_eq!(fs.metadata("/alias").unwrap().kind, Kind::Dir);
        assert_eq!(names(&mut fs, "/alias", 0).unwrap(), ["file.txt"]);
        assert_eq!(read_all(&mut fs, "/alias/file.txt", 0).unwrap(), b"inside");
        assert_eq!(read_all(&mut fs, "/shortcut", 0).unwrap(), b"inside");
        write_file(&mut fs, "/shortcut", WriteMode::Append, b"+").unwrap();
        assert_eq!(on_disk(&dir, "real/file.txt"), b"inside+");
        let listed = names(&mut fs, "/", 0).unwrap();
        assert_eq!(listed, ["alias", "real", "shortcut"]);
    }

    #[test]
    fn errno_mapping() {
        use rustix::io::Errno as E;
        let cases = [
            (E::NOENT, Error::NotFound),
            (E::NOTDIR, Error::NotADirectory),
            (E::ISDIR, Error::IsADirectory),
            (E::EXIST, Error::AlreadyExists),
            (E::NOTEMPTY, Error::DirectoryNotEmpty),
            (E::ACCESS, Error::PermissionDenied),
            (E::PERM, Error::PermissionDenied),
            (E::ROFS, Error::PermissionDenied),
            (E::LOOP, Error::PermissionDenied),
            (E::NOSPC, Error::NoSpace),
            (E::DQUOT, Error::NoSpace),
            (E::FBIG, Error::NoSpace),
            (E::NAMETOOLONG, Error::NameTooLong),
            (E::ILSEQ, Error::InvalidName),
            (E::MFILE, Error::Busy),
            (E::NFILE, Error::Busy),
            (E::BUSY, Error::Busy),
            (E::TXTBSY, Error::Busy),
            (E::IO, Error::Io),
            (E::XDEV, Error::Io),
        ];
        for (errno, want) in cases {
            let e = io::Error::from_raw_os_error(errno.raw_os_error());
            assert_eq!(map_io(&e), want, "{errno:?}");
        }
        // Errors without an errno go by their kind.
        assert_eq!(
            map_io(&io::Error::from(ErrorKind::NotFound)),
            Error::NotFound
        );
        assert_eq!(
            map_io(&io::Error::from(ErrorKind::WriteZero)),
            Error::NoSpace
        );
        assert_eq!(
            map_io(&io::Error::from(ErrorKind::StorageFull)),
            Error::NoSpace
        );
        assert_eq!(map_io(&io::Error::other("x")), Error::Io);
    }
}
