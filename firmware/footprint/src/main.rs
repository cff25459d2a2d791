//! `cargo run --release` (in firmware/footprint): the engine's footprint on
//! `thumbv7m-none-eabi`, as issue 6 asks for it.
//!
//! 1. Builds the probe firmwares (see the crate docs, `src/lib.rs`) with the
//!    profiles `probe-z` (`opt-level = "z"`) and `probe-s` (`"s"`), LTO and
//!    one codegen unit as the boards build.
//! 2. Reads their ELF files (section headers and symbol table; no binutils
//!    needed) and prints:
//!    - the engine's flash, `.text + .rodata` of `engine` minus those of
//!      `baseline` (why a difference: see below), at both opt-levels, with
//!      its split by crate and the largest symbols;
//!    - the RAM one session costs: the engine's state
//!      (`ftpd::session::Session`, as the server holds it), and the socket
//!      buffers and smoltcp socket state that `ftpd-app` gives a session;
//!    - whether `ftpd_app::Resources` costs flash (it must not: `.data` of
//!      the `resources` probe is empty).
//! 3. Exits non-zero when a floor is broken: one session's engine state
//!    under 1 KB, `Resources` in `.bss`; with `--strict`, also the engine
//!    under 16 KB of flash at `opt-level = "z"`.
//!
//! Why a difference and not a sum of the engine's symbols: with LTO, code of
//! `core` that the engine calls (formatting, `memcpy`, 64-bit division, the
//! IP address parser and printer) and its constants (reply texts, lookup
//! tables, which are anonymous in `.rodata`) are what a firmware pays for
//! the engine too, and only a difference against the same firmware without
//! the engine counts them. The split by crate below it says how much of the
//! difference is the engine's own code (`ftpd::` symbols) and how much it
//! pulls in. It is an upper bound for a real board, which already has some
//! of that `core` code for its own needs.
//!
//! Options: `--strict` (see above), `--no-build` (read the ELF files of an
//! earlier run), `--top N` (largest symbols listed, default 25).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

const TARGET: &str = "thumbv7m-none-eabi";
const PROFILES: [(&str, &str); 2] = [("probe-z", "z"), ("probe-s", "s")];
/// Issue 6's floors.
const ENGINE_FLASH_FLOOR: u64 = 16 * 1024;
const SESSION_FLOOR: u64 = 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--csv") {
        let build = !args.iter().any(|a| a == "--no-build");
        return match csv(build) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("footprint: {e}");
                ExitCode::from(2)
            }
        };
    }
    let strict = args.iter().any(|a| a == "--strict");
    let build = !args.iter().any(|a| a == "--no-build");
    let top = args
        .iter()
        .position(|a| a == "--top")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(25);
    if let Some(a) = args
        .iter()
        .find(|a| a.starts_with("--") && !matches!(a.as_str(), "--strict" | "--no-build" | "--top"))
    {
        eprintln!("unknown option {a}; options: --strict, --no-build, --top N, --csv");
        return ExitCode::from(2);
    }
    match run(strict, build, top) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("footprint: {e}");
            ExitCode::from(2)
        }
    }
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir().join("target"))
}

fn elf_path(profile: &str, bin: &str) -> PathBuf {
    target_dir().join(TARGET).join(profile).join(bin)
}

