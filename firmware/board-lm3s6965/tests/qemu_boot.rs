//! Boot tests: build the firmware, make SD images, boot QEMU's lm3s6965evb
//! through `qemu/run-lm3s6965.sh`, read the console and talk FTP to it.
//!
//! Run on the host: `cargo test --target x86_64-unknown-linux-gnu` (alias
//! `cargo test-host`) in `firmware/board-lm3s6965`.
//!
//! QEMU binaries: `$QEMU` (default `qemu-system-arm`) plus every path in
//! `$QEMU_EXTRA` (colon-separated), e.g. a QEMU 10.0.2 unpacked next to the
//! system's 7.2. Without any QEMU the tests fail under `CI=true` and print a
//! loud notice otherwise. Every QEMU started here is killed when its test
//! ends (also on panic), and each boot has a timeout.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BOOT_TIMEOUT: Duration = Duration::from_secs(30);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn qemu_dir() -> PathBuf {
    crate_dir().join("../../qemu")
}

/// A file for this test run under target/qemu-tests (files of earlier runs
/// are removed the first time).
fn scratch(name: &str) -> PathBuf {
    static CLEAN: OnceLock<()> = OnceLock::new();
    let d = crate_dir().join("target/qemu-tests");
    CLEAN.get_or_init(|| {
        let me = format!("{}-", std::process::id());
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if !e.file_name().to_string_lossy().starts_with(&me) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    });
    std::fs::create_dir_all(&d).unwrap();
    d.join(format!("{}-{name}", std::process::id()))
}

/// Builds the release firmware once per test run.
fn firmware() -> &'static Path {
    static ELF: OnceLock<PathBuf> = OnceLock::new();
    ELF.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .current_dir(crate_dir())
            .args(["build", "--release", "--target", "thumbv7m-none-eabi"])
            .status()
            .expect("running cargo build for the firmware");
        assert!(st.success(), "firmware build failed");
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| crate_dir().join("target"));
        target.join("thumbv7m-none-eabi/release/board-lm3s6965")
    })
}

fn on_path(bin: &str) -> Option<PathBuf> {
    if bin.contains('/') {
        return Path::new(bin).is_file().then(|| PathBuf::from(bin));
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file())
}

/// The QEMUs to test with, with their version lines.
fn qemus() -> Vec<(PathBuf, String)> {
    let mut names = vec![std::env::var("QEMU").unwrap_or_else(|_| "qemu-system-arm".into())];
    if let Ok(extra) = std::env::var("QEMU_EXTRA") {
        names.extend(extra.split(':').filter(|s| !s.is_empty()).map(String::from));
    }
    let mut found = Vec::new();
    for n in names {
        match on_path(&n) {
            Some(p) => {
                let out = Command::new(&p)
                    .arg("--version")
                    .output()
                    .expect("qemu --version");
                let v = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                found.push((p, v));
            }
            None => missing(&format!("{n} not found")),
        }
    }
    if found.is_empty() {
        missing("no qemu-system-arm to run the board on");
    }
    found
}

fn missing(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("QEMU is required under CI=true: {why} (apt-get install qemu-system-arm)");
    }
    eprintln!("\n!!!!!!!! QEMU TESTS NOT RUN: {why} (apt-get install qemu-system-arm) !!!!!!!!\n");
}

