//! pyramid::tiff_writer: writes a pyramidal tiled BigTIFF, append-only, tiles in any order.
//!
//! Layout on disk: a 16-byte little-endian BigTIFF header whose first-IFD offset is patched at
//! [`TiffWriter::finish`]; then tile data in the order tiles arrive; then, per level, its
//! out-of-line tag values (TileOffsets, TileByteCounts as LONG8, Software) followed by its IFD.
//! Levels are chained main IFDs: level 0 with NewSubfileType 0, every reduced level with
//! NewSubfileType 1, as `vips tiffsave --pyramid` writes them. Every tile is a full
//! [`TILE_SIZE`]² block: JPEG tiles are self-contained streams (no JPEGTables), deflate tiles
//! are zlib streams of horizontally differenced samples (Predictor 2).
//!
//! It owns the TIFF byte layout and tags only. It knows nothing of rows, resampling or where
//! pixels come from, and does not choose file names: the caller hands it a `Write + Seek`.

use std::io::{Seek, SeekFrom, Write};

use crate::error::{Error, Result};
use crate::geometry::TILE_SIZE;
use crate::raster::{PixelLayout, Raster};

/// How the tiles of one level are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileEncoding {
    /// Self-contained baseline JPEG streams (grey, or RGB as YCbCr); opaque layouts only.
    Jpeg,
    /// zlib streams of horizontally differenced samples, from [`deflate_tile`]; any layout.
    Deflate,
}

/// One level (one IFD) of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelSpec {
    pub width: u32,
    pub height: u32,
    pub layout: PixelLayout,
    pub encoding: TileEncoding,
}

impl LevelSpec {
    fn tile_grid(&self) -> (u32, u32) {
        (
            self.width.div_ceil(TILE_SIZE),
            self.height.div_ceil(TILE_SIZE),
        )
    }
}

/// A level's tiles as written so far.
struct LevelState {
    spec: LevelSpec,
    columns: u32,
    offsets: Vec<u64>,
    byte_counts: Vec<u64>,
    /// JPEG luma sampling factors (horizontal, vertical), from the first RGB JPEG tile.
    chroma_subsampling: Option<(u16, u16)>,
}

/// A BigTIFF being written; tiles may arrive in any order, IFDs are written at `finish`.
pub struct TiffWriter<W: Write + Seek> {
    out: W,
    position: u64,
    levels: Vec<LevelState>,
}

const HEADER_LEN: u64 = 16;
const FIRST_IFD_FIELD: u64 = 8;

impl<W: Write + Seek> TiffWriter<W> {
    /// Starts a file at the writer's current position 0 with one IFD per level, level 0 first.
    pub fn create(mut out: W, levels: &[LevelSpec]) -> Result<Self> {
        let states = levels
            .iter()
            .map(|&spec| new_level(spec))
            .collect::<Result<Vec<_>>>()?;
        if states.is_empty() {
            return Err(Error::out_of_range("a TIFF needs at least one level"));
        }
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(b"II");
        header.extend_from_slice(&43u16.to_le_bytes());
        header.extend_from_slice(&8u16.to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes());
        header.extend_from_slice(&0u64.to_le_bytes());
        out.write_all(&header)?;
        Ok(TiffWriter {
            out,
            position: HEADER_LEN,
            levels: states,
        })
    }

    /// Appends the encoded tile (`column`, `row`) of `level`; each tile exactly once.
    pub fn write_tile(&mut self, level: usize, column: u32, row: u32, data: &[u8]) -> Result<()> {
        let state = self
            .levels
            .get_mut(level)
            .ok_or_else(|| Error::out_of_range(format!("no level {level} in this TIFF")))?;
        let (columns, rows) = state.spec.tile_grid();
        if column >= columns || row >= rows {
            return Err(Error::out_of_range(format!(
                "tile {column},{row} outside level {level}'s {columns}×{rows} grid"
            )));
        }
        let index = row as usize * state.columns as usize + column as usize;
        if state.byte_counts[index] != 0 {
            return Err(Error::out_of_range(format!(
                "tile {column},{row} of level {level} written twice"
            )));
        }
        if data.is_empty() {
            return Err(Error::out_of_range("an encoded tile cannot be empty"));
        }
        state.check_tile(data)?;
        state.offsets[index] = self.position;
        state.byte_counts[index] = data.len() as u64;
        self.out.write_all(data)?;
        self.position += data.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.position
    }

