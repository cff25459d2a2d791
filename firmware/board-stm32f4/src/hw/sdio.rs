//! The SD card on the STM32F407's SDIO host, 4-bit bus at 24 MHz, as an
//! [`embedded_sdmmc::BlockDevice`] that moves several blocks per command
//! (CMD18 / ACMD23 + CMD25), which the FAT layer's block cache relies on for
//! throughput.
//!
//! | signal | pin | note |
//! |---|---|---|
//! | CK | PC12 | |
//! | CMD | PD2 | internal pull-up |
//! | D0-D3 | PC8, PC9, PC10, PC11 | internal pull-ups |
//! | card detect | PB15 | STM32F4DIS-BB socket switch, read with a pull-up and taken as "card present" when low (polarity not checked on a board); only reported in messages, never acted on |
//!
//! Why not stm32f4xx-hal's `Sdio`: it moves one block per command (CMD17 /
//! CMD24, each followed by CMD16 and a CMD13 poll), its loops have no time
//! limit, and it cannot start over: a second `init` after a card swap sends
//! CMD55 with the old card's address, and the peripheral cannot be taken
//! back from it. The HAL still sets up the clocks (PLL48CLK = 48 MHz) and
//! the pins; this module owns the SDIO registers (RM0090 section 31) and
//! follows the SD Physical Layer specification's initialisation.
//!
//! Data moves through the 32-word FIFO by CPU (no DMA: nothing here may
//! be in CCM anyway, and the stack is). The hardware flow control is left off
//! (errata ES0182: it glitches SDIO_CK), so an interrupt that keeps the CPU
//! from the FIFO for more than a few microseconds overruns it; the short
//! ETH and SysTick handlers do not, and a transfer that fails that way is
//! retried.

use core::cell::RefCell;

use embedded_sdmmc::{Block, BlockCount, BlockDevice, BlockIdx};
use stm32f4xx_hal::gpio::{Input, PB15, PC8, PC9, PC10, PC11, PC12, PD2, Speed};
use stm32f4xx_hal::pac::SDIO;
use stm32f4xx_hal::rcc::{Enable, Reset};

use super::time;
use crate::sd::{self, CardInfo, CardType, LongResponse, SdError, SdStats};

// SDIO_STA bits.
const CCRCFAIL: u32 = 1 << 0;
const DCRCFAIL: u32 = 1 << 1;
const CTIMEOUT: u32 = 1 << 2;
const DTIMEOUT: u32 = 1 << 3;
const TXUNDERR: u32 = 1 << 4;
const RXOVERR: u32 = 1 << 5;
const CMDREND: u32 = 1 << 6;
const CMDSENT: u32 = 1 << 7;
const DATAEND: u32 = 1 << 8;
const STBITERR: u32 = 1 << 9;
const CMDACT: u32 = 1 << 11;
const TXFIFOHE: u32 = 1 << 14;
const RXFIFOHF: u32 = 1 << 15;
const RXDAVL: u32 = 1 << 21;
/// Every static flag (SDIO_ICR).
const ALL_FLAGS: u32 = 0x00C0_07FF;
const DATA_ERRORS: u32 = DCRCFAIL | DTIMEOUT | TXUNDERR | RXOVERR | STBITERR;

// SDIO_CLKCR: SDIO_CK = 48 MHz / (CLKDIV + 2); no bypass, no negative edge,
// no hardware flow control (errata).
const CLKCR_CLKEN: u32 = 1 << 8;
const CLKCR_WIDBUS_4: u32 = 0b01 << 11;
const CLKDIV_400K: u32 = 118;
const CLKDIV_24M: u32 = 0;
const FAST_HZ: u32 = 24_000_000;

// SDIO_CMD.
const CMD_WAITRESP_SHORT: u32 = 0b01 << 6;
const CMD_WAITRESP_LONG: u32 = 0b11 << 6;
const CMD_CPSMEN: u32 = 1 << 10;

// SDIO_DCTRL: enable, direction (card to host), 512-byte blocks.
const DCTRL_DTEN: u32 = 1 << 0;
const DCTRL_TO_HOST: u32 = 1 << 1;
const DCTRL_BLOCK_512: u32 = 9 << 4;

/// Data timeouts in SDIO_CK periods: 250 ms to read a block, 500 ms to
/// program one (the SD specification's limits for SDHC/SDXC).
const READ_TIMEOUT: u32 = FAST_HZ / 4;
const WRITE_TIMEOUT: u32 = FAST_HZ / 2;

