//! Probe firmware: `ftpd_app::Resources` in its `static` (taken, so it is
//! linked in). Its initial value must be all zeros: the host tool checks that
//! this firmware's `.data` is empty, i.e. the 34 KB of socket buffers cost
//! RAM only, no flash. Also hands over the sizes and constants behind the
//! per-session RAM of the application. Linked, never run.
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
    use core::mem::size_of;

    use ftpd_app::{
        CONTROL_RX, CONTROL_TX, DATA_RX, DATA_TX, ENGINE_BUF, MAX_SESSIONS, Resources, SOCKETS,
    };
    use smoltcp::iface::SocketStorage;
    // The panic handler.
    use ftpd_footprint as _;

    // Sizes and constants for the host tool: each array is as long as the
    // number it names.
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_RESOURCES: [u8; size_of::<Resources<'static>>()] =
        [0; size_of::<Resources<'static>>()];
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_SOCKET_STORAGE: [u8; size_of::<SocketStorage<'static>>()] =
        [0; size_of::<SocketStorage<'static>>()];
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_APP: [u8; size_of::<ftpd_app::App<'static, ftpd_footprint::Storage>>()] =
        [0; size_of::<ftpd_app::App<'static, ftpd_footprint::Storage>>()];
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_IFACE: [u8; size_of::<smoltcp::iface::Interface>()] =
        [0; size_of::<smoltcp::iface::Interface>()];
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_SOCKETS: [u8; SOCKETS] = [0; SOCKETS];
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_MAX_SESSIONS: [u8; MAX_SESSIONS] = [0; MAX_SESSIONS];
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_CONTROL_RX: [u8; CONTROL_RX] = [0; CONTROL_RX];
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_CONTROL_TX: [u8; CONTROL_TX] = [0; CONTROL_TX];
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_DATA_RX: [u8; DATA_RX] = [0; DATA_RX];
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_DATA_TX: [u8; DATA_TX] = [0; DATA_TX];
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_ENGINE_BUF: [u8; ENGINE_BUF] = [0; ENGINE_BUF];

    #[unsafe(no_mangle)]
    pub extern "C" fn _start() -> ! {
        black_box(&raw const FOOTPRINT_RESOURCES);
        black_box(&raw const FOOTPRINT_SOCKET_STORAGE);
        black_box(&raw const FOOTPRINT_SOCKETS);
        black_box(&raw const FOOTPRINT_APP);
        black_box(&raw const FOOTPRINT_IFACE);
        black_box(&raw const FOOTPRINT_MAX_SESSIONS);
        black_box(&raw const FOOTPRINT_CONTROL_RX);
        black_box(&raw const FOOTPRINT_CONTROL_TX);
        black_box(&raw const FOOTPRINT_DATA_RX);
        black_box(&raw const FOOTPRINT_DATA_TX);
        black_box(&raw const FOOTPRINT_ENGINE_BUF);
        black_box(Resources::take());
        loop {
            black_box(());
        }
    }
}
