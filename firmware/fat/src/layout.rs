//! Finding the FAT volume on a device: partition table or bare volume, and
//! the boot sector's geometry, checked before embedded-sdmmc sees it.
//!
//! embedded-sdmmc mounts only the first entry of an MBR partition table and
//! trusts the boot sector's numbers (a damaged one makes it divide by zero or
//! underflow). Here every number is checked first, and the result is one of
//! the [`MountError`]s a person can act on. The library is then shown a disk
//! it accepts: `disk::Disk` presents a one-entry partition table in block 0,
//! shifting the blocks of a bare volume by one.

use core::fmt;

/// Why a device cannot be mounted. The `Display` text is meant for the
/// person who made the image.
#[derive(Debug)]
pub enum MountError<E> {
    /// The device failed.
    Device(E),
    /// The first sector is blank.
    Unformatted,
    /// The first sector is neither a FAT boot sector nor a partition table.
    NotFat,
    /// A partition table with no partition in it.
    NoPartition,
    /// The partition table's first partition is not FAT (its type byte).
    PartitionType(u8),
    /// A GUID partition table.
    Gpt,
    /// A FAT12 volume (embedded-sdmmc handles FAT16 and FAT32 only).
    Fat12,
    /// A FAT variant this crate does not handle.
    Unsupported(&'static str),
    /// Numbers in the boot sector or the file system that cannot be right.
    Damaged(&'static str),
}

impl<E: fmt::Display> fmt::Display for MountError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountError::Device(e) => write!(f, "the storage device failed: {e}"),
            MountError::Unformatted => {
                f.write_str("no FAT file system found: the image is unformatted (its first sector is blank)")
            }
            MountError::NotFat => f.write_str(
                "no FAT file system found: the first sector is neither a FAT boot sector nor a partition table",
            ),
            MountError::NoPartition => f.write_str("no FAT file system found: the partition table is empty"),
            MountError::PartitionType(t) => {
                write!(f, "no FAT file system found: the first partition has type 0x{t:02X}, not FAT16 or FAT32")
            }
            MountError::Gpt => f.write_str(
                "GPT partition tables are not supported: use an MBR partition table or a bare FAT volume",
            ),
            MountError::Fat12 => {
                f.write_str("FAT12 is not supported: format the volume as FAT32 or FAT16 (mkfs.fat -F 32)")
            }
            MountError::Unsupported(why) => write!(f, "unsupported FAT file system: {why}"),
            MountError::Damaged(why) => write!(f, "damaged FAT file system: {why}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for MountError<E> {}

/// FAT16 or FAT32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatType {
    Fat16,
    Fat32,
}

/// What a boot sector says, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bpb {
    pub fat_type: FatType,
    pub sectors_per_cluster: u32,
    pub reserved: u32,
    pub num_fats: u32,
    pub root_entries: u32,
    pub total_sectors: u32,
    pub fat_size: u32,
    pub root_cluster: u32,
    pub fsinfo: u32,
    pub cluster_count: u32,
}

/// What is wrong with a boot sector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Fat12,
    Unsupported(&'static str),
    Damaged(&'static str),
}

impl<E> From<Fault> for MountError<E> {
    fn from(f: Fault) -> Self {
        match f {
            Fault::Fat12 => MountError::Fat12,
            Fault::Unsupported(s) => MountError::Unsupported(s),
            Fault::Damaged(s) => MountError::Damaged(s),
        }
    }
}

fn u16_at(s: &[u8; 512], i: usize) -> u32 {
    u32::from(u16::from_le_bytes([s[i], s[i + 1]]))
}

fn u32_at(s: &[u8; 512], i: usize) -> u32 {
    u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]])
}

