//! The file system as the engine sees it.
//!
//! The engine never touches a disk: every file operation goes through the
//! [`Storage`] trait. Two implementations exist in this repository: FAT on a
//! block device (`ftpd-fat`, used by the boards and the virtual board) and a
//! host directory jailed to its root (`sim`).
//!
//! # Paths
//!
//! Every path handed to a `Storage` is absolute, normalised and confined by the
//! engine before the call: it starts with `/`, has no `.` or `..` components,
//! no empty components and no trailing slash (the root is `/`). Components are
//! valid UTF-8 and contain neither `/` nor NUL. A backend still refuses names
//! its medium cannot hold (FAT: `\ : * ? " < > |`) with [`Error::InvalidName`].
//!
//! # Durability
//!
//! [`Storage::close`] on a file opened for writing returns only when the data
//! and the directory entry are on the medium: the engine sends `226` after a
//! successful close and never before, so a crash after `226` loses nothing.

use core::fmt;

/// A calendar timestamp in UTC, as FAT and FTP (`MDTM`, `MLSD`) carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct DateTime {
    pub year: u16,
    /// 1..=12
    pub month: u8,
    /// 1..=31
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// What a directory entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

/// What the engine needs to know about a file or directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub kind: Kind,
    /// Size in bytes (directories: whatever the backend says; the engine
    /// prints 0 for directories so listings agree across backends).
    pub size: u64,
    /// Last modification, when the backend knows it.
    pub modified: Option<DateTime>,
}

/// One entry of a directory listing. `name` is the long name where the
/// medium has one; `.` and `..` are never reported.
#[derive(Clone, Copy, Debug)]
pub struct DirEntry<'a> {
    pub name: &'a str,
    pub meta: Metadata,
}

/// How a file is opened for writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// `STOR`: create, or truncate an existing file.
    Truncate,
    /// `APPE`: create, or write after the end of an existing file.
    Append,
    /// `REST n` + `STOR`: an existing file (or a new one when `n` is 0) is
    /// written from byte `n` on; bytes past the new data are cut off, so the
    /// result is exactly the first `n` bytes plus what the client sends.
    /// `n` past the end is [`Error::InvalidOffset`].
    At(u64),
    /// `STOU`: create; fail with [`Error::AlreadyExists`] if the name exists.
    CreateNew,
}

/// Why a storage operation failed. Each variant documents the FTP reply the
/// engine turns it into (see `session::storage_reply`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// 550: no such file or directory.
    NotFound,
    /// 550: a path component, or the target of CWD/RMD/LIST-of-dir, is a file.
    NotADirectory,
    /// 550: RETR/DELE/SIZE of a directory.
    IsADirectory,
    /// 550: MKD/RNTO/STOU target exists.
    AlreadyExists,
    /// 550: RMD of a directory that still has entries.
    DirectoryNotEmpty,
    /// 550: the medium or the backend refuses (read-only medium, symlink
    /// leading out of the jail, ...).
    PermissionDenied,
    /// 452 during a transfer, 552 otherwise: no space left on the medium.
    NoSpace,
    /// 553: the medium cannot hold this name.
    InvalidName,
    /// 553: the name or path is longer than the backend can hold.
    NameTooLong,
    /// 554: `REST` offset past the end of the file.
    InvalidOffset,
    /// 450: no free file handle, or the file is open in another session in
    /// a conflicting mode; the client may retry.
    Busy,
    /// 451: the medium failed (I/O error, corrupt file system).
    Io,
    /// 451: no medium yet, or not a usable one (no SD card, an unformatted
    /// card); the board keeps trying and the client may retry.
    NotReady,
}

impl Error {
    /// What the error says in a reply.
    pub fn text(self) -> &'static str {
        // The texts in the order of the variants, each ended by a NUL: one
        // literal instead of a table of pointers and lengths.
        const TEXTS: &str = concat!(
            "No such file or directory\0",
            "Not a directory\0",
            "Is a directory\0",
            "File exists\0",
            "Directory not empty\0",
            "Permission denied\0",
            "No space left on device\0",
            "File name not allowed\0",
            "File name too long\0",
            "Invalid restart offset\0",
            "File busy, try again later\0",
            "Input/output error\0",
            "Storage not ready: no card, or not formatted\0",
        );
        nth(TEXTS, self as usize)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl core::error::Error for Error {}

pub type Result<T> = core::result::Result<T, Error>;

/// A file system the engine can serve. All calls are synchronous and are
/// expected to return quickly (one medium operation, or a bounded batch).
pub trait Storage {
    /// An open file. The engine keeps at most one per session and always
    /// hands it back through [`Storage::close`].
    type File;

