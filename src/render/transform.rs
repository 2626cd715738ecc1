//! render::transform: the last pixel step before encoding: mirroring, rotation and quality
//! (colour, grey, bitonal), as IIIF asks for them. The identity ([`Transform::NONE`], the
//! default) leaves the pixels alone, and only the identity lets a stored tile pass through.
//!
//! Order, as IIIF defines it: mirror (reflect on the vertical axis), then rotate clockwise,
//! then change quality. Multiples of 90° move pixels exactly; other angles resample
//! (bilinear) into the rotated image's bounding box, the corners transparent where the format
//! has alpha and the background colour where it has not. Alpha is kept.

use crate::raster::{PixelLayout, Raster};

/// Clockwise rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Rotation {
    #[default]
    R0,
    R90,
    R180,
    R270,
    /// Any other angle, in thousandths of a degree (0 to 360 000, not a multiple of 90 000).
    Arbitrary(u32),
}

impl Rotation {
    /// The rotation by `degrees` (0 to 360; 360 is 0), to a thousandth of a degree; `None`
    /// outside that range.
    pub fn from_degrees(degrees: f64) -> Option<Rotation> {
        if !(0.0..=360.0).contains(&degrees) {
            return None;
        }
        let milli = (degrees * 1000.0).round() as u32 % 360_000;
        Some(match milli {
            0 => Rotation::R0,
            90_000 => Rotation::R90,
            180_000 => Rotation::R180,
            270_000 => Rotation::R270,
            m => Rotation::Arbitrary(m),
        })
    }

    /// The angle in thousandths of a degree.
    pub const fn millidegrees(self) -> u32 {
        match self {
            Rotation::R0 => 0,
            Rotation::R90 => 90_000,
            Rotation::R180 => 180_000,
            Rotation::R270 => 270_000,
            Rotation::Arbitrary(m) => m,
        }
    }

