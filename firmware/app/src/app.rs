//! [`App`]: the engine, the network adapter and the board's storage, tied
//! into one poll loop, with the sizes of [`crate`]'s RAM budget.

use core::net::{Ipv4Addr, Ipv6Addr};
use core::sync::atomic::{AtomicBool, Ordering};

use ftpd::{Config, DateTime, Instant, Server, Storage};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketStorage};
use smoltcp::phy::Device;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr};

use crate::net::{Census, SmolNet};
use crate::{
    CONTROL_RX, CONTROL_SOCKETS, CONTROL_TX, DATA_RX, DATA_SOCKETS, DATA_TX, ENGINE_BUF, FTP_PORT,
    MAX_SESSIONS, REFUSER_RX, REFUSER_TX, REFUSERS, SOCKETS,
};

/// The board's network identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// Ethernet address (unicast).
    pub mac: [u8; 6],
    /// IPv4 address and prefix length.
    pub ipv4: Option<(Ipv4Addr, u8)>,
    pub ipv4_gateway: Option<Ipv4Addr>,
    /// IPv6 address and prefix length.
    pub ipv6: Option<(Ipv6Addr, u8)>,
    pub ipv6_gateway: Option<Ipv6Addr>,
    /// Seeds TCP initial sequence numbers; should differ on every boot.
    pub random_seed: u64,
}

impl NetConfig {
    /// The board's side of the test network that the harness and tests build
    /// inside their network namespace: `192.0.2.2/24` and `2001:db8::2/64`,
    /// the peer (TAP side) being `192.0.2.1` and `2001:db8::1`.
    pub const TEST_NET: NetConfig = NetConfig {
        mac: [0x02, 0x00, 0x00, 0x00, 0x00, 0x02],
        ipv4: Some((Ipv4Addr::new(192, 0, 2, 2), 24)),
        ipv4_gateway: None,
        ipv6: Some((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2), 64)),
        ipv6_gateway: None,
        random_seed: 0x5eed,
    };
}

/// What a board decides; everything else is the application's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub net: NetConfig,
    /// The FTP control port (21).
    pub control_port: u16,
    /// Passive ports, inclusive.
    pub pasv_ports: (u16, u16),
    /// Address advertised in `227` replies (NAT, QEMU user networking).
    pub pasv_address: Option<Ipv4Addr>,
    /// Serve the diagnostic services (discard, chargen, sdbench: see the
    /// `diag` module). Only with feature `diag`, which turns it on by
    /// default; the virtual board turns it off unless `sim --diag`.
    pub diag: bool,
    /// The engine's idle and data timeouts (default: [`Config`]'s).
    pub idle_timeout_ms: u64,
    pub data_timeout_ms: u64,
}

impl Settings {
    pub fn new(net: NetConfig) -> Settings {
        Settings {
            net,
            control_port: FTP_PORT,
            pasv_ports: Config::default().pasv_ports,
            pasv_address: None,
            diag: cfg!(feature = "diag"),
            idle_timeout_ms: Config::default().idle_timeout_ms,
            data_timeout_ms: Config::default().data_timeout_ms,
        }
    }
}

/// The engine configuration the application serves: the documented
/// defaults (user `test`/`test` read-write, anonymous read-only), at most
/// [`MAX_SESSIONS`] sessions, the board's passive ports and address.
pub fn ftp_config(settings: &Settings) -> Config<'static> {
    Config {
        max_sessions: MAX_SESSIONS,
        pasv_ports: settings.pasv_ports,
        pasv_address: settings.pasv_address,
        idle_timeout_ms: settings.idle_timeout_ms,
        data_timeout_ms: settings.data_timeout_ms,
        ..Config::default()
    }
}

/// Every byte of RAM the application needs besides the engine state and the
/// storage: socket storage, socket buffers, the engine's data buffer. A board
/// keeps it in a `static` (see [`Resources::take`]); its size is the budget
/// in the crate docs.
///
/// Its initial value is all zeros (bytes without a value count as zeros), so
/// such a `static` goes to `.bss` and costs no flash for an initial image:
/// smoltcp's empty [`SocketStorage`] is not zeros, so the socket slots are
/// made by [`App::new`], not here.
pub struct Resources<'a> {
    sockets: SocketSlots<'a>,
    control_rx: [[u8; CONTROL_RX]; CONTROL_SOCKETS],
    control_tx: [[u8; CONTROL_TX]; CONTROL_SOCKETS],
    refuser_rx: [[u8; REFUSER_RX]; REFUSERS],
    refuser_tx: [[u8; REFUSER_TX]; REFUSERS],
    data_rx: [[u8; DATA_RX]; DATA_SOCKETS],
    data_tx: [[u8; DATA_TX]; DATA_SOCKETS],
    #[cfg(feature = "diag")]
    diag: crate::diag::Buffers,
    engine: [u8; ENGINE_BUF],
}

