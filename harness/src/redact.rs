//! The one table of redactions: what legitimately differs between runs and
//! targets (addresses, ports, dates, free space) becomes a bracketed
//! placeholder, so that one snapshot holds for host, sim and QEMU.
//!
//! Anything that differs between targets and is not in this table is either
//! a bug or a filter still to be named here.

use std::sync::OnceLock;

use regex::Regex;

/// (what it hides, pattern, replacement), applied in order.
const FILTERS: &[(&str, &str, &str)] = &[
    // PASV reply and PORT argument: h1,h2,h3,h4,p1,p2.
    (
        "pasv/port tuple",
        r"\b\d{1,3},\d{1,3},\d{1,3},\d{1,3},\d{1,3},\d{1,3}\b",
        "[ADDR],[PORT]",
    ),
    // EPSV reply: (|||port|).
    ("epsv port", r"\(\|\|\|\d+\|\)", "(|||[PORT]|)"),
    // EPRT argument: |1|addr|port|.
    (
        "eprt argument",
        r"\|([12])\|[0-9A-Fa-f:.]+\|\d+\|",
        "|$1|[ADDR]|[PORT]|",
    ),
    // Addresses with a port, then bare addresses (STAT, logs).
    (
        "ipv4:port",
        r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}:\d+\b",
        "[ADDR]:[PORT]",
    ),
    ("ipv4", r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b", "[ADDR]"),
    ("ipv6 loopback", r"\[?::1\]?(:\d+)?", "[ADDR]"),
    // MDTM replies, MLSD/MLST modify= and create= facts.
    ("timestamp", r"\b(19|20)\d{12}(\.\d{1,3})?\b", "[TIME]"),
    // A FAT root directory has no directory entry, hence no timestamp: MLST
    // of `/` has a modify fact on a host directory and none on FAT. Both are
    // RFC 3659 (facts are optional); the snapshot shows the fact absent.
    (
        "root without mtime",
        r"^(\s*type=dir;)modify=\[TIME\];(.*; /)$",
        "$1$2",
    ),
    // `ls -l` dates: "Jan 01 12:00" or "Jan 01  2024".
    (
        "ls date",
        r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-3]\d ( \d{4}|\d\d:\d\d)\b",
        "[DATE]",
    ),
    // Free space, wherever a reply states it.
    (
        "free space",
        r"\b\d+ ?(bytes|[KMG]i?B|[kKMG]) (free|available)\b",
        "[SIZE] $2",
    ),
    // Transfer rates and durations in a 226 text.
    (
        "rate",
        r"\b\d+(\.\d+)? ?([kKMG]i?B|bytes|B)/s(ec)?\b",
        "[RATE]",
    ),
    (
        "elapsed",
        r"\bin \d+(\.\d+)? ?(ms|s|sec|secs|seconds)\b",
        "in [TIME]",
    ),
];

fn compiled() -> &'static [(Regex, &'static str)] {
    static C: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    C.get_or_init(|| {
        FILTERS
            .iter()
            .map(|(_, p, r)| (Regex::new(p).expect("filter regex"), *r))
            .collect()
    })
}

/// Apply every filter to one line.
pub fn redact(line: &str) -> String {
    let mut s = line.to_string();
    for (re, rep) in compiled() {
        if re.is_match(&s) {
            s = re.replace_all(&s, *rep).into_owned();
        }
    }
    s
}

/// The filters, for `harness --help`-style documentation and the README.
pub fn describe() -> impl Iterator<Item = (&'static str, &'static str)> {
    FILTERS.iter().map(|(n, _, r)| (*n, *r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasv_epsv_port_eprt() {
        assert_eq!(
            redact("227 Entering Passive Mode (127,0,0,1,195,80)."),
            "227 Entering Passive Mode ([ADDR],[PORT])."
        );
        assert_eq!(
            redact("229 Entering Extended Passive Mode (|||50012|)"),
            "229 Entering Extended Passive Mode (|||[PORT]|)"
        );
        assert_eq!(redact("PORT 192,0,2,1,4,1"), "PORT [ADDR],[PORT]");
        assert_eq!(redact("EPRT |1|127.0.0.1|40000|"), "EPRT |1|[ADDR]|[PORT]|");
        assert_eq!(
            redact("EPRT |2|2001:db8::1|40000|"),
            "EPRT |2|[ADDR]|[PORT]|"
        );
    }

    #[test]
    fn addresses() {
        assert_eq!(
            redact("211-Connected from 192.0.2.2:51234"),
            "211-Connected from [ADDR]:[PORT]"
        );
        assert_eq!(redact(" to 127.0.0.1"), " to [ADDR]");
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(redact("213 20240101123456"), "213 [TIME]");
        assert_eq!(
            redact("type=file;size=11;modify=20240101120000.123;perm=r; readme.txt"),
            "type=file;size=11;modify=[TIME];perm=r; readme.txt"
        );
        assert_eq!(
            redact("-rw-r--r-- 1 owner group 11 Jan 01 12:00 readme.txt"),
            "-rw-r--r-- 1 owner group 11 [DATE] readme.txt"
        );
        assert_eq!(
            redact("drwxr-xr-x 1 owner group 0 Dec  9  2023 sub"),
            "drwxr-xr-x 1 owner group 0 [DATE] sub"
        );
    }

    #[test]
    fn root_mtime_is_dropped_only_for_the_root() {
        assert_eq!(
            redact(" type=dir;modify=20240101120000;perm=cdeflmp; /"),
            " type=dir;perm=cdeflmp; /"
        );
        assert_eq!(
            redact(" type=dir;perm=cdeflmp; /"),
            " type=dir;perm=cdeflmp; /"
        );
        assert_eq!(
            redact(" type=dir;modify=20240101120000;perm=cdeflmp; /sub"),
            " type=dir;modify=[TIME];perm=cdeflmp; /sub"
        );
    }

    #[test]
    fn sizes_that_vary() {
        assert_eq!(redact("211 1048576 bytes free"), "211 [SIZE] free");
        assert_eq!(
            redact("226 Done, 4096 bytes in 0.01 s (400.0 KB/s)"),
            "226 Done, 4096 bytes in [TIME] ([RATE])"
        );
    }

    #[test]
    fn what_must_survive() {
        // File sizes, reply codes and plain numbers are not variable.
        for s in [
            "213 4096",
            "257 \"/sub\" created",
            "-rw-r--r-- 1 owner group 4096",
            "150 Opening (4096 bytes)",
        ] {
            assert_eq!(redact(s), s);
        }
    }
}
