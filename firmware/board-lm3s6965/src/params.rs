//! Boot parameters: a small block at the top of SRAM that QEMU's generic
//! loader fills before the CPU starts (`-device loader,addr=...,data=...`,
//! see qemu/run-lm3s6965.sh), so one firmware image boots with user
//! networking (10.0.2.15, passive address 127.0.0.1) or inside a TAP
//! namespace (192.0.2.x) without rebuilding. The runtime never touches this
//! area (the stack starts below it, see build.rs). On a real board the block
//! holds garbage, the magic does not match, and DHCP is used.
//!
//! Layout (little-endian 32-bit words at [`ADDR`]):
//! | offset | content |
//! |---|---|
//! | 0 | magic [`MAGIC`] |
//! | 4 | IPv4 address (a.b.c.d as bytes in order), 0 = use DHCP |
//! | 8 | gateway, 0 = none |
//! | 12 | address advertised in passive replies, 0 = the local address |
//! | 16 | prefix length (bits 7:0), FTP control port (bits 31:16, 0 = 21) |
//! | 20 | first passive port (bits 15:0), last passive port (bits 31:16), 0 = default |
//! | 24 | Unix time (seconds, UTC) when QEMU started, 0 = unknown |
//! | 28 | idle timeout (bits 15:0), data timeout (bits 31:16), seconds, 0 = default |

use core::net::Ipv4Addr;

/// Where the block lives: the last 64 bytes of SRAM (room for 16 words) are
/// kept out of the stack (build.rs).
pub const ADDR: usize = 0x2000_FFC0;
/// "FTPB" read as a little-endian word.
pub const MAGIC: u32 = u32::from_le_bytes(*b"FTPB");
/// Number of 32-bit words in the block.
pub const WORDS: usize = 8;

/// Network settings for this boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootParams {
    /// Static address and prefix length; `None` = DHCP.
    pub ip: Option<(Ipv4Addr, u8)>,
    pub gateway: Option<Ipv4Addr>,
    /// Address to advertise in `227` replies (QEMU user networking: 127.0.0.1).
    pub pasv_address: Option<Ipv4Addr>,
    pub ftp_port: u16,
    pub pasv_ports: Option<(u16, u16)>,
    /// Unix time at boot (the board has no clock of its own under QEMU).
    pub unix_time: Option<u64>,
    /// The engine's idle and data timeouts in seconds (tests shorten them).
    pub idle_timeout_s: Option<u16>,
    pub data_timeout_s: Option<u16>,
}

impl Default for BootParams {
    fn default() -> Self {
        BootParams {
            ip: None,
            gateway: None,
            pasv_address: None,
            ftp_port: 21,
            pasv_ports: None,
            unix_time: None,
            idle_timeout_s: None,
            data_timeout_s: None,
        }
    }
}

fn addr(w: u32) -> Option<Ipv4Addr> {
    (w != 0).then(|| Ipv4Addr::from(w.to_le_bytes()))
}

impl BootParams {
    /// Decodes the block; `None` when the magic is missing.
    pub fn decode(w: &[u32; WORDS]) -> Option<Self> {
        if w[0] != MAGIC {
            return None;
        }
        let prefix = (w[4] & 0xFF) as u8;
        let ip = addr(w[1]).map(|a| {
            (
                a,
                if prefix == 0 || prefix > 32 {
                    24
                } else {
                    prefix
                },
            )
        });
        let port = (w[4] >> 16) as u16;
        let (lo, hi) = (w[5] as u16, (w[5] >> 16) as u16);
        Some(BootParams {
            ip,
            gateway: addr(w[2]),
            pasv_address: addr(w[3]),
            ftp_port: if port == 0 { 21 } else { port },
            pasv_ports: (lo != 0 && hi >= lo).then_some((lo, hi)),
            unix_time: (w[6] != 0).then_some(w[6] as u64),
            idle_timeout_s: (w[7] as u16 != 0).then_some(w[7] as u16),
            data_timeout_s: ((w[7] >> 16) as u16 != 0).then_some((w[7] >> 16) as u16),
        })
    }

    /// The words the loader must write for these parameters (used by tests
    /// and documented for the QEMU script).
    pub fn encode(&self) -> [u32; WORDS] {
        let a = |x: Option<Ipv4Addr>| x.map_or(0, |a| u32::from_le_bytes(a.octets()));
        let (ip, prefix) = self.ip.map_or((None, 0), |(a, p)| (Some(a), p));
        let (lo, hi) = self.pasv_ports.unwrap_or((0, 0));
        [
            MAGIC,
            a(ip),
            a(self.gateway),
            a(self.pasv_address),
            prefix as u32 | (self.ftp_port as u32) << 16,
            lo as u32 | (hi as u32) << 16,
            self.unix_time.unwrap_or(0) as u32,
            self.idle_timeout_s.unwrap_or(0) as u32
                | (self.data_timeout_s.unwrap_or(0) as u32) << 16,
        ]
    }

    /// Reads the block from SRAM (board only).
    #[cfg(target_os = "none")]
    pub fn read() -> Option<Self> {
        let mut w = [0u32; WORDS];
        for (i, v) in w.iter_mut().enumerate() {
            // SAFETY: ADDR..ADDR+4*WORDS is SRAM reserved for this block.
            *v = unsafe { core::ptr::read_volatile((ADDR as *const u32).add(i)) };
        }
        Self::decode(&w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let p = BootParams {
            ip: Some((Ipv4Addr::new(10, 0, 2, 15), 24)),
            gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
            pasv_address: Some(Ipv4Addr::new(127, 0, 0, 1)),
            ftp_port: 21,
            pasv_ports: Some((50000, 50009)),
            unix_time: Some(1_709_210_096),
            idle_timeout_s: Some(10),
            data_timeout_s: Some(5),
        };
        assert_eq!(BootParams::decode(&p.encode()), Some(p));
        // qemu/run-lm3s6965.sh --idle-timeout 10 --data-timeout 5 writes 0x0005000a.
        assert_eq!(p.encode()[7], 0x0005_000a);
        assert_eq!(
            BootParams::decode(&BootParams::default().encode()),
            Some(BootParams::default())
        );
    }

    #[test]
    fn garbage_is_ignored() {
        assert_eq!(BootParams::decode(&[0; WORDS]), None);
        assert_eq!(BootParams::decode(&[0xFFFF_FFFF; WORDS]), None);
    }

    #[test]
    fn ip_word_matches_the_script() {
        // qemu/run-lm3s6965.sh writes 10.0.2.15 as data=0x0f02000a.
        let w = BootParams {
            ip: Some((Ipv4Addr::new(10, 0, 2, 15), 24)),
            ..Default::default()
        }
        .encode();
        assert_eq!(w[1], 0x0f02_000a);
        assert_eq!(w[0], 0x4250_5446);
    }
}
