//! Listings resumed in chunks, as the engine asks for them (`skip` = entries
//! given so far): the same entries as one full listing, and each directory
//! block read about once, not once per chunk, with a board-sized cache.

use ftpd::storage::{Storage, WriteMode};
use ftpd_fat::host::{self, FileBlockDevice, StdClock};
use ftpd_fat::{FatStorage, FatType};

/// The QEMU board's storage: 4 files, a 4 x 2 block cache.
type Board = FatStorage<FileBlockDevice, StdClock, 4, 4, 2>;

fn board(path: &std::path::Path) -> Board {
    Board::mounted(FileBlockDevice::open(path).unwrap(), StdClock).unwrap()
}

/// A name of 40 characters: 4 long-name slots and the short entry.
fn name(i: usize) -> String {
    format!("a rather long file name, number {i:05}.txt")
}

/// An image whose `dir` holds `n` empty files with long names.
fn image(fat: FatType, dir: &str, n: usize) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("sd.img");
    host::format_image(&path, 64 << 20, fat).unwrap();
    let mut fs = host::mount_image(&path).unwrap();
    if !dir.is_empty() {
        fs.mkdir(dir).unwrap();
    }
    for i in 0..n {
        let f = fs
            .open_write(&format!("{dir}/{}", name(i)), WriteMode::Truncate)
            .unwrap();
        fs.close(f).unwrap();
    }
    fs.unmount().unwrap();
    (tmp, path)
}

/// One full listing.
fn full<S: Storage>(fs: &mut S, dir: &str) -> Vec<String> {
    let mut v = Vec::new();
    fs.list(dir, 0, &mut |e| {
        v.push(e.name.to_string());
        true
    })
    .unwrap();
    v
}

/// Lists `dir` in calls that each take at most `chunk` entries, the way
/// the engine does when its buffer fills; `between(fs, given)` runs before
/// every call but the first. Returns the entries and the number of calls.
fn chunked<S: Storage>(
    fs: &mut S,
    dir: &str,
    chunk: usize,
    mut between: impl FnMut(&mut S, usize),
) -> (Vec<String>, usize) {
    let mut v: Vec<String> = Vec::new();
    let mut calls = 0;
    loop {
        if calls > 0 {
            between(fs, v.len());
        }
        calls += 1;
        let mut n = 0;
        fs.list(dir, v.len(), &mut |e| {
            if n == chunk {
                return false;
            }
            n += 1;
            v.push(e.name.to_string());
            true
        })
        .unwrap();
        if n < chunk {
            return (v, calls);
        }
        assert!(calls < 100_000, "the listing does not end");
    }
}

#[test]
fn chunked_listings_match_a_full_one() {
    let (_tmp, path) = image(FatType::Fat32, "/big", 1000);
    let mut fs = board(&path);
    let all = full(&mut fs, "/big");
    assert_eq!(all.len(), 1000);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(sorted, (0..1000).map(name).collect::<Vec<_>>());
    for chunk in [1, 7, 30] {
        let (got, _) = chunked(&mut fs, "/big", chunk, |_, _| {});
        assert_eq!(got, all, "chunks of {chunk}");
    }
    // Two listings interleaved (two sessions): each still complete.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    while a.len() < all.len() || b.len() < all.len() {
        for (v, chunk) in [(&mut a, 13usize), (&mut b, 29)] {
            let mut n = 0;
            fs.list("/big", v.len(), &mut |e| {
                n += 1;
                v.push(e.name.to_string());
                n < chunk
            })
            .unwrap();
        }
    }
    assert_eq!(a, all);
    assert_eq!(b, all);
    // A skip the last call did not end on, and another directory between.
    let mut v = Vec::new();
    fs.list("/big", 500, &mut |e| {
        v.push(e.name.to_string());
        v.len() < 3
    })
    .unwrap();
    assert_eq!(v, all[500..503]);
    assert!(full(&mut fs, "/").contains(&"big".to_string()));
    let mut v = Vec::new();
    fs.list("/big", 3, &mut |e| {
        v.push(e.name.to_string());
        v.len() < 2
    })
    .unwrap();
    assert_eq!(v, all[3..5]);
}

#[test]
fn fat16_root_resumes_too() {
    let (_tmp, path) = image(FatType::Fat16, "", 80);
    let mut fs = board(&path);
    let all = full(&mut fs, "/");
    assert_eq!(all.len(), 80);
    for chunk in [1, 7, 30] {
        assert_eq!(chunked(&mut fs, "/", chunk, |_, _| {}).0, all);
    }
}

