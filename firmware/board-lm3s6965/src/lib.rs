//! Drivers for the TI Stellaris LM3S6965 evaluation board as QEMU models it
//! (`qemu-system-arm -M lm3s6965evb`), and nothing else: the FTP server on top
//! is the shared application.
//!
//! | module | device | notes |
//! |---|---|---|
//! | [`sd`] | SD card in SPI mode | hardware-independent (embedded-hal 1.0), an `embedded_sdmmc::BlockDevice`; works on QEMU 7.2, 10.0.2 and real cards |
//! | [`frame`] | Stellaris MAC FIFO format | pure packing/unpacking of frames into 32-bit FIFO words |
//! | `hw::enet` | Ethernet MAC at 0x4004_8000, IRQ 42 | a smoltcp `phy::Device` |
//! | `hw::ssi`, `hw::gpio` | PL022 SSI0 at 0x4000_8000, chip select PD0 | an `embedded_hal::spi::SpiBus` + `OutputPin` |
//! | `hw::uart` | UART0 at 0x4000_C000 | the console |
//! | `hw::sysctl`, `hw::time` | RCC (50 MHz), SysTick | monotonic milliseconds, delays, WFI idle |
//! | `hw::stack` | SRAM | painted stack, high-water mark |
//! | [`params`] | top of SRAM | boot parameters written by QEMU's generic loader |
//! | [`clock`] | - | calendar time from the boot parameters, FAT timestamps |
//!
//! The hardware modules exist only when building for the board
//! (`target_os = "none"`); the rest is unit-tested on the host
//! (`cargo test --target x86_64-unknown-linux-gnu`).
#![cfg_attr(not(test), no_std)]

pub mod clock;
pub mod frame;
pub mod params;
pub mod sd;

#[cfg(target_os = "none")]
pub mod hw;

/// Firmware version printed in the boot banner.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
