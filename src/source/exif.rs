//! source::exif: the EXIF orientation tag, and turning a raster into display orientation.
//!
//! Knows nothing of files or codecs: it reads an EXIF payload given as bytes and moves pixels.

use crate::raster::Raster;

/// How the stored pixels must be turned to show the image upright (EXIF tag 0x0112).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Orientation {
    /// 1: stored upright.
    Normal,
    /// 2: mirrored left to right.
    FlipHorizontal,
    /// 3: turned half a turn.
    Rotate180,
    /// 4: mirrored top to bottom.
    FlipVertical,
    /// 5: mirrored across the top-left to bottom-right diagonal.
    Transpose,
    /// 6: turned a quarter turn clockwise for display.
    Rotate90,
    /// 7: mirrored across the top-right to bottom-left diagonal.
    Transverse,
    /// 8: turned a quarter turn anticlockwise for display.
    Rotate270,
}

impl Orientation {
    /// The orientation for an EXIF value 1..=8.
    pub fn from_exif(value: u16) -> Option<Orientation> {
        Some(match value {
            1 => Orientation::Normal,
            2 => Orientation::FlipHorizontal,
            3 => Orientation::Rotate180,
            4 => Orientation::FlipVertical,
            5 => Orientation::Transpose,
            6 => Orientation::Rotate90,
            7 => Orientation::Transverse,
            8 => Orientation::Rotate270,
            _ => return None,
        })
    }

    /// The EXIF value 1..=8.
    pub fn exif_value(self) -> u16 {
        match self {
            Orientation::Normal => 1,
            Orientation::FlipHorizontal => 2,
            Orientation::Rotate180 => 3,
            Orientation::FlipVertical => 4,
            Orientation::Transpose => 5,
            Orientation::Rotate90 => 6,
            Orientation::Transverse => 7,
            Orientation::Rotate270 => 8,
        }
    }

    /// Whether display width is the stored height (the quarter-turn orientations 5..8).
    pub fn swaps_dimensions(self) -> bool {
        self.exif_value() >= 5
    }

    /// The display size of a stored `width`×`height` image.
    pub fn display_size(self, width: u32, height: u32) -> (u32, u32) {
        if self.swaps_dimensions() {
            (height, width)
        } else {
            (width, height)
        }
    }

    /// The stored pixel shown at display position (`x`, `y`) of an image stored `w`×`h`.
    fn stored_position(self, x: u32, y: u32, w: u32, h: u32) -> (u32, u32) {
        match self {
            Orientation::Normal => (x, y),
            Orientation::FlipHorizontal => (w - 1 - x, y),
            Orientation::Rotate180 => (w - 1 - x, h - 1 - y),
            Orientation::FlipVertical => (x, h - 1 - y),
            Orientation::Transpose => (y, x),
            Orientation::Rotate90 => (y, h - 1 - x),
            Orientation::Transverse => (w - 1 - y, h - 1 - x),
            Orientation::Rotate270 => (w - 1 - y, x),
        }
    }

    /// Turns a stored raster into display orientation.
    pub fn apply(&self, raster: Raster) -> Raster {
        if *self == Orientation::Normal {
            return raster;
        }
        let (w, h) = (raster.width, raster.height);
        let (out_w, out_h) = self.display_size(w, h);
        let channels = raster.layout.channels();
        let stride = raster.stride();
        let mut data = Vec::with_capacity(raster.data.len());
        for y in 0..out_h {
            for x in 0..out_w {
                let (sx, sy) = self.stored_position(x, y, w, h);
                let at = sy as usize * stride + sx as usize * channels;
                data.extend_from_slice(&raster.data[at..at + channels]);
            }
        }
        Raster {
            width: out_w,
            height: out_h,
            layout: raster.layout,
            data,
        }
    }
}

/// Most IFD0 entries looked at before giving up (real files have a few dozen).
const MAX_IFD_ENTRIES: usize = 512;

/// The orientation in an EXIF APP1 payload (the bytes after `Exif\0\0`: a TIFF header and
/// IFD0); `None` when the tag is absent, out of range or the payload is malformed.
pub fn parse_orientation(exif: &[u8]) -> Option<Orientation> {
    let big_endian = match exif.get(..4)? {
        [b'I', b'I', 42, 0] => false,
        [b'M', b'M', 0, 42] => true,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = exif.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = exif.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?).min(MAX_IFD_ENTRIES);
    (0..count).find_map(|i| {
        let entry = ifd.checked_add(2 + 12 * i)?;
        const ORIENTATION_TAG: u16 = 0x0112;
        const SHORT: u16 = 3;
        if u16_at(entry)? != ORIENTATION_TAG || u16_at(entry + 2)? != SHORT {
            return None;
        }
        Orientation::from_exif(u16_at(entry + 8)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raster::PixelLayout;

    fn exif(big_endian: bool, value: u16) -> Vec<u8> {
        let mut out = Vec::new();
        let u16b = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u32b = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        out.extend_from_slice(if big_endian { b"MM\0*" } else { b"II*\0" });
        out.extend_from_slice(&u32b(8));
        out.extend_from_slice(&u16b(2));
        // An unrelated tag first (ImageWidth, LONG), then Orientation.
        out.extend_from_slice(&u16b(0x0100));
        out.extend_from_slice(&u16b(4));
        out.extend_from_slice(&u32b(1));
        out.extend_from_slice(&u32b(640));
        out.extend_from_slice(&u16b(0x0112));
        out.extend_from_slice(&u16b(3));
        out.extend_from_slice(&u32b(1));
        out.extend_from_slice(&u16b(value));
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&u32b(0));
        out
    }

    #[test]
    fn reads_both_byte_orders() {
        for value in 1..=8 {
            for be in [false, true] {
                let o = parse_orientation(&exif(be, value)).unwrap();
                assert_eq!(o.exif_value(), value);
            }
        }
        assert_eq!(parse_orientation(&exif(true, 9)), None);
    }

    #[test]
    fn garbage_never_panics() {
        let good = exif(false, 6);
        for len in 0..good.len() {
            let _ = parse_orientation(&good[..len]);
        }
        let mut huge_offset = good.clone();
        huge_offset[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_orientation(&huge_offset), None);
        assert_eq!(parse_orientation(b"garbage!"), None);
    }

    #[test]
    fn rotations_move_the_corner() {
        // 3×2 raster, values = index; the stored top-left pixel is 0.
        let r = Raster::from_data(3, 2, PixelLayout::Gray, (0..6).collect()).unwrap();
        let turned = Orientation::Rotate90.apply(r.clone());
        assert_eq!((turned.width, turned.height), (2, 3));
        // Quarter turn clockwise: the stored left column, read bottom-up, is the top row.
        assert_eq!(turned.data, vec![3, 0, 4, 1, 5, 2]);
        let back = Orientation::Rotate270.apply(turned);
        assert_eq!(back, r);
        assert_eq!(
            Orientation::Rotate180.apply(r.clone()).data,
            vec![5, 4, 3, 2, 1, 0]
        );
        assert_eq!(
            Orientation::Transpose.apply(r.clone()).data,
            vec![0, 3, 1, 4, 2, 5]
        );
        assert_eq!(
            Orientation::Transverse.apply(r).data,
            vec![5, 2, 4, 1, 3, 0]
        );
    }
}