    /// The angle in degrees as URLs write it: `90`, `22.5`.
    pub fn format(self) -> String {
        let m = self.millidegrees();
        let text = format!("{}.{:03}", m / 1000, m % 1000);
        text.trim_end_matches('0').trim_end_matches('.').to_string()
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

    /// The size of the output for an input of `size`: rotated images fill their bounding box.
    pub fn output_size(&self, (w, h): (u32, u32)) -> (u32, u32) {
        match self.rotation {
            Rotation::R0 | Rotation::R180 => (w, h),
            Rotation::R90 | Rotation::R270 => (h, w),
            Rotation::Arbitrary(m) => {
                let (sin, cos) = radians(m).sin_cos();
                let (w, h) = (f64::from(w), f64::from(h));
                let side = |v: f64| v.round().clamp(1.0, f64::from(u32::MAX)) as u32;
                (
                    side(w * cos.abs() + h * sin.abs()),
                    side(w * sin.abs() + h * cos.abs()),
                )
            }
        }
    }
}

fn radians(millidegrees: u32) -> f64 {
    (f64::from(millidegrees) / 1000.0).to_radians()
}

/// Applies `t` to a raster. `background` fills what an arbitrary rotation uncovers; `None`
/// leaves it transparent (the raster gains alpha).
pub fn apply(raster: Raster, t: &Transform, background: Option<[u8; 3]>) -> Raster {
    let raster = match t.rotation {
        Rotation::Arbitrary(m) => {
            let mirrored = orient(raster, t.mirror, Rotation::R0);
            let size = t.output_size((mirrored.width, mirrored.height));
            rotate(&mirrored, m, size, background)
        }
        right_angle => orient(raster, t.mirror, right_angle),
    };
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
    let (ow, oh) = if matches!(rotation, Rotation::R90 | Rotation::R270) {
        (h, w)
    } else {
        (w, h)
    };
    let mut data = vec![0u8; src.data.len()];
    for oy in 0..oh {
        for ox in 0..ow {
            // The pixel of the mirrored image that lands on (ox, oy) after rotating.
            let (mx, my) = match rotation {
                Rotation::R90 => (oy, h - 1 - ox),
                Rotation::R180 => (w - 1 - ox, h - 1 - oy),
                Rotation::R270 => (w - 1 - oy, ox),
                Rotation::R0 | Rotation::Arbitrary(_) => (ox, oy),
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

/// Rotates clockwise by any angle into an `out`-sized box around the same centre, sampling
/// bilinearly with alpha weighting; outside the source counts as transparent, then is filled
/// with `background` when there is one.
fn rotate(src: &Raster, millidegrees: u32, out: (u32, u32), background: Option<[u8; 3]>) -> Raster {
    let (sin, cos) = radians(millidegrees).sin_cos();
    let (w, h) = (src.width as i64, src.height as i64);
    let c = src.layout.channels();
    let colours = if src.layout.has_alpha() { c - 1 } else { c };
    let layout = match background {
        Some(_) => src.layout.without_alpha(),
        None => src.layout.with_alpha(),
    };
    let bg: Vec<f64> = match background {
        Some(bg) if colours == 1 => vec![f64::from(crate::raster::luma(bg))],
        Some(bg) => bg.iter().map(|&v| f64::from(v)).collect(),
        None => Vec::new(),
    };
    let (ow, oh) = out;
    let mut data = Vec::with_capacity(ow as usize * oh as usize * layout.channels());
    let (half_w, half_h) = (src.width as f64 / 2.0, src.height as f64 / 2.0);
    for oy in 0..oh {
        for ox in 0..ow {
            // Back from the output pixel's centre to a position in the source.
            let dx = f64::from(ox) + 0.5 - f64::from(ow) / 2.0;
            let dy = f64::from(oy) + 0.5 - f64::from(oh) / 2.0;
            let sx = dx * cos + dy * sin + half_w - 0.5;
            let sy = -dx * sin + dy * cos + half_h - 0.5;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let mut sum = [0.0f64; 3];
            let mut coverage = 0.0;
            for (nx, ny, weight) in [
                (x0, y0, (1.0 - fx) * (1.0 - fy)),
                (x0 + 1.0, y0, fx * (1.0 - fy)),
                (x0, y0 + 1.0, (1.0 - fx) * fy),
                (x0 + 1.0, y0 + 1.0, fx * fy),
            ] {
                let (nx, ny) = (nx as i64, ny as i64);
                if weight == 0.0 || nx < 0 || ny < 0 || nx >= w || ny >= h {
                    continue;
                }
                let i = (ny as usize * src.width as usize + nx as usize) * c;
                let px = &src.data[i..i + c];
                let alpha = if colours < c {
                    f64::from(px[c - 1]) / 255.0
                } else {
                    1.0
                };
                let weight = weight * alpha;
                for (s, &v) in sum.iter_mut().zip(&px[..colours]) {
                    *s += weight * f64::from(v);
                }
                coverage += weight;
            }
            let byte = |v: f64| v.round().clamp(0.0, 255.0) as u8;
            if background.is_some() {
                for (s, b) in sum.iter().zip(&bg).take(colours) {
                    data.push(byte(s + (1.0 - coverage) * b));
                }
            } else {
                for s in sum.iter().take(colours) {
                    data.push(if coverage > 0.0 {
                        byte(s / coverage)
                    } else {
                        0
                    });
                }
                data.push(byte(coverage * 255.0));
            }
        }
    }
    Raster::from_data(ow, oh, layout, data).expect("a rotated raster of its own size")
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
        let t = Transform {
            mirror,
            rotation,
            quality: Quality::Color,
        };
        apply(numbered(), &t, None)
    }

    #[test]
    fn rotations_turn_clockwise() {
        // 0 1 2
        // 3 4 5
        assert_eq!(reds(&oriented(false, Rotation::R0)), [0, 1, 2, 3, 4, 5]);
        let r90 = oriented(false, Rotation::R90);
        assert_eq!((r90.width, r90.height), (2, 3));
        assert_eq!(reds(&r90), [3, 0, 4, 1, 5, 2]);
        assert_eq!(reds(&oriented(false, Rotation::R180)), [5, 4, 3, 2, 1, 0]);
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
        let rgba = Raster::from_data(
            2,
            1,
            PixelLayout::Rgba,
            vec![200, 200, 200, 7, 10, 90, 20, 9],
        )
        .unwrap();
        let t = |quality| Transform {
            quality,
            ..Transform::NONE
        };
        let g = apply(rgba.clone(), &t(Quality::Gray), None);
        assert_eq!(g.layout, PixelLayout::GrayAlpha);
        assert_eq!(g.data, [200, 7, 58, 9]);
        let b = apply(rgba, &t(Quality::Bitonal), None);
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

    #[test]
    fn angles_parse_to_thousandths() {
        assert_eq!(Rotation::from_degrees(360.0), Some(Rotation::R0));
        assert_eq!(Rotation::from_degrees(90.0), Some(Rotation::R90));
        assert_eq!(
            Rotation::from_degrees(22.5),
            Some(Rotation::Arbitrary(22_500))
        );
        assert_eq!(Rotation::from_degrees(360.5), None);
        assert_eq!(Rotation::Arbitrary(22_500).format(), "22.5");
        assert_eq!(Rotation::Arbitrary(1).format(), "0.001");
        assert_eq!(Rotation::R270.format(), "270");
    }

    #[test]
    fn arbitrary_rotation_fills_the_bounding_box() {
        let red = Raster::filled(20, 10, PixelLayout::Rgb, &[200, 0, 0]);
        let t = Transform {
            rotation: Rotation::Arbitrary(45_000),
            ..Transform::NONE
        };
        // 20·cos 45° + 10·sin 45° = 21.2.
        assert_eq!(t.output_size((20, 10)), (21, 21));
        let clear = apply(red.clone(), &t, None);
        assert_eq!(
            (clear.width, clear.height, clear.layout),
            (21, 21, PixelLayout::Rgba)
        );
        assert_eq!(&clear.row(10)[10 * 4..11 * 4], &[200, 0, 0, 255], "centre");
        assert_eq!(&clear.row(0)[..4], &[0, 0, 0, 0], "corner");
        let filled = apply(red, &t, Some([0, 0, 255]));
        assert_eq!(filled.layout, PixelLayout::Rgb);
        assert_eq!(&filled.row(0)[..3], &[0, 0, 255]);
        assert_eq!(&filled.row(10)[30..33], &[200, 0, 0]);
        // A quarter turn resampled matches the exact one.
        let n = numbered();
        let almost = Transform {
            rotation: Rotation::Arbitrary(90_000),
            ..Transform::NONE
        };
        let resampled = apply(n.clone(), &almost, Some([0, 0, 0]));
        assert_eq!(resampled.data, oriented(false, Rotation::R90).data);
    }
}
