//! The STM32F407's peripherals as the firmware uses them. Clocks, GPIO and
//! the USART come from stm32f4xx-hal, the Ethernet MAC and its DMA rings
//! from stm32-eth; what is register-level here is what those crates lack:
//! the SDIO card driver (the HAL's moves one block per command and cannot
//! start over after a card swap), the smoltcp 0.13 glue (stm32-eth's is for
//! 0.12), the PHY's reset and the MAC's address filter.

pub mod console;
pub mod eth;
pub mod mem;
pub mod sdio;
pub mod time;

/// HCLK (= SYSCLK): 168 MHz from the Discovery's 8 MHz crystal via the PLL,
/// which also gives the 48 MHz the SDIO kernel clock needs.
pub const HCLK_HZ: u32 = 168_000_000;

/// The chip's 96-bit unique device ID (RM0090 section 39.1).
pub fn unique_id() -> [u32; 3] {
    const UID: *const u32 = 0x1FFF_7A10 as *const u32;
    // SAFETY: read-only system memory, present on every STM32F4.
    unsafe {
        [
            UID.read_volatile(),
            UID.add(1).read_volatile(),
            UID.add(2).read_volatile(),
        ]
    }
}