fn cargo_build(profile: &str, bins: &[&str]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(crate_dir()).args([
        "build",
        "--quiet",
        "--target",
        TARGET,
        "--profile",
        profile,
    ]);
    for b in bins {
        cmd.args(["--bin", b]);
    }
    let st = cmd.status().map_err(|e| format!("running cargo: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("building the probes ({profile}) failed"))
    }
}

struct Probe {
    elf: Elf,
}

impl Probe {
    fn load(profile: &str, bin: &str) -> Result<Probe, String> {
        let path = elf_path(profile, bin);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let elf = Elf::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Probe { elf })
    }
    fn section(&self, name: &str) -> u64 {
        self.elf
            .sections
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.size)
            .sum()
    }
    /// `.text + .rodata`.
    fn code(&self) -> u64 {
        self.section(".text") + self.section(".rodata")
    }
    /// The length of the `FOOTPRINT_*` marker array `name`.
    fn marker(&self, name: &str) -> Result<u64, String> {
        self.elf
            .symbols
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.size)
            .ok_or_else(|| format!("symbol {name} missing from the probe"))
    }
    /// Bytes of `.text` and `.rodata` per crate, by symbol.
    fn by_crate(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for s in self.code_symbols() {
            *m.entry(crate_of(&s.name)).or_insert(0) += s.size;
        }
        m
    }
    fn code_symbols(&self) -> impl Iterator<Item = &Symbol> {
        let code: Vec<usize> = self
            .elf
            .sections
            .iter()
            .enumerate()
            .filter(|(_, s)| s.name == ".text" || s.name == ".rodata")
            .map(|(i, _)| i)
            .collect();
        self.elf
            .symbols
            .iter()
            .filter(move |s| s.size > 0 && code.contains(&usize::from(s.shndx)))
    }
}

