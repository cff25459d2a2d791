//! The LAN8720A RMII PHY's registers as the firmware reads them: the
//! standard IEEE 802.3 clause 22 set (control, status, identifiers,
//! advertisement) and the LAN8720A's vendor status register 31, which says
//! what autonegotiation settled on. Pure decoding, tested on the host; the
//! MDIO accesses are in `hw::eth`.

use core::fmt;

/// Basic control register.
pub const BCR: u8 = 0;
/// Basic status register.
pub const BSR: u8 = 1;
/// PHY identifier 1 and 2.
pub const ID1: u8 = 2;
pub const ID2: u8 = 3;
/// Autonegotiation advertisement.
pub const ANAR: u8 = 4;
/// LAN8720A "PHY special control/status" register.
pub const SSR: u8 = 31;

pub const BCR_RESET: u16 = 1 << 15;
pub const BCR_AUTONEG_ENABLE: u16 = 1 << 12;
pub const BCR_AUTONEG_RESTART: u16 = 1 << 9;
/// BSR: link up (latched low: read twice for the current state).
pub const BSR_LINK: u16 = 1 << 2;
pub const BSR_AUTONEG_DONE: u16 = 1 << 5;
/// ANAR: 100BASE-TX full and half, 10BASE-T full and half, IEEE 802.3.
pub const ANAR_ALL: u16 = 0x01E1;
const SSR_AUTODONE: u16 = 1 << 12;

/// The two identifier registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhyId(pub u16, pub u16);

impl PhyId {
    /// Something answered at this MDIO address (an empty address reads all
    /// ones: MDIO is pulled up).
    pub fn present(self) -> bool {
        !matches!((self.0, self.1), (0xFFFF, 0xFFFF) | (0, 0))
    }
    /// Microchip (SMSC) LAN8720A, any revision.
    pub fn is_lan8720a(self) -> bool {
        self.0 == 0x0007 && self.1 & 0xFFF0 == 0xC0F0
    }
}

impl fmt::Display for PhyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.is_lan8720a() {
            "LAN8720A"
        } else {
            "unknown PHY"
        };
        write!(f, "{name} (id {:04x}:{:04x})", self.0, self.1)
    }
}

/// What the link runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkSpeed {
    HalfDuplex10,
    FullDuplex10,
    HalfDuplex100,
    FullDuplex100,
}

impl fmt::Display for LinkSpeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkSpeed::HalfDuplex10 => "10 Mbit/s half duplex",
            LinkSpeed::FullDuplex10 => "10 Mbit/s full duplex",
            LinkSpeed::HalfDuplex100 => "100 Mbit/s half duplex",
            LinkSpeed::FullDuplex100 => "100 Mbit/s full duplex",
        })
    }
}

/// The link from the status register and the LAN8720A's special status
/// register: `None` while the link is down or autonegotiation has not
/// finished (or reports a combination the data sheet does not list).
pub fn link(bsr: u16, ssr: u16) -> Option<LinkSpeed> {
    if bsr & BSR_LINK == 0 || bsr & BSR_AUTONEG_DONE == 0 || ssr & SSR_AUTODONE == 0 {
        return None;
    }
    // Speed indication, bits 4:2.
    match (ssr >> 2) & 0b111 {
        0b001 => Some(LinkSpeed::HalfDuplex10),
        0b101 => Some(LinkSpeed::FullDuplex10),
        0b010 => Some(LinkSpeed::HalfDuplex100),
        0b110 => Some(LinkSpeed::FullDuplex100),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(PhyId(0x0007, 0xC0F1).is_lan8720a());
        assert!(PhyId(0x0007, 0xC0F1).present());
        assert!(!PhyId(0xFFFF, 0xFFFF).present());
        assert!(!PhyId(0, 0).present());
        // LAN8742A: another PHY, still present.
        assert!(!PhyId(0x0007, 0xC131).is_lan8720a());
        assert_eq!(PhyId(0x0007, 0xC0F1).to_string(), "LAN8720A (id 0007:c0f1)");
    }

    #[test]
    fn link_states() {
        let up = BSR_LINK | BSR_AUTONEG_DONE | 0x7809;
        assert_eq!(
            link(up, SSR_AUTODONE | 0b110 << 2),
            Some(LinkSpeed::FullDuplex100)
        );
        assert_eq!(
            link(up, SSR_AUTODONE | 0b010 << 2),
            Some(LinkSpeed::HalfDuplex100)
        );
        assert_eq!(
            link(up, SSR_AUTODONE | 0b101 << 2),
            Some(LinkSpeed::FullDuplex10)
        );
        assert_eq!(
            link(up, SSR_AUTODONE | 0b001 << 2),
            Some(LinkSpeed::HalfDuplex10)
        );
        // Down, negotiating, or nonsense.
        assert_eq!(link(up & !BSR_LINK, SSR_AUTODONE | 0b110 << 2), None);
        assert_eq!(link(up, 0b110 << 2), None);
        assert_eq!(
            link(up & !BSR_AUTONEG_DONE, SSR_AUTODONE | 0b110 << 2),
            None
        );
        assert_eq!(link(up, SSR_AUTODONE | 0b111 << 2), None);
        assert_eq!(
            LinkSpeed::FullDuplex100.to_string(),
            "100 Mbit/s full duplex"
        );
    }
}
