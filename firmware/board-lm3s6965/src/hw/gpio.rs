//! GPIO port D pin 0: the SD card's chip select (active low).
//!
//! QEMU's PL061 only signals an edge when the pin's computed output changes,
//! and its remembered output starts at 0 while the board holds the line
//! high. So the pin is driven high first (data before direction: no glitch on
//! the real chip either) and only then low.

use core::convert::Infallible;

use super::Reg;

const GPIOD: usize = 0x4000_7000;
/// Masked data access: address bits 9:2 select the bits written (PD0 only).
const DATA_PD0: Reg = Reg(GPIOD + (1 << 2));
const DIR: Reg = Reg(GPIOD + 0x400);
const AFSEL: Reg = Reg(GPIOD + 0x420);
const DEN: Reg = Reg(GPIOD + 0x51C);

/// The SD card's chip select on PD0.
pub struct SdChipSelect(());

impl SdChipSelect {
    /// Configures PD0 as an output, driven high (card deselected).
    #[allow(clippy::new_without_default)] // programs the hardware
    pub fn new() -> Self {
        DATA_PD0.write(1);
        AFSEL.modify(|v| v & !1);
        DEN.modify(|v| v | 1);
        DIR.modify(|v| v | 1);
        DATA_PD0.write(1);
        SdChipSelect(())
    }
}

impl embedded_hal::digital::ErrorType for SdChipSelect {
    type Error = Infallible;
}

impl embedded_hal::digital::OutputPin for SdChipSelect {
    fn set_low(&mut self) -> Result<(), Infallible> {
        DATA_PD0.write(0);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        DATA_PD0.write(1);
        Ok(())
    }
}