fn run(strict: bool, build: bool, top: usize) -> Result<bool, String> {
    if build {
        let t = std::time::Instant::now();
        cargo_build("probe-z", &["engine", "baseline", "resources"])?;
        cargo_build("probe-s", &["engine", "baseline"])?;
        eprintln!("(probes built in {:.1} s)", t.elapsed().as_secs_f64());
    }
    let mut ok = true;
    let mut failures = Vec::new();

    println!(
        "ftpd engine footprint, {TARGET} (rustc {}), LTO, one codegen unit, panic = abort",
        rustc_version()
    );
    println!();
    println!(
        "{:<44} {:>12} {:>12}",
        "flash (bytes)", "opt-level z", "opt-level s"
    );
    let mut rows: Vec<(String, Vec<u64>)> = Vec::new();
    let mut engines = Vec::new();
    let mut splits = Vec::new();
    for (profile, _) in PROFILES {
        let engine = Probe::load(profile, "engine")?;
        let base = Probe::load(profile, "baseline")?;
        engines.push((
            engine.code().saturating_sub(base.code()),
            engine.section(".text") - base.section(".text"),
            engine.section(".rodata") - base.section(".rodata"),
        ));
        let (e, b) = (engine.by_crate(), base.by_crate());
        let mut split: BTreeMap<String, i64> = BTreeMap::new();
        for (k, v) in &e {
            *split.entry(k.clone()).or_insert(0) += *v as i64;
        }
        for (k, v) in &b {
            *split.entry(k.clone()).or_insert(0) -= *v as i64;
        }
        let named = |p: &Probe| p.code_symbols().map(|s| s.size).sum::<u64>() as i64;
        *split
            .entry("(no symbol: string literals, padding)".into())
            .or_insert(0) +=
            (engine.code() as i64 - named(&engine)) - (base.code() as i64 - named(&base));
        splits.push(split);
    }
    rows.push((
        "engine: .text".into(),
        engines.iter().map(|e| e.1).collect(),
    ));
    rows.push((
        "engine: .rodata".into(),
        engines.iter().map(|e| e.2).collect(),
    ));
    rows.push((
        "engine: .text + .rodata (engine - baseline)".into(),
        engines.iter().map(|e| e.0).collect(),
    ));
    for (name, v) in &rows {
        println!("{name:<44} {:>12} {:>12}", v[0], v[1]);
    }
    let z = engines[0].0;
    let verdict = if z < ENGINE_FLASH_FLOOR {
        "ok".to_string()
    } else {
        format!("NOT MET, over by {}", z - ENGINE_FLASH_FLOOR)
    };
    println!(
        "{:<44} {:>12}   {verdict}",
        "  floor at z (issue 6): under", ENGINE_FLASH_FLOOR
    );
    if z >= ENGINE_FLASH_FLOOR {
        failures.push(format!(
            "the engine takes {z} bytes of flash at opt-level z (floor: under {ENGINE_FLASH_FLOOR})"
        ));
        if strict {
            ok = false;
        }
    }
    println!();
    println!("of which, by crate (symbol sizes, engine - baseline):");
    let keys: Vec<&String> = splits[0]
        .keys()
        .chain(splits[1].keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut keyed: Vec<(&String, i64, i64)> = keys
        .into_iter()
        .map(|k| {
            (
                k,
                *splits[0].get(k).unwrap_or(&0),
                *splits[1].get(k).unwrap_or(&0),
            )
        })
        .collect();
    keyed.sort_by_key(|(_, z, _)| -z);
    for (k, a, b) in keyed.iter().filter(|(_, a, b)| *a != 0 || *b != 0) {
        println!("  {k:<42} {a:>12} {b:>12}");
    }

    // RAM.
    let engine = Probe::load("probe-z", "engine")?;
    let res = Probe::load("probe-z", "resources")?;
    let session = engine.marker("FOOTPRINT_SESSION")?;
    let slot = engine.marker("FOOTPRINT_SESSION_SLOT")?;
    let server = engine.marker("FOOTPRINT_SERVER")?;
    let server0 = engine.marker("FOOTPRINT_SERVER_0")?;
    let sessions = 4u64;
    let per_slot = (server - server0) / sessions;
    let crx = res.marker("FOOTPRINT_CONTROL_RX")?;
    let ctx = res.marker("FOOTPRINT_CONTROL_TX")?;
    let drx = res.marker("FOOTPRINT_DATA_RX")?;
    let dtx = res.marker("FOOTPRINT_DATA_TX")?;
    let sock = res.marker("FOOTPRINT_SOCKET_STORAGE")?;
    let buffers = crx + ctx + drx + dtx;
    let app_sessions = res.marker("FOOTPRINT_MAX_SESSIONS")?;
    let sockets = res.marker("FOOTPRINT_SOCKETS")?;
    let resources = res.marker("FOOTPRINT_RESOURCES")?;
    let engine_buf = res.marker("FOOTPRINT_ENGINE_BUF")?;
    println!();
    println!("RAM per session (bytes, {TARGET})");
    println!(
        "  {:<66} {:>8}",
        "engine state: ftpd::session::Session", session
    );
    println!(
        "  {:<66} {:>8}",
        "  as the server holds it (Option<Session>, one slot)",
        per_slot.max(slot)
    );
    println!(
        "  {:<66} {:>8}   {}",
        "  floor (issue 6): under",
        SESSION_FLOOR,
        if per_slot.max(slot) < SESSION_FLOOR {
            "ok"
        } else {
            "NOT MET"
        }
    );
    if per_slot.max(slot) >= SESSION_FLOOR {
        ok = false;
        failures.push(format!(
            "one session's engine state is {} bytes (floor: under {SESSION_FLOOR})",
            per_slot.max(slot)
        ));
    }
    println!(
        "  {:<66} {:>8}",
        format!("socket buffers (ftpd-app): control {crx} + {ctx}, data {drx} + {dtx}"),
        buffers
    );
    println!(
        "  {:<66} {:>8}",
        format!("smoltcp socket state: 2 x SocketStorage ({sock})"),
        2 * sock
    );
    println!(
        "  {:<66} {:>8}",
        "one session in all",
        per_slot.max(slot) + buffers + 2 * sock
    );
    println!("shared by all sessions");
    println!(
        "  {:<66} {:>8}",
        format!("Server<_, _, {sessions}> without its session slots (line, reply, config)"),
        server0
    );
    println!(
        "  {:<66} {:>8}",
        "engine data buffer (ftpd-app ENGINE_BUF)", engine_buf
    );
    println!(
        "  {:<66} {:>8}",
        format!(
            "ftpd-app Resources ({sockets} sockets for {app_sessions} sessions + 1 spare each kind)"
        ),
        resources
    );
    let data = res.section(".data");
    println!(
        "  {:<66} {:>8}   {}",
        "  of it in .data (flash for an initial image; must be 0)",
        data,
        if data == 0 {
            "ok: all in .bss"
        } else {
            "NOT MET"
        }
    );
    if data != 0 {
        ok = false;
        failures.push(format!(
            "ftpd_app::Resources is not all zeros: {data} bytes of .data"
        ));
    }

    println!();
    println!("largest symbols of the engine probe at opt-level z (bytes, crate):");
    let mut syms: Vec<&Symbol> = engine.code_symbols().collect();
    syms.sort_by_key(|s| std::cmp::Reverse(s.size));
    for s in syms.iter().take(top) {
        println!(
            "  {:>6}  {:<18} {}",
            s.size,
            crate_of(&s.name),
            short(&demangle(&s.name), 96)
        );
    }

    println!();
    if failures.is_empty() {
        println!("all floors met");
    }
    for f in &failures {
        println!("floor not met: {f}");
    }
    if !strict && !ok {
        println!("(failing: the engine state or Resources floors are enforced always)");
    }
    Ok(ok)
}

/// `--csv`: the figures of the table as `key,value` lines (bytes), for
/// `harness bench --footprint`, which prints and checks them itself. No
/// verdicts here and always exit 0 once the probes are read.
fn csv(build: bool) -> Result<(), String> {
    if build {
        cargo_build("probe-z", &["engine", "baseline", "resources"])?;
        cargo_build("probe-s", &["engine", "baseline"])?;
    }
    let mut rows: Vec<(String, String)> = vec![
        ("target".into(), TARGET.into()),
        ("rustc".into(), rustc_version()),
    ];
    let mut put = |k: &str, v: u64| rows.push((k.into(), v.to_string()));
    for (profile, level) in PROFILES {
        let engine = Probe::load(profile, "engine")?;
        let base = Probe::load(profile, "baseline")?;
        let text = engine
            .section(".text")
            .saturating_sub(base.section(".text"));
        let rodata = engine
            .section(".rodata")
            .saturating_sub(base.section(".rodata"));
        put(&format!("engine_text_{level}"), text);
        put(&format!("engine_rodata_{level}"), rodata);
        put(
            &format!("engine_flash_{level}"),
            engine.code().saturating_sub(base.code()),
        );
    }
    let engine = Probe::load("probe-z", "engine")?;
    let res = Probe::load("probe-z", "resources")?;
    let sessions = 4u64;
    let server = engine.marker("FOOTPRINT_SERVER")?;
    let server0 = engine.marker("FOOTPRINT_SERVER_0")?;
    let slot = engine.marker("FOOTPRINT_SESSION_SLOT")?;
    put("session", engine.marker("FOOTPRINT_SESSION")?);
    put("session_slot", ((server - server0) / sessions).max(slot));
    put("server_sessions", sessions);
    put("server_without_sessions", server0);
    for (k, m) in [
        ("control_rx", "FOOTPRINT_CONTROL_RX"),
        ("control_tx", "FOOTPRINT_CONTROL_TX"),
        ("data_rx", "FOOTPRINT_DATA_RX"),
        ("data_tx", "FOOTPRINT_DATA_TX"),
        ("socket_storage", "FOOTPRINT_SOCKET_STORAGE"),
        ("app_sessions", "FOOTPRINT_MAX_SESSIONS"),
        ("app_sockets", "FOOTPRINT_SOCKETS"),
        ("resources", "FOOTPRINT_RESOURCES"),
        ("engine_buf", "FOOTPRINT_ENGINE_BUF"),
    ] {
        put(k, res.marker(m)?);
    }
    put("resources_data", res.section(".data"));
    println!("key,value");
    for (k, v) in rows {
        println!("{k},{v}");
    }
    Ok(())
}

fn rustc_version() -> String {
    Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(String::from))
        .unwrap_or_else(|| "?".into())
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

// ---------------------------------------------------------------------------
// Symbol names
// ---------------------------------------------------------------------------

/// A Rust symbol name made readable (either mangling, without the hash);
/// other names as they are.
fn demangle(name: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(name))
}

