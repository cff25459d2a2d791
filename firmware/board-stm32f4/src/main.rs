//! The FTP server firmware for the STM32F4-Discovery on the STM32F4DIS-BB
//! base board.
//!
//! Boot: clocks (168 MHz from the 8 MHz crystal), console, SysTick; the
//! Ethernet MAC and PHY (retried with a message until the PHY's reference
//! clock and MDIO answer); the SD card (retried until a card answers and
//! holds a FAT volume); the link (waited for); the banner; then the shared
//! application (`ftpd_app::App`) in a poll loop that sleeps with WFI
//! between events, exactly as on the QEMU board.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "board-stm32f4 is firmware: build it for thumbv7em-none-eabihf (cargo build in its directory)"
    );
}

#[cfg(target_os = "none")]
mod fw {
    use board_stm32f4::fat_time::FixedTime;
    use board_stm32f4::hw::eth::{self, Eth};
    use board_stm32f4::hw::sdio::{self, SdCard};
    use board_stm32f4::hw::{HCLK_HZ, console, mem, time, unique_id};
    use board_stm32f4::netcfg::{self, Mac, OptAddr};
    use board_stm32f4::sd::CardInfo;
    use board_stm32f4::{VERSION, print, println};
    use cortex_m_rt::{ExceptionFrame, entry, exception};
    use ftpd::Storage;
    use ftpd_app::{App, Resources};
    use ftpd_fat::FatStorage;
    use rand_core::RngCore;
    use stm32_eth::PartsIn;
    use stm32f4xx_hal::gpio::PinState;
    use stm32f4xx_hal::pac::{self, interrupt};
    use stm32f4xx_hal::prelude::*;

    /// The FAT volume: 4 files open at once, a block cache of 8 lines of
    /// 8 blocks (32 KiB: one SD command moves up to 4 KiB).
    type Fs = FatStorage<&'static SdCard, FixedTime, 4, 8, 8>;
    type AppFs = &'static mut Fs;

    /// Between retries of a failed boot step.
    const RETRY_MS: u64 = 2_000;
    /// How long autonegotiation may take before "link down" is reported.
    const LINK_GRACE_MS: u64 = 5_000;
    /// Between looks at the PHY's link state while serving.
    const LINK_POLL_MS: u64 = 500;

