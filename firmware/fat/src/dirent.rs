//! Directory entries as they sit on disk: 8.3 short names, VFAT long-name
//! slots, their checksum, and FAT timestamps.
//!
//! This module is pure: it turns names into 32-byte slots and slots back into
//! names, and never touches a device. `dir` walks directories with it.
//!
//! # The format in one paragraph
//!
//! A directory is an array of 32-byte slots. A slot whose first byte is `0x00`
//! ends the directory (every later slot is free too); `0xE5` marks a deleted
//! slot. Every file has one *short entry* with an 11-byte name (`BASE    EXT`,
//! upper case, space padded), attributes, times, first cluster and size. A
//! long name (up to 255 UTF-16 units) is stored in up to 20 *long-name slots*
//! (attribute `0x0F`) right before the short entry, last part first: the first
//! slot on disk carries sequence number `n | 0x40`, the one just before the
//! short entry carries `1`. Each holds 13 UTF-16 units (after the name: one
//! `0x0000`, then `0xFFFF` padding) and the [`checksum`] of the short name, so
//! a reader can tell whether the long name still belongs to the short entry
//! that follows it.
//!
//! A file created under a long name also needs a unique short *alias*:
//! `firmware-v1.2.3.bin` becomes `FIRMWA~1.BIN`. [`AliasGen`] builds it the
//! way Windows and Linux do (the "basis" of [`basis`], then a numeric tail
//! `~n` that no other entry of the directory uses).

use ftpd::storage::DateTime;

/// Size of one directory slot.
pub const SLOT_LEN: usize = 32;
/// Slots in a 512-byte block.
pub const SLOTS_PER_BLOCK: usize = 16;
/// UTF-16 units in one long-name slot.
pub const LFN_UNITS_PER_SLOT: usize = 13;
/// Longest long name, in UTF-16 units.
pub const MAX_NAME_UNITS: usize = 255;
/// Long-name slots needed for the longest name.
pub const MAX_LFN_SLOTS: usize = 20;
/// Bytes a long name can take as UTF-8 (3 per unit at most).
pub const MAX_NAME_UTF8: usize = MAX_NAME_UNITS * 3;

pub const ATTR_READ_ONLY: u8 = 0x01;
pub const ATTR_HIDDEN: u8 = 0x02;
pub const ATTR_SYSTEM: u8 = 0x04;
pub const ATTR_VOLUME: u8 = 0x08;
pub const ATTR_DIRECTORY: u8 = 0x10;
pub const ATTR_ARCHIVE: u8 = 0x20;
/// The attribute byte of a long-name slot.
pub const ATTR_LFN: u8 = ATTR_READ_ONLY | ATTR_HIDDEN | ATTR_SYSTEM | ATTR_VOLUME;

/// First byte of a deleted slot.
pub const DELETED: u8 = 0xE5;
/// Marks the last long-name slot of a name (the first one on disk).
const LFN_LAST: u8 = 0x40;
/// Case bits of byte 12 (set by Windows NT and Linux for 8.3 names that are
/// all lower case in their base or extension).
const NTRES_LOWER_BASE: u8 = 0x08;
const NTRES_LOWER_EXT: u8 = 0x10;

/// An 11-byte short name as stored: 8 base bytes, 3 extension bytes, space
/// padded.
pub type ShortName = [u8; 11];

/// The `.` entry's name.
pub const DOT: ShortName = *b".          ";
/// The `..` entry's name.
pub const DOTDOT: ShortName = *b"..         ";

/// The checksum every long-name slot carries of its short name.
pub fn checksum(name: &ShortName) -> u8 {
    name.iter()
        .fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
}

/// What a raw slot is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotKind {
    /// `0x00`: this slot and all after it are free.
    End,
    /// `0xE5`: free.
    Deleted,
    /// A long-name part.
    LongName,
    /// A volume label (not a file).
    Label,
    /// A file or directory, including `.` and `..`.
    Entry,
}

pub fn classify(slot: &[u8; SLOT_LEN]) -> SlotKind {
    match slot[0] {
        0x00 => SlotKind::End,
        DELETED => SlotKind::Deleted,
        _ if slot[11] & 0x3F == ATTR_LFN => SlotKind::LongName,
        _ if slot[11] & ATTR_VOLUME != 0 => SlotKind::Label,
        _ => SlotKind::Entry,
    }
}

/// True for the `.` and `..` entries.
pub fn is_dot(name: &ShortName) -> bool {
    *name == DOT || *name == DOTDOT
}

// ---------------------------------------------------------------------------
// Short entries
// ---------------------------------------------------------------------------

/// The fields of a short entry that this crate reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortEntry {
    pub name: ShortName,
    pub attr: u8,
    /// Byte 12: case flags of the 8.3 name.
    pub case: u8,
    pub ctime_tenth: u8,
    pub ctime: u16,
    pub cdate: u16,
    pub adate: u16,
    pub mtime: u16,
    pub mdate: u16,
    pub cluster: u32,
    pub size: u32,
}

impl ShortEntry {
    /// A fresh entry: no cluster, size 0, created and modified at `(date, time)`.
    pub fn new(name: ShortName, attr: u8, date: u16, time: u16) -> Self {
        ShortEntry {
            name,
            attr,
            case: 0,
            ctime_tenth: 0,
            ctime: time,
            cdate: date,
            adate: date,
            mtime: time,
            mdate: date,
            cluster: 0,
            size: 0,
        }
    }

    /// Reads a slot. `fat32` decides whether the high half of the cluster
    /// number counts (FAT16 keeps that field zero, or uses it for other
    /// things).
    pub fn decode(slot: &[u8; SLOT_LEN], fat32: bool) -> Self {
        let u16_at = |i: usize| u16::from_le_bytes([slot[i], slot[i + 1]]);
        let mut name = [0u8; 11];
        name.copy_from_slice(&slot[..11]);
        let hi = if fat32 {
            u32::from(u16_at(20)) << 16
        } else {
            0
        };
        ShortEntry {
            name,
            attr: slot[11],
            case: slot[12],
            ctime_tenth: slot[13],
            ctime: u16_at(14),
            cdate: u16_at(16),
            adate: u16_at(18),
            mtime: u16_at(22),
            mdate: u16_at(24),
            cluster: hi | u32::from(u16_at(26)),
            size: u32::from_le_bytes([slot[28], slot[29], slot[30], slot[31]]),
        }
    }

