//! render: one canonical tile request in, encoded bytes out.
//!
//! Every protocol adapter translates its URL into a [`TileRequest`]: a region of the picture at
//! a canonical level, the output size, an optional canvas to pad to, and an encoding. The
//! renderer then runs a fixed list of steps:
//!
//! 1. **passthrough**: a request that is exactly one stored JPEG tile is answered with the
//!    tile's bytes, with no decode and no re-encode;
//! 2. **choose** the coarsest stored image that still has the resolution asked for;
//! 3. **assemble** the region from only the stored tiles it touches;
//! 4. **resize** to the output size (Catmull-Rom, alpha-aware);
//! 5. **compose**: flatten alpha for JPEG, pad to the canvas;
//! 6. **transform**: mirror, rotate, grey or bitonal (IIIF);
//! 7. **encode**.
//!
//! It knows nothing of HTTP, URLs or files.

mod assemble;
mod resize;
pub mod transform;

use std::time::Duration;

use bytes::Bytes;

use crate::codec::{self, EncodeOptions, OutputFormat};
use crate::error::{Error, Result};
use crate::geometry::Level;
use crate::memory::{self, MemoryBudget, Reservation};
use crate::pyramid::levels::Pyramid;
use crate::raster::{PixelLayout, Raster, Rect};

pub use transform::Transform;

/// The largest output side the renderer produces.
pub const MAX_OUTPUT_SIDE: u32 = 16384;
/// The most output pixels the renderer produces.
pub const MAX_OUTPUT_PIXELS: u64 = 64 * 1024 * 1024;

/// A canonical render request, the same whatever protocol asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileRequest {
    /// The canonical level whose pixel grid `region` is given in.
    pub level: Level,
    /// The part of the picture, in pixels of `level`.
    pub region: Rect,
    /// Output width and height; the region is scaled to exactly this size.
    pub out_size: (u32, u32),
    /// When set, the output is this size, the scaled region at its top-left corner and the rest
    /// filled with the background (transparent for formats with alpha).
    pub canvas: Option<(u32, u32)>,
    /// Output format and quality.
    pub encode: EncodeOptions,
    /// Colour behind transparent pixels when the output has no alpha, and of JPEG padding.
    pub background: [u8; 3],
    /// Mirroring, rotation and quality applied last; [`Transform::NONE`] for plain tiles.
    pub transform: Transform,
}

/// An encoded response body; a large one holds its share of the memory budget until its last
/// clone (a response being sent, a cache entry) is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub bytes: Bytes,
    pub format: OutputFormat,
    /// Whether the bytes are a stored tile sent as they are.
    pub passthrough: bool,
}

/// Renders a request from a pyramid, its buffers drawn from `budget`.
pub fn render(pyramid: &Pyramid, req: &TileRequest, budget: &MemoryBudget) -> Result<Rendered> {
    validate(pyramid, req)?;
    if let Some(bytes) = passthrough(pyramid, req)? {
        return Ok(Rendered {
            bytes: Bytes::from(bytes),
            format: OutputFormat::Jpeg,
            passthrough: true,
        });
    }
    let (raster, memory) = render_raster(pyramid, req.level, req.region, req.out_size, budget)?;
    let fill = (!req.encode.format.supports_alpha()).then_some(req.background);
    let composed = transform::apply(compose(raster, req), &req.transform, fill);
    let encoded = codec::encode(&composed, req.encode)?;
    drop(composed);
    Ok(Rendered {
        bytes: memory::hold(encoded, memory),
        format: req.encode.format,
        passthrough: false,
    })
}

/// Longest a render waits for the memory budget before it is refused as busy.
pub const RENDER_MEMORY_WAIT: Duration = Duration::from_secs(2);

/// Bytes a render holds beyond the assembled region: the resized output and one copy made from
/// it (compose or transform), and the encoded bytes (at most about a byte a pixel).
fn output_bytes(out_size: (u32, u32), channels: u64) -> u64 {
    (2 * channels + 1) * u64::from(out_size.0) * u64::from(out_size.1)
}

