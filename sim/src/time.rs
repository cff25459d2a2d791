//! Wall-clock helpers: the engine wants UTC calendar time ([`DateTime`]) for
//! `MDTM`, `MLSD` and listings, and never reads a clock itself.

use std::time::{SystemTime, UNIX_EPOCH};

use ftpd::DateTime;

/// Seconds since the Unix epoch (negative before 1970) as a UTC calendar
/// time; `None` outside the years 0..=9999, which FTP's `YYYYMMDDhhmmss`
/// cannot carry.
pub fn datetime_from_unix(secs: i64) -> Option<DateTime> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return None;
    }
    Some(DateTime {
        year: year as u16,
        month,
        day,
        hour: (rem / 3600) as u8,
        minute: (rem % 3600 / 60) as u8,
        second: (rem % 60) as u8,
    })
}

/// A [`SystemTime`] as UTC calendar time (sub-second part dropped).
pub fn datetime_from_system_time(t: SystemTime) -> Option<DateTime> {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).ok()?,
        // Before 1970: round towards minus infinity, so 1969-12-31 23:59:59.5
        // stays in 1969.
        Err(e) => {
            let d = e.duration();
            let whole = i64::try_from(d.as_secs()).ok()?;
            if d.subsec_nanos() > 0 {
                -whole - 1
            } else {
                -whole
            }
        }
    };
    datetime_from_unix(secs)
}

/// The host's current UTC time.
pub fn utc_now() -> Option<DateTime> {
    datetime_from_system_time(SystemTime::now())
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn dt(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> DateTime {
        DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        }
    }

    #[test]
    fn epoch_and_known_instants() {
        assert_eq!(datetime_from_unix(0), Some(dt(1970, 1, 1, 0, 0, 0)));
        // `date -u -d @951782400` = Tue Feb 29 00:00:00 UTC 2000 (leap day).
        assert_eq!(
            datetime_from_unix(951_782_400),
            Some(dt(2000, 2, 29, 0, 0, 0))
        );
        // 2038-01-19 03:14:07, the last 32-bit second.
        assert_eq!(
            datetime_from_unix(2_147_483_647),
            Some(dt(2038, 1, 19, 3, 14, 7))
        );
        // 2100 is not a leap year: Feb 28 is followed by Mar 1.
        assert_eq!(
            datetime_from_unix(4_107_456_000),
            Some(dt(2100, 2, 28, 0, 0, 0))
        );
        assert_eq!(
            datetime_from_unix(4_107_542_400),
            Some(dt(2100, 3, 1, 0, 0, 0))
        );
        assert_eq!(
            datetime_from_unix(1_767_225_599),
            Some(dt(2025, 12, 31, 23, 59, 59))
        );
    }

    #[test]
    fn before_1970() {
        assert_eq!(datetime_from_unix(-1), Some(dt(1969, 12, 31, 23, 59, 59)));
        let t = UNIX_EPOCH - Duration::from_millis(500);
        assert_eq!(
            datetime_from_system_time(t),
            Some(dt(1969, 12, 31, 23, 59, 59))
        );
        // 1900-01-01 00:00:00
        assert_eq!(
            datetime_from_unix(-2_208_988_800),
            Some(dt(1900, 1, 1, 0, 0, 0))
        );
    }

    #[test]
    fn out_of_range_years_are_none() {
        // 10000-01-01 00:00:00
        assert_eq!(datetime_from_unix(253_402_300_800), None);
        assert_eq!(
            datetime_from_unix(253_402_300_799),
            Some(dt(9999, 12, 31, 23, 59, 59))
        );
    }

    #[test]
    fn now_is_plausible() {
        let now = utc_now().expect("clock after year 0");
        assert!(now.year >= 2024, "{now:?}");
    }
}
