//! Host helpers (feature `std`): a disk-image file as a block device, the
//! host clock as the FAT time source, making an image, mounting one.

use std::fmt;
use std::format;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};
use std::vec;
use std::vec::Vec;

use embedded_sdmmc::{Block, BlockCount, BlockDevice, BlockIdx, TimeSource, Timestamp};

use crate::cache::{BlockCache, DiskError};
use crate::layout::{FatType, MountError};
use crate::mkfs::{self, FormatError, Options};
use crate::volume::FatStorage;

/// A disk-image file as a block device (512-byte blocks; a partial last
/// block is ignored). Writes go to the file at once (the OS page cache), so
/// they survive the process being killed.
#[derive(Debug)]
pub struct FileBlockDevice {
    file: File,
    blocks: u32,
    faults: Option<WriteFaults>,
}

/// Injected write failures, for tests of a card that fails in the middle
/// of a transfer (`sim --fail-writes`): the block writes numbered `after`
/// to `after + count - 1` (counting every block written, or attempted,
/// since the image was opened) fail with an I/O error and write nothing;
/// writes before and after them work, as on a card that recovers.
#[derive(Debug)]
pub struct WriteFaults {
    after: u64,
    count: u64,
    written: std::sync::atomic::AtomicU64,
}

impl FileBlockDevice {
    /// Opens an image read-write.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        Self::from_file(OpenOptions::new().read(true).write(true).open(path)?)
    }

    pub fn from_file(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        let blocks = u32::try_from(len / 512)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "image larger than 2 TiB"))?;
        Ok(FileBlockDevice {
            file,
            blocks,
            faults: None,
        })
    }

    /// Makes writes fail as [`WriteFaults`] says.
    pub fn fail_writes(mut self, after: u64, count: u64) -> Self {
        self.faults = Some(WriteFaults {
            after,
            count,
            written: std::sync::atomic::AtomicU64::new(0),
        });
        self
    }

    /// Makes written data durable on the host's disk (`fsync`).
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn check(&self, start: BlockIdx, n: usize) -> io::Result<u64> {
        if u64::from(start.0) + n as u64 > u64::from(self.blocks) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "block outside the image",
            ));
        }
        Ok(u64::from(start.0) * 512)
    }
}

#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, at)
}

#[cfg(unix)]
fn write_at(f: &File, buf: &[u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, at)
}

#[cfg(windows)]
fn read_at(f: &File, mut buf: &mut [u8], mut at: u64) -> io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_read(f, buf, at)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        at += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn write_at(f: &File, mut buf: &[u8], mut at: u64) -> io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(f, buf, at)?;
        buf = &buf[n..];
        at += n as u64;
    }
    Ok(())
}

impl BlockDevice for FileBlockDevice {
    type Error = io::Error;

    fn read(&self, blocks: &mut [Block], start: BlockIdx) -> io::Result<()> {
        let at = self.check(start, blocks.len())?;
        if let [one] = blocks {
            return read_at(&self.file, &mut one.contents, at);
        }
        // One system call for the whole run.
        let mut buf = vec![0u8; blocks.len() * 512];
        read_at(&self.file, &mut buf, at)?;
        for (b, chunk) in blocks.iter_mut().zip(buf.chunks_exact(512)) {
            b.contents.copy_from_slice(chunk);
        }
        Ok(())
    }

    fn write(&self, blocks: &[Block], start: BlockIdx) -> io::Result<()> {
        let at = self.check(start, blocks.len())?;
        if let Some(f) = &self.faults {
            let n = blocks.len() as u64;
            let first = f.written.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            if first + n > f.after && first < f.after.saturating_add(f.count) {
                return Err(io::Error::other(format!(
                    "injected write fault (blocks {first}..{} of this run)",
                    first + n
                )));
            }
        }
        if let [one] = blocks {
            return write_at(&self.file, &one.contents, at);
        }
        let mut buf = Vec::with_capacity(blocks.len() * 512);
        for b in blocks {
            buf.extend_from_slice(&b.contents);
        }
        write_at(&self.file, &buf, at)
    }

