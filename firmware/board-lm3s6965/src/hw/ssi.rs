//! SSI0 (ARM PL022) as an `embedded_hal::spi::SpiBus<u8>`: SPI mode 0, 8-bit
//! frames, master.
//!
//! The PL022 rule that matters under QEMU: TX stalls while the 8-entry RX
//! FIFO is full, and DR writes into a full TX FIFO are dropped. So every
//! transfer reads one RX byte per byte written, keeping at most [`DEPTH`]
//! bytes in flight (bursts of 8: write, wait for BSY to clear, read 8). CR0 is written before anything else (QEMU derives the
//! data mask from CR0.DSS; before that every byte would be 0).

use core::convert::Infallible;

use embedded_hal::spi::{ErrorType, SpiBus};

use super::Reg;

const BASE: usize = 0x4000_8000;
const CR0: Reg = Reg(BASE + 0x00);
const CR1: Reg = Reg(BASE + 0x04);
const DR: Reg = Reg(BASE + 0x08);
const SR: Reg = Reg(BASE + 0x0C);
const CPSR: Reg = Reg(BASE + 0x10);
const IMSC: Reg = Reg(BASE + 0x14);

const SR_RNE: u32 = 1 << 2;
const SR_BSY: u32 = 1 << 4;
const CR1_SSE: u32 = 1 << 1;
/// FIFO depth of the PL022 (both directions).
pub const DEPTH: usize = 8;

/// GPIO A: PA2 (SSI0Clk), PA4 (SSI0Rx), PA5 (SSI0Tx) on the real chip.
const GPIOA_AFSEL: Reg = Reg(0x4000_4000 + 0x420);
const GPIOA_DEN: Reg = Reg(0x4000_4000 + 0x51C);

/// SSI0, the bus of the SD card (and of the OLED, which QEMU selects when the
/// card's chip select is high).
pub struct Ssi0(());

impl Ssi0 {
    /// Master, SPI mode 0, 8 bits, ~400 kHz on the real chip (the speed for
    /// SD card identification). QEMU ignores the clock settings.
    #[allow(clippy::new_without_default)] // programs the hardware
    pub fn new() -> Self {
        GPIOA_AFSEL.modify(|v| v | (1 << 2) | (1 << 4) | (1 << 5));
        GPIOA_DEN.modify(|v| v | (1 << 2) | (1 << 4) | (1 << 5));
        CR1.write(0);
        CR0.write(0x0007); // SCR 0, SPH 0, SPO 0, Freescale SPI, DSS 8 bits
        CPSR.write(126); // 50 MHz / 126 ~ 397 kHz
        IMSC.write(0); // polled: no SSI interrupts
        CR1.write(CR1_SSE);
        let mut s = Ssi0(());
        s.drain_rx();
        s
    }

    /// Switches to the data-transfer clock: 50 MHz / 4 = 12.5 MHz.
    pub fn set_fast(&mut self) {
        CR1.write(0);
        CPSR.write(2);
        CR0.write(0x0107); // SCR 1
        CR1.write(CR1_SSE);
    }

    fn drain_rx(&mut self) {
        while SR.read() & SR_RNE != 0 {
            let _ = DR.read();
        }
    }

    /// Clocks `len` bytes out of `tx(i)` and hands each received byte to
    /// `rx(i, byte)`, in bursts of at most DEPTH bytes: the TX FIFO is empty
    /// between bursts (everything sent has been read back), so a burst fits
    /// without checking TNF; once BSY clears, the burst's bytes are all in
    /// the RX FIFO. Two register accesses per byte plus one per burst.
    #[inline(always)]
    fn pump(&mut self, len: usize, tx: impl Fn(usize) -> u8, mut rx: impl FnMut(usize, u8)) {
        let mut at = 0;
        while at < len {
            let n = (len - at).min(DEPTH);
            for i in at..at + n {
                DR.write(tx(i) as u32);
            }
            while SR.read() & SR_BSY != 0 {}
            for i in at..at + n {
                rx(i, DR.read() as u8);
            }
            at += n;
        }
    }
}

impl ErrorType for Ssi0 {
    type Error = Infallible;
}

impl SpiBus<u8> for Ssi0 {
    fn read(&mut self, words: &mut [u8]) -> Result<(), Infallible> {
        let len = words.len();
        self.pump(len, |_| 0xFF, |i, b| words[i] = b);
        Ok(())
    }
    fn write(&mut self, words: &[u8]) -> Result<(), Infallible> {
        self.pump(words.len(), |i| words[i], |_, _| {});
        Ok(())
    }
    fn transfer(&mut self, read: &mut [u8], write: &[u8]) -> Result<(), Infallible> {
        let len = read.len().max(write.len());
        let wl = write.len();
        let rl = read.len();
        self.pump(
            len,
            |i| if i < wl { write[i] } else { 0xFF },
            |i, b| {
                if i < rl {
                    read[i] = b
                }
            },
        );
        Ok(())
    }
    fn transfer_in_place(&mut self, words: &mut [u8]) -> Result<(), Infallible> {
        // A burst's bytes are all written before any is read back, so the
        // slice can be read and overwritten in place.
        let mut at = 0;
        while at < words.len() {
            let n = (words.len() - at).min(DEPTH);
            for &b in &words[at..at + n] {
                DR.write(b as u32);
            }
            while SR.read() & SR_BSY != 0 {}
            for b in &mut words[at..at + n] {
                *b = DR.read() as u8;
            }
            at += n;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}
