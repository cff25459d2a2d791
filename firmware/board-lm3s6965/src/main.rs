//! The FTP server firmware for QEMU's lm3s6965evb (and the EK-LM3S6965).
//!
//! Boot: clocks (50 MHz), console, SysTick; the SD card (one attempt: a
//! missing or unformatted card does not stop the board); the Ethernet MAC;
//! the banner; then the shared application (`ftpd_app::App`) in a poll loop
//! that sleeps with WFI between events. Without a mounted card FTP serves
//! anyway (logins work, file commands fail with `451`) and the loop tries
//! the card again every 2 s, with a console message, until it mounts.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "board-lm3s6965 is firmware: build it for thumbv7m-none-eabi (cargo build in its directory)"
    );
}

#[cfg(target_os = "none")]
mod fw {
    use core::cell::UnsafeCell;
    use core::mem::MaybeUninit;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use core::sync::atomic::{AtomicBool, Ordering};

    use board_lm3s6965::clock::Clock;
    use board_lm3s6965::hw::enet::{self, Enet};
    use board_lm3s6965::hw::gpio::SdChipSelect;
    use board_lm3s6965::hw::ssi::Ssi0;
    use board_lm3s6965::hw::time::{self, Delay};
    use board_lm3s6965::hw::{stack, sysctl, uart};
    use board_lm3s6965::params::BootParams;
    use board_lm3s6965::sd::{CardInfo, SdCard, Shared};
    use board_lm3s6965::{VERSION, print, println};
    use cortex_m_rt::{ExceptionFrame, entry, exception};
    use ftpd::Storage;
    use ftpd_app::{App, NetConfig, Resources, Settings};
    use ftpd_fat::FatStorage;
    use lm3s6965::interrupt;

    type Sd = SdCard<Ssi0, SdChipSelect, Delay>;
    type Fs = FatStorage<Shared<'static, Sd>, Clock, 4, 2, 2>;
    type AppFs = &'static mut Fs;

    /// Seconds between retries of a failed boot step.
    const RETRY_MS: u64 = 2_000;
    /// How often the loop looks for a new stack peak (a scan of the unused
    /// stack: a few thousand reads).
    const STACK_REPORT_MS: u64 = 100;

    /// What the boot steps hand to the main loop.
    struct Booted {
        params: Option<BootParams>,
        mac: [u8; 6],
        clock: Clock,
        sd: &'static Sd,
        card: Option<CardInfo>,
        fs: &'static mut Fs,
        eth: &'static mut Enet,
    }

    #[entry]
    fn main() -> ! {
        // Two frames one after the other, so the stack of the boot steps
        // (mounting the volume is the deepest) is not added to the loop's.
        let b = boot();
        run(b)
    }

    #[inline(never)]
    fn boot() -> Booted {
        stack::paint();
        sysctl::init_clocks();
        uart::init();
        let cp = cortex_m::Peripherals::take().unwrap();
        time::init(cp.SYST);
        println!();
        println!("ftpd lm3s6965 v{VERSION}: booting");

        let params = BootParams::read();
        let mac = sysctl::mac_address();
        // Large state lives in statics (.bss), not on the stack.
        let eth: &'static mut Enet = {
            static ETH: Slot<Enet> = Slot::new();
            ETH.put(|| Enet::new(mac))
        };

