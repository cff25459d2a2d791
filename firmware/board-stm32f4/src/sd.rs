//! SD memory card protocol facts for the SDIO driver (`hw::sdio`): what
//! initialisation found, the card status word (R1) and the errors a person
//! reads on the console. Pure code, tested on the host.
//!
//! References: SD Physical Layer Simplified Specification (card status:
//! section 4.10.1; commands: 4.7.4) and RM0090 section 31 (the STM32F4 SDIO).

use core::fmt;

/// How the card was identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardType {
    /// SD version 1 (no answer to CMD8): standard capacity, byte addresses.
    Sd1,
    /// SD version 2, standard capacity (OCR.CCS = 0): byte addresses.
    Sd2,
    /// SD version 2, high or extended capacity (OCR.CCS = 1): block addresses.
    Sdhc,
}

impl CardType {
    /// The argument of a read or write command for block `lba`.
    pub fn address(self, lba: u32) -> u32 {
        match self {
            CardType::Sdhc => lba,
            // SDSC cards hold at most 2 GiB, so a byte address fits.
            CardType::Sd1 | CardType::Sd2 => lba.wrapping_mul(512),
        }
    }
}

impl fmt::Display for CardType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CardType::Sd1 => "SDSC v1",
            CardType::Sd2 => "SDSC",
            CardType::Sdhc => "SDHC/SDXC",
        })
    }
}

/// What initialisation found out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CardInfo {
    pub card_type: CardType,
    /// Number of 512-byte blocks (from the CSD).
    pub blocks: u32,
    /// Data lines in use: 1 or 4.
    pub bus_width: u8,
    /// SDIO_CK after initialisation.
    pub clock_hz: u32,
    /// Manufacturer ID and product name from the CID.
    pub manufacturer: u8,
    pub product: [u8; 5],
}

impl CardInfo {
    pub fn bytes(&self) -> u64 {
        u64::from(self.blocks) * 512
    }
    /// The product name as text (`?` for bytes that are not printable).
    pub fn product_name(&self) -> ProductName {
        ProductName(self.product)
    }
}

pub struct ProductName([u8; 5]);

impl fmt::Display for ProductName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            let c = if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            };
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// A 136-bit response (R2: CID or CSD) as the SDIO host holds it: RESP1 has
/// bits 127:96, RESP2 95:64, RESP3 63:32, RESP4 31:1 (bit 0 reads 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongResponse(pub [u32; 4]);

impl LongResponse {
    /// Bits `hi..=lo` of the register (at most 32 of them).
    pub fn bits(&self, hi: u32, lo: u32) -> u32 {
        let r = &self.0;
        let all = (u128::from(r[0]) << 96)
            | (u128::from(r[1]) << 64)
            | (u128::from(r[2]) << 32)
            | u128::from(r[3]);
        ((all >> lo) & ((1u128 << (hi - lo + 1)) - 1)) as u32
    }

    /// The card's size in 512-byte blocks, from a CSD: version 1.0
    /// (standard capacity: C_SIZE, C_SIZE_MULT and READ_BL_LEN) or 2.0
    /// (high and extended capacity: 512 KiB units). `None` for other
    /// structures (SDUC). Capped at `u32::MAX` blocks.
    pub fn csd_blocks(&self) -> Option<u32> {
        let blocks: u64 = match self.bits(127, 126) {
            0 => {
                let c_size = u64::from(self.bits(73, 62));
                let mult = self.bits(49, 47);
                let read_bl_len = self.bits(83, 80);
                if !(9..=11).contains(&read_bl_len) {
                    return None;
                }
                ((c_size + 1) << (mult + 2)) << (read_bl_len - 9)
            }
            1 => (u64::from(self.bits(69, 48)) + 1) * 1024,
            _ => return None,
        };
        Some(blocks.min(u64::from(u32::MAX)) as u32)
    }

    /// Manufacturer ID and product name, from a CID.
    pub fn cid_product(&self) -> (u8, [u8; 5]) {
        let mut name = [0u8; 5];
        for (i, b) in name.iter_mut().enumerate() {
            let hi = 103 - 8 * i as u32;
            *b = self.bits(hi, hi - 7) as u8;
        }
        (self.bits(127, 120) as u8, name)
    }
}

/// Card status (R1) bits that mean the command failed: OUT_OF_RANGE (31)
/// down to WP_VIOLATION (26), LOCK_UNLOCK_FAILED (24) down to ERROR (19),
/// CSD_OVERWRITE (16), WP_ERASE_SKIP (15), AKE_SEQ_ERROR (3).
pub const STATUS_ERRORS: u32 = 0xFDF9_8008;
/// READY_FOR_DATA: the card's buffer is empty (programming finished).
pub const STATUS_READY_FOR_DATA: u32 = 1 << 8;