/// Does this sector look like a FAT boot sector (as opposed to a partition
/// table)? A boot sector starts with a jump and has either a plausible
/// sector size or a `FAT` type string; a partition table's boot code has
/// neither. Whether its numbers make sense is [`parse_bpb`]'s job, so that a
/// damaged boot sector is reported as damaged.
pub fn looks_like_boot_sector(s: &[u8; 512]) -> bool {
    let jump = (s[0] == 0xEB && s[2] == 0x90) || s[0] == 0xE9;
    let bps = matches!(u16_at(s, 11), 512 | 1024 | 2048 | 4096);
    let label = s[54..57] == *b"FAT" || s[82..85] == *b"FAT";
    jump && (bps || label)
}

/// Checks a boot sector; `available` is how many sectors the volume may use
/// (its partition, or the device for a bare volume).
pub fn parse_bpb(s: &[u8; 512], available: u32) -> Result<Bpb, Fault> {
    if s[510] != 0x55 || s[511] != 0xAA {
        return Err(Fault::Damaged("the boot sector has no 0x55AA signature"));
    }
    if u16_at(s, 11) != 512 {
        return Err(Fault::Unsupported("the sector size is not 512 bytes"));
    }
    let spc = u32::from(s[13]);
    if spc == 0 || !spc.is_power_of_two() {
        return Err(Fault::Damaged("the cluster size is not a power of two"));
    }
    let reserved = u16_at(s, 14);
    if reserved == 0 {
        return Err(Fault::Damaged("no reserved sectors"));
    }
    let num_fats = u32::from(s[16]);
    match num_fats {
        0 => return Err(Fault::Damaged("the number of FATs is zero")),
        1 | 2 => {}
        _ => return Err(Fault::Unsupported("more than two FATs")),
    }
    let root_entries = u16_at(s, 17);
    let fat_size = match u16_at(s, 22) {
        0 => u32_at(s, 36),
        n => n,
    };
    if fat_size == 0 {
        return Err(Fault::Damaged("the FAT size is zero"));
    }
    let total = match u16_at(s, 19) {
        0 => u32_at(s, 32),
        n => n,
    };
    if total == 0 {
        return Err(Fault::Damaged("the sector count is zero"));
    }
    if total > available {
        return Err(Fault::Damaged(
            "the file system is larger than its partition or device",
        ));
    }
    let root_sectors = (root_entries * 32).div_ceil(512);
    let meta =
        u64::from(reserved) + u64::from(num_fats) * u64::from(fat_size) + u64::from(root_sectors);
    if meta >= u64::from(total) {
        return Err(Fault::Damaged("the FATs leave no room for data"));
    }
    let cluster_count = (total - meta as u32) / spc;
    let mut bpb = Bpb {
        fat_type: FatType::Fat16,
        sectors_per_cluster: spc,
        reserved,
        num_fats,
        root_entries,
        total_sectors: total,
        fat_size,
        root_cluster: 0,
        fsinfo: 0,
        cluster_count,
    };
    // The FAT type follows from the cluster count alone (Microsoft's rule,
    // which embedded-sdmmc, Linux and mtools follow too).
    if cluster_count < 4085 {
        return Err(Fault::Fat12);
    }
    if cluster_count < 65525 {
        if root_entries == 0 {
            return Err(Fault::Damaged("a FAT16 volume without a root directory"));
        }
        if u64::from(fat_size) * 256 < u64::from(cluster_count) + 2 {
            return Err(Fault::Damaged("the FAT is too small for the clusters"));
        }
        return Ok(bpb);
    }
    bpb.fat_type = FatType::Fat32;
    if root_entries != 0 || u16_at(s, 22) != 0 {
        return Err(Fault::Damaged("FAT16 fields set on a FAT32 volume"));
    }
    if u16_at(s, 42) != 0 {
        return Err(Fault::Unsupported("FAT32 version is not 0.0"));
    }
    if u16_at(s, 40) & 0x80 != 0 {
        return Err(Fault::Unsupported("FAT mirroring is disabled"));
    }
    if cluster_count > 0x0FFF_FFF5 {
        return Err(Fault::Damaged("too many clusters for FAT32"));
    }
    if u64::from(fat_size) * 128 < u64::from(cluster_count) + 2 {
        return Err(Fault::Damaged("the FAT is too small for the clusters"));
    }
    bpb.root_cluster = u32_at(s, 44);
    if bpb.root_cluster < 2 || bpb.root_cluster >= cluster_count + 2 {
        return Err(Fault::Damaged("the root directory cluster is out of range"));
    }
    bpb.fsinfo = u16_at(s, 48);
    if bpb.fsinfo == 0 || bpb.fsinfo >= reserved {
        return Err(Fault::Damaged("the FSInfo sector is out of range"));
    }
    Ok(bpb)
}