    /// Writes every level's IFD, points the header at the first, and returns the output
    /// (flushed, not synced). Fails if any tile is missing.
    pub fn finish(mut self) -> Result<W> {
        for (index, state) in self.levels.iter().enumerate() {
            let missing = state.byte_counts.iter().filter(|&&c| c == 0).count();
            if missing > 0 {
                return Err(Error::out_of_range(format!(
                    "level {index} lacks {missing} tiles"
                )));
            }
        }
        let mut tail = Vec::new();
        let mut first_ifd = 0;
        let mut next_field: Option<usize> = None;
        for (index, state) in self.levels.iter().enumerate() {
            let ifd_offset = append_ifd(&mut tail, self.position, &state.ifd_entries(index));
            match next_field {
                Some(at) => tail[at..at + 8].copy_from_slice(&ifd_offset.to_le_bytes()),
                None => first_ifd = ifd_offset,
            }
            next_field = Some(tail.len() - 8);
        }
        self.out.write_all(&tail)?;
        self.position += tail.len() as u64;
        self.patch_first_ifd(first_ifd)?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn patch_first_ifd(&mut self, offset: u64) -> Result<()> {
        self.out.seek(SeekFrom::Start(FIRST_IFD_FIELD))?;
        self.out.write_all(&offset.to_le_bytes())?;
        self.out.seek(SeekFrom::Start(self.position))?;
        Ok(())
    }
}

fn new_level(spec: LevelSpec) -> Result<LevelState> {
    if spec.width == 0 || spec.height == 0 {
        return Err(Error::out_of_range("a TIFF level needs at least one pixel"));
    }
    if spec.encoding == TileEncoding::Jpeg && spec.layout.has_alpha() {
        return Err(Error::unsupported("JPEG tiles cannot carry alpha"));
    }
    let (columns, rows) = spec.tile_grid();
    let tiles = columns as usize * rows as usize;
    Ok(LevelState {
        spec,
        columns,
        offsets: vec![0; tiles],
        byte_counts: vec![0; tiles],
        chroma_subsampling: None,
    })
}

impl LevelState {
    /// Checks a JPEG tile's frame against the level, and records its chroma subsampling.
    fn check_tile(&mut self, data: &[u8]) -> Result<()> {
        if self.spec.encoding != TileEncoding::Jpeg {
            return Ok(());
        }
        let frame = read_jpeg_frame(data)?;
        let components = self.spec.layout.channels();
        if frame.width != TILE_SIZE || frame.height != TILE_SIZE || frame.components != components {
            return Err(Error::out_of_range(format!(
                "JPEG tile is {}×{} with {} components where a {TILE_SIZE}² {} tile belongs",
                frame.width,
                frame.height,
                frame.components,
                self.spec.layout.name()
            )));
        }
        if components == 1 {
            return Ok(());
        }
        match self.chroma_subsampling {
            None => self.chroma_subsampling = Some(frame.luma_sampling),
            Some(seen) if seen != frame.luma_sampling => {
                return Err(Error::out_of_range(
                    "JPEG tiles of one level use different chroma subsampling",
                ))
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// The level's tags, in ascending tag order.
    fn ifd_entries(&self, index: usize) -> Vec<Entry> {
        let spec = &self.spec;
        let samples = spec.layout.channels();
        let jpeg = spec.encoding == TileEncoding::Jpeg;
        let photometric = match (spec.layout.is_gray(), jpeg) {
            (true, _) => 1,
            (false, true) => 6,
            (false, false) => 2,
        };
        let mut entries = vec![
            Entry::long(254, u32::from(index > 0)),
            Entry::long(256, spec.width),
            Entry::long(257, spec.height),
            Entry::shorts(258, &vec![8; samples]),
            Entry::shorts(259, &[if jpeg { 7 } else { 8 }]),
            Entry::shorts(262, &[photometric]),
            Entry::shorts(277, &[samples as u16]),
            Entry::shorts(284, &[1]),
            Entry::ascii(305, "gigatile"),
        ];
        if !jpeg {
            entries.push(Entry::shorts(317, &[2]));
        }
        entries.extend([
            Entry::long(322, TILE_SIZE),
            Entry::long(323, TILE_SIZE),
            Entry::long8s(324, &self.offsets),
            Entry::long8s(325, &self.byte_counts),
        ]);
        if spec.layout.has_alpha() {
            entries.push(Entry::shorts(338, &[2]));
        }
        entries.push(Entry::shorts(339, &vec![1; samples]));
        if let (6, Some((h, v))) = (photometric, self.chroma_subsampling) {
            entries.push(Entry::shorts(530, &[h, v]));
        }
        entries
    }
}

/// One IFD entry: tag, field type, count and the value's little-endian bytes.
struct Entry {
    tag: u16,
    field_type: u16,
    count: u64,
    value: Vec<u8>,
}

const ASCII: u16 = 2;
const SHORT: u16 = 3;
const LONG: u16 = 4;
const LONG8: u16 = 16;

impl Entry {
    fn long(tag: u16, value: u32) -> Entry {
        Entry {
            tag,
            field_type: LONG,
            count: 1,
            value: value.to_le_bytes().to_vec(),
        }
    }

    fn shorts(tag: u16, values: &[u16]) -> Entry {
        Entry {
            tag,
            field_type: SHORT,
            count: values.len() as u64,
            value: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    fn long8s(tag: u16, values: &[u64]) -> Entry {
        Entry {
            tag,
            field_type: LONG8,
            count: values.len() as u64,
            value: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    fn ascii(tag: u16, text: &str) -> Entry {
        let mut value = text.as_bytes().to_vec();
        value.push(0);
        Entry {
            tag,
            field_type: ASCII,
            count: value.len() as u64,
            value,
        }
    }
}

/// Appends one IFD (its out-of-line values first) to `tail`, which starts at file offset
/// `base`; returns the IFD's file offset. Its next-IFD field, the last 8 bytes, is left 0.
fn append_ifd(tail: &mut Vec<u8>, base: u64, entries: &[Entry]) -> u64 {
    let mut inline = Vec::with_capacity(entries.len());
    for entry in entries {
        if entry.value.len() <= 8 {
            let mut field = [0u8; 8];
            field[..entry.value.len()].copy_from_slice(&entry.value);
            inline.push(field);
        } else {
            pad_to_word(tail, base);
            inline.push((base + tail.len() as u64).to_le_bytes());
            tail.extend_from_slice(&entry.value);
        }
    }
    pad_to_word(tail, base);
    let ifd_offset = base + tail.len() as u64;
    tail.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    for (entry, field) in entries.iter().zip(&inline) {
        tail.extend_from_slice(&entry.tag.to_le_bytes());
        tail.extend_from_slice(&entry.field_type.to_le_bytes());
        tail.extend_from_slice(&entry.count.to_le_bytes());
        tail.extend_from_slice(field);
    }
    tail.extend_from_slice(&0u64.to_le_bytes());
    ifd_offset
}

/// Pads with zeros so the next byte lands on an 8-byte boundary of the file.
fn pad_to_word(tail: &mut Vec<u8>, base: u64) {
    let misalign = (base + tail.len() as u64) % 8;
    if misalign != 0 {
        tail.resize(tail.len() + (8 - misalign) as usize, 0);
    }
}

/// What a JPEG stream's frame header says.
struct JpegFrame {
    width: u32,
    height: u32,
    components: usize,
    /// Sampling factors of the first (luma) component.
    luma_sampling: (u16, u16),
}

/// Finds the frame header (SOF0..SOF2) of a JPEG stream.
fn read_jpeg_frame(data: &[u8]) -> Result<JpegFrame> {
    let bad = || Error::out_of_range("a JPEG tile must be a complete JPEG stream");
    if !data.starts_with(&[0xFF, 0xD8]) {
        return Err(bad());
    }
    let mut at = 2;
    loop {
        let segment = data.get(at..at + 4).ok_or_else(bad)?;
        if segment[0] != 0xFF {
            return Err(bad());
        }
        let marker = segment[1];
        let length = usize::from(u16::from_be_bytes([segment[2], segment[3]]));
        if (0xC0..=0xC2).contains(&marker) {
            let body = data.get(at + 4..at + 2 + length).ok_or_else(bad)?;
            if body.len() < 9 {
                return Err(bad());
            }
            let sampling = body[7];
            return Ok(JpegFrame {
                height: u32::from(u16::from_be_bytes([body[1], body[2]])),
                width: u32::from(u16::from_be_bytes([body[3], body[4]])),
                components: usize::from(body[5]),
                luma_sampling: (u16::from(sampling >> 4), u16::from(sampling & 0x0F)),
            });
        }
        if marker == 0xDA || length < 2 {
            return Err(bad());
        }
        at += 2 + length;
    }
}

/// Encodes a full tile as TIFF deflate data: rows horizontally differenced (Predictor 2), then
/// one zlib stream at a fast level.
pub fn deflate_tile(tile: &Raster) -> Result<Vec<u8>> {
    let channels = tile.layout.channels();
    let mut samples = tile.data.clone();
    for row in samples.chunks_exact_mut(tile.stride().max(1)) {
        for i in (channels..row.len()).rev() {
            row[i] = row[i].wrapping_sub(row[i - channels]);
        }
    }
    let mut encoder = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(samples.len() / 2),
        flate2::Compression::fast(),
    );
    encoder.write_all(&samples)?;
    Ok(encoder.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn spec(width: u32, height: u32, layout: PixelLayout, encoding: TileEncoding) -> LevelSpec {
        LevelSpec {
            width,
            height,
            layout,
            encoding,
        }
    }

    fn gray_tile() -> Raster {
        Raster::filled(TILE_SIZE, TILE_SIZE, PixelLayout::Gray, &[77])
    }

    #[test]
    fn header_points_at_the_first_ifd() {
        let levels = [spec(300, 10, PixelLayout::Gray, TileEncoding::Deflate)];
        let mut writer = TiffWriter::create(Cursor::new(Vec::new()), &levels).unwrap();
        let tile = deflate_tile(&gray_tile()).unwrap();
        writer.write_tile(0, 1, 0, &tile).unwrap();
        writer.write_tile(0, 0, 0, &tile).unwrap();
        let bytes = writer.finish().unwrap().into_inner();
        assert_eq!(&bytes[..8], b"II\x2B\x00\x08\x00\x00\x00");
        let first = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
        assert_eq!(first % 8, 0);
        let entries = u64::from_le_bytes(bytes[first..first + 8].try_into().unwrap());
        assert_eq!(entries, 15);
    }

    #[test]
    fn missing_duplicate_and_stray_tiles_are_errors() {
        let levels = [spec(300, 10, PixelLayout::Gray, TileEncoding::Deflate)];
        let mut writer = TiffWriter::create(Cursor::new(Vec::new()), &levels).unwrap();
        let tile = deflate_tile(&gray_tile()).unwrap();
        writer.write_tile(0, 0, 0, &tile).unwrap();
        assert!(writer.write_tile(0, 0, 0, &tile).is_err());
        assert!(writer.write_tile(0, 2, 0, &tile).is_err());
        assert!(writer.write_tile(1, 0, 0, &tile).is_err());
        assert!(writer.finish().is_err());
    }

    #[test]
    fn jpeg_tiles_are_checked() {
        let levels = [spec(10, 10, PixelLayout::Gray, TileEncoding::Jpeg)];
        let mut writer = TiffWriter::create(Cursor::new(Vec::new()), &levels).unwrap();
        let small = crate::codec::jpeg::encode(&Raster::filled(8, 8, PixelLayout::Gray, &[1]), 80);
        assert!(writer.write_tile(0, 0, 0, &small.unwrap()).is_err());
        assert!(writer.write_tile(0, 0, 0, b"\xFF\xD8garbage").is_err());
        let good = crate::codec::jpeg::encode(&gray_tile(), 80).unwrap();
        writer.write_tile(0, 0, 0, &good).unwrap();
        writer.finish().unwrap();
    }

    #[test]
    fn jpeg_cannot_carry_alpha() {
        let levels = [spec(10, 10, PixelLayout::Rgba, TileEncoding::Jpeg)];
        assert!(TiffWriter::create(Cursor::new(Vec::new()), &levels).is_err());
    }
}
