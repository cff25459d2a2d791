//! The host server against real FTP clients nobody here wrote: curl, lftp,
//! wget, tnftp (Debian's `ftp`), Python's ftplib (`ftplib_all.py`) and the
//! suppaftp crate.
//!
//! Every test runs once per storage backend (`NAME::dir`, `NAME::fat`,
//! `NAME::fat_mbr`): the same client steps against `sim --root DIR` and
//! `sim --image IMG`, the image made by `mkfs.fat` (bare, and behind an MBR).
//! Files are seeded and read back without the server (`std::fs`, or mtools on
//! the image), and after the server stops a FAT image must pass `fsck.fat -n`.
//!
//! A missing tool fails the test under `CI=true` and prints a loud message
//! otherwise. Every external command runs with a time limit, the server is
//! killed when a test ends however it ends.
//!
//! Run: `cargo test -p sim --test clients` (add `-- --nocapture` to see the
//! ftplib script's check lines).

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;
use std::time::Duration;

use common::{Backend, Fixture, assert_same_bytes, assert_same_tree, have_tool, random_bytes, run};
use harness::testkit::mirror_tree;

// ---------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------

/// curl's exit codes the tests expect (see `man curl`, EXIT CODES).
const CURLE_REMOTE_ACCESS_DENIED: i32 = 9;
const CURLE_QUOTE_ERROR: i32 = 21;
const CURLE_REMOTE_FILE_NOT_FOUND: i32 = 78;

fn curl(args: &[&str]) -> common::Output {
    run(
        Command::new("curl")
            .args(["-sSv", "--max-time", "90", "--connect-timeout", "10"])
            .args(args),
        common::TOOL_TIMEOUT,
    )
}

/// Percent-encodes a path for a URL (keeps `/` and the unreserved characters).
fn pct(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The entries of a Unix `ls -l` listing: name -> (type char, size).
fn parse_ls(listing: &str) -> BTreeMap<String, (char, u64)> {
    let mut out = BTreeMap::new();
    for line in listing.lines().filter(|l| !l.is_empty()) {
        // perms links owner group size month day time|year name (the name may hold spaces)
        let mut rest = line;
        let mut fields = Vec::new();
        for _ in 0..8 {
            let t = rest.trim_start_matches(' ');
            let end = t
                .find(' ')
                .unwrap_or_else(|| panic!("short LIST line: {line:?}"));
            fields.push(&t[..end]);
            rest = &t[end..];
        }
        let name = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("LIST line: {line:?}"));
        let kind = fields[0].chars().next().unwrap();
        assert!(kind == '-' || kind == 'd', "LIST type in {line:?}");
        assert_eq!(fields[0].len(), 10, "LIST permissions in {line:?}");
        let size: u64 = fields[4]
            .parse()
            .unwrap_or_else(|_| panic!("LIST size in {line:?}"));
        assert!(
            [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
            ]
            .contains(&fields[5]),
            "LIST month in {line:?}"
        );
        out.insert(name.to_string(), (kind, size));
    }
    out
}

/// `curl ftp://.../dir/` lists (LIST, Unix form) and `--list-only` names (NLST),
/// for the read-write user and for anonymous.
fn curl_list(b: Backend) {
    if !have_tool("curl") {
        return;
    }
    let Some(fx) = Fixture::new(b) else { return };
    fx.put("/dir/alpha.txt", b"alpha\n");
    fx.put("/dir/Report 2026 (final).pdf", &random_bytes(3000, 1));
    fx.put("/dir/sub/inner.bin", b"x");
    fx.mkdir("/dir/empty");
    let srv = fx.start(&[]);

    for user in [srv.url("test", "test"), format!("ftp://{}", srv.addr)] {
        let out = curl(&[&format!("{user}/dir/")]).ok("curl list");
        let entries = parse_ls(&out.stdout());
        let want: BTreeMap<String, (char, u64)> = [
            ("alpha.txt", ('-', 6)),
            ("Report 2026 (final).pdf", ('-', 3000)),
            ("sub", ('d', 0)),
            ("empty", ('d', 0)),
        ]
        .into_iter()
        .map(|(n, e)| (n.to_string(), e))
        .collect();
        // Directory sizes are not compared: only their type.
        let simplify = |m: &BTreeMap<String, (char, u64)>| -> BTreeMap<String, (char, u64)> {
            m.iter()
                .map(|(k, &(t, s))| (k.clone(), (t, if t == 'd' { 0 } else { s })))
                .collect()
        };
        assert_eq!(simplify(&entries), want, "LIST of /dir/:\n{}", out.stdout());

        let out = curl(&["--list-only", &format!("{user}/dir/")]).ok("curl --list-only");
        let mut names: Vec<String> = out.stdout().lines().map(str::to_string).collect();
        names.sort();
        assert_eq!(
            names,
            ["Report 2026 (final).pdf", "alpha.txt", "empty", "sub"],
            "NLST of /dir/"
        );

        // A directory's contents by a relative URL path into a subdirectory.
        let out = curl(&[&format!("{user}/dir/sub/")]).ok("curl list sub");
        assert_eq!(
            parse_ls(&out.stdout()).into_iter().collect::<Vec<_>>(),
            [("inner.bin".to_string(), ('-', 1))]
        );
        let out = curl(&[&format!("{user}/dir/empty/")]).ok("curl list empty");
        assert_eq!(out.stdout(), "", "LIST of an empty directory");
    }
    srv.stop();
    fx.assert_clean();
}

