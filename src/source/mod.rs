//! source: every supported image file, recognised by its content, read as 8-bit sRGB.
//!
//! A source is opened from a [`ByteSource`] (never a path), its header checked against
//! [`Limits`] before any pixel is decoded, and then read in one of two ways:
//! - **rows**, top to bottom, at full resolution ([`RowReader`]), which every format offers and
//!   the pyramid builder consumes in bounded memory; JPEG also offers cheap reduced rows (DCT
//!   scaling) for a quick first view;
//! - **chunks** (tiles or strips) by index, for TIFF, which gives random access to any region of
//!   any stored level without decoding the rest.
//!
//! Colour is converted to sRGB (embedded ICC profiles, CMYK) and orientation applied here, so
//! nothing downstream knows about either.

pub mod exif;
pub(crate) mod fuzzing;
pub mod jpeg;
pub mod png;
mod raster_rows;
pub mod tiff;
pub mod webp;

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::raster::PixelLayout;
use crate::storage::ByteSource;

pub use raster_rows::RasterRows;

/// A container format, as recognised from the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    Tiff,
    BigTiff,
    Jpeg,
    Png,
    Webp,
}

impl SourceFormat {
    /// A short lower-case name (`tiff`, `bigtiff`, `jpeg`, `png`, `webp`).
    pub const fn name(self) -> &'static str {
        match self {
            SourceFormat::Tiff => "tiff",
            SourceFormat::BigTiff => "bigtiff",
            SourceFormat::Jpeg => "jpeg",
            SourceFormat::Png => "png",
            SourceFormat::Webp => "webp",
        }
    }
}

/// Bytes needed by [`detect_format`].
pub const MAGIC_LEN: usize = 16;

/// Recognises a format from its magic bytes (at least [`MAGIC_LEN`] bytes, or the whole file if
/// shorter); `None` when it is none gigatile reads.
pub fn detect_format(head: &[u8]) -> Option<SourceFormat> {
    match head {
        [b'I', b'I', 42, 0, ..] | [b'M', b'M', 0, 42, ..] => Some(SourceFormat::Tiff),
        [b'I', b'I', 43, 0, ..] | [b'M', b'M', 0, 43, ..] => Some(SourceFormat::BigTiff),
        [0xFF, 0xD8, 0xFF, ..] => Some(SourceFormat::Jpeg),
        [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n', ..] => Some(SourceFormat::Png),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => {
            Some(SourceFormat::Webp)
        }
        _ => None,
    }
}

/// Full-resolution rows of a source, top to bottom, in sRGB and display orientation.
pub trait RowReader: Send {
    /// Width of every row, in pixels.
    fn width(&self) -> u32;
    /// Number of rows the reader yields in all.
    fn height(&self) -> u32;
    /// Layout of the samples.
    fn layout(&self) -> PixelLayout;
    /// Fills `buf` (a whole number of rows, tightly packed) with the next rows and returns how
    /// many it wrote: fewer than fit only at the end, 0 once all rows are read.
    fn read_rows(&mut self, buf: &mut [u8]) -> Result<u32>;
}

/// One line of `gigatile info`: a property and its value.
pub type Detail = (&'static str, String);

/// What a source is, from its header: enough to plan a pyramid and answer metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    pub format: SourceFormat,
    /// Width in display orientation.
    pub width: u32,
    /// Height in display orientation.
    pub height: u32,
    /// Layout of decoded pixels.
    pub layout: PixelLayout,
    /// The embedded colour profile's description, if any.
    pub icc: Option<String>,
    /// Format-specific facts (compression, tiling, levels, orientation, ...).
    pub details: Vec<Detail>,
}

/// An opened source of any supported format.
#[derive(Debug)]
pub enum Source {
    Tiff(tiff::TiffFile),
    Jpeg(jpeg::JpegSource),
    Png(png::PngSource),
    Webp(webp::WebpSource),
}

impl Source {
    /// Opens a source, recognising its format by content and checking its header against the
    /// limits.
    pub fn open(bytes: Arc<dyn ByteSource>, limits: &Limits) -> Result<Source> {
        let head_len = bytes.len().min(MAGIC_LEN as u64) as usize;
        let head = bytes.read_range(0, head_len)?;
        let format = detect_format(&head)
            .ok_or_else(|| Error::unsupported("not a TIFF, BigTIFF, JPEG, PNG or WebP image"))?;
        Ok(match format {
            SourceFormat::Tiff | SourceFormat::BigTiff => {
                Source::Tiff(tiff::TiffFile::open(bytes, limits)?)
            }
            SourceFormat::Jpeg => Source::Jpeg(jpeg::JpegSource::open(bytes, limits)?),
            SourceFormat::Png => Source::Png(png::PngSource::open(bytes, limits)?),
            SourceFormat::Webp => Source::Webp(webp::WebpSource::open(bytes, limits)?),
        })
    }

    /// What the source is.
    pub fn info(&self) -> SourceInfo {
        match self {
            Source::Tiff(s) => s.info(),
            Source::Jpeg(s) => s.info(),
            Source::Png(s) => s.info(),
            Source::Webp(s) => s.info(),
        }
    }

    /// Full-resolution rows, top to bottom.
    pub fn rows(&self) -> Result<Box<dyn RowReader>> {
        match self {
            Source::Tiff(s) => s.rows(s.primary()),
            Source::Jpeg(s) => s.rows(1),
            Source::Png(s) => s.rows(),
            Source::Webp(s) => s.rows(),
        }
    }

    /// Rows reduced by a power of two at least `1/denominator` as cheap to read as the
    /// reduction saves (JPEG DCT scaling), with the factor used; `None` when the format has no
    /// cheap reduced read.
    pub fn reduced_rows(&self, denominator: u32) -> Option<Result<(u32, Box<dyn RowReader>)>> {
        match self {
            Source::Jpeg(s) => {
                let factor = s.best_reduction(denominator);
                (factor > 1).then(|| s.rows(factor).map(|r| (factor, r)))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes() {
        assert_eq!(detect_format(b"II*\0\x08\0\0\0"), Some(SourceFormat::Tiff));
        assert_eq!(
            detect_format(b"MM\0+\0\x08\0\0"),
            Some(SourceFormat::BigTiff)
        );
        assert_eq!(detect_format(b"\xFF\xD8\xFF\xE0"), Some(SourceFormat::Jpeg));
        assert_eq!(detect_format(b"\x89PNG\r\n\x1a\n"), Some(SourceFormat::Png));
        assert_eq!(
            detect_format(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(SourceFormat::Webp)
        );
        assert_eq!(detect_format(b"GIF89a"), None);
        assert_eq!(detect_format(b""), None);
    }
}