/// The crate a symbol belongs to: the first path component of a Rust name
/// (the implementing type's crate for `<T as Trait>::f`), the runtime for
/// the C-named helpers, `(unnamed constants)` for anonymous data.
fn crate_of(name: &str) -> String {
    let d = demangle(name);
    if name.starts_with("_ZN") || name.starts_with("_R") {
        let mut t = d
            .trim_start_matches(['<', '&', '*', '(', '[', ' '])
            .trim_start_matches("mut ");
        if let Some(rest) = t.strip_prefix("impl ") {
            // `<impl Trait for Type>`: the type's crate.
            t = rest
                .split_once(" for ")
                .map_or(rest, |(_, ty)| ty)
                .trim_start_matches(['&', '[', '(', '*']);
        }
        let first = t
            .split([':', '<', ' ', '>', ',', ';', ']', ')'])
            .next()
            .unwrap_or("");
        let is_crate = !first.is_empty()
            && first
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        let primitive = matches!(
            first,
            "u8" | "u16"
                | "u32"
                | "u64"
                | "u128"
                | "usize"
                | "i8"
                | "i16"
                | "i32"
                | "i64"
                | "i128"
                | "isize"
                | "char"
                | "str"
                | "bool"
        );
        if is_crate && !primitive {
            return first.into();
        }
        // `<T as Trait>` with a generic or primitive `T`: the trait's crate.
        if let Some((_, tr)) = t.split_once(" as ") {
            let tr = tr.trim_start_matches(['&', '*']);
            let c = tr.split([':', '<', ' ', '>']).next().unwrap_or("");
            if !c.is_empty() {
                return c.into();
            }
        }
        return if primitive {
            "core".into()
        } else {
            "(other)".into()
        };
    }
    if name.starts_with(".L") || name.starts_with("anon.") {
        return "(unnamed constants)".into();
    }
    if name.starts_with("__aeabi")
        || name.starts_with("__")
        || ["memcpy", "memmove", "memset", "memcmp", "bcmp"].contains(&name)
    {
        return "compiler_builtins".into();
    }
    if name.starts_with("OUTLINED_FUNCTION") {
        return "(outlined by LLVM)".into();
    }
    "(probe)".into()
}