/// Downloads compared byte for byte: binary, a UTF-8 name, an empty file, a
/// name with spaces and parentheses; anonymous and the read-write user.
fn curl_download(b: Backend) {
    if !have_tool("curl") {
        return;
    }
    let Some(fx) = Fixture::new(b) else { return };
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("/pub/data.bin", random_bytes(1_234_567, 2)),
        (
            "/pub/Grüße.txt",
            "Grüße aus dem Test\r\n".as_bytes().to_vec(),
        ),
        ("/pub/empty.dat", Vec::new()),
        ("/Report 2026 (final).pdf", random_bytes(70_001, 3)),
        ("/pub/deeper/firmware-v1.2.3.bin", random_bytes(4096, 4)),
    ];
    for (p, d) in &files {
        fx.put(p, d);
    }
    let srv = fx.start(&[]);
    let out_file = fx.scratch().join("out");
    for (i, (p, want)) in files.iter().enumerate() {
        let base = if i % 2 == 0 {
            format!("ftp://{}", srv.addr)
        } else {
            srv.url("test", "test")
        };
        let _ = fs::remove_file(&out_file);
        curl(&[
            "-o",
            out_file.to_str().unwrap(),
            &format!("{base}{}", pct(p)),
        ])
        .ok(&format!("curl get {p}"));
        assert_same_bytes(p, &fs::read(&out_file).unwrap(), want);
    }
    srv.stop();
    fx.assert_clean();
}

/// `curl -T` uploads: into an existing directory, over an existing larger file
/// (which must shrink), with a long name, and with `--ftp-create-dirs`.
fn curl_upload(b: Backend) {
    if !have_tool("curl") {
        return;
    }
    let Some(fx) = Fixture::new(b) else { return };
    fx.mkdir("/up");
    fx.put("/up/replace.bin", &random_bytes(300_000, 5));
    let srv = fx.start(&[]);
    let url = srv.url("test", "test");
    let uploads: Vec<(&str, Vec<u8>, bool)> = vec![
        ("/up/new.bin", random_bytes(2_000_000, 6), false),
        ("/up/replace.bin", random_bytes(10_000, 7), false),
        ("/up/firmware-v1.2.3.bin", random_bytes(65_536, 8), false),
        (
            "/up/Report 2026 (final).pdf",
            random_bytes(33_333, 9),
            false,
        ),
        (
            "/made/by/curl/Grüße.txt",
            "Grüße\n".as_bytes().to_vec(),
            true,
        ),
        ("/up/empty.txt", Vec::new(), false),
    ];
    let local = fx.scratch().join("local");
    for (p, data, create_dirs) in &uploads {
        fs::write(&local, data).unwrap();
        let target = format!("{url}{}", pct(p));
        let mut args = vec!["-T", local.to_str().unwrap(), target.as_str()];
        if *create_dirs {
            args.insert(0, "--ftp-create-dirs");
        }
        curl(&args).ok(&format!("curl -T {p}"));
    }
    // Anonymous is read-only: the upload is refused and nothing is written.
    fs::write(&local, b"nope").unwrap();
    let out = curl(&[
        "-T",
        local.to_str().unwrap(),
        &format!("ftp://{}/up/anon.txt", srv.addr),
    ]);
    assert!(
        !out.status.success(),
        "anonymous upload must fail, curl said: {}",
        out.stderr()
    );
    srv.stop();
    fx.assert_clean();
    for (p, data, _) in &uploads {
        let got = fx
            .read(p)
            .unwrap_or_else(|| panic!("{p} is not in the storage"));
        assert_same_bytes(p, &got, data);
    }
    assert!(!fx.exists("/up/anon.txt"), "anonymous upload left a file");
}

/// Every 226 after STOR means the bytes and the directory entry are in the
/// storage: uploads, then the server is killed (SIGKILL, no chance to flush),
/// and the storage holds every uploaded byte (and the FAT image is clean).
fn curl_upload_then_crash(b: Backend) {
    if !have_tool("curl") {
        return;
    }
    let Some(fx) = Fixture::new(b) else { return };
    fx.put("/old.bin", &random_bytes(100_000, 60));
    let srv = fx.start(&[]);
    let url = srv.url("test", "test");
    let local = fx.scratch().join("local");
    let files = [
        ("/crash/firmware-v1.2.3.bin", random_bytes(1_000_000, 61)),
        ("/crash/Report 2026 (final).pdf", random_bytes(4321, 62)),
        ("/old.bin", random_bytes(2000, 63)),
    ];
    for (p, data) in &files {
        fs::write(&local, data).unwrap();
        curl(&[
            "--ftp-create-dirs",
            "-T",
            local.to_str().unwrap(),
            &format!("{url}{}", pct(p)),
        ])
        .ok(&format!("curl -T {p}"));
    }
    curl(&[
        "-Q",
        "RNFR /crash/Report 2026 (final).pdf",
        "-Q",
        "RNTO /crash/renamed.pdf",
        &format!("{url}/"),
    ])
    .ok("curl rename");
    srv.kill();
    fx.assert_clean();
    assert_same_bytes(
        "after the crash",
        &fx.read(files[0].0).expect("uploaded file"),
        &files[0].1,
    );
    assert_same_bytes(
        "after the crash",
        &fx.read("/crash/renamed.pdf").expect("renamed file"),
        &files[1].1,
    );
    assert_same_bytes(
        "after the crash",
        &fx.read("/old.bin").expect("overwritten file"),
        &files[2].1,
    );
    assert!(
        !fx.exists("/crash/Report 2026 (final).pdf"),
        "the old name survived the rename"
    );
}

