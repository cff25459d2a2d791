#![cfg_attr(target_os = "none", no_std, no_main)]
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the firmware builds for thumbv7m-none-eabi only");
}
#[cfg(target_os = "none")]
mod fw {
    use cortex_m_rt::entry;
    use lm3s6965 as _;
    #[entry]
    fn main() -> ! { loop {} }
    #[panic_handler]
    fn p(_: &core::panic::PanicInfo) -> ! { loop {} }
}
