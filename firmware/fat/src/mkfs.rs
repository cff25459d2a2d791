//! Formatting: an SD-card-like layout (MBR, one partition starting at 1 MiB)
//! or a bare volume, FAT32 or FAT16, written block by block to any
//! [`BlockDevice`].
//!
//! Cluster sizes: FAT32 takes the largest cluster up to 4 KiB that still
//! gives FAT32's minimum of 65525 clusters (plus a margin of 16, as
//! Microsoft advises: drivers that count slightly differently must agree on
//! the type); FAT16 the smallest cluster that keeps the count under 65525.
//! The data area starts on a 4 KiB boundary of the device.

use core::fmt;

use embedded_sdmmc::{Block, BlockDevice, BlockIdx};

use crate::layout::FatType;

/// Where the partition starts on a partitioned device (1 MiB, as SD card
/// formatters do).
pub const PARTITION_START: u32 = 2048;
const MARGIN: u32 = 16;
/// Data area alignment, in sectors.
const ALIGN: u32 = 8;

/// How to format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub fat_type: FatType,
    /// Write an MBR with one partition (an SD card's layout); else a bare
    /// volume from sector 0 (what `mkfs.fat` makes of a whole image).
    pub partitioned: bool,
    /// Volume serial number.
    pub volume_id: u32,
    /// Volume label, space padded (`NO NAME    ` for none).
    pub label: [u8; 11],
    /// The device reads as zeros already (a new sparse file): the FATs and
    /// the root directory need not be zeroed.
    pub zeroed: bool,
}

impl Options {
    pub fn new(fat_type: FatType) -> Self {
        Options {
            fat_type,
            partitioned: true,
            volume_id: 0x4654_5044,
            label: *b"NO NAME    ",
            zeroed: false,
        }
    }
}

/// Why formatting failed.
#[derive(Debug)]
pub enum FormatError<E> {
    Device(E),
    /// The device is too small for this FAT type; the minimum in bytes.
    TooSmall(u64),
    /// The device is too large for this FAT type.
    TooLarge,
}

impl<E: fmt::Display> fmt::Display for FormatError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Device(e) => write!(f, "the storage device failed: {e}"),
            FormatError::TooSmall(min) => {
                write!(
                    f,
                    "too small for this FAT type: at least {} KiB are needed",
                    min.div_ceil(1024)
                )
            }
            FormatError::TooLarge => {
                f.write_str("too large for this FAT type (FAT16 ends at 2 GiB, FAT32 at 2 TiB)")
            }
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for FormatError<E> {}

/// A volume's layout, before anything is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub fat_type: FatType,
    /// First sector of the volume on the device.
    pub start: u32,
    /// Sectors of the volume.
    pub sectors: u32,
    pub sectors_per_cluster: u32,
    pub reserved: u32,
    pub fat_size: u32,
    pub root_entries: u32,
    pub clusters: u32,
}

impl Plan {
    fn root_sectors(&self) -> u32 {
        self.root_entries * 32 / 512
    }
    fn fat_start(&self) -> u32 {
        self.start + self.reserved
    }
    fn data_start(&self) -> u32 {
        self.fat_start() + 2 * self.fat_size + self.root_sectors()
    }
}

/// Lays out a volume of `fat_type` on a device of `device_sectors`.
pub fn plan(
    device_sectors: u32,
    fat_type: FatType,
    partitioned: bool,
) -> Result<Plan, FormatError<()>> {
    let start = if partitioned { PARTITION_START } else { 0 };
    let (entry_bytes, min_reserved, root_entries, min_clusters, max_clusters) = match fat_type {
        FatType::Fat32 => (4u64, 32u32, 0u32, 65525 + MARGIN, 0x0FFF_FFF5),
        FatType::Fat16 => (2, 1, 512, 4085 + MARGIN, 65524 - MARGIN),
    };
    let min_bytes = |spc: u32| {
        // Enough sectors for min_clusters with this cluster size, roughly.
        let fat = (u64::from(min_clusters) + 2) * entry_bytes / 512 + 1;
        (u64::from(start)
            + u64::from(min_reserved)
            + 2 * fat
            + u64::from(root_entries) / 16
            + ALIGN as u64
            + u64::from(min_clusters) * u64::from(spc))
            * 512
    };
    let sectors = device_sectors
        .checked_sub(start)
        .filter(|&s| s > 0)
        .ok_or(FormatError::TooSmall(min_bytes(1)))?;
    let layout = |spc: u32| -> Plan {
        // The FAT sized as if every sector were data: a little too big,
        // never too small.
        let fat_size =
            ((u64::from(sectors) / u64::from(spc) + 2) * entry_bytes).div_ceil(512) as u32;
        let root_sectors = root_entries * 32 / 512;
        let mut reserved = min_reserved;
        let data_start = start + reserved + 2 * fat_size + root_sectors;
        reserved += (ALIGN - data_start % ALIGN) % ALIGN;
        let meta = reserved + 2 * fat_size + root_sectors;
        let clusters = sectors.saturating_sub(meta) / spc;
        Plan {
            fat_type,
            start,
            sectors,
            sectors_per_cluster: spc,
            reserved,
            fat_size,
            root_entries,
            clusters,
        }
    };
    match fat_type {
        FatType::Fat32 => {
            // Largest cluster (up to 4 KiB) that keeps FAT32's cluster count.
            let p = [8, 4, 2, 1]
                .into_iter()
                .map(layout)
                .find(|p| p.clusters >= min_clusters)
                .ok_or(FormatError::TooSmall(min_bytes(1)))?;
            if p.clusters > max_clusters {
                return Err(FormatError::TooLarge);
            }
            Ok(p)
        }
        FatType::Fat16 => {
            let p = [1, 2, 4, 8, 16, 32, 64]
                .into_iter()
                .map(layout)
                .find(|p| p.clusters <= max_clusters)
                .ok_or(FormatError::TooLarge)?;
            if p.clusters < min_clusters {
                return Err(FormatError::TooSmall(min_bytes(p.sectors_per_cluster)));
            }
            Ok(p)
        }
    }
}

