//! The device as embedded-sdmmc sees it: our [`BlockCache`], plus a
//! partition table that says exactly where the volume is.
//!
//! embedded-sdmmc insists on an MBR whose first entry is a FAT16/FAT32
//! partition. Block 0 of a [`Disk`] is therefore always a one-entry
//! partition table made here. For a partitioned device it describes the
//! partition `layout::locate` chose, and every other block is the device's
//! own. For a bare volume (`mkfs.fat` without a partition table, sector 0 is
//! the boot sector) the partition starts at block 1 and block `n` is the
//! device's block `n - 1`.
//!
//! The crate's own code reaches the same blocks through [`Blocks`], in the
//! same numbering, so the library and this crate always agree.

use core::cell::RefCell;

use embedded_sdmmc::{Block, BlockCount, BlockDevice, BlockIdx};
use ftpd::storage::Error;

use crate::cache::{BlockCache, CacheStats, DiskError};
use crate::layout::{FatType, Location};

/// See the module docs.
pub struct Disk<D: BlockDevice, const LINES: usize, const LINE_BLOCKS: usize> {
    cache: BlockCache<D, LINES, LINE_BLOCKS>,
    /// 1 for a bare volume, else 0.
    shift: u32,
    /// The one partition block 0 describes (made up when it is read, rather
    /// than kept as a 512-byte block); `None` before [`Disk::place`].
    part: Option<Part>,
    /// The last device error, kept for diagnostics (storage errors only say
    /// "I/O error").
    last_error: RefCell<Option<DiskError<D::Error>>>,
}

/// The partition table entry of block 0.
#[derive(Clone, Copy)]
struct Part {
    kind: u8,
    start: u32,
    sectors: u32,
}

impl<D: BlockDevice, const LINES: usize, const LINE_BLOCKS: usize> Disk<D, LINES, LINE_BLOCKS> {
    /// The device with the volume at `loc`.
    pub fn new(
        cache: BlockCache<D, LINES, LINE_BLOCKS>,
        loc: &Location,
        fat_type: FatType,
    ) -> Self {
        let mut disk = Self::unplaced(cache);
        disk.place(loc, fat_type);
        disk
    }

    /// The device before anyone knows where the volume is: block 0 reads as
    /// an empty partition table until [`Disk::place`].
    pub fn unplaced(cache: BlockCache<D, LINES, LINE_BLOCKS>) -> Self {
        Disk {
            cache,
            shift: 0,
            part: None,
            last_error: RefCell::new(None),
        }
    }

    /// Says where the volume is (after `layout::locate` found it).
    pub fn place(&mut self, loc: &Location, fat_type: FatType) {
        self.shift = u32::from(loc.bare);
        self.part = Some(Part {
            kind: match fat_type {
                FatType::Fat32 => 0x0C,
                FatType::Fat16 => 0x0E,
            },
            start: loc.start + self.shift,
            sectors: loc.sectors,
        });
    }

    /// Block 0: a partition table with one entry, the volume.
    fn mbr(&self, b: &mut [u8; 512]) {
        b.fill(0);
        if let Some(p) = self.part {
            let e = &mut b[446..462];
            e[4] = p.kind;
            e[8..12].copy_from_slice(&p.start.to_le_bytes());
            e[12..16].copy_from_slice(&p.sectors.to_le_bytes());
        }
        b[510] = 0x55;
        b[511] = 0xAA;
    }

    /// Keeps the FAT copies of the volume in one place in the cache (see
    /// [`BlockCache::set_mirror`]); `g` is in this numbering.
    pub fn set_fat_mirror(
        &mut self,
        g: &crate::layout::Geometry,
    ) -> Result<(), DiskError<D::Error>> {
        let start = g
            .fat_start
            .checked_sub(self.shift)
            .ok_or(DiskError::OutOfRange)?;
        self.cache.set_mirror(start, g.fat_size, g.num_fats)
    }

    /// Where the volume starts in this numbering.
    pub fn lba(&self, loc: &Location) -> u32 {
        loc.start + self.shift
    }

    pub fn stats(&self) -> CacheStats {
        self.cache.stats()
    }

    pub fn cache(&self) -> &BlockCache<D, LINES, LINE_BLOCKS> {
        &self.cache
    }

    pub fn cache_mut(&mut self) -> &mut BlockCache<D, LINES, LINE_BLOCKS> {
        &mut self.cache
    }

    pub fn into_cache(self) -> BlockCache<D, LINES, LINE_BLOCKS> {
        self.cache
    }

    /// Takes the last device error seen through [`Blocks`].
    pub fn take_error(&self) -> Option<DiskError<D::Error>> {
        self.last_error.borrow_mut().take()
    }

    fn real(&self, idx: u32) -> Result<u32, DiskError<D::Error>> {
        if idx == 0 {
            // Block 0 is ours; nothing but the library's mount reads it.
            return Err(DiskError::OutOfRange);
        }
        Ok(idx - self.shift)
    }

    fn fail(&self, e: DiskError<D::Error>) -> Error {
        *self.last_error.borrow_mut() = Some(e);
        Error::Io
    }
}

impl<D: BlockDevice, const LINES: usize, const LINE_BLOCKS: usize> BlockDevice
    for Disk<D, LINES, LINE_BLOCKS>
{
    type Error = DiskError<D::Error>;

    fn read(&self, blocks: &mut [Block], start: BlockIdx) -> Result<(), Self::Error> {
        for (k, out) in blocks.iter_mut().enumerate() {
            let idx = start.0 + k as u32;
            if idx == 0 {
                self.mbr(&mut out.contents);
            } else {
                self.cache
                    .read_block(self.real(idx)?, |b| out.contents = b.contents)?;
            }
        }
        Ok(())
    }

    fn write(&self, blocks: &[Block], start: BlockIdx) -> Result<(), Self::Error> {
        for (k, block) in blocks.iter().enumerate() {
            let idx = self.real(start.0 + k as u32)?;
            self.cache
                .overwrite_block(idx, |b| b.contents = block.contents)?;
        }
        Ok(())
    }

    fn num_blocks(&self) -> Result<BlockCount, Self::Error> {
        Ok(BlockCount(self.cache.size() + self.shift))
    }
}

