//! Disk images for the SD card: what `harness image create` makes and what
//! the `host-fat` target formats fresh for every scenario.
//!
//! Formatting is `ftpd_fat::format_image` (crate `ftpd-fat`, feature `std`),
//! the project's own FAT code, so that the image is what the device would
//! make. Until that function lands, both uses fail with the reason below and
//! the `host-fat` target is reported as unable to run.

use std::path::Path;

/// FAT flavour of a new image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatType {
    Fat16,
    Fat32,
}

const NOT_YET: &str = "ftpd_fat::format_image is not available yet (crate ftpd-fat, feature `std`); \
                       until it lands, host-fat cannot run and `image create` cannot format";

/// Can images be made?
pub fn available() -> Result<(), String> {
    Err(NOT_YET.to_string())
}

/// Create and format an image of `size` bytes (FAT32 from 64 MiB up, FAT16
/// below).
pub fn create(path: &Path, size: u64) -> Result<(), String> {
    create_with(path, size, if size >= 64 << 20 { FatType::Fat32 } else { FatType::Fat16 })
}

pub fn create_with(path: &Path, size: u64, fat: FatType) -> Result<(), String> {
    let _ = (path, size, fat);
    Err(NOT_YET.to_string())
}

/// QEMU wants a power-of-two SD image; say so before it does.
pub fn check_size(size: u64) -> Result<(), String> {
    if size < 1 << 20 {
        return Err(format!("{size} bytes is too small for an SD image (at least 1M)"));
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
    fn sizes() {
        assert!(check_size(64 << 20).is_ok());
        assert!(check_size(1000).unwrap_err().contains("too small"));
        assert!(check_size(48 << 20).unwrap_err().contains("67108864"));
    }
}
