//! The firmware's flash and RAM use, read from the release ELF's section
//! headers (no binutils needed), and checks that the memory map holds: it
//! fits the STM32F407VG and nothing but the stack is in CCM, where the
//! Ethernet DMA cannot reach.
//!
//! `cargo footprint` (an alias in .cargo/config.toml) builds the firmware
//! and prints the table; `cargo test-host` runs it with the unit tests.

use std::path::PathBuf;
use std::process::Command;

const FLASH: (u32, u32) = (0x0800_0000, 1024 * 1024);
const SRAM: (u32, u32) = (0x2000_0000, 128 * 1024);
const CCM: (u32, u32) = (0x1000_0000, 64 * 1024);
const SHF_ALLOC: u32 = 2;
const SHT_NOBITS: u32 = 8;

struct Section {
    name: String,
    kind: u32,
    flags: u32,
    addr: u32,
    size: u32,
}

fn within(addr: u32, region: (u32, u32)) -> bool {
    addr >= region.0 && addr - region.0 < region.1
}

fn firmware() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .current_dir(&dir)
        .args(["build", "--release", "--target", "thumbv7em-none-eabihf"])
        .status()
        .expect("running cargo build for the firmware");
    assert!(st.success(), "firmware build failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| dir.join("target"));
    target.join("thumbv7em-none-eabihf/release/board-stm32f4")
}

/// Section headers of a little-endian ELF32 file.
fn sections(elf: &[u8]) -> Vec<Section> {
    assert_eq!(
        &elf[..6],
        b"\x7fELF\x01\x01",
        "not a little-endian ELF32 file"
    );
    let half = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let word = |o: usize| u32::from_le_bytes([elf[o], elf[o + 1], elf[o + 2], elf[o + 3]]);
    let (shoff, shentsize, shnum, shstrndx) =
        (word(0x20) as usize, half(0x2E), half(0x30), half(0x32));
    let header = |i: usize| shoff + i * shentsize;
    let names = word(header(shstrndx) + 0x10) as usize;
    (0..shnum)
        .map(|i| {
            let h = header(i);
            let start = names + word(h) as usize;
            let len = elf[start..].iter().position(|&b| b == 0).unwrap();
            Section {
                name: String::from_utf8_lossy(&elf[start..start + len]).into_owned(),
                kind: word(h + 0x04),
                flags: word(h + 0x08),
                addr: word(h + 0x0C),
                size: word(h + 0x14),
            }
        })
        .collect()
}

#[test]
fn firmware_fits_the_chip() {
    let elf = std::fs::read(firmware()).unwrap();
    let all = sections(&elf);
    let loaded: Vec<&Section> = all
        .iter()
        .filter(|s| s.flags & SHF_ALLOC != 0 && s.size > 0)
        .collect();

    // Flash holds everything in flash plus the initial values of .data.
    let flash: u32 = loaded
        .iter()
        .filter(|s| within(s.addr, FLASH) || (within(s.addr, SRAM) && s.kind != SHT_NOBITS))
        .map(|s| s.size)
        .sum();
    let sram: u32 = loaded
        .iter()
        .filter(|s| within(s.addr, SRAM))
        .map(|s| s.size)
        .sum();
    let in_ccm: Vec<&str> = loaded
        .iter()
        .filter(|s| within(s.addr, CCM))
        .map(|s| s.name.as_str())
        .collect();
    let size = |n: &str| {
        all.iter()
            .filter(|s| s.name == n)
            .map(|s| s.size)
            .sum::<u32>()
    };

    println!("board-stm32f4 release firmware (thumbv7em-none-eabihf):");
    println!("  {:<8} {:>8} {:>9} {:>6}", "region", "used", "of", "use");
    for (name, used, total) in [("flash", flash, FLASH.1), ("SRAM", sram, SRAM.1)] {
        println!(
            "  {name:<8} {used:>8} {total:>9} {:>5.1}%",
            f64::from(used) * 100.0 / f64::from(total)
        );
    }
    println!("  {:<8} {:>8} {:>9}  (all of CCM)", "stack", CCM.1, CCM.1);
    println!(
        "  sections: .vector_table {} .text {} .rodata {} .data {} .bss {} .uninit {}",
        size(".vector_table"),
        size(".text"),
        size(".rodata"),
        size(".data"),
        size(".bss"),
        size(".uninit")
    );

    assert!(flash <= FLASH.1, "flash overflow: {flash}");
    assert!(sram <= SRAM.1, "SRAM overflow: {sram}");
    assert!(
        in_ccm.is_empty(),
        "sections in CCM, which no DMA reaches: {in_ccm:?}"
    );
    for s in &loaded {
        assert!(
            within(s.addr, FLASH) || within(s.addr, SRAM),
            "section {} at {:#010x} outside flash and SRAM",
            s.name,
            s.addr
        );
    }
    // The statics leave room: the FAT cache or the rings can grow a little.
    assert!(
        SRAM.1 - sram >= 8 * 1024,
        "less than 8 KiB of SRAM left: {}",
        SRAM.1 - sram
    );
}
