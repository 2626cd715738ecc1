//! source::webp: still WebP images (lossy or lossless, with or without alpha) read through
//! libwebp, which has no row-by-row API: the image is decoded whole, within
//! `max_decode_bytes`, and its rows served from memory.
//!
//! [`WebpSource::open`] reads only the RIFF chunks before the image data: the `ICCP` profile,
//! and the header libwebp itself parses for size, alpha and animation, so every limit is checked
//! before a pixel is decoded. Animated WebP is unsupported. EXIF orientation in WebP is ignored.

use std::sync::Arc;

use webp::{BitstreamFeatures, BitstreamFormat};

use crate::codec::webp::decode;
use crate::color::{describe_profile, ColorTransform, InputModel};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::raster::PixelLayout;
use crate::source::fuzzing::{drain, fuzz_limits};
use crate::source::RasterRows;
use crate::source::{RowReader, SourceFormat, SourceInfo};
use crate::storage::{ByteSource, MemBytes};

/// A WebP file, its header read and checked.
#[derive(Debug)]
pub struct WebpSource {
    bytes: Arc<dyn ByteSource>,
    width: u32,
    height: u32,
    layout: PixelLayout,
    compression: &'static str,
    icc: Option<Vec<u8>>,
    limits: Limits,
    /// Bytes a whole decode holds: the file and its pixels.
    decode_bytes: u64,
}

/// What the chunks before the image data say.
struct Chunks {
    icc: Option<Vec<u8>>,
    /// Offset just past the header of the first image chunk (`VP8 ` or `VP8L`).
    image_at: u64,
}

/// Most chunks walked before the image data (a still image has a handful).
const MAX_CHUNKS: usize = 64;
/// Bytes of an image chunk libwebp needs to read its size and alpha flag.
const BITSTREAM_HEADER: u64 = 32;

impl WebpSource {
    /// Reads the header and checks the size, and the whole decode, against the limits.
    pub fn open(bytes: Arc<dyn ByteSource>, limits: &Limits) -> Result<Self> {
        let chunks = read_chunks(bytes.as_ref(), limits)?;
        let head_len = (chunks.image_at + BITSTREAM_HEADER).min(bytes.len());
        let head = bytes
            .read_range(0, head_len as usize)
            .map_err(|e| Error::from_decode_io(e, "WebP header"))?;
        let features = BitstreamFeatures::new(&head)
            .ok_or_else(|| Error::corrupt("WebP header could not be read"))?;
        if features.has_animation() {
            return Err(Error::unsupported("animated WebP"));
        }
        let (width, height) = (features.width(), features.height());
        limits.check_dimensions(width, height)?;
        let layout = if features.has_alpha() {
            PixelLayout::Rgba
        } else {
            PixelLayout::Rgb
        };
        let decoded = u64::from(width) * u64::from(height) * layout.channels() as u64;
        limits.check_whole_decode(decoded + bytes.len(), "WebP cannot be streamed")?;
        Ok(WebpSource {
            limits: limits.clone(),
            decode_bytes: decoded + bytes.len(),
            bytes,
            width,
            height,
            layout,
            compression: match features.format() {
                Some(BitstreamFormat::Lossless) => "lossless",
                Some(BitstreamFormat::Lossy) => "lossy",
                _ => "mixed",
            },
            icc: chunks.icc,
        })
    }

    /// Size, layout and the facts `gigatile info` shows.
    pub fn info(&self) -> SourceInfo {
        SourceInfo {
            format: SourceFormat::Webp,
            width: self.width,
            height: self.height,
            layout: self.layout,
            icc: self.icc.as_deref().map(describe_profile),
            details: vec![("compression", self.compression.to_string())],
        }
    }

    /// Full-resolution rows, top to bottom, decoded whole first.
    pub fn rows(&self) -> Result<Box<dyn RowReader>> {
        let memory = self
            .limits
            .reserve_whole_decode(self.decode_bytes, "WebP cannot be streamed")?;
        let data = self
            .bytes
            .read_range(0, self.bytes.len() as usize)
            .map_err(|e| Error::from_decode_io(e, "WebP"))?;
        let mut raster = decode(&data)?;
        if (raster.width, raster.height, raster.layout) != (self.width, self.height, self.layout) {
            return Err(Error::corrupt("WebP image differs from its header"));
        }
        let profile = self
            .icc
            .as_deref()
            .and_then(|icc| ColorTransform::to_srgb(icc, InputModel::Layout(self.layout)));
        if let Some(profile) = profile {
            profile.apply(&mut raster.data);
        }
        Ok(Box::new(RasterRows::reserved(raster, memory)))
    }
}

/// Walks the RIFF chunks up to the first image chunk, keeping the ICC profile.
fn read_chunks(bytes: &dyn ByteSource, limits: &Limits) -> Result<Chunks> {
    let read = |at: u64, len: usize| {
        bytes
            .read_range(at, len)
            .map_err(|e| Error::from_decode_io(e, "WebP header"))
    };
    let riff = read(0, 12)?;
    if &riff[..4] != b"RIFF" || &riff[8..] != b"WEBP" {
        return Err(Error::corrupt("not a WebP RIFF file"));
    }
    let mut icc = None;
    let mut at = 12u64;
    for _ in 0..MAX_CHUNKS {
        let head = read(at, 8)?;
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let payload = at + 8;
        match &head[..4] {
            b"VP8 " | b"VP8L" => {
                return Ok(Chunks {
                    icc,
                    image_at: payload,
                })
            }
            b"ANIM" | b"ANMF" => return Err(Error::unsupported("animated WebP")),
            b"ICCP" => {
                limits.check_whole_decode(u64::from(size), "a WebP ICC profile is read whole")?;
                icc = Some(read(payload, size as usize)?);
            }
            _ => {}
        }
        at = payload + u64::from(size) + u64::from(size & 1);
    }
    Err(Error::corrupt(
        "WebP has no image data among its first chunks",
    ))
}

/// Reads a WebP from memory with tight limits, all rows, ignoring errors: the body of the fuzz
/// tests.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    if let Ok(source) = WebpSource::open(MemBytes::shared(data.to_vec()), &fuzz_limits()) {
        let _ = source.info();
        let _ = source.rows().and_then(drain);
    }
}