    fn num_blocks(&self) -> io::Result<BlockCount> {
        Ok(BlockCount(self.blocks))
    }
}

/// The host's clock, in UTC.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdClock;

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic
/// Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // shift the epoch to 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // day of the 400-year era
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year
    let mp = (5 * doy + 2) / 153; // March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A `Timestamp` for `secs` seconds after the Unix epoch.
pub fn timestamp_from_unix(secs: u64) -> Timestamp {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil(days);
    Timestamp {
        year_since_1970: (year - 1970).clamp(0, 255) as u8,
        zero_indexed_month: (month - 1) as u8,
        zero_indexed_day: (day - 1) as u8,
        hours: (rem / 3600) as u8,
        minutes: (rem / 60 % 60) as u8,
        seconds: (rem % 60) as u8,
    }
}

impl TimeSource for StdClock {
    fn get_timestamp(&self) -> Timestamp {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        timestamp_from_unix(secs)
    }
}

/// A FAT image on the host, mounted: 8 files at once, a 64 KiB block cache.
pub type ImageStorage = FatStorage<FileBlockDevice, StdClock, 8, 8, 16>;

/// Why an image could not be made or mounted.
#[derive(Debug)]
pub enum ImageError {
    Io(io::Error),
    /// The size is not a whole number of 512-byte sectors.
    Size(u64),
    Format(FormatError<io::Error>),
    Mount(MountError<io::Error>),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Io(e) => write!(f, "{e}"),
            ImageError::Size(n) => write!(f, "image size {n} is not a multiple of 512 bytes"),
            ImageError::Format(e) => write!(f, "{e}"),
            ImageError::Mount(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ImageError {}

impl From<io::Error> for ImageError {
    fn from(e: io::Error) -> Self {
        ImageError::Io(e)
    }
}

/// Creates (or replaces) `path` as an SD-card-like image of `size_bytes`:
/// an MBR with one partition from 1 MiB to the end, formatted `fat_type`.
/// No root, no external tools; the file is sparse where it is zero.
pub fn format_image(
    path: impl AsRef<Path>,
    size_bytes: u64,
    fat_type: FatType,
) -> Result<(), ImageError> {
    format_image_with(path, size_bytes, Options::new(fat_type))
}

/// [`format_image`] with every option (a bare volume, a label...).
pub fn format_image_with(
    path: impl AsRef<Path>,
    size_bytes: u64,
    mut options: Options,
) -> Result<(), ImageError> {
    if !size_bytes.is_multiple_of(512) || size_bytes == 0 {
        return Err(ImageError::Size(size_bytes));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.set_len(size_bytes)?;
    let dev = FileBlockDevice::from_file(file)?;
    options.zeroed = true;
    if options.volume_id == Options::new(options.fat_type).volume_id {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        options.volume_id = (now ^ (now >> 32)) as u32;
    }
    mkfs::format(&dev, &options).map_err(ImageError::Format)?;
    dev.sync()?;
    Ok(())
}

/// The storage ceiling of an image file (issue 6): reads its first `bytes`
/// (rounded down to blocks, at most the image) sequentially through a
/// [`BlockCache`] shaped like [`ImageStorage`]'s (16-block commands), then
/// reads and writes them back unchanged; returns (bytes, read time, write
/// time). See [`BlockCache::bench_sequential`]. The image's content is
/// unchanged; nothing else may have it open for writing meanwhile. Writes go
/// to the OS page cache (as [`FileBlockDevice`]'s always do), not `fsync`ed.
pub fn bench_sequential(
    path: impl AsRef<Path>,
    bytes: u64,
) -> io::Result<(u64, std::time::Duration, std::time::Duration)> {
    let dev = FileBlockDevice::open(path)?;
    let cache: BlockCache<FileBlockDevice, 1, 16> = BlockCache::new(dev).map_err(disk_io_error)?;
    let blocks = u32::try_from(bytes / 512).unwrap_or(u32::MAX);
    let start = std::time::Instant::now();
    let mut micros = || start.elapsed().as_micros() as u64;
    let r = cache
        .bench_sequential(0, blocks, &mut micros)
        .map_err(disk_io_error)?;
    let us = std::time::Duration::from_micros;
    Ok((r.bytes(), us(r.read_time), us(r.write_time)))
}

fn disk_io_error(e: DiskError<io::Error>) -> io::Error {
    match e {
        DiskError::Device(e) => e,
        DiskError::OutOfRange => io::Error::new(io::ErrorKind::InvalidInput, "empty image"),
    }
}

/// Opens and mounts a FAT image (partitioned or bare).
pub fn mount_image(path: impl AsRef<Path>) -> Result<ImageStorage, ImageError> {
    let dev = FileBlockDevice::open(path)?;
    FatStorage::mounted(dev, StdClock).map_err(ImageError::Mount)
}

/// [`mount_image`] on a device whose writes fail for a while
/// ([`FileBlockDevice::fail_writes`]): tests of a failing card.
pub fn mount_image_failing(
    path: impl AsRef<Path>,
    after: u64,
    count: u64,
) -> Result<ImageStorage, ImageError> {
    let dev = FileBlockDevice::open(path)?.fail_writes(after, count);
    FatStorage::mounted(dev, StdClock).map_err(ImageError::Mount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injected_write_faults_cover_their_window_only() {
        let dir = std::env::temp_dir().join(format!("ftpd-fat-faults-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = dir.join("f.img");
        std::fs::write(&img, vec![0u8; 64 * 512]).unwrap();
        let dev = FileBlockDevice::open(&img).unwrap().fail_writes(4, 3);
        let b = [Block::new(), Block::new()];
        assert!(dev.write(&b, BlockIdx(0)).is_ok()); // 0, 1
        assert!(dev.write(&b[..1], BlockIdx(2)).is_ok()); // 2
        assert!(dev.write(&b, BlockIdx(3)).is_err()); // 3, 4: 4 fails
        assert!(dev.write(&b[..1], BlockIdx(5)).is_err()); // 5
        assert!(dev.write(&b[..1], BlockIdx(6)).is_err()); // 6
        assert!(dev.write(&b, BlockIdx(7)).is_ok()); // 7, 8
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bench_sequential_leaves_the_image_as_it_was() {
        let dir = std::env::temp_dir().join(format!("ftpd-fat-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = dir.join("sd.img");
        format_image(&img, 8 << 20, FatType::Fat16).unwrap();
        let before = std::fs::read(&img).unwrap();
        let (bytes, _, _) = bench_sequential(&img, 3 << 20).unwrap();
        assert_eq!(bytes, 3 << 20);
        let (bytes, _, _) = bench_sequential(&img, 100 << 20).unwrap();
        assert_eq!(bytes, 8 << 20, "at most the image");
        assert_eq!(std::fs::read(&img).unwrap(), before);
        mount_image(&img).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn calendar() {
        let t = timestamp_from_unix(0);
        assert_eq!(
            (t.year_since_1970, t.zero_indexed_month, t.zero_indexed_day),
            (0, 0, 0)
        );
        // 2026-03-14 15:09:26 UTC
        let t = timestamp_from_unix(1_773_500_966);
        assert_eq!(
            (
                t.year_since_1970 as i64 + 1970,
                t.zero_indexed_month + 1,
                t.zero_indexed_day + 1
            ),
            (2026, 3, 14)
        );
        assert_eq!((t.hours, t.minutes, t.seconds), (15, 9, 26));
        // A leap day.
        let t = timestamp_from_unix(951_782_400); // 2000-02-29
        assert_eq!((t.zero_indexed_month + 1, t.zero_indexed_day + 1), (2, 29));
        assert_eq!(civil(-1), (1969, 12, 31));
    }
}
