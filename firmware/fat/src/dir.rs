//! Directories on the device: walking their slots, finding names (long or
//! short, ignoring case), finding room for new entries, writing and deleting
//! entry runs, growing a directory by a cluster.
//!
//! Slots are numbered in directory order from 0 (16 per block), so a run of
//! slots is `start..start + n` whatever clusters it crosses.

use core::ops::ControlFlow;

use ftpd::storage::Error;

use crate::dirent::{
    self, DELETED, DOTDOT, LfnAssembler, SLOT_LEN, SLOTS_PER_BLOCK, ShortEntry, ShortName, SlotKind,
};
use crate::disk::Blocks;
use crate::fat::{self, Next, Space};
use crate::layout::Geometry;

/// Largest directory FAT allows (65536 slots, 2 MiB).
pub const MAX_SLOTS: u32 = 65536;

/// A directory: FAT16's fixed root, or a cluster chain (FAT32's root too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirRef {
    Root16,
    Chain(u32),
}

impl DirRef {
    pub fn root(g: &Geometry) -> Self {
        if g.fat32() {
            DirRef::Chain(g.root_cluster)
        } else {
            DirRef::Root16
        }
    }

    /// The directory whose first cluster is `c` (0 means the root, as in `..`).
    pub fn from_cluster(g: &Geometry, c: u32) -> Self {
        if c == 0 {
            Self::root(g)
        } else {
            DirRef::Chain(c)
        }
    }

    /// What `..` entries of children store for this directory.
    pub fn cluster_for_dotdot(&self, g: &Geometry) -> u32 {
        match *self {
            DirRef::Chain(c) if !(g.fat32() && c == g.root_cluster) => c,
            _ => 0,
        }
    }

    pub fn is_root(&self, g: &Geometry) -> bool {
        self.cluster_for_dotdot(g) == 0
    }
}

/// Walks the blocks of a directory.
struct Cursor {
    dir: DirRef,
    cluster: u32,
    /// Next block within the cluster (or the FAT16 root).
    block: u32,
    started: bool,
    hops: u32,
}

impl Cursor {
    fn new(dir: DirRef) -> Self {
        Cursor {
            dir,
            cluster: 0,
            block: 0,
            started: false,
            hops: 0,
        }
    }

    fn next_block(&mut self, d: &impl Blocks, g: &Geometry) -> Result<Option<u32>, Error> {
        match self.dir {
            DirRef::Root16 => {
                if self.block >= g.root_blocks {
                    return Ok(None);
                }
                self.block += 1;
                Ok(Some(g.root_start + self.block - 1))
            }
            DirRef::Chain(first) => {
                if !self.started {
                    if !g.valid_cluster(first) {
                        return Err(Error::Io);
                    }
                    self.started = true;
                    self.cluster = first;
                } else if self.block == g.sectors_per_cluster {
                    match fat::next(d, g, self.cluster)? {
                        Next::End => return Ok(None),
                        Next::Cluster(c) => {
                            self.hops += 1;
                            if self
                                .hops
                                .saturating_mul(g.sectors_per_cluster * SLOTS_PER_BLOCK as u32)
                                >= MAX_SLOTS
                            {
                                return Err(Error::Io);
                            }
                            self.cluster = c;
                            self.block = 0;
                        }
                    }
                }
                self.block += 1;
                Ok(Some(g.cluster_block(self.cluster) + self.block - 1))
            }
        }
    }
}

/// How a walk over slots ended.
pub enum Walk<R> {
    Stopped(R),
    /// All slots seen: how many, and the directory's last cluster (0 for
    /// FAT16's root).
    End {
        slots: u32,
        last_cluster: u32,
    },
}

