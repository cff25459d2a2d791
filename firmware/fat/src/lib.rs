//! # ftpd-fat: FAT16/FAT32 storage for the ftpd engine
//!
//! [`FatStorage`] implements [`ftpd::Storage`] on a FAT volume on any
//! [`BlockDevice`]: an SD card on a board, a disk-image file on the host
//! ([`host::FileBlockDevice`], feature `std`). `no_std`, no allocator, no
//! `unsafe`; it builds for `thumbv7m-none-eabi` and `thumbv7em-none-eabihf`.
//!
//! [embedded-sdmmc] 0.10 is the FAT library underneath: it mounts the volume
//! and writes file data. What it lacks is here, in modules with one job
//! each:
//!
//! | module | what |
//! |---|---|
//! | `layout` | partition table or bare volume; boot sector checks; [`MountError`] |
//! | `disk` | the device as the library sees it (a made-up MBR for bare volumes) |
//! | `cache` | [`BlockCache`]: multi-block read-ahead and write-back under the library |
//! | `dirent` | 8.3 names, long-name slots, checksums, aliases (pure code) |
//! | `dir` | directories on disk: lookup, room for entries, growth |
//! | `fat` | cluster chains, free space, FSInfo |
//! | `volume` | [`FatStorage`]: the [`ftpd::Storage`] operations |
//! | `mkfs` | formatting (FAT32/FAT16, with or without a partition table) |
//! | `host` | (`std`) image files, the host clock, `format_image`, `mount_image` |
//!
//! ```no_run
//! # #[cfg(feature = "std")] {
//! use ftpd::Storage;
//! use ftpd_fat::{host, FatType};
//!
//! host::format_image("sd.img", 64 << 20, FatType::Fat32)?;
//! let mut fs = host::mount_image("sd.img")?;
//! fs.mkdir("/firmware")?;
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [embedded-sdmmc]: https://docs.rs/embedded-sdmmc/0.10
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

#[cfg(feature = "std")]
extern crate std;

/// `log::warn!` with the `log` feature, nothing without.
macro_rules! warn {
    ($($arg:tt)*) => {
        #[cfg(feature = "log")]
        log::warn!($($arg)*);
    };
}

/// `log::info!` with the `log` feature, nothing without.
macro_rules! info {
    ($($arg:tt)*) => {
        #[cfg(feature = "log")]
        log::info!($($arg)*);
    };
}

pub mod cache;
mod dir;
pub mod dirent;
pub mod disk;
mod fat;
pub mod layout;
pub mod mkfs;
mod volume;

#[cfg(feature = "std")]
pub mod host;

pub use cache::{BlockCache, CacheStats, DiskError, SeqBench};
pub use embedded_sdmmc::{Block, BlockCount, BlockDevice, BlockIdx, TimeSource, Timestamp};
pub use layout::{FatType, MountError};
pub use volume::{FatFile, FatStorage, VolumeInfo};