#[test]
fn a_resumed_listing_reads_each_directory_block_about_once() {
    let (_tmp, path) = image(FatType::Fat32, "/big", 1000);
    let mut fs = board(&path);
    let before = fs.cache_stats();
    let all = full(&mut fs, "/big");
    let once = fs.cache_stats().read_blocks - before.read_blocks;
    // 5 slots per entry, 16 per block: about 313 blocks.
    assert!(once >= 1000 * 5 / 16, "{once}");
    let before = fs.cache_stats();
    let (got, calls) = chunked(&mut fs, "/big", 30, |_, _| {});
    let chunks = fs.cache_stats().read_blocks - before.read_blocks;
    assert_eq!(got, all);
    eprintln!("full listing: {once} blocks read; in {calls} chunks: {chunks}");
    // Walking from the start every time would read about calls * once / 2
    // (over 5000) blocks; resuming reads the directory once more, plus a
    // few blocks per call (the path, the FAT).
    assert!(
        chunks <= once + 4 * calls as u32,
        "{chunks} > {once} + 4 * {calls}"
    );
}

/// Four sessions listing at once, two of them the same directory: each
/// listing still resumes (the QEMU board's storage keeps one stop per
/// open-file slot), so together they read about four walks' worth of
/// blocks, not one walk per chunk.
#[test]
fn interleaved_listings_each_resume() {
    let (_tmp, path) = image(FatType::Fat32, "/big", 600);
    let mut fs = board(&path);
    for d in ["/b2", "/b3"] {
        fs.mkdir(d).unwrap();
        for i in 0..600 {
            let f = fs
                .open_write(&format!("{d}/{}", name(i)), WriteMode::Truncate)
                .unwrap();
            fs.close(f).unwrap();
        }
    }
    let before = fs.cache_stats();
    let all = full(&mut fs, "/big");
    let once = fs.cache_stats().read_blocks - before.read_blocks;
    let want: Vec<Vec<String>> = ["/big", "/big", "/b2", "/b3"]
        .iter()
        .map(|d| full(&mut fs, d))
        .collect();
    assert_eq!(want[0], all);
    let sessions = [("/big", 13usize), ("/big", 29), ("/b2", 17), ("/b3", 23)];
    let mut got: Vec<Vec<String>> = vec![Vec::new(); sessions.len()];
    let mut done = [false; 4];
    let mut calls = 0u32;
    let before = fs.cache_stats();
    while done.iter().any(|d| !d) {
        for (i, (dir, chunk)) in sessions.iter().enumerate() {
            if done[i] {
                continue;
            }
            calls += 1;
            let v = &mut got[i];
            let mut n = 0;
            fs.list(dir, v.len(), &mut |e| {
                if n == *chunk {
                    return false;
                }
                n += 1;
                v.push(e.name.to_string());
                true
            })
            .unwrap();
            done[i] = n < *chunk;
        }
    }
    let read = fs.cache_stats().read_blocks - before.read_blocks;
    assert_eq!(got, want);
    eprintln!("one walk: {once} blocks; four interleaved listings in {calls} calls: {read}");
    // Without resuming each call walks from the start: about
    // calls * once / 2 blocks (12 554 here when measured). Resuming reads
    // each directory once more, plus a few blocks per call that the four
    // walks evict from each other's cache lines (the path, the FAT, the
    // block the last call stopped in): 1 498 when measured.
    assert!(
        read <= 4 * once + 8 * calls,
        "{read} > 4 * {once} + 8 * {calls}"
    );
}

#[test]
fn changes_between_chunks_give_what_a_fresh_walk_gives() {
    let (_tmp, path) = image(FatType::Fat32, "/big", 300);
    let mut fs = board(&path);
    let all = full(&mut fs, "/big");
    // Each change happens after 30 entries were given; the next call must
    // see the directory as it is then, exactly like a walk from the start
    // that skips the entries given so far (the behaviour without resuming).
    type Change = fn(&mut Board, &[String], usize);
    let changes: [(&str, Change); 4] = [
        ("delete an entry already given", |fs, all, _| {
            fs.remove(&format!("/big/{}", all[10])).unwrap()
        }),
        ("delete the next entry", |fs, all, at| {
            fs.remove(&format!("/big/{}", all[at])).unwrap()
        }),
        ("rename to a longer name", |fs, all, at| {
            fs.rename(
                &format!("/big/{}", all[at - 1]),
                &format!("/big/{} but renamed to something longer", all[at - 1]),
            )
            .unwrap()
        }),
        ("create a file", |fs, _, _| {
            let f = fs
                .open_write("/big/new file.txt", WriteMode::Truncate)
                .unwrap();
            fs.close(f).unwrap();
        }),
    ];
    for (what, change) in changes {
        let (_tmp, path) = image(FatType::Fat32, "/big", 300);
        let mut fs = board(&path);
        let mut changed = false;
        let (got, _) = chunked(&mut fs, "/big", 30, |fs, given| {
            if given == 60 {
                change(fs, &all, given);
                changed = true;
            }
        });
        assert!(changed);
        // Nothing changed after that.
        let after = full(&mut fs, "/big");
        let mut expect = all[..60].to_vec();
        expect.extend_from_slice(&after[60.min(after.len())..]);
        assert_eq!(got, expect, "{what}");
        // And the listing after the change is right itself.
        assert_eq!(chunked(&mut fs, "/big", 7, |_, _| {}).0, after, "{what}");
    }
}
