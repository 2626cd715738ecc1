//! source::tiff::ifd: the TIFF container: byte order, the classic/BigTIFF header, IFD entries,
//! tag values, and the walk over the main IFD chain and its SubIFDs.
//!
//! Everything is read through ranged reads of a [`ByteSource`]; every count read from the file
//! is checked against the file's length before anything is allocated, and the walk is bounded
//! (cycle detection, at most [`MAX_IFDS`] directories). This layer knows tags only as numbers
//! and values; what an image is, and pixels, are for `image` and `decode`.

use std::cell::Cell;
use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::storage::ByteSource;

/// Most image directories (main chain and SubIFDs together) a file may have.
pub const MAX_IFDS: usize = 1024;
/// Most entries one directory may have (classic TIFF allows 65535; real files have ~30).
const MAX_ENTRIES: u64 = 4096;

/// Tag numbers this reader uses.
pub mod tag {
    pub const NEW_SUBFILE_TYPE: u16 = 254;
    pub const SUBFILE_TYPE: u16 = 255;
    pub const IMAGE_WIDTH: u16 = 256;
    pub const IMAGE_LENGTH: u16 = 257;
    pub const BITS_PER_SAMPLE: u16 = 258;
    pub const COMPRESSION: u16 = 259;
    pub const PHOTOMETRIC: u16 = 262;
    pub const IMAGE_DESCRIPTION: u16 = 270;
    pub const STRIP_OFFSETS: u16 = 273;
    pub const SAMPLES_PER_PIXEL: u16 = 277;
    pub const ROWS_PER_STRIP: u16 = 278;
    pub const STRIP_BYTE_COUNTS: u16 = 279;
    pub const PLANAR_CONFIGURATION: u16 = 284;
    pub const PREDICTOR: u16 = 317;
    pub const COLOR_MAP: u16 = 320;
    pub const TILE_WIDTH: u16 = 322;
    pub const TILE_LENGTH: u16 = 323;
    pub const TILE_OFFSETS: u16 = 324;
    pub const TILE_BYTE_COUNTS: u16 = 325;
    pub const SUB_IFDS: u16 = 330;
    pub const INK_SET: u16 = 332;
    pub const EXTRA_SAMPLES: u16 = 338;
    pub const SAMPLE_FORMAT: u16 = 339;
    pub const JPEG_TABLES: u16 = 347;
    pub const ICC_PROFILE: u16 = 34675;
}

/// The order of multi-byte numbers in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    /// `II`: least significant byte first.
    Little,
    /// `MM`: most significant byte first.
    Big,
}

impl ByteOrder {
    /// A short name for `gigatile info`.
    pub const fn name(self) -> &'static str {
        match self {
            ByteOrder::Little => "little-endian (II)",
            ByteOrder::Big => "big-endian (MM)",
        }
    }

    /// A 16-bit number from the first two bytes of `b`.
    pub fn u16(self, b: &[u8]) -> u16 {
        let b = [b[0], b[1]];
        match self {
            ByteOrder::Little => u16::from_le_bytes(b),
            ByteOrder::Big => u16::from_be_bytes(b),
        }
    }

    /// A 32-bit number from the first four bytes of `b`.
    pub fn u32(self, b: &[u8]) -> u32 {
        let b = [b[0], b[1], b[2], b[3]];
        match self {
            ByteOrder::Little => u32::from_le_bytes(b),
            ByteOrder::Big => u32::from_be_bytes(b),
        }
    }

    /// A 64-bit number from the first eight bytes of `b`.
    pub fn u64(self, b: &[u8]) -> u64 {
        let b = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
        match self {
            ByteOrder::Little => u64::from_le_bytes(b),
            ByteOrder::Big => u64::from_be_bytes(b),
        }
    }
}

/// What the first bytes of the file say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub order: ByteOrder,
    /// BigTIFF (64-bit offsets) rather than classic TIFF.
    pub big: bool,
    /// Offset of the first IFD.
    pub first_ifd: u64,
}

/// Bytes [`parse_header`] needs (a BigTIFF header; a classic one uses the first 8).
pub const HEADER_LEN: usize = 16;

/// Parses the file header from its first bytes (fewer than [`HEADER_LEN`] only for tiny files).
pub fn parse_header(head: &[u8]) -> Result<Header> {
    let order = match head.get(..2) {
        Some(b"II") => ByteOrder::Little,
        Some(b"MM") => ByteOrder::Big,
        _ => return Err(Error::corrupt("not a TIFF file (no II/MM byte order mark)")),
    };
    let short = || Error::corrupt("TIFF header is truncated");
    let version = order.u16(head.get(2..4).ok_or_else(short)?);
    match version {
        42 => Ok(Header {
            order,
            big: false,
            first_ifd: u64::from(order.u32(head.get(4..8).ok_or_else(short)?)),
        }),
        43 => {
            let rest = head.get(4..16).ok_or_else(short)?;
            if order.u16(&rest[0..2]) != 8 || order.u16(&rest[2..4]) != 0 {
                return Err(Error::corrupt("BigTIFF header has a bad offset size"));
            }
            Ok(Header {
                order,
                big: true,
                first_ifd: order.u64(&rest[4..12]),
            })
        }
        other => Err(Error::corrupt(format!("TIFF header has version {other}"))),
    }
}

