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
}
