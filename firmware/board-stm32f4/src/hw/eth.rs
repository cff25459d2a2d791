//! Ethernet: the STM32F407's MAC with its DMA (driven by stm32-eth) and the
//! LAN8720A PHY of the STM32F4DIS-BB base board over RMII, as a smoltcp 0.13
//! `phy::Device`.
//!
//! | signal | pin | note |
//! |---|---|---|
//! | RMII REF_CLK | PA1 | 50 MHz **from** the PHY (its nINT/REFCLKO pin, 25 MHz crystal on the base board) |
//! | MDIO | PA2 | |
//! | RMII CRS_DV | PA7 | also the PHY's PHYAD0 strap |
//! | MDC | PC1 | |
//! | RMII RXD0, RXD1 | PC4, PC5 | also the PHY's MODE straps |
//! | RMII TX_EN | PB11 | |
//! | RMII TXD0, TXD1 | PB12, PB13 | |
//! | PHY nRST | PE2 | driven low then high at every bring-up |
//!
//! - The MAC cannot even finish its DMA reset without REF_CLK, and the
//!   reference clock comes from the PHY: [`Eth::start`] pulses nRST, then
//!   checks that the DMA reset completes within a few milliseconds, and
//!   reports a missing clock (no base board, PHY held in reset) instead of
//!   hanging in stm32-eth's unbounded wait.
//! - The PHY's MDIO address depends on a strap (0 or 1 on the base boards
//!   seen in the wild): every address is probed and the first that answers
//!   is used.
//! - Link state and speed come from the PHY ([`Eth::poll_link`]); the MAC's
//!   speed and duplex follow what autonegotiation settled on.
//! - Descriptor rings and frame buffers are statics in SRAM (the DMA cannot
//!   reach CCM, where the stack is); [`Eth::start`] checks it.
//! - Checksums: the DMA inserts IPv4, TCP, UDP and ICMP checksums on
//!   transmit (stm32-eth sets the descriptors' CIC bits), which works only
//!   when smoltcp leaves the fields zero, so smoltcp computes none on
//!   transmit; it still verifies everything it receives.
//! - The MAC filters on its own address, broadcast and multicast (IPv6
//!   neighbour discovery) instead of stm32-eth's promiscuous default.

use core::sync::atomic::{AtomicU32, Ordering};

use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use stm32_eth::dma::{EthernetDMA, RxPacket, RxRing, RxRingEntry, TxRing, TxRingEntry};
use stm32_eth::mac::{EthernetMACWithMii, Speed};
use stm32_eth::{EthPins, PartsIn};
use stm32f4xx_hal::gpio::{Alternate, Output, PA1, PA2, PA7, PB11, PB12, PB13, PC1, PC4, PC5, PE2};
use stm32f4xx_hal::pac;
use stm32f4xx_hal::rcc::Clocks;

use super::{mem, time};
use crate::phy::{self as regs, LinkSpeed, PhyId};

/// Receive descriptors, each with a 1522-byte buffer.
pub const RX_DESCRIPTORS: usize = 12;
/// Transmit descriptors, each with a 1522-byte buffer.
pub const TX_DESCRIPTORS: usize = 6;
/// Largest frame handed to smoltcp (without the FCS, which the MAC adds).
pub const MTU: usize = 1514;

type Mdio = PA2<Alternate<11>>;
type Mdc = PC1<Alternate<11>>;
type Mac = EthernetMACWithMii<Mdio, Mdc>;

/// The pins of the RMII interface, MDIO and the PHY's reset, as the HAL
/// hands them out after reset.
pub struct Pins {
    pub ref_clk: PA1,
    pub mdio: PA2,
    pub crs_dv: PA7,
    pub mdc: PC1,
    pub rxd0: PC4,
    pub rxd1: PC5,
    pub tx_en: PB11,
    pub txd0: PB12,
    pub txd1: PB13,
    pub nrst: PE2<Output>,
}

/// Why the Ethernet interface could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EthError {
    /// The MAC's DMA reset did not complete: no 50 MHz reference clock on
    /// PA1 from the PHY.
    NoRefClock,
    /// No PHY answers on MDIO at any address.
    NoPhy,
    /// The PHY stayed in soft reset.
    PhyReset,
}