fn mkimage(path: &Path, bare: bool) {
    let mut c = Command::new(qemu_dir().join("mkimage.sh"));
    if bare {
        c.arg("--bare");
    }
    let out = c.arg(path).arg("64").output().unwrap();
    assert!(
        out.status.success(),
        "mkimage.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A free TCP port on 127.0.0.1, and a run of `n` consecutive free ones.
fn free_ports(n: u16) -> (u16, u16) {
    let single = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let seed = (std::process::id() as u64 * 7919 + nanos) % 20_000;
    'outer: for attempt in 0..200u64 {
        let base = 40_000 + ((seed + attempt * 97) % 20_000) as u16;
        let mut held = Vec::new();
        for p in base..base + n {
            match TcpListener::bind(("127.0.0.1", p)) {
                Ok(l) => held.push(l),
                Err(_) => continue 'outer,
            }
        }
        if !(base..base + n).contains(&single) {
            return (single, base);
        }
    }
    panic!("no free port range");
}

/// A running board; killed on drop.
struct Board {
    child: Child,
    console: PathBuf,
    ftp: u16,
    pasv: (u16, u16),
}

impl Drop for Board {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Board {
    fn boot(qemu: &Path, image: &str, tag: &str) -> Board {
        let console = scratch(&format!("{tag}.console"));
        let _ = std::fs::remove_file(&console);
        let (ftp, pasv_lo) = free_ports(4);
        let child = Command::new(qemu_dir().join("run-lm3s6965.sh"))
            .args([
                "--qemu",
                qemu.to_str().unwrap(),
                "--image",
                image,
                "--net",
                "user",
            ])
            .args([
                "--ftp-port",
                &ftp.to_string(),
                "--pasv-ports",
                &format!("{pasv_lo}-{}", pasv_lo + 3),
            ])
            .args(["--serial", console.to_str().unwrap()])
            .arg("--kernel")
            .arg(firmware())
            .stdin(Stdio::null())
            .spawn()
            .expect("starting run-lm3s6965.sh");
        Board {
            child,
            console,
            ftp,
            pasv: (pasv_lo, pasv_lo + 3),
        }
    }

    fn console(&self) -> String {
        std::fs::read_to_string(&self.console).unwrap_or_default()
    }

    /// Waits until the console's complete lines contain `needle` `times`
    /// times, and returns those lines. The UART writes a byte at a time, so
    /// a half-written last line is never matched or returned: a caller that
    /// finds its needle also sees the rest of that line.
    fn wait_for(&mut self, needle: &str, times: usize, timeout: Duration) -> String {
        let t0 = Instant::now();
        loop {
            let mut c = self.console();
            c.truncate(c.rfind('\n').map_or(0, |i| i + 1));
            if c.matches(needle).count() >= times {
                return c;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("QEMU exited ({st}) before {needle:?} appeared; console:\n{c}");
            }
            if t0.elapsed() > timeout {
                panic!("{needle:?} ×{times} not on the console after {timeout:?}; console:\n{c}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// CPU time QEMU used (user + system), from /proc.
    fn cpu_time(&self) -> Duration {
        // The script execs QEMU, so the child's PID is QEMU's.
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after.split(' ').collect();
        let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10) // USER_HZ = 100
    }
}

struct Ftp {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Ftp {
    fn connect(port: u16) -> Ftp {
        let t0 = Instant::now();
        let s = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) if t0.elapsed() < IO_TIMEOUT => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("connecting to 127.0.0.1:{port}: {e}"),
            }
        };
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        Ftp {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            self.r.read_line(&mut l).expect("reading a reply");
            assert!(!l.is_empty(), "connection closed; so far: {all:?}");
            all.push_str(&l);
            let b = l.as_bytes();
            if b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' ' {
                return all;
            }
        }
    }

    fn cmd(&mut self, c: &str) -> String {
        self.w.write_all(format!("{c}\r\n").as_bytes()).unwrap();
        self.reply()
    }
}

fn expect_code(reply: &str, code: &str) {
    assert!(reply.starts_with(code), "expected {code}, got {reply:?}");
}

fn pasv(f: &mut Ftp) -> u16 {
    let r = f.cmd("PASV");
    expect_code(&r, "227");
    let nums: Vec<u16> = r[r.find('(').unwrap() + 1..r.find(')').unwrap()]
        .split(',')
        .map(|n| n.trim().parse().unwrap())
        .collect();
    nums[4] * 256 + nums[5]
}

fn data_write(port: u16, data: &[u8]) {
    let mut d =
        TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), IO_TIMEOUT)
            .expect("data connection");
    d.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    d.write_all(data).unwrap();
    d.shutdown(std::net::Shutdown::Write).unwrap();
    // Wait for the server to close its side.
    d.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let _ = d.read(&mut [0u8; 16]);
}

/// `fsck.fat -n` on the partition and `mcopy` of the uploaded file.
fn check_image(img: &Path, name: &str, data: &[u8]) {
    let bytes = std::fs::read(img).unwrap();
    let part = img.with_extension("part");
    std::fs::write(&part, &bytes[1 << 20..]).unwrap();
    match Command::new("fsck.fat").arg("-n").arg(&part).output() {
        Ok(o) => assert!(
            o.status.success(),
            "fsck.fat -n: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => missing_tool("fsck.fat", e),
    }
    let out = img.with_extension("copy");
    let _ = std::fs::remove_file(&out);
    match Command::new("mcopy")
        .arg("-n")
        .arg("-i")
        .arg(format!("{}@@1M", img.display()))
        .arg(format!("::{name}"))
        .arg(&out)
        .output()
    {
        Ok(o) => {
            assert!(
                o.status.success(),
                "mcopy: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(
                std::fs::read(&out).unwrap() == data,
                "mcopy read back different bytes"
            );
        }
        Err(e) => missing_tool("mcopy", e),
    }
    let _ = std::fs::remove_file(&part);
    let _ = std::fs::remove_file(&out);
}

fn missing_tool(tool: &str, e: std::io::Error) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{tool} is required under CI=true: {e} (apt-get install dosfstools mtools)");
    }
    eprintln!("!!!!!!!! {tool} not run: {e} (apt-get install dosfstools mtools) !!!!!!!!");
}