/// CURRENT_STATE (bits 12:9) values.
pub mod state {
    pub const STANDBY: u8 = 3;
    pub const TRANSFER: u8 = 4;
    pub const SENDING_DATA: u8 = 5;
    pub const RECEIVE_DATA: u8 = 6;
    pub const PROGRAMMING: u8 = 7;
}

/// CURRENT_STATE of a card status word.
pub fn current_state(status: u32) -> u8 {
    ((status >> 9) & 0xF) as u8
}

/// True when the card is back in the transfer state with an empty buffer:
/// a write has been programmed and the next command may follow.
pub fn ready(status: u32) -> bool {
    current_state(status) == state::TRANSFER && status & STATUS_READY_FOR_DATA != 0
}

/// The name of the most significant error bit in a card status word.
pub fn status_error_name(status: u32) -> Option<&'static str> {
    const NAMES: [(u32, &str); 15] = [
        (31, "out of range"),
        (30, "address error"),
        (29, "block length error"),
        (28, "erase sequence error"),
        (27, "erase parameter error"),
        (26, "write protected"),
        (24, "lock/unlock failed"),
        (23, "command CRC error"),
        (22, "illegal command"),
        (21, "card ECC failed"),
        (20, "card controller error"),
        (19, "general error"),
        (16, "CSD overwrite"),
        (15, "write-protected erase skipped"),
        (3, "authentication sequence error"),
    ];
    NAMES
        .iter()
        .find(|(bit, _)| status & STATUS_ERRORS & (1 << bit) != 0)
        .map(|(_, n)| *n)
}

/// Why the card could not be used or a transfer failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdError {
    /// Nothing answered CMD8 nor CMD55: no card in the slot.
    NoCard,
    /// No response to this command in time (SDIO CTIMEOUT, 64 bus clocks).
    CmdTimeout(u8),
    /// The response to this command failed its CRC.
    CmdCrc(u8),
    /// The command did not complete (software timeout).
    CmdStuck(u8),
    /// The card answered this command with an error in its status word.
    CardStatus { cmd: u8, status: u32 },
    /// CMD8 did not echo the check pattern or the 2.7-3.6 V range.
    VoltageNotAccepted(u32),
    /// ACMD41 kept reporting "busy" for a second.
    PowerUpTimeout,
    /// The CSD gives no size this driver understands (SD Ultra Capacity, or
    /// a version 1.0 CSD with an invalid block length).
    UnsupportedCsd,
    /// A data block failed its CRC.
    DataCrc,
    /// No data (or no CRC status after a written block) within the data
    /// timeout.
    DataTimeout,
    /// The CPU did not empty the receive FIFO in time.
    RxOverrun,
    /// The CPU did not fill the transmit FIFO in time.
    TxUnderrun,
    /// A start bit was missing on a data line (4-bit mode).
    StartBit,
    /// The data path did not finish (software timeout).
    TransferStuck,
    /// The card stayed busy programming after a write.
    BusyTimeout,
    /// The block range is beyond the card.
    OutOfRange { block: u32, count: usize },
    /// The card has not been initialised (or failed since).
    NotReady,
    /// A block-device call while another was running.
    Busy,
}

impl fmt::Display for SdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SdError::NoCard => f.write_str("no SD card (nothing answers on the SDIO bus)"),
            SdError::CmdTimeout(c) => write!(f, "no response to CMD{c}"),
            SdError::CmdCrc(c) => write!(f, "response to CMD{c} failed its CRC"),
            SdError::CmdStuck(c) => write!(f, "CMD{c} did not complete"),
            SdError::CardStatus { cmd, status } => write!(
                f,
                "CMD{cmd} failed: {} (card status {status:#010x})",
                status_error_name(status).unwrap_or("error")
            ),
            SdError::VoltageNotAccepted(r) => {
                write!(f, "card does not accept 3.3 V (CMD8 answered {r:#x})")
            }
            SdError::PowerUpTimeout => f.write_str("card stayed busy powering up (ACMD41)"),
            SdError::UnsupportedCsd => {
                f.write_str("unsupported card (CSD structure beyond version 2.0)")
            }
            SdError::DataCrc => f.write_str("data CRC error"),
            SdError::DataTimeout => f.write_str("data timeout"),
            SdError::RxOverrun => f.write_str("receive FIFO overrun"),
            SdError::TxUnderrun => f.write_str("transmit FIFO underrun"),
            SdError::StartBit => f.write_str("start bit missing on a data line"),
            SdError::TransferStuck => f.write_str("data transfer did not complete"),
            SdError::BusyTimeout => f.write_str("card stayed busy after a write"),
            SdError::OutOfRange { block, count } => {
                write!(f, "blocks {block}..+{count} beyond the card")
            }
            SdError::NotReady => f.write_str("card not initialised"),
            SdError::Busy => f.write_str("card in use"),
        }
    }
}

impl core::error::Error for SdError {}