    pub fn encode(&self, fat32: bool) -> [u8; SLOT_LEN] {
        let mut s = [0u8; SLOT_LEN];
        s[..11].copy_from_slice(&self.name);
        s[11] = self.attr;
        s[12] = self.case;
        s[13] = self.ctime_tenth;
        s[14..16].copy_from_slice(&self.ctime.to_le_bytes());
        s[16..18].copy_from_slice(&self.cdate.to_le_bytes());
        s[18..20].copy_from_slice(&self.adate.to_le_bytes());
        let hi = if fat32 {
            (self.cluster >> 16) as u16
        } else {
            0
        };
        s[20..22].copy_from_slice(&hi.to_le_bytes());
        s[22..24].copy_from_slice(&self.mtime.to_le_bytes());
        s[24..26].copy_from_slice(&self.mdate.to_le_bytes());
        s[26..28].copy_from_slice(&(self.cluster as u16).to_le_bytes());
        s[28..32].copy_from_slice(&self.size.to_le_bytes());
        s
    }

    pub fn is_dir(&self) -> bool {
        self.attr & ATTR_DIRECTORY != 0
    }
}

/// Writes `cluster` into the cluster fields of a raw slot (used to fix `..`).
pub fn set_slot_cluster(slot: &mut [u8], cluster: u32, fat32: bool) {
    let hi = if fat32 { (cluster >> 16) as u16 } else { 0 };
    slot[20..22].copy_from_slice(&hi.to_le_bytes());
    slot[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
}

/// The short name as people read it (`README.TXT`, `readme.txt` when the
/// case bits say so), decoded as ISO-8859-1 so that every byte round-trips.
/// Returns the UTF-8 text in `out`.
pub fn short_display<'a>(name: &ShortName, case: u8, out: &'a mut [u8; 24]) -> &'a str {
    let mut n = 0;
    let mut push = |b: u8, lower: bool, out: &mut [u8; 24]| {
        let b = if lower { b.to_ascii_lowercase() } else { b };
        let c = char::from(b);
        n += c.encode_utf8(&mut out[n..]).len();
    };
    let base_end = name[..8]
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(0, |i| i + 1);
    let ext_end = name[8..]
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(0, |i| i + 1);
    for (i, &b) in name[..base_end].iter().enumerate() {
        // 0x05 in the first byte stands for a real 0xE5 (which would read as
        // "deleted").
        let b = if i == 0 && b == 0x05 { DELETED } else { b };
        push(b, case & NTRES_LOWER_BASE != 0, out);
    }
    if ext_end > 0 {
        push(b'.', false, out);
        for &b in &name[8..8 + ext_end] {
            push(b, case & NTRES_LOWER_EXT != 0, out);
        }
    }
    // Only whole chars were encoded.
    core::str::from_utf8(&out[..n]).unwrap_or("")
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

/// Why a name cannot be stored on FAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    /// Empty, `.`/`..`, a forbidden character, or a trailing dot or space.
    Invalid,
    /// More than 255 UTF-16 units.
    TooLong,
}

/// Checks that `name` can be a FAT long name; returns its length in UTF-16
/// units.
///
/// Forbidden: control characters, `" * / : < > ? \ |`, a trailing `.` or
/// space (Windows would silently drop them, so the name would not read back
/// as written), and the names `.` and `..`.
pub fn validate(name: &str) -> Result<usize, NameError> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(NameError::Invalid);
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Err(NameError::Invalid);
    }
    let mut units = 0;
    for c in name.chars() {
        if (c as u32) < 0x20 || matches!(c, '"' | '*' | '/' | ':' | '<' | '>' | '?' | '\\' | '|') {
            return Err(NameError::Invalid);
        }
        units += c.len_utf16();
    }
    if units > MAX_NAME_UNITS {
        return Err(NameError::TooLong);
    }
    Ok(units)
}

/// Case folding for name comparison, as FAT does it: one character to one
/// character, upper case.
///
/// Covered, exactly as Unicode's simple upper-case mapping: ASCII, Latin-1,
/// Latin Extended-A (U+0100 to U+017F), the Greek letters U+0386 to U+03CE
/// and the Cyrillic U+0400 to U+045F. Characters whose upper case is
/// several characters (`ß`, `ŉ`, `ΐ`) stay as they are, and so does every
/// character outside those ranges: `"Ǆ"` and `"ǆ"` are different names here.
///
/// A few dozen bytes of code instead of `char::to_uppercase`, whose tables
/// cost about 13 KB of flash on a board.
pub fn fold(c: char) -> char {
    let u = c as u32;
    let up = match u {
        0x61..=0x7A => u - 0x20,
        // µ: GREEK CAPITAL LETTER MU.
        0xB5 => 0x39C,
        0xE0..=0xFE if u != 0xF7 => u - 0x20,
        0xFF => 0x178,
        // Pairs, the capital first (even), then its small letter (odd).
        0x100..=0x12F | 0x132..=0x137 | 0x14A..=0x177 if u & 1 == 1 => u - 1,
        // ı (dotless i).
        0x131 => 0x49,
        // Pairs, the capital first (odd), then its small letter (even).
        0x139..=0x148 | 0x179..=0x17E if u & 1 == 0 => u - 1,
        // ſ (long s).
        0x17F => 0x53,
        0x3AC => 0x386,
        0x3AD..=0x3AF => u - 0x25,
        // ς (final sigma) and σ are both Σ.
        0x3C2 => 0x3A3,
        0x3B1..=0x3CB => u - 0x20,
        0x3CC => 0x38C,
        0x3CD..=0x3CE => u - 0x3F,
        0x430..=0x44F => u - 0x20,
        0x450..=0x45F => u - 0x50,
        _ => u,
    };
    char::from_u32(up).unwrap_or(c)
}

/// Compares a name with UTF-16 units (a long name as stored), ignoring case.
/// Unpaired surrogates never match.
pub fn eq_utf16_ignore_case(name: &str, units: &[u16]) -> bool {
    let mut stored = char::decode_utf16(units.iter().copied());
    for c in name.chars() {
        match stored.next() {
            Some(Ok(s)) if fold(s) == fold(c) => {}
            _ => return false,
        }
    }
    stored.next().is_none()
}

