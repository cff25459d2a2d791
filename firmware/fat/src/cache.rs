//! A small write-back block cache with read-ahead, between embedded-sdmmc and
//! the device.
//!
//! embedded-sdmmc keeps one 512-byte block of its own and asks the device for
//! one block at a time. On an SD card every command costs far more than the
//! 512 bytes it moves, so this layer turns that trickle into multi-block
//! commands:
//!
//! - the cache is `LINES` lines of `LINE_BLOCKS` consecutive blocks, aligned
//!   on multiples of `LINE_BLOCKS`;
//! - a read miss fills the whole line with one multi-block read (read-ahead:
//!   the next blocks of a file, of a directory or of the FAT are usually
//!   next);
//! - a write of a whole block never reads; writes stay in the line (write
//!   back) until the line is evicted or [`BlockCache::flush`] runs, and then go
//!   out as one multi-block write per run of dirty blocks. FAT blocks, which
//!   the library rewrites for every cluster it allocates, reach the card once;
//! - eviction is least-recently-used.
//!
//! Nothing is durable until [`BlockCache::flush`]: the storage layer flushes
//! at every point where the file system must be consistent on the medium
//! (closing a written file, after each directory change), so ordering between
//! those points is this cache's choice (ascending block numbers).
//!
//! RAM: `LINES * LINE_BLOCKS * 512` bytes plus a few words per line.
//!
//! Measured (`cargo run -p ftpd-fat --release --example throughput`, a
//! 16 MiB upload in 1460-byte pieces to a 64 MiB FAT32 image with 512-byte
//! clusters, then a download): with one 1-block line, 163 856 write and
//! 34 025 read commands; 4 x 2 blocks, 16 904 and 17 142; 8 x 16 blocks,
//! 2 088 and 2 373 (about 16 blocks per command). The library alone would
//! send one command per block and rewrite two FAT blocks per cluster.

use core::cell::RefCell;
use core::fmt;

use embedded_sdmmc::{Block, BlockCount, BlockDevice, BlockIdx};

/// A device error, or an access outside the device (a corrupt cluster number
/// can point anywhere).
#[derive(Debug)]
pub enum DiskError<E> {
    Device(E),
    OutOfRange,
}

impl<E: fmt::Display> fmt::Display for DiskError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskError::Device(e) => write!(f, "{e}"),
            DiskError::OutOfRange => f.write_str("block outside the device"),
        }
    }
}

impl<E: core::error::Error> core::error::Error for DiskError<E> {}

/// Counters of what the cache did, to measure its effect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Block accesses served from the cache.
    pub hits: u32,
    /// Block accesses that needed the device.
    pub misses: u32,
    /// Read commands sent to the device, and the blocks they moved.
    pub read_cmds: u32,
    pub read_blocks: u32,
    /// Write commands sent to the device, and the blocks they moved.
    pub write_cmds: u32,
    pub write_blocks: u32,
}

/// What [`BlockCache::bench_sequential`] measured: the storage ceiling of
/// the path file data takes (one multi-block command per cache line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqBench {
    /// Blocks read, and then written back.
    pub blocks: u32,
    /// Time of the read pass, in the units of the caller's clock.
    pub read_time: u64,
    /// Time of the write pass (the writes alone), same units.
    pub write_time: u64,
}

impl SeqBench {
    /// Bytes moved in each pass.
    pub fn bytes(&self) -> u64 {
        u64::from(self.blocks) * 512
    }
}

struct Line<const B: usize> {
    /// First block of the line; meaningful when `used`.
    base: u32,
    used: bool,
    /// Bit i: block `base + i` holds data.
    valid: u64,
    /// Bit i: block `base + i` differs from the device.
    dirty: u64,
    /// Last access, for LRU.
    stamp: u32,
    data: [Block; B],
}

impl<const B: usize> Line<B> {
    fn new() -> Self {
        Line {
            base: 0,
            used: false,
            valid: 0,
            dirty: 0,
            stamp: 0,
            data: core::array::from_fn(|_| Block::new()),
        }
    }
}

struct State<const L: usize, const B: usize> {
    lines: [Line<B>; L],
    clock: u32,
    stats: CacheStats,
}

