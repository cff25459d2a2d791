//! Probe firmware: the engine, `ftpd::Server` with 4 sessions over the
//! do-nothing `Net` and `Storage` of this crate, polled forever. Linked,
//! never run; see the crate docs.
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

    use ftpd::session::Session;
    use ftpd::{Config, Instant, Server};
    use ftpd_footprint::{File, Net, SESSIONS, Sock, Storage};

    /// The engine's shared data buffer: `ftpd_app::ENGINE_BUF`.
    const DATA_BUF: usize = 2048;

    // Sizes for the host tool: each array is as long as the type it names.
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_SESSION: [u8; size_of::<Session<Sock, File>>()] =
        [0; size_of::<Session<Sock, File>>()];
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_SESSION_SLOT: [u8; size_of::<Option<Session<Sock, File>>>()] =
        [0; size_of::<Option<Session<Sock, File>>>()];
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_SERVER: [u8; size_of::<Server<'static, Net, Storage, SESSIONS>>()] =
        [0; size_of::<Server<'static, Net, Storage, SESSIONS>>()];
    #[unsafe(no_mangle)]
    static mut FOOTPRINT_SERVER_0: [u8; size_of::<Server<'static, Net, Storage, 0>>()] =
        [0; size_of::<Server<'static, Net, Storage, 0>>()];

    #[unsafe(no_mangle)]
    pub extern "C" fn _start() -> ! {
        black_box(&raw const FOOTPRINT_SESSION);
        black_box(&raw const FOOTPRINT_SESSION_SLOT);
        black_box(&raw const FOOTPRINT_SERVER);
        black_box(&raw const FOOTPRINT_SERVER_0);
        let mut data = [0u8; DATA_BUF];
        let mut net = Net;
        let mut fs = Storage;
        let mut server: Server<'_, Net, Storage, SESSIONS> =
            Server::new(black_box(Config::default()), &mut data);
        loop {
            server.set_utc(black_box(None));
            let p = server.poll(Instant::from_millis(black_box(0)), &mut net, &mut fs);
            black_box(p.progressed);
            black_box(p.next_wake);
            black_box(server.sessions());
        }
    }
}