/// `-C -` resumes a download from a partial local file and an upload onto a
/// partial remote file; the final bytes must be the whole file.
fn curl_resume(b: Backend) {
    if !have_tool("curl") {
        return;
    }
    let Some(fx) = Fixture::new(b) else { return };
    let whole_down = random_bytes(1_500_000, 10);
    let whole_up = random_bytes(1_100_000, 11);
    fx.put("/r/down.bin", &whole_down);
    fx.put("/r/up.bin", &whole_up[..700_001]);
    let srv = fx.start(&[]);
    let url = srv.url("test", "test");

    let local = fx.scratch().join("down.bin");
    fs::write(&local, &whole_down[..600_000]).unwrap();
    let out = curl(&[
        "-C",
        "-",
        "-o",
        local.to_str().unwrap(),
        &format!("{url}/r/down.bin"),
    ])
    .ok("curl -C - download");
    assert_same_bytes("resumed download", &fs::read(&local).unwrap(), &whole_down);
    out.assert_sent("REST 600000");

    let local = fx.scratch().join("up.bin");
    fs::write(&local, &whole_up).unwrap();
    let out = curl(&[
        "-C",
        "-",
        "-T",
        local.to_str().unwrap(),
        &format!("{url}/r/up.bin"),
    ])
    .ok("curl -C - upload");
    out.assert_sent("APPE up.bin");

    // Fetch it back through the server too.
    let back = fx.scratch().join("back.bin");
    curl(&["-o", back.to_str().unwrap(), &format!("{url}/r/up.bin")]).ok("curl get resumed upload");
    assert_same_bytes(
        "resumed upload, read back by FTP",
        &fs::read(&back).unwrap(),
        &whole_up,
    );
    srv.stop();
    fx.assert_clean();
    assert_same_bytes("resumed upload", &fx.read("/r/up.bin").unwrap(), &whole_up);
    assert_same_bytes(
        "resumed download source",
        &fx.read("/r/down.bin").unwrap(),
        &whole_down,
    );
}

/// The PASV path (`--ftp-pasv --disable-epsv`): list, download, upload.
fn curl_pasv(b: Backend) {
    if !have_tool("curl") {
        return;
    }
    let Some(fx) = Fixture::new(b) else { return };
    let data = random_bytes(500_000, 12);
    fx.put("/p/in.bin", &data);
    let srv = fx.start(&[]);
    let url = srv.url("test", "test");
    let pasv = ["--ftp-pasv", "--disable-epsv"];
    let out = curl(&[&pasv[..], &[&format!("{url}/p/")]].concat()).ok("curl PASV list");
    assert_eq!(
        parse_ls(&out.stdout()).keys().collect::<Vec<_>>(),
        ["in.bin"]
    );
    let local = fx.scratch().join("in.bin");
    curl(
        &[
            &pasv[..],
            &["-o", local.to_str().unwrap(), &format!("{url}/p/in.bin")],
        ]
        .concat(),
    )
    .ok("curl PASV get");
    assert_same_bytes("PASV download", &fs::read(&local).unwrap(), &data);
    let out = curl(
        &[
            &pasv[..],
            &["-T", local.to_str().unwrap(), &format!("{url}/p/out.bin")],
        ]
        .concat(),
    )
    .ok("curl PASV put");
    out.assert_sent("PASV");
    assert!(
        !out.sent("EPSV"),
        "curl used EPSV despite --disable-epsv:\n{}",
        out.stderr()
    );
    srv.stop();
    fx.assert_clean();
    assert_same_bytes("PASV upload", &fx.read("/p/out.bin").unwrap(), &data);
}

/// Active mode, `-P 127.0.0.1`: EPRT (curl's first choice), then PORT with
/// `--disable-eprt`; list, download and upload each way.
fn curl_active(b: Backend) {
    if !have_tool("curl") {
        return;
    }
    let Some(fx) = Fixture::new(b) else { return };
    let data = random_bytes(800_000, 13);
    fx.put("/a/in.bin", &data);
    let srv = fx.start(&[]);
    let url = srv.url("test", "test");
    for (n, extra) in [
        (1, &["-P", "127.0.0.1"][..]),
        (2, &["-P", "127.0.0.1", "--disable-eprt"][..]),
    ] {
        let out = curl(&[extra, &[&format!("{url}/a/")]].concat()).ok("curl active list");
        assert!(
            parse_ls(&out.stdout()).contains_key("in.bin"),
            "active LIST: {}",
            out.stdout()
        );
        let local = fx.scratch().join("in.bin");
        curl(
            &[
                extra,
                &["-o", local.to_str().unwrap(), &format!("{url}/a/in.bin")],
            ]
            .concat(),
        )
        .ok("curl active get");
        assert_same_bytes("active download", &fs::read(&local).unwrap(), &data);
        let out = curl(
            &[
                extra,
                &[
                    "-T",
                    local.to_str().unwrap(),
                    &format!("{url}/a/out{n}.bin"),
                ],
            ]
            .concat(),
        )
        .ok("curl active put");
        out.assert_sent(if n == 1 {
            "EPRT |1|127.0.0.1|"
        } else {
            "PORT 127,0,0,1,"
        });
        assert!(
            !out.sent("EPSV") && !out.sent("PASV"),
            "passive mode used in an active transfer:\n{}",
            out.stderr()
        );
    }
    srv.stop();
    fx.assert_clean();
    assert_same_bytes("EPRT upload", &fx.read("/a/out1.bin").unwrap(), &data);
    assert_same_bytes("PORT upload", &fx.read("/a/out2.bin").unwrap(), &data);
}

