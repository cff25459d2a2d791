//! [`FatStorage`]: the engine's [`Storage`] on a FAT16/FAT32 volume.
//!
//! # Who does what
//!
//! embedded-sdmmc mounts the volume (after `layout` has checked it) and
//! writes file data: it allocates clusters as a file grows and updates the
//! file's entry when it is closed. This crate does the rest, on the same
//! blocks, through `VolumeManager::device` (which hands out the device and
//! drops the library's one-block cache):
//!
//! - path lookup by long or short name, ignoring case (`dir`);
//! - creating files and directories under long names with unique 8.3
//!   aliases, rename and move (`dir`, `dirent`);
//! - delete, rmdir and truncation, which free clusters (the library's delete
//!   leaves a file's clusters allocated, and its truncation miscounts);
//! - reading files, so that several sessions can read one file at once (the
//!   library allows one handle per file);
//! - the free-cluster count and FSInfo (`fat`).
//!
//! # Crash safety
//!
//! The block cache holds changes until a flush; flushes happen where the
//! volume must be consistent on the medium, and split operations whose parts
//! must not be reordered:
//!
//! - a new file's entry (long-name slots and short entry) is written into a
//!   run of free slots, preferably inside one block so that it appears
//!   atomically; it starts with no cluster, so a cut never leaves a
//!   cross-link. Data comes after, and `close` flushes data and entry;
//! - truncation writes the shorter entry, flushes, then frees clusters; a
//!   cut in between leaves lost clusters, never an entry pointing at free
//!   ones;
//! - delete and rmdir mark the entry deleted, flush, then free the chain;
//! - rename within a directory rewrites the entry in place when the new name
//!   fits in the old slots, so that (inside one block) a single block write
//!   changes the name. Otherwise the old entry is deleted and flushed before
//!   the new one is written: a cut in between loses the name, and fsck
//!   recovers the clusters, where the opposite order (FatFs's) leaves two
//!   entries sharing clusters, which later writes would corrupt. A moved
//!   directory's `..` is fixed last;
//! - a directory grows by a cluster that is zeroed and flushed before it is
//!   linked; a new directory's cluster is filled and flushed before its entry
//!   is written.
//!
//! # Limits
//!
//! Files up to 4 GiB - 1 (FAT's limit). One cluster is kept in reserve for
//! file data: embedded-sdmmc fails when it allocates the very last free
//! cluster, so writes stop one cluster short and [`Storage::free_space`]
//! says so.

use core::ops::ControlFlow;

use embedded_sdmmc::{BlockDevice, Mode, RawFile, RawVolume, TimeSource, VolumeIdx, VolumeManager};
use ftpd::storage::{DirEntry, Error, Kind, Metadata, Result, Storage, WriteMode};

use crate::cache::{BlockCache, CacheStats, DiskError};
use crate::dir::{self, DirRef, Found, Key};
use crate::dirent::{self, ShortEntry, ShortName};
use crate::disk::{Blocks, Disk};
use crate::fat::{self, Next, Space};
use crate::layout::{self, FatType, Geometry, MountError};

/// Clusters kept free for the library's last-cluster quirk (module docs).
const RESERVE: u32 = 1;

/// The `VolumeManager` type a [`FatStorage`] uses.
type Vm<D, T, const FILES: usize, const LINES: usize, const LINE_BLOCKS: usize> =
    VolumeManager<Disk<D, LINES, LINE_BLOCKS>, T, 2, FILES, 1>;

/// A FAT16/FAT32 volume on a block device, as a [`Storage`].
///
/// Made in two steps, so that a board can keep it in a `static` and mount it
/// there, without the whole state (several KB) passing through the stack:
/// [`FatStorage::new`] (no I/O) then [`FatStorage::mount`] in place, which
/// may be retried. On the host, [`FatStorage::mounted`] does both.
/// Before a successful mount every operation fails with `NotReady`.
///
/// - `FILES`: files open at once (readers and writers together). Each costs
///   about 540 bytes (a writer buffers the last partial block).
/// - `LINES` x `LINE_BLOCKS`: the block cache (see `cache`), 512 bytes per
///   block. 4 x 2 (4 KiB) suits a board with 64 KiB of RAM; the host image
///   uses 8 x 16.
pub struct FatStorage<
    D,
    T,
    const FILES: usize = 4,
    const LINES: usize = 4,
    const LINE_BLOCKS: usize = 2,
> where
    D: BlockDevice,
    T: TimeSource + Clone,
{
    vm: Vm<D, T, FILES, LINES, LINE_BLOCKS>,
    /// The library's handle; `None` until mounted.
    volume: Option<RawVolume>,
    geo: Geometry,
    time: T,
    space: Space,
    slots: [Slot; FILES],
    tails: [[u8; 512]; FILES],
    serial: u16,
    info: VolumeInfo,
    /// Where recent listings stopped, one per open-file slot (sessions
    /// list at the same time as often as they transfer), so that the
    /// engine's next call (same directory, `skip` = entries given so far)
    /// carries on from there instead of walking the directory again from
    /// its start. All are dropped whenever an entry is created, deleted or
    /// renamed.
    resume: [Option<Resume>; FILES],
    /// The entry of `resume` the next new listing replaces when all are taken.
    resume_victim: usize,
}

/// See [`FatStorage::resume`].
#[derive(Clone, Copy)]
struct Resume {
    dir: DirRef,
    /// Entries given so far: the `skip` that resumes.
    count: u32,
    /// The last entry given: its short entry's slot and block.
    index: u32,
    block: u32,
}

/// What was mounted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeInfo {
    pub fat_type: FatType,
    /// The volume sits in a partition (false: a bare volume).
    pub partitioned: bool,
    pub cluster_bytes: u32,
    /// Bytes of data the volume can hold.
    pub capacity: u64,
}

