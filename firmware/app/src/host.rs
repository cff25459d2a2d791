//! The virtual board's host glue (feature `std`): a TAP device for smoltcp
//! and [`run_tap`], the whole board loop, so that `sim --tap` only parses its
//! arguments, picks a storage and calls it.
//!
//! # Why not `smoltcp::phy::TunTapInterface`
//!
//! It panics on any write error, and a TAP device whose link is down (the
//! virtual board's cable pull: `ip link set TAP down`) fails every write
//! with `EIO`. [`Tap`] treats a failed write as a frame lost on the wire, as
//! a real NIC with its cable out does, and counts it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use ftpd::{DateTime, Storage};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};

use crate::{App, Resources, Settings};

/// Ethernet header, which smoltcp counts in the MTU and the kernel does not.
const ETHERNET_HEADER: usize = 14;

/// A TAP device (Ethernet frames, no packet information header), opened
/// non-blocking in the calling thread's network namespace.
pub struct Tap {
    fd: OwnedFd,
    mtu: usize,
    rx: Vec<u8>,
    tx: Vec<u8>,
    dropped: u64,
    link_up: bool,
}

impl Tap {
    /// Attaches to TAP device `name`, creating it if it does not exist
    /// (which needs CAP_NET_ADMIN in this network namespace).
    pub fn open(name: &str) -> io::Result<Tap> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad interface name",
            ));
        }
        // SAFETY: plain syscalls on a NUL-terminated path and on a zeroed
        // `ifreq` we own; the fd is wrapped at once so it is always closed.
        let fd = unsafe {
            let fd = libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            OwnedFd::from_raw_fd(fd)
        };
        let mut req = ifreq(name);
        req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes one `ifreq`.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF as _, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let mtu = interface_mtu(name)?;
        Ok(Tap {
            fd,
            mtu,
            rx: vec![0; mtu + ETHERNET_HEADER],
            tx: vec![0; mtu + ETHERNET_HEADER],
            dropped: 0,
            link_up: true,
        })
    }

    /// Frames that could not be written (link down).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// False after a write failed, until one succeeds again.
    pub fn link_up(&self) -> bool {
        self.link_up
    }

    /// Waits until a frame can be read or `timeout` passes.
    pub fn wait(&self, timeout: Duration) -> io::Result<()> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one pollfd we own.
        if unsafe { libc::poll(&mut pfd, 1, ms) } < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(())
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: `ifreq` is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    req
}

fn interface_mtu(name: &str) -> io::Result<usize> {
    // SAFETY: a datagram socket only used for one ioctl, closed by OwnedFd.
    let sock = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        OwnedFd::from_raw_fd(fd)
    };
    let mut req = ifreq(name);
    // SAFETY: SIOCGIFMTU fills `ifru_mtu` of the `ifreq` we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFMTU as _, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just wrote the MTU member.
    Ok(unsafe { req.ifr_ifru.ifru_mtu }.max(576) as usize)
}

impl Device for Tap {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _: smoltcp::time::Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        // SAFETY: reading into a buffer we own, at most its length.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                self.rx.as_mut_ptr().cast(),
                self.rx.len(),
            )
        };
        if n <= 0 {
            return None; // EAGAIN: nothing queued.
        }
        let rx = RxToken {
            frame: &self.rx[..n as usize],
        };
        let tx = TxToken {
            fd: &self.fd,
            buf: &mut self.tx,
            dropped: &mut self.dropped,
            link_up: &mut self.link_up,
        };
        Some((rx, tx))
    }

    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<TxToken<'_>> {
        Some(TxToken {
            fd: &self.fd,
            buf: &mut self.tx,
            dropped: &mut self.dropped,
            link_up: &mut self.link_up,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + ETHERNET_HEADER;
        caps
    }
}

#[doc(hidden)]
pub struct RxToken<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

#[doc(hidden)]
pub struct TxToken<'a> {
    fd: &'a OwnedFd,
    buf: &'a mut Vec<u8>,
    dropped: &'a mut u64,
    link_up: &'a mut bool,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        let frame = &mut self.buf[..len];
        let r = f(frame);
        // SAFETY: writing a buffer we own, exactly its length.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), frame.as_ptr().cast(), len) };
        if n < 0 {
            // EIO: the link is down. The frame is lost, as on a real wire.
            *self.dropped += 1;
            *self.link_up = false;
        } else {
            *self.link_up = true;
        }
        r
    }
}