/// True if an FSInfo sector has its three signatures.
pub fn fsinfo_ok(s: &[u8; 512]) -> bool {
    u32_at(s, 0) == 0x4161_5252 && u32_at(s, 484) == 0x6141_7272 && u32_at(s, 508) == 0xAA55_0000
}

/// Partition types that may hold FAT (plain, LBA and hidden variants;
/// FAT12's 0x01 too: the cluster count decides).
fn fat_partition_type(t: u8) -> bool {
    matches!(
        t,
        0x01 | 0x04 | 0x06 | 0x0B | 0x0C | 0x0E | 0x11 | 0x14 | 0x16 | 0x1B | 0x1C | 0x1E
    )
}

/// Where the volume is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// First sector of the volume on the device.
    pub start: u32,
    /// Sectors it may use.
    pub sectors: u32,
    /// No partition table: the volume starts at sector 0.
    pub bare: bool,
}

/// What sector 0 says about where the volume is.
pub fn locate(sector0: &[u8; 512], device_sectors: u32) -> Result<Location, MountErrorKind> {
    if sector0.iter().all(|&b| b == 0) {
        return Err(MountErrorKind::Unformatted);
    }
    if looks_like_boot_sector(sector0) {
        return Ok(Location {
            start: 0,
            sectors: device_sectors,
            bare: true,
        });
    }
    if sector0[510] != 0x55 || sector0[511] != 0xAA {
        return Err(MountErrorKind::NotFat);
    }
    let entry = |i: usize| &sector0[446 + 16 * i..446 + 16 * (i + 1)];
    let mut first_type = None;
    for i in 0..4 {
        let e = entry(i);
        let t = e[4];
        if t == 0 {
            continue;
        }
        if t == 0xEE {
            return Err(MountErrorKind::Gpt);
        }
        first_type.get_or_insert(t);
        if !fat_partition_type(t) {
            continue;
        }
        if e[0] & 0x7F != 0 {
            return Err(MountErrorKind::Damaged(
                "a partition table entry has a bad status byte",
            ));
        }
        let start = u32::from_le_bytes([e[8], e[9], e[10], e[11]]);
        let len = u32::from_le_bytes([e[12], e[13], e[14], e[15]]);
        if start == 0 || start >= device_sectors || len == 0 {
            return Err(MountErrorKind::Damaged(
                "the FAT partition lies outside the device",
            ));
        }
        return Ok(Location {
            start,
            sectors: len.min(device_sectors - start),
            bare: false,
        });
    }
    Err(match first_type {
        Some(t) => MountErrorKind::PartitionType(t),
        None => MountErrorKind::NoPartition,
    })
}

/// [`MountError`] without the device error (what [`locate`] can find).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountErrorKind {
    Unformatted,
    NotFat,
    NoPartition,
    PartitionType(u8),
    Gpt,
    Damaged(&'static str),
}

impl<E> From<MountErrorKind> for MountError<E> {
    fn from(k: MountErrorKind) -> Self {
        match k {
            MountErrorKind::Unformatted => MountError::Unformatted,
            MountErrorKind::NotFat => MountError::NotFat,
            MountErrorKind::NoPartition => MountError::NoPartition,
            MountErrorKind::PartitionType(t) => MountError::PartitionType(t),
            MountErrorKind::Gpt => MountError::Gpt,
            MountErrorKind::Damaged(s) => MountError::Damaged(s),
        }
    }
}