impl core::fmt::Display for EthError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            EthError::NoRefClock => {
                "no 50 MHz RMII reference clock from the PHY on PA1 (base board missing or PHY held in reset)"
            }
            EthError::NoPhy => "no PHY answers on MDIO (PA2/PC1)",
            EthError::PhyReset => "the PHY did not come out of reset",
        })
    }
}

/// Counters, readable from anywhere (console statistics).
pub struct Stats {
    pub irqs: AtomicU32,
    pub rx_frames: AtomicU32,
    pub rx_errors: AtomicU32,
    pub tx_frames: AtomicU32,
    pub tx_dropped: AtomicU32,
}

pub static STATS: Stats = Stats {
    irqs: AtomicU32::new(0),
    rx_frames: AtomicU32::new(0),
    rx_errors: AtomicU32::new(0),
    tx_frames: AtomicU32::new(0),
    tx_dropped: AtomicU32::new(0),
};

fn count(c: &AtomicU32) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// [`Eth::start`]'s success: the running MAC, and whether the PHY was found.
pub type Started = (Eth, Result<(), EthError>);
/// [`Eth::start`]'s failure: why, and everything back for another try.
pub type Refused = (EthError, PartsIn, Pins);

/// The MAC, its DMA rings and the PHY.
pub struct Eth {
    dma: EthernetDMA<'static, 'static>,
    mac: Mac,
    phy: u8,
    phy_id: PhyId,
    link: Option<LinkSpeed>,
    /// Where a frame goes when no transmit descriptor is free (dropped).
    scratch: [u8; MTU],
}

/// The descriptor rings: zero-initialised statics (.bss, in SRAM), handed
/// out once.
fn rings() -> Option<(
    &'static mut [RxRingEntry; RX_DESCRIPTORS],
    &'static mut [TxRingEntry; TX_DESCRIPTORS],
)> {
    use core::sync::atomic::AtomicBool;
    static TAKEN: AtomicBool = AtomicBool::new(false);
    static mut RX: [RxRingEntry; RX_DESCRIPTORS] = [RxRingEntry::INIT; RX_DESCRIPTORS];
    static mut TX: [TxRingEntry; TX_DESCRIPTORS] = [TxRingEntry::INIT; TX_DESCRIPTORS];
    if TAKEN.swap(true, Ordering::AcqRel) {
        return None;
    }
    // SAFETY: `TAKEN` lets exactly one caller through.
    unsafe {
        Some((
            &mut *core::ptr::addr_of_mut!(RX),
            &mut *core::ptr::addr_of_mut!(TX),
        ))
    }
}

impl Eth {
    /// Resets the PHY, checks its reference clock, starts the MAC and DMA
    /// (receive interrupt on), sets the address filter, finds the PHY on MDIO
    /// and restarts autonegotiation. On [`EthError::NoRefClock`] everything
    /// is handed back for another try; the other errors leave a running MAC
    /// whose PHY can be probed again with [`Eth::find_phy`].
    pub fn start(
        parts: PartsIn,
        mut pins: Pins,
        clocks: Clocks,
        mac_addr: [u8; 6],
    ) -> Result<Started, Refused> {
        // nRST low for 1 ms (the LAN8720A wants 100 us), then give its
        // oscillator time to start the 50 MHz output.
        pins.nrst.set_low();
        time::delay_us(1_000);
        pins.nrst.set_high();
        time::delay_us(10_000);

        let ref_clk = pins.ref_clk.into_alternate::<11>();
        let clock_ok = ref_clock_running(&parts.dma);
        pins.ref_clk = ref_clk.into_input();
        if !clock_ok {
            return Err((EthError::NoRefClock, parts, pins));
        }

        let (rx, tx) = rings().expect("Ethernet started twice");
        assert!(
            mem::in_sram(rx.as_ptr() as usize, core::mem::size_of_val(rx))
                && mem::in_sram(tx.as_ptr() as usize, core::mem::size_of_val(tx)),
            "Ethernet DMA rings outside SRAM"
        );
        let eth_pins = EthPins {
            ref_clk: pins.ref_clk,
            crs: pins.crs_dv,
            tx_en: pins.tx_en,
            tx_d0: pins.txd0,
            tx_d1: pins.txd1,
            rx_d0: pins.rxd0,
            rx_d1: pins.rxd1,
        };
        let mdio: Mdio = pins.mdio.into_alternate();
        let mdc: Mdc = pins.mdc.into_alternate();
        // The only error is HCLK below 25 MHz; it runs at 168 MHz.
        let parts =
            stm32_eth::new_with_mii(parts, &mut rx[..], &mut tx[..], clocks, eth_pins, mdio, mdc)
                .unwrap_or_else(|_| panic!("Ethernet MAC: HCLK too slow"));
        let (mac, dma) = parts.split();
        set_address_filter(mac_addr);
        dma.enable_interrupt();

        let mut eth = Eth {
            dma,
            mac,
            phy: 0,
            phy_id: PhyId(0xFFFF, 0xFFFF),
            link: None,
            scratch: [0; MTU],
        };
        let phy = eth.find_phy();
        Ok((eth, phy))
    }

