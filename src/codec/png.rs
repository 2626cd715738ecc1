//! codec::png: PNG encoding of tiles and fitted images (fast compression, no filtering search).

use crate::error::{Error, Result};
use crate::raster::{PixelLayout, Raster};

/// Encodes a raster as an 8-bit PNG in its own layout.
pub fn encode(raster: &Raster) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(raster.data.len() / 2 + 1024);
    let mut enc = png::Encoder::new(&mut out, raster.width, raster.height);
    enc.set_color(match raster.layout {
        PixelLayout::Gray => png::ColorType::Grayscale,
        PixelLayout::GrayAlpha => png::ColorType::GrayscaleAlpha,
        PixelLayout::Rgb => png::ColorType::Rgb,
        PixelLayout::Rgba => png::ColorType::Rgba,
    });
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let to_err = |e: png::EncodingError| Error::Io(std::io::Error::other(e.to_string()));
    let mut writer = enc.write_header().map_err(to_err)?;
    writer.write_image_data(&raster.data).map_err(to_err)?;
    writer.finish().map_err(to_err)?;
    Ok(out)
}