/// `-Q` quote commands: MKD, RNFR/RNTO (a file to a long name, a directory
/// with its contents to another parent), DELE, RMD; a failing quote is curl's
/// exit 21; anonymous may not change anything.
fn curl_quote(b: Backend) {
    if !have_tool("curl") {
        return;
    }
    let Some(fx) = Fixture::new(b) else { return };
    let a = random_bytes(5000, 14);
    let inner = random_bytes(9000, 15);
    fx.put("/q/a.txt", &a);
    fx.put("/q/c.txt", b"delete me");
    fx.put("/q/olddir/inner.bin", &inner);
    fx.mkdir("/q/gone");
    let srv = fx.start(&[]);
    let url = srv.url("test", "test");
    let out = curl(&[
        "-Q",
        "MKD /q/newdir",
        "-Q",
        "RNFR /q/a.txt",
        "-Q",
        "RNTO /q/Report 2026 (final).pdf",
        "-Q",
        "DELE /q/c.txt",
        "-Q",
        "RNFR /q/olddir",
        "-Q",
        "RNTO /q/newdir/moved",
        "-Q",
        "RMD /q/gone",
        &format!("{url}/q/"),
    ])
    .ok("curl -Q");
    let names: Vec<String> = parse_ls(&out.stdout()).into_keys().collect();
    assert_eq!(
        names,
        ["Report 2026 (final).pdf", "newdir"],
        "listing after the quote commands"
    );
    let out = curl(&[&format!("{url}/q/newdir/moved/")]).ok("list moved dir");
    assert_eq!(
        parse_ls(&out.stdout()).into_keys().collect::<Vec<_>>(),
        ["inner.bin"]
    );

    // A quote command the server refuses (550) makes curl fail with exit 21.
    let out = curl(&["-Q", "DELE /q/missing.txt", &format!("{url}/q/")]);
    assert_eq!(
        out.code(),
        Some(CURLE_QUOTE_ERROR),
        "DELE of a missing file: {}",
        out.stderr()
    );
    let out = curl(&["-Q", "RMD /q/newdir", &format!("{url}/q/")]);
    assert_eq!(
        out.code(),
        Some(CURLE_QUOTE_ERROR),
        "RMD of a non-empty directory: {}",
        out.stderr()
    );
    // Anonymous is read-only.
    for q in [
        "MKD /q/anon",
        "DELE /q/Report 2026 (final).pdf",
        "RMD /q/newdir/moved",
    ] {
        let out = curl(&["-Q", q, &format!("ftp://{}/q/", srv.addr)]);
        assert_eq!(
            out.code(),
            Some(CURLE_QUOTE_ERROR),
            "anonymous {q}: {}",
            out.stderr()
        );
    }
    let out = curl(&[
        "-Q",
        "RNFR /q/newdir",
        "-Q",
        "RNTO /q/anon",
        &format!("ftp://{}/q/", srv.addr),
    ]);
    assert_eq!(
        out.code(),
        Some(CURLE_QUOTE_ERROR),
        "anonymous rename: {}",
        out.stderr()
    );
    srv.stop();
    fx.assert_clean();
    assert_same_bytes(
        "renamed file",
        &fx.read("/q/Report 2026 (final).pdf").unwrap(),
        &a,
    );
    assert_same_bytes(
        "file in moved dir",
        &fx.read("/q/newdir/moved/inner.bin").unwrap(),
        &inner,
    );
    for gone in ["/q/a.txt", "/q/c.txt", "/q/olddir", "/q/gone", "/q/anon"] {
        assert!(!fx.exists(gone), "{gone} still exists");
    }
}

/// A missing file is curl's exit 78 (550 to SIZE, and to RETR when SIZE is
/// skipped); a missing directory on the way is exit 9 (550 to CWD).
fn curl_missing(b: Backend) {
    if !have_tool("curl") {
        return;
    }
    let Some(fx) = Fixture::new(b) else { return };
    fx.put("/here/file.txt", b"x");
    let srv = fx.start(&[]);
    let url = srv.url("test", "test");
    let out = curl(&["-o", "/dev/null", &format!("{url}/here/nope.txt")]);
    assert_eq!(
        out.code(),
        Some(CURLE_REMOTE_FILE_NOT_FOUND),
        "missing file: {}",
        out.stderr()
    );
    // --ignore-content-length: no SIZE, so it is RETR's 550.
    let out = curl(&[
        "--ignore-content-length",
        "-o",
        "/dev/null",
        &format!("{url}/here/nope2.txt"),
    ]);
    assert_eq!(
        out.code(),
        Some(CURLE_REMOTE_FILE_NOT_FOUND),
        "missing file (RETR): {}",
        out.stderr()
    );
    out.assert_sent("RETR nope2.txt");
    let out = curl(&["-o", "/dev/null", &format!("{url}/nodir/file.txt")]);
    assert_eq!(
        out.code(),
        Some(CURLE_REMOTE_ACCESS_DENIED),
        "missing directory: {}",
        out.stderr()
    );
    // A file where a directory is expected.
    let out = curl(&[&format!("{url}/here/file.txt/")]);
    assert_eq!(
        out.code(),
        Some(CURLE_REMOTE_ACCESS_DENIED),
        "CWD into a file: {}",
        out.stderr()
    );
    srv.stop();
}