/// Compares two names ignoring case.
pub fn eq_ignore_case(a: &str, b: &str) -> bool {
    let mut bc = b.chars();
    for c in a.chars() {
        match bc.next() {
            Some(d) if fold(c) == fold(d) => {}
            _ => return false,
        }
    }
    bc.next().is_none()
}

/// Encodes `name` as UTF-16 into `out`; returns the number of units.
/// The caller has checked the length with [`validate`].
pub fn encode_utf16(name: &str, out: &mut [u16; MAX_NAME_UNITS]) -> usize {
    let mut n = 0;
    for u in name.encode_utf16().take(MAX_NAME_UNITS) {
        out[n] = u;
        n += 1;
    }
    n
}

/// Decodes UTF-16 units into UTF-8 in `out` (unpaired surrogates become
/// U+FFFD); stops early if `out` is full.
pub fn decode_utf16<'a>(units: &[u16], out: &'a mut [u8]) -> &'a str {
    let mut n = 0;
    for c in char::decode_utf16(units.iter().copied()) {
        let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
        if n + c.len_utf8() > out.len() {
            break;
        }
        n += c.encode_utf8(&mut out[n..]).len();
    }
    core::str::from_utf8(&out[..n]).unwrap_or("")
}

/// A character allowed in a short name as we write them (upper case ASCII
/// letters, digits and the punctuation FAT allows).
fn short_char(c: char) -> Option<u8> {
    match c {
        'A'..='Z' | '0'..='9' => Some(c as u8),
        'a'..='z' => Some(c.to_ascii_uppercase() as u8),
        '!' | '#' | '$' | '%' | '&' | '\'' | '(' | ')' | '-' | '@' | '^' | '_' | '`' | '{'
        | '}' | '~' => Some(c as u8),
        _ => None,
    }
}

/// The short name `name` *is*, when it needs no long name at all: one to
/// eight upper-case characters, optionally a dot and one to three more.
/// `README.TXT` is; `Readme.txt`, `a.tar.gz` and `Grüße.txt` are not.
pub fn exact_short(name: &str) -> Option<ShortName> {
    let (base, ext) = match name.rfind('.') {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => (name, ""),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || (name.contains('.') && ext.is_empty())
    {
        return None;
    }
    let mut out = [b' '; 11];
    for (i, c) in base.chars().enumerate() {
        if c.is_ascii_lowercase() {
            return None;
        }
        out[i] = short_char(c)?;
    }
    for (i, c) in ext.chars().enumerate() {
        if c.is_ascii_lowercase() {
            return None;
        }
        out[8 + i] = short_char(c)?;
    }
    Some(out)
}

/// The starting point of a short alias: upper-cased, with characters FAT
/// cannot hold replaced by `_`, spaces and extra dots dropped, cut to 8.3.
/// `lossy` is set when anything but case had to change, which is when the
/// alias needs a numeric tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Basis {
    pub base: [u8; 8],
    pub base_len: usize,
    pub ext: [u8; 3],
    pub ext_len: usize,
    pub lossy: bool,
}

impl Basis {
    /// The basis itself as an 11-byte name.
    pub fn plain(&self) -> ShortName {
        self.with_tail(0)
    }

    /// The basis with tail `~n` (`n` = 0: no tail).
    pub fn with_tail(&self, n: u32) -> ShortName {
        let mut out = [b' '; 11];
        let mut digits = [0u8; 10];
        let mut d = 0;
        let mut v = n;
        while v > 0 {
            digits[d] = b'0' + (v % 10) as u8;
            v /= 10;
            d += 1;
        }
        let tail = if n == 0 { 0 } else { d + 1 };
        let keep = self.base_len.min(8 - tail);
        out[..keep].copy_from_slice(&self.base[..keep]);
        if n != 0 {
            out[keep] = b'~';
            for i in 0..d {
                out[keep + 1 + i] = digits[d - 1 - i];
            }
        }
        out[8..8 + self.ext_len].copy_from_slice(&self.ext[..self.ext_len]);
        out
    }
}

pub fn basis(name: &str) -> Basis {
    let mut b = Basis {
        base: [0; 8],
        base_len: 0,
        ext: [0; 3],
        ext_len: 0,
        lossy: false,
    };
    let trimmed = name.trim_start_matches('.');
    if trimmed.len() != name.len() {
        b.lossy = true;
    }
    let (base, ext) = match trimmed.rfind('.') {
        Some(i) => (&trimmed[..i], Some(&trimmed[i + 1..])),
        None => (trimmed, None),
    };
    let put = |c: char, buf: &mut [u8], len: &mut usize, lossy: &mut bool| {
        if c == ' ' || c == '.' {
            *lossy = true;
            return;
        }
        let byte = short_char(c).unwrap_or_else(|| {
            *lossy = true;
            b'_'
        });
        if *len < buf.len() {
            buf[*len] = byte;
            *len += 1;
        } else {
            *lossy = true;
        }
    };
    for c in base.chars() {
        put(c, &mut b.base, &mut b.base_len, &mut b.lossy);
    }
    if let Some(ext) = ext {
        for c in ext.chars() {
            put(c, &mut b.ext, &mut b.ext_len, &mut b.lossy);
        }
    }
    if b.base_len == 0 {
        b.base[0] = b'_';
        b.base_len = 1;
        b.lossy = true;
    }
    b
}

/// Tails `~1` to `~63` are tried by scanning the directory once; past that,
/// [`hashed_alias`] names.
pub const MAX_SIMPLE_TAIL: u32 = 63;

/// Picks a short alias for a new long name, unique in its directory.
///
/// Feed it every short name of the directory with [`AliasGen::observe`], then
/// ask [`AliasGen::pick`]: the basis itself when it is exact and free, else
/// the lowest free `~n`.
#[derive(Clone, Debug)]
pub struct AliasGen {
    basis: Basis,
    plain: ShortName,
    plain_taken: bool,
    /// Bit `n` set: `~n` is in use (n in 1..=63).
    used: u64,
}

impl AliasGen {
    pub fn new(name: &str) -> Self {
        let basis = basis(name);
        AliasGen {
            basis,
            plain: basis.plain(),
            plain_taken: false,
            used: 0,
        }
    }

    pub fn basis(&self) -> &Basis {
        &self.basis
    }

