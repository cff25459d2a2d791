//! The Stellaris Ethernet MAC (QEMU `stellaris_enet`, 0x4004_8000, IRQ 42)
//! as a smoltcp `phy::Device`.
//!
//! - RX: the interrupt handler acknowledges every raised bit (RXINT first of
//!   all) and only wakes the CPU; [`Enet::receive`] then drains frames while
//!   MACNP > 0, so a frame that arrives after the acknowledgement raises a new
//!   RXINT and nothing is lost. QEMU re-delivers queued frames only once the
//!   31-frame ring is empty, so draining to NP = 0 matters.
//! - TX is synchronous: one frame staged at a time; QEMU sends it the moment
//!   NEWTX is written (the real chip clears NEWTX when done).
//! - No address filtering here (QEMU has none either): smoltcp drops frames
//!   that are not for its MAC.
//! - QEMU models no PHY: the link is reported up.

use core::sync::atomic::{AtomicU32, Ordering};

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::Reg;
use crate::frame::{self, MTU, Rx};

const BASE: usize = 0x4004_8000;
const RIS: Reg = Reg(BASE + 0x00); // read: status; write: acknowledge
const IM: Reg = Reg(BASE + 0x04);
const RCTL: Reg = Reg(BASE + 0x08);
const TCTL: Reg = Reg(BASE + 0x0C);
const DATA: Reg = Reg(BASE + 0x10);
const IA0: Reg = Reg(BASE + 0x14);
const IA1: Reg = Reg(BASE + 0x18);
const NP: Reg = Reg(BASE + 0x34);
const TR: Reg = Reg(BASE + 0x38);

const INT_RX: u32 = 0x01;
const INT_TXER: u32 = 0x02;
const INT_FOV: u32 = 0x08;
const INT_ALL: u32 = 0x7F;

const RCTL_RXEN: u32 = 0x01;
const RCTL_BADCRC: u32 = 0x08;
const RCTL_RSTFIFO: u32 = 0x10;

const TCTL_TXEN: u32 = 0x01;
const TCTL_PADEN: u32 = 0x02;
const TCTL_CRC: u32 = 0x04;
const TCTL_DUPLEX: u32 = 0x10;

const TR_NEWTX: u32 = 0x01;

/// Counters, readable from anywhere (console statistics).
pub struct Stats {
    pub rx_frames: AtomicU32,
    pub rx_dropped: AtomicU32,
    pub rx_fifo_resets: AtomicU32,
    pub tx_frames: AtomicU32,
    pub irqs: AtomicU32,
}

pub static STATS: Stats = Stats {
    rx_frames: AtomicU32::new(0),
    rx_dropped: AtomicU32::new(0),
    rx_fifo_resets: AtomicU32::new(0),
    tx_frames: AtomicU32::new(0),
    irqs: AtomicU32::new(0),
};

/// The MAC with its two frame buffers (3 KiB).
pub struct Enet {
    mac: [u8; 6],
    rx_buf: [u8; MTU],
    tx_buf: [u8; MTU],
}

impl Enet {
    /// Resets the FIFOs, programs the MAC address, enables RX and TX and
    /// unmasks RX and overflow interrupts, then enables IRQ 42 in the NVIC.
    pub fn new(mac: [u8; 6]) -> Self {
        RCTL.write(0);
        IM.write(0);
        RCTL.write(RCTL_RSTFIFO); // QEMU leaves RSTFIFO set: write RCTL again
        RCTL.write(0);
        RIS.write(INT_ALL);
        IA0.write(u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]));
        IA1.write(u32::from_le_bytes([mac[4], mac[5], 0, 0]));
        TCTL.write(TCTL_DUPLEX | TCTL_CRC | TCTL_PADEN | TCTL_TXEN);
        RCTL.write(RCTL_BADCRC | RCTL_RXEN);
        IM.write(INT_RX | INT_FOV | INT_TXER);
        // SAFETY: the handler only touches MAC status registers and atomics.
        unsafe { cortex_m::peripheral::NVIC::unmask(lm3s6965::Interrupt::ETHERNET) };
        Enet {
            mac,
            rx_buf: [0; MTU],
            tx_buf: [0; MTU],
        }
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Under QEMU there is no PHY model and no link indication: always up.
    pub fn link_up(&self) -> bool {
        true
    }

    /// True when a received frame waits in the FIFO.
    pub fn rx_pending() -> bool {
        NP.read() != 0
    }

    fn reset_rx_fifo() {
        STATS.rx_fifo_resets.fetch_add(1, Ordering::Relaxed);
        RCTL.write(0);
        RCTL.write(RCTL_RSTFIFO);
        RCTL.write(RCTL_BADCRC | RCTL_RXEN);
    }

    /// Takes the next good frame out of the FIFO into `rx_buf`.
    fn pull_frame(&mut self) -> Option<usize> {
        while NP.read() != 0 {
            let first = DATA.read();
            match frame::rx_frame(first, || DATA.read(), &mut self.rx_buf) {
                Rx::Frame(n) => {
                    STATS.rx_frames.fetch_add(1, Ordering::Relaxed);
                    return Some(n);
                }
                Rx::Dropped(_) => {
                    STATS.rx_dropped.fetch_add(1, Ordering::Relaxed);
                }
                Rx::Corrupt(_) => {
                    STATS.rx_dropped.fetch_add(1, Ordering::Relaxed);
                    Self::reset_rx_fifo();
                    return None;
                }
            }
        }
        None
    }

    fn send(buf: &[u8]) {
        // The real MAC holds one frame: wait for the previous one to leave
        // (QEMU reads NEWTX as 0 at once). Bounded so a wedged MAC cannot hang.
        for _ in 0..1_000_000 {
            if TR.read() & TR_NEWTX == 0 {
                break;
            }
        }
        frame::tx_words(buf, |w| DATA.write(w));
        TR.write(TR_NEWTX);
        STATS.tx_frames.fetch_add(1, Ordering::Relaxed);
    }
}

/// Call from the ETH (IRQ 42) handler: acknowledges what was raised (so the
/// level-triggered line drops) and lets the main loop's WFI return; the frames
/// stay in the FIFO for [`Enet::receive`].
pub fn on_irq() {
    STATS.irqs.fetch_add(1, Ordering::Relaxed);
    let ris = RIS.read();
    RIS.write(ris);
    if ris & INT_FOV != 0 {
        STATS.rx_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

pub struct RxToken<'a>(&'a [u8]);
pub struct TxToken<'a>(&'a mut [u8; MTU]);

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.clamp(frame::MIN_FRAME, MTU);
        let r = f(&mut self.0[..len]);
        Enet::send(&self.0[..len]);
        r
    }
}

impl phy::Device for Enet {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let n = self.pull_frame()?;
        Some((RxToken(&self.rx_buf[..n]), TxToken(&mut self.tx_buf)))
    }

    fn transmit(&mut self, _: Instant) -> Option<TxToken<'_>> {
        Some(TxToken(&mut self.tx_buf))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps.max_burst_size = None;
        caps
    }
}
