//! The file allocation table: following, allocating and freeing cluster
//! chains, counting free clusters, and the FSInfo sector.
//!
//! embedded-sdmmc allocates clusters while it writes file data; everything
//! else that touches the FAT is here. In particular this crate, not the
//! library, owns the free-cluster count: the library never frees a deleted
//! file's clusters and miscounts when it truncates, so at mount its count is
//! hidden from it (it then tracks none) and [`Space`] keeps the true one,
//! written to FSInfo whenever the storage layer flushes.

use ftpd::storage::Error;

use crate::disk::Blocks;
use crate::layout::Geometry;

const EOC16: u32 = 0xFFFF;
const EOC32: u32 = 0x0FFF_FFFF;
const BAD16: u32 = 0xFFF7;
const BAD32: u32 = 0x0FFF_FFF7;

/// Free clusters and where to look for the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Space {
    pub free: u32,
    /// Cluster to start the next search at.
    pub hint: u32,
}

/// What follows a cluster in its chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Cluster(u32),
    End,
}

fn entry_size(g: &Geometry) -> u32 {
    if g.fat32() { 4 } else { 2 }
}

/// Block and byte offset of cluster `c`'s entry in FAT copy `copy`.
fn place(g: &Geometry, c: u32, copy: u32) -> (u32, usize) {
    let off = c * entry_size(g);
    (
        g.fat_start + copy * g.fat_size + off / 512,
        (off % 512) as usize,
    )
}

fn decode(g: &Geometry, b: &[u8; 512], at: usize) -> u32 {
    if g.fat32() {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) & 0x0FFF_FFFF
    } else {
        u32::from(u16::from_le_bytes([b[at], b[at + 1]]))
    }
}

/// The raw FAT entry of cluster `c` (first FAT).
pub fn get(d: &impl Blocks, g: &Geometry, c: u32) -> Result<u32, Error> {
    let (blk, at) = place(g, c, 0);
    d.view(blk, |b| decode(g, b, at))
}

/// Sets cluster `c`'s entry in every FAT copy (FAT32 keeps the top 4 bits).
pub fn set(d: &impl Blocks, g: &Geometry, c: u32, v: u32) -> Result<(), Error> {
    for copy in 0..g.num_fats {
        let (blk, at) = place(g, c, copy);
        d.modify(blk, |b| {
            if g.fat32() {
                let old = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
                let new = (old & 0xF000_0000) | (v & 0x0FFF_FFFF);
                b[at..at + 4].copy_from_slice(&new.to_le_bytes());
            } else {
                b[at..at + 2].copy_from_slice(&(v as u16).to_le_bytes());
            }
        })?;
    }
    Ok(())
}

fn eoc(g: &Geometry) -> u32 {
    if g.fat32() { EOC32 } else { EOC16 }
}

fn is_end(g: &Geometry, v: u32) -> bool {
    if g.fat32() {
        v >= 0x0FFF_FFF8
    } else {
        v >= 0xFFF8
    }
}

/// The cluster after `c`, checked: anything but a cluster of the volume or
/// an end-of-chain mark is a damaged file system.
pub fn next(d: &impl Blocks, g: &Geometry, c: u32) -> Result<Next, Error> {
    let v = get(d, g, c)?;
    if is_end(g, v) {
        Ok(Next::End)
    } else if g.valid_cluster(v) {
        Ok(Next::Cluster(v))
    } else {
        Err(Error::Io)
    }
}

/// How many clusters after `c` follow it one by one (`c + 1`, `c + 2`...),
/// as far as the FAT block holding `c`'s entry tells: readers then skip the
/// FAT for that stretch.
pub fn contiguous_after(d: &impl Blocks, g: &Geometry, c: u32) -> Result<u32, Error> {
    let per_block = 512 / entry_size(g);
    let (blk, _) = place(g, c, 0);
    let block_end = ((c / per_block + 1) * per_block).min(g.end());
    d.view(blk, |b| {
        let mut n = 0;
        let mut k = c;
        while k < block_end {
            let at = ((k % per_block) * entry_size(g)) as usize;
            if decode(g, b, at) != k + 1 || !g.valid_cluster(k + 1) {
                break;
            }
            n += 1;
            k += 1;
        }
        n
    })
}