/// An open file, as the engine holds it.
#[derive(Debug)]
pub struct FatFile {
    slot: u8,
    serial: u16,
}

#[derive(Clone, Copy)]
enum Slot {
    Free,
    Read(Reader),
    Write(Writer),
}

#[derive(Clone, Copy)]
struct Reader {
    serial: u16,
    key: Key,
    first: u32,
    size: u32,
    pos: u32,
    /// Cluster holding `index * cluster_bytes` (0: not positioned yet).
    cluster: u32,
    index: u32,
    /// Clusters after `cluster` known to follow it directly.
    run: u32,
}

#[derive(Clone, Copy)]
struct Writer {
    serial: u16,
    key: Key,
    raw: RawFile,
    /// Bytes handed to the library.
    len: u32,
    /// Clusters the file has (always enough for `len`, no more).
    clusters: u32,
    /// Bytes waiting in the writer's tail buffer.
    tail: u16,
    /// The library failed mid-write: the chain is checked at close.
    broken: bool,
}

/// What a path names.
enum Target {
    Root,
    Entry { parent: DirRef, found: Found },
}

fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty())
}

/// `/a/b/c` -> (`/a/b`, `c`); `None` for the root.
fn split(path: &str) -> Option<(&str, &str)> {
    let path = path.trim_end_matches('/');
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    if name.is_empty() {
        None
    } else {
        Some((if parent.is_empty() { "/" } else { parent }, name))
    }
}

fn child(g: &Geometry, f: &Found) -> Result<DirRef> {
    if !f.entry.is_dir() {
        return Err(Error::NotADirectory);
    }
    if !g.valid_cluster(f.entry.cluster) {
        return Err(Error::Io);
    }
    Ok(DirRef::Chain(f.entry.cluster))
}

fn resolve(d: &impl Blocks, g: &Geometry, path: &str) -> Result<Target> {
    let mut dir = DirRef::root(g);
    let mut parts = components(path).peekable();
    while let Some(name) = parts.next() {
        let found = dir::find(d, g, dir, name)?.ok_or(Error::NotFound)?;
        if parts.peek().is_none() {
            return Ok(Target::Entry { parent: dir, found });
        }
        dir = child(g, &found)?;
    }
    Ok(Target::Root)
}

fn resolve_dir(d: &impl Blocks, g: &Geometry, path: &str) -> Result<DirRef> {
    match resolve(d, g, path)? {
        Target::Root => Ok(DirRef::root(g)),
        Target::Entry { found, .. } => child(g, &found),
    }
}

fn name_error(e: dirent::NameError) -> Error {
    match e {
        dirent::NameError::Invalid => Error::InvalidName,
        dirent::NameError::TooLong => Error::NameTooLong,
    }
}

/// A short name as the library spells it (`BASE.EXT`).
struct ShortStr {
    buf: [u8; 24],
    len: usize,
}

