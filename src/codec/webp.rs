//! codec::webp: WebP encoding through libwebp, lossy (with a quality) or lossless.

use crate::error::{Error, Result};
use crate::raster::{PixelLayout, Raster};

/// Encodes a raster as WebP: lossy at `quality`, or lossless when `quality` is `None`. Grey is
/// widened to RGB (WebP has no grey mode); alpha is kept.
pub fn encode(raster: &Raster, quality: Option<u8>) -> Result<Vec<u8>> {
    if raster.width > 16383 || raster.height > 16383 {
        return Err(Error::too_large(format!(
            "WebP images are at most 16383 px on a side; asked for {}×{}",
            raster.width, raster.height
        )));
    }
    let widened;
    let src = match raster.layout {
        PixelLayout::Gray => {
            widened = raster.to_layout(PixelLayout::Rgb);
            &widened
        }
        PixelLayout::GrayAlpha => {
            widened = raster.to_layout(PixelLayout::Rgba);
            &widened
        }
        _ => raster,
    };
    let layout = if src.layout.has_alpha() {
        webp::PixelLayout::Rgba
    } else {
        webp::PixelLayout::Rgb
    };
    let encoder = webp::Encoder::new(&src.data, layout, src.width, src.height);
    let memory = match quality {
        Some(q) => encoder.encode(f32::from(q.clamp(1, 100))),
        None => encoder.encode_lossless(),
    };
    Ok(memory.to_vec())
}

/// Decodes a whole WebP image (used by tests and small sources) to RGB or RGBA.
pub fn decode(data: &[u8]) -> Result<Raster> {
    let image = webp::Decoder::new(data)
        .decode()
        .ok_or_else(|| Error::corrupt("WebP data could not be decoded"))?;
    let layout = if image.is_alpha() {
        PixelLayout::Rgba
    } else {
        PixelLayout::Rgb
    };
    Raster::from_data(image.width(), image.height(), layout, image.to_vec())
}
