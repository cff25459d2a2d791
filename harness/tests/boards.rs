//! Real clients nobody here wrote against the boards: the virtual board
//! (`sim`: ftpd-app on smoltcp over TAP) and the firmware under QEMU
//! (`qemu`: the system's QEMU, `qemu-10`: the second one), each on a TAP
//! device in a network namespace the harness creates and removes.
//!
//! For every board: curl (listings, downloads, uploads, active mode, and
//! IPv6 on the virtual board), `lftp mirror` both ways (nested directories,
//! long and UTF-8 names, a 5 MB file, compared byte for byte), `wget -m`
//! (the same tree, found through the board's LIST lines), Python's
//! ftplib (sim/tests/ftplib_all.py, all of it, through ftplib_board.py), four
//! sessions transferring at once (two RETR, two STOR, every checksum right,
//! a fifth client refused with 421). After every test the board is stopped
//! and its SD image is checked by tools nobody here wrote: `fsck.fat -n`
//! clean, and `mcopy` reads back what was uploaded. Files a test needs on
//! the card are put there with mtools before the board starts.
//!
//! Sizes: on the virtual board the concurrent transfers are 8 MiB files;
//! on QEMU 2 MiB (QEMU 10.0.2 stores about 250 kB/s, 7.2 about 650 kB/s:
//! 8 MiB would take minutes) and ABOR interrupts a 2 MB file instead of
//! 12 MiB.
//!
//! Needs root (namespaces, TAP), curl, lftp, wget, python3, dosfstools, mtools,
//! and qemu-system-arm for the QEMU boards: without them the tests fail
//! under `CI=true` and print a loud notice otherwise. One board runs at a
//! time (two cores are shared); every QEMU and namespace is gone when a test
//! ends, however it ends.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::target::{self, Kind, Target};
use harness::testkit::*;

fn is_qemu(t: &Target) -> bool {
    matches!(t.kind, Kind::Qemu(_))
}

const URL: &str = "ftp://test:test@192.0.2.2";

fn curl(b: &Board, args: &[&str]) -> Output {
    run(
        b.cmd("curl")
            .args(["-sSv", "--max-time", "120", "--connect-timeout", "10"])
            .args(args),
        TOOL_TIMEOUT,
    )
}

/// Names of an `ls -l` listing.
fn ls_names(listing: &str) -> Vec<String> {
    let mut v: Vec<String> = listing
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            // perms links owner group size month day time|year name
            let mut rest = l;
            for _ in 0..8 {
                let t = rest.trim_start_matches(' ');
                rest = &t[t
                    .find(' ')
                    .unwrap_or_else(|| panic!("short LIST line {l:?}"))..];
            }
            rest[1..].to_string()
        })
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------