/// See the module docs.
pub struct BlockCache<D, const LINES: usize, const LINE_BLOCKS: usize> {
    dev: D,
    /// Blocks on the device.
    size: u32,
    /// Mirrored FAT copies, see [`BlockCache::set_mirror`].
    mirror: Option<Mirror>,
    state: RefCell<State<LINES, LINE_BLOCKS>>,
}

/// Blocks `start..start + len` are kept in `copies` copies, the next copy
/// `len` blocks after the previous one (the FATs of a FAT volume).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mirror {
    start: u32,
    len: u32,
    copies: u32,
}

fn bit(i: usize) -> u64 {
    1u64 << i
}

impl<D: BlockDevice, const LINES: usize, const LINE_BLOCKS: usize>
    BlockCache<D, LINES, LINE_BLOCKS>
{
    const SHAPE_OK: () = assert!(
        LINES >= 1 && LINE_BLOCKS >= 1 && LINE_BLOCKS <= 64,
        "a cache needs at least one line of 1 to 64 blocks"
    );

    /// Wraps `dev`; asks it for its size once.
    pub fn new(dev: D) -> Result<Self, DiskError<D::Error>> {
        let mut cache = Self::detached(dev);
        cache.restart()?;
        Ok(cache)
    }

    /// Wraps `dev` without a word to it (it may not be ready yet): every
    /// block is out of range until [`BlockCache::restart`].
    pub fn detached(dev: D) -> Self {
        let () = Self::SHAPE_OK;
        BlockCache {
            dev,
            size: 0,
            mirror: None,
            state: RefCell::new(State {
                lines: core::array::from_fn(|_| Line::new()),
                clock: 0,
                stats: CacheStats::default(),
            }),
        }
    }

    /// Starts afresh on a device that was (re)initialised: drops every line,
    /// changed ones too, and asks the device for its size.
    pub fn restart(&mut self) -> Result<(), DiskError<D::Error>> {
        for line in self.state.get_mut().lines.iter_mut() {
            line.used = false;
            line.valid = 0;
            line.dirty = 0;
        }
        self.size = 0;
        self.mirror = None;
        self.size = self.dev.num_blocks().map_err(DiskError::Device)?.0;
        Ok(())
    }

    /// Declares blocks `start..start + len` mirrored `copies` times in a
    /// row (the FATs: `copies` = the number of FATs, `len` = one FAT's
    /// size). Every copy after the first becomes an alias of the first: reads
    /// and writes of a copy's block are reads and writes of the first copy's
    /// block, and writing a block of the first copy back to the device writes
    /// it to every copy. The FATs then take one line of the cache instead of
    /// one per copy: the library rewrites a FAT block in both copies for
    /// every cluster a file grows by, and with few lines each copy would
    /// evict the other (and the file data) at every cluster.
    ///
    /// The copies must hold the same data (a mirrored FAT); dirty lines are
    /// flushed first. [`BlockCache::restart`] forgets the mirror.
    pub fn set_mirror(
        &mut self,
        start: u32,
        len: u32,
        copies: u32,
    ) -> Result<(), DiskError<D::Error>> {
        self.flush()?;
        self.invalidate_clean();
        self.mirror = (copies > 1 && len > 0).then_some(Mirror { start, len, copies });
        Ok(())
    }

    /// The block that stands for `idx`: the first copy for a block of a
    /// mirror copy, else `idx`.
    fn alias(&self, idx: u32) -> u32 {
        match self.mirror {
            Some(m)
                if idx >= m.start + m.len
                    && u64::from(idx)
                        < u64::from(m.start) + u64::from(m.len) * u64::from(m.copies) =>
            {
                m.start + (idx - m.start) % m.len
            }
            _ => idx,
        }
    }

    /// Blocks on the device.
    pub fn size(&self) -> u32 {
        self.size
    }

    pub fn stats(&self) -> CacheStats {
        self.state.borrow().stats
    }

    /// The device underneath. Reading it directly bypasses unflushed data.
    pub fn inner(&self) -> &D {
        &self.dev
    }

    /// Gives the device back. Unflushed data is lost: flush first.
    pub fn into_inner(self) -> D {
        self.dev
    }

    /// Calls `f` with block `idx`.
    pub fn read_block<R>(
        &self,
        idx: u32,
        f: impl FnOnce(&Block) -> R,
    ) -> Result<R, DiskError<D::Error>> {
        let mut st = self.state.borrow_mut();
        let (l, i) = self.locate(&mut st, idx, true)?;
        Ok(f(&st.lines[l].data[i]))
    }

    /// Calls `f` to change block `idx` (read first if needed).
    pub fn modify_block<R>(
        &self,
        idx: u32,
        f: impl FnOnce(&mut Block) -> R,
    ) -> Result<R, DiskError<D::Error>> {
        let mut st = self.state.borrow_mut();
        let (l, i) = self.locate(&mut st, idx, true)?;
        let line = &mut st.lines[l];
        line.dirty |= bit(i);
        Ok(f(&mut line.data[i]))
    }

    /// Calls `f` to write all of block `idx`; its old content is not read
    /// (`f` gets a zeroed block).
    pub fn overwrite_block(
        &self,
        idx: u32,
        f: impl FnOnce(&mut Block),
    ) -> Result<(), DiskError<D::Error>> {
        let mut st = self.state.borrow_mut();
        let (l, i) = self.locate(&mut st, idx, false)?;
        let line = &mut st.lines[l];
        line.data[i].fill(0);
        f(&mut line.data[i]);
        line.valid |= bit(i);
        line.dirty |= bit(i);
        Ok(())
    }

    /// Writes every dirty block to the device, lowest block numbers first.
    pub fn flush(&self) -> Result<(), DiskError<D::Error>> {
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        loop {
            let next = (0..LINES)
                .filter(|&l| st.lines[l].used && st.lines[l].dirty != 0)
                .min_by_key(|&l| st.lines[l].base);
            let Some(l) = next else { return Ok(()) };
            Self::write_back(&self.dev, self.mirror, &mut st.lines[l], &mut st.stats)?;
        }
    }

    /// The storage ceiling (issue 6): reads `blocks` blocks from `start`
    /// (fewer if the device ends first) in order, one line of `LINE_BLOCKS`
    /// blocks per command, timed; then goes over them again, reading each
    /// line and writing it back unchanged, and times the writes. `now`
    /// is any clock (ms on a board, µs on the host); the result is in its
    /// units. The write time is the second pass's time less the first
    /// pass's: a board's millisecond clock is too coarse for one command.
    ///
    /// Dirty lines are flushed first and every line is dropped at the end
    /// (a line's buffer carries the data), so the medium ends as it was,
    /// changes made before the call included. Nothing else may use the
    /// device meanwhile.
    pub fn bench_sequential(
        &self,
        start: u32,
        blocks: u32,
        now: &mut dyn FnMut() -> u64,
    ) -> Result<SeqBench, DiskError<D::Error>> {
        self.flush()?;
        if start >= self.size {
            return Err(DiskError::OutOfRange);
        }
        let blocks = blocks.min(self.size - start);
        let end = start + blocks;
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        for line in st.lines.iter_mut() {
            line.used = false;
            line.valid = 0;
            line.dirty = 0;
        }
        let buf = &mut st.lines[0].data;
        let chunks = || {
            (start..end)
                .step_by(LINE_BLOCKS)
                .map(move |at| (at, (end - at).min(LINE_BLOCKS as u32) as usize))
        };
        let t0 = now();
        for (at, n) in chunks() {
            self.dev
                .read(&mut buf[..n], BlockIdx(at))
                .map_err(DiskError::Device)?;
        }
        let t1 = now();
        for (at, n) in chunks() {
            self.dev
                .read(&mut buf[..n], BlockIdx(at))
                .map_err(DiskError::Device)?;
            self.dev
                .write(&buf[..n], BlockIdx(at))
                .map_err(DiskError::Device)?;
        }
        let t2 = now();
        let n = chunks().count() as u32;
        st.stats.read_cmds += 2 * n;
        st.stats.read_blocks += 2 * blocks;
        st.stats.write_cmds += n;
        st.stats.write_blocks += blocks;
        let read_time = t1.saturating_sub(t0);
        Ok(SeqBench {
            blocks,
            read_time,
            write_time: t2.saturating_sub(t1).saturating_sub(read_time),
        })
    }

    /// Drops every clean line (after the device was changed behind our back).
    pub fn invalidate_clean(&self) {
        for line in self.state.borrow_mut().lines.iter_mut() {
            if line.dirty == 0 {
                line.used = false;
            }
        }
    }

    /// Finds (or loads) the line holding `idx`: returns (line, index in line).
    /// With `need_data`, the block's content is read if the cache lacks it.
    fn locate(
        &self,
        st: &mut State<LINES, LINE_BLOCKS>,
        idx: u32,
        need_data: bool,
    ) -> Result<(usize, usize), DiskError<D::Error>> {
        if idx >= self.size {
            return Err(DiskError::OutOfRange);
        }
        let idx = self.alias(idx);
        let b = LINE_BLOCKS as u32;
        let base = idx - idx % b;
        let i = (idx - base) as usize;
        st.clock = st.clock.wrapping_add(1);
        let clock = st.clock;
        let found = (0..LINES).find(|&l| st.lines[l].used && st.lines[l].base == base);
        let l = match found {
            Some(l) => l,
            None => {
                let l = self.evict(st)?;
                let line = &mut st.lines[l];
                line.base = base;
                line.used = true;
                line.valid = 0;
                line.dirty = 0;
                l
            }
        };
        let line = &mut st.lines[l];
        line.stamp = clock;
        if need_data && line.valid & bit(i) == 0 {
            st.stats.misses += 1;
            // Read the run of missing blocks around `i` (the whole line after
            // a fresh load), never past the device's end.
            let in_dev = (self.size - base).min(b) as usize;
            let mut lo = i;
            while lo > 0 && line.valid & bit(lo - 1) == 0 {
                lo -= 1;
            }
            let mut hi = i + 1;
            while hi < in_dev && line.valid & bit(hi) == 0 {
                hi += 1;
            }
            self.dev
                .read(&mut line.data[lo..hi], BlockIdx(base + lo as u32))
                .map_err(DiskError::Device)?;
            st.stats.read_cmds += 1;
            st.stats.read_blocks += (hi - lo) as u32;
            for k in lo..hi {
                line.valid |= bit(k);
            }
        } else if need_data {
            st.stats.hits += 1;
        }
        Ok((l, i))
    }

    /// Frees a line. Unused lines first; then clean lines (free to drop);
    /// then lines written whole (a finished stretch of file data: one
    /// command writes it); then anything. Oldest first within each kind, so
    /// that the FAT blocks the library rewrites for every cluster stay put
    /// while file data streams through.
    fn evict(&self, st: &mut State<LINES, LINE_BLOCKS>) -> Result<usize, DiskError<D::Error>> {
        if let Some(l) = (0..LINES).find(|&l| !st.lines[l].used) {
            return Ok(l);
        }
        let clock = st.clock;
        let full = if LINE_BLOCKS == 64 {
            u64::MAX
        } else {
            (1u64 << LINE_BLOCKS) - 1
        };
        let kind = |line: &Line<LINE_BLOCKS>| match line.dirty {
            0 => 0,
            d if d == full => 1,
            _ => 2,
        };
        let l = (0..LINES)
            .min_by_key(|&l| {
                (
                    kind(&st.lines[l]),
                    core::cmp::Reverse(clock.wrapping_sub(st.lines[l].stamp)),
                )
            })
            .unwrap_or(0);
        Self::write_back(&self.dev, self.mirror, &mut st.lines[l], &mut st.stats)?;
        st.lines[l].used = false;
        Ok(l)
    }

    /// Writes a line's dirty blocks: each stretch from a dirty block to the
    /// last dirty block reachable through valid blocks is one command (clean
    /// valid blocks in between are rewritten rather than splitting the
    /// command).
    fn write_back(
        dev: &D,
        mirror: Option<Mirror>,
        line: &mut Line<LINE_BLOCKS>,
        stats: &mut CacheStats,
    ) -> Result<(), DiskError<D::Error>> {
        let mut i = 0;
        while i < LINE_BLOCKS {
            if line.dirty & bit(i) == 0 {
                i += 1;
                continue;
            }
            let mut last = i;
            let mut j = i + 1;
            while j < LINE_BLOCKS && line.valid & bit(j) != 0 {
                if line.dirty & bit(j) != 0 {
                    last = j;
                }
                j += 1;
            }
            let at = line.base + i as u32;
            dev.write(&line.data[i..=last], BlockIdx(at))
                .map_err(DiskError::Device)?;
            stats.write_cmds += 1;
            stats.write_blocks += (last + 1 - i) as u32;
            if let Some(m) = mirror {
                // The part of the run inside the first copy goes to the
                // other copies too.
                let lo = at.max(m.start);
                let hi = (line.base + last as u32 + 1).min(m.start + m.len);
                if lo < hi {
                    let from = (lo - line.base) as usize;
                    let to = (hi - line.base) as usize;
                    for k in 1..m.copies {
                        dev.write(&line.data[from..to], BlockIdx(lo + k * m.len))
                            .map_err(DiskError::Device)?;
                        stats.write_cmds += 1;
                        stats.write_blocks += (to - from) as u32;
                    }
                }
            }
            for k in i..=last {
                line.dirty &= !bit(k);
            }
            i = last + 1;
        }
        Ok(())
    }
}