    #[entry]
    fn main() -> ! {
        mem::paint();
        let dp = pac::Peripherals::take().unwrap();
        let cp = cortex_m::Peripherals::take().unwrap();
        // Keep the core's clocks running in WFI, so a debug probe stays
        // attached (probe-rs) while the firmware idles.
        dp.DBGMCU.cr.modify(|_, w| w.dbg_sleep().set_bit());

        let rcc = dp.RCC.constrain();
        let clocks = rcc
            .cfgr
            .use_hse(8.MHz())
            .sysclk(168.MHz())
            .hclk(168.MHz())
            .require_pll48clk()
            .freeze();
        assert_eq!(clocks.hclk().raw(), HCLK_HZ);
        let gpioa = dp.GPIOA.split();
        let gpiob = dp.GPIOB.split();
        let gpioc = dp.GPIOC.split();
        let gpiod = dp.GPIOD.split();
        let gpioe = dp.GPIOE.split();

        // A pull-up on RX, so an unconnected console reads idle, not noise.
        console::init(
            dp.USART6,
            gpioc.pc6,
            gpioc.pc7.internal_pull_up(true),
            &clocks,
        );
        time::init(cp.SYST);
        println!();
        println!(
            "ftpd stm32f4 v{VERSION}: booting (STM32F407 at {} MHz)",
            clocks.hclk().to_MHz()
        );
        // SDIO and the RNG run on PLL48CLK, which must be exactly 48 MHz.
        if clocks.pll48clk().map(|f| f.raw()) != Some(48_000_000) {
            println!(
                "boot: PLL48CLK is {:?}, not 48 MHz: SDIO timing will be off",
                clocks.pll48clk()
            );
        }

        // The Discovery's audio codec (CS43L22) shares PC10 and PC12 with the
        // SD card: hold it in reset (PD4 low).
        let _codec_reset = gpiod.pd4.into_push_pull_output_in_state(PinState::Low);

        let mac = netcfg::MAC.unwrap_or_else(|| netcfg::mac_from_uid(unique_id()));
        let eth = bring_up_ethernet(
            PartsIn {
                mac: dp.ETHERNET_MAC,
                mmc: dp.ETHERNET_MMC,
                dma: dp.ETHERNET_DMA,
            },
            eth::Pins {
                ref_clk: gpioa.pa1,
                mdio: gpioa.pa2,
                crs_dv: gpioa.pa7,
                mdc: gpioc.pc1,
                rxd0: gpioc.pc4,
                rxd1: gpioc.pc5,
                tx_en: gpiob.pb11,
                txd0: gpiob.pb12,
                txd1: gpiob.pb13,
                nrst: gpioe.pe2.into_push_pull_output_in_state(PinState::High),
            },
            clocks,
            mac,
        );

        let sd: &'static SdCard = cortex_m::singleton!(: SdCard = SdCard::new(
            dp.SDIO,
            sdio::Pins {
                ck: gpioc.pc12,
                cmd: gpiod.pd2,
                d0: gpioc.pc8,
                d1: gpioc.pc9,
                d2: gpioc.pc10,
                d3: gpioc.pc11,
                detect: gpiob.pb15,
            },
        ))
        .unwrap();
        let (card, fs) = bring_up_storage(sd);
        let vol = fs.info();
        let free = fs.free_space();

        wait_for_link(eth);

        let mut rng = dp.RNG.constrain(&clocks);
        let seed = rng.next_u64() ^ time::now_ms();
        let settings = netcfg::settings(mac, seed);
        let res = Resources::take().unwrap();
        let mut app = App::new(res, &settings, &mut *eth, fs, time::now_ms());
        app.set_utc(None);

        let (ip, prefix) = netcfg::IPV4;
        let (phy_addr, phy_id) = eth.phy();
        println!(
            "ftpd stm32f4 v{VERSION} ready: ftp://{ip}:{}/ mac {}",
            settings.control_port,
            Mac(mac)
        );
        println!(
            "  ip {ip}/{prefix} gw {} pasv {}:{}-{}, ipv6 {}",
            OptAddr(settings.net.ipv4_gateway),
            OptAddr(settings.pasv_address),
            settings.pasv_ports.0,
            settings.pasv_ports.1,
            netcfg::IPV6.0
        );
        println!(
            "  eth {phy_id} at MDIO {phy_addr}, link {}",
            LinkText(eth.link())
        );
        println!(
            "  sd {} MiB ({} {}, {}-bit {} MHz), {:?} {}, {} MiB, {} KiB free, cluster {} B",
            card.bytes() >> 20,
            card.card_type,
            card.product_name(),
            card.bus_width,
            card.clock_hz / 1_000_000,
            vol.fat_type,
            if vol.partitioned {
                "in MBR partition"
            } else {
                "without partition table"
            },
            vol.capacity >> 20,
            free.unwrap_or(0) >> 10,
            vol.cluster_bytes
        );
        println!("  time of day unknown (no RTC): files dated 2000-01-01");
        println!(
            "  ram: SRAM {} KiB static, {} KiB free of 128; stack (CCM) peak {} of {} bytes",
            mem::sram_static() >> 10,
            mem::sram_free() >> 10,
            mem::high_water(),
            mem::stack_size()
        );

        let mut reported_peak = 0;
        let mut next_check = 0;
        loop {
            let now = time::now_ms();
            let wake = app.poll(now, &mut *eth);

            if now >= next_check {
                next_check = now + LINK_POLL_MS;
                if let Some(link) = eth.poll_link() {
                    println!("eth: link {}", LinkText(link));
                }
                let peak = mem::high_water();
                if peak > reported_peak + 256 {
                    reported_peak = peak;
                    println!("stack: peak {peak} bytes of {}", mem::stack_size());
                }
            }
            if let Some(c) = console::read_byte() {
                console_command(c, &app, sd, eth);
            }

            // Sleep until the next deadline, a frame or a console byte.
            let deadline = wake.unwrap_or(u64::MAX).min(next_check);
            while !eth.rx_pending() && !console::rx_pending() && time::now_ms() < deadline {
                time::idle(|| eth.rx_pending() || console::rx_pending());
            }
        }
    }

    /// Starts the MAC and finds the PHY, retrying (with a console message
    /// each time) until both work.
    fn bring_up_ethernet(
        mut parts: PartsIn,
        mut pins: eth::Pins,
        clocks: stm32f4xx_hal::rcc::Clocks,
        mac: [u8; 6],
    ) -> &'static mut Eth {
        let (eth, mut phy) = loop {
            match Eth::start(parts, pins, clocks, mac) {
                Ok(started) => break started,
                Err((e, p, q)) => {
                    println!("boot: Ethernet: {e}; retrying in {} s", RETRY_MS / 1000);
                    (parts, pins) = (p, q);
                    time::sleep_ms(RETRY_MS);
                }
            }
        };
        let eth = cortex_m::singleton!(: Eth = eth).unwrap();
        while let Err(e) = phy {
            println!("boot: Ethernet: {e}; retrying in {} s", RETRY_MS / 1000);
            time::sleep_ms(RETRY_MS);
            phy = eth.find_phy();
        }
        let (addr, id) = eth.phy();
        println!("eth: {id} at MDIO address {addr}, autonegotiating");
        eth
    }

    /// Initialises the card and mounts its FAT volume, retrying (with a
    /// console message each time) until both work. The volume lives in a
    /// `static` (a singleton) and is mounted there, in place: its state
    /// never passes through the stack.
    #[allow(clippy::mut_from_ref)]
    fn bring_up_storage(sd: &'static SdCard) -> (CardInfo, &'static mut Fs) {
        let fs: &'static mut Fs =
            cortex_m::singleton!(: Fs = FatStorage::new(sd, FixedTime)).unwrap();
        loop {
            match sd.init() {
                Err(e) => println!(
                    "boot: SD card: {e} (card detect: {}); retrying in {} s",
                    if sd.detected() {
                        "a card is in the slot"
                    } else {
                        "slot empty"
                    },
                    RETRY_MS / 1000
                ),
                Ok(info) => match fs.mount() {
                    Ok(()) => return (info, fs),
                    Err(e) => println!(
                        "boot: SD card ({} MiB {}): {e}; retrying in {} s",
                        info.bytes() >> 20,
                        info.card_type,
                        RETRY_MS / 1000
                    ),
                },
            }
            time::sleep_ms(RETRY_MS);
        }
    }

    /// Waits for the PHY to report a link, saying so when it takes longer
    /// than autonegotiation should.
    fn wait_for_link(eth: &mut Eth) {
        let t0 = time::now_ms();
        let mut next_report = t0 + LINK_GRACE_MS;
        loop {
            if let Some(Some(speed)) = eth.poll_link() {
                println!("eth: link up, {speed}");
                return;
            }
            if eth.link().is_some() {
                return;
            }
            if time::now_ms() >= next_report {
                println!("boot: Ethernet link down (cable unplugged?); waiting");
                next_report += 10_000;
            }
            time::sleep_ms(100);
        }
    }

    struct LinkText(Option<board_stm32f4::phy::LinkSpeed>);
    impl core::fmt::Display for LinkText {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match self.0 {
                Some(s) => write!(f, "up, {s}"),
                None => f.write_str("down"),
            }
        }
    }

    /// One-letter console commands: `s` prints statistics.
    fn console_command(c: u8, app: &App<'_, AppFs>, sd: &SdCard, eth: &Eth) {
        if c == b's' {
            let st = &eth::STATS;
            let o = core::sync::atomic::Ordering::Relaxed;
            let sds = sd.stats();
            let cache = app.storage().cache_stats();
            println!(
                "stats: up {} ms, sessions {}, open files {}, stack peak {} of {}, link {}, eth rx {} err {} tx {} drop {} irq {}, sd rd {} cmds/{} blocks wr {}/{} retries {} errs {}, cache {:?}",
                time::now_ms(),
                app.sessions(),
                app.storage().open_files(),
                mem::high_water(),
                mem::stack_size(),
                LinkText(eth.link()),
                st.rx_frames.load(o),
                st.rx_errors.load(o),
                st.tx_frames.load(o),
                st.tx_dropped.load(o),
                st.irqs.load(o),
                sds.read_cmds,
                sds.blocks_read,
                sds.write_cmds,
                sds.blocks_written,
                sds.retries,
                sds.errors,
                cache
            );
        }
    }

    #[exception]
    fn SysTick() {
        time::on_tick();
    }

    #[interrupt]
    fn ETH() {
        eth::on_irq();
    }

    #[exception]
    unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
        println!("\nHARD FAULT at pc {:#010x}: {:?}; resetting", ef.pc(), ef);
        cortex_m::peripheral::SCB::sys_reset();
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        cortex_m::interrupt::disable();
        print!("\nPANIC: {info}; resetting\n");
        cortex_m::peripheral::SCB::sys_reset();
    }
}
