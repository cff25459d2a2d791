//! FatStorage on real images, checked with tools nobody here wrote:
//! `fsck.fat -n` (dosfstools) must find nothing to fix, and mtools (`mdir`,
//! `mcopy`) must read back the names and bytes we wrote.
//!
//! Images come from our own formatter, from `mkfs.fat` (bare, and inside a
//! partition table) and from mtools' `mformat`. Where a tool is missing the
//! test fails under `CI=true` and says so loudly otherwise.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ftpd::storage::{Error, Kind, Storage, WriteMode};
use ftpd_fat::host::{self, ImageError, ImageStorage};
use ftpd_fat::mkfs::Options;
use ftpd_fat::{FatType, MountError, layout};

// ---------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The tool's path; `None` (after a loud message) when it is missing outside
/// CI. Under `CI=true` a missing tool fails the test.
fn tool(name: &str) -> Option<PathBuf> {
    if let Some(p) = find_tool(name) {
        return Some(p);
    }
    assert!(
        !ci(),
        "{name} is required under CI=true: install the Debian packages dosfstools and mtools"
    );
    eprintln!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !!! {name} is not installed: checks that need it are SKIPPED.\n\
         !!! Install dosfstools and mtools (CI=true turns this into a failure).\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
    None
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run tool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn mtools(name: &str) -> Option<Command> {
    let mut c = Command::new(tool(name)?);
    c.env("MTOOLS_SKIP_CHECK", "1")
        .env("LC_ALL", "C.UTF-8")
        .env("MTOOLSRC", "/dev/null");
    Some(c)
}

// ---------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------

const MIB: u64 = 1 << 20;

struct Image {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Image {
    fn empty(size: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sd.img");
        let f = fs::File::create(&path).unwrap();
        f.set_len(size).unwrap();
        Image { _dir: dir, path }
    }

    fn own(fat: FatType, size: u64, partitioned: bool) -> Self {
        let img = Image::empty(0);
        let mut o = Options::new(fat);
        o.partitioned = partitioned;
        host::format_image_with(&img.path, size, o).unwrap();
        img
    }

    /// `mkfs.fat -C`: a bare volume, no partition table.
    fn mkfs_bare(fat: FatType, size: u64) -> Option<Self> {
        let mkfs = tool("mkfs.fat")?;
        let img = Image::empty(0);
        fs::remove_file(&img.path).unwrap();
        let bits = if fat == FatType::Fat32 { "32" } else { "16" };
        let (ok, out) = run(Command::new(mkfs)
            .args(["-C", "-F", bits])
            .arg(&img.path)
            .arg((size / 1024).to_string()));
        assert!(ok, "mkfs.fat: {out}");
        Some(img)
    }

    /// A partition table written here, the volume by `mkfs.fat --offset`.
    fn mkfs_partitioned(fat: FatType, size: u64) -> Option<Self> {
        let mkfs = tool("mkfs.fat")?;
        let img = Image::empty(size);
        let sectors = (size / 512) as u32;
        write_mbr(
            &img.path,
            if fat == FatType::Fat32 { 0x0C } else { 0x06 },
            2048,
            sectors - 2048,
        );
        let bits = if fat == FatType::Fat32 { "32" } else { "16" };
        let (ok, out) = run(Command::new(mkfs)
            .args(["-F", bits, "--offset", "2048", "-h", "2048"])
            .arg(&img.path)
            .arg(((sectors - 2048) / 2).to_string()));
        assert!(ok, "mkfs.fat: {out}");
        Some(img)
    }

    /// A partition table written here, the volume by mtools' `mformat`.
    fn mformat_partitioned(size: u64) -> Option<Self> {
        let img = Image::empty(size);
        let sectors = (size / 512) as u32;
        write_mbr(&img.path, 0x0C, 2048, sectors - 2048);
        let spec = format!("{}@@1M", img.path.display());
        let (ok, out) = run(mtools("mformat")?
            .args([
                "-F",
                "-T",
                &(sectors - 2048).to_string(),
                "-h",
                "255",
                "-s",
                "63",
                "-H",
                "2048",
                "-i",
            ])
            .arg(&spec)
            .arg("::"));
        assert!(ok, "mformat: {out}");
        Some(img)
    }

    fn mount(&self) -> ImageStorage {
        match host::mount_image(&self.path) {
            Ok(fs) => fs,
            Err(e) => panic!("mount {}: {e}", self.path.display()),
        }
    }

    /// Byte offset of the volume (0 for a bare volume) and its size.
    fn volume(&self) -> (u64, u64) {
        let bytes = fs::read(&self.path).unwrap();
        let sector0: [u8; 512] = bytes[..512].try_into().unwrap();
        let loc = layout::locate(&sector0, (bytes.len() / 512) as u32).unwrap();
        (u64::from(loc.start) * 512, u64::from(loc.sectors) * 512)
    }

    fn spec(&self) -> String {
        format!("{}@@{}", self.path.display(), self.volume().0)
    }

    /// `fsck.fat -n` on the volume must exit 0 and report nothing but its
    /// banner and summary.
    fn fsck(&self) {
        let Some(fsck) = tool("fsck.fat") else { return };
        let (offset, len) = self.volume();
        let part = self.path.with_extension("part");
        let bytes = fs::read(&self.path).unwrap();
        fs::write(&part, &bytes[offset as usize..(offset + len) as usize]).unwrap();
        let (ok, out) = run(Command::new(fsck).arg("-n").arg(&part));
        let noise: Vec<&str> = out
            .lines()
            .filter(|l| {
                !(l.starts_with("fsck.fat ")
                    || (l.contains(" files, ") && l.ends_with(" clusters")))
            })
            .collect();
        assert!(ok && noise.is_empty(), "fsck.fat -n is not clean:\n{out}");
        fs::remove_file(part).unwrap();
    }

    /// Every path on the volume as `mdir -b -/` prints it (`::/dir/`,
    /// `::/dir/file`).
    fn mdir_tree(&self) -> Option<Vec<String>> {
        let (ok, out) = run(mtools("mdir")?
            .args(["-b", "-/", "-i"])
            .arg(self.spec())
            .arg("::/"));
        assert!(ok, "mdir: {out}");
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        Some(v)
    }

    /// (short name, long name) pairs of a directory, from `mdir`'s listing.
    fn mdir_names(&self, dir: &str) -> Option<Vec<(String, String)>> {
        let (ok, out) = run(mtools("mdir")?
            .args(["-a", "-i"])
            .arg(self.spec())
            .arg(format!("::{dir}")));
        assert!(ok, "mdir: {out}");
        let mut v = Vec::new();
        for line in out.lines() {
            // "FIRMWA~1 BIN    100000 2026-03-14  15:09  firmware-v1.2.3.bin"
            let Some(short) = line.get(..12) else {
                continue;
            };
            if line.starts_with(' ')
                || line.starts_with("Directory")
                || short.trim_start().starts_with('.')
            {
                continue;
            }
            let short = format!("{}.{}", short[..8].trim_end(), short[9..].trim_end());
            let short = short.trim_end_matches('.').to_string();
            let long = line
                .split_once(':')
                .and_then(|(_, r)| r.get(3..))
                .map(|l| l.trim().to_string());
            v.push((
                short.clone(),
                long.filter(|l| !l.is_empty()).unwrap_or(short),
            ));
        }
        Some(v)
    }

    fn mcopy_out(&self, path: &str) -> Option<Vec<u8>> {
        let out = self.path.with_extension("out");
        let (ok, text) = run(mtools("mcopy")?
            .args(["-n", "-i"])
            .arg(self.spec())
            .arg(format!("::{path}"))
            .arg(&out));
        assert!(ok, "mcopy {path}: {text}");
        let data = fs::read(&out).unwrap();
        fs::remove_file(out).unwrap();
        Some(data)
    }

    fn mcopy_in(&self, data: &[u8], path: &str) -> Option<()> {
        let src = self.path.with_extension("in");
        fs::write(&src, data).unwrap();
        let (ok, text) = run(mtools("mcopy")?
            .args(["-n", "-i"])
            .arg(self.spec())
            .arg(&src)
            .arg(format!("::{path}")));
        assert!(ok, "mcopy to {path}: {text}");
        fs::remove_file(src).unwrap();
        Some(())
    }

    fn mmd(&self, path: &str) -> Option<()> {
        let (ok, text) = run(mtools("mmd")?
            .arg("-i")
            .arg(self.spec())
            .arg(format!("::{path}")));
        assert!(ok, "mmd {path}: {text}");
        Some(())
    }
}

fn write_mbr(path: &Path, kind: u8, start: u32, sectors: u32) {
    let mut mbr = [0u8; 512];
    let e = &mut mbr[446..462];
    e[4] = kind;
    e[8..12].copy_from_slice(&start.to_le_bytes());
    e[12..16].copy_from_slice(&sectors.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    let mut bytes = fs::read(path).unwrap();
    bytes[..512].copy_from_slice(&mbr);
    fs::write(path, bytes).unwrap();
}

// ---------------------------------------------------------------------------
// Storage helpers
// ---------------------------------------------------------------------------

/// Deterministic bytes.
fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes like the engine does: TCP-sized pieces.
fn put<S: Storage>(fs: &mut S, path: &str, bytes: &[u8], mode: WriteMode) -> Result<(), Error> {
    let mut f = fs.open_write(path, mode)?;
    for piece in bytes.chunks(1460) {
        if let Err(e) = fs.write(&mut f, piece) {
            let _ = fs.close(f);
            return Err(e);
        }
    }
    fs.close(f)
}

fn get_at<S: Storage>(fs: &mut S, path: &str, offset: u64) -> Result<Vec<u8>, Error> {
    let mut f = fs.open_read(path, offset)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 1000];
    loop {
        match fs.read(&mut f, &mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                let _ = fs.close(f);
                return Err(e);
            }
        }
    }
    fs.close(f)?;
    Ok(out)
}

fn get<S: Storage>(fs: &mut S, path: &str) -> Result<Vec<u8>, Error> {
    get_at(fs, path, 0)
}

fn names<S: Storage>(fs: &mut S, dir: &str) -> Vec<String> {
    let mut v = Vec::new();
    fs.list(dir, 0, &mut |e| {
        v.push(e.name.to_string());
        true
    })
    .unwrap();
    v.sort();
    v
}

/// What the volume should hold: files with their bytes, and directories.
#[derive(Default)]
struct Tree {
    files: BTreeMap<String, Vec<u8>>,
    dirs: Vec<String>,
}

impl Tree {
    fn put<S: Storage>(&mut self, fs: &mut S, path: &str, bytes: Vec<u8>) {
        put(fs, path, &bytes, WriteMode::Truncate).unwrap_or_else(|e| panic!("put {path}: {e}"));
        self.files.insert(path.to_string(), bytes);
    }

    fn mkdir<S: Storage>(&mut self, fs: &mut S, path: &str) {
        fs.mkdir(path)
            .unwrap_or_else(|e| panic!("mkdir {path}: {e}"));
        self.dirs.push(path.to_string());
    }

    /// Reads everything back through `fs`.
    fn verify<S: Storage>(&self, fs: &mut S) {
        for (path, bytes) in &self.files {
            assert_eq!(
                &get(fs, path).unwrap_or_else(|e| panic!("read {path}: {e}")),
                bytes,
                "{path}"
            );
            let m = fs.metadata(path).unwrap();
            assert_eq!((m.kind, m.size), (Kind::File, bytes.len() as u64), "{path}");
        }
        for dir in &self.dirs {
            assert_eq!(fs.metadata(dir).unwrap().kind, Kind::Dir, "{dir}");
        }
        assert_eq!(fs.open_files(), 0);
    }

    /// The same through mtools, and the volume checked by fsck.fat.
    fn verify_with_tools(&self, img: &Image) {
        img.fsck();
        let Some(listed) = img.mdir_tree() else {
            return;
        };
        let mut expected: Vec<String> = self
            .files
            .keys()
            .map(|p| format!("::{}", as_mtools_shows(p)))
            .collect();
        expected.extend(
            self.dirs
                .iter()
                .map(|d| format!("::{}/", as_mtools_shows(d))),
        );
        expected.sort();
        assert_eq!(listed, expected, "mdir sees another tree");
        for (path, bytes) in &self.files {
            // mtools cannot name a file it shows as `__`: a wildcard can.
            let pattern = as_mtools_shows(path).replace("__", "*");
            assert_eq!(
                img.mcopy_out(&pattern).as_ref(),
                Some(bytes),
                "mcopy {path}"
            );
        }
    }
}

/// mtools (4.0.x) reads long names as UCS-2: a character outside the Basic
/// Multilingual Plane, stored as a UTF-16 surrogate pair (as Windows and
/// Linux store it), shows as two `_`.
fn as_mtools_shows(path: &str) -> String {
    path.chars()
        .map(|c| {
            if c.len_utf16() == 2 {
                "__".to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Every operation, on every kind of image
// ---------------------------------------------------------------------------

fn every_operation(img: &Image) {
    let mut fs = img.mount();
    let mut t = Tree::default();
    let firmware = data(1, 100_000);
    let long_name = format!("/{}.txt", "L".repeat(200));
    t.put(&mut fs, "/firmware-v1.2.3.bin", firmware.clone());
    t.put(&mut fs, "/Report 2026 (final).pdf", data(2, 5000));
    t.put(&mut fs, "/Grüße.txt", b"hallo welt\n".to_vec());
    t.put(&mut fs, "/README.TXT", data(3, 512));
    t.put(&mut fs, "/empty.dat", Vec::new());
    t.put(&mut fs, &long_name, data(4, 3));
    t.mkdir(&mut fs, "/docs");
    t.mkdir(&mut fs, "/docs/Sub Dir with a long name");
    t.put(
        &mut fs,
        "/docs/Sub Dir with a long name/nested file.txt",
        data(5, 70_000),
    );
    t.put(&mut fs, "/docs/emoji-😀.txt", b"smile".to_vec());

    let mut expected = vec![
        &long_name[1..],
        "Grüße.txt",
        "README.TXT",
        "Report 2026 (final).pdf",
        "docs",
        "empty.dat",
    ];
    expected.push("firmware-v1.2.3.bin");
    expected.sort();
    assert_eq!(names(&mut fs, "/"), expected);
    let m = fs.metadata("/firmware-v1.2.3.bin").unwrap();
    assert_eq!((m.kind, m.size), (Kind::File, 100_000));
    assert!(m.modified.is_some_and(|d| d.year >= 2024), "{m:?}");
    let root = fs.metadata("/").unwrap();
    assert_eq!((root.kind, root.size), (Kind::Dir, 0));

    // Names match ignoring case, long and short.
    assert_eq!(get(&mut fs, "/FIRMWARE-V1.2.3.BIN").unwrap(), firmware);
    assert_eq!(get(&mut fs, "/FIRMWA~1.BIN").unwrap(), firmware);
    assert_eq!(get(&mut fs, "/GRÜßE.TXT").unwrap(), b"hallo welt\n");
    assert_eq!(get(&mut fs, "/readme.txt").unwrap(), data(3, 512));
    assert_eq!(
        fs.metadata("/DOCS/sub dir WITH a long name").unwrap().kind,
        Kind::Dir
    );
    // Reading from an offset.
    assert_eq!(
        get_at(&mut fs, "/firmware-v1.2.3.bin", 99_000).unwrap(),
        firmware[99_000..]
    );
    assert_eq!(
        get_at(&mut fs, "/firmware-v1.2.3.bin", 100_000).unwrap(),
        b""
    );
    assert_eq!(
        fs.open_read("/firmware-v1.2.3.bin", 100_001).err(),
        Some(Error::InvalidOffset)
    );
    // Listing with skip, and stopping early.
    let mut seen = Vec::new();
    fs.list("/", 5, &mut |e| {
        seen.push(e.name.to_string());
        true
    })
    .unwrap();
    assert_eq!(seen.len(), 2);
    let mut first = Vec::new();
    fs.list("/", 0, &mut |e| {
        first.push(e.name.to_string());
        false
    })
    .unwrap();
    assert_eq!(first.len(), 1);

    // STOU on an existing name (any case).
    assert_eq!(
        fs.open_write("/readme.txt", WriteMode::CreateNew).err(),
        Some(Error::AlreadyExists)
    );
    // APPE.
    put(&mut fs, "/Grüße.txt", b"zweite Zeile\n", WriteMode::Append).unwrap();
    t.files
        .insert("/Grüße.txt".into(), b"hallo welt\nzweite Zeile\n".to_vec());
    put(&mut fs, "/new-by-append.log", b"first", WriteMode::Append).unwrap();
    t.files
        .insert("/new-by-append.log".into(), b"first".to_vec());
    // REST + STOR: resume after a cut-off upload...
    put(
        &mut fs,
        "/firmware-v1.2.3.bin",
        &firmware[..30_000],
        WriteMode::Truncate,
    )
    .unwrap();
    put(
        &mut fs,
        "/firmware-v1.2.3.bin",
        &firmware[30_000..],
        WriteMode::At(30_000),
    )
    .unwrap();
    assert_eq!(get(&mut fs, "/firmware-v1.2.3.bin").unwrap(), firmware);
    // ...and the bytes after the new data are cut off.
    put(
        &mut fs,
        "/Report 2026 (final).pdf",
        b"XY",
        WriteMode::At(1000),
    )
    .unwrap();
    let mut report = data(2, 1000);
    report.extend_from_slice(b"XY");
    t.files.insert("/Report 2026 (final).pdf".into(), report);
    assert_eq!(
        fs.open_write("/empty.dat", WriteMode::At(1)).err(),
        Some(Error::InvalidOffset)
    );
    assert_eq!(
        fs.open_write("/nothing-here", WriteMode::At(1)).err(),
        Some(Error::InvalidOffset)
    );
    put(&mut fs, "/README.TXT", b"", WriteMode::At(512)).unwrap();

    // Rename in place, across directories, directories with their contents.
    fs.rename("/Report 2026 (final).pdf", "/Report 2026 (final, v2).pdf")
        .unwrap();
    let v = t.files.remove("/Report 2026 (final).pdf").unwrap();
    t.files.insert("/Report 2026 (final, v2).pdf".into(), v);
    fs.rename("/README.TXT", "/docs/readme-moved.txt").unwrap();
    let v = t.files.remove("/README.TXT").unwrap();
    t.files.insert("/docs/readme-moved.txt".into(), v);
    t.mkdir(&mut fs, "/archive");
    fs.rename("/docs/Sub Dir with a long name", "/archive/moved dir")
        .unwrap();
    t.dirs.retain(|d| d != "/docs/Sub Dir with a long name");
    t.dirs.push("/archive/moved dir".into());
    let v = t
        .files
        .remove("/docs/Sub Dir with a long name/nested file.txt")
        .unwrap();
    t.files
        .insert("/archive/moved dir/nested file.txt".into(), v);
    // The moved directory's `..` now leads to its new parent: creating in
    // it and renaming back up works, and fsck checks `..` below.
    t.put(
        &mut fs,
        "/archive/moved dir/after the move.txt",
        data(6, 1234),
    );
    // Case-only rename.
    fs.rename("/empty.dat", "/EMPTY.DAT").unwrap();
    let v = t.files.remove("/empty.dat").unwrap();
    t.files.insert("/EMPTY.DAT".into(), v);
    assert!(names(&mut fs, "/").contains(&"EMPTY.DAT".to_string()));
    // Renames that must fail.
    assert_eq!(
        fs.rename("/archive", "/archive/moved dir/inside").err(),
        Some(Error::PermissionDenied)
    );
    assert_eq!(
        fs.rename("/archive", "/archive/x").err(),
        Some(Error::PermissionDenied)
    );
    assert_eq!(
        fs.rename("/EMPTY.DAT", "/firmware-v1.2.3.bin").err(),
        Some(Error::AlreadyExists)
    );
    assert_eq!(
        fs.rename("/EMPTY.DAT", "/FIRMWARE-v1.2.3.BIN").err(),
        Some(Error::AlreadyExists)
    );
    assert_eq!(fs.rename("/nope", "/nope2").err(), Some(Error::NotFound));
    assert_eq!(
        fs.rename("/EMPTY.DAT", "/missing/x").err(),
        Some(Error::NotFound)
    );
    assert_eq!(
        fs.rename("/EMPTY.DAT", "/bad:name").err(),
        Some(Error::InvalidName)
    );

    // Deletes.
    t.put(&mut fs, "/to-delete.bin", data(7, 40_000));
    fs.remove("/to-delete.bin").unwrap();
    t.files.remove("/to-delete.bin");
    t.mkdir(&mut fs, "/empty dir");
    fs.rmdir("/empty dir").unwrap();
    t.dirs.retain(|d| d != "/empty dir");
    assert_eq!(fs.rmdir("/archive").err(), Some(Error::DirectoryNotEmpty));
    assert_eq!(fs.rmdir("/EMPTY.DAT").err(), Some(Error::NotADirectory));
    assert_eq!(fs.rmdir("/").err(), Some(Error::PermissionDenied));
    assert_eq!(fs.remove("/docs").err(), Some(Error::IsADirectory));
    assert_eq!(fs.remove("/gone").err(), Some(Error::NotFound));

    // Errors a client can provoke.
    assert_eq!(fs.open_read("/docs", 0).err(), Some(Error::IsADirectory));
    assert_eq!(
        fs.open_write("/docs", WriteMode::Truncate).err(),
        Some(Error::IsADirectory)
    );
    assert_eq!(
        fs.list("/EMPTY.DAT", 0, &mut |_| true).err(),
        Some(Error::NotADirectory)
    );
    assert_eq!(
        fs.metadata("/Grüße.txt/x").err(),
        Some(Error::NotADirectory)
    );
    assert_eq!(fs.metadata("/no/such/path").err(), Some(Error::NotFound));
    assert_eq!(
        fs.open_write("/a:b", WriteMode::Truncate).err(),
        Some(Error::InvalidName)
    );
    assert_eq!(
        fs.open_write("/trailing.", WriteMode::Truncate).err(),
        Some(Error::InvalidName)
    );
    let too_long = format!("/{}", "x".repeat(256));
    assert_eq!(
        fs.open_write(&too_long, WriteMode::Truncate).err(),
        Some(Error::NameTooLong)
    );
    assert_eq!(fs.mkdir("/docs").err(), Some(Error::AlreadyExists));
    assert_eq!(fs.mkdir("/DOCS").err(), Some(Error::AlreadyExists));
    assert_eq!(fs.mkdir("/").err(), Some(Error::AlreadyExists));
    assert_eq!(fs.mkdir("/x/y").err(), Some(Error::NotFound));
    assert_eq!(fs.mkdir("/a*b").err(), Some(Error::InvalidName));

    t.verify(&mut fs);
    // Durable after each operation: the tools read the image while it is
    // still mounted.
    t.verify_with_tools(img);
    let free = fs.free_space().unwrap();
    fs.unmount().unwrap();

    // Mounted again, everything reads back and the free space agrees.
    let mut fs = img.mount();
    t.verify(&mut fs);
    assert_eq!(fs.free_space(), Some(free));
    fs.unmount().unwrap();
    t.verify_with_tools(img);
}

#[test]
fn own_fat32_partitioned() {
    every_operation(&Image::own(FatType::Fat32, 40 * MIB, true));
}

#[test]
fn own_fat32_bare() {
    every_operation(&Image::own(FatType::Fat32, 40 * MIB, false));
}

#[test]
fn own_fat16_partitioned() {
    every_operation(&Image::own(FatType::Fat16, 16 * MIB, true));
}

#[test]
fn mkfs_fat32_bare() {
    if let Some(img) = Image::mkfs_bare(FatType::Fat32, 40 * MIB) {
        every_operation(&img);
    }
}

#[test]
fn mkfs_fat16_bare() {
    if let Some(img) = Image::mkfs_bare(FatType::Fat16, 16 * MIB) {
        every_operation(&img);
    }
}

#[test]
fn mkfs_fat32_in_a_partition_table() {
    if let Some(img) = Image::mkfs_partitioned(FatType::Fat32, 40 * MIB) {
        every_operation(&img);
    }
}

#[test]
fn mkfs_fat16_in_a_partition_table() {
    if let Some(img) = Image::mkfs_partitioned(FatType::Fat16, 16 * MIB) {
        every_operation(&img);
    }
}

#[test]
fn mformat_fat32_in_a_partition_table() {
    if let Some(img) = Image::mformat_partitioned(40 * MIB) {
        every_operation(&img);
    }
}

// ---------------------------------------------------------------------------
// Names and aliases as other tools see them
// ---------------------------------------------------------------------------

#[test]
fn aliases_are_unique_and_directories_grow() {
    // 512-byte clusters: a directory cluster holds 16 slots, 5 of these
    // entries, so 100 entries need 20 clusters.
    let img = Image::own(FatType::Fat32, 40 * MIB, true);
    let mut fs = img.mount();
    assert_eq!(fs.info().cluster_bytes, 512);
    let mut t = Tree::default();
    t.mkdir(&mut fs, "/many");
    for n in 0..100 {
        t.put(
            &mut fs,
            &format!("/many/firmware-v1.2.{n}.bin"),
            data(100 + n, 10 + n as usize),
        );
    }
    // Holes: delete every third, then fill with other names.
    for n in (0..100).step_by(3) {
        let p = format!("/many/firmware-v1.2.{n}.bin");
        fs.remove(&p).unwrap();
        t.files.remove(&p);
    }
    for n in 0..20 {
        t.put(&mut fs, &format!("/many/refill {n}.dat"), data(300 + n, 7));
    }
    t.verify(&mut fs);
    fs.unmount().unwrap();
    t.verify_with_tools(&img);
    let Some(listing) = img.mdir_names("/many") else {
        return;
    };
    assert_eq!(listing.len(), t.files.len());
    let mut shorts: Vec<&str> = listing.iter().map(|(s, _)| s.as_str()).collect();
    shorts.sort();
    shorts.dedup();
    assert_eq!(
        shorts.len(),
        listing.len(),
        "short names are unique: {listing:?}"
    );
    let alias = |long: &str| {
        listing
            .iter()
            .find(|(_, l)| l == long)
            .map(|(s, _)| s.clone())
    };
    // Created in order: v1.2.0 got ~1, v1.2.9 the first two-digit tail,
    // v1.2.63 and later hashed names once ~1..~63 were taken.
    assert_eq!(
        alias("firmware-v1.2.1.bin").as_deref(),
        Some("FIRMWA~2.BIN")
    );
    assert_eq!(
        alias("firmware-v1.2.11.bin").as_deref(),
        Some("FIRMW~12.BIN")
    );
    let hashed = alias("firmware-v1.2.70.bin").unwrap();
    assert!(
        hashed.starts_with("FI") && hashed.ends_with("~1.BIN") && hashed.len() == 12,
        "{hashed}"
    );
    assert_eq!(alias("refill 0.dat").as_deref(), Some("REFILL~1.DAT"));
}

#[test]
fn short_names_keep_their_case_rules() {
    let img = Image::own(FatType::Fat32, 40 * MIB, true);
    let mut fs = img.mount();
    put(&mut fs, "/README.TXT", b"upper", WriteMode::Truncate).unwrap();
    put(&mut fs, "/notes.md", b"lower", WriteMode::Truncate).unwrap();
    put(&mut fs, "/Makefile", b"mixed", WriteMode::Truncate).unwrap();
    fs.unmount().unwrap();
    img.fsck();
    let Some(listing) = img.mdir_names("/") else {
        return;
    };
    let mut listing = listing;
    listing.sort();
    assert_eq!(
        listing,
        [
            ("MAKEFILE".to_string(), "Makefile".to_string()),
            ("NOTES.MD".to_string(), "notes.md".to_string()),
            ("README.TXT".to_string(), "README.TXT".to_string()),
        ]
    );
}

#[test]
fn files_written_by_mtools_are_read_renamed_and_deleted() {
    let img = Image::own(FatType::Fat32, 40 * MIB, true);
    let mut t = Tree::default();
    let (Some(()), Some(())) = (
        img.mmd("/From mtools"),
        img.mcopy_in(&data(9, 9000), "/From mtools/long name by mtools.bin"),
    ) else {
        return;
    };
    img.mcopy_in(b"tiny", "/Grüße aus mtools.txt").unwrap();
    let mut fs = img.mount();
    assert_eq!(names(&mut fs, "/"), ["From mtools", "Grüße aus mtools.txt"]);
    assert_eq!(
        get(&mut fs, "/from MTOOLS/LONG NAME BY MTOOLS.BIN").unwrap(),
        data(9, 9000)
    );
    fs.rename(
        "/From mtools/long name by mtools.bin",
        "/moved from mtools.bin",
    )
    .unwrap();
    fs.rename("/From mtools", "/renamed mtools dir").unwrap();
    fs.remove("/Grüße aus mtools.txt").unwrap();
    t.dirs.push("/renamed mtools dir".into());
    t.files
        .insert("/moved from mtools.bin".into(), data(9, 9000));
    t.verify(&mut fs);
    fs.unmount().unwrap();
    t.verify_with_tools(&img);
}

// ---------------------------------------------------------------------------
// Handles
// ---------------------------------------------------------------------------

#[test]
fn readers_share_writers_do_not() {
    let img = Image::own(FatType::Fat32, 40 * MIB, true);
    let mut fs = img.mount();
    let bytes = data(11, 20_000);
    put(&mut fs, "/shared.bin", &bytes, WriteMode::Truncate).unwrap();
    let mut a = fs.open_read("/shared.bin", 0).unwrap();
    let mut b = fs.open_read("/shared.bin", 10_000).unwrap();
    assert_eq!(fs.open_files(), 2);
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 777];
    loop {
        let na = fs.read(&mut a, &mut buf).unwrap();
        got_a.extend_from_slice(&buf[..na]);
        let nb = fs.read(&mut b, &mut buf).unwrap();
        got_b.extend_from_slice(&buf[..nb]);
        if na == 0 && nb == 0 {
            break;
        }
    }
    assert_eq!(got_a, bytes);
    assert_eq!(got_b, bytes[10_000..]);
    // While it is being read: no writing, renaming or deleting it.
    assert_eq!(
        fs.open_write("/shared.bin", WriteMode::Truncate).err(),
        Some(Error::Busy)
    );
    assert_eq!(
        fs.rename("/shared.bin", "/other.bin").err(),
        Some(Error::Busy)
    );
    assert_eq!(fs.remove("/shared.bin").err(), Some(Error::Busy));
    fs.close(a).unwrap();
    fs.close(b).unwrap();
    // While it is being written: no reading; its size shows the progress.
    let mut w = fs.open_write("/shared.bin", WriteMode::Append).unwrap();
    fs.write(&mut w, b"more").unwrap();
    assert_eq!(fs.open_read("/shared.bin", 0).err(), Some(Error::Busy));
    assert_eq!(fs.metadata("/shared.bin").unwrap().size, 20_004);
    // A directory holding an open file can be moved.
    fs.mkdir("/d").unwrap();
    let mut inner = fs.open_write("/d/inner.txt", WriteMode::Truncate).unwrap();
    fs.rename("/d", "/d2").unwrap();
    fs.write(&mut inner, b"written after the move").unwrap();
    fs.close(inner).unwrap();
    fs.close(w).unwrap();
    assert_eq!(fs.open_files(), 0);
    assert_eq!(
        get(&mut fs, "/d2/inner.txt").unwrap(),
        b"written after the move"
    );
    // The table is bounded: one more than FILES is Busy, not a panic.
    let mut open = Vec::new();
    for _ in 0..8 {
        open.push(fs.open_read("/shared.bin", 0).unwrap());
    }
    assert_eq!(fs.open_read("/shared.bin", 0).err(), Some(Error::Busy));
    assert_eq!(
        fs.open_write("/another", WriteMode::Truncate).err(),
        Some(Error::Busy)
    );
    for f in open {
        fs.close(f).unwrap();
    }
    assert_eq!(fs.open_files(), 0);
    fs.unmount().unwrap();
    img.fsck();
}

// ---------------------------------------------------------------------------
// Full disk
// ---------------------------------------------------------------------------

fn fill_up(img: &Image) {
    let mut fs = img.mount();
    let keep = data(21, 300_000);
    put(&mut fs, "/keep me.bin", &keep, WriteMode::Truncate).unwrap();
    let free = fs.free_space().unwrap();
    // A file larger than the free space: the write fails with NoSpace.
    let big = data(22, free as usize + 100_000);
    let mut f = fs.open_write("/too big.bin", WriteMode::Truncate).unwrap();
    let mut err = None;
    for piece in big.chunks(4096) {
        if let Err(e) = fs.write(&mut f, piece) {
            err = Some(e);
            break;
        }
    }
    assert_eq!(err, Some(Error::NoSpace));
    assert_eq!(fs.close(f), Ok(()), "what fit is kept, closed cleanly");
    assert_eq!(fs.free_space(), Some(0));
    let partial = fs.metadata("/too big.bin").unwrap().size;
    assert_eq!(partial, free, "exactly the free space was used");
    assert_eq!(
        get(&mut fs, "/too big.bin").unwrap(),
        big[..partial as usize]
    );
    // Nothing else fits; what was there is intact.
    assert_eq!(
        put(
            &mut fs,
            "/one more.bin",
            &data(23, 5000),
            WriteMode::Truncate
        ),
        Err(Error::NoSpace)
    );
    assert_eq!(get(&mut fs, "/keep me.bin").unwrap(), keep);
    fs.unmount().unwrap();
    img.fsck();
    // After a delete, the next upload fits.
    let mut fs = img.mount();
    fs.remove("/too big.bin").unwrap();
    fs.remove("/one more.bin").unwrap();
    assert_eq!(fs.free_space(), Some(free));
    put(
        &mut fs,
        "/one more.bin",
        &data(23, 5000),
        WriteMode::Truncate,
    )
    .unwrap();
    assert_eq!(get(&mut fs, "/keep me.bin").unwrap(), keep);
    fs.unmount().unwrap();
    let mut t = Tree::default();
    t.files.insert("/keep me.bin".into(), keep);
    t.files.insert("/one more.bin".into(), data(23, 5000));
    t.verify_with_tools(img);
}

#[test]
fn full_fat16_disk() {
    fill_up(&Image::own(FatType::Fat16, 4 * MIB, true));
}

#[test]
fn full_fat32_disk() {
    fill_up(&Image::own(FatType::Fat32, 36 * MIB, false));
}

#[test]
fn fat16_root_directory_fills_up() {
    let img = Image::own(FatType::Fat16, 8 * MIB, true);
    let mut fs = img.mount();
    let mut made = 0;
    let err = loop {
        match put(
            &mut fs,
            &format!("/entry number {made}.txt"),
            b"x",
            WriteMode::Truncate,
        ) {
            Ok(()) => made += 1,
            Err(e) => break e,
        }
        assert!(made < 1000, "the root never filled up");
    };
    assert_eq!(err, Error::NoSpace);
    // 512 slots in 32 blocks, 3 per entry: entries are not split across
    // blocks (so each appears atomically), 5 fit in a block.
    assert_eq!(made, 32 * 5);
    // A subdirectory still grows.
    fs.mkdir("/sub").unwrap_err();
    fs.remove("/entry number 0.txt").unwrap();
    fs.mkdir("/sub").unwrap();
    for n in 0..50 {
        put(
            &mut fs,
            &format!("/sub/file number {n}.txt"),
            b"y",
            WriteMode::Truncate,
        )
        .unwrap();
    }
    fs.unmount().unwrap();
    img.fsck();
}

// ---------------------------------------------------------------------------
// Mounting what cannot be mounted
// ---------------------------------------------------------------------------

fn mount_error(img: &Image) -> String {
    match host::mount_image(&img.path) {
        Ok(_) => panic!("{} mounted", img.path.display()),
        Err(ImageError::Mount(e)) => {
            let text = e.to_string();
            assert!(!matches!(e, MountError::Device(_)), "{text}");
            text
        }
        Err(e) => panic!("unexpected: {e}"),
    }
}

#[test]
fn unformatted_and_damaged_images_get_clear_errors() {
    let blank = Image::empty(8 * MIB);
    assert_eq!(
        mount_error(&blank),
        "no FAT file system found: the image is unformatted (its first sector is blank)"
    );

    let junk = Image::empty(0);
    fs::write(&junk.path, data(31, 4 * MIB as usize)).unwrap();
    assert!(mount_error(&junk).starts_with("no FAT file system found"));

    // A FAT32 image cut in half: the boot sector promises more than there is.
    let cut = Image::own(FatType::Fat32, 40 * MIB, true);
    fs::OpenOptions::new()
        .write(true)
        .open(&cut.path)
        .unwrap()
        .set_len(20 * MIB)
        .unwrap();
    assert!(mount_error(&cut).starts_with("damaged FAT file system"));

    // A boot sector with garbage numbers.
    let bad = Image::own(FatType::Fat32, 40 * MIB, false);
    let mut bytes = fs::read(&bad.path).unwrap();
    bytes[13] = 0; // sectors per cluster
    fs::write(&bad.path, &bytes).unwrap();
    assert!(mount_error(&bad).starts_with("damaged FAT file system"));

    // A damaged FSInfo sector.
    let bad = Image::own(FatType::Fat32, 40 * MIB, false);
    let mut bytes = fs::read(&bad.path).unwrap();
    bytes[512] = 0;
    fs::write(&bad.path, &bytes).unwrap();
    assert!(mount_error(&bad).contains("FSInfo"));

    // A partition table with a Linux partition only.
    let linux = Image::empty(8 * MIB);
    write_mbr(&linux.path, 0x83, 2048, 8192);
    assert!(mount_error(&linux).contains("type 0x83"));

    // A missing file is an I/O error, not a panic.
    assert!(matches!(
        host::mount_image("/nonexistent/sd.img"),
        Err(ImageError::Io(_))
    ));
}

#[test]
fn mounting_in_place_fails_cleanly_and_can_be_retried() {
    let img = Image::empty(40 * MIB);
    let dev = host::FileBlockDevice::open(&img.path).unwrap();
    let mut fs = ImageStorage::new(dev, host::StdClock);
    assert!(!fs.is_mounted());
    // Before a mount, nothing reaches the device: not ready.
    assert_eq!(fs.metadata("/").unwrap_err(), Error::NotReady);
    assert_eq!(fs.mkdir("/x").unwrap_err(), Error::NotReady);
    assert_eq!(fs.open_read("/x", 0).unwrap_err(), Error::NotReady);
    assert_eq!(
        fs.open_write("/x", WriteMode::Truncate).unwrap_err(),
        Error::NotReady
    );
    assert_eq!(fs.list("/", 0, &mut |_| true).unwrap_err(), Error::NotReady);
    assert_eq!(fs.free_space(), None);
    assert!(matches!(fs.mount(), Err(MountError::Unformatted)));
    assert!(!fs.is_mounted());

    // The card is formatted behind its back (the same file, same size):
    // the next attempt starts afresh and succeeds.
    host::format_image(&img.path, 40 * MIB, FatType::Fat32).unwrap();
    fs.mount().unwrap();
    assert!(fs.is_mounted());
    assert_eq!(fs.info().fat_type, FatType::Fat32);
    assert!(fs.free_space().unwrap() > 30 * MIB);
    fs.mkdir("/after a retry").unwrap();
    put(
        &mut fs,
        "/after a retry/Grüße.txt",
        b"hello",
        WriteMode::Truncate,
    )
    .unwrap();
    // Mounting a mounted volume changes nothing.
    fs.mount().unwrap();
    assert_eq!(fs.metadata("/AFTER A RETRY/GRÜßE.txt").unwrap().size, 5);
    fs.unmount().unwrap();
    img.fsck();
}

#[test]
fn fat12_is_refused_by_name() {
    let Some(mkfs) = tool("mkfs.fat") else { return };
    let img = Image::empty(0);
    fs::remove_file(&img.path).unwrap();
    let (ok, out) = run(Command::new(mkfs)
        .args(["-C", "-F", "12"])
        .arg(&img.path)
        .arg("1440"));
    assert!(ok, "{out}");
    assert_eq!(
        mount_error(&img),
        "FAT12 is not supported: format the volume as FAT32 or FAT16 (mkfs.fat -F 32)"
    );
}

#[test]
fn format_image_refuses_impossible_sizes() {
    let img = Image::empty(0);
    assert!(matches!(
        host::format_image(&img.path, 1000, FatType::Fat32),
        Err(ImageError::Size(1000))
    ));
    let e = host::format_image(&img.path, 8 * MIB, FatType::Fat32).unwrap_err();
    assert!(
        e.to_string().starts_with("too small for this FAT type"),
        "{e}"
    );
    // 64 MiB, as `harness image create sd.img --size 64M` makes it.
    host::format_image(&img.path, 64 * MIB, FatType::Fat32).unwrap();
    let fs = img.mount();
    assert_eq!(fs.info().fat_type, FatType::Fat32);
    assert!(fs.info().partitioned);
    fs.unmount().unwrap();
    img.fsck();
}

// ---------------------------------------------------------------------------
// The block cache
// ---------------------------------------------------------------------------

#[test]
fn the_cache_turns_block_writes_into_multi_block_commands() {
    let img = Image::own(FatType::Fat32, 40 * MIB, true);
    let mut fs = img.mount();
    let before = fs.cache_stats();
    let bytes = data(41, 1 << 20);
    put(&mut fs, "/one-mebibyte.bin", &bytes, WriteMode::Truncate).unwrap();
    let after = fs.cache_stats();
    let (cmds, blocks) = (
        after.write_cmds - before.write_cmds,
        after.write_blocks - before.write_blocks,
    );
    eprintln!("1 MiB upload: {blocks} blocks in {cmds} write commands");
    // 2048 data blocks plus FAT and directory blocks; the library alone
    // would have sent well over 2048 single-block writes (and rewritten each
    // FAT block for every cluster).
    assert!(blocks >= 2048 && cmds * 8 <= blocks, "{after:?}");
    fs.unmount().unwrap();
    // A fresh mount: nothing of the file is cached.
    let mut fs = img.mount();
    let before = fs.cache_stats();
    assert_eq!(get(&mut fs, "/one-mebibyte.bin").unwrap(), bytes);
    let after = fs.cache_stats();
    let (cmds, blocks) = (
        after.read_cmds - before.read_cmds,
        after.read_blocks - before.read_blocks,
    );
    eprintln!("1 MiB download: {blocks} blocks in {cmds} read commands");
    assert!(blocks >= 2048 && cmds * 8 <= blocks, "{after:?}");
    fs.unmount().unwrap();
    img.fsck();
}
