//! Directory listing formats.
//!
//! - `LIST`: the Unix `ls -l` form that FileZilla, Total Commander, FAR,
//!   Chrome and wget parse: `drwxr-xr-x 1 ftp ftp 0 Jan 01 12:00 name`.
//!   A date within the last six months shows the time, older ones the year
//!   (as `ls` does); without a wall clock the year is always shown.
//!   Directory sizes are printed as 0 so every backend lists alike.
//! - `NLST`: names only.
//! - `MLSD`/`MLST` (RFC 3659 §7): `type=file;size=3;modify=YYYYMMDDHHMMSS;perm=r; name`,
//!   facts chosen with `OPTS MLST`, always ending in `;` before the single
//!   space (ftplib and jlaffaye/ftp drop the last character of the facts).

use crate::proto::reply::Writer;
use crate::storage::{DateTime, Kind, Metadata};

/// Which listing a transfer produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    List,
    Nlst,
    Mlsd,
}

/// MLST facts, as a bit set (`OPTS MLST`).
pub mod facts {
    pub const TYPE: u8 = 1;
    pub const SIZE: u8 = 2;
    pub const MODIFY: u8 = 4;
    pub const PERM: u8 = 8;
    pub const ALL: u8 = TYPE | SIZE | MODIFY | PERM;
    /// Names in FEAT order.
    pub const NAMES: [(&str, u8); 4] = [
        ("type", TYPE),
        ("size", SIZE),
        ("modify", MODIFY),
        ("perm", PERM),
    ];
}

const MONTHS: &[u8; 36] = b"JanFebMarAprMayJunJulAugSepOctNovDec";

/// Writes `YYYYMMDDHHMMSS`, the form of MDTM and MLSD `modify`.
pub fn write_timeval(w: &mut Writer<'_>, d: &DateTime) {
    w.num_pad(u64::from(d.year), 4, b'0');
    for v in [d.month, d.day, d.hour, d.minute, d.second] {
        w.num_pad(u64::from(v), 2, b'0');
    }
}

/// Days since 1970-01-01 of a calendar date (for "within six months").
/// The count of the civil calendar from March of year 0, over years
/// shifted by 400 (one full cycle of leap years) so that every division
/// is of a positive number.
fn days(d: &DateTime) -> i32 {
    let (y, m) = (u32::from(d.year) + 400, u32::from(d.month.clamp(1, 12)));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let doy = (153 * m + 2) / 5 + u32::from(d.day.clamp(1, 31)) - 1;
    let n = y * 365 + y / 4 - y / 100 + y / 400 + doy;
    // 719 468: 0000-03-01 to 1970-01-01; 146 097: the 400 years added.
    n as i32 - (719_468 + 146_097)
}

/// Writes one `LIST` line (with CRLF).
pub fn write_list_line(
    w: &mut Writer<'_>,
    name: &str,
    meta: &Metadata,
    writable: bool,
    now: Option<&DateTime>,
) {
    write_list_columns(w, meta, writable, now);
    w.raw(name.as_bytes()).raw(b"\r\n");
}

/// Writes the columns of a `LIST` line before the name, ending with the
/// space before it.
pub fn write_list_columns(
    w: &mut Writer<'_>,
    meta: &Metadata,
    writable: bool,
    now: Option<&DateTime>,
) {
    // `drwxr-xr-x`, `dr-xr-xr-x`, `-rw-r--r--` or `-r--r--r--`.
    let dir = meta.kind == Kind::Dir;
    let (t, x) = if dir { (b'd', b'x') } else { (b'-', b'-') };
    let wr = if writable { b'w' } else { b'-' };
    let perm = [t, b'r', wr, x, b'r', b'-', x, b'r', b'-', x];
    let size = if dir { 0 } else { meta.size };
    let d = meta.modified.as_ref().unwrap_or(&DateTime {
        year: 1980,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    });
    let m = 3 * (usize::from(d.month.clamp(1, 12)) - 1);
    w.raw(&perm)
        .raw(b" 1 ftp ftp ")
        .num_pad(size, 12, b' ')
        .byte(b' ')
        .raw(&MONTHS[m..m + 3])
        .byte(b' ')
        .num_pad(u64::from(d.day), 2, b' ')
        .byte(b' ');
    let recent = now.is_some_and(|n| {
        let age = days(n) - days(d);
        (-1..183).contains(&age)
    });
    if recent {
        w.num_pad(u64::from(d.hour), 2, b'0')
            .byte(b':')
            .num_pad(u64::from(d.minute), 2, b'0');
    } else {
        w.byte(b' ').num_pad(u64::from(d.year), 4, b'0');
    }
    w.byte(b' ');
}