fn put16(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 2].copy_from_slice(&(v as u16).to_le_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// CHS address of `lba` (255 heads, 63 sectors), or the "use LBA" maximum.
fn chs(lba: u32) -> [u8; 3] {
    let c = lba / (255 * 63);
    if c > 1023 {
        return [0xFE, 0xFF, 0xFF];
    }
    let h = (lba / 63) % 255;
    let s = lba % 63 + 1;
    [h as u8, (s as u8) | ((c >> 2) & 0xC0) as u8, c as u8]
}

fn mbr(p: &Plan, id: u32) -> Block {
    let mut b = Block::new();
    put32(&mut b.contents, 440, id);
    let e = &mut b[446..462];
    e[0] = 0x00;
    e[1..4].copy_from_slice(&chs(p.start));
    e[4] = match p.fat_type {
        FatType::Fat32 => 0x0C,
        FatType::Fat16 => 0x0E,
    };
    e[5..8].copy_from_slice(&chs(p.start + p.sectors - 1));
    put32(e, 8, p.start);
    put32(e, 12, p.sectors);
    b[510] = 0x55;
    b[511] = 0xAA;
    b
}

fn boot_sector(p: &Plan, o: &Options) -> Block {
    let mut b = Block::new();
    let fat32 = p.fat_type == FatType::Fat32;
    let code = if fat32 { 0x5A } else { 0x3E };
    b[0] = 0xEB;
    b[1] = (code - 2) as u8;
    b[2] = 0x90;
    b[3..11].copy_from_slice(b"FTPD-FAT");
    put16(&mut b.contents, 11, 512);
    b[13] = p.sectors_per_cluster as u8;
    put16(&mut b.contents, 14, p.reserved);
    b[16] = 2;
    put16(&mut b.contents, 17, p.root_entries);
    if !fat32 && p.sectors < 65536 {
        put16(&mut b.contents, 19, p.sectors);
    } else {
        put32(&mut b.contents, 32, p.sectors);
    }
    b[21] = 0xF8;
    put16(&mut b.contents, 24, 63);
    put16(&mut b.contents, 26, 255);
    put32(&mut b.contents, 28, p.start);
    let ext = if fat32 {
        put32(&mut b.contents, 36, p.fat_size);
        put32(&mut b.contents, 44, 2); // root directory cluster
        put16(&mut b.contents, 48, 1); // FSInfo
        put16(&mut b.contents, 50, 6); // backup boot sector
        b[82..90].copy_from_slice(b"FAT32   ");
        64
    } else {
        put16(&mut b.contents, 22, p.fat_size);
        b[54..62].copy_from_slice(b"FAT16   ");
        36
    };
    b[ext] = 0x80; // drive number
    b[ext + 2] = 0x29; // extended boot signature
    put32(&mut b.contents, ext + 3, o.volume_id);
    b[ext + 7..ext + 18].copy_from_slice(&o.label);
    // Not bootable: halt forever if someone tries.
    b[code] = 0xF4;
    b[code + 1] = 0xEB;
    b[code + 2] = 0xFD;
    b[510] = 0x55;
    b[511] = 0xAA;
    b
}

fn fsinfo(p: &Plan) -> Block {
    let mut b = Block::new();
    put32(&mut b.contents, 0, 0x4161_5252);
    put32(&mut b.contents, 484, 0x6141_7272);
    put32(&mut b.contents, 488, p.clusters - 1); // the root directory has one
    put32(&mut b.contents, 492, 3);
    put32(&mut b.contents, 508, 0xAA55_0000);
    b
}

/// Formats `dev` as `o` says; returns the layout written.
pub fn format<D: BlockDevice>(dev: &D, o: &Options) -> Result<Plan, FormatError<D::Error>> {
    let size = dev.num_blocks().map_err(FormatError::Device)?.0;
    let p = plan(size, o.fat_type, o.partitioned).map_err(|e| match e {
        FormatError::TooSmall(n) => FormatError::TooSmall(n),
        _ => FormatError::TooLarge,
    })?;
    let write = |idx: u32, b: &Block| {
        dev.write(core::slice::from_ref(b), BlockIdx(idx))
            .map_err(FormatError::Device)
    };
    let fat32 = p.fat_type == FatType::Fat32;
    if !o.zeroed {
        // Zero the reserved area, both FATs and the root directory (a FAT32
        // root is cluster 2: the first cluster of the data area).
        let zeros: [Block; 4] = core::array::from_fn(|_| Block::new());
        let end = p.data_start() + if fat32 { p.sectors_per_cluster } else { 0 };
        let mut i = p.start;
        while i < end {
            let n = (end - i).min(4);
            dev.write(&zeros[..n as usize], BlockIdx(i))
                .map_err(FormatError::Device)?;
            i += n;
        }
    }
    // FAT heads: media byte, then end-of-chain marks (and the root's).
    let mut head = Block::new();
    if fat32 {
        put32(&mut head.contents, 0, 0x0FFF_FFF8);
        put32(&mut head.contents, 4, 0x0FFF_FFFF);
        put32(&mut head.contents, 8, 0x0FFF_FFFF);
    } else {
        put16(&mut head.contents, 0, 0xFFF8);
        put16(&mut head.contents, 2, 0xFFFF);
    }
    write(p.fat_start(), &head)?;
    write(p.fat_start() + p.fat_size, &head)?;
    let boot = boot_sector(&p, o);
    if fat32 {
        let info = fsinfo(&p);
        write(p.start + 1, &info)?;
        write(p.start + 6, &boot)?;
        write(p.start + 7, &info)?;
    }
    // The boot sector last among the volume's blocks: until it is there, the
    // volume is not a volume.
    write(p.start, &boot)?;
    if o.partitioned {
        write(0, &mbr(&p, o.volume_id))?;
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Bpb, parse_bpb};

    const MIB: u32 = 2048;

    fn check(p: &Plan) -> Bpb {
        let bpb = parse_bpb(&boot_sector(p, &Options::new(p.fat_type)), p.sectors).unwrap();
        assert_eq!(bpb.fat_type, p.fat_type);
        assert_eq!(
            bpb.cluster_count, p.clusters,
            "our count is the parser's count"
        );
        assert_eq!((p.data_start()) % ALIGN, 0, "data area aligned");
        bpb
    }

    #[test]
    fn fat32_plans() {
        let p = plan(64 * MIB, FatType::Fat32, true).unwrap();
        assert_eq!(p.start, 2048);
        assert_eq!(
            p.sectors_per_cluster, 1,
            "64 MiB needs 512-byte clusters for FAT32"
        );
        assert!(p.clusters >= 65525 + MARGIN);
        check(&p);
        let p = plan(256 * MIB, FatType::Fat32, true).unwrap();
        assert_eq!(p.sectors_per_cluster, 4);
        check(&p);
        let p = plan(4096 * MIB, FatType::Fat32, false).unwrap();
        assert_eq!((p.start, p.sectors_per_cluster), (0, 8));
        check(&p);
        assert!(matches!(
            plan(32 * MIB, FatType::Fat32, true),
            Err(FormatError::TooSmall(_))
        ));
        assert!(matches!(
            plan(1, FatType::Fat32, true),
            Err(FormatError::TooSmall(_))
        ));
    }

    #[test]
    fn fat16_plans() {
        let p = plan(16 * MIB, FatType::Fat16, true).unwrap();
        assert_eq!(p.sectors_per_cluster, 1);
        check(&p);
        let p = plan(64 * MIB, FatType::Fat16, false).unwrap();
        assert_eq!(p.sectors_per_cluster, 2);
        check(&p);
        let p = plan(2047 * MIB, FatType::Fat16, true).unwrap();
        assert_eq!(p.sectors_per_cluster, 64);
        check(&p);
        assert!(matches!(
            plan(4096 * MIB, FatType::Fat16, true),
            Err(FormatError::TooLarge)
        ));
        assert!(matches!(
            plan(2 * MIB, FatType::Fat16, true),
            Err(FormatError::TooSmall(_))
        ));
    }

    #[test]
    fn chs_addresses() {
        assert_eq!(chs(0), [0, 1, 0]);
        assert_eq!(chs(2048), [32, 33, 0]);
        assert_eq!(chs(u32::MAX), [0xFE, 0xFF, 0xFF]);
    }
}
