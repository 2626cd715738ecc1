//! raster: 8-bit pixels in memory, and the copy/convert steps every stage shares.
//!
//! Every decoder hands out sRGB, 8 bits per sample, in one of four layouts; every encoder takes
//! one. A `Raster` is always small (a tile, a band of rows, a rendered region): whole gigapixel
//! images never live in one.

use crate::error::{Error, Result};

/// The samples of one pixel, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelLayout {
    /// One grey sample.
    Gray,
    /// Grey then alpha (straight, not premultiplied).
    GrayAlpha,
    /// Red, green, blue.
    Rgb,
    /// Red, green, blue, alpha (straight, not premultiplied).
    Rgba,
}

impl PixelLayout {
    /// Samples (bytes) per pixel.
    pub const fn channels(self) -> usize {
        match self {
            PixelLayout::Gray => 1,
            PixelLayout::GrayAlpha => 2,
            PixelLayout::Rgb => 3,
            PixelLayout::Rgba => 4,
        }
    }

    /// Whether the last sample is alpha.
    pub const fn has_alpha(self) -> bool {
        matches!(self, PixelLayout::GrayAlpha | PixelLayout::Rgba)
    }

    /// Whether the colour samples are grey.
    pub const fn is_gray(self) -> bool {
        matches!(self, PixelLayout::Gray | PixelLayout::GrayAlpha)
    }

    /// The same colour model without alpha.
    pub const fn without_alpha(self) -> PixelLayout {
        match self {
            PixelLayout::Gray | PixelLayout::GrayAlpha => PixelLayout::Gray,
            PixelLayout::Rgb | PixelLayout::Rgba => PixelLayout::Rgb,
        }
    }

    /// The same colour model with alpha.
    pub const fn with_alpha(self) -> PixelLayout {
        match self {
            PixelLayout::Gray | PixelLayout::GrayAlpha => PixelLayout::GrayAlpha,
            PixelLayout::Rgb | PixelLayout::Rgba => PixelLayout::Rgba,
        }
    }

    /// A short lower-case name (`gray`, `gray+alpha`, `rgb`, `rgba`).
    pub const fn name(self) -> &'static str {
        match self {
            PixelLayout::Gray => "gray",
            PixelLayout::GrayAlpha => "gray+alpha",
            PixelLayout::Rgb => "rgb",
            PixelLayout::Rgba => "rgba",
        }
    }
}

/// A rectangle in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    /// A rectangle from its corner and size.
    pub const fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    /// One past the right edge.
    pub const fn right(&self) -> u64 {
        self.x as u64 + self.width as u64
    }

    /// One past the bottom edge.
    pub const fn bottom(&self) -> u64 {
        self.y as u64 + self.height as u64
    }

    /// Whether the rectangle has no pixels.
    pub const fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// The part of this rectangle inside `other`, if any.
    pub fn intersect(&self, other: &Rect) -> Option<Rect> {
        let x0 = self.x.max(other.x);
        let y0 = self.y.max(other.y);
        let x1 = self.right().min(other.right());
        let y1 = self.bottom().min(other.bottom());
        if u64::from(x0) >= x1 || u64::from(y0) >= y1 {
            return None;
        }
        Some(Rect::new(
            x0,
            y0,
            (x1 - u64::from(x0)) as u32,
            (y1 - u64::from(y0)) as u32,
        ))
    }
}

/// An 8-bit image in memory: rows top to bottom, tightly packed.
#[derive(Clone, PartialEq, Eq)]
pub struct Raster {
    pub width: u32,
    pub height: u32,
    pub layout: PixelLayout,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Raster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Raster({}×{} {})",
            self.width,
            self.height,
            self.layout.name()
        )
    }
}

impl Raster {
    /// A raster filled with one pixel value (`fill` has `layout.channels()` samples).
    pub fn filled(width: u32, height: u32, layout: PixelLayout, fill: &[u8]) -> Raster {
        let channels = layout.channels();
        debug_assert_eq!(fill.len(), channels);
        let pixels = width as usize * height as usize;
        let data = if fill.iter().all(|&v| v == fill[0]) {
            vec![fill[0]; pixels * channels]
        } else {
            fill.repeat(pixels)
        };
        Raster {
            width,
            height,
            layout,
            data,
        }
    }

    /// Wraps pixel data, checking its length.
    pub fn from_data(
        width: u32,
        height: u32,
        layout: PixelLayout,
        data: Vec<u8>,
    ) -> Result<Raster> {
        let expected = width as usize * height as usize * layout.channels();
        if data.len() != expected {
            return Err(Error::corrupt(format!(
                "decoded {} bytes where {width}×{height} {} needs {expected}",
                data.len(),
                layout.name()
            )));
        }
        Ok(Raster {
            width,
            height,
            layout,
            data,
        })
    }