/// Listings, downloads and uploads with curl, passive (EPSV, PASV) and
/// active (EPRT, PORT), as `test` and as anonymous; IPv6 on the virtual
/// board. The card is read back after the board stops.
fn curl_transfers(t: Target) {
    let card = Card::new();
    let down = bytes(300_000, 1);
    card.put_tree(
        "dir",
        &Tree::from([
            ("alpha.txt".into(), Some(b"alpha\n".to_vec())),
            ("Report 2026 (final).pdf".into(), Some(bytes(3000, 2))),
            ("sub".into(), None),
            ("sub/inner.bin".into(), Some(b"x".to_vec())),
            ("empty".into(), None),
        ]),
    );
    card.put("down.bin", &down);
    let b = Board::start(t, &card);
    let local = card.scratch();

    // LIST (EPSV) and NLST, for test and for anonymous.
    for user in [URL.to_string(), "ftp://192.0.2.2".to_string()] {
        let out = curl(&b, &[&format!("{user}/dir/")]).ok("curl LIST");
        assert!(out.sent("EPSV"), "curl did not use EPSV:\n{}", out.stderr());
        assert_eq!(
            ls_names(&out.stdout()),
            ["Report 2026 (final).pdf", "alpha.txt", "empty", "sub"],
            "{}",
            out.stdout()
        );
        let out = curl(&b, &["--list-only", &format!("{user}/dir/")]).ok("curl NLST");
        let mut names: Vec<String> = out.stdout().lines().map(String::from).collect();
        names.sort();
        assert_eq!(
            names,
            ["Report 2026 (final).pdf", "alpha.txt", "empty", "sub"]
        );
    }
    // Downloads: EPSV, PASV, EPRT, PORT.
    let modes: [(&str, &[&str]); 4] = [
        ("EPSV", &[]),
        ("PASV", &["--disable-epsv"]),
        ("EPRT", &["--ftp-port", "192.0.2.1"]),
        ("PORT", &["--ftp-port", "192.0.2.1", "--disable-eprt"]),
    ];
    for (mode, args) in modes {
        let file = local.join(format!("down-{mode}.bin"));
        let out = curl(
            &b,
            &[
                args,
                &["-o", file.to_str().unwrap(), &format!("{URL}/down.bin")],
            ]
            .concat(),
        )
        .ok(&format!("curl RETR over {mode}"));
        assert!(
            out.sent(mode),
            "curl did not send {mode}:\n{}",
            out.stderr()
        );
        same_bytes(
            &format!("RETR over {mode}"),
            &std::fs::read(&file).unwrap(),
            &down,
        );
    }
    // Uploads: a new directory, a name with spaces, passive and active.
    let up = bytes(200_000, 3);
    let src = local.join("up.bin");
    std::fs::write(&src, &up).unwrap();
    curl(
        &b,
        &[
            "--ftp-create-dirs",
            "-T",
            src.to_str().unwrap(),
            &format!("{URL}/new%20dir/up%20load.bin"),
        ],
    )
    .ok("curl STOR");
    curl(
        &b,
        &[
            "--ftp-port",
            "192.0.2.1",
            "-T",
            src.to_str().unwrap(),
            &format!("{URL}/new%20dir/active.bin"),
        ],
    )
    .ok("curl STOR over EPRT");
    // Anonymous may read, not write.
    let out = curl(
        &b,
        &["-T", src.to_str().unwrap(), "ftp://192.0.2.2/anon.bin"],
    );
    assert_eq!(
        out.status.code(),
        Some(25),
        "anonymous upload: curl exit (25 = upload refused)\n{}",
        out.stderr()
    );
    // IPv6: EPSV and EPRT |2| (the QEMU board's stack is IPv4 only).
    if t.name == "sim" {
        let file = local.join("down-v6.bin");
        let out = curl(
            &b,
            &[
                "-g",
                "-o",
                file.to_str().unwrap(),
                "ftp://test:test@[2001:db8::2]/down.bin",
            ],
        )
        .ok("curl RETR over IPv6");
        assert!(out.sent("EPSV"), "{}", out.stderr());
        same_bytes(
            "RETR over IPv6 (EPSV)",
            &std::fs::read(&file).unwrap(),
            &down,
        );
        let out = curl(
            &b,
            &[
                "-g",
                "--ftp-port",
                "2001:db8::1",
                "-o",
                file.to_str().unwrap(),
                "ftp://test:test@[2001:db8::2]/down.bin",
            ],
        )
        .ok("curl RETR over IPv6 EPRT");
        assert!(
            out.stderr().contains("> EPRT |2|2001:db8::1|"),
            "{}",
            out.stderr()
        );
        same_bytes(
            "RETR over IPv6 (EPRT)",
            &std::fs::read(&file).unwrap(),
            &down,
        );
        curl(
            &b,
            &[
                "-g",
                "-T",
                src.to_str().unwrap(),
                "ftp://test:test@[2001:db8::2]/new%20dir/v6.bin",
            ],
        )
        .ok("curl STOR over IPv6");
    }
    let log = b.stop();
    if t.name == "sim" {
        assert!(
            log.contains("[1] connected from 192.0.2.1:"),
            "the board's log has no session events:\n{log}"
        );
    }
    card.assert_clean();
    let mut want = Tree::from([
        ("up load.bin".into(), Some(up.clone())),
        ("active.bin".into(), Some(up.clone())),
    ]);
    if t.name == "sim" {
        want.insert("v6.bin".into(), Some(up.clone()));
    }
    same_tree("/new dir on the card", &card.read_tree("new dir"), &want);
    assert_eq!(
        card.read("/anon.bin"),
        None,
        "anonymous upload reached the card"
    );
}

// ---------------------------------------------------------------------------
// lftp mirror
// ---------------------------------------------------------------------------

fn lftp(b: &Board, script: &str) -> Output {
    let full = format!(
        "set ftp:passive-mode on; set net:max-retries 1; set net:timeout 20; set net:reconnect-interval-base 1; \
         set net:persist-retries 0; set cmd:fail-exit yes; open -u test,test ftp://192.0.2.2; {script}"
    );
    run(
        b.cmd("lftp").env("LC_ALL", "C.UTF-8").arg("-c").arg(&full),
        TOOL_TIMEOUT,
    )
    .ok(&format!("lftp -c {full:?}"))
}