// ---------------------------------------------------------------------------
// ELF (32-bit, little-endian: what thumbv7m-none-eabi produces)
// ---------------------------------------------------------------------------

struct Section {
    name: String,
    size: u64,
}

struct Symbol {
    name: String,
    size: u64,
    shndx: u16,
}

struct Elf {
    sections: Vec<Section>,
    symbols: Vec<Symbol>,
}

impl Elf {
    fn parse(b: &[u8]) -> Result<Elf, String> {
        if b.len() < 52 || &b[..4] != b"\x7fELF" || b[4] != 1 || b[5] != 1 {
            return Err("not a 32-bit little-endian ELF file".into());
        }
        let u16_at = |o: usize| -> Result<u16, String> {
            b.get(o..o + 2)
                .map(|s| u16::from_le_bytes([s[0], s[1]]))
                .ok_or_else(|| "truncated ELF".to_string())
        };
        let u32_at = |o: usize| -> Result<u32, String> {
            b.get(o..o + 4)
                .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
                .ok_or_else(|| "truncated ELF".to_string())
        };
        let shoff = u32_at(32)? as usize;
        let shentsize = usize::from(u16_at(46)?);
        let shnum = usize::from(u16_at(48)?);
        let shstrndx = usize::from(u16_at(50)?);
        struct Raw {
            name: u32,
            kind: u32,
            offset: usize,
            size: usize,
            link: u32,
        }
        let mut raw = Vec::new();
        for i in 0..shnum {
            let h = shoff + i * shentsize;
            raw.push(Raw {
                name: u32_at(h)?,
                kind: u32_at(h + 4)?,
                offset: u32_at(h + 16)? as usize,
                size: u32_at(h + 20)? as usize,
                link: u32_at(h + 24)?,
            });
        }
        let cstr = |table: &Raw, at: u32| -> String {
            let start = table.offset + at as usize;
            let end = b[start.min(b.len())..]
                .iter()
                .position(|&c| c == 0)
                .map_or(b.len(), |n| start + n);
            String::from_utf8_lossy(&b[start.min(b.len())..end]).into_owned()
        };
        let shstr = raw.get(shstrndx).ok_or("no section name table")?;
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
                .get(s.link as usize)
                .ok_or("symbol table without strings")?;
            for k in 0..s.size / 16 {
                let e = s.offset + k * 16;
                symbols.push(Symbol {
                    name: cstr(strtab, u32_at(e)?),
                    size: u64::from(u32_at(e + 8)?),
                    shndx: u16_at(e + 14)?,
                });
            }
        }
        Ok(Elf { sections, symbols })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names_are_demangled_and_attributed() {
        let f = "_ZN4ftpd7session20Session$LT$K$C$F$GT$4poll17h2f4c4b31ded2a93aE";
        assert_eq!(demangle(f), "ftpd::session::Session<K,F>::poll");
        assert_eq!(crate_of(f), "ftpd");
        let t = "_ZN59_$LT$ftpd..storage..Error$u20$as$u20$core..fmt..Display$GT$3fmt17ha22b85da5cd3a6a1E";
        assert_eq!(
            demangle(t),
            "<ftpd::storage::Error as core::fmt::Display>::fmt"
        );
        assert_eq!(crate_of(t), "ftpd");
        let v0 = "_RNvXsj_NtNtCs2fZl91Oq0qp_4core3net7ip_addrNtB5_8Ipv6AddrNtNtB9_3fmt7Display3fmt";
        assert_eq!(
            demangle(v0),
            "<core::net::ip_addr::Ipv6Addr as core::fmt::Display>::fmt"
        );
        assert_eq!(crate_of(v0), "core");
        let v0 = "_RNvNtNtCseL1MqMlhvy0_17compiler_builtins3int19specialized_div_rem11u64_div_rem";
        assert_eq!(crate_of(v0), "compiler_builtins");
        let v0 = "_RNvXsi_NtNtNtCs2fZl91Oq0qp_4core3fmt3num3impyNtB9_7Display3fmt";
        assert_eq!(crate_of(v0), "core");
        assert_eq!(crate_of("__aeabi_memcpy"), "compiler_builtins");
        assert_eq!(crate_of(".Lanon.f9e6bc70.215"), "(unnamed constants)");
        assert_eq!(crate_of("_start"), "(probe)");
    }

