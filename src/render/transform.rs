//! render::transform: the last pixel step before encoding: mirroring, rotation by multiples of
//! 90° and quality (colour, grey, bitonal), as IIIF asks for them. The identity
//! ([`Transform::NONE`], the default) leaves the pixels alone, and only the identity lets a
//! stored tile pass through.
//!
//! Order, as IIIF defines it: mirror (reflect on the vertical axis), then rotate clockwise,
//! then change quality. Alpha is kept (it is flattened earlier for formats without it).

use crate::raster::{PixelLayout, Raster};

/// Clockwise rotation by a multiple of 90°.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Rotation {
    #[default]
    R0,
    R90,
    R180,
    R270,
}

impl Rotation {
    /// The rotation by `degrees` when it is a multiple of 90 (360 is 0).
    pub fn from_degrees(degrees: u32) -> Option<Rotation> {
        match degrees % 360 {
            0 => Some(Rotation::R0),
            90 => Some(Rotation::R90),
            180 => Some(Rotation::R180),
            270 => Some(Rotation::R270),
            _ => None,
        }
    }

    /// The angle in degrees.
    pub const fn degrees(self) -> u32 {
        match self {
            Rotation::R0 => 0,
            Rotation::R90 => 90,
            Rotation::R180 => 180,
            Rotation::R270 => 270,
        }
    }

    /// Whether width and height swap.
    pub const fn swaps_sides(self) -> bool {
        matches!(self, Rotation::R90 | Rotation::R270)
    }
}

/// The colour of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Quality {
    /// As stored (colour or grey).
    #[default]
    Color,
    /// Grey (Rec. 601 luma).
    Gray,
    /// Black and white only: grey thresholded at the middle.
    Bitonal,
}

/// What to do to the rendered pixels before encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Transform {
    /// Reflect on the vertical axis (before rotating).
    pub mirror: bool,
    pub rotation: Rotation,
    pub quality: Quality,
}

impl Transform {
    /// Leaves the pixels as they are.
    pub const NONE: Transform = Transform {
        mirror: false,
        rotation: Rotation::R0,
        quality: Quality::Color,
    };

    /// Whether the transform changes nothing.
    pub fn is_identity(&self) -> bool {
        *self == Transform::NONE
    }

    /// The size of the output for an input of `size`.
    pub fn output_size(&self, (w, h): (u32, u32)) -> (u32, u32) {
        if self.rotation.swaps_sides() {
            (h, w)
        } else {
            (w, h)
        }
    }
}

/// Applies `t` to a raster.
pub fn apply(raster: Raster, t: &Transform) -> Raster {
    let raster = orient(raster, t.mirror, t.rotation);
    match t.quality {
        Quality::Color => raster,
        Quality::Gray => gray(raster),
        Quality::Bitonal => bitonal(gray(raster)),
    }
}

/// Mirrors, then rotates clockwise; returns the raster untouched when there is nothing to do.
fn orient(src: Raster, mirror: bool, rotation: Rotation) -> Raster {
    if !mirror && rotation == Rotation::R0 {
        return src;
    }
    let (w, h) = (src.width as usize, src.height as usize);
    let c = src.layout.channels();
    let (ow, oh) = if rotation.swaps_sides() {
        (h, w)
    } else {
        (w, h)
    };
    let mut data = vec![0u8; src.data.len()];
    for oy in 0..oh {
        for ox in 0..ow {
            // The pixel of the mirrored image that lands on (ox, oy) after rotating.
            let (mx, my) = match rotation {
                Rotation::R0 => (ox, oy),
                Rotation::R90 => (oy, h - 1 - ox),
                Rotation::R180 => (w - 1 - ox, h - 1 - oy),
                Rotation::R270 => (w - 1 - oy, ox),
            };
            let sx = if mirror { w - 1 - mx } else { mx };
            let s = (my * w + sx) * c;
            let d = (oy * ow + ox) * c;
            data[d..d + c].copy_from_slice(&src.data[s..s + c]);
        }
    }
    Raster::from_data(ow as u32, oh as u32, src.layout, data)
        .expect("a rotated raster keeps its byte count")
}

fn gray(raster: Raster) -> Raster {
    let layout = if raster.layout.has_alpha() {
        PixelLayout::GrayAlpha
    } else {
        PixelLayout::Gray
    };
    raster.to_layout(layout)
}

/// Thresholds grey samples to 0 or 255 (alpha untouched).
fn bitonal(mut raster: Raster) -> Raster {
    let c = raster.layout.channels();
    for px in raster.data.chunks_exact_mut(c) {
        px[0] = if px[0] >= 128 { 255 } else { 0 };
    }
    raster
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 RGB raster whose red sample is the pixel's index.
    fn numbered() -> Raster {
        let data = (0..6u8).flat_map(|i| [i, 0, 0]).collect();
        Raster::from_data(3, 2, PixelLayout::Rgb, data).unwrap()
    }

    fn reds(r: &Raster) -> Vec<u8> {
        r.data.chunks_exact(3).map(|p| p[0]).collect()
    }

    fn oriented(mirror: bool, rotation: Rotation) -> Raster {
        apply(
            numbered(),
            &Transform {
                mirror,
                rotation,
                quality: Quality::Color,
            },
        )
    }

    #[test]
    fn rotations_turn_clockwise() {
        // 0 1 2
        // 3 4 5
        assert_eq!(reds(&oriented(false, Rotation::R0)), [0, 1, 2, 3, 4, 5]);
        let r90 = oriented(false, Rotation::R90);
        assert_eq!((r90.width, r90.height), (2, 3));
        assert_eq!(reds(&r90), [3, 0, 4, 1, 5, 2]);
        assert_eq!(
            reds(&oriented(false, Rotation::R180)),
            [5, 4, 3, 2, 1, 0]
        );
        assert_eq!(reds(&oriented(false, Rotation::R270)), [2, 5, 1, 4, 0, 3]);
    }

    #[test]
    fn mirroring_comes_before_rotation() {
        assert_eq!(reds(&oriented(true, Rotation::R0)), [2, 1, 0, 5, 4, 3]);
        // Mirrored (2 1 0 / 5 4 3), then turned clockwise.
        assert_eq!(reds(&oriented(true, Rotation::R90)), [5, 2, 4, 1, 3, 0]);
        // !180 is a vertical flip.
        assert_eq!(reds(&oriented(true, Rotation::R180)), [3, 4, 5, 0, 1, 2]);
    }

    #[test]
    fn gray_and_bitonal_keep_alpha() {
        let rgba = Raster::from_data(2, 1, PixelLayout::Rgba, vec![200, 200, 200, 7, 10, 90, 20, 9])
            .unwrap();
        let t = |quality| Transform {
            quality,
            ..Transform::NONE
        };
        let g = apply(rgba.clone(), &t(Quality::Gray));
        assert_eq!(g.layout, PixelLayout::GrayAlpha);
        assert_eq!(g.data, [200, 7, 58, 9]);
        let b = apply(rgba, &t(Quality::Bitonal));
        assert_eq!(b.data, [255, 7, 0, 9]);
        assert!(Transform::default().is_identity());
        assert_eq!(
            Transform {
                rotation: Rotation::R270,
                ..Transform::NONE
            }
            .output_size((3, 2)),
            (2, 3)
        );
    }
}