/// Size in bytes of one value of a TIFF field type; `None` for types this reader does not know.
pub const fn type_size(field_type: u16) -> Option<u64> {
    match field_type {
        1 | 2 | 6 | 7 => Some(1),
        3 | 8 => Some(2),
        4 | 9 | 11 | 13 => Some(4),
        5 | 10 | 12 | 16 | 17 | 18 => Some(8),
        _ => None,
    }
}

/// One directory entry: its tag, type, count and the raw value-or-offset field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub tag: u16,
    pub field_type: u16,
    pub count: u64,
    /// The value field: 4 bytes (classic) or 8 (BigTIFF), the rest zero.
    field: [u8; 8],
}

/// One image file directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ifd {
    /// Where it starts in the file.
    pub offset: u64,
    pub entries: Vec<Entry>,
    /// Offset of the next IFD in its chain (0 at the end).
    pub next: u64,
}

impl Ifd {
    /// The entry for `tag`, if present (the first one when a hostile file repeats it).
    pub fn find(&self, tag: u16) -> Option<&Entry> {
        self.entries.iter().find(|e| e.tag == tag)
    }
}

/// Parses a directory's entries from its bytes (after the entry count) and the next-IFD field.
pub fn parse_entries(bytes: &[u8], count: usize, order: ByteOrder, big: bool) -> (Vec<Entry>, u64) {
    let (entry_len, field_len) = if big { (20, 8) } else { (12, 4) };
    let entries = bytes
        .chunks_exact(entry_len)
        .take(count)
        .map(|e| {
            let mut field = [0u8; 8];
            field[..field_len].copy_from_slice(&e[entry_len - field_len..]);
            Entry {
                tag: order.u16(&e[0..2]),
                field_type: order.u16(&e[2..4]),
                count: if big {
                    order.u64(&e[4..12])
                } else {
                    u64::from(order.u32(&e[4..8]))
                },
                field,
            }
        })
        .collect();
    let next_at = count * entry_len;
    let next = match bytes.get(next_at..next_at + field_len) {
        Some(b) if big => order.u64(b),
        Some(b) => u64::from(order.u32(b)),
        None => 0,
    };
    (entries, next)
}

/// Reads `len` bytes at `offset`, or a corrupt-file error naming `what` when they are not all
/// in the file.
pub fn read_at(source: &dyn ByteSource, offset: u64, len: u64, what: &str) -> Result<Vec<u8>> {
    let in_file = offset
        .checked_add(len)
        .is_some_and(|end| end <= source.len());
    if !in_file {
        return Err(Error::corrupt(format!(
            "{what} lies beyond the end of the file ({len} bytes at offset {offset})"
        )));
    }
    let len = usize::try_from(len).map_err(|_| Error::corrupt(format!("{what} is too large")))?;
    source
        .read_range(offset, len)
        .map_err(|e| Error::from_decode_io(e, what))
}

/// Reads directories and tag values from one file.
#[derive(Debug, Clone, Copy)]
pub struct IfdReader<'a> {
    pub source: &'a dyn ByteSource,
    pub order: ByteOrder,
    pub big: bool,
    /// Bytes of directories and tag values still allowed: a hostile file could point many IFDs
    /// at one large array, so the total read is bounded by twice the file's length.
    pub budget: &'a Cell<u64>,
}