/// Where things are, in the block numbers the library and this crate use
/// (the device's, plus one for a bare volume: see `disk`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub fat_type: FatType,
    pub sectors_per_cluster: u32,
    pub cluster_bytes: u32,
    pub fat_start: u32,
    pub fat_size: u32,
    pub num_fats: u32,
    /// FAT16's fixed root directory (zero blocks on FAT32).
    pub root_start: u32,
    pub root_blocks: u32,
    /// FAT32's root directory cluster.
    pub root_cluster: u32,
    pub data_start: u32,
    pub cluster_count: u32,
    /// FAT32's FSInfo sector.
    pub fsinfo: Option<u32>,
}

impl Geometry {
    /// Before mounting: no clusters, so no cluster number is valid.
    pub const NONE: Geometry = Geometry {
        fat_type: FatType::Fat32,
        sectors_per_cluster: 0,
        cluster_bytes: 0,
        fat_start: 0,
        fat_size: 0,
        num_fats: 0,
        root_start: 0,
        root_blocks: 0,
        root_cluster: 0,
        data_start: 0,
        cluster_count: 0,
        fsinfo: None,
    };

    pub fn new(bpb: &Bpb, lba: u32) -> Self {
        let fat_start = lba + bpb.reserved;
        let root_start = fat_start + bpb.num_fats * bpb.fat_size;
        let root_blocks = (bpb.root_entries * 32).div_ceil(512);
        let fat32 = bpb.fat_type == FatType::Fat32;
        Geometry {
            fat_type: bpb.fat_type,
            sectors_per_cluster: bpb.sectors_per_cluster,
            cluster_bytes: bpb.sectors_per_cluster * 512,
            fat_start,
            fat_size: bpb.fat_size,
            num_fats: bpb.num_fats,
            root_start,
            root_blocks,
            root_cluster: bpb.root_cluster,
            data_start: root_start + root_blocks,
            cluster_count: bpb.cluster_count,
            fsinfo: fat32.then_some(lba + bpb.fsinfo),
        }
    }

    pub fn fat32(&self) -> bool {
        self.fat_type == FatType::Fat32
    }

    /// One past the last cluster number.
    pub fn end(&self) -> u32 {
        self.cluster_count + 2
    }

    pub fn valid_cluster(&self, c: u32) -> bool {
        c >= 2 && c < self.end()
    }

    /// First block of cluster `c` (a valid cluster).
    pub fn cluster_block(&self, c: u32) -> u32 {
        self.data_start + (c - 2) * self.sectors_per_cluster
    }

