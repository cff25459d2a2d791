//! Probe firmware: the `engine` probe without the engine. The same entry,
//! panic handler and do-nothing `Net`/`Storage`, whose methods are called
//! directly; `engine - baseline` is what the engine adds. Linked, never run.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "a probe firmware: `cargo run` in firmware/footprint builds it for thumbv7m-none-eabi"
    );
}

#[cfg(target_os = "none")]
mod probe {
    use core::hint::black_box;

    use ftpd_footprint::{Net, Storage, exercise};

    // Same references as the engine probe's size markers, one byte each.
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_SESSION: [u8; 1] = [0];
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_SESSION_SLOT: [u8; 1] = [0];
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_SERVER: [u8; 1] = [0];
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_SERVER_0: [u8; 1] = [0];

    #[unsafe(no_mangle)]
    pub extern "C" fn _start() -> ! {
        black_box(&raw const FOOTPRINT_SESSION);
        black_box(&raw const FOOTPRINT_SESSION_SLOT);
        black_box(&raw const FOOTPRINT_SERVER);
        black_box(&raw const FOOTPRINT_SERVER_0);
        let mut net = Net;
        let mut fs = Storage;
        loop {
            exercise(&mut net, &mut fs);
        }
    }
}