/// OCR voltage window for ACMD41: 2.7-3.6 V.
const OCR_VOLTAGES: u32 = 0x00FF_8000;
const OCR_HCS: u32 = 1 << 30;
const OCR_POWERED_UP: u32 = 1 << 31;

/// Attempts per block-device call, for errors [`SdError::transient`] names.
const ATTEMPTS: u32 = 3;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Resp {
    None,
    Short,
    /// R3 (OCR): carries no CRC, so the host's CRC check always fails.
    ShortNoCrc,
    Long,
}

/// The SDIO pins as the HAL hands them out after reset.
pub struct Pins {
    pub ck: PC12,
    pub cmd: PD2,
    pub d0: PC8,
    pub d1: PC9,
    pub d2: PC10,
    pub d3: PC11,
    pub detect: PB15,
}

/// The SDIO host and the card in its slot.
pub struct SdCard {
    inner: RefCell<Inner>,
}

struct Inner {
    regs: SDIO,
    detect: PB15<Input>,
    card: Option<(CardInfo, u16)>,
    stats: SdStats,
}

impl SdCard {
    /// Takes the SDIO peripheral and its pins (alternate function 12, very
    /// high speed, pull-ups on CMD and data) and enables its clock. The card
    /// is not touched until [`SdCard::init`].
    pub fn new(regs: SDIO, pins: Pins) -> Self {
        let _ck = pins.ck.into_alternate::<12>().speed(Speed::VeryHigh);
        let _cmd = pins
            .cmd
            .into_alternate::<12>()
            .speed(Speed::VeryHigh)
            .internal_pull_up(true);
        let _d0 = pins
            .d0
            .into_alternate::<12>()
            .speed(Speed::VeryHigh)
            .internal_pull_up(true);
        let _d1 = pins
            .d1
            .into_alternate::<12>()
            .speed(Speed::VeryHigh)
            .internal_pull_up(true);
        let _d2 = pins
            .d2
            .into_alternate::<12>()
            .speed(Speed::VeryHigh)
            .internal_pull_up(true);
        let _d3 = pins
            .d3
            .into_alternate::<12>()
            .speed(Speed::VeryHigh)
            .internal_pull_up(true);
        let detect = pins.detect.into_pull_up_input();
        // SAFETY: SDIO's own enable and reset bits, before anything uses it.
        unsafe {
            SDIO::enable_unchecked();
            SDIO::reset_unchecked();
        }
        SdCard {
            inner: RefCell::new(Inner {
                regs,
                detect,
                card: None,
                stats: SdStats::default(),
            }),
        }
    }

    /// Powers the card up and identifies it (SD specification 4.2), then
    /// switches to the 4-bit bus at 24 MHz. Can be called again at any time
    /// (another card, a card that failed).
    pub fn init(&self) -> Result<CardInfo, SdError> {
        let mut inner = self.inner.try_borrow_mut().map_err(|_| SdError::Busy)?;
        inner.card = None;
        let r = inner.identify();
        if let Ok((info, rca)) = r {
            inner.card = Some((info, rca));
        } else {
            inner.power_off();
        }
        r.map(|(info, _)| info)
    }

    /// What [`SdCard::init`] found, while the card is usable.
    pub fn info(&self) -> Option<CardInfo> {
        self.inner.borrow().card.map(|(i, _)| i)
    }

    /// The card-detect switch: `true` when it reports a card (PB15 low).
    pub fn detected(&self) -> bool {
        self.inner.borrow().detect.is_low()
    }

    pub fn stats(&self) -> SdStats {
        self.inner.borrow().stats
    }

    fn transfer(
        &self,
        start: u32,
        count: usize,
        mut op: impl FnMut(&mut Inner, CardType, u16) -> Result<(), SdError>,
    ) -> Result<(), SdError> {
        let mut inner = self.inner.try_borrow_mut().map_err(|_| SdError::Busy)?;
        let (info, rca) = inner.card.ok_or(SdError::NotReady)?;
        if u64::from(start) + count as u64 > u64::from(info.blocks) {
            return Err(SdError::OutOfRange {
                block: start,
                count,
            });
        }
        let mut attempt = 1;
        loop {
            match op(&mut inner, info.card_type, rca) {
                Ok(()) => return Ok(()),
                Err(e) if e.transient() && attempt < ATTEMPTS => {
                    inner.stats.retries += 1;
                    attempt += 1;
                }
                Err(e) => {
                    inner.stats.errors += 1;
                    return Err(e);
                }
            }
        }
    }
}

/// The FAT layer holds the card by reference (it lives in a `static`, where
/// the console reads its statistics).
impl BlockDevice for &SdCard {
    type Error = SdError;