fn data_read(port: u16) -> Vec<u8> {
    let mut d =
        TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), IO_TIMEOUT)
            .expect("data connection");
    d.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut v = Vec::new();
    d.read_to_end(&mut v).unwrap();
    v
}

#[test]
fn boots_serves_ftp_and_sleeps_when_idle() {
    for (qemu, version) in qemus() {
        eprintln!("== {version}");
        let img = scratch("fat32.img");
        mkimage(&img, false);
        let mut b = Board::boot(&qemu, img.to_str().unwrap(), "boot");
        let console = b.wait_for("  ram:", 1, BOOT_TIMEOUT);
        eprintln!("{console}");
        assert!(
            console.contains(&format!("ftpd lm3s6965 v{}", env!("CARGO_PKG_VERSION"))),
            "version"
        );
        assert!(
            console.contains("ip 10.0.2.15/24 gw 10.0.2.2 pasv 127.0.0.1"),
            "address"
        );
        assert!(console.contains("sd 64 MiB"), "card size");
        assert!(console.contains("Fat32 in MBR partition"), "volume");
        let ram: usize = console
            .split("  ram: ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("free RAM in the banner");
        assert!(ram >= 4096, "less than 4 KiB of RAM left after boot: {ram}");

        let mut f = Ftp::connect(b.ftp);
        expect_code(&f.reply(), "220");
        expect_code(&f.cmd("USER test"), "331");
        expect_code(&f.cmd("PASS test"), "230");
        expect_code(&f.cmd("TYPE I"), "200");
        // Passive mode: the advertised address is the forwarded one.
        let r = f.cmd("PASV");
        expect_code(&r, "227");
        let nums: Vec<u16> = r[r.find('(').unwrap() + 1..r.find(')').unwrap()]
            .split(',')
            .map(|n| n.trim().parse().unwrap())
            .collect();
        assert_eq!(&nums[..4], &[127, 0, 0, 1], "{r}");
        let port = nums[4] * 256 + nums[5];
        assert!(
            (b.pasv.0..=b.pasv.1).contains(&port),
            "{port} outside {:?}",
            b.pasv
        );
        f.w.write_all(b"LIST\r\n").unwrap();
        let _listing = data_read(port);
        expect_code(&f.reply(), "150");
        expect_code(&f.reply(), "226");
        // Extended passive mode.
        let r = f.cmd("EPSV");
        expect_code(&r, "229");
        let port: u16 = r
            .split("|||")
            .nth(1)
            .unwrap()
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .unwrap();
        assert!((b.pasv.0..=b.pasv.1).contains(&port), "{port}");
        f.w.write_all(b"NLST\r\n").unwrap();
        let _ = data_read(port);
        expect_code(&f.reply(), "150");
        expect_code(&f.reply(), "226");
        // Upload a file with a long name, download it, compare.
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let name = "Upload test file.bin";
        let port = pasv(&mut f);
        f.w.write_all(format!("STOR {name}\r\n").as_bytes())
            .unwrap();
        let t = Instant::now();
        data_write(port, &data);
        expect_code(&f.reply(), "150");
        expect_code(&f.reply(), "226");
        let up = t.elapsed();
        expect_code(&f.cmd(&format!("SIZE {name}")), "213 300000");
        let port = pasv(&mut f);
        f.w.write_all(format!("RETR {name}\r\n").as_bytes())
            .unwrap();
        let t = Instant::now();
        let back = data_read(port);
        expect_code(&f.reply(), "150");
        expect_code(&f.reply(), "226");
        let down = t.elapsed();
        assert!(
            back == data,
            "RETR returned {} bytes, not what was stored",
            back.len()
        );
        eprintln!(
            "STOR 300 kB: {:.0} kB/s, RETR: {:.0} kB/s",
            300.0 / up.as_secs_f64(),
            300.0 / down.as_secs_f64()
        );
        let port = pasv(&mut f);
        f.w.write_all(b"NLST\r\n").unwrap();
        let names = String::from_utf8(data_read(port)).unwrap();
        expect_code(&f.reply(), "150");
        expect_code(&f.reply(), "226");
        assert!(names.contains(name), "{names}");
        expect_code(&f.cmd("QUIT"), "221");
        drop(f);

        // Idle: WFI must really halt the vCPU (1 kHz SysTick wake-ups only).
        std::thread::sleep(Duration::from_millis(500));
        let (c0, t0) = (b.cpu_time(), Instant::now());
        std::thread::sleep(Duration::from_secs(3));
        let share = (b.cpu_time() - c0).as_secs_f64() / t0.elapsed().as_secs_f64();
        eprintln!("idle QEMU CPU share: {:.0} %", share * 100.0);
        assert!(
            share < 0.5,
            "an idle board keeps QEMU at {:.0} % CPU: the idle loop spins",
            share * 100.0
        );
        let peak = b
            .console()
            .lines()
            .filter_map(|l| l.strip_prefix("stack: peak "))
            .next_back()
            .map(String::from);
        eprintln!("stack: peak {}", peak.unwrap_or_default());
        drop(b);

        // The image, read back by tools nobody here wrote.
        check_image(&img, name, &data);
    }
}

#[test]
fn missing_card_is_reported_and_retried() {
    for (qemu, version) in qemus() {
        eprintln!("== {version}");
        let mut b = Board::boot(&qemu, "none", "nocard");
        // The board serves FTP without its card and keeps trying it.
        let c = b.wait_for("sd: SD card not ready: no SD card", 2, BOOT_TIMEOUT);
        assert!(c.contains("retrying in 2 s"), "{c}");
        assert!(c.contains("ready: ftp://"), "{c}");
        assert!(c.contains("sd NOT READY"), "{c}");
    }
}

#[test]
fn unformatted_card_is_reported_and_retried() {
    for (qemu, version) in qemus() {
        eprintln!("== {version}");
        let img = scratch("blank.img");
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(64 << 20).unwrap();
        drop(f);
        let mut b = Board::boot(&qemu, img.to_str().unwrap(), "blank");
        let c = b.wait_for("unformatted", 2, BOOT_TIMEOUT);
        assert!(
            c.contains("sd: SD card not ready: card of 64 MiB: no FAT file system found"),
            "{c}"
        );
        assert!(c.contains("ready: ftp://"), "{c}");
    }
}

#[test]
fn bare_fat_volume_boots() {
    for (qemu, version) in qemus() {
        eprintln!("== {version}");
        let img = scratch("bare.img");
        mkimage(&img, true);
        let mut b = Board::boot(&qemu, img.to_str().unwrap(), "bare");
        // The card's line comes after "ready:"; "  ram:" closes the banner.
        let c = b.wait_for("  ram:", 1, BOOT_TIMEOUT);
        assert!(c.contains("ready: ftp://"), "{c}");
        assert!(c.contains("Fat32 without partition table"), "{c}");
    }
}

#[test]
fn image_of_wrong_size_gets_a_clear_message() {
    let img = scratch("odd.img");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(100 << 20).unwrap();
    drop(f);
    let out = Command::new(qemu_dir().join("run-lm3s6965.sh"))
        .args(["--print", "--image", img.to_str().unwrap(), "--kernel"])
        .arg(firmware())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("power-of-two"), "{err}");
}