/// Writes the facts of one MLSD/MLST entry, ending with `; ` (no name).
pub fn write_facts(w: &mut Writer<'_>, meta: &Metadata, writable: bool, mask: u8) {
    let dir = meta.kind == Kind::Dir;
    if mask & facts::TYPE != 0 {
        w.raw(if dir { b"type=dir;" } else { b"type=file;" });
    }
    if mask & facts::SIZE != 0 && !dir {
        w.raw(b"size=").num(meta.size).byte(b';');
    }
    if mask & facts::MODIFY != 0 {
        if let Some(m) = &meta.modified {
            w.raw(b"modify=");
            write_timeval(w, m);
            w.byte(b';');
        }
    }
    if mask & facts::PERM != 0 {
        w.raw(match (dir, writable) {
            (false, true) => b"perm=adfrw;",
            (false, false) => b"perm=r;",
            (true, true) => b"perm=cdeflmp;",
            (true, false) => b"perm=el;",
        });
    }
    w.byte(b' ');
}

/// Writes one line of `format` for an entry. Whether it fit is
/// [`Writer::overflowed`].
pub fn write_entry(
    w: &mut Writer<'_>,
    format: Format,
    name: &str,
    meta: &Metadata,
    writable: bool,
    now: Option<&DateTime>,
    mask: u8,
) {
    match format {
        Format::List => write_list_columns(w, meta, writable, now),
        Format::Nlst => {}
        Format::Mlsd => write_facts(w, meta, writable, mask),
    }
    w.raw(name.as_bytes()).raw(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    const DATE: DateTime = DateTime {
        year: 2024,
        month: 3,
        day: 5,
        hour: 14,
        minute: 7,
        second: 9,
    };

    fn file(size: u64) -> Metadata {
        Metadata {
            kind: Kind::File,
            size,
            modified: Some(DATE),
        }
    }

    fn dir() -> Metadata {
        Metadata {
            kind: Kind::Dir,
            size: 4096,
            modified: Some(DATE),
        }
    }

    fn line(f: impl FnOnce(&mut Writer<'_>)) -> String {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        f(&mut w);
        assert!(!w.overflowed());
        String::from_utf8(w.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn list_line_old_file_shows_year() {
        let s = line(|w| write_list_line(w, "readme.txt", &file(11), true, None));
        assert_eq!(
            s,
            "-rw-r--r-- 1 ftp ftp           11 Mar  5  2024 readme.txt\r\n"
        );
    }

    #[test]
    fn list_line_recent_file_shows_time() {
        let now = DateTime {
            year: 2024,
            month: 4,
            day: 1,
            ..DATE
        };
        let s = line(|w| write_list_line(w, "a b", &file(1), true, Some(&now)));
        assert_eq!(s, "-rw-r--r-- 1 ftp ftp            1 Mar  5 14:07 a b\r\n");
        let later = DateTime {
            year: 2025,
            month: 4,
            day: 1,
            ..DATE
        };
        let s = line(|w| write_list_line(w, "a", &file(1), true, Some(&later)));
        assert!(s.contains("Mar  5  2024 a"), "{s}");
    }

    #[test]
    fn list_line_dir_has_size_zero() {
        let s = line(|w| write_list_line(w, "sub", &dir(), false, None));
        assert_eq!(s, "dr-xr-xr-x 1 ftp ftp            0 Mar  5  2024 sub\r\n");
    }

    #[test]
    fn list_permissions_for_kind_and_writability() {
        for (meta, writable, perm) in [
            (dir(), true, "drwxr-xr-x"),
            (dir(), false, "dr-xr-xr-x"),
            (file(1), true, "-rw-r--r--"),
            (file(1), false, "-r--r--r--"),
        ] {
            let s = line(|w| write_list_line(w, "n", &meta, writable, None));
            assert_eq!(&s[..11], std::format!("{perm} "), "{s}");
        }
    }

    #[test]
    fn list_lines_are_long_enough_for_far() {
        // FAR skips lines shorter than 20 characters.
        let s = line(|w| write_list_line(w, "a", &file(0), true, None));
        assert!(s.len() > 20);
    }

    #[test]
    fn mlsd_facts_end_with_semicolon_space() {
        let s = line(|w| {
            write_entry(
                w,
                Format::Mlsd,
                "f.bin",
                &file(4096),
                true,
                None,
                facts::ALL,
            )
        });
        assert_eq!(
            s,
            "type=file;size=4096;modify=20240305140709;perm=adfrw; f.bin\r\n"
        );
        let s = line(|w| {
            write_entry(
                w,
                Format::Mlsd,
                "d",
                &dir(),
                false,
                None,
                facts::TYPE | facts::SIZE,
            )
        });
        assert_eq!(s, "type=dir; d\r\n");
    }

    #[test]
    fn list_entry_is_the_columns_then_the_name() {
        let s = line(|w| write_entry(w, Format::List, "f", &file(3), false, None, 0));
        assert_eq!(s, "-r--r--r-- 1 ftp ftp            3 Mar  5  2024 f\r\n");
        let c = line(|w| write_list_columns(w, &file(3), false, None));
        assert_eq!(c, "-r--r--r-- 1 ftp ftp            3 Mar  5  2024 ");
    }

    #[test]
    fn nlst_is_names_only() {
        let s = line(|w| write_entry(w, Format::Nlst, "x y", &file(1), true, None, 0));
        assert_eq!(s, "x y\r\n");
    }

    #[test]
    fn timeval_form() {
        assert_eq!(line(|w| write_timeval(w, &DATE)), "20240305140709");
    }

    #[test]
    fn day_count_is_right() {
        assert_eq!(
            days(&DateTime {
                year: 1970,
                month: 1,
                day: 1,
                ..DATE
            }),
            0
        );
        assert_eq!(
            days(&DateTime {
                year: 2000,
                month: 3,
                day: 1,
                ..DATE
            }),
            11017
        );
    }

    /// The general proleptic Gregorian count (eras of 400 years, any
    /// sign), as `days` was written before it was shifted to unsigned.
    fn days_reference(d: &DateTime) -> i32 {
        let (y, m) = (i32::from(d.year), i32::from(d.month.clamp(1, 12)));
        let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * m + 2) / 5 + i32::from(d.day.clamp(1, 31)) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    #[test]
    fn day_count_matches_the_general_formula() {
        let years = (0..=2500).chain([9999, u16::MAX]);
        for year in years {
            for month in 0..=13 {
                for day in [0, 1, 2, 15, 28, 29, 30, 31, 32, 255] {
                    let d = DateTime {
                        year,
                        month,
                        day,
                        ..DATE
                    };
                    assert_eq!(days(&d), days_reference(&d), "{d:?}");
                }
            }
        }
    }

    #[test]
    fn a_line_that_does_not_fit_is_reported() {
        let mut buf = [0u8; 40];
        let mut w = Writer::new(&mut buf);
        write_entry(&mut w, Format::Nlst, "abc", &file(1), true, None, 0);
        assert!(!w.overflowed());
        write_list_line(&mut w, "a", &file(1), true, None);
        assert!(w.overflowed());
        w.truncate(5);
        assert_eq!(w.as_bytes(), b"abc\r\n");
        assert!(!w.overflowed());
    }
}
