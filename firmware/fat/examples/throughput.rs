//! Upload and download speed of `FatStorage` on a host image, for three
//! block-cache shapes, with the device commands each one sends. On an SD
//! card the command count is what costs (each command waits for the card);
//! on the host it shows how many system calls the same work takes.
//!
//! ```text
//! cargo run -p ftpd-fat --release --example throughput [image MiB] [file MiB]
//! ```

use std::time::Instant;

use ftpd::storage::{Storage, WriteMode};
use ftpd_fat::host::{self, FileBlockDevice, StdClock};
use ftpd_fat::{FatStorage, FatType};

fn measure<const LINES: usize, const LINE_BLOCKS: usize>(
    image: &std::path::Path,
    label: &str,
    bytes: &[u8],
) {
    host::format_image(
        image,
        std::fs::metadata(image).unwrap().len(),
        FatType::Fat32,
    )
    .unwrap();
    let mount = || {
        FatStorage::<_, _, 4, LINES, LINE_BLOCKS>::mounted(
            FileBlockDevice::open(image).unwrap(),
            StdClock,
        )
        .unwrap()
    };
    let mut fs = mount();
    let t = Instant::now();
    let mut f = fs.open_write("/upload.bin", WriteMode::Truncate).unwrap();
    for piece in bytes.chunks(2048) {
        fs.write(&mut f, piece).unwrap();
    }
    fs.close(f).unwrap();
    let up = t.elapsed();
    let w = fs.cache_stats();
    fs.unmount().unwrap();

    let mut fs = mount();
    let t = Instant::now();
    let mut f = fs.open_read("/upload.bin", 0).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut total = 0;
    loop {
        let n = fs.read(&mut f, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert_eq!(buf[..n], bytes[total..total + n]);
        total += n;
    }
    fs.close(f).unwrap();
    let down = t.elapsed();
    let r = fs.cache_stats();
    fs.unmount().unwrap();
    let mb = bytes.len() as f64 / 1e6;
    println!(
        "{label:<22} STOR {:>7.1} MB/s {:>6} write cmds ({:>5.1} blocks each)   RETR {:>7.1} MB/s {:>6} read cmds ({:>5.1} blocks each)",
        mb / up.as_secs_f64(),
        w.write_cmds,
        f64::from(w.write_blocks) / f64::from(w.write_cmds.max(1)),
        mb / down.as_secs_f64(),
        r.read_cmds,
        f64::from(r.read_blocks) / f64::from(r.read_cmds.max(1)),
    );
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u64>().expect("a number of MiB"));
    let image_mib = args.next().unwrap_or(64);
    let file_mib = args.next().unwrap_or(16);
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("bench.img");
    host::format_image(&image, image_mib << 20, FatType::Fat32).unwrap();
    let fs = host::mount_image(&image).unwrap();
    println!(
        "{image_mib} MiB FAT32 image, {} byte clusters, {file_mib} MiB file written in 2048-byte pieces, read in 4 KiB",
        fs.info().cluster_bytes
    );
    fs.unmount().unwrap();
    let bytes: Vec<u8> = (0..file_mib << 20)
        .map(|i| (i * 7 + i / 4096) as u8)
        .collect();
    measure::<1, 1>(&image, "1 block (no batching)", &bytes);
    measure::<2, 2>(&image, "2 x 2 blocks (QEMU board)", &bytes);
    measure::<4, 2>(&image, "4 x 2 blocks", &bytes);
    measure::<2, 8>(&image, "2 x 8 blocks", &bytes);
    measure::<3, 4>(&image, "3 x 4 blocks", &bytes);
    measure::<8, 16>(&image, "8 x 16 blocks (host)", &bytes);
}