on_every_backend!(
    curl_list,
    curl_download,
    curl_upload,
    curl_upload_then_crash,
    curl_resume,
    curl_pasv,
    curl_active,
    curl_quote,
    curl_missing
);

// ---------------------------------------------------------------------------
// lftp
// ---------------------------------------------------------------------------

/// Runs an lftp script against the server as user test, failing on any error.
fn lftp(srv: &common::Server, script: &str) -> common::Output {
    let full = format!(
        "set ftp:passive-mode on; set net:max-retries 1; set net:timeout 10; \
         set net:reconnect-interval-base 1; set net:persist-retries 0; set cmd:fail-exit yes; \
         open -u test,test ftp://{}; {script}",
        srv.addr
    );
    run(
        Command::new("lftp")
            .env("LC_ALL", "C.UTF-8")
            .arg("-c")
            .arg(&full),
        common::TOOL_TIMEOUT,
    )
    .ok(&format!("lftp -c {full:?}"))
}

/// `mirror` (download) of a seeded tree, compared byte for byte.
fn lftp_mirror_download(b: Backend) {
    if !have_tool("lftp") {
        return;
    }
    let Some(fx) = Fixture::new(b) else { return };
    let tree = mirror_tree();
    fx.put_tree("/src", &tree);
    let srv = fx.start(&[]);
    let dest = fx.scratch().join("down");
    lftp(&srv, &format!("mirror /src {}", dest.display()));
    assert_same_tree("lftp mirror", &common::read_tree(&dest), &tree);
    srv.stop();
    fx.assert_clean();
}

/// `mirror -R` (upload) of a local tree: the storage then holds the same tree
/// (read with mtools on FAT, after fsck), and mirroring it back down gives it again.
fn lftp_mirror_upload(b: Backend) {
    if !have_tool("lftp") {
        return;
    }
    let Some(fx) = Fixture::new(b) else { return };
    let tree = mirror_tree();
    let local = fx.scratch().join("up");
    common::write_tree(&local, &tree);
    fx.mkdir("/dst");
    let srv = fx.start(&[]);
    lftp(&srv, &format!("mirror -R {} /dst/tree", local.display()));
    let back = fx.scratch().join("back");
    lftp(&srv, &format!("mirror /dst/tree {}", back.display()));
    assert_same_tree(
        "lftp mirror -R then mirror",
        &common::read_tree(&back),
        &tree,
    );
    srv.stop();
    fx.assert_clean();
    assert_same_tree(
        "storage after lftp mirror -R",
        &fx.read_tree("/dst/tree"),
        &tree,
    );
}

on_every_backend!(lftp_mirror_download, lftp_mirror_upload);

// ---------------------------------------------------------------------------
// wget
// ---------------------------------------------------------------------------

/// Runs wget (non-verbose: one line per file it fetched) in `dir`, failing
/// on any error.
fn wget(dir: &std::path::Path, args: &[&str]) -> common::Output {
    fs::create_dir_all(dir).unwrap();
    run(
        Command::new("wget")
            .current_dir(dir)
            .env("LC_ALL", "C.UTF-8")
            .args(["-nv", "--tries=1", "--timeout=10"])
            .args(args),
        common::TOOL_TIMEOUT,
    )
    .ok(&format!("wget {args:?}"))
}

/// `wget -m` (recursive, timestamps from LIST) of a seeded tree: wget parses
/// our LIST lines to find files, directories and dates. The copy equals the
/// tree (with its empty directories); a second run fetches only the listings,
/// because LIST's sizes and dates say every file is unchanged.
fn wget_mirror(b: Backend) {
    if !have_tool("wget") {
        return;
    }
    let Some(fx) = Fixture::new(b) else { return };
    let tree = mirror_tree();
    fx.put_tree("/src", &tree);
    let srv = fx.start(&[]);
    let dest = fx.scratch().join("wget");
    let url = format!("{}/src/", srv.url("test", "test"));
    let args = [
        "-m",
        "-nH",
        "--cut-dirs=1",
        "--restrict-file-names=nocontrol",
        url.as_str(),
    ];
    let first = wget(&dest, &args);
    let files = tree.values().filter(|c| c.is_some()).count();
    let fetched = first.wget_fetched();
    assert_eq!(
        fetched.iter().filter(|p| !p.ends_with(".listing")).count(),
        files,
        "files fetched by the first wget -m: {fetched:?}"
    );
    let again = wget(&dest, &args).wget_fetched();
    assert!(
        again.iter().all(|p| p.ends_with(".listing")),
        "a second wget -m fetched files again: {again:?}"
    );
    let mut got = common::read_tree(&dest);
    let listings: Vec<String> = got
        .keys()
        .filter(|k| k.ends_with(".listing"))
        .cloned()
        .collect();
    for l in &listings {
        got.remove(l);
    }
    // One listing per directory, the top included.
    let dirs = tree.values().filter(|c| c.is_none()).count();
    assert_eq!(listings.len(), dirs + 1, "{listings:?}");
    assert_same_tree("wget -m", &got, &tree);
    srv.stop();
    fx.assert_clean();
}

/// `wget -c` continues a partial download with REST.
fn wget_continue(b: Backend) {
    if !have_tool("wget") {
        return;
    }
    let Some(fx) = Fixture::new(b) else { return };
    let whole = random_bytes(1_300_000, 30);
    fx.put("/c/part.bin", &whole);
    let srv = fx.start(&[]);
    let dir = fx.scratch().join("wget-c");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("part.bin"), &whole[..500_000]).unwrap();
    let url = format!("{}/c/part.bin", srv.url("test", "test"));
    wget(&dir, &["-c", url.as_str()]);
    assert_same_bytes("wget -c", &fs::read(dir.join("part.bin")).unwrap(), &whole);
    srv.stop();
    let log = fs::read_to_string(fx.log_path()).unwrap();
    assert!(
        log.contains("REST 500000"),
        "no REST 500000 in the log:\n{log}"
    );
    fx.assert_clean();
}