    fn read(&self, blocks: &mut [Block], start: BlockIdx) -> Result<(), SdError> {
        if blocks.is_empty() {
            return Ok(());
        }
        self.transfer(start.0, blocks.len(), |inner, ty, rca| {
            inner.read_blocks(ty.address(start.0), rca, blocks)
        })
    }

    fn write(&self, blocks: &[Block], start: BlockIdx) -> Result<(), SdError> {
        if blocks.is_empty() {
            return Ok(());
        }
        self.transfer(start.0, blocks.len(), |inner, ty, rca| {
            inner.write_blocks(ty.address(start.0), rca, blocks)
        })
    }

    fn num_blocks(&self) -> Result<BlockCount, SdError> {
        self.info()
            .map(|i| BlockCount(i.blocks))
            .ok_or(SdError::NotReady)
    }
}

impl Inner {
    fn sta(&self) -> u32 {
        self.regs.sta.read().bits()
    }

    fn clear(&self, flags: u32) {
        self.regs.icr.write(|w| unsafe { w.bits(flags) });
    }

    fn set_clkcr(&self, v: u32) {
        self.regs.clkcr.write(|w| unsafe { w.bits(v) });
        // RM0090: no new write to the SDIO registers for 3 SDIOCLK + 2 PCLK2
        // periods after one.
        cortex_m::asm::delay(32);
    }

    fn power_off(&self) {
        self.regs.power.write(|w| unsafe { w.bits(0) });
        self.set_clkcr(CLKDIV_400K);
    }

    /// Power cycle at 400 kHz, 1-bit, then at least 74 clocks before CMD0.
    fn power_up(&self) {
        self.power_off();
        time::delay_us(2_000);
        self.regs.power.write(|w| unsafe { w.bits(0b11) });
        time::delay_us(2_000);
        self.set_clkcr(CLKDIV_400K | CLKCR_CLKEN);
        time::delay_us(1_000);
    }

    /// Sends a command and waits for its response; the response registers
    /// hold it afterwards.
    fn cmd(&self, idx: u8, arg: u32, resp: Resp) -> Result<(), SdError> {
        let t0 = time::now_ms();
        while self.sta() & CMDACT != 0 {
            if time::now_ms() - t0 > 10 {
                return Err(SdError::CmdStuck(idx));
            }
        }
        self.clear(CCRCFAIL | CTIMEOUT | CMDREND | CMDSENT);
        self.regs.arg.write(|w| w.bits(arg));
        let wait = match resp {
            Resp::None => 0,
            Resp::Short | Resp::ShortNoCrc => CMD_WAITRESP_SHORT,
            Resp::Long => CMD_WAITRESP_LONG,
        };
        self.regs
            .cmd
            .write(|w| unsafe { w.bits(u32::from(idx) | wait | CMD_CPSMEN) });
        let t0 = time::now_ms();
        let r = loop {
            let sta = self.sta();
            if resp == Resp::None {
                if sta & CMDSENT != 0 {
                    break Ok(());
                }
            } else if sta & CMDREND != 0 {
                break Ok(());
            } else if sta & CTIMEOUT != 0 {
                break Err(SdError::CmdTimeout(idx));
            } else if sta & CCRCFAIL != 0 {
                break if resp == Resp::ShortNoCrc {
                    Ok(())
                } else {
                    Err(SdError::CmdCrc(idx))
                };
            }
            if time::now_ms() - t0 > 50 {
                break Err(SdError::CmdStuck(idx));
            }
        };
        self.clear(CCRCFAIL | CTIMEOUT | CMDREND | CMDSENT);
        r
    }

    /// A command with an R1 response: its card status, checked for errors.
    fn r1(&self, idx: u8, arg: u32) -> Result<u32, SdError> {
        self.cmd(idx, arg, Resp::Short)?;
        let status = self.regs.resp1.read().bits();
        if status & sd::STATUS_ERRORS != 0 {
            return Err(SdError::CardStatus { cmd: idx, status });
        }
        Ok(status)
    }

    fn long_response(&self) -> LongResponse {
        let r = &self.regs;
        LongResponse([
            r.resp1.read().bits(),
            r.resp2.read().bits(),
            r.resp3.read().bits(),
            r.resp4.read().bits(),
        ])
    }