    /// Notes a short name that exists in the directory.
    pub fn observe(&mut self, existing: &ShortName) {
        if *existing == self.plain {
            self.plain_taken = true;
        }
        if existing[8..] != self.plain[8..] {
            return;
        }
        // `PREFIX~N` with N a plain decimal number (no leading zero).
        let base = &existing[..8];
        let end = base.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
        let Some(tilde) = base[..end].iter().rposition(|&b| b == b'~') else {
            return;
        };
        let digits = &base[tilde + 1..end];
        if digits.is_empty() || digits[0] == b'0' || !digits.iter().all(u8::is_ascii_digit) {
            return;
        }
        let n = digits
            .iter()
            .fold(0u32, |v, &d| v * 10 + u32::from(d - b'0'));
        if n == 0 || n > MAX_SIMPLE_TAIL {
            return;
        }
        // The same tail on a different prefix is a different name.
        if self.basis.with_tail(n) == *existing {
            self.used |= 1 << n;
        }
    }

    /// The alias to use, or `None` when `~1`..`~63` are all taken.
    pub fn pick(&self) -> Option<ShortName> {
        if !self.basis.lossy && !self.plain_taken {
            return Some(self.plain);
        }
        (1..=MAX_SIMPLE_TAIL)
            .find(|n| self.used & (1 << n) == 0)
            .map(|n| self.basis.with_tail(n))
    }
}

