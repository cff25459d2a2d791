//! Free RAM and the stack's high-water mark.
//!
//! Everything between the end of `.bss` (`_stack_end`, from cortex-m-rt) and
//! the top of the stack (`_stack_start`) is stack: there is no heap. [`paint`]
//! fills the unused part with a pattern at boot; [`high_water`] finds how much
//! of it was ever overwritten.

const PATTERN: u32 = 0x5AC3_5AC3;

unsafe extern "C" {
    static _stack_start: u32;
    static _stack_end: u32;
}

fn bounds() -> (usize, usize) {
    // Linker symbols: only their addresses are used.
    (
        &raw const _stack_end as usize,
        &raw const _stack_start as usize,
    )
}

/// Bytes of SRAM left for the stack (everything that is not static data).
pub fn free_ram() -> usize {
    let (end, start) = bounds();
    start - end
}

/// Paints the stack below the current stack pointer (minus a small guard for
/// this function's own frame). Call once, early in `main`.
pub fn paint() {
    let (end, _) = bounds();
    let sp = cortex_m::register::msp::read() as usize;
    let mut p = end;
    let limit = sp.saturating_sub(64) & !3;
    while p < limit {
        // SAFETY: [end, sp - 64) is unused stack, word aligned.
        unsafe { core::ptr::write_volatile(p as *mut u32, PATTERN) };
        p += 4;
    }
}

/// The deepest the stack has been since [`paint`], in bytes.
pub fn high_water() -> usize {
    let (end, start) = bounds();
    let mut p = end;
    // SAFETY: reads within the stack region, word aligned.
    while p < start && unsafe { core::ptr::read_volatile(p as *const u32) } == PATTERN {
        p += 4;
    }
    start - p
}
