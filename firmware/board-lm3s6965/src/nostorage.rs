//! A placeholder [`ftpd::Storage`]: an empty, read-only root. Used only until
//! the FAT backend (`ftpd-fat`) is wired in, so the application can already
//! be booted and measured on this board.

use ftpd::storage::{DirEntry, Error, Kind, Metadata, Result, Storage, WriteMode};

pub struct NoStorage;

impl Storage for NoStorage {
    type File = ();

    fn open_read(&mut self, _: &str, _: u64) -> Result<()> {
        Err(Error::NotFound)
    }
    fn open_write(&mut self, _: &str, _: WriteMode) -> Result<()> {
        Err(Error::PermissionDenied)
    }
    fn read(&mut self, _: &mut (), _: &mut [u8]) -> Result<usize> {
        Ok(0)
    }
    fn write(&mut self, _: &mut (), _: &[u8]) -> Result<()> {
        Err(Error::PermissionDenied)
    }
    fn close(&mut self, _: ()) -> Result<()> {
        Ok(())
    }
    fn metadata(&mut self, path: &str) -> Result<Metadata> {
        if path == "/" {
            Ok(Metadata { kind: Kind::Dir, size: 0, modified: None })
        } else {
            Err(Error::NotFound)
        }
    }
    fn list(&mut self, path: &str, _: usize, _: &mut dyn FnMut(&DirEntry<'_>) -> bool) -> Result<()> {
        if path == "/" { Ok(()) } else { Err(Error::NotFound) }
    }
    fn mkdir(&mut self, _: &str) -> Result<()> {
        Err(Error::PermissionDenied)
    }
    fn rmdir(&mut self, _: &str) -> Result<()> {
        Err(Error::PermissionDenied)
    }
    fn remove(&mut self, _: &str) -> Result<()> {
        Err(Error::PermissionDenied)
    }
    fn rename(&mut self, _: &str, _: &str) -> Result<()> {
        Err(Error::PermissionDenied)
    }
}
