//! UART0 console (PL011, "luminary" variant): 115200 8N1 on the real board,
//! `-serial stdio` (or a file) under QEMU, where TX is synchronous.

use super::Reg;
use super::sysctl::SYSCLK_HZ;

const BASE: usize = 0x4000_C000;
const DR: Reg = Reg(BASE + 0x000);
const FR: Reg = Reg(BASE + 0x018);
const IBRD: Reg = Reg(BASE + 0x024);
const FBRD: Reg = Reg(BASE + 0x028);
const LCRH: Reg = Reg(BASE + 0x02C);
const CTL: Reg = Reg(BASE + 0x030);

const FR_TXFF: u32 = 1 << 5;
const FR_RXFE: u32 = 1 << 4;
const BAUD: u32 = 115_200;

/// GPIO A (PA0/PA1 carry U0Rx/U0Tx on the real chip).
const GPIOA_AFSEL: Reg = Reg(0x4000_4000 + 0x420);
const GPIOA_DEN: Reg = Reg(0x4000_4000 + 0x51C);

/// Sets up UART0 for 115200 8N1 with FIFOs. Call after `sysctl::init_clocks`.
pub fn init() {
    GPIOA_AFSEL.modify(|v| v | 0b11);
    GPIOA_DEN.modify(|v| v | 0b11);
    CTL.write(0);
    // Divisor = SYSCLK / (16 * baud), fraction in 64ths, rounded.
    let div64 = (SYSCLK_HZ * 4 + BAUD / 2) / BAUD;
    IBRD.write(div64 >> 6);
    FBRD.write(div64 & 0x3F);
    LCRH.write((0b11 << 5) | (1 << 4)); // 8 bits, FIFO enabled
    CTL.write((1 << 9) | (1 << 8) | 1); // RXE, TXE, UARTEN
}

/// Writes one byte, waiting while the TX FIFO is full.
pub fn write_byte(b: u8) {
    while FR.read() & FR_TXFF != 0 {}
    DR.write(b as u32);
}

/// A received byte, if any.
pub fn read_byte() -> Option<u8> {
    if FR.read() & FR_RXFE != 0 {
        None
    } else {
        Some(DR.read() as u8)
    }
}

/// The console as a `core::fmt::Write` sink; `\n` becomes `\r\n`.
#[derive(Clone, Copy, Default)]
pub struct Console;

impl core::fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                write_byte(b'\r');
            }
            write_byte(b);
        }
        Ok(())
    }
}

/// `print!` to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {{
        let _ = core::fmt::Write::write_fmt(&mut $crate::hw::uart::Console, format_args!($($arg)*));
    }};
}

/// `println!` to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => {{
        $crate::print!($($arg)*);
        $crate::print!("\n");
    }};
}

/// True when a received byte waits.
pub fn rx_pending() -> bool {
    FR.read() & FR_RXFE == 0
}