impl Resources<'_> {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Resources {
            sockets: SocketSlots::Unmade,
            control_rx: [[0; CONTROL_RX]; CONTROL_SOCKETS],
            control_tx: [[0; CONTROL_TX]; CONTROL_SOCKETS],
            refuser_rx: [[0; REFUSER_RX]; REFUSERS],
            refuser_tx: [[0; REFUSER_TX]; REFUSERS],
            data_rx: [[0; DATA_RX]; DATA_SOCKETS],
            data_tx: [[0; DATA_TX]; DATA_SOCKETS],
            #[cfg(feature = "diag")]
            diag: crate::diag::Buffers::new(),
            engine: [0; ENGINE_BUF],
        }
    }
}

/// smoltcp's socket slots, made when the application starts.
///
/// `SocketStorage::EMPTY` has bytes that are not zero (the niche of its
/// `Option`), so an array of them in a `static` would put the whole static,
/// buffers included, in `.data`: 34 KB of flash for its initial image. With
/// an explicit tag, `Unmade` is a zero tag and bytes without a value, which
/// the compiler places in `.bss`; the `ftpd-footprint` crate checks that a
/// firmware holding [`Resources`] has (almost) nothing in `.data`.
#[repr(u8)]
#[allow(clippy::large_enum_variant)] // `Unmade` is the point: it is all zeros
enum SocketSlots<'a> {
    Unmade = 0,
    Made([SocketStorage<'a>; SOCKETS]),
}

impl<'a> SocketSlots<'a> {
    /// Every slot empty. A constant, copied straight into place: built on
    /// the stack, the array (4 KB on a 32-bit board) would add its size
    /// twice to the deepest frame of a 64 KB board. The price is the
    /// constant's 4 KB of flash, instead of the whole `Resources`' 34 KB.
    const MADE: Self = SocketSlots::Made([SocketStorage::EMPTY; SOCKETS]);

    /// The slots, all empty.
    fn empty(&'a mut self) -> &'a mut [SocketStorage<'a>] {
        *self = Self::MADE;
        match self {
            SocketSlots::Made(slots) => slots,
            SocketSlots::Unmade => unreachable!("made just above"),
        }
    }
}

impl Resources<'static> {
    /// The one statically allocated set of resources (in `.bss`), the first
    /// time it is asked for; `None` after that.
    pub fn take() -> Option<&'static mut Resources<'static>> {
        static TAKEN: AtomicBool = AtomicBool::new(false);
        static mut RESOURCES: Resources<'static> = Resources::new();
        if TAKEN.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: `TAKEN` lets exactly one caller through, so this is the
        // only reference to `RESOURCES` ever made.
        Some(unsafe { &mut *core::ptr::addr_of_mut!(RESOURCES) })
    }
}

/// The network adapter with the application's socket count.
pub type AppNet<'a> = SmolNet<'a, SOCKETS>;

/// The application: see the crate docs.
pub struct App<'a, S: Storage> {
    net: AppNet<'a>,
    server: Server<'a, AppNet<'a>, S, MAX_SESSIONS>,
    storage: S,
}

/// At most this many rounds of network + engine work per [`App::poll`], so a
/// flood cannot starve the caller.
const MAX_ROUNDS: usize = 32;

impl<'a, S: Storage> App<'a, S> {
    /// Builds the interface on `device` (its capabilities: medium, MTU) and
    /// the sockets in `resources`, and starts listening.
    ///
    /// Never inlined, so its frame (a few hundred bytes: nothing large is
    /// built on the stack here) is not added to the caller's poll loop.
    #[inline(never)]
    pub fn new<D: Device + ?Sized>(
        resources: &'a mut Resources<'a>,
        settings: &Settings,
        device: &mut D,
        storage: S,
        now_ms: u64,
    ) -> Self {
        let Resources {
            sockets,
            control_rx,
            control_tx,
            refuser_rx,
            refuser_tx,
            data_rx,
            data_tx,
            engine,
            ..
        } = resources;
        let iface = interface(&settings.net, device, now_ms);
        let mut net = SmolNet::new(iface, sockets.empty(), settings.control_port);
        for (rx, tx) in control_rx.iter_mut().zip(control_tx.iter_mut()) {
            net.add_control(rx, tx);
        }
        // After the control sockets: smoltcp gives a SYN to the first
        // listener, so refusers take only what the control sockets cannot.
        for (rx, tx) in refuser_rx.iter_mut().zip(refuser_tx.iter_mut()) {
            net.add_refuser(rx, tx);
        }
        for (rx, tx) in data_rx.iter_mut().zip(data_tx.iter_mut()) {
            net.add_data(rx, tx);
        }
        #[cfg(feature = "diag")]
        if settings.diag {
            resources_diag(&mut net, &mut resources.diag);
        }
        // The engine's state (4 KB on a 32-bit board) is made by a call that
        // writes it where the App is returned: built here and then moved, it
        // would cost its size twice more in stack.
        App {
            net,
            server: new_server(ftp_config(settings), &mut engine[..]),
            storage,
        }
    }