/// The cluster `n` links after `first` (`n` = 0: `first` itself).
pub fn nth(d: &impl Blocks, g: &Geometry, first: u32, n: u32) -> Result<u32, Error> {
    if !g.valid_cluster(first) {
        return Err(Error::Io);
    }
    let mut c = first;
    for _ in 0..n {
        match next(d, g, c)? {
            Next::Cluster(x) => c = x,
            Next::End => return Err(Error::Io),
        }
    }
    Ok(c)
}

/// Length of the chain from `first`, bounded by the cluster count (a loop
/// is damage, not an endless walk).
pub fn chain_len(d: &impl Blocks, g: &Geometry, first: u32) -> Result<u32, Error> {
    if first == 0 {
        return Ok(0);
    }
    if !g.valid_cluster(first) {
        return Err(Error::Io);
    }
    let mut c = first;
    let mut n = 1;
    loop {
        match next(d, g, c)? {
            Next::End => return Ok(n),
            Next::Cluster(x) => {
                n += 1;
                if n > g.cluster_count {
                    return Err(Error::Io);
                }
                c = x;
            }
        }
    }
}

/// Visits the FAT block by block: `f(first_cluster_in_block, entries)` for
/// the clusters `from..to`.
fn scan_entries(
    d: &impl Blocks,
    g: &Geometry,
    from: u32,
    to: u32,
    mut f: impl FnMut(u32, u32) -> Option<u32>,
) -> Result<Option<u32>, Error> {
    let per_block = 512 / entry_size(g);
    let mut c = from;
    while c < to {
        let (blk, _) = place(g, c, 0);
        let block_end = (c / per_block + 1) * per_block;
        let stop = block_end.min(to);
        let found = d.view(blk, |b| {
            for k in c..stop {
                let at = ((k % per_block) * entry_size(g)) as usize;
                if let Some(r) = f(k, decode(g, b, at)) {
                    return Some(r);
                }
            }
            None
        })?;
        if found.is_some() {
            return Ok(found);
        }
        c = stop;
    }
    Ok(None)
}

/// Counts free clusters and finds the first one: `(free, first free or 2)`.
pub fn scan(d: &impl Blocks, g: &Geometry) -> Result<Space, Error> {
    let mut free = 0;
    let mut first = None;
    scan_entries(d, g, 2, g.end(), |c, v| {
        if v == 0 {
            free += 1;
            first.get_or_insert(c);
        }
        None
    })?;
    Ok(Space {
        free,
        hint: first.unwrap_or(2),
    })
}

/// Marks the FAT entries past the last cluster (the rest of the FAT's last
/// block) as bad clusters, so that nothing ever allocates them.
///
/// embedded-sdmmc's free-cluster search reads whole FAT blocks and would
/// hand out those entries (they are zero on a fresh volume) as clusters
/// beyond the end of the volume. Linux, mtools and fsck.fat ignore entries
/// past the cluster count.
pub fn fence(d: &impl Blocks, g: &Geometry) -> Result<(), Error> {
    let per_block = 512 / entry_size(g);
    let block_end = g.end().div_ceil(per_block) * per_block;
    let capacity = g.fat_size * per_block;
    let bad = if g.fat32() { BAD32 } else { BAD16 };
    for c in g.end()..block_end.min(capacity) {
        if get(d, g, c)? == 0 {
            set(d, g, c, bad)?;
        }
    }
    Ok(())
}