impl IfdReader<'_> {
    /// The budget for a file of `len` bytes.
    pub fn budget_for(len: u64) -> Cell<u64> {
        Cell::new(len.saturating_mul(2).max(1 << 20))
    }

    /// Reads `len` bytes at `offset`, or a corrupt-file error naming `what`.
    pub fn read(&self, offset: u64, len: u64, what: &str) -> Result<Vec<u8>> {
        let left =
            self.budget.get().checked_sub(len).ok_or_else(|| {
                Error::corrupt("IFDs and tag values add up to more than the file")
            })?;
        self.budget.set(left);
        read_at(self.source, offset, len, what)
    }

    /// Reads the directory at `offset`.
    pub fn read_ifd(&self, offset: u64) -> Result<Ifd> {
        let (count_len, entry_len, field_len) = if self.big { (8, 20, 8) } else { (2, 12, 4) };
        let head = self.read(offset, count_len, "IFD")?;
        let count = if self.big {
            self.order.u64(&head)
        } else {
            u64::from(self.order.u16(&head))
        };
        if count == 0 || count > MAX_ENTRIES {
            return Err(Error::corrupt(format!(
                "IFD at offset {offset} has {count} entries"
            )));
        }
        let body = self.read(offset + count_len, count * entry_len + field_len, "IFD")?;
        let (entries, next) = parse_entries(&body, count as usize, self.order, self.big);
        Ok(Ifd {
            offset,
            entries,
            next,
        })
    }

    /// The raw bytes of an entry's values (inline or read from their offset).
    pub fn raw_values(&self, entry: &Entry) -> Result<Vec<u8>> {
        let what = || format!("tag {}", entry.tag);
        let size = type_size(entry.field_type).ok_or_else(|| {
            Error::corrupt(format!("{} has unknown type {}", what(), entry.field_type))
        })?;
        let len = entry
            .count
            .checked_mul(size)
            .filter(|&len| len <= self.source.len())
            .ok_or_else(|| Error::corrupt(format!("{} claims {} values", what(), entry.count)))?;
        let inline = if self.big { 8 } else { 4 };
        if len <= inline {
            return Ok(entry.field[..len as usize].to_vec());
        }
        let offset = if self.big {
            self.order.u64(&entry.field)
        } else {
            u64::from(self.order.u32(&entry.field))
        };
        self.read(offset, len, &what())
    }

    /// An entry's values as unsigned integers (BYTE, SHORT, LONG, LONG8, IFD, IFD8).
    pub fn unsigned(&self, entry: &Entry) -> Result<Vec<u64>> {
        let raw = self.raw_values(entry)?;
        let order = self.order;
        let values = match entry.field_type {
            1 | 7 => raw.iter().map(|&b| u64::from(b)).collect(),
            3 => raw
                .chunks_exact(2)
                .map(|b| u64::from(order.u16(b)))
                .collect(),
            4 | 13 => raw
                .chunks_exact(4)
                .map(|b| u64::from(order.u32(b)))
                .collect(),
            16 | 18 => raw.chunks_exact(8).map(|b| order.u64(b)).collect(),
            other => {
                return Err(Error::corrupt(format!(
                    "tag {} has type {other} where an unsigned integer is expected",
                    entry.tag
                )))
            }
        };
        Ok(values)
    }

    /// The values of `tag` as unsigned integers, if the tag is present.
    pub fn find_unsigned(&self, ifd: &Ifd, tag: u16) -> Result<Option<Vec<u64>>> {
        ifd.find(tag).map(|e| self.unsigned(e)).transpose()
    }

    /// The first value of `tag`, or `default` when the tag is absent.
    pub fn first_or(&self, ifd: &Ifd, tag: u16, default: u64) -> Result<u64> {
        match self.find_unsigned(ifd, tag)? {
            None => Ok(default),
            Some(values) => values
                .first()
                .copied()
                .ok_or_else(|| Error::corrupt(format!("tag {tag} has no value"))),
        }
    }

    /// The first value of a required `tag`.
    pub fn get_first(&self, ifd: &Ifd, tag: u16) -> Result<u64> {
        let values = self
            .find_unsigned(ifd, tag)?
            .ok_or_else(|| Error::corrupt(format!("required tag {tag} is missing")))?;
        values
            .first()
            .copied()
            .ok_or_else(|| Error::corrupt(format!("tag {tag} has no value")))
    }

    /// The raw bytes of `tag`, if present.
    pub fn find_bytes(&self, ifd: &Ifd, tag: u16) -> Result<Option<Vec<u8>>> {
        ifd.find(tag).map(|e| self.raw_values(e)).transpose()
    }
}

/// A directory and where it sits in the file's structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub ifd: Ifd,
    /// In the main chain (rather than reached through SubIFDs).
    pub main_chain: bool,
}

