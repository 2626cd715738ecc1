//! codec: encoding rasters to JPEG, PNG and WebP, and decoding single JPEG streams.
//!
//! These are whole-buffer codecs for tiles and small images; streaming decoders for huge
//! sources live in `source`. Alpha is never silently dropped: JPEG takes opaque layouts only,
//! callers flatten onto a background first.

pub mod jpeg;
pub mod png;
pub mod webp;

use crate::error::Result;
use crate::raster::Raster;

/// An encoded image format gigatile can emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    Jpeg,
    Png,
    Webp,
}

impl OutputFormat {
    /// The usual file extension.
    pub const fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
        }
    }

    /// The media type.
    pub const fn media_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Webp => "image/webp",
        }
    }

    /// Whether the format can carry transparency.
    pub const fn supports_alpha(self) -> bool {
        !matches!(self, OutputFormat::Jpeg)
    }

    /// The format named by an extension (`jpg`, `jpeg`, `png`, `webp`), case-insensitive.
    pub fn from_extension(ext: &str) -> Option<OutputFormat> {
        match ext.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => Some(OutputFormat::Jpeg),
            "png" => Some(OutputFormat::Png),
            "webp" => Some(OutputFormat::Webp),
            _ => None,
        }
    }
}

/// How to encode: the format and its quality (1..=100; ignored by PNG; `None` for WebP means
/// lossless).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncodeOptions {
    pub format: OutputFormat,
    pub quality: Option<u8>,
}

/// Encodes a raster. JPEG needs an opaque layout (flatten alpha first).
pub fn encode(raster: &Raster, options: EncodeOptions) -> Result<Vec<u8>> {
    match options.format {
        OutputFormat::Jpeg => {
            jpeg::encode(raster, options.quality.unwrap_or(jpeg::DEFAULT_QUALITY))
        }
        OutputFormat::Png => png::encode(raster),
        OutputFormat::Webp => webp::encode(raster, options.quality),
    }
}