        let p = params.unwrap_or_default();
        let clock = Clock::new(p.unix_time, time::now_ms);
        let sd: &'static Sd =
            cortex_m::singleton!(: Sd = SdCard::new(Ssi0::new(), SdChipSelect::new(), Delay))
                .unwrap();
        let (card, fs) = bring_up_storage(sd, clock);
        Booted {
            params,
            mac,
            clock,
            sd,
            card,
            fs,
            eth,
        }
    }

    #[inline(never)]
    fn run(b: Booted) -> ! {
        let Booted {
            params,
            mac,
            clock,
            sd,
            card,
            fs,
            eth,
        } = b;
        let p = params.unwrap_or_default();
        let vol = fs.info();
        let free = fs.free_space();
        let boot_stack = stack::high_water();

        // The link: QEMU models no PHY and gives no link indication.
        if !eth.link_up() {
            println!("boot: Ethernet link down; waiting");
            while !eth.link_up() {
                sleep_ms(RETRY_MS);
            }
        }

        let (ip, prefix) = p.ip.unwrap_or((Ipv4Addr::new(192, 0, 2, 2), 24));
        let seed = (time::now_ms() << 24)
            ^ cortex_m::peripheral::SYST::get_current() as u64
            ^ u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0, 0]);
        let net = NetConfig {
            mac,
            ipv4: Some((ip, prefix)),
            ipv4_gateway: p.gateway,
            ipv6: Some((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2), 64)),
            ipv6_gateway: None,
            random_seed: seed,
        };
        let mut settings = Settings::new(net);
        settings.control_port = p.ftp_port;
        settings.pasv_address = p.pasv_address;
        if let Some(r) = p.pasv_ports {
            settings.pasv_ports = r;
        }
        if let Some(s) = p.idle_timeout_s {
            settings.idle_timeout_ms = u64::from(s) * 1000;
        }
        if let Some(s) = p.data_timeout_s {
            settings.data_timeout_ms = u64::from(s) * 1000;
        }

        let res = Resources::take().unwrap();
        let mut app = make_app(res, &settings, eth, fs);
        #[cfg(feature = "diag")]
        println!("diag: discard 9 chargen 19 sdbench 7");
        app.set_utc(clock.utc());

        println!(
            "ftpd lm3s6965 v{VERSION} ready: ftp://{ip}:{}/ mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            settings.control_port, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
        );
        println!(
            "  ip {ip}/{prefix} gw {} pasv {}:{}-{} ({})",
            OptAddr(settings.net.ipv4_gateway),
            OptAddr(settings.pasv_address),
            settings.pasv_ports.0,
            settings.pasv_ports.1,
            if params.is_some() {
                "boot parameters"
            } else {
                "defaults"
            }
        );
        match card {
            Some(card) => print_card(card, vol, free),
            None => println!(
                "  sd NOT READY: FTP serves without storage (file commands fail with 451); retrying every {} s",
                RETRY_MS / 1000
            ),
        }
        if !clock.known() {
            println!("  time of day unknown (no boot parameters): files dated 2000-01-01");
        }
        println!(
            "  ram: {} bytes free for the stack of {} (64 KiB SRAM), stack used so far {} (boot steps {boot_stack}); app {} in it, volume {} in .bss",
            stack::free_ram() - stack::high_water(),
            stack::free_ram(),
            stack::high_water(),
            core::mem::size_of::<App<'static, AppFs>>(),
            core::mem::size_of::<Fs>()
        );

        let mut reported_peak = 0;
        let mut next_report = 0;
        let mut next_clock = 0;
        let mut next_mount = time::now_ms() + RETRY_MS;
        loop {
            let now = time::now_ms();
            let wake = app.poll(now, eth);
            if now >= next_mount && !app.storage().is_mounted() {
                next_mount = now + RETRY_MS;
                retry_card(sd, &mut app);
            }
            #[cfg(feature = "diag")]
            sdbench(&mut app);

            if now >= next_clock {
                next_clock = now + 1_000;
                app.set_utc(clock.utc());
            }
            // A new peak is printed within 100 ms, so a harness that stops
            // the board shortly after its last session still reads it.
            if now >= next_report {
                next_report = now + STACK_REPORT_MS;
                let peak = stack::high_water();
                if peak > reported_peak {
                    reported_peak = peak;
                    println!("stack: peak {peak} bytes of {}", stack::free_ram());
                }
            }
            if let Some(c) = uart::read_byte() {
                console_command(c, &app, sd);
            }

            // Sleep until the next deadline, a frame or a console byte.
            let mut deadline = wake.unwrap_or(u64::MAX).min(next_report).min(next_clock);
            if !app.storage().is_mounted() {
                deadline = deadline.min(next_mount);
            }
            loop {
                if Enet::rx_pending() || time::now_ms() >= deadline || uart::rx_pending() {
                    break;
                }
                time::idle(|| Enet::rx_pending() || uart::rx_pending());
            }
        }
    }

    /// Builds the application in its own frame, so the temporaries of its
    /// construction are not part of the main loop's frame. The application
    /// (4.8 KB) is returned straight into `run`'s frame. In a `static` it
    /// would cost the same RAM, and more stack: a value returned into a
    /// `static` is built on the stack and copied (see [`fill`]), and that
    /// copy, with `App::new`'s own frames on top, would be deeper than the
    /// engine's deepest calls are under `run`.
    #[inline(never)]
    fn make_app(
        res: &'static mut Resources<'static>,
        settings: &Settings,
        eth: &mut Enet,
        fs: &'static mut Fs,
    ) -> App<'static, AppFs> {
        App::new(res, settings, eth, fs, time::now_ms())
    }

    /// A `static` filled once at run time (`cortex_m::singleton!` without
    /// its critical section). The value is built in [`fill`]'s frame and
    /// copied into place, so the copy's stack is gone before the caller goes
    /// deeper (mounting the volume).
    struct Slot<T> {
        taken: AtomicBool,
        value: UnsafeCell<MaybeUninit<T>>,
    }

    // SAFETY: the value is reachable only through the one `&'static mut`
    // that `put` hands out, once (guarded by `taken`).
    unsafe impl<T> Sync for Slot<T> {}

    impl<T> Slot<T> {
        const fn new() -> Self {
            Slot {
                taken: AtomicBool::new(false),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            }
        }

        /// Fills the slot with `make()` and lends it for ever; panics when
        /// called a second time.
        #[inline(always)]
        #[allow(clippy::mut_from_ref)] // once only, guarded by `taken`
        fn put(&'static self, make: impl FnOnce() -> T) -> &'static mut T {
            assert!(
                !self.taken.swap(true, Ordering::AcqRel),
                "static filled twice"
            );
            // SAFETY: `taken` lets exactly one caller through, so this is
            // the only reference to the value ever made.
            fill(unsafe { &mut *self.value.get() }, make)
        }
    }

    /// `slot.write(make())` in a frame of its own. The optimiser builds
    /// the value on the stack and copies it: it writes a result in place
    /// only into a local or the caller's return slot, never through a
    /// pointer to a `static`.
    #[inline(never)]
    fn fill<T>(slot: &mut MaybeUninit<T>, make: impl FnOnce() -> T) -> &mut T {
        slot.write(make())
    }

    /// The diag build's storage ceiling (ftpd-app's sdbench service, port 7):
    /// sequential reads and rewrites through the volume's block cache.
    #[cfg(feature = "diag")]
    #[inline(never)]
    fn sdbench(app: &mut App<'static, AppFs>) {
        app.serve_sdbench(|fs, mib| {
            let r = fs
                .bench_sequential(mib << 11, &mut time::now_ms)
                .map_err(|_| "card error")?;
            Ok(ftpd_app::diag::SdBenchResult {
                bytes: r.bytes(),
                read_ms: r.read_time,
                write_ms: r.write_time,
            })
        });
    }

    /// One-letter console commands: `s` prints statistics.
    fn console_command(c: u8, app: &App<'_, AppFs>, sd: &Sd) {
        if c == b's' {
            let st = &enet::STATS;
            let o = core::sync::atomic::Ordering::Relaxed;
            let sds = sd.stats();
            let cache = app.storage().cache_stats();
            let census = app.census();
            println!(
                "stats: up {} ms, sessions {}, open files {}, sockets listening {} data-free {} owned {} closing {}, stack peak {} of {}, eth rx {} drop {} tx {} irq {} fifo-resets {}, sd cmds {} rd {} wr {} errs {}, cache {:?}",
                time::now_ms(),
                app.sessions(),
                app.storage().open_files(),
                census.control_listening,
                census.data_free,
                census.owned,
                census.closing,
                stack::high_water(),
                stack::free_ram(),
                st.rx_frames.load(o),
                st.rx_dropped.load(o),
                st.tx_frames.load(o),
                st.irqs.load(o),
                st.rx_fifo_resets.load(o),
                sds.commands,
                sds.blocks_read,
                sds.blocks_written,
                sds.errors,
                cache
            );
        }
    }

    /// The storage, and the card if it could be initialised and its FAT
    /// volume mounted at the first attempt. Without one the board boots
    /// anyway and the main loop tries again ([`retry_card`]). The volume is
    /// mounted in place, in its `static`: its state never passes through
    /// the stack.
    #[inline(never)]
    #[allow(clippy::mut_from_ref)] // the &mut comes from a singleton, not from `sd`
    fn bring_up_storage(sd: &'static Sd, clock: Clock) -> (Option<CardInfo>, &'static mut Fs) {
        let fs: &'static mut Fs = {
            static FS: Slot<Fs> = Slot::new();
            FS.put(|| FatStorage::new(Shared(sd), clock))
        };
        let card = mount_card(sd, fs);
        (card, fs)
    }

    /// The main loop's attempt while no card is mounted; says so when one is.
    #[inline(never)]
    fn retry_card(sd: &Sd, app: &mut App<'static, AppFs>) {
        if let Some(card) = mount_card(sd, app.storage_mut()) {
            let fs = app.storage_mut();
            let (vol, free) = (fs.info(), fs.free_space());
            println!("sd: card ready");
            print_card(card, vol, free);
        }
    }

    /// One attempt to initialise the card and mount its volume; says why
    /// not on the console.
    #[inline(never)]
    fn mount_card(sd: &Sd, fs: &mut Fs) -> Option<CardInfo> {
        match sd.init() {
            Err(e) => println!(
                "sd: SD card not ready: {e}; retrying in {} s",
                RETRY_MS / 1000
            ),
            Ok(info) => {
                sd.with_bus(|b| b.set_fast());
                match fs.mount() {
                    Ok(()) => return Some(info),
                    Err(e) => println!(
                        "sd: SD card not ready: card of {} MiB: {e}; retrying in {} s [stack {} of {}]",
                        info.bytes() >> 20,
                        RETRY_MS / 1000,
                        stack::high_water(),
                        stack::free_ram()
                    ),
                }
            }
        }
        None
    }

    fn print_card(card: CardInfo, vol: ftpd_fat::VolumeInfo, free: Option<u64>) {
        println!(
            "  sd {} MiB ({:?}, capacity from {:?}), {:?} {}, {} MiB, {} KiB free, cluster {} B",
            card.bytes() >> 20,
            card.card_type,
            card.capacity_source,
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
    }

    fn sleep_ms(ms: u64) {
        let until = time::now_ms() + ms;
        while time::now_ms() < until {
            time::idle(|| false);
        }
    }

    struct OptAddr(Option<Ipv4Addr>);
    impl core::fmt::Display for OptAddr {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match self.0 {
                Some(a) => write!(f, "{a}"),
                None => write!(f, "-"),
            }
        }
    }

    #[exception]
    fn SysTick() {
        time::on_tick();
    }

    #[interrupt]
    fn ETHERNET() {
        enet::on_irq();
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
