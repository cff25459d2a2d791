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
    Some(Metadata { kind, size: m.len(), modified: m.modified().ok().and_then(datetime_from_system_time) })
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
            File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| map_io(&e))?;
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
            let Ok(name) = item.file_name().into_string() else { continue };
            let Ok(ft) = item.file_type() else { continue };
            let full = item.path();
            if ft.is_symlink() {
                match fs::canonicalize(&full) {
                    Ok(c) if c.starts_with(&self.root) => {}
                    _ => continue,
                }
            }
            let Ok(m) = fs::metadata(&full) else { continue };
            let Some(meta) = to_metadata(&m) else { continue };
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
