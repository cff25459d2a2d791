//! Time as the engine sees it: a monotonic millisecond count passed in by the
//! caller. The engine never reads a clock.

/// A point on the caller's monotonic clock, in milliseconds.
///
/// Stored 4-byte aligned (`packed(4)`: read by value, never borrowed), like
/// every other 64-bit number a session keeps ([`U64`]): with no 8-byte
/// aligned field, whole sessions are moved and cleared by the 4-byte aligned
/// `memcpy`/`memclr` the engine links anyway, not by 8-byte ones as well.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
#[repr(C, packed(4))]
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
#[repr(C, packed(4))]
pub(crate) struct U64(pub u64);

/// Whether `ms` after `since` is `now` or earlier. If not, that deadline is
/// folded into `wake` (which keeps the earliest).
#[inline(never)]
pub(crate) fn expired(now: Instant, since: Instant, ms: u64, wake: &mut Option<Instant>) -> bool {
    let deadline = since.after(ms);
    if now >= deadline {
        return true;
    }
    earliest(wake, deadline);
    false
}

/// `wake` becomes the earlier of itself and `t`.
#[inline(never)]
pub(crate) fn earliest(wake: &mut Option<Instant>, t: Instant) {
    *wake = Some(wake.map_or(t, |w| w.min(t)));
}

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
        assert!(b < a);
        assert!(a > b);
        assert_eq!(b.min(a), b);
        assert_eq!(a.after(5).millis(), u64::MAX);
        assert_eq!(b.after(7).millis(), (1 << 40) + 7);
        assert!(Instant::from_millis(1 << 32) > Instant::from_millis((1 << 32) - 1));
        let mut n = U64(u64::MAX - 1);
        n.0 += 1;
        assert_eq!({ n.0 }, u64::MAX);
    }

    fn ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    #[test]
    fn expired_at_and_after_the_deadline() {
        let mut wake = None;
        assert!(expired(ms(150), ms(100), 50, &mut wake));
        assert!(expired(ms(151), ms(100), 50, &mut wake));
        assert_eq!(wake, None);
        assert!(!expired(ms(149), ms(100), 50, &mut wake));
        assert_eq!(wake, Some(ms(150)));
        assert!(expired(ms(7), ms(7), 0, &mut wake));
    }

    #[test]
    fn wake_keeps_the_earliest_deadline() {
        let mut wake = None;
        assert!(!expired(ms(0), ms(100), 50, &mut wake));
        assert!(!expired(ms(0), ms(10), 50, &mut wake));
        assert!(!expired(ms(0), ms(200), 50, &mut wake));
        assert_eq!(wake, Some(ms(60)));
        earliest(&mut wake, ms(70));
        assert_eq!(wake, Some(ms(60)));
        earliest(&mut wake, ms(5));
        assert_eq!(wake, Some(ms(5)));
    }

    #[test]
    fn deadlines_saturate() {
        let mut wake = None;
        assert!(!expired(
            ms(u64::MAX - 1),
            ms(u64::MAX - 1),
            u64::MAX,
            &mut wake
        ));
        assert_eq!(wake, Some(ms(u64::MAX)));
        assert!(expired(ms(u64::MAX), ms(5), u64::MAX, &mut wake));
    }
}