impl ShortStr {
    fn new(name: &ShortName) -> Self {
        let mut buf = [0u8; 24];
        let len = dirent::short_display(name, 0, &mut buf).len();
        ShortStr { buf, len }
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

fn lib_err<E: core::error::Error>(e: embedded_sdmmc::Error<E>) -> Error {
    use embedded_sdmmc::Error as L;
    match e {
        L::NotEnoughSpace | L::DiskFull => Error::NoSpace,
        L::TooManyOpenDirs | L::TooManyOpenFiles | L::FileAlreadyOpen | L::DirAlreadyOpen => {
            Error::Busy
        }
        L::NotFound => Error::NotFound,
        L::FilenameError(_) => Error::InvalidName,
        L::OpenedDirAsFile => Error::IsADirectory,
        L::OpenedFileAsDir => Error::NotADirectory,
        L::DeleteNonEmptyDir => Error::DirectoryNotEmpty,
        L::ReadOnly => Error::PermissionDenied,
        L::FileAlreadyExists | L::DirAlreadyExists => Error::AlreadyExists,
        L::DeviceError(_)
        | L::FormatError(_)
        | L::NoSuchVolume
        | L::TooManyOpenVolumes
        | L::BadHandle
        | L::VolumeStillInUse
        | L::VolumeAlreadyOpen
        | L::Unsupported
        | L::EndOfFile
        | L::BadCluster
        | L::ConversionError
        | L::AllocationError
        | L::UnterminatedFatChain
        | L::BadBlockSize(_)
        | L::InvalidOffset
        | L::LockError => Error::Io,
    }
}

/// Hands `bytes` to the library, within the free space (keeping
/// [`RESERVE`]); a write that does not fit writes what fits and fails with
/// `NoSpace`.
fn push<DD: BlockDevice, T: TimeSource, const F: usize>(
    vm: &VolumeManager<DD, T, 2, F, 1>,
    g: &Geometry,
    space: &mut Space,
    w: &mut Writer,
    bytes: &[u8],
) -> Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let end = u64::from(w.len) + bytes.len() as u64;
    if end > u64::from(u32::MAX) {
        return Err(Error::NoSpace);
    }
    let need = g.clusters_for(end) - w.clusters;
    let allowed = space.free.saturating_sub(RESERVE);
    let (n, fits) = if need <= allowed {
        (bytes.len(), true)
    } else {
        let room = u64::from(w.clusters + allowed) * u64::from(g.cluster_bytes) - u64::from(w.len);
        ((room as usize).min(bytes.len()), false)
    };
    if n > 0 {
        if let Err(e) = vm.write(w.raw, &bytes[..n]) {
            w.broken = true;
            return Err(lib_err(e));
        }
        w.len += n as u32;
        let clusters = g.clusters_for(u64::from(w.len));
        space.free -= clusters - w.clusters;
        w.clusters = clusters;
    }
    if fits { Ok(()) } else { Err(Error::NoSpace) }
}

impl<D, T, const FILES: usize, const LINES: usize, const LINE_BLOCKS: usize>
    FatStorage<D, T, FILES, LINES, LINE_BLOCKS>
where
    D: BlockDevice,
    T: TimeSource + Clone,
{
    /// The storage on `device`, not mounted yet: nothing is read or
    /// written until [`FatStorage::mount`]. `time` stamps new and changed
    /// files.
    pub fn new(device: D, time: T) -> Self {
        let disk = Disk::unplaced(BlockCache::detached(device));
        FatStorage {
            vm: VolumeManager::new_with_limits(disk, time.clone(), 0x4654_0000),
            volume: None,
            geo: Geometry::NONE,
            time,
            space: Space { free: 0, hint: 0 },
            slots: [Slot::Free; FILES],
            tails: [[0; 512]; FILES],
            serial: 0,
            resume: [None; FILES],
            resume_victim: 0,
            info: VolumeInfo {
                fat_type: FatType::Fat32,
                partitioned: false,
                cluster_bytes: 0,
                capacity: 0,
            },
        }
    }

    /// [`FatStorage::new`] and [`FatStorage::mount`] in one: the mounted
    /// storage, by value (for the host; a board mounts in place).
    pub fn mounted(device: D, time: T) -> core::result::Result<Self, MountError<D::Error>> {
        let mut fs = Self::new(device, time);
        fs.mount()?;
        Ok(fs)
    }

    /// Mounts the FAT volume on the device, in place: the first FAT16/FAT32
    /// partition of an MBR partition table, or a bare volume. After an error
    /// it may be called again (say, once the card was initialised again): it
    /// starts afresh, forgetting what the failed attempt read or changed.
    /// On a mounted volume it does nothing.
    ///
    /// Mounting reads the whole FAT once (to know the free space exactly) and
    /// may write to it: entries past the last cluster are marked bad (see
    /// `fat::fence`) and FSInfo gets the true free count.
    pub fn mount(&mut self) -> core::result::Result<(), MountError<D::Error>> {
        if self.volume.is_some() {
            return Ok(());
        }
        self.resume = [None; FILES];
        let (geo, info, space) = self.vm.device(|d| Self::prepare(d))?;
        let volume = self
            .vm
            .open_raw_volume(VolumeIdx(0))
            .map_err(mount_lib_err)?;
        let written = self.vm.device(|d| {
            fat::write_fsinfo(d, &geo, &space)?;
            d.flush()
        });
        if written.is_err() {
            let _ = self.vm.close_volume(volume);
            return Err(MountError::Damaged("cannot write the volume"));
        }
        info!(
            "mounted {:?} ({}), {} clusters of {} bytes, {} free",
            info.fat_type,
            if info.partitioned {
                "partition"
            } else {
                "bare volume"
            },
            geo.cluster_count,
            geo.cluster_bytes,
            space.free
        );
        self.volume = Some(volume);
        self.geo = geo;
        self.space = space;
        self.info = info;
        Ok(())
    }

    /// Whether [`FatStorage::mount`] succeeded.
    pub fn is_mounted(&self) -> bool {
        self.volume.is_some()
    }

    /// The library's volume handle, or `NotReady` before mounting.
    fn volume(&self) -> Result<RawVolume> {
        self.volume.ok_or(Error::NotReady)
    }

    /// The mount's own part, before the library sees the volume: finds the
    /// volume and checks its boot sector, tells the disk where it is, checks
    /// FSInfo, fences the FAT, counts free clusters, and hides the count from
    /// the library (it sees "unknown" and keeps none).
    fn prepare(
        disk: &mut Disk<D, LINES, LINE_BLOCKS>,
    ) -> core::result::Result<(Geometry, VolumeInfo, Space), MountError<D::Error>> {
        let cache = disk.cache_mut();
        cache.restart().map_err(mount_dev_err)?;
        let size = cache.size();
        // Both sectors are parsed where they lie in the cache: no copies on
        // the stack.
        let loc = cache
            .read_block(0, |b| layout::locate(&b.contents, size))
            .map_err(mount_dev_err)??;
        let bpb = cache
            .read_block(loc.start, |b| layout::parse_bpb(&b.contents, loc.sectors))
            .map_err(mount_dev_err)??;
        disk.place(&loc, bpb.fat_type);
        let geo = Geometry::new(&bpb, disk.lba(&loc));
        disk.set_fat_mirror(&geo).map_err(mount_dev_err)?;
        let info = VolumeInfo {
            fat_type: bpb.fat_type,
            partitioned: !loc.bare,
            cluster_bytes: geo.cluster_bytes,
            capacity: u64::from(geo.cluster_count) * u64::from(geo.cluster_bytes),
        };
        let disk = &*disk;
        let io = |_| mount_err(disk);
        if let Some(blk) = geo.fsinfo {
            if !disk.view(blk, layout::fsinfo_ok).map_err(io)? {
                return Err(MountError::Damaged("the FAT32 FSInfo sector is damaged"));
            }
        }
        fat::fence(disk, &geo).map_err(io)?;
        let space = fat::scan(disk, &geo).map_err(io)?;
        fat::write_fsinfo_count(disk, &geo, u32::MAX, None).map_err(io)?;
        Ok((geo, info, space))
    }

    /// What was mounted (zeros before a mount).
    pub fn info(&self) -> VolumeInfo {
        self.info
    }

    /// What the block cache has done so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.vm.device(|d| d.stats())
    }