on_every_backend!(wget_mirror, wget_continue);

// ---------------------------------------------------------------------------
// tnftp (the BSD command-line client, Debian's `ftp`)
// ---------------------------------------------------------------------------

/// Feeds `script` to `tnftp -n -i -v` (after `user test test` and `binary`),
/// passive (`-p`) or active (`-A`); its output, replies included.
fn tnftp(fx: &Fixture, srv: &common::Server, mode: &str, script: &str) -> common::Output {
    let file = fx.scratch().join(format!("tnftp{mode}.txt"));
    fs::write(&file, format!("user test test\nbinary\n{script}quit\n")).unwrap();
    let out = run(
        Command::new("sh")
            .args(["-c", "exec tnftp -n -i -v \"$1\" \"$2\" \"$3\" < \"$4\""])
            .arg("sh")
            .arg(mode)
            .arg(srv.addr.ip().to_string())
            .arg(srv.port().to_string())
            .arg(&file),
        common::TOOL_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "tnftp {mode}: exit {:?}\n{}{}",
        out.code(),
        out.stdout(),
        out.stderr()
    );
    out
}

/// tnftp, passive (EPSV) and active (EPRT): get, put, mput, reget (REST),
/// rename to a name with spaces, size, modtime (MDTM), mkdir/rmdir, delete,
/// and a refused command; the files are checked on the storage.
fn tnftp_session(b: Backend) {
    if !have_tool("tnftp") {
        return;
    }
    let Some(fx) = Fixture::new(b) else { return };
    let down = random_bytes(400_000, 40);
    fx.put("/t/down.bin", &down);
    let srv = fx.start(&[]);
    let local = fx.scratch();
    fs::create_dir_all(&local).unwrap();
    let up = random_bytes(250_000, 41);
    fs::write(local.join("up.bin"), &up).unwrap();
    fs::write(local.join("m1.txt"), b"one\n").unwrap();
    fs::write(local.join("m2.txt"), b"two\n").unwrap();
    fs::write(local.join("partial.bin"), &down[..150_000]).unwrap();
    for (mode, dir) in [("-p", "pasv"), ("-A", "active")] {
        let l = local.display();
        let out = tnftp(
            &fx,
            &srv,
            mode,
            &format!(
                "cd /t\n\
                 get down.bin {l}/got-{dir}.bin\n\
                 reget down.bin {l}/partial.bin\n\
                 mkdir {dir}\n\
                 cd {dir}\n\
                 put {l}/up.bin up.bin\n\
                 rename up.bin \"final name.bin\"\n\
                 size \"final name.bin\"\n\
                 modtime \"final name.bin\"\n\
                 lcd {l}\n\
                 mput m1.txt m2.txt\n\
                 delete m2.txt\n\
                 mkdir gone\n\
                 rmdir gone\n\
                 delete nothere.txt\n\
                 ls\n"
            ),
        );
        let text = out.stdout();
        for want in [
            "350 Restarting at 150000.",
            "250 Rename successful.",
            "final name.bin\t250000",
            "550 No such file or directory.",
            "221 Goodbye.",
        ] {
            assert!(text.contains(want), "tnftp {mode}: no {want:?} in\n{text}");
        }
        if mode == "-A" {
            assert!(text.contains("200 EPRT command successful."), "{text}");
        } else {
            assert!(
                text.contains("229 Entering Extended Passive Mode"),
                "{text}"
            );
        }
        assert_same_bytes(
            &format!("tnftp {mode} get"),
            &fs::read(local.join(format!("got-{dir}.bin"))).unwrap(),
            &down,
        );
        assert_same_bytes(
            &format!("tnftp {mode} reget"),
            &fs::read(local.join("partial.bin")).unwrap(),
            &down,
        );
        // The next round resumes from the same point again.
        fs::write(local.join("partial.bin"), &down[..150_000]).unwrap();
    }
    srv.stop();
    fx.assert_clean();
    let mut want = common::Tree::new();
    want.insert("down.bin".into(), Some(down));
    for dir in ["pasv", "active"] {
        want.insert(dir.into(), None);
        want.insert(format!("{dir}/final name.bin"), Some(up.clone()));
        want.insert(format!("{dir}/m1.txt"), Some(b"one\n".to_vec()));
    }
    assert_same_tree("/t after tnftp", &fx.read_tree("/t"), &want);
}

on_every_backend!(tnftp_session);

// ---------------------------------------------------------------------------
// Python's ftplib
// ---------------------------------------------------------------------------

/// Runs ftplib_all.py (every command of issue 2, each reply checked) against
/// the server, then checks on the storage what the script left in /ftplib.
fn ftplib_all(b: Backend) {
    if !have_tool("python3") {
        return;
    }
    let Some(fx) = Fixture::new(b) else { return };
    let srv = fx.start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ftplib_all.py");
    let out = run(
        Command::new("python3")
            .arg(script)
            .arg(srv.addr.ip().to_string())
            .arg(srv.port().to_string())
            .arg(if b.is_fat() { "fat" } else { "dir" }),
        Duration::from_secs(300),
    );
    print!("{}", out.stdout());
    eprint!("{}", out.stderr());
    assert!(
        out.status.success(),
        "ftplib_all.py failed (exit {:?}):\n{}\n{}",
        out.code(),
        out.stdout()
            .lines()
            .filter(|l| !l.starts_with("ok "))
            .collect::<Vec<_>>()
            .join("\n"),
        out.stderr()
    );
    srv.stop();
    fx.assert_clean();
    assert_same_tree(
        "/ftplib after ftplib_all.py",
        &fx.read_tree("/ftplib"),
        &harness::testkit::ftplib_all_tree(),
    );
}