    /// Bytes per row.
    pub fn stride(&self) -> usize {
        self.width as usize * self.layout.channels()
    }

    /// One row's samples.
    pub fn row(&self, y: u32) -> &[u8] {
        let stride = self.stride();
        &self.data[y as usize * stride..(y as usize + 1) * stride]
    }

    /// The pixels inside `rect`, which must lie within the raster.
    pub fn crop(&self, rect: Rect) -> Raster {
        assert!(rect.right() <= u64::from(self.width) && rect.bottom() <= u64::from(self.height));
        if rect.x == 0 && rect.y == 0 && rect.width == self.width && rect.height == self.height {
            return self.clone();
        }
        let channels = self.layout.channels();
        let stride = self.stride();
        let row_bytes = rect.width as usize * channels;
        let mut data = Vec::with_capacity(row_bytes * rect.height as usize);
        for y in rect.y..rect.y + rect.height {
            let start = y as usize * stride + rect.x as usize * channels;
            data.extend_from_slice(&self.data[start..start + row_bytes]);
        }
        Raster {
            width: rect.width,
            height: rect.height,
            layout: self.layout,
            data,
        }
    }

    /// Copies `src` (same layout) into this raster with its top-left corner at (`x`, `y`),
    /// clipping whatever falls outside.
    pub fn paste(&mut self, src: &Raster, x: u32, y: u32) {
        debug_assert_eq!(src.layout, self.layout);
        if x >= self.width || y >= self.height {
            return;
        }
        let channels = self.layout.channels();
        let width = src.width.min(self.width - x) as usize;
        let height = src.height.min(self.height - y) as usize;
        let dst_stride = self.stride();
        let src_stride = src.stride();
        for row in 0..height {
            let d = (y as usize + row) * dst_stride + x as usize * channels;
            let s = row * src_stride;
            self.data[d..d + width * channels].copy_from_slice(&src.data[s..s + width * channels]);
        }
    }

    /// The same pixels in another layout: grey is widened to RGB by copying, RGB narrowed to
    /// grey by Rec. 601 luma, alpha added as opaque or dropped (not composited: see
    /// [`Raster::flatten`]).
    pub fn to_layout(&self, layout: PixelLayout) -> Raster {
        if layout == self.layout {
            return self.clone();
        }
        let from = self.layout;
        let pixels = self.width as usize * self.height as usize;
        let mut data = Vec::with_capacity(pixels * layout.channels());
        for px in self.data.chunks_exact(from.channels()) {
            let (rgb, alpha) = match from {
                PixelLayout::Gray => ([px[0]; 3], 255),
                PixelLayout::GrayAlpha => ([px[0]; 3], px[1]),
                PixelLayout::Rgb => ([px[0], px[1], px[2]], 255),
                PixelLayout::Rgba => ([px[0], px[1], px[2]], px[3]),
            };
            let gray = if from.is_gray() { rgb[0] } else { luma(rgb) };
            match layout {
                PixelLayout::Gray => data.push(gray),
                PixelLayout::GrayAlpha => data.extend_from_slice(&[gray, alpha]),
                PixelLayout::Rgb => data.extend_from_slice(&rgb),
                PixelLayout::Rgba => data.extend_from_slice(&[rgb[0], rgb[1], rgb[2], alpha]),
            }
        }
        Raster {
            width: self.width,
            height: self.height,
            layout,
            data,
        }
    }

    /// Composites the pixels over an opaque background colour and drops alpha; a raster
    /// without alpha is returned as it is.
    pub fn flatten(self, background: [u8; 3]) -> Raster {
        if !self.layout.has_alpha() {
            return self;
        }
        let out_layout = self.layout.without_alpha();
        let channels = self.layout.channels();
        let colour = channels - 1;
        let bg_gray = luma(background);
        let mut data = Vec::with_capacity(self.width as usize * self.height as usize * colour);
        for px in self.data.chunks_exact(channels) {
            let a = u32::from(px[colour]);
            for c in 0..colour {
                let bg = if colour == 1 { bg_gray } else { background[c] };
                let v = (u32::from(px[c]) * a + u32::from(bg) * (255 - a) + 127) / 255;
                data.push(v as u8);
            }
        }
        Raster {
            width: self.width,
            height: self.height,
            layout: out_layout,
            data,
        }
    }

