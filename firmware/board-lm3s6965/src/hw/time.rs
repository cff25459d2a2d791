//! Time base: SysTick at 1 kHz on the core clock (QEMU connects no SysTick
//! reference clock, so CLKSOURCE is the core clock, and SYST_CALIB is empty:
//! the rate comes from our own RCC programming, `sysctl::SYSCLK_HZ`).
//!
//! [`now_ms`] is monotonic and never wraps (64 bits). [`Delay`] busy-waits on
//! the SysTick counter (DWT CYCCNT is not modelled by QEMU). [`idle`] sleeps
//! with WFI, which QEMU really halts on (WFE only yields there).

use core::cell::Cell;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::interrupt::Mutex;
use cortex_m::peripheral::{SYST, syst::SystClkSource};

use super::sysctl::SYSCLK_HZ;

const RELOAD: u32 = SYSCLK_HZ / 1000 - 1;

static MILLIS: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));
/// Low 32 bits of the millisecond count, readable without a critical section.
static MILLIS_LO: AtomicU32 = AtomicU32::new(0);

/// Starts the 1 kHz tick. Call once, after `sysctl::init_clocks`.
pub fn init(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Call from the SysTick exception handler.
pub fn on_tick() {
    cortex_m::interrupt::free(|cs| {
        let c = MILLIS.borrow(cs);
        let v = c.get() + 1;
        c.set(v);
        MILLIS_LO.store(v as u32, Ordering::Relaxed);
    });
}

/// Milliseconds since boot.
pub fn now_ms() -> u64 {
    cortex_m::interrupt::free(|cs| MILLIS.borrow(cs).get())
}

/// Milliseconds since boot, low 32 bits (cheap, wraps after 49 days).
pub fn now_ms32() -> u32 {
    MILLIS_LO.load(Ordering::Relaxed)
}

/// Busy-wait delays on the SysTick down-counter; accurate to a few cycles,
/// independent of how fast QEMU executes instructions.
#[derive(Clone, Copy, Default)]
pub struct Delay;

impl Delay {
    fn wait_ticks(mut ticks: u64) {
        let mut last = SYST::get_current();
        while ticks > 0 {
            let now = SYST::get_current();
            // Down-counter: elapsed = last - now, modulo the reload period.
            let elapsed = if now <= last {
                last - now
            } else {
                last + (RELOAD + 1 - now)
            };
            ticks = ticks.saturating_sub(elapsed as u64);
            last = now;
        }
    }
}

impl embedded_hal::delay::DelayNs for Delay {
    fn delay_ns(&mut self, ns: u32) {
        Self::wait_ticks((ns as u64 * (SYSCLK_HZ / 1_000_000) as u64).div_ceil(1000));
    }
    fn delay_us(&mut self, us: u32) {
        Self::wait_ticks(us as u64 * (SYSCLK_HZ / 1_000_000) as u64);
    }
    fn delay_ms(&mut self, ms: u32) {
        Self::wait_ticks(ms as u64 * (SYSCLK_HZ / 1000) as u64);
    }
}

/// Sleeps until the next interrupt (SysTick within 1 ms, the Ethernet MAC on
/// a received frame, the UART), unless `work_pending` says there is already
/// something to do. The check runs with interrupts masked, so an interrupt
/// that arrives between the check and WFI still wakes it (WFI wakes on a
/// pending interrupt even while PRIMASK is set).
pub fn idle(work_pending: impl FnOnce() -> bool) {
    cortex_m::interrupt::free(|_| {
        if !work_pending() {
            cortex_m::asm::wfi();
        }
    });
}