/// Reads every directory of the main chain and, after each, the SubIFDs it points to (and
/// their own chains), depth first; refuses cycles and more than [`MAX_IFDS`] directories.
pub fn walk(reader: &IfdReader<'_>, first: u64) -> Result<Vec<Located>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    // Chains still to follow: (offset, in main chain). A stack, so SubIFDs come right after
    // their parent and before the parent's next sibling.
    let mut pending = vec![(first, true)];
    while let Some((offset, main_chain)) = pending.pop() {
        if offset == 0 {
            continue;
        }
        if !seen.insert(offset) {
            return Err(Error::corrupt(format!(
                "IFD offset {offset} is visited twice (a loop in the IFD chain)"
            )));
        }
        if out.len() >= MAX_IFDS {
            return Err(Error::corrupt(format!("more than {MAX_IFDS} IFDs")));
        }
        let ifd = reader.read_ifd(offset)?;
        pending.push((ifd.next, main_chain));
        let subs = reader
            .find_unsigned(&ifd, tag::SUB_IFDS)?
            .unwrap_or_default();
        if subs.len() > MAX_IFDS {
            return Err(Error::corrupt(format!("{} SubIFDs", subs.len())));
        }
        pending.extend(subs.iter().rev().map(|&sub| (sub, false)));
        out.push(Located { ifd, main_chain });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemBytes;

    /// A classic little-endian file whose IFDs sit at the given offsets, each with one entry
    /// (ImageWidth) and pointing to the next offset in `chain`.
    fn chained(chain: &[u32]) -> Vec<u8> {
        let mut file = vec![0u8; 512];
        file[..4].copy_from_slice(b"II*\0");
        file[4..8].copy_from_slice(&chain[0].to_le_bytes());
        for (i, &at) in chain.iter().enumerate() {
            let at = at as usize;
            let next = chain.get(i + 1).copied().unwrap_or(0);
            file[at..at + 2].copy_from_slice(&1u16.to_le_bytes());
            file[at + 2..at + 4].copy_from_slice(&tag::IMAGE_WIDTH.to_le_bytes());
            file[at + 4..at + 6].copy_from_slice(&3u16.to_le_bytes());
            file[at + 6..at + 10].copy_from_slice(&1u32.to_le_bytes());
            file[at + 10..at + 12].copy_from_slice(&(i as u16 + 7).to_le_bytes());
            file[at + 14..at + 18].copy_from_slice(&next.to_le_bytes());
        }
        file
    }

    fn walk_bytes(file: Vec<u8>) -> Result<Vec<Located>> {
        let source = MemBytes(file);
        let header = parse_header(&source.0[..16])?;
        let budget = IfdReader::budget_for(source.len());
        let reader = IfdReader {
            source: &source,
            order: header.order,
            big: header.big,
            budget: &budget,
        };
        walk(&reader, header.first_ifd)
    }

    #[test]
    fn headers() {
        let h = parse_header(b"MM\0*\0\0\0\x08").unwrap();
        assert_eq!((h.order, h.big, h.first_ifd), (ByteOrder::Big, false, 8));
        let h = parse_header(b"II+\0\x08\0\0\0\x10\0\0\0\0\0\0\0").unwrap();
        assert_eq!((h.order, h.big, h.first_ifd), (ByteOrder::Little, true, 16));
        assert!(parse_header(b"II+\0\x04\0\0\0\x10\0\0\0\0\0\0\0").is_err());
        assert!(parse_header(b"II*").is_err());
        assert!(parse_header(b"XX*\0\0\0\0\0").is_err());
    }

    #[test]
    fn entries_big_and_small() {
        let mut e = vec![0x01, 0x00, 0x03, 0x00, 0x01, 0, 0, 0, 0x2A, 0, 0, 0];
        e.extend_from_slice(&[0x20, 0, 0, 0]);
        let (entries, next) = parse_entries(&e, 1, ByteOrder::Little, false);
        assert_eq!((entries[0].tag, entries[0].count, next), (1, 1, 0x20));
        assert_eq!(entries[0].field[0], 0x2A);
        let e = [0u8, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 7, 0, 9, 0, 0, 0, 0];
        let (entries, next) = parse_entries(&e, 1, ByteOrder::Big, true);
        assert_eq!((entries[0].tag, entries[0].count, next), (1, 2, 0));
    }

    #[test]
    fn walks_a_chain() {
        let ifds = walk_bytes(chained(&[16, 64, 128])).unwrap();
        assert_eq!(ifds.len(), 3);
        assert!(ifds.iter().all(|l| l.main_chain));
    }

    #[test]
    fn refuses_loops_and_bad_offsets() {
        let mut file = chained(&[16, 64]);
        file[64 + 14..64 + 18].copy_from_slice(&16u32.to_le_bytes());
        assert!(matches!(walk_bytes(file), Err(Error::Corrupt(_))));
        let mut file = chained(&[16]);
        file[16 + 14..16 + 18].copy_from_slice(&100_000u32.to_le_bytes());
        assert!(matches!(walk_bytes(file), Err(Error::Corrupt(_))));
    }

    #[test]
    fn refuses_huge_counts() {
        let source = MemBytes(vec![0; 64]);
        let budget = IfdReader::budget_for(64);
        let reader = IfdReader {
            source: &source,
            order: ByteOrder::Little,
            big: false,
            budget: &budget,
        };
        let entry = Entry {
            tag: 273,
            field_type: 4,
            count: u64::from(u32::MAX),
            field: [8, 0, 0, 0, 0, 0, 0, 0],
        };
        assert!(matches!(reader.unsigned(&entry), Err(Error::Corrupt(_))));
    }
}
