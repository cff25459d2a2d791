//! `&mut S` as an [`ftpd::Storage`]: the FAT volume (its 32 KiB block cache
//! included) lives in a `static`, and the application holds this reference,
//! so the volume is never moved through the stack.

use ftpd::storage::{DirEntry, Metadata, Result, Storage, WriteMode};

pub struct StorageRef<'a, S>(pub &'a mut S);

impl<S: Storage> Storage for StorageRef<'_, S> {
    type File = S::File;

    fn open_read(&mut self, path: &str, offset: u64) -> Result<S::File> {
        self.0.open_read(path, offset)
    }
    fn open_write(&mut self, path: &str, mode: WriteMode) -> Result<S::File> {
        self.0.open_write(path, mode)
    }
    fn read(&mut self, file: &mut S::File, buf: &mut [u8]) -> Result<usize> {
        self.0.read(file, buf)
    }
    fn write(&mut self, file: &mut S::File, data: &[u8]) -> Result<()> {
        self.0.write(file, data)
    }
    fn close(&mut self, file: S::File) -> Result<()> {
        self.0.close(file)
    }
    fn metadata(&mut self, path: &str) -> Result<Metadata> {
        self.0.metadata(path)
    }
    fn list(
        &mut self,
        path: &str,
        skip: usize,
        f: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<()> {
        self.0.list(path, skip, f)
    }
    fn mkdir(&mut self, path: &str) -> Result<()> {
        self.0.mkdir(path)
    }
    fn rmdir(&mut self, path: &str) -> Result<()> {
        self.0.rmdir(path)
    }
    fn remove(&mut self, path: &str) -> Result<()> {
        self.0.remove(path)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        self.0.rename(from, to)
    }
    fn free_space(&mut self) -> Option<u64> {
        self.0.free_space()
    }
    fn open_files(&self) -> usize {
        self.0.open_files()
    }
}
