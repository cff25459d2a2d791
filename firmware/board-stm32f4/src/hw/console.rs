//! The console: USART6, TX on PC6 and RX on PC7, 115200 8N1. On the
//! STM32F4DIS-BB these go through its SP3232 transceiver to the DB9 RS-232
//! connector; without the base board, a 3.3 V USB serial adapter on PC6/PC7.
//! (USART2's PA2 is the PHY's MDIO line on the base board, so it cannot be
//! the console.)
//!
//! The HAL configures the USART and its pins once ([`init`]); printing then
//! writes the data register directly, so [`print!`](crate::print) works
//! anywhere, the panic and fault handlers included.

use stm32f4xx_hal::gpio::{PC6, PC7};
use stm32f4xx_hal::pac::{self, USART6};
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::rcc::Clocks;
use stm32f4xx_hal::serial::{Config, Serial};

const SR_RXNE: u32 = 1 << 5;
const SR_TXE: u32 = 1 << 7;
const SR_ORE: u32 = 1 << 3;

/// Sets up USART6 for 115200 8N1. The HAL's handle is dropped on purpose
/// (dropping it changes nothing): the USART stays configured and belongs to
/// the console from now on.
pub fn init(usart: USART6, tx: PC6, rx: PC7, clocks: &Clocks) {
    let _: Serial<USART6> = Serial::new(
        usart,
        (tx, rx),
        Config::default().baudrate(115_200.bps()),
        clocks,
    )
    .unwrap_or_else(|_| panic!("USART6 configuration"));
}

fn regs() -> &'static pac::usart6::RegisterBlock {
    // SAFETY: after `init` the console is the USART's only user; status reads
    // and data-register accesses are single 32-bit accesses.
    unsafe { &*USART6::ptr() }
}

/// Writes one byte, waiting while the transmit register is full. The wait
/// is bounded (a byte takes 87 us at 115200 baud), so a panic before
/// [`init`] cannot hang on a USART whose clock is off.
pub fn write_byte(b: u8) {
    let r = regs();
    let mut spins = 0u32;
    while r.sr.read().bits() & SR_TXE == 0 {
        spins += 1;
        if spins > 200_000 {
            return;
        }
    }
    r.dr.write(|w| unsafe { w.bits(u32::from(b)) });
}

/// A received byte, if any.
pub fn read_byte() -> Option<u8> {
    let r = regs();
    let sr = r.sr.read().bits();
    if sr & (SR_RXNE | SR_ORE) == 0 {
        return None;
    }
    // Reading DR after SR also clears an overrun.
    let b = r.dr.read().bits() as u8;
    (sr & SR_RXNE != 0).then_some(b)
}

/// True when a received byte waits.
pub fn rx_pending() -> bool {
    regs().sr.read().bits() & SR_RXNE != 0
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
        let _ = core::fmt::Write::write_fmt(&mut $crate::hw::console::Console, format_args!($($arg)*));
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