    /// Opens an existing file for reading, positioned at `offset`.
    fn open_read(&mut self, path: &str, offset: u64) -> Result<Self::File>;
    /// Opens a file for writing as `mode` says.
    fn open_write(&mut self, path: &str, mode: WriteMode) -> Result<Self::File>;
    /// Reads up to `buf.len()` bytes; `Ok(0)` at the end of the file.
    fn read(&mut self, file: &mut Self::File, buf: &mut [u8]) -> Result<usize>;
    /// Writes all of `data` (a short write is an error, usually `NoSpace`).
    fn write(&mut self, file: &mut Self::File, data: &[u8]) -> Result<()>;
    /// Closes the file; for a written file, returns only when data and
    /// directory entry are durable (see the module docs).
    fn close(&mut self, file: Self::File) -> Result<()>;

    /// Kind, size and modification time of a path (the root is a directory).
    fn metadata(&mut self, path: &str) -> Result<Metadata>;
    /// Calls `f` for the entries of directory `path`, skipping the first
    /// `skip` of them, in a stable order, until `f` returns `false`.
    /// The engine resumes a listing that did not fit the network buffer by
    /// calling again with a larger `skip`.
    fn list(
        &mut self,
        path: &str,
        skip: usize,
        f: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<()>;
    fn mkdir(&mut self, path: &str) -> Result<()>;
    /// Removes an empty directory.
    fn rmdir(&mut self, path: &str) -> Result<()>;
    /// Removes a file (not a directory).
    fn remove(&mut self, path: &str) -> Result<()>;
    /// Renames a file or directory; `to` must not exist.
    fn rename(&mut self, from: &str, to: &str) -> Result<()>;
    /// Free bytes on the medium, when known.
    fn free_space(&mut self) -> Option<u64> {
        None
    }
    /// Files open right now (reported by `STAT`, used by leak tests).
    fn open_files(&self) -> usize {
        0
    }
}

/// A storage lent by reference is a storage: a board can keep its volume in
/// a `static` and hand the application `&mut` to it.
impl<S: Storage + ?Sized> Storage for &mut S {
    type File = S::File;

    fn open_read(&mut self, path: &str, offset: u64) -> Result<Self::File> {
        (**self).open_read(path, offset)
    }
    fn open_write(&mut self, path: &str, mode: WriteMode) -> Result<Self::File> {
        (**self).open_write(path, mode)
    }
    fn read(&mut self, file: &mut Self::File, buf: &mut [u8]) -> Result<usize> {
        (**self).read(file, buf)
    }
    fn write(&mut self, file: &mut Self::File, data: &[u8]) -> Result<()> {
        (**self).write(file, data)
    }
    fn close(&mut self, file: Self::File) -> Result<()> {
        (**self).close(file)
    }
    fn metadata(&mut self, path: &str) -> Result<Metadata> {
        (**self).metadata(path)
    }
    fn list(
        &mut self,
        path: &str,
        skip: usize,
        f: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<()> {
        (**self).list(path, skip, f)
    }
    fn mkdir(&mut self, path: &str) -> Result<()> {
        (**self).mkdir(path)
    }
    fn rmdir(&mut self, path: &str) -> Result<()> {
        (**self).rmdir(path)
    }
    fn remove(&mut self, path: &str) -> Result<()> {
        (**self).remove(path)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        (**self).rename(from, to)
    }
    fn free_space(&mut self) -> Option<u64> {
        (**self).free_space()
    }
    fn open_files(&self) -> usize {
        (**self).open_files()
    }
}

/// The `i`th text of `texts`, a literal of texts each ended by a NUL (a
/// table without pointers and lengths); `""` past the end. One loop for
/// every such table (storage errors, the session's replies).
#[inline(never)]
pub(crate) fn nth(texts: &'static str, i: usize) -> &'static str {
    let mut skip = i;
    let mut start = 0;
    for (end, b) in texts.bytes().enumerate() {
        if b == 0 {
            if skip == 0 {
                return texts.get(start..end).unwrap_or("");
            }
            skip -= 1;
            start = end + 1;
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::Error as E;

    #[test]
    fn every_error_has_its_text() {
        let table = [
            (E::NotFound, "No such file or directory"),
            (E::NotADirectory, "Not a directory"),
            (E::IsADirectory, "Is a directory"),
            (E::AlreadyExists, "File exists"),
            (E::DirectoryNotEmpty, "Directory not empty"),
            (E::PermissionDenied, "Permission denied"),
            (E::NoSpace, "No space left on device"),
            (E::InvalidName, "File name not allowed"),
            (E::NameTooLong, "File name too long"),
            (E::InvalidOffset, "Invalid restart offset"),
            (E::Busy, "File busy, try again later"),
            (E::Io, "Input/output error"),
            (E::NotReady, "Storage not ready: no card, or not formatted"),
        ];
        for (e, text) in table {
            assert_eq!(e.text(), text, "{e:?}");
        }
    }
}