on_every_backend!(ftplib_all);

// ---------------------------------------------------------------------------
// suppaftp
// ---------------------------------------------------------------------------

use suppaftp::types::FileType;
use suppaftp::{FtpError, FtpStream, Mode};

/// A suppaftp session as user `user`, every socket with a read timeout.
fn sup_connect(srv: &common::Server) -> Result<FtpStream, FtpError> {
    let ftp = FtpStream::connect_timeout(srv.addr, Duration::from_secs(10))?;
    ftp.get_ref()
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    Ok(ftp.passive_stream_builder(|addr| {
        let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .map_err(FtpError::ConnectionError)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(FtpError::ConnectionError)?;
        s.set_write_timeout(Some(Duration::from_secs(60)))
            .map_err(FtpError::ConnectionError)?;
        Ok(s)
    }))
}

fn sup_login(srv: &common::Server) -> FtpStream {
    let mut ftp = sup_connect(srv).expect("connect");
    ftp.login("test", "test").expect("login");
    ftp
}

/// The reply code of a suppaftp error that carries a server reply.
fn reply_code(e: &FtpError) -> Option<u32> {
    match e {
        FtpError::UnexpectedResponse(r) => Some(r.status.code()),
        _ => None,
    }
}

/// login, pwd, mkdir, cwd, put (a few MB), get and compare, rename, size,
/// mdtm, list/nlst/mlsd, rm, rmdir, quit; EPSV and active mode transfers too.
fn suppaftp_session(b: Backend) {
    let Some(fx) = Fixture::new(b) else { return };
    let srv = fx.start(&[]);
    let data = random_bytes(3 * 1024 * 1024 + 17, 30);
    let mut ftp = sup_login(&srv);
    assert_eq!(ftp.pwd().unwrap(), "/");
    ftp.mkdir("sup dir").unwrap();
    ftp.cwd("sup dir").unwrap();
    assert_eq!(ftp.pwd().unwrap(), "/sup dir");
    ftp.transfer_type(FileType::Binary).unwrap();
    let sent = ftp
        .put_file("payload.bin", &mut std::io::Cursor::new(&data))
        .unwrap();
    assert_eq!(sent, data.len() as u64);
    let got = ftp.retr_as_buffer("payload.bin").unwrap().into_inner();
    assert_same_bytes("suppaftp get", &got, &data);
    ftp.rename("payload.bin", "firmware-v1.2.3.bin").unwrap();
    assert_eq!(ftp.size("firmware-v1.2.3.bin").unwrap(), data.len());
    let err = ftp.size("payload.bin").unwrap_err();
    assert_eq!(reply_code(&err), Some(550), "SIZE of the old name: {err}");
    let mdtm = ftp
        .mdtm("firmware-v1.2.3.bin")
        .unwrap()
        .and_utc()
        .timestamp();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (mdtm - now).abs() < 86_400,
        "MDTM {mdtm} is not today (now {now}, UTC)"
    );

    // The same bytes over EPSV and in active mode (PORT).
    ftp.set_mode(Mode::ExtendedPassive);
    assert_same_bytes(
        "suppaftp get (EPSV)",
        &ftp.retr_as_buffer("firmware-v1.2.3.bin")
            .unwrap()
            .into_inner(),
        &data,
    );
    ftp.put_file("small.txt", &mut &b"small\n"[..]).unwrap();
    ftp.set_mode(Mode::Passive);
    let mut active = sup_login(&srv).active_mode(Duration::from_secs(30));
    active.transfer_type(FileType::Binary).unwrap();
    assert_same_bytes(
        "suppaftp get (active)",
        &active
            .retr_as_buffer("/sup dir/firmware-v1.2.3.bin")
            .unwrap()
            .into_inner(),
        &data,
    );
    active
        .put_file(
            "/sup dir/active.bin",
            &mut std::io::Cursor::new(&data[..100_000]),
        )
        .unwrap();
    active.quit().unwrap();

    let list = ftp.list(None).unwrap();
    assert_eq!(list.len(), 3, "LIST: {list:?}");
    assert!(
        list.iter().any(
            |l| l.ends_with(" firmware-v1.2.3.bin") && l.contains(&format!(" {} ", data.len()))
        ),
        "LIST: {list:?}"
    );
    // suppaftp parses the Unix form too.
    let parsed: Vec<suppaftp::list::File> = list
        .iter()
        .map(|l| {
            l.parse()
                .unwrap_or_else(|e| panic!("suppaftp cannot parse {l:?}: {e:?}"))
        })
        .collect();
    let fw = parsed
        .iter()
        .find(|f| f.name() == "firmware-v1.2.3.bin")
        .expect("in LIST");
    assert!(fw.is_file() && fw.size() == data.len(), "{fw:?}");
    let mut names = ftp.nlst(None).unwrap();
    names.sort();
    assert_eq!(names, ["active.bin", "firmware-v1.2.3.bin", "small.txt"]);
    let mlsd = ftp.mlsd(None).unwrap();
    let facts = mlsd
        .iter()
        .find(|l| l.ends_with(" small.txt"))
        .unwrap_or_else(|| panic!("MLSD: {mlsd:?}"));
    let f =
        suppaftp::list::File::from_mlsx_line(facts).unwrap_or_else(|e| panic!("{facts:?}: {e:?}"));
    assert!(f.is_file() && f.size() == 6, "MLSD {facts:?} -> {f:?}");
    let mlst = ftp.mlst(Some("small.txt")).unwrap();
    assert!(mlst.contains("size=6;"), "MLST: {mlst:?}");

    // rmdir of a non-empty directory is refused, then it empties and goes.
    ftp.cdup().unwrap();
    assert_eq!(reply_code(&ftp.rmdir("sup dir").unwrap_err()), Some(550));
    for n in names {
        ftp.rm(format!("sup dir/{n}")).unwrap();
    }
    ftp.rmdir("sup dir").unwrap();
    assert_eq!(ftp.nlst(None).unwrap(), Vec::<String>::new());
    assert_eq!(reply_code(&ftp.rm("nothing").unwrap_err()), Some(550));
    ftp.quit().unwrap();
    srv.stop();
    fx.assert_clean();
    assert!(!fx.exists("/sup dir"), "/sup dir still in the storage");
}

