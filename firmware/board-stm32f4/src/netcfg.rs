//! The board's network identity. Addresses are fixed at build time (the
//! `FTPD_*` variables, checked by build.rs); the Ethernet address is derived
//! from the chip's 96-bit unique ID unless `FTPD_MAC` sets one, so two boards
//! flashed with the same image still differ on the wire.

use core::net::{Ipv4Addr, Ipv6Addr};

use ftpd_app::{NetConfig, Settings};

mod built {
    use core::net::Ipv4Addr;
    include!(concat!(env!("OUT_DIR"), "/net_config.rs"));
}

pub use built::{FTP_PORT, GATEWAY, IPV4, MAC, PASV_ADDRESS};

/// The IPv6 address (documentation range, as on the other boards).
pub const IPV6: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2), 64);

/// A locally administered unicast address (first byte `0x02`) whose other
/// five bytes are a hash (FNV-1a) of the unique ID: stable across boots,
/// different between chips.
pub fn mac_from_uid(uid: [u32; 3]) -> [u8; 6] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for w in uid {
        for b in w.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    let b = h.to_le_bytes();
    [0x02, b[0], b[1], b[2], b[3], b[4]]
}

/// The application's settings for this board: the build-time addresses, the
/// MAC, and a TCP sequence seed that differs on every boot.
pub fn settings(mac: [u8; 6], random_seed: u64) -> Settings {
    let net = NetConfig {
        mac,
        ipv4: Some(IPV4),
        ipv4_gateway: GATEWAY,
        ipv6: Some(IPV6),
        ipv6_gateway: None,
        random_seed,
    };
    let mut s = Settings::new(net);
    s.control_port = FTP_PORT;
    s.pasv_address = PASV_ADDRESS;
    s
}

/// `a.b.c.d` or `-` for an optional address.
pub struct OptAddr(pub Option<Ipv4Addr>);

impl core::fmt::Display for OptAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("-"),
        }
    }
}

/// An Ethernet address as `02:12:34:56:78:9a`.
pub struct Mac(pub [u8; 6]);

impl core::fmt::Display for Mac {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_is_local_unicast_and_stable() {
        let a = mac_from_uid([0x0033_0021, 0x3432_5111, 0x3037_3338]);
        assert_eq!(a[0], 0x02);
        assert_eq!(a, mac_from_uid([0x0033_0021, 0x3432_5111, 0x3037_3338]));
        assert_ne!(a, mac_from_uid([0x0033_0021, 0x3432_5111, 0x3037_3339]));
        assert_ne!(a, mac_from_uid([0x0034_0021, 0x3432_5111, 0x3037_3338]));
    }

    #[test]
    fn default_build_settings() {
        // Without FTPD_* in the environment (as in CI).
        if std::env::var_os("FTPD_IPV4").is_none() {
            assert_eq!(IPV4, (Ipv4Addr::new(192, 0, 2, 2), 24));
        }
        let s = settings([2, 0, 0, 0, 0, 9], 7);
        assert_eq!(s.net.ipv4, Some(IPV4));
        assert_eq!(s.control_port, FTP_PORT);
        assert_eq!(s.net.random_seed, 7);
        assert_eq!(
            Mac([2, 0x12, 0x34, 0x56, 0x78, 0x9a]).to_string(),
            "02:12:34:56:78:9a"
        );
        assert_eq!(OptAddr(None).to_string(), "-");
    }
}
