//! color: embedded ICC profiles converted to sRGB, and CMYK to RGB.
//!
//! Browsers show untagged pixels as sRGB, so every source is converted to sRGB while it is read:
//! an Adobe RGB scan or a CMYK JPEG then looks right in any viewer. Sources without a profile
//! are taken as sRGB already. The conversion uses Little CMS (lcms2).

use lcms2::{
    CIExyY, DisallowCache, Flags, GlobalContext, Intent, PixelFormat, Profile, ToneCurve, Transform,
};

use crate::raster::PixelLayout;

/// The pixel model of decoded samples before colour conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputModel {
    /// Decoded samples in one of the 8-bit layouts.
    Layout(PixelLayout),
    /// CMYK, 8 bits each; `inverted` for Adobe-style JPEGs, where 0 means full ink.
    Cmyk { inverted: bool },
}

/// A conversion from a source's embedded profile to sRGB, shareable across threads.
pub struct ColorTransform {
    transform: Transform<u8, u8, GlobalContext, DisallowCache>,
    input: InputModel,
}

impl std::fmt::Debug for ColorTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ColorTransform({:?} → sRGB)", self.input)
    }
}

/// What a source's embedded profile is, for `gigatile info`.
pub fn describe_profile(icc: &[u8]) -> String {
    match Profile::new_icc(icc) {
        Ok(profile) => profile
            .info(lcms2::InfoType::Description, lcms2::Locale::none())
            .unwrap_or_else(|| "unnamed profile".to_string()),
        Err(_) => "unreadable profile (ignored)".to_string(),
    }
}

fn is_srgb(profile: &Profile) -> bool {
    profile
        .info(lcms2::InfoType::Description, lcms2::Locale::none())
        .is_some_and(|d| d.to_ascii_lowercase().contains("srgb"))
}

/// A grey profile with the sRGB tone curve, so grey stays grey (one sample) and matches what
/// browsers assume for untagged grey.
fn srgb_gray_profile() -> Option<Profile> {
    let d65 = CIExyY {
        x: 0.3127,
        y: 0.3290,
        Y: 1.0,
    };
    let curve =
        ToneCurve::new_parametric(4, &[2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045])
            .ok()?;
    Profile::new_gray(&d65, &curve).ok()
}

impl ColorTransform {
    /// A transform from the embedded profile `icc` to sRGB for samples of `input`; `None` when
    /// no conversion is needed (the profile is sRGB) or possible (the profile is unreadable or
    /// does not describe the samples), in which case the samples are used as they are, as
    /// browsers do.
    pub fn to_srgb(icc: &[u8], input: InputModel) -> Option<ColorTransform> {
        let profile = Profile::new_icc(icc).ok()?;
        let space = profile.color_space();
        let (in_format, out_format, target) = match input {
            InputModel::Layout(layout) => {
                if is_srgb(&profile) {
                    return None;
                }
                match layout {
                    PixelLayout::Gray | PixelLayout::GrayAlpha => {
                        if space != lcms2::ColorSpaceSignature::GrayData {
                            return None;
                        }
                        let format = if layout.has_alpha() {
                            PixelFormat::GRAYA_8
                        } else {
                            PixelFormat::GRAY_8
                        };
                        (format, format, srgb_gray_profile()?)
                    }
                    PixelLayout::Rgb | PixelLayout::Rgba => {
                        if space != lcms2::ColorSpaceSignature::RgbData {
                            return None;
                        }
                        let format = if layout.has_alpha() {
                            PixelFormat::RGBA_8
                        } else {
                            PixelFormat::RGB_8
                        };
                        (format, format, Profile::new_srgb())
                    }
                }
            }
            InputModel::Cmyk { inverted } => {
                if space != lcms2::ColorSpaceSignature::CmykData {
                    return None;
                }
                let format = if inverted {
                    PixelFormat::CMYK_8_REV
                } else {
                    PixelFormat::CMYK_8
                };
                (format, PixelFormat::RGB_8, Profile::new_srgb())
            }
        };
        let transform = Transform::new_flags_context(
            GlobalContext::new(),
            &profile,
            in_format,
            &target,
            out_format,
            Intent::Perceptual,
            Flags::NO_CACHE,
        )
        .ok()?;
        Some(ColorTransform { transform, input })
    }