    /// The storage ceiling through this volume's block cache: see
    /// [`BlockCache::bench_sequential`] (blocks from the start of the
    /// device; the volume is left exactly as it was). Run it while no
    /// transfer is under way: it holds the device for its whole duration.
    pub fn bench_sequential(
        &mut self,
        blocks: u32,
        now: &mut dyn FnMut() -> u64,
    ) -> Result<crate::SeqBench> {
        self.vm.device(|d| {
            d.cache()
                .bench_sequential(0, blocks, now)
                .map_err(|_| Error::Io)
        })
    }

    /// Writes everything cached to the device.
    pub fn flush(&mut self) -> Result<()> {
        self.vm.device(|d| d.flush())
    }

    /// Flushes and gives the device back. Files still open for writing lose
    /// what they buffered.
    pub fn unmount(self) -> core::result::Result<D, Error> {
        self.vm.device(|d| d.flush())?;
        // close_volume refuses while files are open; the device is wanted
        // back either way.
        if let Some(volume) = self.volume {
            let _ = self.vm.close_volume(volume);
        }
        let (disk, _) = self.vm.free();
        let cache = disk.into_cache();
        cache.flush().map_err(|_| Error::Io)?;
        Ok(cache.into_inner())
    }

    fn now(&self) -> (u16, u16) {
        let b = self.time.get_timestamp().serialize_to_fat();
        (
            u16::from_le_bytes([b[2], b[3]]),
            u16::from_le_bytes([b[0], b[1]]),
        )
    }

    fn is_open(&self, key: Key) -> bool {
        self.slots.iter().any(|s| match s {
            Slot::Read(r) => r.key == key,
            Slot::Write(w) => w.key == key,
            Slot::Free => false,
        })
    }

    fn writer_len(&self, key: Key) -> Option<u64> {
        self.slots.iter().find_map(|s| match s {
            Slot::Write(w) if w.key == key => Some(u64::from(w.len) + u64::from(w.tail)),
            _ => None,
        })
    }

    fn next_serial(&mut self) -> u16 {
        self.serial = self.serial.wrapping_add(1);
        self.serial
    }

    fn with<R>(&self, f: impl FnOnce(&Disk<D, LINES, LINE_BLOCKS>) -> R) -> R {
        self.vm.device(|d| f(d))
    }

    fn meta(&self, found: &Found) -> Metadata {
        let e = &found.entry;
        let kind = if e.is_dir() { Kind::Dir } else { Kind::File };
        let size = if e.is_dir() {
            0
        } else {
            self.writer_len(found.key).unwrap_or(u64::from(e.size))
        };
        Metadata {
            kind,
            size,
            modified: dirent::from_fat(e.mdate, e.mtime),
        }
    }

    /// Picks an alias for `name` in `parent`, unique among its entries (but
    /// the one at slot `skip`).
    fn alias(&self, parent: DirRef, name: &str, skip: Option<u32>) -> Result<ShortName> {
        if let Some(exact) = dirent::exact_short(name) {
            // Any other entry with this short name would have matched `name`.
            return Ok(exact);
        }
        let g = &self.geo;
        let mut alias_gen = dirent::AliasGen::new(name);
        self.with(|d| dir::short_names(d, g, parent, skip, |n| alias_gen.observe(n)))?;
        if let Some(a) = alias_gen.pick() {
            return Ok(a);
        }
        for attempt in 0..64 {
            let candidate = dirent::hashed_alias(name, attempt);
            let mut taken = false;
            self.with(|d| dir::short_names(d, g, parent, skip, |n| taken |= *n == candidate))?;
            if !taken {
                return Ok(candidate);
            }
        }
        Err(Error::NoSpace)
    }

    /// Finds `n` free slots in `parent`, growing it if needed.
    fn room(
        &mut self,
        parent: DirRef,
        n: u32,
        reuse: Option<(u32, u32)>,
    ) -> Result<(u32, Option<u32>)> {
        let g = self.geo;
        for _ in 0..4 {
            let space = &mut self.space;
            let placed = self.vm.device(|d| -> Result<Option<(u32, Option<u32>)>> {
                match dir::find_room(d, &g, parent, n, reuse)? {
                    dir::Place::At { start, gap_from } => Ok(Some((start, gap_from))),
                    dir::Place::Full {
                        slots,
                        last_cluster,
                    } => {
                        dir::grow(d, &g, space, parent, slots, last_cluster)?;
                        Ok(None)
                    }
                }
            })?;
            if let Some(p) = placed {
                return Ok(p);
            }
        }
        Err(Error::NoSpace)
    }

    /// Writes a new entry `name` into `parent` and makes it durable.
    fn create(&mut self, parent: DirRef, name: &str, attr: u8, cluster: u32) -> Result<Found> {
        self.resume = [None; FILES];
        let units_len = dirent::validate(name).map_err(name_error)?;
        let alias = self.alias(parent, name, None)?;
        let needs_long = dirent::exact_short(name).is_none();
        let long = needs_long.then_some(name);
        let slots = if needs_long {
            dirent::lfn_slots(units_len) as u32
        } else {
            0
        } + 1;
        let (date, time) = self.now();
        let mut entry = ShortEntry::new(alias, attr, date, time);
        entry.cluster = cluster;
        let (start, gap) = self.room(parent, slots, None)?;
        let g = self.geo;
        let space = self.space;
        self.with(|d| {
            // The entry as written, without looking it up again: a lookup
            // here would put its long-name buffer (0.8 KB) on top of this
            // frame, the deepest stack of an upload on a board.
            let found = dir::write_entry(d, &g, parent, start, gap, long, &entry)?;
            fat::write_fsinfo(d, &g, &space)?;
            d.flush()?;
            debug_assert_eq!(
                dir::find(d, &g, parent, name),
                Ok(Some(found)),
                "a new entry reads back as written"
            );
            Ok(found)
        })
    }