    fn identify(&mut self) -> Result<(CardInfo, u16), SdError> {
        self.power_up();
        self.cmd(0, 0, Resp::None)?;
        // CMD8: 2.7-3.6 V, check pattern 0xAA. Version 1 cards do not answer.
        let v2 = match self.cmd(8, 0x1AA, Resp::Short) {
            Ok(()) => {
                let r7 = self.regs.resp1.read().bits();
                if r7 & 0xFFF != 0x1AA {
                    return Err(SdError::VoltageNotAccepted(r7));
                }
                true
            }
            Err(SdError::CmdTimeout(_)) => false,
            Err(e) => return Err(e),
        };
        let t0 = time::now_ms();
        let ocr = loop {
            match self.cmd(55, 0, Resp::Short) {
                Err(SdError::CmdTimeout(_)) if !v2 => return Err(SdError::NoCard),
                r => r?,
            }
            self.cmd(
                41,
                OCR_VOLTAGES | if v2 { OCR_HCS } else { 0 },
                Resp::ShortNoCrc,
            )?;
            let ocr = self.regs.resp1.read().bits();
            if ocr & OCR_POWERED_UP != 0 {
                break ocr;
            }
            if time::now_ms() - t0 > 1_000 {
                return Err(SdError::PowerUpTimeout);
            }
            time::delay_us(1_000);
        };
        let card_type = match (v2, ocr & OCR_HCS != 0) {
            (false, _) => CardType::Sd1,
            (true, false) => CardType::Sd2,
            (true, true) => CardType::Sdhc,
        };
        self.cmd(2, 0, Resp::Long)?;
        let (manufacturer, product) = self.long_response().cid_product();
        // R6: the new relative card address in the upper half.
        self.cmd(3, 0, Resp::Short)?;
        let rca = (self.regs.resp1.read().bits() >> 16) as u16;
        self.cmd(9, u32::from(rca) << 16, Resp::Long)?;
        let blocks = self
            .long_response()
            .csd_blocks()
            .ok_or(SdError::UnsupportedCsd)?;
        // Select the card (stand-by to transfer state).
        self.r1(7, u32::from(rca) << 16)?;
        // Every SD memory card supports the 4-bit bus (ACMD6, argument 2).
        self.r1(55, u32::from(rca) << 16)?;
        self.r1(6, 2)?;
        if card_type != CardType::Sdhc {
            self.r1(16, 512)?;
        }
        self.set_clkcr(CLKDIV_24M | CLKCR_CLKEN | CLKCR_WIDBUS_4);
        self.wait_ready(rca, 100)?;
        let info = CardInfo {
            card_type,
            blocks,
            bus_width: 4,
            clock_hz: FAST_HZ,
            manufacturer,
            product,
        };
        Ok((info, rca))
    }

    /// Polls the card status (CMD13) until the card is back in the transfer
    /// state with its buffer empty.
    fn wait_ready(&self, rca: u16, limit_ms: u64) -> Result<(), SdError> {
        let t0 = time::now_ms();
        loop {
            let status = self.r1(13, u32::from(rca) << 16)?;
            if sd::ready(status) {
                return Ok(());
            }
            if time::now_ms() - t0 > limit_ms {
                return Err(SdError::BusyTimeout);
            }
        }
    }

    /// Arms the data path for `blocks` 512-byte blocks.
    fn start_data(&self, blocks: usize, to_host: bool, timeout: u32) {
        self.clear(ALL_FLAGS);
        self.regs.dtimer.write(|w| w.bits(timeout));
        self.regs
            .dlen
            .write(|w| unsafe { w.bits((blocks * 512) as u32) });
        let dir = if to_host { DCTRL_TO_HOST } else { 0 };
        self.regs
            .dctrl
            .write(|w| unsafe { w.bits(DCTRL_BLOCK_512 | dir | DCTRL_DTEN) });
    }

    /// After a failed transfer: data path off, FIFO emptied, flags cleared,
    /// the card stopped and given time to return to the transfer state.
    fn abort(&self, rca: u16) {
        self.regs.dctrl.write(|w| unsafe { w.bits(0) });
        let mut n = 0;
        while self.sta() & RXDAVL != 0 && n < 64 {
            let _ = self.regs.fifo.read().bits();
            n += 1;
        }
        self.clear(ALL_FLAGS);
        let _ = self.cmd(12, 0, Resp::Short);
        let _ = self.wait_ready(rca, 500);
    }

    fn data_error(sta: u32) -> SdError {
        if sta & DCRCFAIL != 0 {
            SdError::DataCrc
        } else if sta & DTIMEOUT != 0 {
            SdError::DataTimeout
        } else if sta & RXOVERR != 0 {
            SdError::RxOverrun
        } else if sta & TXUNDERR != 0 {
            SdError::TxUnderrun
        } else {
            SdError::StartBit
        }
    }