/// Milliseconds since `start` on the monotonic clock.
fn millis(start: std::time::Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

/// The calendar time now, in UTC, for the engine's listings.
pub fn utc_now() -> DateTime {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc_from_unix(secs)
}

/// A Unix time as a calendar date and time (proleptic Gregorian, UTC).
pub fn utc_from_unix(secs: u64) -> DateTime {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
    DateTime {
        year,
        month,
        day,
        hour: (rem / 3600) as u8,
        minute: (rem / 60 % 60) as u8,
        second: (rem % 60) as u8,
    }
}

/// The longest the loop sleeps without looking at `stop`.
const MAX_WAIT: Duration = Duration::from_millis(100);

/// The virtual board: runs [`App`] on TAP device `ifname` (opened in the
/// calling thread's network namespace) with `settings` and `storage` until
/// `stop` is set, then returns the storage. `log` gets one line per board
/// event (start, link down/up, stop); the engine logs its session events
/// through the `log` facade when its `log` feature is on.
///
/// The caller prepares the host side of the cable, as `tests/tap.rs` does:
///
/// ```text
/// ip netns add NS
/// ip netns exec NS ip tuntap add dev ftpd0 mode tap
/// ip netns exec NS ip addr add 192.0.2.1/24 dev ftpd0
/// ip netns exec NS ip -6 addr add 2001:db8::1/64 dev ftpd0 nodad
/// ip netns exec NS ip link set ftpd0 up
/// ip netns exec NS sim --tap ftpd0 ...      # calls run_tap("ftpd0", ..)
/// ```
///
/// The board then answers at [`crate::NetConfig::TEST_NET`]'s 192.0.2.2 and
/// 2001:db8::2. Pulling the cable is `ip link set ftpd0 down` (frames are
/// dropped, the board keeps running); note that the kernel drops the host
/// side's IPv6 address on link down unless
/// `net.ipv6.conf.ftpd0.keep_addr_on_down=1`.
pub fn run_tap<S: Storage>(
    ifname: &str,
    settings: &Settings,
    storage: S,
    stop: &AtomicBool,
    log: &mut dyn FnMut(&str),
) -> io::Result<S> {
    let mut tap = Tap::open(ifname)?;
    let start = std::time::Instant::now();
    let mut resources = Box::new(Resources::new());
    let mut app = App::new(&mut resources, settings, &mut tap, storage, millis(start));
    let net = &settings.net;
    log(&format!(
        "ftpd-app: serving FTP on {ifname} (mtu {}) at{}{} port {}",
        tap.mtu,
        net.ipv4
            .map(|(ip, len)| format!(" {ip}/{len}"))
            .unwrap_or_default(),
        net.ipv6
            .map(|(ip, len)| format!(" {ip}/{len}"))
            .unwrap_or_default(),
        settings.control_port,
    ));
    #[cfg(feature = "diag")]
    if settings.diag {
        let ip = net.ipv4.map_or("-".to_string(), |(ip, _)| ip.to_string());
        log(&format!(
            "ftpd-app: diag: discard {ip}:{} chargen {ip}:{}",
            crate::diag::DISCARD_PORT,
            crate::diag::CHARGEN_PORT
        ));
    }
    let mut link_up = true;
    while !stop.load(Ordering::Relaxed) {
        app.set_utc(Some(utc_now()));
        let now = millis(start);
        let wake = app.poll(now, &mut tap);
        #[cfg(feature = "diag")]
        if app.serve_sdbench(|_, _| {
            Err("not on the virtual board: measure its image (ftpd_fat::host::bench_sequential)")
        }) {
            continue;
        }
        if tap.link_up() != link_up {
            link_up = tap.link_up();
            log(if link_up {
                "ftpd-app: link up"
            } else {
                "ftpd-app: link down (frames are dropped)"
            });
        }
        let delay = wake.map_or(MAX_WAIT, |w| Duration::from_millis(w.saturating_sub(now)));
        if !delay.is_zero() {
            tap.wait(delay.min(MAX_WAIT))?;
        }
    }
    log(&format!(
        "ftpd-app: stopped ({} sessions open, {} frames dropped while the link was down)",
        app.sessions(),
        tap.dropped()
    ));
    Ok(app.into_storage())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_time_to_calendar() {
        let d = utc_from_unix(0);
        assert_eq!(
            (d.year, d.month, d.day, d.hour, d.minute, d.second),
            (1970, 1, 1, 0, 0, 0)
        );
        // 2024-02-29T12:34:56Z, a leap day.
        let d = utc_from_unix(1_709_210_096);
        assert_eq!(
            (d.year, d.month, d.day, d.hour, d.minute, d.second),
            (2024, 2, 29, 12, 34, 56)
        );
        // 2000-03-01T00:00:00Z, after a century leap day.
        let d = utc_from_unix(951_868_800);
        assert_eq!((d.year, d.month, d.day), (2000, 3, 1));
    }
}