/// Calls `f(index, slot)` for every slot of `dir` in order (past the end
/// marker too) until it breaks.
pub fn walk<R>(
    d: &impl Blocks,
    g: &Geometry,
    dir: DirRef,
    mut f: impl FnMut(u32, &[u8; SLOT_LEN]) -> ControlFlow<R>,
) -> Result<Walk<R>, Error> {
    let mut cur = Cursor::new(dir);
    let mut index = 0u32;
    while let Some(blk) = cur.next_block(d, g)? {
        let stop = d.view(blk, |b| {
            for i in 0..SLOTS_PER_BLOCK {
                let slot: &[u8; SLOT_LEN] = b[i * SLOT_LEN..(i + 1) * SLOT_LEN].try_into().ok()?;
                if let ControlFlow::Break(r) = f(index + i as u32, slot) {
                    return Some(r);
                }
            }
            None
        })?;
        if let Some(r) = stop {
            return Ok(Walk::Stopped(r));
        }
        index += SLOTS_PER_BLOCK as u32;
    }
    Ok(Walk::End {
        slots: index,
        last_cluster: cur.cluster,
    })
}

/// Changes the slots `from..from + count` of `dir`: `f(index, slot)`.
/// Returns where the last of them is.
pub fn write_slots(
    d: &impl Blocks,
    g: &Geometry,
    dir: DirRef,
    from: u32,
    count: u32,
    mut f: impl FnMut(u32, &mut [u8; SLOT_LEN]),
) -> Result<Key, Error> {
    let end = from + count;
    let mut cur = Cursor::new(dir);
    let mut lo = 0u32;
    let mut last = Key { block: 0, slot: 0 };
    while lo < end {
        let Some(blk) = cur.next_block(d, g)? else {
            return Err(Error::Io);
        };
        let hi = lo + SLOTS_PER_BLOCK as u32;
        if hi > from {
            d.modify(blk, |b| {
                for i in from.max(lo)..end.min(hi) {
                    let at = ((i - lo) as usize) * SLOT_LEN;
                    if let Ok(slot) = (&mut b[at..at + SLOT_LEN]).try_into() {
                        f(i, slot);
                    }
                }
            })?;
            last = Key {
                block: blk,
                slot: ((end.min(hi) - 1 - lo) as usize % SLOTS_PER_BLOCK) as u8,
            };
        }
        lo = hi;
    }
    Ok(last)
}

/// A file or directory found in a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub entry: ShortEntry,
    /// Slot of the short entry.
    pub index: u32,
    /// First slot of the entry (its first long-name slot, if any).
    pub first: u32,
    /// Slots it occupies, long-name slots included.
    pub slots: u32,
    /// Where the short entry is: (block, slot in block). Identifies the file
    /// while it exists.
    pub key: Key,
}

/// Where a short entry lives on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub block: u32,
    pub slot: u8,
}

/// One entry as a listing sees it.
pub struct Item<'a> {
    pub found: Found,
    /// The long name, when it has one.
    pub long: Option<&'a [u16]>,
}

impl Item<'_> {
    /// The name to show: the long name, else the 8.3 name.
    pub fn name<'b>(&self, buf: &'b mut [u8; dirent::MAX_NAME_UTF8]) -> &'b str {
        match self.long {
            Some(units) => dirent::decode_utf16(units, buf),
            None => {
                let mut short = [0u8; 24];
                let s = dirent::short_display(
                    &self.found.entry.name,
                    self.found.entry.case,
                    &mut short,
                );
                let n = s.len();
                buf[..n].copy_from_slice(s.as_bytes());
                core::str::from_utf8(&buf[..n]).unwrap_or("")
            }
        }
    }

    /// Does this entry answer to `name` (long or short name, any case)?
    pub fn matches(&self, name: &str) -> bool {
        if let Some(units) = self.long {
            if dirent::eq_utf16_ignore_case(name, units) {
                return true;
            }
        }
        let mut short = [0u8; 24];
        dirent::eq_ignore_case(
            name,
            dirent::short_display(&self.found.entry.name, 0, &mut short),
        )
    }
}

