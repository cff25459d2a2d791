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

use core::fmt::{self, Write};

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

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `YYYYMMDDHHMMSS`, the form of MDTM and MLSD `modify`.
pub struct Timeval(pub DateTime);

impl fmt::Display for Timeval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(
            f,
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            d.year, d.month, d.day, d.hour, d.minute, d.second
        )
    }
}

/// Days since 1970-01-01 of a calendar date (for "within six months").
fn days(d: &DateTime) -> i64 {
    let (y, m) = (i64::from(d.year), i64::from(d.month.clamp(1, 12)));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + i64::from(d.day.clamp(1, 31)) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Writes one `LIST` line (with CRLF).
pub fn write_list_line(
    w: &mut impl Write,
    name: &str,
    meta: &Metadata,
    writable: bool,
    now: Option<&DateTime>,
) -> fmt::Result {
    let (perm, size) = match meta.kind {
        Kind::Dir => (if writable { "drwxr-xr-x" } else { "dr-xr-xr-x" }, 0),
        Kind::File => (
            if writable { "-rw-r--r--" } else { "-r--r--r--" },
            meta.size,
        ),
    };
    let d = meta.modified.unwrap_or(DateTime {
        year: 1980,
        month: 1,
        day: 1,
        ..DateTime::default()
    });
    let month = MONTHS[usize::from(d.month.clamp(1, 12)) - 1];
    write!(w, "{perm} 1 ftp ftp {size:>12} {month} {:>2} ", d.day)?;
    let recent = now.is_some_and(|n| {
        let age = days(n) - days(&d);
        (-1..183).contains(&age)
    });
    if recent {
        write!(w, "{:02}:{:02}", d.hour, d.minute)?;
    } else {
        write!(w, " {:04}", d.year)?;
    }
    write!(w, " {name}\r\n")
}

/// Writes the facts of one MLSD/MLST entry, ending with `; ` (no name).
pub fn write_facts(w: &mut impl Write, meta: &Metadata, writable: bool, mask: u8) -> fmt::Result {
    if mask & facts::TYPE != 0 {
        w.write_str(match meta.kind {
            Kind::Dir => "type=dir;",
            Kind::File => "type=file;",
        })?;
    }
    if mask & facts::SIZE != 0 && meta.kind == Kind::File {
        write!(w, "size={};", meta.size)?;
    }
    if mask & facts::MODIFY != 0 {
        if let Some(m) = meta.modified {
            write!(w, "modify={};", Timeval(m))?;
        }
    }
    if mask & facts::PERM != 0 {
        w.write_str(match (meta.kind, writable) {
            (Kind::File, true) => "perm=adfrw;",
            (Kind::File, false) => "perm=r;",
            (Kind::Dir, true) => "perm=cdeflmp;",
            (Kind::Dir, false) => "perm=el;",
        })?;
    }
    w.write_str(" ")
}

/// Writes one line of `format` for an entry.
pub fn write_entry(
    w: &mut impl Write,
    format: Format,
    name: &str,
    meta: &Metadata,
    writable: bool,
    now: Option<&DateTime>,
    mask: u8,
) -> fmt::Result {
    match format {
        Format::List => write_list_line(w, name, meta, writable, now),
        Format::Nlst => write!(w, "{name}\r\n"),
        Format::Mlsd => {
            write_facts(w, meta, writable, mask)?;
            write!(w, "{name}\r\n")
        }
    }
}

/// A `fmt::Write` over a byte slice that fails instead of cutting.
pub struct SliceWriter<'b> {
    pub buf: &'b mut [u8],
    pub len: usize,
}

impl Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
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

    fn line(f: impl FnOnce(&mut String) -> fmt::Result) -> String {
        let mut s = String::new();
        f(&mut s).unwrap();
        s
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
    fn nlst_is_names_only() {
        let s = line(|w| write_entry(w, Format::Nlst, "x y", &file(1), true, None, 0));
        assert_eq!(s, "x y\r\n");
    }

    #[test]
    fn timeval_form() {
        assert_eq!(std::format!("{}", Timeval(DATE)), "20240305140709");
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

    #[test]
    fn slice_writer_refuses_overflow() {
        let mut buf = [0u8; 4];
        let mut w = SliceWriter {
            buf: &mut buf,
            len: 0,
        };
        assert!(w.write_str("abc").is_ok());
        assert!(w.write_str("de").is_err());
        assert_eq!(w.len, 3);
    }
}
