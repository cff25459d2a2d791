//! Time as the engine sees it: a monotonic millisecond count passed in by the
//! caller. The engine never reads a clock.

/// A point on the caller's monotonic clock, in milliseconds.
///
/// Stored 4-byte aligned (`packed(4)`: read by value, never borrowed), like
/// every other 64-bit number a session keeps ([`U64`]): with no 8-byte
/// aligned field, whole sessions are moved and cleared by the 4-byte aligned
/// `memcpy`/`memclr` the engine links anyway, not by 8-byte ones as well.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
#[repr(packed(4))]
pub struct Instant(u64);

impl Instant {
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms)
    }
    pub const fn millis(self) -> u64 {
        self.0
    }
    /// `self + ms`, saturating.
    pub const fn after(self, ms: u64) -> Self {
        Instant(self.0.saturating_add(ms))
    }
}

/// A `u64` stored 4-byte aligned, for session state (offsets, byte counts);
/// see [`Instant`] for why. Use the number as `.0` (a copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(packed(4))]
pub(crate) struct U64(pub u64);

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::align_of;

    #[test]
    fn four_byte_aligned() {
        assert_eq!(align_of::<Instant>(), 4);
        assert_eq!(align_of::<Option<Instant>>(), 4);
        assert_eq!(align_of::<U64>(), 4);
    }

    #[test]
    fn instants_order_and_saturate() {
        let a = Instant::from_millis(u64::MAX - 1);
        let b = Instant::from_millis(1 << 40);
        assert!(b < a && a > b && a == a);
        assert_eq!(b.min(a), b);
        assert_eq!(a.after(5).millis(), u64::MAX);
        assert_eq!(b.after(7).millis(), (1 << 40) + 7);
        assert!(Instant::from_millis(1 << 32) > Instant::from_millis((1 << 32) - 1));
        let mut n = U64(u64::MAX - 1);
        n.0 += 1;
        assert_eq!({ n.0 }, u64::MAX);
    }
}