/// First free cluster at or after `from`, wrapping around.
fn find_free(d: &impl Blocks, g: &Geometry, from: u32) -> Result<Option<u32>, Error> {
    let from = if g.valid_cluster(from) { from } else { 2 };
    let pick = |c: u32, v: u32| (v == 0).then_some(c);
    if let Some(c) = scan_entries(d, g, from, g.end(), pick)? {
        return Ok(Some(c));
    }
    scan_entries(d, g, 2, from, pick)
}

/// Allocates a cluster as the end of a chain, linked after `prev` if given.
pub fn allocate(
    d: &impl Blocks,
    g: &Geometry,
    s: &mut Space,
    prev: Option<u32>,
) -> Result<u32, Error> {
    if s.free == 0 {
        return Err(Error::NoSpace);
    }
    let Some(c) = find_free(d, g, s.hint)? else {
        // The count was wrong; it is now known to be zero.
        s.free = 0;
        return Err(Error::NoSpace);
    };
    set(d, g, c, eoc(g))?;
    if let Some(p) = prev {
        set(d, g, p, c)?;
    }
    s.free -= 1;
    s.hint = if c + 1 < g.end() { c + 1 } else { 2 };
    Ok(c)
}

/// Frees the chain from `first`. A link that leads nowhere valid ends the
/// walk (what lies beyond was never reachable).
pub fn free_chain(d: &impl Blocks, g: &Geometry, s: &mut Space, first: u32) -> Result<(), Error> {
    let mut c = first;
    for _ in 0..g.cluster_count {
        if !g.valid_cluster(c) {
            return Ok(());
        }
        let v = get(d, g, c)?;
        if v == 0 {
            return Ok(());
        }
        set(d, g, c, 0)?;
        s.free += 1;
        if c < s.hint {
            s.hint = c;
        }
        if is_end(g, v) {
            return Ok(());
        }
        c = v;
    }
    Ok(())
}

/// Cuts the chain from `first` to `keep` clusters; returns the new first
/// cluster (0 when nothing is kept). Fails if the chain is shorter than
/// `keep`.
pub fn truncate(
    d: &impl Blocks,
    g: &Geometry,
    s: &mut Space,
    first: u32,
    keep: u32,
) -> Result<u32, Error> {
    if first == 0 {
        return if keep == 0 { Ok(0) } else { Err(Error::Io) };
    }
    if keep == 0 {
        free_chain(d, g, s, first)?;
        return Ok(0);
    }
    let last = nth(d, g, first, keep - 1)?;
    let v = get(d, g, last)?;
    if !is_end(g, v) {
        set(d, g, last, eoc(g))?;
        free_chain(d, g, s, v)?;
    }
    Ok(first)
}

/// Zeroes every block of cluster `c`.
pub fn zero_cluster(d: &impl Blocks, g: &Geometry, c: u32) -> Result<(), Error> {
    let first = g.cluster_block(c);
    for blk in first..first + g.sectors_per_cluster {
        d.fill(blk, |_| ())?;
    }
    Ok(())
}

/// Writes the free count and the search hint to FSInfo (FAT32), if they
/// changed.
pub fn write_fsinfo(d: &impl Blocks, g: &Geometry, s: &Space) -> Result<(), Error> {
    write_fsinfo_count(d, g, s.free, Some(s.hint))
}

/// Writes FSInfo's free count (and the hint, if given).
pub fn write_fsinfo_count(
    d: &impl Blocks,
    g: &Geometry,
    free: u32,
    hint: Option<u32>,
) -> Result<(), Error> {
    let Some(blk) = g.fsinfo else { return Ok(()) };
    let current = d.view(blk, |b| {
        (
            u32::from_le_bytes([b[488], b[489], b[490], b[491]]),
            u32::from_le_bytes([b[492], b[493], b[494], b[495]]),
        )
    })?;
    let wanted = (free, hint.unwrap_or(current.1));
    if current != wanted {
        d.modify(blk, |b| {
            b[488..492].copy_from_slice(&wanted.0.to_le_bytes());
            b[492..496].copy_from_slice(&wanted.1.to_le_bytes());
        })?;
    }
    Ok(())
}
