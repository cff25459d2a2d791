//! RAM use: the statics in SRAM, and the stack, which has all of CCM to
//! itself (memory.x).
//!
//! [`paint`] fills the unused stack with a pattern at boot; [`high_water`]
//! finds how much of it was ever overwritten.

const PATTERN: u32 = 0x5AC3_5AC3;

unsafe extern "C" {
    static _stack_start: u32;
    static _stack_end: u32;
    static _ram_start: u32;
    static _ram_end: u32;
    static __sheap: u32;
}

fn stack_bounds() -> (usize, usize) {
    // Linker symbols: only their addresses are used.
    (
        &raw const _stack_end as usize,
        &raw const _stack_start as usize,
    )
}

/// Bytes of SRAM taken by statics (.data, .bss, .uninit).
pub fn sram_static() -> usize {
    &raw const __sheap as usize - &raw const _ram_start as usize
}

/// Bytes of SRAM nothing uses.
pub fn sram_free() -> usize {
    &raw const _ram_end as usize - &raw const __sheap as usize
}

/// True when `[addr, addr + len)` lies in SRAM, where the DMA masters reach.
pub fn in_sram(addr: usize, len: usize) -> bool {
    addr >= &raw const _ram_start as usize && addr + len <= &raw const _ram_end as usize
}

/// The stack's size: all of CCM.
pub fn stack_size() -> usize {
    let (end, start) = stack_bounds();
    start - end
}

/// Paints the stack below the current stack pointer (minus a small guard for
/// this function's own frame). Call once, early in `main`.
pub fn paint() {
    let (end, _) = stack_bounds();
    let sp = cortex_m::register::msp::read() as usize;
    let limit = sp.saturating_sub(64) & !3;
    let mut p = end;
    while p < limit {
        // SAFETY: [end, sp - 64) is unused stack, word aligned.
        unsafe { core::ptr::write_volatile(p as *mut u32, PATTERN) };
        p += 4;
    }
}

/// The deepest the stack has been since [`paint`], in bytes.
pub fn high_water() -> usize {
    let (end, start) = stack_bounds();
    let mut p = end;
    // SAFETY: reads within the stack region, word aligned.
    while p < start && unsafe { core::ptr::read_volatile(p as *const u32) } == PATTERN {
        p += 4;
    }
    start - p
}