/// Renders the pixels of `region` (in pixels of `level`) scaled to `out_size`, in the
/// pyramid's layout: steps 2 to 4, for callers that encode or transform pixels themselves.
/// The reservation drawn from `budget` covers the rest of the work (compose, transform,
/// encode): drop it once the output is encoded.
pub fn render_raster(
    pyramid: &Pyramid,
    level: Level,
    region: Rect,
    out_size: (u32, u32),
    budget: &MemoryBudget,
) -> Result<(Raster, Reservation)> {
    let geometry = pyramid.geometry();
    let (level_w, level_h) = geometry.level_size(level);
    // Full-resolution pixels per pixel of the requested level.
    let level_scale = (
        f64::from(geometry.width) / f64::from(level_w),
        f64::from(geometry.height) / f64::from(level_h),
    );
    let needed = f64::from(region.width) * level_scale.0 / f64::from(out_size.0);
    let stored = pyramid
        .choose(needed)
        .ok_or_else(|| Error::out_of_range("the picture has no stored levels yet"))?;
    let (stored_w, stored_h) = stored.image.size();
    // The region in stored pixels, as real numbers.
    let to_stored = (
        level_scale.0 / stored.scale.0,
        level_scale.1 / stored.scale.1,
    );
    let x0 = (f64::from(region.x) * to_stored.0).min(f64::from(stored_w));
    let y0 = (f64::from(region.y) * to_stored.1).min(f64::from(stored_h));
    let x1 = (region.right() as f64 * to_stored.0).min(f64::from(stored_w));
    let y1 = (region.bottom() as f64 * to_stored.1).min(f64::from(stored_h));
    let read = Rect::new(
        x0.floor() as u32,
        y0.floor() as u32,
        ((x1.ceil() as u32).max(x0.floor() as u32 + 1) - x0.floor() as u32).min(stored_w),
        ((y1.ceil() as u32).max(y0.floor() as u32 + 1) - y0.floor() as u32).min(stored_h),
    );
    let channels = stored.image.layout().channels() as u64;
    let assembled = u64::from(read.width) * u64::from(read.height) * channels;
    let memory = budget.reserve(
        assembled + output_bytes(out_size, channels),
        RENDER_MEMORY_WAIT,
        "a render",
    )?;
    let pixels = assemble::read_region(stored, read)?;
    let crop = resize::Crop {
        left: x0 - f64::from(read.x),
        top: y0 - f64::from(read.y),
        width: (x1 - x0).max(f64::MIN_POSITIVE),
        height: (y1 - y0).max(f64::MIN_POSITIVE),
    };
    Ok((resize::resize(pixels, crop, out_size)?, memory))
}

fn validate(pyramid: &Pyramid, req: &TileRequest) -> Result<()> {
    let geometry = pyramid.geometry();
    let (w, h) = geometry.level_size(req.level);
    if req.region.is_empty()
        || req.region.right() > u64::from(w)
        || req.region.bottom() > u64::from(h)
    {
        return Err(Error::out_of_range(format!(
            "region {}×{} at ({}, {}) is outside level {} ({w}×{h})",
            req.region.width, req.region.height, req.region.x, req.region.y, req.level.0
        )));
    }
    let (ow, oh) = req.canvas.unwrap_or(req.out_size);
    for (cw, ch) in [req.out_size, (ow, oh)] {
        if cw == 0 || ch == 0 {
            return Err(Error::out_of_range("output size is empty"));
        }
        if cw > MAX_OUTPUT_SIDE
            || ch > MAX_OUTPUT_SIDE
            || u64::from(cw) * u64::from(ch) > MAX_OUTPUT_PIXELS
        {
            return Err(Error::too_large(format!(
                "output of {cw}×{ch} exceeds the render limit ({MAX_OUTPUT_SIDE} px a side, {MAX_OUTPUT_PIXELS} pixels)"
            )));
        }
    }
    Ok(())
}

/// Step 1: the stored JPEG tile itself, when the request is exactly one whole stored tile.
fn passthrough(pyramid: &Pyramid, req: &TileRequest) -> Result<Option<Vec<u8>>> {
    if req.encode.format != OutputFormat::Jpeg
        || !req.transform.is_identity()
        || req.out_size != (req.region.width, req.region.height)
        || req.canvas.is_some_and(|c| c != req.out_size)
    {
        return Ok(None);
    }
    let Some(stored) = pyramid.find_level(req.level) else {
        return Ok(None);
    };
    let (tw, th) = stored.image.tile_size();
    let (sw, sh) = stored.image.size();
    let r = req.region;
    let whole_tile = r.x % tw == 0
        && r.y % th == 0
        && (r.width, r.height) == (tw, th)
        && r.right() <= u64::from(sw)
        && r.bottom() <= u64::from(sh);
    if !whole_tile {
        return Ok(None);
    }
    stored.image.read_jpeg_tile(r.x / tw, r.y / th)
}

/// Step 5: flatten alpha where the format has none, and pad to the canvas.
fn compose(raster: Raster, req: &TileRequest) -> Raster {
    let format = req.encode.format;
    let raster = if format.supports_alpha() {
        raster
    } else {
        raster.flatten(req.background)
    };
    let Some((cw, ch)) = req.canvas.filter(|&c| c != (raster.width, raster.height)) else {
        return raster;
    };
    let layout = if format.supports_alpha() {
        raster.layout.with_alpha()
    } else {
        raster.layout
    };
    let fill = background_pixel(layout, req.background);
    let mut canvas = Raster::filled(cw, ch, layout, &fill);
    canvas.paste(&raster.to_layout(layout), 0, 0);
    canvas
}

/// The padding pixel: the background colour, transparent where the layout has alpha.
fn background_pixel(layout: PixelLayout, bg: [u8; 3]) -> Vec<u8> {
    let gray = crate::raster::luma(bg);
    match layout {
        PixelLayout::Gray => vec![gray],
        PixelLayout::GrayAlpha => vec![gray, 0],
        PixelLayout::Rgb => bg.to_vec(),
        PixelLayout::Rgba => vec![bg[0], bg[1], bg[2], 0],
    }
}

#[cfg(test)]
mod tests;
