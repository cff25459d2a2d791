//! Register-level drivers for the LM3S6965 (only what QEMU's lm3s6965evb
//! models and the firmware uses). The `lm3s6965` crate supplies only the
//! vector table, so registers are reached through [`Reg`].

// Register offsets are written out, `BASE + 0x00` included.
#![allow(clippy::identity_op)]

pub mod enet;
pub mod gpio;
pub mod ssi;
pub mod stack;
pub mod sysctl;
pub mod time;
pub mod uart;

/// One 32-bit memory-mapped register. Every access is volatile and 32 bits
/// wide (QEMU's stellaris_enet treats any access as a full-register one).
#[derive(Clone, Copy)]
pub struct Reg(pub usize);

impl Reg {
    #[inline(always)]
    pub fn read(self) -> u32 {
        // SAFETY: the address is a device register of this chip.
        unsafe { core::ptr::read_volatile(self.0 as *const u32) }
    }
    #[inline(always)]
    pub fn write(self, v: u32) {
        // SAFETY: the address is a device register of this chip.
        unsafe { core::ptr::write_volatile(self.0 as *mut u32, v) }
    }
    #[inline(always)]
    pub fn modify(self, f: impl FnOnce(u32) -> u32) {
        self.write(f(self.read()))
    }
}