/// Calls `f` for every file and directory in `dir` (not `.`, `..` or volume
/// labels), in directory order, until it breaks.
pub fn entries<R>(
    d: &impl Blocks,
    g: &Geometry,
    dir: DirRef,
    f: impl FnMut(&Item<'_>) -> ControlFlow<R>,
) -> Result<Option<R>, Error> {
    entries_after(d, g, dir, None, f)
}

/// [`entries`], starting after the entry whose short entry is `after`
/// (`Found::index`, `Found::key.block`: an entry an earlier walk of the
/// unchanged `dir` found), without reading the blocks before it.
pub fn entries_after<R>(
    d: &impl Blocks,
    g: &Geometry,
    dir: DirRef,
    after: Option<(u32, u32)>,
    mut f: impl FnMut(&Item<'_>) -> ControlFlow<R>,
) -> Result<Option<R>, Error> {
    let mut lfn = LfnAssembler::new();
    // The block being walked, for keys: recomputed from the index.
    let mut cur = Cursor::new(dir);
    let mut index = 0u32;
    let mut from = 0;
    if let Some((at, blk)) = after {
        // Position the cursor so that it yields `blk` next.
        index = at - at % SLOTS_PER_BLOCK as u32;
        from = (at % SLOTS_PER_BLOCK as u32) as usize + 1;
        match dir {
            DirRef::Root16 => cur.block = blk - g.root_start,
            DirRef::Chain(_) => {
                let per = g.sectors_per_cluster;
                let off = blk - g.data_start;
                cur.started = true;
                cur.cluster = off / per + 2;
                cur.block = off % per;
                cur.hops = at / (per * SLOTS_PER_BLOCK as u32);
            }
        }
    }
    while let Some(blk) = cur.next_block(d, g)? {
        let start = core::mem::take(&mut from);
        let stop = d.view(blk, |b| {
            for i in start..SLOTS_PER_BLOCK {
                let Ok(slot) = <&[u8; SLOT_LEN]>::try_from(&b[i * SLOT_LEN..(i + 1) * SLOT_LEN])
                else {
                    continue;
                };
                let idx = index + i as u32;
                match dirent::classify(slot) {
                    SlotKind::End => return Some(ControlFlow::Continue(())),
                    SlotKind::Deleted | SlotKind::Label => lfn.reset(),
                    SlotKind::LongName => lfn.push(slot),
                    SlotKind::Entry => {
                        let entry = ShortEntry::decode(slot, g.fat32());
                        let (long, lslots) = match lfn.finish(&entry.name) {
                            Some((u, n)) => (Some(u), u32::from(n)),
                            None => (None, 0),
                        };
                        if dirent::is_dot(&entry.name) {
                            continue;
                        }
                        let item = Item {
                            found: Found {
                                entry,
                                index: idx,
                                first: idx - lslots,
                                slots: lslots + 1,
                                key: Key {
                                    block: blk,
                                    slot: i as u8,
                                },
                            },
                            long,
                        };
                        if let ControlFlow::Break(r) = f(&item) {
                            return Some(ControlFlow::Break(r));
                        }
                    }
                }
            }
            None
        })?;
        match stop {
            Some(ControlFlow::Break(r)) => return Ok(Some(r)),
            Some(ControlFlow::Continue(())) => return Ok(None),
            None => {}
        }
        index += SLOTS_PER_BLOCK as u32;
    }
    Ok(None)
}

/// Finds `name` in `dir`.
pub fn find(
    d: &impl Blocks,
    g: &Geometry,
    dir: DirRef,
    name: &str,
) -> Result<Option<Found>, Error> {
    entries(d, g, dir, |item| {
        if item.matches(name) {
            ControlFlow::Break(item.found)
        } else {
            ControlFlow::Continue(())
        }
    })
}

/// True when `dir` holds nothing but `.` and `..`.
pub fn is_empty(d: &impl Blocks, g: &Geometry, dir: DirRef) -> Result<bool, Error> {
    Ok(entries(d, g, dir, |_| ControlFlow::Break(()))?.is_none())
}

/// Calls `f` with the short name of every entry of `dir` except the one
/// whose short entry is slot `skip` (for alias uniqueness checks).
pub fn short_names(
    d: &impl Blocks,
    g: &Geometry,
    dir: DirRef,
    skip: Option<u32>,
    mut f: impl FnMut(&ShortName),
) -> Result<(), Error> {
    walk(d, g, dir, |i, slot| match dirent::classify(slot) {
        SlotKind::End => ControlFlow::Break(()),
        SlotKind::Entry | SlotKind::Label if Some(i) != skip => {
            if let Ok(name) = <&ShortName>::try_from(&slot[..11]) {
                f(name);
            }
            ControlFlow::Continue(())
        }
        _ => ControlFlow::Continue(()),
    })?;
    Ok(())
}

/// Where new slots go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// At slot `start`; if the directory's end marker comes before it, the
    /// free slots from `gap_from` must be marked deleted so that readers,
    /// which stop at the end marker, reach the new entry.
    At { start: u32, gap_from: Option<u32> },
    /// No room: the directory must grow (it has `slots` slots and ends in
    /// `last_cluster`).
    Full { slots: u32, last_cluster: u32 },
}

/// Finds `n` free slots in a row. A run inside one block is preferred
/// (written with one block write, it appears atomically); else the first run.
/// Slots in `reuse` (an entry about to be replaced) count as free.
pub fn find_room(
    d: &impl Blocks,
    g: &Geometry,
    dir: DirRef,
    n: u32,
    reuse: Option<(u32, u32)>,
) -> Result<Place, Error> {
    let per_block = SLOTS_PER_BLOCK as u32;
    let mut end_marker: Option<u32> = None;
    let mut run = 0u32;
    let mut first_any: Option<u32> = None;
    let outcome = walk(d, g, dir, |i, slot| {
        let reused = reuse.is_some_and(|(from, count)| i >= from && i < from + count);
        let kind = dirent::classify(slot);
        if kind == SlotKind::End && end_marker.is_none() {
            end_marker = Some(i);
        }
        let free = end_marker.is_some() || reused || kind == SlotKind::Deleted;
        if !free {
            run = 0;
            return ControlFlow::Continue(());
        }
        run += 1;
        if run >= n {
            let start = i + 1 - n;
            first_any.get_or_insert(start);
            if start / per_block == i / per_block {
                return ControlFlow::Break(start);
            }
            if n > per_block {
                // No single-block run can exist; the first will do.
                return ControlFlow::Break(start);
            }
        }
        ControlFlow::Continue(())
    })?;
    let chosen = match outcome {
        Walk::Stopped(start) => start,
        Walk::End {
            slots,
            last_cluster,
        } => match first_any {
            Some(start) => start,
            None => {
                return Ok(Place::Full {
                    slots,
                    last_cluster,
                });
            }
        },
    };
    Ok(Place::At {
        start: chosen,
        gap_from: end_marker.filter(|&z| z < chosen),
    })
}

/// Grows a cluster-chain directory by one zeroed cluster (made durable
/// before it is linked, so a crash never shows garbage as entries).
pub fn grow(
    d: &impl Blocks,
    g: &Geometry,
    s: &mut Space,
    dir: DirRef,
    slots: u32,
    last: u32,
) -> Result<(), Error> {
    if dir == DirRef::Root16 {
        return Err(Error::NoSpace);
    }
    if slots + g.sectors_per_cluster * SLOTS_PER_BLOCK as u32 > MAX_SLOTS {
        return Err(Error::NoSpace);
    }
    let c = fat::allocate(d, g, s, None)?;
    fat::zero_cluster(d, g, c)?;
    d.flush()?;
    fat::set(d, g, last, c)
}

/// Writes an entry with an optional long name at `place` (an `At`).
/// Returns it as [`find`] would find it.
pub fn write_entry(
    d: &impl Blocks,
    g: &Geometry,
    dir: DirRef,
    start: u32,
    gap_from: Option<u32>,
    long: Option<&str>,
    entry: &ShortEntry,
) -> Result<Found, Error> {
    let lslots = long.map_or(0, |name| dirent::lfn_slots(name.encode_utf16().count())) as u32;
    let sum = dirent::checksum(&entry.name);
    let from = gap_from.unwrap_or(start);
    let raw = entry.encode(g.fat32());
    let key = write_slots(d, g, dir, from, start - from + lslots + 1, |i, slot| {
        if i < start {
            slot[0] = DELETED;
        } else if i - start < lslots {
            let seq = (lslots - (i - start)) as usize;
            if let Some(name) = long {
                *slot = dirent::encode_lfn_str(name, seq, sum);
            }
        } else {
            *slot = raw;
        }
    })?;
    Ok(Found {
        // As `find` would read it back.
        entry: ShortEntry::decode(&raw, g.fat32()),
        index: start + lslots,
        first: start,
        slots: lslots + 1,
        key,
    })
}

/// Marks slots `from..from + count` deleted, except those in `keep`.
pub fn delete_slots(
    d: &impl Blocks,
    g: &Geometry,
    dir: DirRef,
    from: u32,
    count: u32,
    keep: Option<(u32, u32)>,
) -> Result<(), Error> {
    write_slots(d, g, dir, from, count, |i, slot| {
        let kept = keep.is_some_and(|(k, n)| i >= k && i < k + n);
        if !kept {
            slot[0] = DELETED;
        }
    })?;
    Ok(())
}

/// The parent of a cluster-chain directory, from its `..` entry.
pub fn parent(d: &impl Blocks, g: &Geometry, dir_cluster: u32) -> Result<DirRef, Error> {
    let blk = g.cluster_block(dir_cluster);
    let dotdot = d.view(blk, |b| {
        let slot: &[u8; SLOT_LEN] = b[SLOT_LEN..2 * SLOT_LEN].try_into().ok()?;
        let e = ShortEntry::decode(slot, g.fat32());
        (e.name == DOTDOT).then_some(e.cluster)
    })?;
    match dotdot {
        Some(c) if c == 0 || g.valid_cluster(c) => Ok(DirRef::from_cluster(g, c)),
        _ => Err(Error::Io),
    }
}

/// Points the `..` entry of directory `dir_cluster` at `parent`.
pub fn set_parent(
    d: &impl Blocks,
    g: &Geometry,
    dir_cluster: u32,
    parent: DirRef,
) -> Result<(), Error> {
    let blk = g.cluster_block(dir_cluster);
    let target = parent.cluster_for_dotdot(g);
    let ok = d.modify(blk, |b| {
        let slot = &mut b[SLOT_LEN..2 * SLOT_LEN];
        if slot[..11] != DOTDOT {
            return false;
        }
        dirent::set_slot_cluster(slot, target, g.fat32());
        true
    })?;
    if ok { Ok(()) } else { Err(Error::Io) }
}

/// Fills a new directory's first cluster: `.` and `..`, then zeros.
pub fn init_dir(
    d: &impl Blocks,
    g: &Geometry,
    cluster: u32,
    parent: DirRef,
    date: u16,
    time: u16,
) -> Result<(), Error> {
    let first = g.cluster_block(cluster);
    let mut dot = ShortEntry::new(dirent::DOT, dirent::ATTR_DIRECTORY, date, time);
    dot.cluster = cluster;
    let mut dotdot = ShortEntry::new(DOTDOT, dirent::ATTR_DIRECTORY, date, time);
    dotdot.cluster = parent.cluster_for_dotdot(g);
    d.fill(first, |b| {
        b[..SLOT_LEN].copy_from_slice(&dot.encode(g.fat32()));
        b[SLOT_LEN..2 * SLOT_LEN].copy_from_slice(&dotdot.encode(g.fat32()));
    })?;
    for blk in first + 1..first + g.sectors_per_cluster {
        d.fill(blk, |_| ())?;
    }
    Ok(())
}