    /// Cuts an existing file to `keep` bytes: entry first (flushed), then
    /// clusters. Checks the chain on the way.
    fn cut(&mut self, found: Found, keep: u32, touch: bool) -> Result<Found> {
        let g = self.geo;
        let first = found.entry.cluster;
        let keep_clusters = g.clusters_for(u64::from(keep));
        let (date, time) = self.now();
        let space = &mut self.space;
        self.vm.device(|d| {
            if first != 0 && !g.valid_cluster(first) {
                return Err(Error::Io);
            }
            let have = fat::chain_len(d, &g, first)?;
            if have < g.clusters_for(u64::from(found.entry.size)) {
                // The file claims more bytes than its clusters hold.
                return Err(Error::Io);
            }
            let mut entry = found.entry;
            entry.size = keep;
            if keep_clusters == 0 {
                entry.cluster = 0;
            }
            if touch {
                entry.mdate = date;
                entry.mtime = time;
                entry.adate = date;
            }
            if entry != found.entry {
                write_at(d, found.key, &entry.encode(g.fat32()))?;
                d.flush()?;
            }
            if have > keep_clusters {
                fat::truncate(d, &g, space, first, keep_clusters)?;
                fat::write_fsinfo(d, &g, space)?;
                d.flush()?;
            }
            Ok(Found { entry, ..found })
        })
    }

    /// Opens `parent_path/short` with the library, for appending.
    fn lib_open(&self, parent_path: &str, short: &ShortName) -> Result<RawFile> {
        let g = &self.geo;
        let mut raw_dir = self.vm.open_root_dir(self.volume()?).map_err(lib_err)?;
        let mut cur = DirRef::root(g);
        for name in components(parent_path) {
            let step = self
                .with(|d| dir::find(d, g, cur, name))
                .and_then(|f| f.ok_or(Error::NotFound))
                .and_then(|f| Ok((child(g, &f)?, ShortStr::new(&f.entry.name))))
                .and_then(|(next, s)| {
                    Ok((
                        next,
                        self.vm.open_dir(raw_dir, s.as_str()).map_err(lib_err)?,
                    ))
                });
            let _ = self.vm.close_dir(raw_dir);
            let (next, dir_handle) = step?;
            raw_dir = dir_handle;
            cur = next;
        }
        let file = self.vm.open_file_in_dir(
            raw_dir,
            ShortStr::new(short).as_str(),
            Mode::ReadWriteAppend,
        );
        let _ = self.vm.close_dir(raw_dir);
        file.map_err(lib_err)
    }

    /// Marks an entry deleted (flushed), then frees its clusters (flushed).
    fn delete(&mut self, parent: DirRef, found: &Found) -> Result<()> {
        self.resume = [None; FILES];
        let g = self.geo;
        let space = &mut self.space;
        self.vm.device(|d| {
            dir::delete_slots(d, &g, parent, found.first, found.slots, None)?;
            d.flush()?;
            if found.entry.cluster != 0 {
                fat::free_chain(d, &g, space, found.entry.cluster)?;
                fat::write_fsinfo(d, &g, space)?;
                d.flush()?;
            }
            Ok(())
        })
    }

    /// Puts the chain of a file whose write failed back in line with its
    /// entry, and recounts free space.
    fn repair(&mut self, key: Key) -> Result<()> {
        let g = self.geo;
        let mut space = self.space;
        let space = self.vm.device(|d| -> Result<Space> {
            let mut entry = read_at(d, key, g.fat32())?;
            if entry.cluster != 0 && g.valid_cluster(entry.cluster) {
                let keep = g.clusters_for(u64::from(entry.size));
                if keep == 0 {
                    // Entry first, then the clusters (see `cut`).
                    let first = entry.cluster;
                    entry.cluster = 0;
                    write_at(d, key, &entry.encode(g.fat32()))?;
                    d.flush()?;
                    fat::free_chain(d, &g, &mut space, first)?;
                } else {
                    // Frees what the failed write allocated past the size; a
                    // chain shorter than the size is left for fsck.
                    let _ = fat::truncate(d, &g, &mut space, entry.cluster, keep);
                }
            }
            fat::scan(d, &g)
        })?;
        self.space = space;
        Ok(())
    }
}

/// Writes one raw short entry at `key`.
fn write_at(d: &impl Blocks, key: Key, raw: &[u8; 32]) -> Result<()> {
    let at = usize::from(key.slot) * dirent::SLOT_LEN;
    d.modify(key.block, |b| {
        b[at..at + dirent::SLOT_LEN].copy_from_slice(raw)
    })
}

fn read_at(d: &impl Blocks, key: Key, fat32: bool) -> Result<ShortEntry> {
    let at = usize::from(key.slot) * dirent::SLOT_LEN;
    d.view(key.block, |b| {
        let mut raw = [0u8; dirent::SLOT_LEN];
        raw.copy_from_slice(&b[at..at + dirent::SLOT_LEN]);
        ShortEntry::decode(&raw, fat32)
    })
}

fn mount_dev_err<E>(e: DiskError<E>) -> MountError<E> {
    match e {
        DiskError::Device(e) => MountError::Device(e),
        DiskError::OutOfRange => {
            MountError::Damaged("the file system extends past the end of the device")
        }
    }
}

fn mount_err<D: BlockDevice, const L: usize, const B: usize>(
    disk: &Disk<D, L, B>,
) -> MountError<D::Error> {
    match disk.take_error() {
        Some(e) => mount_dev_err(e),
        None => MountError::Damaged("the FAT cannot be read"),
    }
}