    #[test]
    fn a_handmade_elf_is_read() {
        // Header, then three sections: null, .text (12 bytes), .shstrtab.
        let names = b"\0.text\0.shstrtab\0";
        let mut b = vec![0u8; 52];
        b[..6].copy_from_slice(b"\x7fELF\x01\x01");
        let shoff = 52 + names.len();
        b.extend_from_slice(names);
        b[32..36].copy_from_slice(&(shoff as u32).to_le_bytes());
        b[46..48].copy_from_slice(&40u16.to_le_bytes());
        b[48..50].copy_from_slice(&3u16.to_le_bytes());
        b[50..52].copy_from_slice(&2u16.to_le_bytes());
        let mut sh = |name: u32, kind: u32, off: u32, size: u32| {
            let mut h = [0u8; 40];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[16..20].copy_from_slice(&off.to_le_bytes());
            h[20..24].copy_from_slice(&size.to_le_bytes());
            b.extend_from_slice(&h);
        };
        sh(0, 0, 0, 0);
        sh(1, 1, 0, 12);
        sh(7, 3, 52, names.len() as u32);
        let elf = Elf::parse(&b).unwrap();
        let names: Vec<&str> = elf.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["", ".text", ".shstrtab"]);
        assert_eq!(elf.sections[1].size, 12);
        assert!(elf.symbols.is_empty());
        assert!(Elf::parse(b"not an elf").is_err());
    }
}
