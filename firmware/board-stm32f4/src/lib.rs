//! Drivers for the STM32F4-Discovery (STM32F407VG, Cortex-M4F, 168 MHz) on
//! the STM32F4DIS-BB base board, and nothing else: the FTP server on top is
//! the shared application (`ftpd-app`) over the shared FAT storage
//! (`ftpd-fat`), the very code the QEMU board and the virtual board run.
//!
//! | module | device | notes |
//! |---|---|---|
//! | `hw::eth` | Ethernet MAC + DMA (stm32-eth), LAN8720A RMII PHY over MDIO | a smoltcp 0.13 `phy::Device`; link state and speed from the PHY |
//! | `hw::sdio` | SDIO, 4-bit, 24 MHz | an `embedded_sdmmc::BlockDevice` with multi-block reads and writes (CMD18/CMD25) |
//! | `hw::console` | USART6 on PC6/PC7 (the base board's RS-232 port) | 115200 8N1 |
//! | `hw::time` | SysTick | monotonic milliseconds, WFI idle |
//! | `hw::mem` | SRAM + CCM | static RAM use, stack in CCM with a high-water mark |
//! | [`phy`] | - | the LAN8720A's registers: identification, link state and speed |
//! | [`sd`] | - | SD protocol facts for the SDIO driver: CSD/CID decoding, card status, errors |
//! | [`netcfg`] | - | the addresses fixed at build time (`FTPD_*`, see build.rs), the MAC from the chip's unique ID |
//! | [`fat_time`] | - | the FAT time source (the board has no calendar clock) |
//!
//! The hardware modules exist only when building for the board
//! (`target_os = "none"`); the rest is unit-tested on the host
//! (`cargo test-host`).
#![cfg_attr(not(test), no_std)]

pub mod fat_time;
pub mod netcfg;
pub mod phy;
pub mod sd;

#[cfg(target_os = "none")]
pub mod hw;

/// Firmware version printed in the boot banner.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
