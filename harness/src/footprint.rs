//! `harness bench --footprint` (issue 6): the engine's flash at opt-level z
//! and s, the QEMU and STM32F4-Discovery firmware's flash and RAM, the RAM
//! one session costs, the stack high-water mark measured on QEMU.
//!
//! Where each figure comes from:
//! - the engine's flash and one session's RAM: `firmware/footprint`'s tool
//!   (`cargo run --release -- --csv` there), which links probe firmwares for
//!   `thumbv7m-none-eabi` and reads them;
//! - the boards' flash and static RAM: the section headers of their release
//!   ELF files (read here, no binutils), the stack area from the linker
//!   symbols `_stack_start` and `_stack_end`;
//! - the stack peak: the QEMU board paints its stack at boot and prints
//!   `stack: peak N bytes of M` on its console when the high-water mark
//!   grows. Every scenario is played on a fresh board (as `harness run`
//!   does, without the snapshots), then four sessions at once move files (two
//!   RETR, two STOR), and the largest peak of all the consoles counts. The
//!   `diag` build (discard, chargen, sdbench) is measured the same way under
//!   the four-at-once load plus its discard, chargen and sdbench services.
//!
//! The floors are issue 6's: the engine under 16 KB of flash at
//! `opt-level = "z"`, one session's engine state under 1 KB, and the QEMU
//! board serving 4 sessions at once within its 64 KB of SRAM with the
//! measured stack peak and 4 KB to spare (stack area − peak ≥ 4096), for
//! the normal and the `diag` build. Printed `ok` or `NOT MET`; the exit
//! status says so only with `--check-floors`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};

use crate::board;
use crate::client::{self, Control};
use crate::fixture::{Entry, Tree};
use crate::target::{Context, StartOptions, Target, workspace_root};

/// Issue 6's floors.
pub const ENGINE_FLASH_FLOOR: u64 = 16 * 1024;
pub const SESSION_FLOOR: u64 = 1024;
pub const STACK_MARGIN: u64 = 4 * 1024;
/// The QEMU board's SRAM (lm3s6965: 64 KiB).
const QEMU_SRAM: u64 = 64 * 1024;
const QEMU_FLASH: u64 = 256 * 1024;
const STM32_SRAM: u64 = 128 * 1024;
const STM32_CCM: u64 = 64 * 1024;
const STM32_FLASH: u64 = 1024 * 1024;
/// Size of each file the four-at-once load moves.
const LOAD_FILE: usize = 1 << 20;
/// How many of the deepest scenarios are played again on the diag build.
const DIAG_SCENARIOS: usize = 3;
/// Bytes through discard and chargen on the diag build.
const DIAG_BYTES: usize = 1 << 20;
/// Time for a board to print a new peak after the last session (it looks
/// every 100 ms).
const SETTLE: Duration = Duration::from_millis(350);
const IO_LIMIT: Duration = Duration::from_secs(60);

/// `harness bench --footprint` options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Skip the QEMU stack measurement.
    pub no_qemu: bool,
    /// Exit non-zero when a floor is not met.
    pub check_floors: bool,
    /// Where footprint.md and footprint.csv go (default target/bench).
    pub out: Option<PathBuf>,
}

/// One figure of the report.
#[derive(Clone, Debug)]
struct Row {
    table: &'static str,
    item: String,
    values: Vec<Option<u64>>,
    note: String,
}

/// One floor and whether it holds (`None`: not measured).
#[derive(Clone, Debug)]
struct Floor {
    what: String,
    value: Option<u64>,
    rule: String,
    ok: Option<bool>,
}

