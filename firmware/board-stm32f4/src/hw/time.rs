//! Time base: SysTick at 1 kHz on the core clock (HCLK).
//!
//! [`now_ms`] is monotonic and never wraps (64 bits). [`idle`] sleeps with
//! WFI until the next interrupt: SysTick within a millisecond, the Ethernet
//! DMA when a frame arrives.

use core::cell::Cell;

use cortex_m::interrupt::Mutex;
use cortex_m::peripheral::{SYST, syst::SystClkSource};

use super::HCLK_HZ;

static MILLIS: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));

/// Starts the 1 kHz tick. Call once, after the clocks are set up.
pub fn init(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(HCLK_HZ / 1000 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Call from the SysTick exception handler.
pub fn on_tick() {
    cortex_m::interrupt::free(|cs| {
        let c = MILLIS.borrow(cs);
        c.set(c.get() + 1);
    });
}

/// Milliseconds since boot.
pub fn now_ms() -> u64 {
    cortex_m::interrupt::free(|cs| MILLIS.borrow(cs).get())
}

/// Busy-waits `us` microseconds (core cycles; for the short waits of the
/// PHY reset and the SD power-up).
pub fn delay_us(us: u32) {
    cortex_m::asm::delay(us.saturating_mul(HCLK_HZ / 1_000_000));
}

/// Sleeps `ms` milliseconds with WFI.
pub fn sleep_ms(ms: u64) {
    let until = now_ms() + ms;
    while now_ms() < until {
        idle(|| false);
    }
}

/// Sleeps until the next interrupt unless `work_pending` says there is
/// already something to do. The check runs with interrupts masked, so an
/// interrupt that arrives between the check and WFI still wakes it (WFI
/// wakes on a pending interrupt even while PRIMASK is set).
pub fn idle(work_pending: impl FnOnce() -> bool) {
    cortex_m::interrupt::free(|_| {
        if !work_pending() {
            cortex_m::asm::wfi();
        }
    });
}