/// `mirror` of a tree put on the card, compared byte for byte; `mirror -R`
/// of a local tree, read back from the card with mcopy after fsck.
///
/// The download takes about 45 s for the 5 MB file on every board: see
/// the note on lftp and delayed ACKs in the report of this test's author
/// (the board's 2 KB data TX buffer holds one full segment and 588 bytes;
/// lftp does not drain its socket at once, so Linux delays every ACK).
fn lftp_mirror(t: Target) {
    let card = Card::new();
    let tree = mirror_tree();
    card.put_tree("src", &tree);
    let b = Board::start(t, &card);
    let down = card.scratch().join("down");
    let t0 = Instant::now();
    lftp(&b, &format!("mirror /src {}", down.display()));
    let t_down = t0.elapsed();
    same_tree("lftp mirror (download)", &read_tree(&down), &tree);
    let up = card.scratch().join("up");
    write_tree(&up, &tree);
    let t0 = Instant::now();
    lftp(
        &b,
        &format!("mkdir /dst; mirror -R {} /dst/tree", up.display()),
    );
    eprintln!(
        "{}: lftp mirror {:.1} s, mirror -R {:.1} s",
        t.name,
        t_down.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    b.stop();
    card.assert_clean();
    same_tree(
        "/dst/tree on the card after lftp mirror -R",
        &card.read_tree("dst/tree"),
        &tree,
    );
    same_tree("/src on the card, untouched", &card.read_tree("src"), &tree);
}

// ---------------------------------------------------------------------------
// wget -m
// ---------------------------------------------------------------------------

/// `wget -m` of the tree put on the card: wget walks it by parsing the
/// board's LIST lines (names, sizes, dates). The copy equals the tree; a
/// second run fetches only the listings, LIST's dates and sizes saying no
/// file changed.
fn wget_mirror(t: Target) {
    let card = Card::new();
    let tree = mirror_tree();
    card.put_tree("src", &tree);
    let b = Board::start(t, &card);
    let dest = card.scratch().join("wget");
    std::fs::create_dir_all(&dest).unwrap();
    let wget = || {
        run(
            b.cmd("wget")
                .current_dir(&dest)
                .env("LC_ALL", "C.UTF-8")
                .args(["-nv", "--tries=1", "--timeout=20", "-m", "-nH"])
                .args(["--cut-dirs=1", "--restrict-file-names=nocontrol"])
                .arg(format!("{URL}/src/")),
            TOOL_TIMEOUT,
        )
        .ok("wget -m")
        .wget_fetched()
    };
    let t0 = Instant::now();
    let first = wget();
    let took = t0.elapsed();
    let files = tree.values().filter(|c| c.is_some()).count();
    assert_eq!(
        first.iter().filter(|p| !p.ends_with(".listing")).count(),
        files,
        "files the first wget -m fetched: {first:?}"
    );
    let again = wget();
    assert!(
        again.iter().all(|p| p.ends_with(".listing")),
        "a second wget -m fetched files again: {again:?}"
    );
    eprintln!("{}: wget -m {:.1} s", t.name, took.as_secs_f64());
    let mut got = read_tree(&dest);
    got.retain(|k, _| !k.ends_with(".listing"));
    same_tree("wget -m", &got, &tree);
    b.stop();
    card.assert_clean();
}

// ---------------------------------------------------------------------------
// Python's ftplib
// ---------------------------------------------------------------------------

/// sim/tests/ftplib_all.py, every check of it, against the board (through
/// ftplib_board.py, which adapts its three host-only assumptions), then
/// what it left in /ftplib/keep read back from the card.
fn ftplib_all(t: Target) {
    let card = Card::new();
    let b = Board::start(t, &card);
    let root = target::workspace_root();
    let big = if is_qemu(&t) {
        2_000_000
    } else {
        12 * 1024 * 1024
    };
    let out = run(
        b.cmd("python3")
            .arg(root.join("harness/tests/ftplib_board.py"))
            .arg(root.join("sim/tests/ftplib_all.py"))
            .args(["192.0.2.2", "21", &big.to_string()]),
        TOOL_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "ftplib_all.py on {} failed ({}):\n{}\n{}\n--- board log\n{}",
        t.name,
        out.status,
        out.stdout()
            .lines()
            .filter(|l| !l.starts_with("ok "))
            .map(|l| if l.chars().count() > 300 {
                format!("{}...", l.chars().take(300).collect::<String>())
            } else {
                l.to_string()
            })
            .collect::<Vec<_>>()
            .join("\n"),
        out.stderr(),
        b.log()
    );
    let last = out
        .stdout()
        .lines()
        .rev()
        .find(|l| l.contains("checks"))
        .unwrap_or_default()
        .to_string();
    eprintln!("{} on {}", last, t.name);
    b.stop();
    card.assert_clean();
    same_tree(
        "/ftplib on the card after ftplib_all.py",
        &card.read_tree("ftplib"),
        &harness::testkit::ftplib_all_tree(),
    );
}

// ---------------------------------------------------------------------------
// Four sessions at once
// ---------------------------------------------------------------------------

/// Four clients logged in at once (the boards' limit): a fifth is refused
/// with 421; then two RETR and two STOR run at the same time, every byte
/// right, and the uploads are on the card afterwards.
fn four_at_once(t: Target) {
    use std::sync::mpsc;
    use suppaftp::FtpStream;
    use suppaftp::types::FileType;

    let size = if is_qemu(&t) { 2 << 20 } else { 8 << 20 };
    let card = Card::new();
    card.put("down0.bin", &bytes(size, 40));
    card.put("down1.bin", &bytes(size, 41));
    let b = Board::start(t, &card);
    let addr = harness::netns::board_addr(false);
    let login = move || -> FtpStream {
        let mut ftp = FtpStream::connect_timeout(addr, Duration::from_secs(10)).expect("connect");
        ftp.get_ref()
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        ftp.login("test", "test").expect("login");
        ftp.transfer_type(FileType::Binary).unwrap();
        ftp
    };
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let mut go = Vec::new();
    let mut workers = Vec::new();
    for i in 0..4u64 {
        let (go_tx, go_rx) = mpsc::channel::<()>();
        go.push(go_tx);
        let ready_tx = ready_tx.clone();
        let ns = b.netns.clone();
        workers.push(std::thread::spawn(move || {
            harness::netns::enter(&ns).unwrap();
            let mut ftp = login();
            ready_tx.send(()).unwrap();
            go_rx.recv_timeout(Duration::from_secs(120)).expect("no go");
            let t0 = Instant::now();
            if i < 2 {
                let got = ftp
                    .retr_as_buffer(&format!("/down{i}.bin"))
                    .expect("RETR")
                    .into_inner();
                same_bytes(&format!("concurrent RETR {i}"), &got, &bytes(size, 40 + i));
            } else {
                let data = bytes(size, 50 + i);
                let n = ftp
                    .put_file(format!("/up{i}.bin"), &mut std::io::Cursor::new(&data))
                    .expect("STOR");
                assert_eq!(n, size as u64);
                assert_eq!(ftp.size(format!("/up{i}.bin")).expect("SIZE"), size);
            }
            ftp.quit().unwrap();
            t0.elapsed()
        }));
    }
    drop(ready_tx);
    for _ in 0..4 {
        ready_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a client did not log in");
    }
    // All four are logged in: a fifth connection hears 421 and is closed.
    let ns = b.netns.clone();
    let fifth = harness::netns::run_in_blocking(&ns, move || {
        let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .expect("fifth connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let mut rest = Vec::new();
        let closed = r.read_to_end(&mut rest).is_ok();
        (line, closed)
    })
    .unwrap();
    assert!(
        fifth.0.starts_with("421 "),
        "fifth connection: {:?}",
        fifth.0
    );
    assert!(fifth.1, "the board did not close the refused connection");
    let t0 = Instant::now();
    for g in &go {
        g.send(()).unwrap();
    }
    let mut times = Vec::new();
    for w in workers {
        match w.join() {
            Ok(d) => times.push(d),
            Err(e) => std::panic::resume_unwind(e),
        }
    }
    eprintln!(
        "{}: 2 RETR + 2 STOR of {} MiB at once in {:.1} s (each: {})",
        t.name,
        size >> 20,
        t0.elapsed().as_secs_f64(),
        times
            .iter()
            .map(|d| format!("{:.1} s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // The refused connection took no slot.
    let ok = harness::netns::run_in_blocking(&ns, move || {
        let mut ftp = login();
        ftp.noop().is_ok() && ftp.quit().is_ok()
    })
    .unwrap();
    assert!(ok, "a new session after the four ended");
    b.stop();
    card.assert_clean();
    for i in 2..4u64 {
        same_bytes(
            &format!("/up{i}.bin on the card"),
            &card
                .read(&format!("/up{i}.bin"))
                .expect("uploaded file on the card"),
            &bytes(size, 50 + i),
        );
    }
}

harness::on_every_board! {
    curl_transfers: ["curl"],
    lftp_mirror: ["lftp"],
    wget_mirror: ["wget"],
    ftplib_all: ["python3"],
    four_at_once: [],
}

// ---------------------------------------------------------------------------
// `harness serve` for the boards
// ---------------------------------------------------------------------------

/// `harness serve --target T --image IMG`: the READY line names the
/// namespace, a client in it is served, the board's log reaches the
/// terminal and a file, and Ctrl-C (or SIGTERM) removes the namespace.
fn serve(t: Target) {
    let card = Card::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["serve", "--target", t.name, "--image"])
        .arg(card.image())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut s);
        s
    });
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let result = std::panic::catch_unwind(|| {
        let re =
            regex::Regex::new(r"^READY ftp://192\.0\.2\.2:21 netns (ftpd-(sim|qemu)-\d+-\d+)\n$")
                .unwrap();
        let ns = re
            .captures(&line)
            .unwrap_or_else(|| panic!("READY line: {line:?}"))[1]
            .to_string();
        assert!(harness::netns::exists(&ns));
        let src = card.scratch().join("hello.txt");
        std::fs::write(&src, "hello\n").unwrap();
        let out = run(
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &ns,
                    "curl",
                    "-sS",
                    "--max-time",
                    "30",
                    "-T",
                ])
                .arg(&src)
                .arg(format!("{URL}/hello.txt")),
            TOOL_TIMEOUT,
        );
        assert!(
            out.status.success(),
            "curl in namespace {ns}: {}",
            out.stderr()
        );
        ns
    });
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let err = err.join().unwrap();
    let ns = result.unwrap_or_else(|e| {
        eprintln!("harness serve stderr:\n{err}");
        std::panic::resume_unwind(e)
    });
    assert!(status.success(), "harness serve exited {status}:\n{err}");
    assert!(
        !harness::netns::exists(&ns),
        "namespace {ns} left behind after Ctrl-C"
    );
    let log_line = err
        .lines()
        .find(|l| l.starts_with(&format!("harness: {} log: ", t.name)))
        .unwrap_or_else(|| panic!("no log file named:\n{err}"));
    let log_file = PathBuf::from(log_line.rsplit(": ").next().unwrap());
    let log = std::fs::read_to_string(&log_file).unwrap();
    if t.name == "sim" {
        // One line per session event, on the terminal and in the file.
        for l in [
            "connected from 192.0.2.1",
            "STOR hello.txt",
            "transfer complete, 6 bytes",
        ] {
            assert!(
                err.contains(l) && log.contains(l),
                "`{l}` not in the log:\n{err}"
            );
        }
    } else {
        assert!(
            err.contains("ready: ftp://192.0.2.2:21/")
                && log.contains("ready: ftp://192.0.2.2:21/"),
            "console not in the log:\n{err}"
        );
    }
    card.assert_clean();
    assert_eq!(card.read("/hello.txt").as_deref(), Some(&b"hello\n"[..]));
}