    /// Runs the network and the engine until neither has anything left to do
    /// now. Returns when to call again at the latest (ms, same clock as
    /// `now_ms`; `None`: only when the device has received something). A
    /// board sleeps until then or until its NIC interrupts.
    pub fn poll<D: Device + ?Sized>(&mut self, now_ms: u64, device: &mut D) -> Option<u64> {
        let now = Instant::from_millis(now_ms);
        for _ in 0..MAX_ROUNDS {
            // Frames in and out: any traffic may have changed a socket.
            let traffic = self.net.poll_iface(now_ms, device);
            let served = self.net.maintain(now_ms);
            let p = self.server.poll(now, &mut self.net, &mut self.storage);
            if !traffic && !served && !p.progressed {
                let net_wake = self.net.poll_at(now_ms);
                let engine_wake = p.next_wake.map(Instant::millis);
                return match (net_wake, engine_wake) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        // Still busy: come back at once.
        Some(now_ms)
    }

    /// Runs a pending sdbench request (see the `diag` module): `run` gets
    /// the storage and the MiB asked for and measures; the answer goes to
    /// the client. True when a request was served. A board calls it in its
    /// loop; nothing else is served while `run` runs.
    #[cfg(feature = "diag")]
    pub fn serve_sdbench(
        &mut self,
        run: impl FnOnce(&mut S, u32) -> Result<crate::diag::SdBenchResult, &'static str>,
    ) -> bool {
        let Some(mib) = self.net.sdbench_pending() else {
            return false;
        };
        let r = run(&mut self.storage, mib);
        self.net.sdbench_answer(r);
        true
    }

    /// Tells the engine the calendar time (for listings and MDTM).
    pub fn set_utc(&mut self, now: Option<DateTime>) {
        self.server.set_utc(now);
    }
    /// Sessions open now.
    pub fn sessions(&self) -> usize {
        self.server.sessions()
    }
    /// Where the sockets are (leak checks, STAT, console).
    pub fn census(&self) -> Census {
        self.net.census()
    }
    pub fn net(&self) -> &AppNet<'a> {
        &self.net
    }
    pub fn storage(&self) -> &S {
        &self.storage
    }
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }
    /// Ends the application and gives the storage back (to flush or check it).
    pub fn into_storage(self) -> S {
        self.storage
    }
}

/// [`Server::new`], returned through the caller's slot (see [`App::new`]).
#[inline(never)]
fn new_server<'a, N: ftpd::Net, S: Storage, const MAX: usize>(
    config: Config<'a>,
    data_buf: &'a mut [u8],
) -> Server<'a, N, S, MAX> {
    Server::new(config, data_buf)
}

#[cfg(feature = "diag")]
fn resources_diag<'a>(net: &mut AppNet<'a>, b: &'a mut crate::diag::Buffers) {
    use crate::diag::Service;
    net.add_service(Service::Discard, &mut b.discard_rx, &mut b.discard_tx);
    net.add_service(Service::CHARGEN, &mut b.chargen_rx, &mut b.chargen_tx);
    net.add_service(
        Service::SdBench(crate::diag::SdBench::Idle),
        &mut b.sdbench_rx,
        &mut b.sdbench_tx,
    );
}

/// An Ethernet interface with the configured addresses and routes.
pub fn interface<D: Device + ?Sized>(net: &NetConfig, device: &mut D, now_ms: u64) -> Interface {
    let mut config = IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(net.mac)));
    config.random_seed = net.random_seed;
    let now = smoltcp::time::Instant::from_millis(now_ms as i64);
    let mut iface = Interface::new(config, device, now);
    iface.update_ip_addrs(|addrs| {
        if let Some((ip, len)) = net.ipv4 {
            let _ = addrs.push(IpCidr::new(ip.into(), len));
        }
        if let Some((ip, len)) = net.ipv6 {
            let _ = addrs.push(IpCidr::new(ip.into(), len));
        }
    });
    if let Some(gw) = net.ipv4_gateway {
        let _ = iface.routes_mut().add_default_ipv4_route(gw);
    }
    if let Some(gw) = net.ipv6_gateway {
        let _ = iface.routes_mut().add_default_ipv6_route(gw);
    }
    iface
}

#[cfg(test)]
mod tests;
