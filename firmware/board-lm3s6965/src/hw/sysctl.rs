//! System control: the clock tree and the factory MAC address.
//!
//! On the real chip SYSCLK = PLL (400 MHz / 2) / (SYSDIV + 1) when the PLL is
//! used. QEMU ignores every RCC field except SYSDIV and computes
//! 200 MHz / (SYSDIV + 1) whatever the oscillator settings, so programming
//! the PLL path with SYSDIV = 3 gives 50 MHz on both.

use super::Reg;

const BASE: usize = 0x400F_E000;
const RIS: Reg = Reg(BASE + 0x050);
const RCC: Reg = Reg(BASE + 0x060);
const RCGC1: Reg = Reg(BASE + 0x104);
const RCGC2: Reg = Reg(BASE + 0x108);
const USER0: Reg = Reg(BASE + 0x1E0);
const USER1: Reg = Reg(BASE + 0x1E4);

/// The core clock after [`init_clocks`].
pub const SYSCLK_HZ: u32 = 50_000_000;

const RCC_BYPASS: u32 = 1 << 11;
const RCC_USESYSDIV: u32 = 1 << 22;
const RCC_PWRDN: u32 = 1 << 13;
const RCC_XTAL_MASK: u32 = 0xF << 6;
const RCC_XTAL_8MHZ: u32 = 0xE << 6;
const RCC_OSCSRC_MASK: u32 = 0x3 << 4;
const RCC_SYSDIV_MASK: u32 = 0xF << 23;
const RIS_PLLLRIS: u32 = 1 << 6;

/// Runs the core at 50 MHz from the PLL (8 MHz crystal, as on the EK board),
/// and enables the clocks of the peripherals the firmware uses (QEMU does
/// not model clock gating; the real chip needs it).
pub fn init_clocks() {
    // Bypass the PLL while it is reconfigured.
    let mut rcc = RCC.read();
    rcc |= RCC_BYPASS;
    rcc &= !RCC_USESYSDIV;
    RCC.write(rcc);
    // Main oscillator, 8 MHz crystal, PLL powered.
    rcc &= !(RCC_XTAL_MASK | RCC_OSCSRC_MASK | RCC_PWRDN);
    rcc |= RCC_XTAL_8MHZ;
    RCC.write(rcc);
    // SYSDIV = 3: 200 MHz / 4 = 50 MHz.
    rcc = (rcc & !RCC_SYSDIV_MASK) | (3 << 23) | RCC_USESYSDIV;
    RCC.write(rcc);
    // Wait for the PLL to lock (QEMU sets PLLLRIS at once), bounded.
    for _ in 0..100_000 {
        if RIS.read() & RIS_PLLLRIS != 0 {
            break;
        }
    }
    RCC.write(rcc & !RCC_BYPASS);

    // Clock gates: SSI0 (RCGC1 bit 4), UART0 (RCGC1 bit 0); GPIO A and D
    // (RCGC2 bits 0, 3), Ethernet MAC and PHY (RCGC2 bits 28, 30).
    RCGC1.modify(|v| v | (1 << 4) | (1 << 0));
    RCGC2.modify(|v| v | (1 << 0) | (1 << 3) | (1 << 28) | (1 << 30));
    // A few cycles before the peripherals may be touched.
    cortex_m::asm::delay(16);
}

/// The factory MAC address in USER0/USER1 (QEMU fills them from
/// `-nic ...,mac=`), or a locally administered fallback when unprogrammed.
pub fn mac_address() -> [u8; 6] {
    let (u0, u1) = (USER0.read(), USER1.read());
    if u0 == 0xFFFF_FFFF || u1 == 0xFFFF_FFFF || (u0 | u1) == 0 {
        return [0x02, 0x00, 0x00, 0x65, 0x69, 0x65];
    }
    [
        u0 as u8,
        (u0 >> 8) as u8,
        (u0 >> 16) as u8,
        u1 as u8,
        (u1 >> 8) as u8,
        (u1 >> 16) as u8,
    ]
}
