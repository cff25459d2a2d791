//! The Stellaris Ethernet MAC's FIFO format, as pure functions.
//!
//! Both FIFOs are reached through one 32-bit data register; bytes are packed
//! little-endian, four per word.
//!
//! **TX**: the first word carries, in bits 15:0, the payload length = frame
//! length − 14 (the destination, source and EtherType are not counted), and in
//! bits 31:16 the first two bytes of the frame. The rest of the frame follows;
//! the last word is padded. The MAC appends the FCS.
//!
//! **RX**: the first word carries, in bits 15:0, `n + 6` for a frame of `n`
//! bytes (the 2 length bytes and a 4-byte FCS are counted), and in bits 31:16
//! the first two frame bytes; then the rest of the frame, the 4 FCS bytes and
//! padding, `ceil((n + 6) / 4)` words in all. Under QEMU those 4 bytes are not
//! a valid Ethernet FCS, so they are dropped, never checked.

/// Largest frame handed to or taken from the stack (no FCS): 1500 + 14.
pub const MTU: usize = 1514;
/// Smallest frame that has an Ethernet header.
pub const MIN_FRAME: usize = 14;
/// Largest length field the RX FIFO can hold (2 KiB FIFO).
pub const MAX_RX_FIELD: usize = 2048;

/// Writes `frame` (14..=MTU bytes) as TX FIFO words through `push`.
pub fn tx_words(frame: &[u8], mut push: impl FnMut(u32)) {
    debug_assert!(frame.len() >= MIN_FRAME);
    let b = |i: usize| frame.get(i).copied().unwrap_or(0) as u32;
    push((frame.len() - MIN_FRAME) as u32 & 0xFFFF | b(0) << 16 | b(1) << 24);
    let mut i = 2;
    while i < frame.len() {
        push(b(i) | b(i + 1) << 8 | b(i + 2) << 16 | b(i + 3) << 24);
        i += 4;
    }
}

/// What one RX FIFO frame turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rx {
    /// A frame of this many bytes is in the buffer.
    Frame(usize),
    /// A frame was read out of the FIFO and dropped (too short or longer than
    /// the buffer); the FIFO is at the next frame.
    Dropped(usize),
    /// The length field is impossible: the FIFO is out of step and must be
    /// reset.
    Corrupt(u32),
}

/// The number of 32-bit words a frame whose first word is `first` occupies in
/// the RX FIFO (including that first word), or `None` if the length field is
/// impossible.
pub fn rx_word_count(first: u32) -> Option<usize> {
    let field = (first & 0xFFFF) as usize;
    if !(6..=MAX_RX_FIELD).contains(&field) {
        return None;
    }
    Some(field.div_ceil(4))
}

/// Reads one frame: `first` is the first FIFO word, `pop` returns the next
/// ones. Exactly [`rx_word_count`] words are consumed (so the FIFO moves to the
/// next frame) unless the length field is corrupt. The frame, without its 4
/// trailing bytes, lands in `buf`.
pub fn rx_frame(first: u32, mut pop: impl FnMut() -> u32, buf: &mut [u8]) -> Rx {
    let Some(words) = rx_word_count(first) else {
        return Rx::Corrupt(first);
    };
    let n = (first & 0xFFFF) as usize - 6;
    let keep = n >= MIN_FRAME && n <= buf.len();
    if keep {
        buf[0] = (first >> 16) as u8;
        buf[1] = (first >> 24) as u8;
    }
    // Byte offset in the frame of the next word's first byte.
    let mut at = 2;
    for _ in 1..words {
        let w = pop();
        if keep {
            let bytes = w.to_le_bytes();
            if at + 4 <= n {
                buf[at..at + 4].copy_from_slice(&bytes);
            } else if at < n {
                buf[at..n].copy_from_slice(&bytes[..n - at]);
            }
        }
        at += 4;
    }
    if keep { Rx::Frame(n) } else { Rx::Dropped(n) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What QEMU's model puts in the RX FIFO for `frame`.
    fn qemu_rx_fifo(frame: &[u8]) -> Vec<u32> {
        let mut bytes = Vec::new();
        let len = frame.len() + 6;
        bytes.extend_from_slice(&(len as u16).to_le_bytes());
        bytes.extend_from_slice(frame);
        bytes.extend_from_slice(&[0x39, 0x56, 0x4b, 0x9b]); // bogus "FCS"
        while bytes.len() % 4 != 0 {
            bytes.push(0);
        }
        bytes
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    /// What QEMU's model sends for TX FIFO words.
    fn qemu_tx(words: &[u32]) -> Vec<u8> {
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let len = u16::from_le_bytes([bytes[0], bytes[1]]) as usize + 14;
        bytes.drain(..2);
        bytes.truncate(len);
        bytes
    }

    fn frame(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn tx_round_trips_every_length() {
        for n in MIN_FRAME..=MTU {
            let f = frame(n);
            let mut words = Vec::new();
            tx_words(&f, |w| words.push(w));
            assert_eq!(words.len(), (n + 2).div_ceil(4), "len {n}");
            assert_eq!(qemu_tx(&words), f, "len {n}");
        }
    }

    #[test]
    fn rx_strips_the_trailing_four_bytes_for_every_length() {
        let mut buf = [0u8; MTU];
        for n in MIN_FRAME..=MTU {
            let f = frame(n);
            let fifo = qemu_rx_fifo(&f);
            let mut it = fifo[1..].iter().copied();
            let got = rx_frame(
                fifo[0],
                || it.next().expect("read past the frame"),
                &mut buf,
            );
            assert_eq!(got, Rx::Frame(n));
            assert_eq!(&buf[..n], &f[..]);
            assert_eq!(it.next(), None, "len {n}: words left unread");
        }
    }

    #[test]
    fn oversized_and_runt_frames_are_consumed_and_dropped() {
        let mut buf = [0u8; MTU];
        for n in [0, 5, 13, MTU + 1, 2041] {
            let fifo = qemu_rx_fifo(&frame(n));
            let mut it = fifo[1..].iter().copied();
            assert_eq!(
                rx_frame(fifo[0], || it.next().unwrap(), &mut buf),
                Rx::Dropped(n)
            );
            assert_eq!(it.next(), None);
        }
    }

    #[test]
    fn impossible_length_is_corrupt() {
        let mut buf = [0u8; MTU];
        for first in [0u32, 5, 2049, 0xFFFF] {
            assert_eq!(
                rx_frame(first, || panic!("must not read"), &mut buf),
                Rx::Corrupt(first)
            );
        }
    }
}