/// A fallback alias for crowded directories: two characters of the basis,
/// four hex digits derived from the long name and `attempt`, then `~1`
/// (the scheme Windows uses past its fourth tail). The caller checks that it
/// is free and tries the next `attempt` if not.
pub fn hashed_alias(name: &str, attempt: u32) -> ShortName {
    let b = basis(name);
    // FNV-1a over the UTF-8 bytes, then the attempt number.
    let mut h: u32 = 0x811C_9DC5;
    for &byte in name.as_bytes().iter().chain(attempt.to_le_bytes().iter()) {
        h = (h ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    let h = (h ^ (h >> 16)) as u16;
    let mut out = [b' '; 11];
    let keep = b.base_len.min(2);
    out[..keep].copy_from_slice(&b.base[..keep]);
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for i in 0..4 {
        out[keep + i] = HEX[usize::from((h >> (12 - 4 * i)) & 0xF)];
    }
    out[keep + 4] = b'~';
    out[keep + 5] = b'1';
    out[8..8 + b.ext_len].copy_from_slice(&b.ext[..b.ext_len]);
    out
}

// ---------------------------------------------------------------------------
// Long-name slots
// ---------------------------------------------------------------------------

/// Long-name slots a name of `units` UTF-16 units needs.
pub fn lfn_slots(units: usize) -> usize {
    units.div_ceil(LFN_UNITS_PER_SLOT)
}

/// Byte offsets of the 13 UTF-16 units inside a long-name slot.
const LFN_OFFSETS: [usize; LFN_UNITS_PER_SLOT] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/// Builds long-name slot number `seq` (1 = the one next to the short entry)
/// of the name `units`, for the short name with checksum `sum`.
pub fn encode_lfn(units: &[u16], seq: usize, sum: u8) -> [u8; SLOT_LEN] {
    lfn_slot(
        units.len(),
        units.iter().copied().skip((seq - 1) * LFN_UNITS_PER_SLOT),
        seq,
        sum,
    )
}

/// [`encode_lfn`] of `name` encoded as UTF-16, without a buffer for the
/// whole name (0.5 KB of stack where entries are written).
pub fn encode_lfn_str(name: &str, seq: usize, sum: u8) -> [u8; SLOT_LEN] {
    lfn_slot(
        name.encode_utf16().count(),
        name.encode_utf16().skip((seq - 1) * LFN_UNITS_PER_SLOT),
        seq,
        sum,
    )
}

/// Long-name slot `seq` of a name of `len` units, whose units from the
/// slot's first on are `units`.
fn lfn_slot(
    len: usize,
    mut units: impl Iterator<Item = u16>,
    seq: usize,
    sum: u8,
) -> [u8; SLOT_LEN] {
    let mut s = [0u8; SLOT_LEN];
    let last = seq == lfn_slots(len);
    s[0] = seq as u8 | if last { LFN_LAST } else { 0 };
    s[11] = ATTR_LFN;
    s[12] = 0;
    s[13] = sum;
    let start = (seq - 1) * LFN_UNITS_PER_SLOT;
    for (i, &off) in LFN_OFFSETS.iter().enumerate() {
        let pos = start + i;
        let u = match pos.cmp(&len) {
            core::cmp::Ordering::Less => units.next().unwrap_or(0xFFFF),
            core::cmp::Ordering::Equal => 0x0000,
            core::cmp::Ordering::Greater => 0xFFFF,
        };
        s[off..off + 2].copy_from_slice(&u.to_le_bytes());
    }
    // Bytes 26..28 (first cluster) stay zero.
    s
}

/// Collects long-name slots while a directory is read, and hands the name
/// over when the short entry it belongs to arrives (checksum and sequence
/// verified). Anything out of order discards what was collected, as every
/// FAT reader does.
#[derive(Clone)]
pub struct LfnAssembler {
    units: [u16; MAX_LFN_SLOTS * LFN_UNITS_PER_SLOT],
    len: usize,
    sum: u8,
    /// Sequence number expected next (counting down to 1); 0 = complete.
    next: u8,
    /// Slots of the name being collected; 0 = nothing collected.
    slots: u8,
}

impl Default for LfnAssembler {
    fn default() -> Self {
        Self::new()
    }
}

impl LfnAssembler {
    pub const fn new() -> Self {
        LfnAssembler {
            units: [0; MAX_LFN_SLOTS * LFN_UNITS_PER_SLOT],
            len: 0,
            sum: 0,
            next: 0,
            slots: 0,
        }
    }

    pub fn reset(&mut self) {
        self.slots = 0;
        self.next = 0;
        self.len = 0;
    }

    /// Feeds a long-name slot.
    pub fn push(&mut self, slot: &[u8; SLOT_LEN]) {
        let seq = slot[0] & 0x1F;
        let mut part = [0u16; LFN_UNITS_PER_SLOT];
        for (i, &off) in LFN_OFFSETS.iter().enumerate() {
            part[i] = u16::from_le_bytes([slot[off], slot[off + 1]]);
        }
        if slot[0] & LFN_LAST != 0 {
            // The first slot on disk: it holds the end of the name.
            if seq == 0 || usize::from(seq) > MAX_LFN_SLOTS || slot[0] & 0x20 != 0 {
                self.reset();
                return;
            }
            let in_last = part
                .iter()
                .position(|&u| u == 0)
                .unwrap_or(LFN_UNITS_PER_SLOT);
            self.len = (usize::from(seq) - 1) * LFN_UNITS_PER_SLOT + in_last;
            if self.len == 0 || self.len > MAX_NAME_UNITS {
                self.reset();
                return;
            }
            self.slots = seq;
            self.sum = slot[13];
            self.next = seq - 1;
        } else if self.slots != 0 && self.next != 0 && seq == self.next && slot[13] == self.sum {
            self.next -= 1;
        } else {
            self.reset();
            return;
        }
        let start = (usize::from(seq) - 1) * LFN_UNITS_PER_SLOT;
        self.units[start..start + LFN_UNITS_PER_SLOT].copy_from_slice(&part);
    }

    /// Called with the short entry that follows: the long name and the number
    /// of long-name slots if they belong to it. Resets either way.
    pub fn finish(&mut self, short: &ShortName) -> Option<(&[u16], u8)> {
        let ok = self.slots != 0 && self.next == 0 && checksum(short) == self.sum;
        let slots = self.slots;
        self.slots = 0;
        self.next = 0;
        if ok {
            Some((&self.units[..self.len], slots))
        } else {
            None
        }
    }
}

// ---------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------

/// A calendar time as FAT's `(date, time)` words (2-second resolution,
/// years 1980 to 2107; earlier dates become 1980-01-01, later ones 2107).
pub fn to_fat(t: &DateTime) -> (u16, u16) {
    if t.year < 1980 {
        return (1 << 5 | 1, 0);
    }
    let year = (t.year - 1980).min(127);
    let date = year << 9 | u16::from(t.month.clamp(1, 12)) << 5 | u16::from(t.day.clamp(1, 31));
    let time = u16::from(t.hour.min(23)) << 11
        | u16::from(t.minute.min(59)) << 5
        | u16::from(t.second.min(59) / 2);
    (date, time)
}

/// The inverse of [`to_fat`]; `None` for a zero or impossible date.
pub fn from_fat(date: u16, time: u16) -> Option<DateTime> {
    let month = ((date >> 5) & 0xF) as u8;
    let day = (date & 0x1F) as u8;
    if !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    let hour = (time >> 11) as u8;
    let minute = ((time >> 5) & 0x3F) as u8;
    let second = ((time & 0x1F) * 2) as u8;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(DateTime {
        year: 1980 + (date >> 9),
        month,
        day,
        hour,
        minute,
        second,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sn(s: &[u8; 11]) -> ShortName {
        *s
    }

    fn display(name: &ShortName, case: u8) -> String {
        let mut buf = [0u8; 24];
        short_display(name, case, &mut buf).to_string()
    }

    #[test]
    fn checksum_matches_known_values() {
        // Values computed by hand with the algorithm of the FAT spec
        // (rotate right, add) and cross-checked against mtools-made images in
        // the integration tests.
        assert_eq!(checksum(&sn(b"           ")), {
            let mut s = 0u8;
            for _ in 0..11 {
                s = s.rotate_right(1).wrapping_add(b' ');
            }
            s
        });
        // The checksum of the library's own function agrees.
        let lib = embedded_sdmmc::ShortFileName::create_from_str("FIRMWA~1.BIN").unwrap();
        assert_eq!(checksum(&sn(b"FIRMWA~1BIN")), lib.csum());
        let lib = embedded_sdmmc::ShortFileName::create_from_str("README.TXT").unwrap();
        assert_eq!(checksum(&sn(b"README  TXT")), lib.csum());
        // Different names, different sums (these two differ by one byte).
        assert_ne!(checksum(&sn(b"FIRMWA~1BIN")), checksum(&sn(b"FIRMWA~2BIN")));
    }

    #[test]
    fn slot_classification() {
        let mut s = [0u8; 32];
        assert_eq!(classify(&s), SlotKind::End);
        s[0] = DELETED;
        assert_eq!(classify(&s), SlotKind::Deleted);
        s[0] = b'A';
        s[11] = ATTR_LFN;
        assert_eq!(classify(&s), SlotKind::LongName);
        s[11] = ATTR_LFN | 0xC0; // the two reserved bits are ignored
        assert_eq!(classify(&s), SlotKind::LongName);
        s[11] = ATTR_VOLUME;
        assert_eq!(classify(&s), SlotKind::Label);
        s[11] = ATTR_DIRECTORY;
        assert_eq!(classify(&s), SlotKind::Entry);
        s[11] = 0;
        assert_eq!(classify(&s), SlotKind::Entry);
        s[0] = 0x05; // an escaped 0xE5 is a live entry
        assert_eq!(classify(&s), SlotKind::Entry);
    }

    #[test]
    fn short_entry_round_trip() {
        let e = ShortEntry {
            name: *b"FIRMWA~1BIN",
            attr: ATTR_ARCHIVE,
            case: 0,
            ctime_tenth: 5,
            ctime: 0x1234,
            cdate: 0x5678,
            adate: 0x5679,
            mtime: 0x9ABC,
            mdate: 0xDEF0,
            cluster: 0x0012_3456,
            size: 0xCAFE_BABE,
        };
        let raw = e.encode(true);
        assert_eq!(&raw[..11], b"FIRMWA~1BIN");
        assert_eq!(raw[20..22], [0x12, 0x00]);
        assert_eq!(raw[26..28], [0x56, 0x34]);
        assert_eq!(ShortEntry::decode(&raw, true), e);
        // FAT16 has no high cluster half: it is written as zero and ignored.
        let raw16 = e.encode(false);
        assert_eq!(raw16[20..22], [0, 0]);
        assert_eq!(ShortEntry::decode(&raw16, false).cluster, 0x3456);
        let mut raw = raw;
        set_slot_cluster(&mut raw, 0x0ABC_DEF0, true);
        assert_eq!(ShortEntry::decode(&raw, true).cluster, 0x0ABC_DEF0);
    }

    #[test]
    fn short_names_display() {
        assert_eq!(display(b"README  TXT", 0), "README.TXT");
        assert_eq!(display(b"README  TXT", NTRES_LOWER_BASE), "readme.TXT");
        assert_eq!(
            display(b"README  TXT", NTRES_LOWER_BASE | NTRES_LOWER_EXT),
            "readme.txt"
        );
        assert_eq!(display(b"MAKEFILE   ", 0), "MAKEFILE");
        assert_eq!(display(b"A       B  ", 0), "A.B");
        assert_eq!(display(b"\x05BC        ", 0), "\u{e5}BC");
        assert_eq!(display(b"CAF\xc9    TXT", 0), "CAF\u{c9}.TXT");
    }

    #[test]
    fn validation() {
        assert_eq!(validate("firmware-v1.2.3.bin"), Ok(19));
        assert_eq!(validate("Report 2026 (final).pdf"), Ok(23));
        assert_eq!(validate("Grüße.txt"), Ok(9));
        assert_eq!(validate("emoji-😀.txt"), Ok(12)); // a surrogate pair
        assert_eq!(validate(" leading space"), Ok(14));
        assert_eq!(validate(".hidden"), Ok(7));
        for bad in [
            "", ".", "..", "a\\b", "a:b", "a*b", "a?b", "a\"b", "a<b", "a>b", "a|b", "a/b",
            "tab\t", "x.", "x ",
        ] {
            assert_eq!(validate(bad), Err(NameError::Invalid), "{bad:?}");
        }
        assert_eq!(validate(&"a".repeat(255)), Ok(255));
        assert_eq!(validate(&"a".repeat(256)), Err(NameError::TooLong));
        // 128 chars outside the BMP are 256 UTF-16 units.
        assert_eq!(validate(&"😀".repeat(127)), Ok(254));
        assert_eq!(validate(&"😀".repeat(128)), Err(NameError::TooLong));
    }

    #[test]
    fn case_insensitive_compare() {
        assert!(eq_ignore_case("Report.PDF", "report.pdf"));
        assert!(eq_ignore_case("GRÜSSE", "grüsse"));
        assert!(eq_ignore_case("Grüße.txt", "GRÜßE.TXT")); // ß has no 1:1 upper case
        assert!(!eq_ignore_case("Grüße.txt", "GRUESSE.TXT"));
        assert!(!eq_ignore_case("abc", "abcd"));
        assert!(!eq_ignore_case("abcd", "abc"));
        let mut u = [0u16; MAX_NAME_UNITS];
        let n = encode_utf16("Ωmega-😀.txt", &mut u);
        assert!(eq_utf16_ignore_case("ωMEGA-😀.TXT", &u[..n]));
        assert!(!eq_utf16_ignore_case("ωMEGA-😀.TX", &u[..n]));
        assert!(!eq_utf16_ignore_case("ωMEGA-😀.TXTT", &u[..n]));
        // An unpaired surrogate matches nothing.
        assert!(!eq_utf16_ignore_case("a", &[0xD800]));
    }

    /// `fold` is Unicode's simple upper-case mapping wherever it claims to
    /// be, checked against the standard library's full tables (which the
    /// firmware does without), and the identity everywhere else.
    #[test]
    fn fold_agrees_with_unicode_on_the_ranges_it_covers() {
        let covered =
            |u: u32| u <= 0x17F || (0x386..=0x3CE).contains(&u) || (0x400..=0x45F).contains(&u);
        let mut checked = 0;
        for u in 0..=0x10FFFF {
            let Some(c) = char::from_u32(u) else { continue };
            let mut up = c.to_uppercase();
            let unicode = match (up.next(), up.next()) {
                (Some(one), None) => one,
                _ => c,
            };
            if covered(u) {
                assert_eq!(fold(c), unicode, "U+{u:04X} {c}");
                checked += 1;
            } else {
                assert_eq!(fold(c), c, "U+{u:04X} {c} is outside the covered ranges");
            }
        }
        assert!(
            checked > 0x180 + 0x40 + 0x60,
            "{checked} characters checked"
        );
        // Folding is idempotent: what it returns folds to itself.
        for u in 0..=0x17F {
            let c = char::from_u32(u).unwrap();
            assert_eq!(fold(fold(c)), fold(c));
        }
    }

    #[test]
    fn accented_names_match_whatever_their_case() {
        for (a, b) in [
            ("Café Crème.txt", "CAFÉ CRÈME.TXT"),
            ("Ærøskøbing.JPG", "æRØSKØBING.jpg"),
            ("Łódź-Żółć.doc", "łÓDŹ-żÓŁĆ.DOC"),
            ("Čeština Šárka.pdf", "čEŠTINA šÁRKA.PDF"),
            ("ıstanbul", "ISTANBUL"),
            ("Ελληνικά", "ΕΛΛΗΝΙΚΆ"),
            ("οδυσσεύς", "ΟΔΥΣΣΕΎΣ"),
            ("Москва ёлка", "МОСКВА ЁЛКА"),
            ("ÿ", "Ÿ"),
        ] {
            assert!(eq_ignore_case(a, b), "{a} / {b}");
            let mut u = [0u16; MAX_NAME_UNITS];
            let n = encode_utf16(b, &mut u);
            assert!(eq_utf16_ignore_case(a, &u[..n]), "{a} / {b} (UTF-16)");
        }
        assert!(!eq_ignore_case("café", "cafe"));
        assert!(!eq_ignore_case("Łódź", "Lodz"));
        // İ is its own upper case (its lower case is two characters).
        assert!(!eq_ignore_case("İstanbul", "istanbul"));
    }

    #[test]
    fn long_name_slots_from_text_equal_those_from_units() {
        for name in [
            "a",
            "exactly 13 ch",
            "fourteen chars",
            "Grüße aus Köln.txt",
            "emoji-😀-x.bin",
            &"n".repeat(255),
        ] {
            let mut u = [0u16; MAX_NAME_UNITS];
            let n = encode_utf16(name, &mut u);
            for seq in 1..=lfn_slots(n) {
                assert_eq!(
                    encode_lfn_str(name, seq, 0x5A),
                    encode_lfn(&u[..n], seq, 0x5A),
                    "{name} slot {seq}"
                );
            }
        }
    }

    #[test]
    fn utf16_round_trip() {
        for name in [
            "plain.txt",
            "Grüße.txt",
            "日本語のファイル名.doc",
            "emoji-😀-x.bin",
        ] {
            let mut u = [0u16; MAX_NAME_UNITS];
            let n = encode_utf16(name, &mut u);
            let mut out = [0u8; MAX_NAME_UTF8];
            assert_eq!(decode_utf16(&u[..n], &mut out), name);
        }
        let mut out = [0u8; 8];
        assert_eq!(decode_utf16(&[0x61, 0xDC00, 0x62], &mut out), "a\u{FFFD}b");
        // A short output buffer cuts at a character boundary.
        let mut small = [0u8; 4];
        assert_eq!(decode_utf16(&[0x61, 0x00FC, 0x00FC], &mut small), "aü");
    }

    #[test]
    fn exact_short_names() {
        assert_eq!(exact_short("README.TXT"), Some(*b"README  TXT"));
        assert_eq!(exact_short("MAKEFILE"), Some(*b"MAKEFILE   "));
        assert_eq!(exact_short("A.B"), Some(*b"A       B  "));
        assert_eq!(exact_short("FILE-1_$.~{}"), Some(*b"FILE-1_$~{}"));
        assert_eq!(exact_short("FILE-1_$.~{}!"), None); // 4-char extension
        for needs_long in [
            "readme.txt",
            "Readme.TXT",
            "README.txt",
            "LONGNAME9.TXT",
            "A.TEXT",
            "A.B.C",
            ".PROFILE",
            "NAME.",
            "A B.TXT",
            "A+B.TXT",
            "GRÜSSE.TXT",
            "",
        ] {
            assert_eq!(exact_short(needs_long), None, "{needs_long:?}");
        }
    }

    #[test]
    fn basis_follows_the_windows_rules() {
        let check = |name: &str, plain: &[u8; 11], lossy: bool| {
            let b = basis(name);
            assert_eq!(&b.plain(), plain, "{name:?}");
            assert_eq!(b.lossy, lossy, "{name:?}");
        };
        check("firmware-v1.2.3.bin", b"FIRMWAREBIN", true);
        check("Report 2026 (final).pdf", b"REPORT20PDF", true);
        check("Grüße.txt", b"GR__E   TXT", true);
        check("readme.txt", b"README  TXT", false);
        check("Makefile", b"MAKEFILE   ", false);
        check("archive.tar.gz", b"ARCHIVETGZ ", true);
        check(".bashrc", b"BASHRC     ", true);
        check("a+b,c;d=e[f]", b"A_B_C_D_   ", true);
        check("x.jpeg", b"X       JPE", true);
        check("日本.txt", b"__      TXT", true);
        check("...", b"_          ", true);
    }

    #[test]
    fn tails() {
        let b = basis("firmware-v1.2.3.bin");
        assert_eq!(&b.with_tail(1), b"FIRMWA~1BIN");
        assert_eq!(&b.with_tail(9), b"FIRMWA~9BIN");
        assert_eq!(&b.with_tail(10), b"FIRMW~10BIN");
        assert_eq!(&b.with_tail(63), b"FIRMW~63BIN");
        assert_eq!(&b.with_tail(123456), b"F~123456BIN");
        let short = basis("ab.c d");
        assert_eq!(&short.with_tail(1), b"AB~1    CD ");
    }

    #[test]
    fn alias_generation() {
        // Non-lossy basis, free: no tail at all.
        let g = AliasGen::new("readme.txt");
        assert_eq!(g.pick(), Some(*b"README  TXT"));
        // ...taken: ~1.
        let mut g = AliasGen::new("readme.txt");
        g.observe(b"README  TXT");
        assert_eq!(g.pick(), Some(*b"README~1TXT"));
        // Lossy: always a tail, the lowest free one.
        let mut g = AliasGen::new("firmware-v1.2.3.bin");
        assert_eq!(g.pick(), Some(*b"FIRMWA~1BIN"));
        g.observe(b"FIRMWA~1BIN");
        g.observe(b"FIRMWA~3BIN");
        assert_eq!(g.pick(), Some(*b"FIRMWA~2BIN"));
        // Look-alikes do not count: other extension, other prefix, leading
        // zero, not a number.
        let mut g = AliasGen::new("firmware-v1.2.3.bin");
        for other in [
            b"FIRMWA~1HEX",
            b"FIRMWB~1BIN",
            b"FIRMW~01BIN",
            b"FIRMWA~XBIN",
            b"FIRMWA~ BIN",
        ] {
            g.observe(other);
        }
        assert_eq!(g.pick(), Some(*b"FIRMWA~1BIN"));
        // Two-digit tails use a shorter prefix.
        let mut g = AliasGen::new("firmware-v1.2.3.bin");
        for n in 1..=9 {
            g.observe(&basis("firmware-v1.2.3.bin").with_tail(n));
        }
        assert_eq!(g.pick(), Some(*b"FIRMW~10BIN"));
        g.observe(b"FIRMWA~10BN"); // not the same name
        g.observe(b"FIRMW~10BIN");
        assert_eq!(g.pick(), Some(*b"FIRMW~11BIN"));
        // All 63 taken: the caller must fall back to hashed names.
        let mut g = AliasGen::new("x.dat");
        g.observe(b"X       DAT");
        for n in 1..=MAX_SIMPLE_TAIL {
            g.observe(&basis("x.dat").with_tail(n));
        }
        assert_eq!(g.pick(), None);
    }

    #[test]
    fn hashed_aliases() {
        let a = hashed_alias("firmware-v1.2.3.bin", 0);
        assert_eq!(&a[..2], b"FI");
        assert!(a[2..6].iter().all(u8::is_ascii_hexdigit));
        assert_eq!(&a[6..], b"~1BIN");
        assert_ne!(hashed_alias("firmware-v1.2.3.bin", 1), a);
        assert_ne!(hashed_alias("firmware-v1.2.4.bin", 0), a);
        assert_eq!(hashed_alias("firmware-v1.2.3.bin", 0), a);
        let one = hashed_alias("x", 0);
        assert_eq!(one[0], b'X');
        assert_eq!(&one[5..7], b"~1");
        assert_eq!(&one[8..], b"   ");
    }

    fn lfn_slots_for(name: &str, short: &ShortName) -> Vec<[u8; 32]> {
        let mut u = [0u16; MAX_NAME_UNITS];
        let n = encode_utf16(name, &mut u);
        let sum = checksum(short);
        // On-disk order: highest sequence first.
        (1..=lfn_slots(n))
            .rev()
            .map(|seq| encode_lfn(&u[..n], seq, sum))
            .collect()
    }

    #[test]
    fn lfn_encoding_layout() {
        assert_eq!(lfn_slots(1), 1);
        assert_eq!(lfn_slots(13), 1);
        assert_eq!(lfn_slots(14), 2);
        assert_eq!(lfn_slots(255), 20);
        let short = *b"FIRMWA~1BIN";
        let slots = lfn_slots_for("firmware-v1.2.3.bin", &short);
        assert_eq!(slots.len(), 2);
        // First on disk: sequence 2 with the "last" flag, the tail of the name
        // ("1.2.3.bin" minus 13 units = ".3.bin"), a NUL, then 0xFFFF padding.
        let s = &slots[0];
        assert_eq!(s[0], 0x42);
        assert_eq!(s[11], ATTR_LFN);
        assert_eq!(s[12], 0);
        assert_eq!(s[13], checksum(&short));
        assert_eq!(&s[26..28], &[0, 0]);
        assert_eq!(
            &s[1..13 - 2],
            &[b'.', 0, b'3', 0, b'.', 0, b'b', 0, b'i', 0]
        );
        assert_eq!(&s[14..18], &[b'n', 0, 0, 0]);
        assert!(s[18..26].iter().all(|&b| b == 0xFF));
        assert!(s[28..32].iter().all(|&b| b == 0xFF));
        // Then sequence 1: the first 13 units.
        let s = &slots[1];
        assert_eq!(s[0], 0x01);
        assert_eq!(&s[1..3], &[b'f', 0]);
        assert_eq!(&s[30..32], &[b'2', 0]);
        // Exactly 13 units: no terminator, no padding.
        let slots = lfn_slots_for("abcdefghijklm", &short);
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0][0], 0x41);
        assert_eq!(&slots[0][30..32], &[b'm', 0]);
    }

    fn assemble(slots: &[[u8; 32]], short: &ShortName) -> Option<(String, u8)> {
        let mut a = LfnAssembler::new();
        for s in slots {
            a.push(s);
        }
        let mut out = [0u8; MAX_NAME_UTF8];
        a.finish(short)
            .map(|(u, n)| (decode_utf16(u, &mut out).to_string(), n))
    }

    #[test]
    fn lfn_round_trip() {
        let short = *b"SOMENA~1TXT";
        for name in [
            "firmware-v1.2.3.bin",
            "Report 2026 (final).pdf",
            "Grüße.txt",
            "emoji-😀.txt",
            "abcdefghijklm",
            "abcdefghijklmn",
            "x",
            &"L".repeat(255),
            &"😀".repeat(127),
        ] {
            let slots = lfn_slots_for(name, &short);
            assert_eq!(
                assemble(&slots, &short),
                Some((name.to_string(), slots.len() as u8)),
                "{name}"
            );
        }
    }

    #[test]
    fn lfn_assembly_rejects_what_readers_reject() {
        let short = *b"FIRMWA~1BIN";
        let good = lfn_slots_for("firmware-v1.2.3.bin", &short);
        // Wrong short entry (checksum mismatch): orphaned long name.
        assert_eq!(assemble(&good, b"FIRMWA~2BIN"), None);
        // A part missing.
        assert_eq!(assemble(&good[..1], &short), None);
        assert_eq!(assemble(&good[1..], &short), None);
        // Parts out of order.
        assert_eq!(assemble(&[good[1], good[0]], &short), None);
        // A part with another checksum.
        let mut bad = good.clone();
        bad[1][13] ^= 1;
        assert_eq!(assemble(&bad, &short), None);
        // Sequence 0 or above 20.
        let mut bad = good.clone();
        bad[0][0] = 0x40;
        assert_eq!(assemble(&bad, &short), None);
        bad[0][0] = 0x40 | 21;
        assert_eq!(assemble(&bad, &short), None);
        // An interrupted sequence followed by a complete one: the complete one
        // wins.
        let mut mixed = vec![good[0]];
        mixed.extend_from_slice(&good);
        assert_eq!(
            assemble(&mixed, &short).map(|(n, _)| n),
            Some("firmware-v1.2.3.bin".into())
        );
        // finish() resets: a second short entry gets no name.
        let mut a = LfnAssembler::new();
        for s in &good {
            a.push(s);
        }
        assert!(a.finish(&short).is_some());
        assert!(a.finish(&short).is_none());
        // An empty name (terminator first) is rejected.
        let mut empty = [0xFFu8; 32];
        empty[0] = 0x41;
        empty[11] = ATTR_LFN;
        empty[13] = checksum(&short);
        empty[1] = 0;
        empty[2] = 0;
        assert_eq!(assemble(&[empty], &short), None);
    }

    #[test]
    fn timestamps() {
        let t = DateTime {
            year: 2026,
            month: 3,
            day: 14,
            hour: 15,
            minute: 9,
            second: 27,
        };
        let (d, tm) = to_fat(&t);
        assert_eq!(d, (46 << 9) | (3 << 5) | 14);
        assert_eq!(tm, (15 << 11) | (9 << 5) | 13);
        // Two-second resolution.
        assert_eq!(from_fat(d, tm), Some(DateTime { second: 26, ..t }));
        assert_eq!(from_fat(0, 0), None);
        assert_eq!(from_fat((1 << 5) | 1, 24 << 11), None);
        assert_eq!(
            to_fat(&DateTime {
                year: 1970,
                month: 1,
                day: 1,
                ..t
            }),
            ((1 << 5) | 1, 0)
        );
        let far = to_fat(&DateTime { year: 2200, ..t });
        assert_eq!(from_fat(far.0, far.1).map(|t| t.year), Some(2107));
        // Agrees with the library's encoding.
        let lib = embedded_sdmmc::Timestamp::from_calendar(2026, 3, 14, 15, 9, 27).unwrap();
        let b = lib.serialize_to_fat();
        assert_eq!(u16::from_le_bytes([b[0], b[1]]), tm);
        assert_eq!(u16::from_le_bytes([b[2], b[3]]), d);
    }
}
