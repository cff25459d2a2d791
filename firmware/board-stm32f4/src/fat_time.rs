//! The time stamped on new and changed files. The STM32F4-Discovery has no
//! 32 kHz crystal for the RTC and nothing sets a calendar clock at boot, so
//! files get a fixed date, 2000-01-01 00:00:00, and the engine is told the
//! time of day is unknown (as the QEMU board is when started without boot
//! parameters).

use embedded_sdmmc::{TimeSource, Timestamp};

/// Always 2000-01-01T00:00:00.
#[derive(Clone, Copy, Debug, Default)]
pub struct FixedTime;

impl TimeSource for FixedTime {
    fn get_timestamp(&self) -> Timestamp {
        Timestamp {
            year_since_1970: 30,
            zero_indexed_month: 0,
            zero_indexed_day: 0,
            hours: 0,
            minutes: 0,
            seconds: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn year_2000() {
        let t = FixedTime.get_timestamp();
        assert_eq!(
            (
                t.year_since_1970 as u16 + 1970,
                t.zero_indexed_month + 1,
                t.zero_indexed_day + 1
            ),
            (2000, 1, 1)
        );
    }
}