#[test]
fn command_line_describes_the_board() {
    let img = scratch("cmdline.img");
    mkimage(&img, false);
    let out = Command::new(qemu_dir().join("run-lm3s6965.sh"))
        .args([
            "--print",
            "--image",
            img.to_str().unwrap(),
            "--net",
            "tap:tapq0",
            "--qmp",
            "/tmp/q.sock",
            "--kernel",
        ])
        .arg(firmware())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args = String::from_utf8(out.stdout).unwrap();
    for want in [
        "lm3s6965evb",
        "tap,ifname=tapq0,script=no,downscript=no,model=stellaris",
        "if=sd,index=0,format=raw,file=",
        "unix:/tmp/q.sock,server=on,wait=off",
        // 192.0.2.2 at the boot-parameter address
        "loader,addr=0x2000ffc4,data=0x020200c0,data-len=4",
    ] {
        assert!(args.contains(want), "{want} missing from:\n{args}");
    }
}

/// Flash and RAM use from the ELF's section headers (no binutils needed).
#[test]
fn firmware_fits_the_chip() {
    let elf = std::fs::read(firmware()).unwrap();
    let sections = elf32_sections(&elf);
    let size = |n: &str| {
        sections
            .iter()
            .filter(|(s, ..)| s == n)
            .map(|s| s.2)
            .sum::<u32>()
    };
    let flash = size(".vector_table") + size(".text") + size(".rodata") + size(".data");
    let ram_static = size(".data") + size(".bss") + size(".uninit");
    let stack = 0xFFC0 - ram_static;
    println!(
        "footprint: flash {flash} bytes of 262144 ({:.0} %) [.text {} .rodata {} .data {}]; \
         static RAM {ram_static} bytes of 65536 [.data {} .bss {}], stack {stack} bytes, boot parameters 64",
        flash as f64 * 100.0 / 262144.0,
        size(".text"),
        size(".rodata"),
        size(".data"),
        size(".data"),
        size(".bss")
    );
    assert!(flash <= 256 * 1024, "flash overflow");
    assert!(
        stack >= 16 * 1024,
        "less than 16 KiB left for the stack: {stack}"
    );
}