/// Four clients at once (`--max-sessions 4`): two RETR and two STOR of 8 MB,
/// every byte right; a fifth client meanwhile gets 421.
fn suppaftp_four_at_once(b: Backend) {
    use std::sync::mpsc;
    const SIZE: usize = 8 * 1024 * 1024;
    let Some(fx) = Fixture::new(b) else { return };
    fx.put("/down0.bin", &random_bytes(SIZE, 40));
    fx.put("/down1.bin", &random_bytes(SIZE, 41));
    let srv = std::sync::Arc::new(fx.start(&["--max-sessions", "4"]));
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let mut go = Vec::new();
    let mut workers = Vec::new();
    for i in 0..4u64 {
        let (go_tx, go_rx) = mpsc::channel::<()>();
        go.push(go_tx);
        let ready_tx = ready_tx.clone();
        let srv = std::sync::Arc::clone(&srv);
        workers.push(std::thread::spawn(move || {
            let mut ftp = sup_login(&srv);
            ftp.transfer_type(FileType::Binary).unwrap();
            ready_tx.send(()).unwrap();
            go_rx.recv_timeout(Duration::from_secs(60)).expect("no go");
            if i < 2 {
                let got = ftp
                    .retr_as_buffer(&format!("/down{i}.bin"))
                    .unwrap()
                    .into_inner();
                assert_same_bytes(
                    &format!("concurrent RETR {i}"),
                    &got,
                    &random_bytes(SIZE, 40 + i),
                );
            } else {
                let data = random_bytes(SIZE, 50 + i);
                let n = ftp
                    .put_file(format!("/up{i}.bin"), &mut std::io::Cursor::new(&data))
                    .unwrap();
                assert_eq!(n, SIZE as u64);
                assert_eq!(ftp.size(format!("/up{i}.bin")).unwrap(), SIZE);
            }
            ftp.quit().unwrap();
        }));
    }
    drop(ready_tx);
    for _ in 0..4 {
        ready_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a client did not log in");
    }
    // All four sessions are up: the fifth is refused with 421, not left hanging.
    match sup_connect(&srv) {
        Ok(_) => panic!("a fifth session was accepted with --max-sessions 4"),
        Err(e) => assert_eq!(reply_code(&e), Some(421), "fifth session: {e}"),
    }
    let mut raw = common::Control::connect(srv.addr);
    let (code, text) = raw.reply().expect("a reply to the fifth connection");
    assert_eq!(code, 421, "fifth connection: {text}");
    assert!(
        raw.closed(),
        "the server did not close the refused connection"
    );
    for g in &go {
        g.send(()).unwrap();
    }
    for w in workers {
        if let Err(e) = w.join() {
            std::panic::resume_unwind(e);
        }
    }
    // The refused connections took no slot: a new session works now.
    let mut ftp = sup_login(&srv);
    ftp.noop().unwrap();
    ftp.quit().unwrap();
    let srv = std::sync::Arc::into_inner(srv).expect("threads are done");
    srv.stop();
    fx.assert_clean();
    for i in 2..4u64 {
        let p = format!("/up{i}.bin");
        assert_same_bytes(
            &p,
            &fx.read(&p).expect("uploaded"),
            &random_bytes(SIZE, 50 + i),
        );
    }
}

on_every_backend!(suppaftp_session, suppaftp_four_at_once);

/// The test fixture itself: what is seeded without the server reads back the
/// same (mtools on both FAT variants), and a fresh image is clean.
fn fixture_roundtrip(b: Backend) {
    let Some(fx) = Fixture::new(b) else { return };
    let tree = mirror_tree();
    fx.put_tree("/t", &tree);
    assert_same_tree("seeded tree", &fx.read_tree("/t"), &tree);
    assert!(fx.exists("/t/nested/a/x y") && !fx.exists("/t/nope"));
    assert_eq!(fx.read("/t/nope"), None);
    fx.assert_clean();
}

mod fixture_roundtrip {
    use super::*;
    #[test]
    fn dir() {
        fixture_roundtrip(Backend::Dir)
    }
    #[test]
    fn fat() {
        fixture_roundtrip(Backend::Fat)
    }
    #[test]
    fn fat_mbr() {
        fixture_roundtrip(Backend::FatMbr)
    }
}