impl<D: BlockDevice, const LINES: usize, const LINE_BLOCKS: usize> BlockDevice
    for BlockCache<D, LINES, LINE_BLOCKS>
{
    type Error = DiskError<D::Error>;

    fn read(&self, blocks: &mut [Block], start: BlockIdx) -> Result<(), Self::Error> {
        for (k, out) in blocks.iter_mut().enumerate() {
            self.read_block(start.0 + k as u32, |b| out.contents = b.contents)?;
        }
        Ok(())
    }

    fn write(&self, blocks: &[Block], start: BlockIdx) -> Result<(), Self::Error> {
        for (k, block) in blocks.iter().enumerate() {
            self.overwrite_block(start.0 + k as u32, |b| b.contents = block.contents)?;
        }
        Ok(())
    }

    fn num_blocks(&self) -> Result<BlockCount, Self::Error> {
        Ok(BlockCount(self.size))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::RefCell as StdRefCell;
    use std::vec::Vec;

    /// A RAM disk that logs every command.
    pub struct RamDisk {
        pub blocks: StdRefCell<Vec<[u8; 512]>>,
        pub log: StdRefCell<Vec<(char, u32, usize)>>,
        pub fail_writes: core::cell::Cell<bool>,
    }

    #[derive(Debug)]
    pub struct RamError;
    impl fmt::Display for RamError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("ram disk error")
        }
    }
    impl core::error::Error for RamError {}

    impl RamDisk {
        pub fn new(n: usize) -> Self {
            let blocks = (0..n).map(|i| [i as u8; 512]).collect();
            RamDisk {
                blocks: StdRefCell::new(blocks),
                log: StdRefCell::new(Vec::new()),
                fail_writes: false.into(),
            }
        }
        pub fn take_log(&self) -> Vec<(char, u32, usize)> {
            core::mem::take(&mut *self.log.borrow_mut())
        }
    }

    impl BlockDevice for RamDisk {
        type Error = RamError;
        fn read(&self, blocks: &mut [Block], start: BlockIdx) -> Result<(), RamError> {
            self.log.borrow_mut().push(('r', start.0, blocks.len()));
            let data = self.blocks.borrow();
            for (k, b) in blocks.iter_mut().enumerate() {
                b.contents = *data.get(start.0 as usize + k).ok_or(RamError)?;
            }
            Ok(())
        }
        fn write(&self, blocks: &[Block], start: BlockIdx) -> Result<(), RamError> {
            if self.fail_writes.get() {
                return Err(RamError);
            }
            self.log.borrow_mut().push(('w', start.0, blocks.len()));
            let mut data = self.blocks.borrow_mut();
            for (k, b) in blocks.iter().enumerate() {
                *data.get_mut(start.0 as usize + k).ok_or(RamError)? = b.contents;
            }
            Ok(())
        }
        fn num_blocks(&self) -> Result<BlockCount, RamError> {
            Ok(BlockCount(self.blocks.borrow().len() as u32))
        }
    }

    fn first_byte(c: &BlockCache<RamDisk, 2, 4>, idx: u32) -> u8 {
        c.read_block(idx, |b| b[0]).unwrap()
    }

    #[test]
    fn mirrored_copies_share_the_first_copys_lines_and_are_written_together() {
        // Blocks 4..7 mirrored at 7..10 (three copies would reach 13).
        let mut c: BlockCache<RamDisk, 2, 4> = BlockCache::new(RamDisk::new(16)).unwrap();
        c.set_mirror(4, 3, 2).unwrap();
        assert_eq!(first_byte(&c, 8), 5, "block 8 reads as block 5");
        c.inner().take_log();
        // Writing either copy changes the one cached block.
        c.modify_block(8, |b| b[0] = 0xa8).unwrap();
        assert_eq!(first_byte(&c, 5), 0xa8);
        c.overwrite_block(6, |b| b[0] = 0xa6).unwrap();
        assert_eq!(first_byte(&c, 9), 0xa6);
        assert!(c.inner().take_log().is_empty(), "all in the cache");
        c.flush().unwrap();
        // Line 4..8 holds 5 and 6 dirty (7 is a copy block: never dirty
        // there): one write for the first copy, one for the second.
        assert_eq!(c.inner().take_log(), [('w', 5, 2), ('w', 8, 2)]);
        let d = c.inner().blocks.borrow().clone();
        assert_eq!(
            (d[5][0], d[6][0], d[8][0], d[9][0]),
            (0xa8, 0xa6, 0xa8, 0xa6)
        );
        assert_eq!((d[4][0], d[7][0], d[10][0]), (4, 7, 10), "untouched");
        // Outside the copies nothing is aliased; restart forgets the mirror.
        assert_eq!(first_byte(&c, 10), 10);
        c.restart().unwrap();
        c.modify_block(8, |b| b[0] = 0x88).unwrap();
        c.flush().unwrap();
        assert_eq!(c.inner().blocks.borrow()[5][0], 0xa8);
        assert_eq!(c.inner().blocks.borrow()[8][0], 0x88);
    }

    #[test]
    fn bench_sequential_reads_and_rewrites_whole_lines_and_changes_nothing() {
        let c: BlockCache<RamDisk, 2, 4> = BlockCache::new(RamDisk::new(20)).unwrap();
        // A pending change is flushed first and survives.
        c.modify_block(1, |b| b[0] = 0xaa).unwrap();
        let before = {
            let mut d = c.inner().blocks.borrow().clone();
            d[1][0] = 0xaa;
            d
        };
        c.inner().take_log();
        let mut t = 0;
        let mut clock = || {
            t += 10;
            t
        };
        // 11 blocks from 6: lines of 4, the last one short (the device ends
        // at 20, so 14 are asked for and 14 = 4 + 4 + 4 + 2 are done).
        let r = c.bench_sequential(6, 100, &mut clock).unwrap();
        assert_eq!(r.blocks, 14);
        assert_eq!(r.bytes(), 14 * 512);
        assert_eq!(r.read_time, 10);
        assert_eq!(r.write_time, 0, "second pass (10) less the first (10)");
        let log = c.inner().take_log();
        let reads = [('r', 6, 4), ('r', 10, 4), ('r', 14, 4), ('r', 18, 2)];
        assert_eq!(&log[..1], &[('w', 1, 1)], "the flush");
        assert_eq!(&log[1..5], &reads);
        let rw: Vec<_> = reads
            .iter()
            .flat_map(|&(_, at, n)| [('r', at, n), ('w', at, n)])
            .collect();
        assert_eq!(&log[5..], &rw[..]);
        assert_eq!(*c.inner().blocks.borrow(), before);
        // The cache starts afresh: the next read goes to the device.
        assert_eq!(first_byte(&c, 1), 0xaa);
        assert_eq!(c.inner().take_log(), [('r', 0, 4)]);
        assert!(matches!(
            c.bench_sequential(20, 1, &mut clock),
            Err(DiskError::OutOfRange)
        ));
    }

    #[test]
    fn a_detached_cache_touches_nothing_until_restarted() {
        let mut c: BlockCache<_, 2, 4> = BlockCache::detached(RamDisk::new(64));
        assert!(c.inner().take_log().is_empty());
        assert!(matches!(
            c.read_block(1, |_| ()),
            Err(DiskError::OutOfRange)
        ));
        c.restart().unwrap();
        assert_eq!(c.size(), 64);
        c.modify_block(5, |b| b[0] = 0xEE).unwrap();
        // A restart forgets changes that were never flushed.
        c.restart().unwrap();
        assert_eq!(first_byte(&c, 5), 5);
        c.flush().unwrap();
        assert!(c.inner().take_log().iter().all(|&(op, ..)| op == 'r'));
    }

    #[test]
    fn read_miss_fills_the_aligned_line_in_one_command() {
        let c: BlockCache<_, 2, 4> = BlockCache::new(RamDisk::new(64)).unwrap();
        assert_eq!(first_byte(&c, 5), 5);
        assert_eq!(c.inner().take_log(), vec![('r', 4, 4)]);
        for i in 4..8 {
            assert_eq!(first_byte(&c, i), i as u8);
        }
        assert!(c.inner().take_log().is_empty());
        let s = c.stats();
        assert_eq!((s.misses, s.hits, s.read_cmds, s.read_blocks), (1, 4, 1, 4));
    }

    #[test]
    fn lines_stop_at_the_device_end_and_out_of_range_is_an_error() {
        let c: BlockCache<_, 2, 4> = BlockCache::new(RamDisk::new(6)).unwrap();
        assert_eq!(first_byte(&c, 5), 5);
        assert_eq!(c.inner().take_log(), vec![('r', 4, 2)]);
        assert!(matches!(
            c.read_block(6, |_| ()),
            Err(DiskError::OutOfRange)
        ));
        assert!(matches!(
            c.overwrite_block(100, |_| ()),
            Err(DiskError::OutOfRange)
        ));
    }

    #[test]
    fn whole_block_writes_never_read_and_coalesce_on_flush() {
        let c: BlockCache<_, 2, 4> = BlockCache::new(RamDisk::new(64)).unwrap();
        for i in 8..12 {
            c.overwrite_block(i, |b| b.fill(0xA0 + i as u8)).unwrap();
        }
        assert!(
            c.inner().take_log().is_empty(),
            "nothing reaches the device before a flush"
        );
        c.flush().unwrap();
        assert_eq!(c.inner().take_log(), vec![('w', 8, 4)]);
        assert_eq!(c.inner().blocks.borrow()[9], [0xA9; 512]);
        // Flushing again writes nothing.
        c.flush().unwrap();
        assert!(c.inner().take_log().is_empty());
    }

    #[test]
    fn partial_lines_read_only_the_missing_run() {
        let c: BlockCache<_, 2, 4> = BlockCache::new(RamDisk::new(64)).unwrap();
        c.overwrite_block(9, |b| b.fill(0xEE)).unwrap();
        // Block 8 is missing: reading it reads 8 alone (9 is cached).
        assert_eq!(first_byte(&c, 8), 8);
        assert_eq!(c.inner().take_log(), vec![('r', 8, 1)]);
        // 10 and 11 are read together.
        assert_eq!(first_byte(&c, 11), 11);
        assert_eq!(c.inner().take_log(), vec![('r', 10, 2)]);
        assert_eq!(first_byte(&c, 9), 0xEE);
        c.flush().unwrap();
        assert_eq!(c.inner().take_log(), vec![('w', 9, 1)]);
    }

    #[test]
    fn dirty_runs_with_clean_gaps_are_one_command() {
        let c: BlockCache<_, 1, 8> = BlockCache::new(RamDisk::new(64)).unwrap();
        c.read_block(0, |_| ()).unwrap();
        c.inner().take_log();
        c.modify_block(1, |b| b[0] = 0x11).unwrap();
        c.modify_block(3, |b| b[0] = 0x33).unwrap();
        c.modify_block(6, |b| b[0] = 0x66).unwrap();
        c.flush().unwrap();
        assert_eq!(c.inner().take_log(), vec![('w', 1, 6)]);
        let data = c.inner().blocks.borrow();
        assert_eq!(
            (data[1][0], data[2][0], data[3][0], data[6][0]),
            (0x11, 2, 0x33, 0x66)
        );
        assert_eq!(data[1][1], 1, "the rest of a modified block is kept");
    }

    #[test]
    fn dirty_blocks_separated_by_missing_blocks_are_separate_commands() {
        let c: BlockCache<_, 1, 8> = BlockCache::new(RamDisk::new(64)).unwrap();
        c.overwrite_block(0, |b| b.fill(1)).unwrap();
        c.overwrite_block(2, |b| b.fill(2)).unwrap();
        c.flush().unwrap();
        assert_eq!(c.inner().take_log(), vec![('w', 0, 1), ('w', 2, 1)]);
    }

    #[test]
    fn eviction_prefers_clean_then_whole_then_oldest_lines() {
        let c: BlockCache<_, 3, 2> = BlockCache::new(RamDisk::new(64)).unwrap();
        c.overwrite_block(0, |b| b.fill(0xAA)).unwrap(); // line 0..2, half dirty (oldest)
        c.overwrite_block(2, |_| ()).unwrap(); // line 2..4, written whole
        c.overwrite_block(3, |_| ()).unwrap();
        c.read_block(4, |_| ()).unwrap(); // line 4..6, clean (newest)
        c.inner().take_log();
        // The clean line goes first, though it is the newest.
        c.read_block(8, |_| ()).unwrap();
        assert_eq!(c.inner().take_log(), vec![('r', 8, 2)]);
        // Then the line written whole, though line 0..2 is older.
        c.modify_block(8, |_| ()).unwrap(); // no clean line left
        c.read_block(10, |_| ()).unwrap();
        assert_eq!(c.inner().take_log(), vec![('w', 2, 2), ('r', 10, 2)]);
        // Then the oldest.
        c.modify_block(10, |_| ()).unwrap();
        c.read_block(12, |_| ()).unwrap();
        assert_eq!(c.inner().take_log(), vec![('w', 0, 1), ('r', 12, 2)]);
        assert_eq!(c.inner().blocks.borrow()[0], [0xAA; 512]);
    }

    #[test]
    fn flush_goes_in_ascending_block_order() {
        let c: BlockCache<_, 3, 2> = BlockCache::new(RamDisk::new(64)).unwrap();
        c.overwrite_block(40, |_| ()).unwrap();
        c.overwrite_block(2, |_| ()).unwrap();
        c.overwrite_block(20, |_| ()).unwrap();
        c.flush().unwrap();
        assert_eq!(
            c.inner().take_log(),
            vec![('w', 2, 1), ('w', 20, 1), ('w', 40, 1)]
        );
    }

    #[test]
    fn a_failed_write_keeps_the_data_dirty() {
        let c: BlockCache<_, 2, 4> = BlockCache::new(RamDisk::new(64)).unwrap();
        c.overwrite_block(3, |b| b.fill(7)).unwrap();
        c.inner().fail_writes.set(true);
        assert!(matches!(c.flush(), Err(DiskError::Device(RamError))));
        c.inner().fail_writes.set(false);
        c.flush().unwrap();
        assert_eq!(c.inner().blocks.borrow()[3], [7; 512]);
    }

    #[test]
    fn block_device_interface_round_trips() {
        let c: BlockCache<_, 2, 4> = BlockCache::new(RamDisk::new(64)).unwrap();
        let mut blocks = [Block::new(), Block::new(), Block::new()];
        blocks[1].fill(0x42);
        c.write(&blocks, BlockIdx(7)).unwrap();
        let mut back = [Block::new(), Block::new()];
        c.read(&mut back, BlockIdx(7)).unwrap();
        assert_eq!(back[0][0], 0);
        assert_eq!(back[1][0], 0x42);
        assert_eq!(c.num_blocks().unwrap(), BlockCount(64));
    }
}