    /// Converts pixels of a layout to sRGB in place; alpha is left as it is.
    pub fn apply(&self, samples: &mut [u8]) {
        debug_assert!(matches!(self.input, InputModel::Layout(_)));
        if !samples.is_empty() {
            self.transform.transform_in_place(samples);
        }
    }

    /// Converts CMYK samples (4 per pixel) to sRGB (3 per pixel).
    pub fn apply_cmyk(&self, cmyk: &[u8], rgb: &mut [u8]) {
        debug_assert!(matches!(self.input, InputModel::Cmyk { .. }));
        if !cmyk.is_empty() {
            self.transform.transform_pixels(cmyk, rgb);
        }
    }
}

/// Converts CMYK to RGB without a profile (the naive formula every browser falls back to).
pub fn cmyk_to_rgb_naive(cmyk: &[u8], rgb: &mut [u8], inverted: bool) {
    for (src, dst) in cmyk.chunks_exact(4).zip(rgb.chunks_exact_mut(3)) {
        let ink = |v: u8| if inverted { 255 - v } else { v };
        let k = 255 - u32::from(ink(src[3]));
        for c in 0..3 {
            dst[c] = ((255 - u32::from(ink(src[c]))) * k / 255) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srgb_profile_needs_no_transform() {
        let icc = Profile::new_srgb().icc().unwrap();
        assert!(ColorTransform::to_srgb(&icc, InputModel::Layout(PixelLayout::Rgb)).is_none());
    }

    #[test]
    fn garbage_profile_is_ignored() {
        assert!(
            ColorTransform::to_srgb(b"not a profile", InputModel::Layout(PixelLayout::Rgb))
                .is_none()
        );
    }

    #[test]
    fn wide_gamut_red_becomes_out_of_gamut_srgb_red() {
        // A profile with Adobe RGB (1998) primaries: its pure green is outside sRGB and maps to
        // a clipped, less saturated value; pure white stays white.
        let d65 = CIExyY {
            x: 0.3127,
            y: 0.3290,
            Y: 1.0,
        };
        let primaries = lcms2::CIExyYTRIPLE {
            Red: CIExyY {
                x: 0.64,
                y: 0.33,
                Y: 1.0,
            },
            Green: CIExyY {
                x: 0.21,
                y: 0.71,
                Y: 1.0,
            },
            Blue: CIExyY {
                x: 0.15,
                y: 0.06,
                Y: 1.0,
            },
        };
        let gamma = ToneCurve::new(2.2);
        let adobe = Profile::new_rgb(&d65, &primaries, &[&gamma, &gamma, &gamma]).unwrap();
        let icc = adobe.icc().unwrap();
        let t = ColorTransform::to_srgb(&icc, InputModel::Layout(PixelLayout::Rgba)).unwrap();
        let mut px = [255, 255, 255, 7, 0, 128, 0, 9];
        t.apply(&mut px);
        assert!(px[0] >= 250 && px[1] >= 250 && px[2] >= 250);
        assert_eq!(px[3], 7);
        assert_eq!(px[7], 9);
        // Mid green in Adobe RGB is a more saturated green than sRGB's (0,128,0): red goes to 0
        // and green rises.
        assert!(px[5] > 128, "green {}", px[5]);
    }

    #[test]
    fn naive_cmyk() {
        let mut rgb = [0u8; 6];
        cmyk_to_rgb_naive(&[0, 0, 0, 0, 255, 0, 0, 0], &mut rgb, false);
        assert_eq!(rgb, [255, 255, 255, 0, 255, 255]);
        cmyk_to_rgb_naive(&[255, 255, 255, 255, 0, 255, 255, 255], &mut rgb, true);
        assert_eq!(rgb, [255, 255, 255, 0, 255, 255]);
    }
}
