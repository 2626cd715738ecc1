//! source::png: PNG files read as 8-bit sRGB rows through the png crate.
//!
//! Every colour type and bit depth is expanded to 8-bit gray, gray+alpha, RGB or RGBA (palette
//! and `tRNS` become alpha; 16-bit samples are rounded to 8 bits, not truncated). A
//! non-interlaced PNG streams one row at a time through [`SeqReader`]; an interlaced (Adam7)
//! one must be decoded whole, within `max_decode_bytes` (checked at open). An `iCCP` profile is
//! converted to sRGB; `gAMA` and `cHRM` without `iCCP` are ignored and the samples taken as sRGB,
//! as most files that carry them were written in sRGB anyway. An animated PNG reads as its
//! default image.

use std::sync::Arc;

use png::{BitDepth, ColorType, DecodingError, Transformations};

use crate::color::{describe_profile, ColorTransform, InputModel};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::raster::{PixelLayout, Raster};
use crate::source::fuzzing::{drain, fuzz_limits};
use crate::source::RasterRows;
use crate::source::{RowReader, SourceFormat, SourceInfo};
use crate::storage::{ByteSource, MemBytes, SeqReader};

/// A PNG file, its header read and checked.
#[derive(Debug)]
pub struct PngSource {
    bytes: Arc<dyn ByteSource>,
    limits: Limits,
    width: u32,
    height: u32,
    /// Layout of the rows handed out.
    layout: PixelLayout,
    /// The stored colour type and bit depth.
    stored: (ColorType, BitDepth),
    interlaced: bool,
    icc: Option<Vec<u8>>,
}

type PngReader = png::Reader<SeqReader>;

impl PngSource {
    /// Reads the chunks before the image data and checks the size against the limits (and an
    /// interlaced PNG's whole decode against `max_decode_bytes`).
    pub fn open(bytes: Arc<dyn ByteSource>, limits: &Limits) -> Result<Self> {
        let reader = start(bytes.clone(), limits)?;
        let info = reader.info();
        let (width, height) = (info.width, info.height);
        limits.check_dimensions(width, height)?;
        let (colour, depth) = reader.output_color_type();
        let source = PngSource {
            bytes,
            limits: limits.clone(),
            width,
            height,
            layout: layout_of(colour)?,
            stored: (info.color_type, info.bit_depth),
            interlaced: info.interlaced,
            icc: info.icc_profile.as_ref().map(|icc| icc.to_vec()),
        };
        if source.interlaced {
            limits.check_whole_decode(
                source.whole_decode_bytes(depth),
                "an interlaced PNG cannot be streamed",
            )?;
        }
        Ok(source)
    }

    /// Size, layout and the facts `gigatile info` shows.
    pub fn info(&self) -> SourceInfo {
        let (colour, depth) = self.stored;
        let mut details = vec![
            ("colour", colour_name(colour).to_string()),
            ("bit depth", (depth as u8).to_string()),
        ];
        if self.interlaced {
            details.push(("interlace", "Adam7".to_string()));
        }
        SourceInfo {
            format: SourceFormat::Png,
            width: self.width,
            height: self.height,
            layout: self.layout,
            icc: self.icc.as_deref().map(describe_profile),
            details,
        }
    }

    /// Full-resolution rows, top to bottom.
    pub fn rows(&self) -> Result<Box<dyn RowReader>> {
        let reader = start(self.bytes.clone(), &self.limits)?;
        let sixteen = reader.output_color_type().1 == BitDepth::Sixteen;
        let rows = PngRows {
            line: vec![0; if sixteen { self.stride() * 2 } else { 0 }],
            reader,
            width: self.width,
            height: self.height,
            layout: self.layout,
            next_row: 0,
            profile: self
                .icc
                .as_deref()
                .and_then(|icc| ColorTransform::to_srgb(icc, InputModel::Layout(self.layout))),
        };
        if !self.interlaced {
            return Ok(Box::new(rows));
        }
        let depth = rows.reader.output_color_type().1;
        let memory = self.limits.reserve_whole_decode(
            self.whole_decode_bytes(depth),
            "an interlaced PNG cannot be streamed",
        )?;
        let raster = rows.read_frame()?;
        Ok(Box::new(RasterRows::reserved(raster, memory)))
    }

    fn stride(&self) -> usize {
        self.width as usize * self.layout.channels()
    }

    /// Bytes an interlaced decode holds: the png crate's frame, and its 8-bit copy if 16-bit.
    fn whole_decode_bytes(&self, depth: BitDepth) -> u64 {
        let eight = self.stride() as u64 * u64::from(self.height);
        if depth == BitDepth::Sixteen {
            3 * eight
        } else {
            eight
        }
    }
}