    /// Clusters needed for `bytes`.
    pub fn clusters_for(&self, bytes: u64) -> u32 {
        bytes.div_ceil(u64::from(self.cluster_bytes)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FAT32 boot sector like mkfs.fat writes for a 64 MiB volume.
    pub fn fat32_sector() -> [u8; 512] {
        let mut s = [0u8; 512];
        s[0] = 0xEB;
        s[1] = 0x58;
        s[2] = 0x90;
        s[11..13].copy_from_slice(&512u16.to_le_bytes());
        s[13] = 1;
        s[14..16].copy_from_slice(&32u16.to_le_bytes());
        s[16] = 2;
        s[21] = 0xF8;
        s[32..36].copy_from_slice(&131072u32.to_le_bytes());
        s[36..40].copy_from_slice(&1009u32.to_le_bytes());
        s[44..48].copy_from_slice(&2u32.to_le_bytes());
        s[48..50].copy_from_slice(&1u16.to_le_bytes());
        s[510] = 0x55;
        s[511] = 0xAA;
        s
    }

    pub fn fat16_sector() -> [u8; 512] {
        let mut s = [0u8; 512];
        s[0] = 0xEB;
        s[1] = 0x3C;
        s[2] = 0x90;
        s[11..13].copy_from_slice(&512u16.to_le_bytes());
        s[13] = 4;
        s[14..16].copy_from_slice(&4u16.to_le_bytes());
        s[16] = 2;
        s[17..19].copy_from_slice(&512u16.to_le_bytes());
        s[21] = 0xF8;
        s[22..24].copy_from_slice(&64u16.to_le_bytes());
        s[32..36].copy_from_slice(&65536u32.to_le_bytes());
        s[510] = 0x55;
        s[511] = 0xAA;
        s
    }

    #[test]
    fn fat32_geometry() {
        let bpb = parse_bpb(&fat32_sector(), 131072).unwrap();
        assert_eq!(bpb.fat_type, FatType::Fat32);
        assert_eq!(bpb.cluster_count, 131072 - 32 - 2 * 1009);
        let g = Geometry::new(&bpb, 2048);
        assert_eq!(g.fat_start, 2048 + 32);
        assert_eq!(g.data_start, 2048 + 32 + 2018);
        assert_eq!(g.cluster_block(2), g.data_start);
        assert_eq!(g.fsinfo, Some(2049));
        assert_eq!(g.root_blocks, 0);
        assert!(g.valid_cluster(2) && !g.valid_cluster(1) && !g.valid_cluster(g.end()));
    }

    #[test]
    fn fat16_geometry() {
        let bpb = parse_bpb(&fat16_sector(), 65536).unwrap();
        assert_eq!(bpb.fat_type, FatType::Fat16);
        let g = Geometry::new(&bpb, 0);
        assert_eq!(g.root_start, 4 + 128);
        assert_eq!(g.root_blocks, 32);
        assert_eq!(g.data_start, 4 + 128 + 32);
        assert_eq!(g.fsinfo, None);
        assert_eq!(g.cluster_count, (65536 - 164) / 4);
    }

    #[test]
    fn damaged_boot_sectors_are_refused_not_trusted() {
        let with = |f: &dyn Fn(&mut [u8; 512])| {
            let mut s = fat32_sector();
            f(&mut s);
            parse_bpb(&s, 131072)
        };
        assert!(matches!(with(&|s| s[510] = 0), Err(Fault::Damaged(_))));
        assert!(matches!(with(&|s| s[12] = 4), Err(Fault::Unsupported(_))));
        assert!(matches!(with(&|s| s[13] = 0), Err(Fault::Damaged(_))));
        assert!(matches!(with(&|s| s[13] = 3), Err(Fault::Damaged(_))));
        assert!(matches!(
            with(&|s| s[14..16].fill(0)),
            Err(Fault::Damaged(_))
        ));
        assert!(matches!(with(&|s| s[16] = 0), Err(Fault::Damaged(_))));
        assert!(matches!(with(&|s| s[16] = 3), Err(Fault::Unsupported(_))));
        assert!(matches!(
            with(&|s| s[36..40].fill(0)),
            Err(Fault::Damaged(_))
        ));
        assert!(matches!(
            with(&|s| s[32..36].fill(0)),
            Err(Fault::Damaged(_))
        ));
        assert!(matches!(
            with(&|s| s[36..40].copy_from_slice(&70000u32.to_le_bytes())),
            Err(Fault::Damaged(_))
        ));
        assert!(matches!(
            with(&|s| s[36..40].copy_from_slice(&900u32.to_le_bytes())),
            Err(Fault::Damaged(_))
        ));
        assert!(matches!(
            with(&|s| s[44..48].fill(0)),
            Err(Fault::Damaged(_))
        ));
        assert!(matches!(
            with(&|s| s[44..48].fill(0xFF)),
            Err(Fault::Damaged(_))
        ));
        assert!(matches!(
            with(&|s| s[48..50].fill(0)),
            Err(Fault::Damaged(_))
        ));
        assert!(matches!(with(&|s| s[42] = 1), Err(Fault::Unsupported(_))));
        assert!(matches!(
            with(&|s| s[40] = 0x81),
            Err(Fault::Unsupported(_))
        ));
        // Larger than the room it has.
        assert!(matches!(
            parse_bpb(&fat32_sector(), 131071),
            Err(Fault::Damaged(_))
        ));
        // All 0xFF: no panic either.
        assert!(parse_bpb(&[0xFF; 512], u32::MAX).is_err());
    }

    #[test]
    fn fat12_is_named() {
        // A 1.44 MB floppy.
        let mut s = fat16_sector();
        s[13] = 1;
        s[17..19].copy_from_slice(&224u16.to_le_bytes());
        s[19..21].copy_from_slice(&2880u16.to_le_bytes());
        s[22..24].copy_from_slice(&9u16.to_le_bytes());
        s[32..36].fill(0);
        assert_eq!(parse_bpb(&s, 2880), Err(Fault::Fat12));
    }

    fn mbr(entries: &[(u8, u8, u32, u32)]) -> [u8; 512] {
        let mut s = [0u8; 512];
        s[0] = 0xFA; // boot code, not a jump
        for (i, &(status, t, start, len)) in entries.iter().enumerate() {
            let e = &mut s[446 + 16 * i..446 + 16 * (i + 1)];
            e[0] = status;
            e[4] = t;
            e[8..12].copy_from_slice(&start.to_le_bytes());
            e[12..16].copy_from_slice(&len.to_le_bytes());
        }
        s[510] = 0x55;
        s[511] = 0xAA;
        s
    }

    #[test]
    fn locating_the_volume() {
        assert_eq!(locate(&[0; 512], 100), Err(MountErrorKind::Unformatted));
        assert_eq!(locate(&[0x5A; 512], 100), Err(MountErrorKind::NotFat));
        assert_eq!(
            locate(&fat32_sector(), 131072),
            Ok(Location {
                start: 0,
                sectors: 131072,
                bare: true
            })
        );
        assert_eq!(
            locate(&mbr(&[(0x80, 0x0C, 2048, 1000)]), 4096),
            Ok(Location {
                start: 2048,
                sectors: 1000,
                bare: false
            })
        );
        // The first FAT partition counts, and a partition cut short by the
        // device end is clipped (the boot sector check then decides).
        assert_eq!(
            locate(&mbr(&[(0, 0x83, 63, 100), (0, 0x0E, 2048, 100_000)]), 4096),
            Ok(Location {
                start: 2048,
                sectors: 2048,
                bare: false
            })
        );
        assert_eq!(
            locate(&mbr(&[(0, 0x83, 63, 100)]), 4096),
            Err(MountErrorKind::PartitionType(0x83))
        );
        assert_eq!(
            locate(&mbr(&[(0, 0xEE, 1, 100)]), 4096),
            Err(MountErrorKind::Gpt)
        );
        assert_eq!(locate(&mbr(&[]), 4096), Err(MountErrorKind::NoPartition));
        assert!(matches!(
            locate(&mbr(&[(0x12, 0x0C, 2048, 10)]), 4096),
            Err(MountErrorKind::Damaged(_))
        ));
        assert!(matches!(
            locate(&mbr(&[(0, 0x0C, 5000, 10)]), 4096),
            Err(MountErrorKind::Damaged(_))
        ));
    }

    #[test]
    fn messages_say_what_to_do() {
        let m = |e: MountError<&str>| e.to_string();
        assert_eq!(
            m(MountError::Unformatted),
            "no FAT file system found: the image is unformatted (its first sector is blank)"
        );
        assert!(m(MountError::Fat12).contains("FAT12 is not supported"));
        assert!(m(MountError::PartitionType(0x83)).contains("type 0x83"));
        assert!(m(MountError::Device("EIO")).contains("EIO"));
    }
}