    /// Probes MDIO addresses 0 to 31 for the PHY, resets the one found and
    /// restarts autonegotiation with every mode advertised.
    pub fn find_phy(&mut self) -> Result<(), EthError> {
        let mut ids = [PhyId(0xFFFF, 0xFFFF); 32];
        for (a, id) in ids.iter_mut().enumerate() {
            *id = PhyId(
                self.mac.read(a as u8, regs::ID1),
                self.mac.read(a as u8, regs::ID2),
            );
        }
        let pick = |f: fn(PhyId) -> bool| ids.iter().position(|&id| f(id));
        let Some(addr) = pick(PhyId::is_lan8720a).or_else(|| pick(PhyId::present)) else {
            return Err(EthError::NoPhy);
        };
        let (addr, id) = (addr as u8, ids[addr]);
        self.phy = addr;
        self.phy_id = id;
        self.mac.write(addr, regs::BCR, regs::BCR_RESET);
        let t0 = time::now_ms();
        while self.mac.read(addr, regs::BCR) & regs::BCR_RESET != 0 {
            if time::now_ms() - t0 > 500 {
                return Err(EthError::PhyReset);
            }
        }
        self.mac.write(addr, regs::ANAR, regs::ANAR_ALL);
        self.mac.write(
            addr,
            regs::BCR,
            regs::BCR_AUTONEG_ENABLE | regs::BCR_AUTONEG_RESTART,
        );
        self.link = None;
        Ok(())
    }

    /// The PHY in use: its MDIO address and identifiers.
    pub fn phy(&self) -> (u8, PhyId) {
        (self.phy, self.phy_id)
    }

    /// Reads the PHY's link state; when it changed, sets the MAC's speed and
    /// duplex to match and returns the new state.
    pub fn poll_link(&mut self) -> Option<Option<LinkSpeed>> {
        // BSR's link bit latches low: the second read is the current state.
        let _ = self.mac.read(self.phy, regs::BSR);
        let bsr = self.mac.read(self.phy, regs::BSR);
        let ssr = self.mac.read(self.phy, regs::SSR);
        let now = regs::link(bsr, ssr);
        if now == self.link {
            return None;
        }
        if let Some(speed) = now {
            self.mac.set_speed(match speed {
                LinkSpeed::HalfDuplex10 => Speed::HalfDuplexBase10T,
                LinkSpeed::FullDuplex10 => Speed::FullDuplexBase10T,
                LinkSpeed::HalfDuplex100 => Speed::HalfDuplexBase100Tx,
                LinkSpeed::FullDuplex100 => Speed::FullDuplexBase100Tx,
            });
        }
        self.link = now;
        Some(now)
    }

    /// The link as last read by [`Eth::poll_link`].
    pub fn link(&self) -> Option<LinkSpeed> {
        self.link
    }

    /// True when a received frame waits in the ring.
    pub fn rx_pending(&mut self) -> bool {
        self.dma.rx_available()
    }
}

/// Call from the ETH interrupt handler: acknowledges the DMA's receive and
/// transmit interrupts, so WFI returns and the main loop polls the ring.
pub fn on_irq() {
    count(&STATS.irqs);
    stm32_eth::eth_interrupt_handler();
}