impl SdError {
    /// Errors of the data path that a second attempt may not repeat (noise,
    /// an interrupt that held the CPU off the FIFO).
    pub fn transient(self) -> bool {
        matches!(
            self,
            SdError::DataCrc
                | SdError::RxOverrun
                | SdError::TxUnderrun
                | SdError::StartBit
                | SdError::CmdCrc(_)
        )
    }
}

/// Counters for the console's statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SdStats {
    pub read_cmds: u32,
    pub blocks_read: u32,
    pub write_cmds: u32,
    pub blocks_written: u32,
    pub retries: u32,
    pub errors: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CSD from its 16 bytes as printed (most significant first).
    fn response(hex: &str) -> LongResponse {
        let v = u128::from_str_radix(hex, 16).unwrap();
        LongResponse([
            (v >> 96) as u32,
            (v >> 64) as u32,
            (v >> 32) as u32,
            v as u32 & !1,
        ])
    }

    #[test]
    fn csd_version_2() {
        // An 8 GB SDHC card: C_SIZE 0x3B37.
        let csd = response("400E00325B5900003B377F800A404000");
        assert_eq!(csd.bits(127, 126), 1);
        assert_eq!(csd.csd_blocks(), Some((0x3B37 + 1) * 1024));
    }

    #[test]
    fn csd_version_1() {
        // Fields placed at their specified bit positions: a 2 GB card with
        // 1024-byte read blocks (READ_BL_LEN 10), C_SIZE 4095, C_SIZE_MULT 7.
        let v: u128 = (10u128 << 80) | (4095u128 << 62) | (7u128 << 47);
        let r = LongResponse([
            (v >> 96) as u32,
            (v >> 64) as u32,
            (v >> 32) as u32,
            v as u32,
        ]);
        assert_eq!(r.bits(83, 80), 10);
        assert_eq!(r.bits(73, 62), 4095);
        assert_eq!(r.bits(49, 47), 7);
        assert_eq!(r.csd_blocks(), Some(4096 * 512 * 2));
        // 512-byte blocks, C_SIZE 1000, C_SIZE_MULT 3: 1001 * 32 blocks.
        let v: u128 = (9u128 << 80) | (1000u128 << 62) | (3u128 << 47);
        let r = LongResponse([
            (v >> 96) as u32,
            (v >> 64) as u32,
            (v >> 32) as u32,
            v as u32,
        ]);
        assert_eq!(r.csd_blocks(), Some(1001 * 32));
        // Unknown structure.
        assert_eq!(LongResponse([3 << 30, 0, 0, 0]).csd_blocks(), None);
    }

    #[test]
    fn cid_fields() {
        // Manufacturer 0x03, OEM "SD", product "SU08G".
        let cid = response("035344535530384780ABCDEF1200D7A1");
        assert_eq!(cid.cid_product(), (0x03, *b"SU08G"));
    }

    #[test]
    fn addresses() {
        assert_eq!(CardType::Sdhc.address(7), 7);
        assert_eq!(CardType::Sd2.address(7), 3584);
        assert_eq!(CardType::Sd1.address(0), 0);
    }

    #[test]
    fn status_words() {
        // Transfer state, ready for data, APP_CMD: no error.
        let ok = (4 << 9) | (1 << 8) | (1 << 5);
        assert!(ready(ok));
        assert_eq!(status_error_name(ok), None);
        // Programming: not ready yet.
        assert!(!ready((7 << 9) | (1 << 8)));
        assert_eq!(current_state(7 << 9), state::PROGRAMMING);
        // Errors: the most significant one is named.
        assert_eq!(
            status_error_name(ok | 1 << 31 | 1 << 22),
            Some("out of range")
        );
        assert_eq!(status_error_name(ok | 1 << 22), Some("illegal command"));
        assert_eq!(status_error_name(ok | 1 << 26), Some("write protected"));
        // CARD_ECC_DISABLED (14), ERASE_RESET (13) and READY_FOR_DATA are
        // not errors.
        assert_eq!(status_error_name(1 << 14 | 1 << 13 | 1 << 8), None);
        assert_eq!(STATUS_ERRORS & (1 << 14 | 1 << 13 | 1 << 8 | 1 << 5), 0);
    }

    #[test]
    fn messages() {
        let e = SdError::CardStatus {
            cmd: 25,
            status: 1 << 26,
        };
        assert_eq!(
            e.to_string(),
            "CMD25 failed: write protected (card status 0x04000000)"
        );
        assert!(SdError::DataCrc.transient());
        assert!(!SdError::NoCard.transient());
        let info = CardInfo {
            card_type: CardType::Sdhc,
            blocks: 15_523_840,
            bus_width: 4,
            clock_hz: 24_000_000,
            manufacturer: 3,
            product: *b"SC08G",
        };
        assert_eq!(info.bytes(), 7_948_206_080);
        assert_eq!(info.product_name().to_string(), "SC08G");
    }
}
