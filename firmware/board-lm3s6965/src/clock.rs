//! Calendar time. The board has no battery-backed clock under QEMU: the
//! time of day comes from the boot parameters (the host's Unix time when
//! QEMU started) plus the milliseconds since boot. Without it, files get a
//! fixed date (2000-01-01) and listings show that.

use embedded_sdmmc::{TimeSource, Timestamp};
use ftpd::DateTime;

/// Unix seconds as a UTC calendar date (proleptic Gregorian; days-to-civil
/// with March-based years, valid for any date after 1970).
pub fn civil(unix: u64) -> DateTime {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // day of the 400-year era
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153; // March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (era * 400 + yoe + u64::from(month <= 2)) as u16;
    DateTime {
        year,
        month,
        day,
        hour: (secs / 3600) as u8,
        minute: (secs / 60 % 60) as u8,
        second: (secs % 60) as u8,
    }
}

/// 2000-01-01T00:00:00Z, used when the time is unknown.
pub const FALLBACK_UNIX: u64 = 946_684_800;

/// The board's wall clock: Unix time at boot plus a millisecond counter.
#[derive(Clone, Copy)]
pub struct Clock {
    boot_unix: Option<u64>,
    ms: fn() -> u64,
}

impl Clock {
    pub fn new(boot_unix: Option<u64>, ms: fn() -> u64) -> Self {
        Clock { boot_unix, ms }
    }

    /// Whether the time of day is known.
    pub fn known(&self) -> bool {
        self.boot_unix.is_some()
    }

    pub fn unix(&self) -> u64 {
        self.boot_unix.unwrap_or(FALLBACK_UNIX) + (self.ms)() / 1000
    }

    /// The time for the engine (`None` when unknown).
    pub fn utc(&self) -> Option<DateTime> {
        self.boot_unix.map(|_| civil(self.unix()))
    }
}

impl TimeSource for Clock {
    fn get_timestamp(&self) -> Timestamp {
        let d = civil(self.unix());
        Timestamp {
            year_since_1970: (d.year.saturating_sub(1970)).min(255) as u8,
            zero_indexed_month: d.month - 1,
            zero_indexed_day: d.day - 1,
            hours: d.hour,
            minutes: d.minute,
            seconds: d.second,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(d: DateTime) -> (u16, u8, u8, u8, u8, u8) {
        (d.year, d.month, d.day, d.hour, d.minute, d.second)
    }

    #[test]
    fn known_dates() {
        assert_eq!(t(civil(0)), (1970, 1, 1, 0, 0, 0));
        assert_eq!(t(civil(FALLBACK_UNIX)), (2000, 1, 1, 0, 0, 0));
        assert_eq!(t(civil(951_782_400)), (2000, 2, 29, 0, 0, 0));
        assert_eq!(t(civil(1_709_210_096)), (2024, 2, 29, 12, 34, 56));
        assert_eq!(t(civil(4_102_444_799)), (2099, 12, 31, 23, 59, 59));
    }

    #[test]
    fn timestamp_for_fat() {
        let c = Clock::new(Some(1_709_210_096), || 61_500);
        let ts = c.get_timestamp();
        assert_eq!(
            (
                ts.year_since_1970,
                ts.zero_indexed_month,
                ts.zero_indexed_day
            ),
            (54, 1, 28)
        );
        assert_eq!((ts.hours, ts.minutes, ts.seconds), (12, 35, 57));
        assert!(Clock::new(None, || 0).utc().is_none());
    }
}