/// A png reader positioned at the image data, expanding to 8 or 16 bits per sample.
fn start(bytes: Arc<dyn ByteSource>, limits: &Limits) -> Result<PngReader> {
    // The png crate counts what it allocates against this (a row or two when streaming, the
    // ancillary chunks it keeps); the whole-image checks are ours.
    let png_limits = png::Limits {
        bytes: usize::try_from(limits.max_decode_bytes).unwrap_or(usize::MAX),
    };
    let mut decoder = png::Decoder::new_with_limits(SeqReader::new(bytes), png_limits);
    decoder.set_transformations(Transformations::EXPAND);
    decoder.read_info().map_err(png_error)
}

fn png_error(err: DecodingError) -> Error {
    match err {
        DecodingError::IoError(err) => Error::from_decode_io(err, "PNG"),
        DecodingError::LimitsExceeded => {
            Error::too_large("PNG needs more memory than MAX_DECODE_BYTES allows")
        }
        other => Error::corrupt(format!("PNG: {other}")),
    }
}

fn layout_of(colour: ColorType) -> Result<PixelLayout> {
    match colour {
        ColorType::Grayscale => Ok(PixelLayout::Gray),
        ColorType::GrayscaleAlpha => Ok(PixelLayout::GrayAlpha),
        ColorType::Rgb => Ok(PixelLayout::Rgb),
        ColorType::Rgba => Ok(PixelLayout::Rgba),
        ColorType::Indexed => Err(Error::corrupt("PNG palette could not be expanded")),
    }
}

fn colour_name(colour: ColorType) -> &'static str {
    match colour {
        ColorType::Grayscale => "gray",
        ColorType::GrayscaleAlpha => "gray+alpha",
        ColorType::Rgb => "RGB",
        ColorType::Rgba => "RGBA",
        ColorType::Indexed => "palette",
    }
}

/// Rounds big-endian 16-bit samples to 8 bits.
fn narrow_16(wide: &[u8], out: &mut [u8]) {
    for (pair, dst) in wide.chunks_exact(2).zip(out) {
        let v = u32::from(u16::from_be_bytes([pair[0], pair[1]]));
        *dst = ((v * 255 + 32767) / 65535) as u8;
    }
}

/// Rows of a PNG, decoded one at a time.
struct PngRows {
    reader: PngReader,
    width: u32,
    height: u32,
    layout: PixelLayout,
    next_row: u32,
    /// One 16-bit row before narrowing (empty for 8-bit PNGs).
    line: Vec<u8>,
    profile: Option<ColorTransform>,
}

impl PngRows {
    /// Decodes one row into `out` (8-bit samples).
    fn read_row(&mut self, out: &mut [u8]) -> Result<()> {
        let target = if self.line.is_empty() {
            &mut *out
        } else {
            &mut self.line[..]
        };
        match self.reader.read_row(target).map_err(png_error)? {
            Some(_) if self.line.is_empty() => Ok(()),
            Some(_) => {
                narrow_16(&self.line, out);
                Ok(())
            }
            None => Err(Error::corrupt("PNG: fewer rows than its header says")),
        }
    }

    /// Decodes a whole (interlaced) image at once.
    fn read_frame(mut self) -> Result<Raster> {
        let size = self
            .reader
            .output_buffer_size()
            .ok_or_else(|| Error::too_large("PNG frame size overflows"))?;
        let mut frame = vec![0; size];
        self.reader.next_frame(&mut frame).map_err(png_error)?;
        if !self.line.is_empty() {
            let mut narrow = vec![0; size / 2];
            narrow_16(&frame, &mut narrow);
            frame = narrow;
        }
        if let Some(profile) = &self.profile {
            profile.apply(&mut frame);
        }
        Raster::from_data(self.width, self.height, self.layout, frame)
    }
}

impl RowReader for PngRows {
    fn width(&self) -> u32 {
        self.width
    }

    fn height(&self) -> u32 {
        self.height
    }

    fn layout(&self) -> PixelLayout {
        self.layout
    }

    fn read_rows(&mut self, buf: &mut [u8]) -> Result<u32> {
        let stride = self.width as usize * self.layout.channels();
        let rows = (buf.len() / stride).min((self.height - self.next_row) as usize);
        let band = &mut buf[..rows * stride];
        for row in band.chunks_exact_mut(stride) {
            self.read_row(row)?;
        }
        if let Some(profile) = &self.profile {
            profile.apply(band);
        }
        self.next_row += rows as u32;
        Ok(rows as u32)
    }
}

/// Reads a PNG from memory with tight limits, all rows, ignoring errors: the body of the fuzz
/// tests.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    if let Ok(source) = PngSource::open(MemBytes::shared(data.to_vec()), &fuzz_limits()) {
        let _ = source.info();
        let _ = source.rows().and_then(drain);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bits_round() {
        let mut out = [0u8; 4];
        narrow_16(&[0, 0, 0xFF, 0xFF, 0x80, 0x80, 0x00, 0x81], &mut out);
        assert_eq!(out, [0, 255, 128, 1]);
    }
}