fn elf32_sections(elf: &[u8]) -> Vec<(String, u32, u32)> {
    assert_eq!(&elf[..5], b"\x7fELF\x01", "not an ELF32 file");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let (shoff, shentsize, shnum, shstrndx) = (
        u32_at(0x20) as usize,
        u16_at(0x2E),
        u16_at(0x30),
        u16_at(0x32),
    );
    let sh = |i: usize| shoff + i * shentsize;
    let strtab = u32_at(sh(shstrndx) + 0x10) as usize;
    (0..shnum)
        .map(|i| {
            let h = sh(i);
            let name_off = strtab + u32_at(h) as usize;
            let end = elf[name_off..].iter().position(|&b| b == 0).unwrap();
            let name = String::from_utf8_lossy(&elf[name_off..name_off + end]).into_owned();
            (name, u32_at(h + 0x0C), u32_at(h + 0x14))
        })
        .collect()
}

/// A network namespace made for one test, deleted on drop.
struct Netns(String);

impl Netns {
    fn create() -> Result<Netns, String> {
        let name = format!("ftpdq{}", std::process::id());
        let ip = |args: &[&str]| -> Result<(), String> {
            let o = Command::new("ip")
                .args(args)
                .output()
                .map_err(|e| format!("ip: {e}"))?;
            if o.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
        };
        ip(&["netns", "add", &name])?;
        let ns = Netns(name);
        let n = ns.0.as_str();
        ip(&["-n", n, "link", "set", "lo", "up"])?;
        ip(&["-n", n, "tuntap", "add", "dev", "tapq0", "mode", "tap"])?;
        ip(&["-n", n, "addr", "add", "192.0.2.1/24", "dev", "tapq0"])?;
        ip(&["-n", n, "link", "set", "tapq0", "up"])?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// `-nic tap` inside a namespace of our own (192.0.2.0/24): the board answers
/// on 192.0.2.2:21 from the TAP side. Needs root (CAP_NET_ADMIN).
#[test]
fn tap_networking_in_a_namespace() {
    let ns = match Netns::create() {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!(
                "!!!!!!!! TAP TEST NOT RUN: cannot make a network namespace with a TAP device: {e} !!!!!!!!"
            );
            return;
        }
    };
    for (qemu, version) in qemus() {
        eprintln!("== {version}");
        let img = scratch("tap.img");
        mkimage(&img, false);
        let console = scratch("tap.console");
        let _ = std::fs::remove_file(&console);
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.0])
            .arg(qemu_dir().join("run-lm3s6965.sh"))
            .args([
                "--qemu",
                qemu.to_str().unwrap(),
                "--image",
                img.to_str().unwrap(),
                "--net",
                "tap:tapq0",
            ])
            .args(["--serial", console.to_str().unwrap(), "--kernel"])
            .arg(firmware())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut b = Board {
            child,
            console,
            ftp: 21,
            pasv: (50000, 50099),
        };
        let c = b.wait_for("ready:", 1, BOOT_TIMEOUT);
        assert!(c.contains("ftp://192.0.2.2:21/"), "{c}");
        // A client inside the namespace: bash's /dev/tcp.
        let script = "exec 3<>/dev/tcp/192.0.2.2/21 && IFS= read -r -t 10 l <&3 && echo \"$l\" && \
                      printf 'USER test\\r\\nPASS test\\r\\nEPSV\\r\\nQUIT\\r\\n' >&3 && \
                      for i in 1 2 3 4 5; do IFS= read -r -t 10 l <&3 && echo \"$l\"; done";
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.0, "bash", "-c", script])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        eprintln!("{text}");
        assert!(text.starts_with("220"), "{text}");
        assert!(text.contains("230"), "{text}");
        assert!(text.contains("229 "), "{text}");
        assert!(text.contains("221"), "{text}");
    }
}