/// Block access for this crate's own FAT and directory code. Errors are
/// already storage errors (`Io`); the device's own error is kept by the
/// [`Disk`].
pub trait Blocks {
    /// Calls `f` with block `idx`.
    fn view<R>(&self, idx: u32, f: impl FnOnce(&[u8; 512]) -> R) -> Result<R, Error>;
    /// Calls `f` to change block `idx`.
    fn modify<R>(&self, idx: u32, f: impl FnOnce(&mut [u8; 512]) -> R) -> Result<R, Error>;
    /// Calls `f` to fill block `idx` from scratch (it gets zeros).
    fn fill(&self, idx: u32, f: impl FnOnce(&mut [u8; 512])) -> Result<(), Error>;
    /// Makes every change so far durable.
    fn flush(&self) -> Result<(), Error>;
}

impl<D: BlockDevice, const LINES: usize, const LINE_BLOCKS: usize> Blocks
    for Disk<D, LINES, LINE_BLOCKS>
{
    fn view<R>(&self, idx: u32, f: impl FnOnce(&[u8; 512]) -> R) -> Result<R, Error> {
        let idx = self.real(idx).map_err(|e| self.fail(e))?;
        self.cache
            .read_block(idx, |b| f(&b.contents))
            .map_err(|e| self.fail(e))
    }

    fn modify<R>(&self, idx: u32, f: impl FnOnce(&mut [u8; 512]) -> R) -> Result<R, Error> {
        let idx = self.real(idx).map_err(|e| self.fail(e))?;
        self.cache
            .modify_block(idx, |b| f(&mut b.contents))
            .map_err(|e| self.fail(e))
    }

    fn fill(&self, idx: u32, f: impl FnOnce(&mut [u8; 512])) -> Result<(), Error> {
        let idx = self.real(idx).map_err(|e| self.fail(e))?;
        self.cache
            .overwrite_block(idx, |b| f(&mut b.contents))
            .map_err(|e| self.fail(e))
    }

    fn flush(&self) -> Result<(), Error> {
        self.cache.flush().map_err(|e| self.fail(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::RamDisk;

    #[test]
    fn bare_volumes_are_shifted_behind_a_made_up_partition_table() {
        let cache: BlockCache<_, 2, 4> = BlockCache::new(RamDisk::new(100)).unwrap();
        let disk = Disk::new(
            cache,
            &Location {
                start: 0,
                sectors: 100,
                bare: true,
            },
            FatType::Fat32,
        );
        let mut b = [Block::new()];
        disk.read(&mut b, BlockIdx(0)).unwrap();
        assert_eq!(&b[0][510..], &[0x55, 0xAA]);
        assert_eq!(b[0][446 + 4], 0x0C);
        assert_eq!(&b[0][446 + 8..446 + 12], &1u32.to_le_bytes());
        assert_eq!(&b[0][446 + 12..446 + 16], &100u32.to_le_bytes());
        disk.read(&mut b, BlockIdx(1)).unwrap();
        assert_eq!(b[0][0], 0, "block 1 is the device's block 0");
        assert_eq!(disk.view(5, |b| b[0]), Ok(4));
        assert_eq!(disk.num_blocks().unwrap(), BlockCount(101));
        assert_eq!(disk.view(0, |_| ()), Err(Error::Io));
        assert!(matches!(disk.take_error(), Some(DiskError::OutOfRange)));
        assert_eq!(disk.view(101, |_| ()), Err(Error::Io));
    }

    #[test]
    fn partitioned_volumes_keep_their_numbers() {
        let cache: BlockCache<_, 2, 4> = BlockCache::new(RamDisk::new(100)).unwrap();
        let disk = Disk::new(
            cache,
            &Location {
                start: 8,
                sectors: 92,
                bare: false,
            },
            FatType::Fat16,
        );
        let mut b = [Block::new()];
        disk.read(&mut b, BlockIdx(0)).unwrap();
        assert_eq!(b[0][446 + 4], 0x0E);
        assert_eq!(&b[0][446 + 8..446 + 12], &8u32.to_le_bytes());
        assert_eq!(disk.view(8, |b| b[0]), Ok(8));
        disk.fill(9, |b| b[0] = 0x99).unwrap();
        disk.flush().unwrap();
        assert_eq!(disk.cache().inner().blocks.borrow()[9][0], 0x99);
        assert!(
            disk.write(&[Block::new()], BlockIdx(0)).is_err(),
            "the made-up table is read-only"
        );
    }

    #[test]
    fn an_unplaced_disk_shows_an_empty_partition_table() {
        let cache: BlockCache<_, 2, 4> = BlockCache::new(RamDisk::new(100)).unwrap();
        let mut disk = Disk::unplaced(cache);
        let mut b = [Block::new()];
        disk.read(&mut b, BlockIdx(0)).unwrap();
        assert_eq!(&b[0][510..], &[0x55, 0xAA]);
        assert!(b[0][446..510].iter().all(|&x| x == 0));
        disk.place(
            &Location {
                start: 0,
                sectors: 100,
                bare: true,
            },
            FatType::Fat16,
        );
        disk.read(&mut b, BlockIdx(0)).unwrap();
        assert_eq!(b[0][446 + 4], 0x0E);
        assert_eq!(disk.view(1, |b| b[0]), Ok(0));
    }
}
