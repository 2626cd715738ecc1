//! render::resize: scaling a region to the output size with fast_image_resize (Catmull-Rom,
//! alpha-aware), skipped when the pixels already have the size asked for.

use std::cell::RefCell;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::error::{Error, Result};
use crate::raster::{PixelLayout, Raster};

/// The part of the input to scale, in input pixels (fractional edges allowed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crop {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

thread_local! {
    static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
}

fn pixel_type(layout: PixelLayout) -> PixelType {
    match layout {
        PixelLayout::Gray => PixelType::U8,
        PixelLayout::GrayAlpha => PixelType::U8x2,
        PixelLayout::Rgb => PixelType::U8x3,
        PixelLayout::Rgba => PixelType::U8x4,
    }
}

/// Scales the `crop` part of `src` to `out` pixels.
pub fn resize(src: Raster, crop: Crop, out: (u32, u32)) -> Result<Raster> {
    let exact = crop.left == 0.0
        && crop.top == 0.0
        && crop.width == f64::from(src.width)
        && crop.height == f64::from(src.height);
    if exact && out == (src.width, src.height) {
        return Ok(src);
    }
    let kind = pixel_type(src.layout);
    let input = ImageRef::new(src.width, src.height, &src.data, kind)
        .map_err(|e| Error::corrupt(format!("resize input: {e}")))?;
    let mut output = Image::new(out.0, out.1, kind);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom))
        .crop(crop.left, crop.top, crop.width, crop.height);
    RESIZER
        .with(|r| r.borrow_mut().resize(&input, &mut output, &options))
        .map_err(|e| Error::corrupt(format!("resize: {e}")))?;
    Raster::from_data(out.0, out.1, src.layout, output.into_vec())
}