    /// Half the size, each pixel the mean of a 2×2 block, the size rounded up (an odd last
    /// column or row averages what exists): the pyramid's own reduction, on a whole raster.
    pub fn halve(&self) -> Raster {
        let (w, h) = (self.width.div_ceil(2), self.height.div_ceil(2));
        let c = self.layout.channels();
        let mut data = Vec::with_capacity(w as usize * h as usize * c);
        for y in 0..h {
            let rows = [self.row(2 * y), self.row((2 * y + 1).min(self.height - 1))];
            for x in 0..w as usize {
                let cols = [2 * x, (2 * x + 1).min(self.width as usize - 1)];
                for ch in 0..c {
                    let sum: u32 = rows
                        .iter()
                        .flat_map(|row| cols.iter().map(move |&cx| u32::from(row[cx * c + ch])))
                        .sum();
                    data.push(((sum + 2) / 4) as u8);
                }
            }
        }
        Raster {
            width: w,
            height: h,
            layout: self.layout,
            data,
        }
    }

    /// Whether every alpha sample is 255 (true for layouts without alpha).
    pub fn is_opaque(&self) -> bool {
        if !self.layout.has_alpha() {
            return true;
        }
        let channels = self.layout.channels();
        self.data
            .chunks_exact(channels)
            .all(|px| px[channels - 1] == 255)
    }
}

/// Rec. 601 luma of an sRGB pixel, rounded.
pub fn luma(rgb: [u8; 3]) -> u8 {
    ((u32::from(rgb[0]) * 299 + u32::from(rgb[1]) * 587 + u32::from(rgb[2]) * 114 + 500) / 1000)
        as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(width: u32, height: u32, layout: PixelLayout) -> Raster {
        let n = width as usize * height as usize * layout.channels();
        Raster::from_data(width, height, layout, (0..n).map(|i| i as u8).collect()).unwrap()
    }

    #[test]
    fn crop_then_paste_round_trips() {
        let src = ramp(10, 7, PixelLayout::Rgb);
        let part = src.crop(Rect::new(3, 2, 4, 5));
        assert_eq!(part.width, 4);
        assert_eq!(part.row(0), &src.row(2)[9..21]);
        let mut dst = Raster::filled(10, 7, PixelLayout::Rgb, &[0, 0, 0]);
        dst.paste(&part, 3, 2);
        assert_eq!(dst.crop(Rect::new(3, 2, 4, 5)), part);
    }

    #[test]
    fn paste_clips_at_edges() {
        let mut dst = Raster::filled(4, 4, PixelLayout::Gray, &[0]);
        dst.paste(&Raster::filled(3, 3, PixelLayout::Gray, &[9]), 2, 3);
        assert_eq!(dst.data.iter().filter(|&&v| v == 9).count(), 2);
    }

    #[test]
    fn flatten_composites_over_background() {
        let px = Raster::from_data(1, 1, PixelLayout::Rgba, vec![255, 0, 0, 0]).unwrap();
        assert_eq!(px.flatten([1, 2, 3]).data, vec![1, 2, 3]);
        let half = Raster::from_data(1, 1, PixelLayout::GrayAlpha, vec![200, 128]).unwrap();
        let flat = half.flatten([0, 0, 0]);
        assert_eq!(flat.layout, PixelLayout::Gray);
        assert_eq!(flat.data, vec![100]);
    }

    #[test]
    fn layout_conversions() {
        let gray = Raster::from_data(2, 1, PixelLayout::Gray, vec![10, 20]).unwrap();
        assert_eq!(
            gray.to_layout(PixelLayout::Rgba).data,
            vec![10, 10, 10, 255, 20, 20, 20, 255]
        );
        let rgb = Raster::from_data(1, 1, PixelLayout::Rgb, vec![255, 255, 255]).unwrap();
        assert_eq!(rgb.to_layout(PixelLayout::GrayAlpha).data, vec![255, 255]);
    }

    #[test]
    fn halving_rounds_the_size_up() {
        let r = Raster::from_data(3, 1, PixelLayout::Gray, vec![10, 20, 31]).unwrap();
        let half = r.halve();
        assert_eq!((half.width, half.height), (2, 1));
        assert_eq!(half.data, vec![15, 31]);
    }

    #[test]
    fn rect_intersection() {
        let a = Rect::new(0, 0, 10, 10);
        assert_eq!(
            a.intersect(&Rect::new(5, 8, 10, 10)),
            Some(Rect::new(5, 8, 5, 2))
        );
        assert_eq!(a.intersect(&Rect::new(10, 0, 1, 1)), None);
    }
}