fn mount_lib_err<E: core::error::Error>(e: embedded_sdmmc::Error<DiskError<E>>) -> MountError<E> {
    use embedded_sdmmc::Error as L;
    match e {
        L::DeviceError(e) => mount_dev_err(e),
        L::FormatError(why) => MountError::Damaged(why),
        L::BadBlockSize(_) => MountError::Unsupported("the sector size is not 512 bytes"),
        _ => MountError::Damaged("embedded-sdmmc refused the volume"),
    }
}

impl<D, T, const FILES: usize, const LINES: usize, const LINE_BLOCKS: usize> Storage
    for FatStorage<D, T, FILES, LINES, LINE_BLOCKS>
where
    D: BlockDevice,
    T: TimeSource + Clone,
{
    type File = FatFile;

    fn open_read(&mut self, path: &str, offset: u64) -> Result<FatFile> {
        self.volume()?;
        let g = self.geo;
        let found = match self.with(|d| resolve(d, &g, path))? {
            Target::Root => return Err(Error::IsADirectory),
            Target::Entry { found, .. } => found,
        };
        if found.entry.is_dir() {
            return Err(Error::IsADirectory);
        }
        if self.writer_len(found.key).is_some() {
            return Err(Error::Busy);
        }
        let slot = self
            .slots
            .iter()
            .position(|s| matches!(s, Slot::Free))
            .ok_or(Error::Busy)?;
        let size = found.entry.size;
        if offset > u64::from(size) {
            return Err(Error::InvalidOffset);
        }
        if size > 0 && !g.valid_cluster(found.entry.cluster) {
            return Err(Error::Io);
        }
        let serial = self.next_serial();
        self.slots[slot] = Slot::Read(Reader {
            serial,
            key: found.key,
            first: found.entry.cluster,
            size,
            pos: offset as u32,
            cluster: 0,
            index: 0,
            run: 0,
        });
        Ok(FatFile {
            slot: slot as u8,
            serial,
        })
    }

    fn open_write(&mut self, path: &str, mode: WriteMode) -> Result<FatFile> {
        self.volume()?;
        self.resume = [None; FILES];
        let slot = self
            .slots
            .iter()
            .position(|s| matches!(s, Slot::Free))
            .ok_or(Error::Busy)?;
        let (parent_path, name) = split(path).ok_or(Error::IsADirectory)?;
        let g = self.geo;
        let parent = self.with(|d| resolve_dir(d, &g, parent_path))?;
        let existing = self.with(|d| dir::find(d, &g, parent, name))?;
        let found = match existing {
            Some(found) => {
                if found.entry.is_dir() {
                    return Err(Error::IsADirectory);
                }
                if mode == WriteMode::CreateNew {
                    return Err(Error::AlreadyExists);
                }
                if self.is_open(found.key) {
                    return Err(Error::Busy);
                }
                if found.entry.attr & dirent::ATTR_READ_ONLY != 0 {
                    return Err(Error::PermissionDenied);
                }
                let (keep, touch) = match mode {
                    WriteMode::Truncate => (0, true),
                    WriteMode::Append => (found.entry.size, false),
                    WriteMode::At(n) if n > u64::from(found.entry.size) => {
                        return Err(Error::InvalidOffset);
                    }
                    WriteMode::At(n) => (n as u32, n != u64::from(found.entry.size)),
                    WriteMode::CreateNew => return Err(Error::AlreadyExists),
                };
                self.cut(found, keep, touch)?
            }
            None => {
                if matches!(mode, WriteMode::At(n) if n > 0) {
                    return Err(Error::InvalidOffset);
                }
                self.create(parent, name, dirent::ATTR_ARCHIVE, 0)?
            }
        };
        let raw = self.lib_open(parent_path, &found.entry.name)?;
        let serial = self.next_serial();
        self.slots[slot] = Slot::Write(Writer {
            serial,
            key: found.key,
            raw,
            len: found.entry.size,
            clusters: g.clusters_for(u64::from(found.entry.size)),
            tail: 0,
            broken: false,
        });
        Ok(FatFile {
            slot: slot as u8,
            serial,
        })
    }

    fn read(&mut self, file: &mut FatFile, buf: &mut [u8]) -> Result<usize> {
        let g = self.geo;
        let Some(Slot::Read(r)) = self.slots.get_mut(usize::from(file.slot)) else {
            return Err(Error::Io);
        };
        if r.serial != file.serial {
            return Err(Error::Io);
        }
        let mut r = *r;
        let result = self.vm.device(|d| read_file(d, &g, &mut r, buf));
        self.slots[usize::from(file.slot)] = Slot::Read(r);
        result
    }

    fn write(&mut self, file: &mut FatFile, data: &[u8]) -> Result<()> {
        let idx = usize::from(file.slot);
        let Some(Slot::Write(w)) = self.slots.get(idx) else {
            return Err(Error::Io);
        };
        if w.serial != file.serial || w.broken {
            return Err(Error::Io);
        }
        let mut w = *w;
        if u64::from(w.len) + u64::from(w.tail) + data.len() as u64 > u64::from(u32::MAX) {
            return Err(Error::NoSpace);
        }
        let FatStorage {
            vm,
            geo,
            space,
            tails,
            ..
        } = &mut *self;
        let tail = &mut tails[idx];
        let result: Result<()> = (|| {
            let mut data = data;
            let mut t = usize::from(w.tail);
            if t > 0 {
                let k = (512 - t).min(data.len());
                tail[t..t + k].copy_from_slice(&data[..k]);
                t += k;
                data = &data[k..];
                w.tail = t as u16;
                if t == 512 {
                    push(vm, geo, space, &mut w, &tail[..])?;
                    t = 0;
                    w.tail = 0;
                }
            }
            if t == 0 && data.len() >= 512 {
                let k = data.len() / 512 * 512;
                push(vm, geo, space, &mut w, &data[..k])?;
                data = &data[k..];
            }
            tail[t..t + data.len()].copy_from_slice(data);
            w.tail = (t + data.len()) as u16;
            Ok(())
        })();
        self.slots[idx] = Slot::Write(w);
        result
    }

    fn close(&mut self, file: FatFile) -> Result<()> {
        let idx = usize::from(file.slot);
        let slot = match self.slots.get(idx) {
            Some(Slot::Read(r)) if r.serial == file.serial => Slot::Read(*r),
            Some(Slot::Write(w)) if w.serial == file.serial => Slot::Write(*w),
            _ => return Err(Error::Io),
        };
        self.slots[idx] = Slot::Free;
        let Slot::Write(mut w) = slot else {
            return Ok(());
        };
        let mut result = Ok(());
        if w.tail > 0 && !w.broken {
            let FatStorage {
                vm,
                geo,
                space,
                tails,
                ..
            } = &mut *self;
            let tail = tails[idx];
            let n = usize::from(w.tail);
            result = push(vm, geo, space, &mut w, &tail[..n]);
        }
        if let Err(e) = self.vm.close_file(w.raw) {
            w.broken = true;
            result = result.and(Err(lib_err(e)));
        }
        if w.broken {
            warn!("a write failed: checking the file's clusters");
            if self.repair(w.key).is_err() {
                warn!("could not repair the file's clusters");
            }
        }
        let g = self.geo;
        let space = self.space;
        let flushed = self.with(|d| {
            fat::write_fsinfo(d, &g, &space)?;
            d.flush()
        });
        result.and(flushed)
    }

    fn metadata(&mut self, path: &str) -> Result<Metadata> {
        self.volume()?;
        let g = self.geo;
        match self.with(|d| resolve(d, &g, path))? {
            Target::Root => Ok(Metadata {
                kind: Kind::Dir,
                size: 0,
                modified: None,
            }),
            Target::Entry { found, .. } => Ok(self.meta(&found)),
        }
    }

    fn list(
        &mut self,
        path: &str,
        skip: usize,
        f: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<()> {
        self.volume()?;
        let g = self.geo;
        let dir = self.with(|d| resolve_dir(d, &g, path))?;
        // Carry on where an earlier call stopped, when this call continues it.
        let hit = self
            .resume
            .iter()
            .position(|r| matches!(r, Some(r) if r.dir == dir && r.count as usize == skip));
        let mut last = hit
            .and_then(|i| self.resume[i].take())
            .map(|r| (r.index, r.block));
        // Where this call's stop is kept: its own entry, else a free one,
        // else the oldest in turn.
        let keep = hit
            .or_else(|| self.resume.iter().position(Option::is_none))
            .or_else(|| {
                let v = self.resume_victim.checked_rem(FILES)?;
                self.resume_victim = (v + 1) % FILES;
                Some(v)
            });
        let mut seen = if last.is_some() { skip } else { 0 };
        let mut given = seen;
        let mut name = [0u8; dirent::MAX_NAME_UTF8];
        self.with(|d| {
            dir::entries_after(d, &g, dir, last, |item| {
                seen += 1;
                if seen <= skip {
                    return ControlFlow::Continue(());
                }
                let meta = self.meta(&item.found);
                let entry = DirEntry {
                    name: item.name(&mut name),
                    meta,
                };
                if f(&entry) {
                    given = seen;
                    last = Some((item.found.index, item.found.key.block));
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            })
        })?;
        if let (Some((index, block)), Ok(count), Some(keep)) = (last, u32::try_from(given), keep) {
            self.resume[keep] = Some(Resume {
                dir,
                count,
                index,
                block,
            });
        }
        Ok(())
    }

    fn mkdir(&mut self, path: &str) -> Result<()> {
        self.volume()?;
        self.resume = [None; FILES];
        let (parent_path, name) = split(path).ok_or(Error::AlreadyExists)?;
        let g = self.geo;
        let parent = self.with(|d| resolve_dir(d, &g, parent_path))?;
        if self.with(|d| dir::find(d, &g, parent, name))?.is_some() {
            return Err(Error::AlreadyExists);
        }
        dirent::validate(name).map_err(name_error)?;
        let (date, time) = self.now();
        let space = &mut self.space;
        let cluster = self.vm.device(|d| {
            let c = fat::allocate(d, &g, space, None)?;
            dir::init_dir(d, &g, c, parent, date, time)?;
            fat::write_fsinfo(d, &g, space)?;
            d.flush()?;
            Ok(c)
        })?;
        match self.create(parent, name, dirent::ATTR_DIRECTORY, cluster) {
            Ok(_) => Ok(()),
            Err(e) => {
                // Give the cluster back.
                let space = &mut self.space;
                let _ = self.vm.device(|d| {
                    fat::free_chain(d, &g, space, cluster)?;
                    fat::write_fsinfo(d, &g, space)?;
                    d.flush()
                });
                Err(e)
            }
        }
    }

    fn rmdir(&mut self, path: &str) -> Result<()> {
        self.volume()?;
        self.resume = [None; FILES];
        let g = self.geo;
        let (parent, found) = match self.with(|d| resolve(d, &g, path))? {
            Target::Root => return Err(Error::PermissionDenied),
            Target::Entry { parent, found } => (parent, found),
        };
        let dir = child(&g, &found)?;
        if !self.with(|d| dir::is_empty(d, &g, dir))? {
            return Err(Error::DirectoryNotEmpty);
        }
        self.delete(parent, &found)
    }

    fn remove(&mut self, path: &str) -> Result<()> {
        self.volume()?;
        self.resume = [None; FILES];
        let g = self.geo;
        let (parent, found) = match self.with(|d| resolve(d, &g, path))? {
            Target::Root => return Err(Error::IsADirectory),
            Target::Entry { parent, found } => (parent, found),
        };
        if found.entry.is_dir() {
            return Err(Error::IsADirectory);
        }
        if self.is_open(found.key) {
            return Err(Error::Busy);
        }
        if found.entry.attr & dirent::ATTR_READ_ONLY != 0 {
            return Err(Error::PermissionDenied);
        }
        self.delete(parent, &found)
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        self.volume()?;
        self.resume = [None; FILES];
        let g = self.geo;
        let (src_parent, src) = match self.with(|d| resolve(d, &g, from))? {
            Target::Root => return Err(Error::PermissionDenied),
            Target::Entry { parent, found } => (parent, found),
        };
        if self.is_open(src.key) {
            return Err(Error::Busy);
        }
        let (dst_path, name) = split(to).ok_or(Error::AlreadyExists)?;
        let dst_parent = self.with(|d| resolve_dir(d, &g, dst_path))?;
        let units_len = dirent::validate(name).map_err(name_error)?;
        if let Some(existing) = self.with(|d| dir::find(d, &g, dst_parent, name))? {
            if existing.key != src.key {
                return Err(Error::AlreadyExists);
            }
        }
        let same_dir = dst_parent == src_parent;
        let moved_dir = (src.entry.is_dir() && !same_dir).then_some(src.entry.cluster);
        if let Some(moved) = moved_dir {
            // A directory cannot move into itself or below itself.
            self.with(|d| {
                let mut cur = dst_parent;
                for _ in 0..4096 {
                    match cur {
                        DirRef::Chain(c) if c == moved => return Err(Error::PermissionDenied),
                        _ if cur.is_root(&g) => return Ok(()),
                        DirRef::Chain(c) => cur = dir::parent(d, &g, c)?,
                        DirRef::Root16 => return Ok(()),
                    }
                }
                Err(Error::Io)
            })?;
        }
        let alias = self.alias(dst_parent, name, same_dir.then_some(src.index))?;
        let needs_long = dirent::exact_short(name).is_none();
        let long = needs_long.then_some(name);
        let slots = if needs_long {
            dirent::lfn_slots(units_len) as u32
        } else {
            0
        } + 1;
        let reuse = same_dir.then_some((src.first, src.slots));
        // In the same directory the new entry takes the old one's place when
        // it fits there (ending on the same slot); else the first room.
        let (start, gap) = if same_dir && slots <= src.slots {
            (src.first + src.slots - slots, None)
        } else {
            self.room(dst_parent, slots, reuse)?
        };
        let mut entry = src.entry;
        entry.name = alias;
        entry.case = 0;
        let per_block = dirent::SLOTS_PER_BLOCK as u32;
        let one_block = same_dir
            && [
                start,
                start + slots - 1,
                src.first,
                src.first + src.slots - 1,
            ]
            .iter()
            .all(|&i| i / per_block == start / per_block);
        let space = self.space;
        self.with(|d| {
            dir::delete_slots(d, &g, src_parent, src.first, src.slots, None)?;
            if !one_block {
                // The old entry goes first: a cut in between loses the name
                // (fsck recovers the clusters) where the other order would
                // leave two entries sharing the clusters. In one block, one
                // write does both.
                d.flush()?;
            }
            dir::write_entry(d, &g, dst_parent, start, gap, long, &entry)?;
            fat::write_fsinfo(d, &g, &space)?;
            d.flush()?;
            if let Some(moved) = moved_dir {
                dir::set_parent(d, &g, moved, dst_parent)?;
                d.flush()?;
            }
            Ok(())
        })
    }

    fn free_space(&mut self) -> Option<u64> {
        self.volume?;
        Some(u64::from(self.space.free.saturating_sub(RESERVE)) * u64::from(self.geo.cluster_bytes))
    }

    fn open_files(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| !matches!(s, Slot::Free))
            .count()
    }
}

/// Reads from a file by its chain (see the module docs for why not through
/// the library).
fn read_file(d: &impl Blocks, g: &Geometry, r: &mut Reader, buf: &mut [u8]) -> Result<usize> {
    let want = buf.len().min((r.size - r.pos) as usize);
    let mut done = 0;
    while done < want {
        let index = r.pos / g.cluster_bytes;
        if r.cluster == 0 || index < r.index {
            if !g.valid_cluster(r.first) {
                return Err(Error::Io);
            }
            r.cluster = r.first;
            r.index = 0;
            r.run = fat::contiguous_after(d, g, r.cluster)?;
        }
        while r.index < index {
            if r.run > 0 {
                // Contiguous: no need to ask the FAT.
                let step = r.run.min(index - r.index);
                r.cluster += step;
                r.index += step;
                r.run -= step;
                continue;
            }
            match fat::next(d, g, r.cluster)? {
                Next::Cluster(c) => r.cluster = c,
                // The chain is shorter than the size says.
                Next::End => return Err(Error::Io),
            }
            r.index += 1;
            r.run = fat::contiguous_after(d, g, r.cluster)?;
        }
        let off = r.pos % g.cluster_bytes;
        let blk = g.cluster_block(r.cluster) + off / 512;
        let at = (off % 512) as usize;
        let n = (512 - at).min(want - done);
        d.view(blk, |b| buf[done..done + n].copy_from_slice(&b[at..at + n]))?;
        done += n;
        r.pos += n as u32;
    }
    Ok(done)
}