mod serve {
    fn on(board: &str) {
        let _one = super::one_at_a_time();
        if let Some(t) = super::board(board, &format!("serve on {board}"), &["curl"]) {
            super::serve(t);
        }
    }
    #[test]
    fn sim() {
        on("sim")
    }
    #[test]
    fn qemu() {
        on("qemu")
    }
}

/// A `harness serve` killed with SIGKILL cannot clean up: its board dies
/// with it (parent-death signal), and the next start removes the namespace
/// it left.
#[test]
fn leftovers_of_a_killed_harness_are_removed() {
    let _one = one_at_a_time();
    let Some(t) = board("sim", "leftovers_of_a_killed_harness_are_removed", &[]) else {
        return;
    };
    let card = Card::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["serve", "--target", t.name, "--image"])
        .arg(card.image())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ns = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(ns.starts_with("ftpd-sim-"), "{line:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    // The board went with the harness: no process left in the namespace.
    let t0 = Instant::now();
    loop {
        let pids = Command::new("ip")
            .args(["netns", "pids", &ns])
            .output()
            .unwrap();
        if pids.stdout.is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "processes still in {ns}: {}",
            String::from_utf8_lossy(&pids.stdout)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        harness::netns::exists(&ns),
        "nothing was left to clean (the test proves nothing)"
    );
    // The next namespace of that kind removes it.
    let next = harness::netns::Netns::create("sim").unwrap();
    assert!(!harness::netns::exists(&ns), "{ns} survived the next start");
    drop(next);
}