    fn read_blocks(&mut self, addr: u32, rca: u16, blocks: &mut [Block]) -> Result<(), SdError> {
        let multi = blocks.len() > 1;
        self.start_data(blocks.len(), true, READ_TIMEOUT);
        if let Err(e) = self.r1(if multi { 18 } else { 17 }, addr) {
            self.abort(rca);
            return Err(e);
        }
        let r = self.read_fifo(blocks);
        self.regs.dctrl.write(|w| unsafe { w.bits(0) });
        if let Err(e) = r {
            self.abort(rca);
            return Err(e);
        }
        self.clear(ALL_FLAGS);
        if multi {
            // R1b; a read that ends at the last block may report
            // OUT_OF_RANGE here, which is not an error.
            self.cmd(12, 0, Resp::Short)?;
        }
        self.stats.read_cmds += 1;
        self.stats.blocks_read += blocks.len() as u32;
        Ok(())
    }

    fn read_fifo(&self, blocks: &mut [Block]) -> Result<(), SdError> {
        let total = blocks.len() * 128;
        let mut w = 0;
        let limit = 100 + 260 * blocks.len() as u64;
        let t0 = time::now_ms();
        let mut put = |w: usize, word: u32| {
            let o = (w % 128) * 4;
            blocks[w / 128].contents[o..o + 4].copy_from_slice(&word.to_le_bytes());
        };
        while w < total {
            let sta = self.sta();
            if sta & DATA_ERRORS != 0 {
                return Err(Self::data_error(sta));
            }
            if sta & RXFIFOHF != 0 && total - w >= 8 {
                for _ in 0..8 {
                    put(w, self.regs.fifo.read().bits());
                    w += 1;
                }
            } else if sta & RXDAVL != 0 {
                put(w, self.regs.fifo.read().bits());
                w += 1;
            } else if time::now_ms() - t0 > limit {
                return Err(SdError::TransferStuck);
            }
        }
        // All data is in; the block CRC check ends the transfer.
        loop {
            let sta = self.sta();
            if sta & DATA_ERRORS != 0 {
                return Err(Self::data_error(sta));
            }
            if sta & DATAEND != 0 {
                return Ok(());
            }
            if time::now_ms() - t0 > limit {
                return Err(SdError::TransferStuck);
            }
        }
    }

    fn write_blocks(&mut self, addr: u32, rca: u16, blocks: &[Block]) -> Result<(), SdError> {
        let multi = blocks.len() > 1;
        if multi {
            // ACMD23: how many blocks follow, so the card can erase them
            // ahead. Only a hint; CMD12 still ends the transfer.
            if self.r1(55, u32::from(rca) << 16).is_ok() {
                let _ = self.r1(23, blocks.len() as u32);
            }
        }
        self.start_data(blocks.len(), false, WRITE_TIMEOUT);
        if let Err(e) = self.r1(if multi { 25 } else { 24 }, addr) {
            self.abort(rca);
            return Err(e);
        }
        let r = self.write_fifo(blocks);
        self.regs.dctrl.write(|w| unsafe { w.bits(0) });
        if let Err(e) = r {
            self.abort(rca);
            return Err(e);
        }
        self.clear(ALL_FLAGS);
        if multi {
            self.cmd(12, 0, Resp::Short)?;
        }
        // The card programs what it received; it is busy until done.
        self.wait_ready(rca, 2_000)?;
        self.stats.write_cmds += 1;
        self.stats.blocks_written += blocks.len() as u32;
        Ok(())
    }

    fn write_fifo(&self, blocks: &[Block]) -> Result<(), SdError> {
        let total = blocks.len() * 128;
        let mut w = 0;
        let limit = 100 + 520 * blocks.len() as u64;
        let t0 = time::now_ms();
        let word = |w: usize| {
            let o = (w % 128) * 4;
            let b = &blocks[w / 128].contents;
            u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
        };
        loop {
            let sta = self.sta();
            if sta & DATA_ERRORS != 0 {
                return Err(Self::data_error(sta));
            }
            if w < total && sta & TXFIFOHE != 0 {
                // At least 8 words are free.
                for _ in 0..8.min(total - w) {
                    self.regs.fifo.write(|r| r.bits(word(w)));
                    w += 1;
                }
            } else if w == total && sta & DATAEND != 0 {
                return Ok(());
            } else if time::now_ms() - t0 > limit {
                return Err(SdError::TransferStuck);
            }
        }
    }
}
