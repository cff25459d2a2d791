//! What block 0 of the card says, for the boot report: an MBR with a FAT
//! partition, a bare FAT volume ("superfloppy", as `mkfs.fat` makes it), or
//! nothing usable. The FAT layer mounts the volume itself; this only lets the
//! board say "not formatted" clearly and keep retrying.

use core::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// MBR; the first FAT partition: type, first block, block count.
    Mbr { index: u8, kind: u8, start: u32, blocks: u32 },
    /// A FAT boot sector at block 0 (no partition table); total sectors.
    Bare { blocks: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotFormatted {
    /// No 0x55AA signature (blank or unknown).
    NoSignature,
    /// A partition table without a FAT16/FAT32 partition.
    NoFatPartition,
}

impl fmt::Display for NotFormatted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotFormatted::NoSignature => write!(f, "not formatted (no MBR or FAT boot sector at block 0)"),
            NotFormatted::NoFatPartition => write!(f, "not formatted (no FAT16/FAT32 partition in the MBR)"),
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Layout::Mbr { index, kind, start, blocks } => write!(
                f,
                "MBR partition {} type {kind:#04x} at block {start}, {} MiB",
                index + 1,
                blocks / 2048
            ),
            Layout::Bare { blocks } => write!(f, "FAT volume without partition table, {} MiB", blocks / 2048),
        }
    }
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

/// Classifies block 0.
pub fn classify(b: &[u8; 512]) -> Result<Layout, NotFormatted> {
    if b[510] != 0x55 || b[511] != 0xAA {
        return Err(NotFormatted::NoSignature);
    }
    // A FAT boot sector: a jump instruction and 512-byte sectors.
    let jump = b[0] == 0xEB || b[0] == 0xE9;
    if jump && le16(&b[11..]) == 512 && b[13] != 0 && b[16] != 0 {
        let total16 = le16(&b[19..]) as u32;
        let blocks = if total16 != 0 { total16 } else { le32(&b[32..]) };
        return Ok(Layout::Bare { blocks });
    }
    for i in 0..4 {
        let e = &b[446 + i * 16..446 + (i + 1) * 16];
        let kind = e[4];
        if matches!(kind, 0x04 | 0x06 | 0x0B | 0x0C | 0x0E) {
            return Ok(Layout::Mbr { index: i as u8, kind, start: le32(&e[8..]), blocks: le32(&e[12..]) });
        }
    }
    Err(NotFormatted::NoFatPartition)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_not_formatted() {
        assert_eq!(classify(&[0; 512]), Err(NotFormatted::NoSignature));
    }

    #[test]
    fn mbr_with_fat32_partition() {
        let mut b = [0u8; 512];
        b[510] = 0x55;
        b[511] = 0xAA;
        let e = &mut b[446..462];
        e[4] = 0x0C;
        e[8..12].copy_from_slice(&2048u32.to_le_bytes());
        e[12..16].copy_from_slice(&129024u32.to_le_bytes());
        assert_eq!(classify(&b), Ok(Layout::Mbr { index: 0, kind: 0x0C, start: 2048, blocks: 129024 }));
        b[446 + 4] = 0x83;
        assert_eq!(classify(&b), Err(NotFormatted::NoFatPartition));
    }

    #[test]
    fn bare_fat_volume() {
        let mut b = [0u8; 512];
        b[0] = 0xEB;
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = 1;
        b[16] = 2;
        b[32..36].copy_from_slice(&131072u32.to_le_bytes());
        b[510] = 0x55;
        b[511] = 0xAA;
        assert_eq!(classify(&b), Ok(Layout::Bare { blocks: 131072 }));
    }
}
