//! Disk images for the SD card: what `harness image create` makes and what
//! the `host-fat` target formats fresh for every scenario.
//!
//! Formatting is `ftpd_fat::host::format_image` (crate `ftpd-fat`, feature
//! `std`), the project's own FAT code, so that the image is what the device
//! would make; `fsck.fat -n` and mtools read it back.

use std::path::Path;

pub use ftpd_fat::FatType;

/// Can images be made? (Always, now that `ftpd_fat::host::format_image` is
/// here; kept so that a target can say why not if that ever changes.)
pub fn available() -> Result<(), String> {
    Ok(())
}

/// Create and format an image of `size` bytes: FAT32 from 64 MiB up, FAT16
/// below (an MBR with one partition, as on an SD card).
pub fn create(path: &Path, size: u64) -> Result<(), String> {
    create_with(
        path,
        size,
        if size >= 64 << 20 {
            FatType::Fat32
        } else {
            FatType::Fat16
        },
    )
}

pub fn create_with(path: &Path, size: u64, fat: FatType) -> Result<(), String> {
    ftpd_fat::host::format_image(path, size, fat)
        .map_err(|e| format!("formatting {}: {e}", path.display()))
}

/// QEMU wants a power-of-two SD image; say so before it does.
pub fn check_size(size: u64) -> Result<(), String> {
    if size < 1 << 20 {
        return Err(format!(
            "{size} bytes is too small for an SD image (at least 1M)"
        ));
    }
    if !size.is_power_of_two() {
        return Err(format!(
            "{size} bytes is not a power of two: QEMU's SD card model refuses such images (try {})",
            size.next_power_of_two()
        ));
    }
    Ok(())
}

/// Where the FAT volume starts in an image, in bytes: the first MBR
/// partition's start, or 0 for a bare volume (a FAT boot sector at 0, as
/// `mkfs.fat` makes without a partition table).
pub fn volume_offset(image: &Path) -> Result<u64, String> {
    use std::io::Read;
    let mut b = [0u8; 512];
    std::fs::File::open(image)
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("reading {}: {e}", image.display()))?;
    if b[510..512] != [0x55, 0xaa] {
        return Err(format!(
            "{}: no boot signature in sector 0",
            image.display()
        ));
    }
    let bare =
        &b[0x36..0x3b] == b"FAT12" || &b[0x36..0x3b] == b"FAT16" || &b[0x52..0x57] == b"FAT32";
    if bare {
        return Ok(0);
    }
    let lba = u32::from_le_bytes(b[454..458].try_into().unwrap()) as u64;
    if b[446 + 4] == 0 || lba == 0 {
        return Err(format!(
            "{}: no FAT volume and no partition",
            image.display()
        ));
    }
    Ok(lba * 512)
}

/// Why [`fsck`] did not say clean.
#[derive(Debug)]
pub enum FsckError {
    /// `fsck.fat` is not installed (dosfstools).
    Missing(String),
    /// It found problems: its output.
    Unclean(String),
    /// The image could not be read or copied.
    Other(String),
}

/// `fsck.fat` on PATH, in /usr/sbin or /sbin.
pub fn fsck_tool() -> Option<std::path::PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("fsck.fat"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        ["/usr/sbin/fsck.fat", "/sbin/fsck.fat"]
            .iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.is_file())
    })
}

/// `fsck.fat -n` (check, change nothing) on the image's FAT volume (see
/// [`volume_offset`]), copied out to a temporary file. `Ok` with its output
/// when clean.
pub fn fsck(image: &Path) -> Result<String, FsckError> {
    use std::io::{Seek, SeekFrom};
    let tool = fsck_tool().ok_or_else(|| {
        FsckError::Missing("fsck.fat is not installed (apt-get install dosfstools)".into())
    })?;
    let offset = volume_offset(image).map_err(FsckError::Other)?;
    let other = |e: std::io::Error| FsckError::Other(format!("{}: {e}", image.display()));
    let part = tempfile::Builder::new()
        .prefix("fsck-volume-")
        .tempfile()
        .map_err(other)?;
    {
        let mut from = std::fs::File::open(image).map_err(other)?;
        from.seek(SeekFrom::Start(offset)).map_err(other)?;
        let mut to = part.reopen().map_err(other)?;
        std::io::copy(&mut from, &mut to).map_err(other)?;
    }
    let out = std::process::Command::new(&tool)
        .arg("-n")
        .arg(part.path())
        .output()
        .map_err(|e| FsckError::Other(format!("running {}: {e}", tool.display())))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(FsckError::Unclean(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_image_is_fat32_with_a_partition_table() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sd.img");
        create(&p, 64 << 20).unwrap();
        let b = std::fs::read(&p).unwrap();
        assert_eq!(b.len(), 64 << 20);
        assert_eq!(&b[510..512], &[0x55, 0xaa], "MBR signature");
        assert_eq!(b[446 + 4], 0x0c, "one FAT32 (LBA) partition");
    }

    #[test]
    fn sizes() {
        assert!(check_size(64 << 20).is_ok());
        assert!(check_size(1000).unwrap_err().contains("too small"));
        assert!(check_size(48 << 20).unwrap_err().contains("67108864"));
    }

    #[test]
    fn a_fresh_image_checks_clean() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sd.img");
        create(&p, 64 << 20).unwrap();
        assert_eq!(volume_offset(&p).unwrap() % 512, 0);
        assert!(volume_offset(&p).unwrap() > 0);
        match fsck(&p) {
            Ok(_) => {}
            Err(FsckError::Missing(why)) => {
                assert!(!crate::snapshot::is_ci(), "{why}");
                eprintln!("!!! a_fresh_image_checks_clean: NOT RUN: {why}");
            }
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn a_damaged_image_does_not() {
        if fsck_tool().is_none() {
            assert!(!crate::snapshot::is_ci(), "fsck.fat is not installed");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sd.img");
        create(&p, 64 << 20).unwrap();
        // Break the second FAT copy's first entries: the copies differ.
        let off = volume_offset(&p).unwrap();
        let mut b = std::fs::read(&p).unwrap();
        let v = off as usize;
        let reserved = u16::from_le_bytes([b[v + 14], b[v + 15]]) as usize;
        let fat_size = u32::from_le_bytes(b[v + 36..v + 40].try_into().unwrap()) as usize;
        let second = v + (reserved + fat_size) * 512;
        for x in &mut b[second + 8..second + 64] {
            *x = 0xaa;
        }
        std::fs::write(&p, &b).unwrap();
        assert!(matches!(fsck(&p), Err(FsckError::Unclean(_))));
    }
}