/// Runs the MAC's clocks in RMII mode and checks that a DMA software reset
/// completes: it needs the RMII reference clock. stm32-eth repeats all of
/// this (and then waits without a limit), so the MAC is left as it found
/// it, only reset.
fn ref_clock_running(dma: &pac::ETHERNET_DMA) -> bool {
    // SAFETY: RCC and SYSCFG bits of the Ethernet MAC only, in a critical
    // section; the HAL has finished with RCC (clocks are frozen).
    let (rcc, syscfg) = unsafe { (&*pac::RCC::ptr(), &*pac::SYSCFG::ptr()) };
    cortex_m::interrupt::free(|_| {
        rcc.apb2enr.modify(|_, w| w.syscfgen().set_bit());
        // RMII must be selected while the MAC is off or in reset.
        rcc.ahb1enr.modify(|_, w| w.ethmacen().clear_bit());
        syscfg.pmc.modify(|_, w| w.mii_rmii_sel().set_bit());
        rcc.ahb1enr.modify(|_, w| {
            w.ethmacen()
                .set_bit()
                .ethmactxen()
                .set_bit()
                .ethmacrxen()
                .set_bit()
        });
        rcc.ahb1rstr.modify(|_, w| w.ethmacrst().set_bit());
        rcc.ahb1rstr.modify(|_, w| w.ethmacrst().clear_bit());
    });
    dma.dmabmr.modify(|_, w| w.sr().set_bit());
    let t0 = time::now_ms();
    while dma.dmabmr.read().sr().bit_is_set() {
        if time::now_ms() - t0 > 20 {
            return false;
        }
    }
    true
}

/// Perfect filtering on our own address, plus broadcast and every multicast
/// (RM0090 section 33.8.2: MACA0HR, MACA0LR, MACFFR).
fn set_address_filter(mac: [u8; 6]) {
    // SAFETY: stm32-eth writes these registers only while starting, which
    // has finished; nothing else touches them.
    let regs = unsafe { &*pac::ETHERNET_MAC::ptr() };
    // The high half first: writing the low register latches the address.
    regs.maca0hr
        .write(|w| unsafe { w.bits(u32::from(mac[4]) | u32::from(mac[5]) << 8 | 1 << 31) });
    regs.maca0lr
        .write(|w| w.bits(u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]])));
    // PAM (pass all multicast, bit 4); RA, PM and the rest cleared.
    regs.macffr.write(|w| unsafe { w.bits(1 << 4) });
}

pub struct RxToken<'a>(RxPacket<'a>);

pub struct TxToken<'a> {
    ring: &'a mut TxRing<'static>,
    scratch: &'a mut [u8; MTU],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        count(&STATS.rx_frames);
        // The descriptor goes back to the DMA when the packet drops.
        f(&self.0)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(MTU);
        match self.ring.send_next(len, None) {
            Ok(mut pkt) => {
                let r = f(&mut pkt);
                pkt.send();
                count(&STATS.tx_frames);
                r
            }
            Err(_) => {
                // Checked free before the token was made; if the ring filled
                // anyway, the frame is lost and TCP sends it again.
                count(&STATS.tx_dropped);
                f(&mut self.scratch[..len])
            }
        }
    }
}

fn take_rx<'a>(rx: &'a mut RxRing<'static>) -> Option<RxPacket<'a>> {
    match rx.recv_next(None) {
        Ok(pkt) => Some(pkt),
        Err(stm32_eth::dma::RxError::WouldBlock) => None,
        Err(_) => {
            // A frame with an error or one too long for a buffer: its
            // descriptor is already back with the DMA.
            count(&STATS.rx_errors);
            None
        }
    }
}

impl phy::Device for Eth {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let (rx, tx) = self.dma.split();
        // An answer may be due at once: receive only with a free transmit
        // descriptor (the frame waits in the ring otherwise).
        if !tx.next_entry_available() {
            return None;
        }
        let pkt = take_rx(rx)?;
        Some((
            RxToken(pkt),
            TxToken {
                ring: tx,
                scratch: &mut self.scratch,
            },
        ))
    }

    fn transmit(&mut self, _: Instant) -> Option<TxToken<'_>> {
        let (_, tx) = self.dma.split();
        if !tx.next_entry_available() {
            return None;
        }
        Some(TxToken {
            ring: tx,
            scratch: &mut self.scratch,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps.max_burst_size = None;
        let mut sums = ChecksumCapabilities::default();
        sums.ipv4 = Checksum::Rx;
        sums.tcp = Checksum::Rx;
        sums.udp = Checksum::Rx;
        sums.icmpv4 = Checksum::Rx;
        sums.icmpv6 = Checksum::Rx;
        caps.checksum = sums;
        caps
    }
}
