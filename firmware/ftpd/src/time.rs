//! Time as the engine sees it: a monotonic millisecond count passed in by the
//! caller. The engine never reads a clock.

/// A point on the caller's monotonic clock, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
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