/// Runs `harness bench --footprint`.
pub async fn main(ctx: &Context, opts: &Options) -> anyhow::Result<ExitCode> {
    let t0 = Instant::now();
    let mut report = Report::default();

    // 1. The engine and one session (firmware/footprint's tool).
    eprintln!("footprint: building the engine probes (firmware/footprint)...");
    let engine = engine_figures().context("firmware/footprint's tool")?;
    report.engine(&engine)?;

    // 2. The firmware images.
    eprintln!(
        "footprint: building the QEMU board's firmware (release, and with --features diag)..."
    );
    let qemu_elf = ctx.firmware().map_err(|e| anyhow!(e))?;
    let qemu = Firmware::read(&qemu_elf)?;
    let diag_elf = build_board(
        &board::board_dir(),
        &["--features", "diag"],
        Some(&board::board_dir().join("target/diag")),
    )
    .context("the QEMU board's diag build")?;
    let diag = Firmware::read(&diag_elf)?;
    eprintln!("footprint: building the STM32F4-Discovery firmware (release)...");
    let stm32 = build_board(&workspace_root().join("firmware/board-stm32f4"), &[], None)
        .and_then(|p| Firmware::read(&p))
        .context("the STM32F4-Discovery firmware")?;
    report.firmware(&qemu, &diag, &stm32);

    // 3. The stack, measured on QEMU.
    let measured = if opts.no_qemu {
        eprintln!("footprint: --no-qemu: the stack peak is not measured");
        Err("not measured (--no-qemu)".to_string())
    } else {
        match Target::by_name("qemu").unwrap().probe(ctx) {
            Err(u) => {
                if crate::snapshot::is_ci() && u.missing_tool {
                    bail!(
                        "QEMU cannot run here, so the stack is not measured: {}",
                        u.reason
                    );
                }
                eprintln!(
                    "\n*** footprint: the stack peak is NOT measured: {} ***\n",
                    u.reason
                );
                Err(format!("not measured: {}", u.reason))
            }
            Ok(()) => Ok(measure_stack(ctx, &diag_elf).await?),
        }
    };
    report.stack(&qemu, &diag, &measured);

    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| workspace_root().join("target/bench"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let md = report.markdown(&engine, t0.elapsed());
    std::fs::write(out.join("footprint.md"), &md)?;
    std::fs::write(out.join("footprint.csv"), report.csv())?;
    println!("{md}");
    println!(
        "written: {} and {}",
        out.join("footprint.md").display(),
        out.join("footprint.csv").display()
    );
    let failed = report.floors.iter().any(|f| f.ok == Some(false));
    if failed && opts.check_floors {
        eprintln!("footprint: a floor is not met (--check-floors)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------
// The engine: firmware/footprint --csv
// ---------------------------------------------------------------------------

type Figures = BTreeMap<String, String>;

fn engine_figures() -> anyhow::Result<Figures> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let dir = workspace_root().join("firmware/footprint");
    let out = std::process::Command::new(cargo)
        .args(["run", "--release", "--quiet", "--", "--csv"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running cargo in {}", dir.display()))?;
    if !out.status.success() {
        bail!(
            "`cargo run --release -- --csv` in {} failed (rustup target add thumbv7m-none-eabi?):\n{}",
            dir.display(),
            tail(&String::from_utf8_lossy(&out.stderr), 15)
        );
    }
    parse_figures(&String::from_utf8_lossy(&out.stdout))
}

/// `key,value` lines after a `key,value` header.
fn parse_figures(text: &str) -> anyhow::Result<Figures> {
    let mut lines = text.lines();
    if lines.next() != Some("key,value") {
        bail!("no `key,value` header in the footprint tool's output:\n{text}");
    }
    let mut m = Figures::new();
    for l in lines.filter(|l| !l.trim().is_empty()) {
        let (k, v) = l
            .split_once(',')
            .ok_or_else(|| anyhow!("footprint tool: not `key,value`: {l:?}"))?;
        m.insert(k.to_string(), v.to_string());
    }
    Ok(m)
}

fn figure(m: &Figures, k: &str) -> anyhow::Result<u64> {
    m.get(k)
        .ok_or_else(|| anyhow!("the footprint tool gave no `{k}`"))?
        .parse()
        .map_err(|e| anyhow!("footprint tool, `{k}`: {e}"))
}

fn tail(s: &str, n: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------
// Firmware images
// ---------------------------------------------------------------------------

/// `cargo build --release ARGS` in a board's directory (its own workspace);
/// the ELF's path from cargo's messages.
fn build_board(dir: &Path, args: &[&str], target_dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--release", "--message-format=json"])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null());
    if let Some(t) = target_dir {
        cmd.env("CARGO_TARGET_DIR", t);
    }
    let out = cmd
        .output()
        .with_context(|| format!("running cargo in {}", dir.display()))?;
    if !out.status.success() {
        bail!(
            "cargo build --release {} in {} failed:\n{}",
            args.join(" "),
            dir.display(),
            tail(&String::from_utf8_lossy(&out.stderr), 15)
        );
    }
    let re = regex::Regex::new(r#""executable":"([^"]+)""#).unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\""))
        .filter_map(|l| re.captures(l).map(|c| PathBuf::from(&c[1])))
        .next_back()
        .ok_or_else(|| anyhow!("cargo built {} but reported no executable", dir.display()))
}

/// What a firmware ELF holds, in bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Firmware {
    pub vectors: u64,
    pub text: u64,
    pub rodata: u64,
    pub data: u64,
    pub bss: u64,
    /// `_stack_start - _stack_end`: what the stack may use.
    pub stack: u64,
}

impl Firmware {
    pub fn read(path: &Path) -> anyhow::Result<Firmware> {
        let b = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let elf = Elf::parse(&b).with_context(|| format!("reading {}", path.display()))?;
        let size = |name: &str| -> u64 {
            elf.sections
                .iter()
                .filter(|s| s.name == name)
                .map(|s| s.size)
                .sum()
        };
        let sym = |name: &str| -> anyhow::Result<u64> {
            elf.symbols
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.value)
                .ok_or_else(|| anyhow!("{}: no symbol {name}", path.display()))
        };
        Ok(Firmware {
            vectors: size(".vector_table"),
            text: size(".text"),
            rodata: size(".rodata"),
            data: size(".data"),
            bss: size(".bss") + size(".uninit"),
            stack: sym("_stack_start")?.saturating_sub(sym("_stack_end")?),
        })
    }
    /// What the image costs in flash: vectors, code, constants, and the
    /// initial image of `.data`.
    pub fn flash(&self) -> u64 {
        self.vectors + self.text + self.rodata + self.data
    }
    /// Static RAM: `.data + .bss`.
    pub fn ram(&self) -> u64 {
        self.data + self.bss
    }
}

/// A section (name, size) and a symbol (name, value) of an ELF32 file.
struct Section {
    name: String,
    size: u64,
}
struct Symbol {
    name: String,
    value: u64,
}
struct Elf {
    sections: Vec<Section>,
    symbols: Vec<Symbol>,
}

impl Elf {
    /// A little-endian ELF32 file's section headers and symbols; every
    /// offset is checked, so a damaged file is an error, not a panic.
    fn parse(b: &[u8]) -> anyhow::Result<Elf> {
        if b.len() < 52 || &b[..4] != b"\x7fELF" || b[4] != 1 || b[5] != 1 {
            bail!("not a 32-bit little-endian ELF file");
        }
        let u16_at = |o: usize| -> anyhow::Result<usize> {
            b.get(o..o + 2)
                .map(|s| usize::from(u16::from_le_bytes([s[0], s[1]])))
                .ok_or_else(|| anyhow!("truncated ELF"))
        };
        let u32_at = |o: usize| -> anyhow::Result<usize> {
            b.get(o..o + 4)
                .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
                .ok_or_else(|| anyhow!("truncated ELF"))
        };
        let (shoff, shentsize, shnum, shstrndx) =
            (u32_at(32)?, u16_at(46)?, u16_at(48)?, u16_at(50)?);
        struct Raw {
            name: usize,
            kind: usize,
            offset: usize,
            size: usize,
            link: usize,
        }
        let mut raw = Vec::new();
        for i in 0..shnum {
            let h = shoff + i * shentsize;
            raw.push(Raw {
                name: u32_at(h)?,
                kind: u32_at(h + 4)?,
                offset: u32_at(h + 16)?,
                size: u32_at(h + 20)?,
                link: u32_at(h + 24)?,
            });
        }
        let cstr = |table: &Raw, at: usize| -> String {
            let start = (table.offset + at).min(b.len());
            let end = b[start..]
                .iter()
                .position(|&c| c == 0)
                .map_or(b.len(), |n| start + n);
            String::from_utf8_lossy(&b[start..end]).into_owned()
        };
        let shstr = raw
            .get(shstrndx)
            .ok_or_else(|| anyhow!("no section name table"))?;
        let sections = raw
            .iter()
            .map(|s| Section {
                name: cstr(shstr, s.name),
                size: s.size as u64,
            })
            .collect();
        let mut symbols = Vec::new();
        for s in raw.iter().filter(|s| s.kind == 2) {
            let strtab = raw
                .get(s.link)
                .ok_or_else(|| anyhow!("symbol table without strings"))?;
            for k in 0..s.size / 16 {
                let e = s.offset + k * 16;
                symbols.push(Symbol {
                    name: cstr(strtab, u32_at(e)?),
                    value: u32_at(e + 4)? as u64,
                });
            }
        }
        Ok(Elf { sections, symbols })
    }
}

// ---------------------------------------------------------------------------
// The stack on QEMU
// ---------------------------------------------------------------------------

/// Stack peaks read from the consoles.
#[derive(Clone, Debug)]
pub struct Measured {
    /// Largest peak over all scenarios, and the scenario.
    pub scenarios: Option<(u64, String)>,
    pub played: usize,
    /// Scenarios whose checks failed or that could not be played.
    pub problems: Vec<String>,
    /// Peak of the four-at-once load (normal build), and whether all four
    /// transfers were served.
    pub four: Option<u64>,
    pub four_ok: Result<(), String>,
    /// Peak of the diag build under four at once + discard + chargen +
    /// sdbench.
    pub diag: Option<u64>,
    /// Peak of the diag build over the normal build's deepest scenarios.
    pub diag_scenarios: Option<u64>,
    pub diag_ok: Result<(), String>,
    pub seconds: f64,
}

impl Measured {
    /// The normal build's peak: the largest of everything it ran.
    pub fn peak(&self) -> Option<u64> {
        self.scenarios.as_ref().map(|s| s.0).max(self.four)
    }
}

/// The largest `stack: peak N bytes` on a console.
pub fn peak_in(console: &str) -> Option<u64> {
    console
        .lines()
        .filter_map(|l| {
            let rest = &l[l.find("stack: peak ")? + "stack: peak ".len()..];
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
        .max()
}

fn log_dir() -> PathBuf {
    crate::target::harness_dir().join("logs/footprint")
}

async fn measure_stack(ctx: &Context, diag_elf: &Path) -> anyhow::Result<Measured> {
    let t0 = Instant::now();
    let target = Target::by_name("qemu").unwrap();
    let mut m = Measured {
        scenarios: None,
        played: 0,
        problems: vec![],
        four: None,
        four_ok: Err("not run".into()),
        diag: None,
        diag_scenarios: None,
        diag_ok: Err("not run".into()),
        seconds: 0.0,
    };
    let opts = crate::run::Options::new(workspace_root().join("scenarios"));
    let mut errors = Vec::new();
    let scenarios = crate::run::load_scenarios(&opts, &mut errors);
    if let Some(e) = errors.first() {
        bail!("loading the scenarios: {e}");
    }
    let n = scenarios.len();
    let mut peaks: Vec<(u64, usize)> = Vec::new();
    for (i, s) in scenarios.iter().enumerate() {
        eprint!("\rfootprint: [{}/{n}] {} on qemu          ", i + 1, s.id);
        let tree = crate::run::fixture_for(s, &opts.scenarios_dir).map_err(|e| anyhow!(e))?;
        if let Some(why) = target.cannot_play(s) {
            m.problems.push(format!("{}: not played ({why})", s.id));
            continue;
        }
        let log = log_dir().join(format!("{}.log", s.id.replace('/', "__")));
        let start = StartOptions {
            log: Some(log.clone()),
            ..Default::default()
        };
        let server = match target.start_with(ctx, &tree, &start).await {
            Ok(s) => s,
            Err(e) => {
                m.problems.push(format!("{}: {e:#}", s.id));
                continue;
            }
        };
        let played = crate::target::play_on(&server, s, &tree, false).await;
        tokio::time::sleep(SETTLE).await;
        let console = server.stop().await;
        match played {
            Ok(p) if p.failures().is_empty() => {}
            Ok(p) => m
                .problems
                .push(format!("{}: {}", s.id, p.failures().join("; "))),
            Err(e) => m.problems.push(format!("{}: {e:#}", s.id)),
        }
        m.played += 1;
        if let Some(p) = peak_in(&console) {
            peaks.push((p, i));
            if m.scenarios.as_ref().is_none_or(|(q, _)| p > *q) {
                m.scenarios = Some((p, s.id.clone()));
            }
        }
    }
    eprintln!();

    eprintln!("footprint: four sessions at once on qemu (normal build)...");
    let tree = load_tree();
    let log = log_dir().join("four_at_once.log");
    let start = StartOptions {
        log: Some(log),
        ..Default::default()
    };
    let server = target.start_with(ctx, &tree, &start).await?;
    let ns = server
        .netns
        .clone()
        .ok_or_else(|| anyhow!("the qemu target runs without a namespace here"))?;
    m.four_ok = four_at_once(&ns, server.addr).await;
    tokio::time::sleep(SETTLE).await;
    let console = server.stop().await;
    m.four = peak_in(&console);

    peaks.sort_by_key(|&(p, i)| (std::cmp::Reverse(p), i));
    let mut deepest = Vec::new();
    for &(_, i) in peaks.iter().take(DIAG_SCENARIOS) {
        let s = &scenarios[i];
        let tree = crate::run::fixture_for(s, &opts.scenarios_dir).map_err(|e| anyhow!(e))?;
        deepest.push((s.clone(), tree));
    }
    diag_run(ctx, diag_elf, &deepest, &tree, &mut m).await?;
    m.seconds = t0.elapsed().as_secs_f64();
    Ok(m)
}

/// Two files for the four-at-once load.
fn load_tree() -> Tree {
    Tree {
        name: "footprint-load".into(),
        entries: (0..2)
            .map(|i| {
                Entry::File(
                    format!("down{i}.bin"),
                    crate::fixture::filler(LOAD_FILE as u64 + i),
                )
            })
            .collect(),
    }
}

/// Four sessions logged in at once, then two RETR and two STOR together
/// (passive mode), every byte checked. Runs inside namespace `ns`.
pub async fn four_at_once(ns: &str, addr: SocketAddr) -> Result<(), String> {
    let gate = Arc::new(Barrier::new(4));
    let mut workers = Vec::new();
    for i in 0..4u64 {
        let gate = gate.clone();
        let ns = ns.to_string();
        workers.push(tokio::spawn(async move {
            crate::netns::run_in(&ns, move || async move {
                let mut c = login(addr).await?;
                // All four sessions are open before any transfer starts.
                let gate2 = gate.clone();
                tokio::task::spawn_blocking(move || gate2.wait())
                    .await
                    .map_err(|e| e.to_string())?;
                if i < 2 {
                    let name = format!("down{i}.bin");
                    let got = retr(&mut c, addr, &name).await?;
                    if got != crate::fixture::filler(LOAD_FILE as u64 + i) {
                        return Err(format!("RETR {name}: {} bytes, not the file", got.len()));
                    }
                } else {
                    let data = crate::fixture::filler(LOAD_FILE as u64 + 10 + i);
                    stor(&mut c, addr, &format!("up{i}.bin"), &data).await?;
                }
                let _ = command(&mut c, "QUIT").await;
                Ok::<(), String>(())
            })
            .await
            .map_err(|e| e.to_string())?
        }));
    }
    let mut errs = Vec::new();
    for (i, w) in workers.into_iter().enumerate() {
        match w.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errs.push(format!("session {i}: {e}")),
            Err(e) => errs.push(format!("session {i}: {e}")),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

async fn command(c: &mut Control, line: &str) -> Result<client::Reply, String> {
    c.send_line(line)
        .await
        .map_err(|e| format!("{line}: {e}"))?;
    c.read_reply(IO_LIMIT)
        .await
        .map_err(|e| format!("{line}: {e}"))
}

async fn expect(c: &mut Control, line: &str, code: u16) -> Result<client::Reply, String> {
    let r = command(c, line).await?;
    if r.code != code {
        return Err(format!("{line}: {}", r.lines.join(" / ")));
    }
    Ok(r)
}

async fn login(addr: SocketAddr) -> Result<Control, String> {
    let mut c = Control::connect(addr, IO_LIMIT)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let hello = c
        .read_reply(IO_LIMIT)
        .await
        .map_err(|e| format!("greeting: {e}"))?;
    if hello.code != 220 {
        return Err(format!("greeting: {}", hello.lines.join(" / ")));
    }
    expect(&mut c, "USER test", 331).await?;
    expect(&mut c, "PASS test", 230).await?;
    expect(&mut c, "TYPE I", 200).await?;
    Ok(c)
}

async fn pasv(c: &mut Control, addr: SocketAddr) -> Result<tokio::net::TcpStream, String> {
    let r = expect(c, "PASV", 227).await?;
    let mut to = client::parse_pasv(r.text()).ok_or_else(|| format!("PASV: {}", r.text()))?;
    // The board may advertise no address of its own: use the control peer.
    to.set_ip(addr.ip());
    client::connect(to, IO_LIMIT)
        .await
        .map_err(|e| format!("data connection: {e}"))
}

async fn retr(c: &mut Control, addr: SocketAddr, name: &str) -> Result<Vec<u8>, String> {
    let mut d = pasv(c, addr).await?;
    let r = command(c, &format!("RETR {name}")).await?;
    if !r.is_preliminary() {
        return Err(format!("RETR {name}: {}", r.lines.join(" / ")));
    }
    let data = client::read_all(&mut d, IO_LIMIT)
        .await
        .map_err(|e| format!("RETR {name}: {e}"))?;
    let end = c
        .read_reply(IO_LIMIT)
        .await
        .map_err(|e| format!("RETR {name}: {e}"))?;
    if end.code != 226 {
        return Err(format!("RETR {name}: {}", end.lines.join(" / ")));
    }
    Ok(data)
}

async fn stor(c: &mut Control, addr: SocketAddr, name: &str, data: &[u8]) -> Result<(), String> {
    let mut d = pasv(c, addr).await?;
    let r = command(c, &format!("STOR {name}")).await?;
    if !r.is_preliminary() {
        return Err(format!("STOR {name}: {}", r.lines.join(" / ")));
    }
    client::write_all_and_close(&mut d, data, IO_LIMIT)
        .await
        .map_err(|e| format!("STOR {name}: {e}"))?;
    let end = c
        .read_reply(IO_LIMIT)
        .await
        .map_err(|e| format!("STOR {name}: {e}"))?;
    if end.code != 226 {
        return Err(format!("STOR {name}: {}", end.lines.join(" / ")));
    }
    let size = expect(c, &format!("SIZE {name}"), 213).await?;
    if size.text().trim() != data.len().to_string() {
        return Err(format!(
            "SIZE {name}: {} (sent {})",
            size.text(),
            data.len()
        ));
    }
    Ok(())
}

/// The diag build in QEMU, in a namespace of its own (the qemu target runs
/// the normal build), serving `tree`.
struct DiagBoard {
    child: tokio::process::Child,
    console: PathBuf,
    ns: crate::netns::Netns,
    _dir: tempfile::TempDir,
}

impl DiagBoard {
    async fn start(
        ctx: &Context,
        elf: &Path,
        tree: &Tree,
        name: &str,
    ) -> anyhow::Result<DiagBoard> {
        let qemu = board::find_qemu(board::Which::System).map_err(|n| anyhow!(n.reason))?;
        let dir = tempfile::Builder::new()
            .prefix("harness-footprint-")
            .tempdir()?;
        let image = dir.path().join("sd.img");
        ctx.fixture_image(tree, &image).await?;
        std::fs::create_dir_all(log_dir())?;
        let console = log_dir().join(format!("diag__{}.console", name.replace('/', "__")));
        let _ = std::fs::remove_file(&console);
        let ns = crate::netns::Netns::create("qemu")?;
        let mut cmd = ns.command(board::run_script());
        cmd.args(["--net", &format!("tap:{}", crate::netns::TAP)])
            .arg("--qemu")
            .arg(&qemu.path)
            .arg("--image")
            .arg(&image)
            .arg("--serial")
            .arg(&console)
            .arg("--kernel")
            .arg(elf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let child = cmd.spawn().context("starting the diag board")?;
        let mut b = DiagBoard {
            child,
            console,
            ns,
            _dir: dir,
        };
        let t0 = Instant::now();
        while !b.console().contains(" ready: ftp://") {
            if t0.elapsed() > Duration::from_secs(60) || b.child.try_wait()?.is_some() {
                let _ = b.child.start_kill();
                bail!("the diag board did not boot; console:\n{}", b.console());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(b)
    }

    fn console(&self) -> String {
        std::fs::read_to_string(&self.console).unwrap_or_default()
    }

    /// Stops the board (after it had time to print a last peak); its console.
    async fn stop(mut self) -> String {
        tokio::time::sleep(SETTLE).await;
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        self.console()
    }
}

/// The diag build: the `deepest` scenarios of the normal build played on it
/// (each on a fresh board), then on one board four at once, `DIAG_BYTES`
/// through discard (port 9) and from chargen (port 19), and a 1 MiB
/// sdbench (port 7). Fills in the diag figures of `m`.
async fn diag_run(
    ctx: &Context,
    elf: &Path,
    deepest: &[(crate::scenario::Scenario, Tree)],
    tree: &Tree,
    m: &mut Measured,
) -> anyhow::Result<()> {
    for (s, t) in deepest {
        eprintln!("footprint: {} on the diag build", s.id);
        let b = DiagBoard::start(ctx, elf, t, &s.id).await?;
        let played =
            crate::target::play_in_netns(b.ns.name(), s, crate::netns::board_addr(false), t, false)
                .await;
        let console = b.stop().await;
        match played {
            Ok(p) if p.failures().is_empty() => {}
            Ok(p) => m.problems.push(format!(
                "{} (diag build): {}",
                s.id,
                p.failures().join("; ")
            )),
            Err(e) => m.problems.push(format!("{} (diag build): {e:#}", s.id)),
        }
        m.diag_scenarios = m.diag_scenarios.max(peak_in(&console));
    }
    eprintln!("footprint: the diag build: four at once, discard, chargen, sdbench...");
    let b = DiagBoard::start(ctx, elf, tree, "load").await?;
    let addr = crate::netns::board_addr(false);
    let mut ok = four_at_once(b.ns.name(), addr).await;
    let raw = crate::netns::run_in(b.ns.name(), move || async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let ip = addr.ip();
        let mut d = client::connect(SocketAddr::new(ip, 9), IO_LIMIT)
            .await
            .map_err(|e| format!("discard: {e}"))?;
        client::write_all_and_close(&mut d, &crate::fixture::filler(DIAG_BYTES as u64), IO_LIMIT)
            .await
            .map_err(|e| format!("discard: {e}"))?;
        let mut c = client::connect(SocketAddr::new(ip, 19), IO_LIMIT)
            .await
            .map_err(|e| format!("chargen: {e}"))?;
        let mut got = 0;
        let mut buf = vec![0u8; 64 * 1024];
        while got < DIAG_BYTES {
            let n = tokio::time::timeout(IO_LIMIT, c.read(&mut buf))
                .await
                .map_err(|_| "chargen: silent".to_string())?
                .map_err(|e| format!("chargen: {e}"))?;
            if n == 0 {
                return Err(format!("chargen: closed after {got} bytes"));
            }
            got += n;
        }
        drop(c);
        // sdbench (port 7): 1 MiB written and read back through the volume.
        let mut b = client::connect(SocketAddr::new(ip, 7), IO_LIMIT)
            .await
            .map_err(|e| format!("sdbench: {e}"))?;
        b.write_all(b"1\n")
            .await
            .map_err(|e| format!("sdbench: {e}"))?;
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(120), b.read_to_end(&mut answer))
            .await
            .map_err(|_| "sdbench: no answer in 120 s".to_string())?
            .map_err(|e| format!("sdbench: {e}"))?;
        let answer = String::from_utf8_lossy(&answer);
        if !answer.starts_with("sdbench bytes=") {
            return Err(format!("sdbench answered {:?}", answer.trim()));
        }
        Ok::<(), String>(())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    if let Err(e) = raw {
        ok = match ok {
            Ok(()) => Err(e),
            Err(f) => Err(format!("{f}; {e}")),
        };
    }
    let console = b.stop().await;
    m.diag_ok = ok;
    m.diag = peak_in(&console);
    Ok(())
}

// ---------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    floors: Vec<Floor>,
    notes: Vec<String>,
}

const FLOOR_QEMU: &str = "QEMU firmware: 4 sessions, stack peak + 4 KB margin";
const FLOOR_DIAG: &str = "QEMU diag firmware: 4 sessions, stack peak + 4 KB margin";

fn stack_rule() -> String {
    format!("margin ≥ {STACK_MARGIN}, four at once served")
}

const T_ENGINE: &str = "engine flash";
const T_SESSION: &str = "RAM per session";
const T_FIRMWARE: &str = "firmware";
const T_STACK: &str = "stack on QEMU";

impl Report {
    fn row(
        &mut self,
        table: &'static str,
        item: impl Into<String>,
        values: Vec<Option<u64>>,
        note: &str,
    ) {
        self.rows.push(Row {
            table,
            item: item.into(),
            values,
            note: note.into(),
        });
    }

    fn floor(&mut self, what: &str, value: Option<u64>, rule: String, ok: Option<bool>) {
        self.floors.push(Floor {
            what: what.into(),
            value,
            rule,
            ok,
        });
    }

    fn engine(&mut self, f: &Figures) -> anyhow::Result<()> {
        let g = |k: &str| figure(f, k);
        for (item, k) in [
            (".text", "engine_text"),
            (".rodata", "engine_rodata"),
            (".text + .rodata", "engine_flash"),
        ] {
            self.row(
                T_ENGINE,
                item,
                vec![Some(g(&format!("{k}_z"))?), Some(g(&format!("{k}_s"))?)],
                "engine probe − baseline probe",
            );
        }
        let z = g("engine_flash_z")?;
        self.floor(
            "engine flash at opt-level z",
            Some(z),
            format!("< {ENGINE_FLASH_FLOOR}"),
            Some(z < ENGINE_FLASH_FLOOR),
        );

        let slot = g("session_slot")?;
        let (crx, ctx_, drx, dtx) = (
            g("control_rx")?,
            g("control_tx")?,
            g("data_rx")?,
            g("data_tx")?,
        );
        let sock = 2 * g("socket_storage")?;
        self.row(
            T_SESSION,
            "engine state (a session slot of the server)",
            vec![Some(slot)],
            "",
        );
        self.row(
            T_SESSION,
            "socket buffers",
            vec![Some(crx + ctx_ + drx + dtx)],
            &format!("control rx {crx} + tx {ctx_}, data rx {drx} + tx {dtx}"),
        );
        self.row(
            T_SESSION,
            "smoltcp socket state (2 sockets)",
            vec![Some(sock)],
            "",
        );
        self.row(
            T_SESSION,
            "one session in all",
            vec![Some(slot + crx + ctx_ + drx + dtx + sock)],
            "",
        );
        let sessions = g("app_sessions")?;
        self.row(
            T_SESSION,
            "shared: the server without its sessions",
            vec![Some(g("server_without_sessions")?)],
            "command line, reply, configuration",
        );
        self.row(
            T_SESSION,
            "shared: the engine's data buffer",
            vec![Some(g("engine_buf")?)],
            "",
        );
        self.row(
            T_SESSION,
            "ftpd-app Resources (all socket buffers)",
            vec![Some(g("resources")?)],
            &format!(
                "{} sockets for {sessions} sessions; {} of it in .data",
                g("app_sockets")?,
                g("resources_data")?
            ),
        );
        self.floor(
            "engine state of one session",
            Some(slot),
            format!("< {SESSION_FLOOR}"),
            Some(slot < SESSION_FLOOR),
        );
        Ok(())
    }

    fn firmware(&mut self, q: &Firmware, d: &Firmware, s: &Firmware) {
        let all = |f: &dyn Fn(&Firmware) -> u64| vec![Some(f(q)), Some(f(d)), Some(f(s))];
        self.row(
            T_FIRMWARE,
            ".vector_table + .text",
            all(&|f| f.vectors + f.text),
            "",
        );
        self.row(T_FIRMWARE, ".rodata", all(&|f| f.rodata), "");
        self.row(T_FIRMWARE, ".data", all(&|f| f.data), "");
        self.row(
            T_FIRMWARE,
            "flash (vectors + .text + .rodata + .data)",
            all(&|f| f.flash()),
            &format!(
                "of {} KiB (QEMU) / {} KiB (STM32F4)",
                QEMU_FLASH / 1024,
                STM32_FLASH / 1024
            ),
        );
        self.row(T_FIRMWARE, ".bss", all(&|f| f.bss), "");
        self.row(
            T_FIRMWARE,
            "static RAM (.data + .bss)",
            all(&|f| f.ram()),
            &format!(
                "of {} KiB SRAM (QEMU) / {} KiB (STM32F4)",
                QEMU_SRAM / 1024,
                STM32_SRAM / 1024
            ),
        );
        self.row(
            T_FIRMWARE,
            "stack area",
            all(&|f| f.stack),
            &format!(
                "QEMU: SRAM − statics − 64 B of boot parameters; STM32F4: all of CCM ({} KiB)",
                STM32_CCM / 1024
            ),
        );
    }

    fn stack(&mut self, q: &Firmware, d: &Firmware, m: &Result<Measured, String>) {
        let m = match m {
            Err(why) => {
                self.row(T_STACK, "stack peak", vec![None, None], why);
                for what in [FLOOR_QEMU, FLOOR_DIAG] {
                    self.floor(what, None, stack_rule(), None);
                }
                self.notes.push(format!("stack peak {why}"));
                return;
            }
            Ok(m) => m,
        };
        let normal = m.peak();
        let diag = m.diag.max(m.diag_scenarios);
        let note = match &m.scenarios {
            Some((_, s)) => format!("{} scenarios played, deepest: {s}", m.played),
            None => format!("{} scenarios played, no peak on the consoles", m.played),
        };
        self.row(
            T_STACK,
            "peak over the scenarios",
            vec![m.scenarios.as_ref().map(|s| s.0), m.diag_scenarios],
            &format!("{note}; diag: the {DIAG_SCENARIOS} deepest of them"),
        );
        self.row(
            T_STACK,
            "peak under four sessions at once",
            vec![m.four, m.diag],
            "2 × RETR + 2 × STOR of 1 MiB; diag: then 1 MiB through discard, from chargen, and sdbench of 1 MiB",
        );
        self.row(
            T_STACK,
            "stack peak",
            vec![normal, diag],
            "the larger of the two above",
        );
        self.row(
            T_STACK,
            "stack area",
            vec![Some(q.stack), Some(d.stack)],
            "",
        );
        let margin = |area: u64, peak: Option<u64>| peak.map(|p| area.saturating_sub(p));
        self.row(
            T_STACK,
            "margin (stack area − peak)",
            vec![margin(q.stack, normal), margin(d.stack, diag)],
            &format!("floor ≥ {STACK_MARGIN}"),
        );
        self.row(
            T_STACK,
            "SRAM in use: statics + peak",
            vec![normal.map(|p| q.ram() + p), diag.map(|p| d.ram() + p)],
            &format!("of {QEMU_SRAM}"),
        );
        for (what, fw, peak, load) in [
            (FLOOR_QEMU, q, normal, &m.four_ok),
            (FLOOR_DIAG, d, diag, &m.diag_ok),
        ] {
            let mg = margin(fw.stack, peak);
            let ok = match (mg, load) {
                (Some(mg), Ok(())) => Some(mg >= STACK_MARGIN),
                (Some(_), Err(_)) => Some(false),
                (None, _) => None,
            };
            self.floor(what, mg, stack_rule(), ok);
            if let Err(e) = load {
                self.notes.push(format!("{what}: the load failed: {e}"));
            }
        }
        for p in &m.problems {
            self.notes.push(format!("scenario {p}"));
        }
        self.notes.push(format!(
            "stack measured in {:.0} s (QEMU 7.2 on TAP; consoles in target/harness/logs/footprint/)",
            m.seconds
        ));
    }

    fn markdown(&self, engine: &Figures, elapsed: Duration) -> String {
        let mut s = String::new();
        let rustc = engine.get("rustc").map_or("?", String::as_str);
        let _ = writeln!(s, "## Footprint\n");
        let _ = writeln!(
            s,
            "`cargo run -p harness -- bench --footprint`, rustc {rustc}, release builds (LTO, one codegen unit, panic = abort); {:.0} s.\n",
            elapsed.as_secs_f64()
        );
        let tables: [(&str, &str, &[&str]); 4] = [
            (
                T_ENGINE,
                "The engine's flash, thumbv7m-none-eabi (bytes)",
                &["opt-level z", "opt-level s"],
            ),
            (
                T_SESSION,
                "RAM one session costs (bytes, thumbv7m)",
                &["bytes"],
            ),
            (
                T_FIRMWARE,
                "Whole firmware (bytes, opt-level s)",
                &["QEMU lm3s6965", "QEMU lm3s6965 diag", "STM32F4-Discovery"],
            ),
            (
                T_STACK,
                "Stack high-water mark on QEMU (painted stack, bytes)",
                &["firmware", "diag firmware"],
            ),
        ];
        for (key, title, cols) in tables {
            let _ = writeln!(s, "### {title}\n");
            let _ = writeln!(s, "| | {} | |", cols.join(" | "));
            let _ = writeln!(s, "|---|{}---|", "---:|".repeat(cols.len()));
            for r in self.rows.iter().filter(|r| r.table == key) {
                let v: Vec<String> = r
                    .values
                    .iter()
                    .map(|v| v.map_or("–".into(), group))
                    .collect();
                let _ = writeln!(s, "| {} | {} | {} |", r.item, v.join(" | "), r.note);
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s, "### Floors (issue 6)\n");
        let _ = writeln!(s, "| floor | value | rule | verdict |");
        let _ = writeln!(s, "|---|---:|---|---|");
        for f in &self.floors {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                f.what,
                f.value.map_or("–".into(), group),
                f.rule,
                match f.ok {
                    Some(true) => "ok",
                    Some(false) => "NOT MET",
                    None => "not measured",
                }
            );
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s);
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
        }
        s
    }

    fn csv(&self) -> String {
        let mut s = String::from("table,item,column,bytes,note\n");
        let cols: BTreeMap<&str, &[&str]> = [
            (T_ENGINE, &["opt-level z", "opt-level s"][..]),
            (T_SESSION, &["bytes"][..]),
            (T_FIRMWARE, &["qemu", "qemu-diag", "stm32f4"][..]),
            (T_STACK, &["qemu", "qemu-diag"][..]),
        ]
        .into_iter()
        .collect();
        for r in &self.rows {
            for (i, v) in r.values.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "{},{},{},{},{}",
                    csv_field(r.table),
                    csv_field(&r.item),
                    cols[r.table].get(i).copied().unwrap_or(""),
                    v.map_or(String::new(), |v| v.to_string()),
                    csv_field(&r.note)
                );
            }
        }
        for f in &self.floors {
            let _ = writeln!(
                s,
                "floor,{},{},{},{}",
                csv_field(&f.what),
                match f.ok {
                    Some(true) => "ok",
                    Some(false) => "NOT MET",
                    None => "not measured",
                },
                f.value.map_or(String::new(), |v| v.to_string()),
                csv_field(&f.rule)
            );
        }
        s
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// 12345 → "12 345".
fn group(n: u64) -> String {
    let d = n.to_string();
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_are_read_from_a_console() {
        let c = "ftpd lm3s6965 v0.1.0: booting\n  ram: ...\nstack: peak 10524 bytes of 22576\nconsole: stack: peak 12100 bytes of 22576\nstack: peak x\n";
        assert_eq!(peak_in(c), Some(12100));
        assert_eq!(peak_in("no peak here"), None);
    }

    #[test]
    fn figures_need_their_header() {
        let f = parse_figures("key,value\nengine_flash_z,123\nrustc,1.95.0\n").unwrap();
        assert_eq!(figure(&f, "engine_flash_z").unwrap(), 123);
        assert!(figure(&f, "missing").is_err());
        assert!(figure(&f, "rustc").is_err());
        assert!(parse_figures("engine_flash_z,123\n").is_err());
        assert!(parse_figures("key,value\nno comma\n").is_err());
    }

    #[test]
    fn numbers_are_grouped_and_csv_quoted() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1 000");
        assert_eq!(group(1234567), "1 234 567");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("plain"), "plain");
    }

    #[test]
    fn a_damaged_elf_is_an_error() {
        assert!(Elf::parse(b"not an elf").is_err());
        let mut b = vec![0u8; 52];
        b[..6].copy_from_slice(b"\x7fELF\x01\x01");
        b[32..36].copy_from_slice(&1000u32.to_le_bytes());
        b[48..50].copy_from_slice(&3u16.to_le_bytes());
        b[46..48].copy_from_slice(&40u16.to_le_bytes());
        assert!(Elf::parse(&b).is_err());
    }
}
