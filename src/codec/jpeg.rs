//! codec::jpeg: libjpeg-turbo (through the mozjpeg crate) for single JPEG streams.
//!
//! libjpeg reports errors by unwinding; every call into it runs inside [`guarded`], which turns
//! an unwind into [`Error::Corrupt`] (the unwind is started with `resume_unwind`, so no panic
//! message is printed). This is the only libjpeg in the binary.

use std::panic::{catch_unwind, AssertUnwindSafe};

use mozjpeg::{ColorSpace, Compress, Decompress};

use crate::error::{Error, Result};
use crate::raster::{PixelLayout, Raster};

/// JPEG quality when none is asked for.
pub const DEFAULT_QUALITY: u8 = 85;

/// Runs libjpeg work, mapping its error unwinds and I/O errors to pipeline errors.
pub fn guarded<T>(what: &str, work: impl FnOnce() -> std::io::Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(Error::from_decode_io(err, what)),
        Err(payload) => {
            let detail = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("libjpeg error");
            Err(Error::corrupt(format!("{what}: {detail}")))
        }
    }
}

/// Encodes a grey or RGB raster as a baseline JPEG with libjpeg-turbo's fast settings and 4:2:0
/// chroma subsampling below quality 90 (as libvips does).
pub fn encode(raster: &Raster, quality: u8) -> Result<Vec<u8>> {
    let colour = match raster.layout {
        PixelLayout::Gray => ColorSpace::JCS_GRAYSCALE,
        PixelLayout::Rgb => ColorSpace::JCS_RGB,
        other => {
            return Err(Error::unsupported(format!(
                "JPEG cannot store {} pixels; flatten alpha first",
                other.name()
            )))
        }
    };
    guarded("JPEG encode", || {
        let mut comp = Compress::new(colour);
        comp.set_fastest_defaults();
        comp.set_size(raster.width as usize, raster.height as usize);
        comp.set_quality(f32::from(quality.clamp(1, 100)));
        if colour == ColorSpace::JCS_RGB {
            let sub = if quality >= 90 { (1, 1) } else { (2, 2) };
            comp.set_chroma_sampling_pixel_sizes(sub, sub);
        }
        let capacity = raster.data.len() / 8 + 1024;
        let mut started = comp.start_compress(Vec::with_capacity(capacity))?;
        started.write_scanlines(&raster.data)?;
        started.finish()
    })
}

/// Decodes a whole JPEG stream (a tile, a small image) to grey or RGB. CMYK streams are left to
/// the source reader, which knows about profiles: here they are an error.
pub fn decode(data: &[u8]) -> Result<Raster> {
    guarded("JPEG decode", || {
        let dec = Decompress::new_mem(data)?;
        let gray = dec.color_space() == ColorSpace::JCS_GRAYSCALE;
        if matches!(
            dec.color_space(),
            ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK
        ) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "CMYK JPEG where grey or RGB was expected",
            ));
        }
        let mut started = if gray { dec.grayscale()? } else { dec.rgb()? };
        let (w, h) = (started.width(), started.height());
        let layout = if gray {
            PixelLayout::Gray
        } else {
            PixelLayout::Rgb
        };
        let mut pixels = vec![0u8; w * h * layout.channels()];
        started.read_scanlines_into(&mut pixels)?;
        started.finish()?;
        Ok(Raster {
            width: w as u32,
            height: h as u32,
            layout,
            data: pixels,
        })
    })
}

/// Joins a TIFF `JPEGTables` stream (SOI, tables, EOI) and an abbreviated tile stream (SOI,
/// frame, scan, EOI) into one self-contained JPEG: SOI, tables, then the tile after its SOI.
/// Returns `None` when either part lacks its markers.
pub fn splice_tables(tables: &[u8], tile: &[u8]) -> Option<Vec<u8>> {
    const SOI: [u8; 2] = [0xFF, 0xD8];
    const EOI: [u8; 2] = [0xFF, 0xD9];
    if !tables.starts_with(&SOI) || !tables.ends_with(&EOI) || !tile.starts_with(&SOI) {
        return None;
    }
    let inner = &tables[2..tables.len() - 2];
    let mut out = Vec::with_capacity(tile.len() + inner.len());
    out.extend_from_slice(&SOI);
    out.extend_from_slice(inner);
    out.extend_from_slice(&tile[2..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32) -> Raster {
        let mut data = Vec::new();
        for y in 0..height {
            for x in 0..width {
                data.extend_from_slice(&[(x * 4) as u8, (y * 4) as u8, 128]);
            }
        }
        Raster::from_data(width, height, PixelLayout::Rgb, data).unwrap()
    }

    #[test]
    fn round_trip_is_close() {
        let src = gradient(50, 40);
        let back = decode(&encode(&src, 95).unwrap()).unwrap();
        assert_eq!(
            (back.width, back.height, back.layout),
            (50, 40, PixelLayout::Rgb)
        );
        let max_err = src
            .data
            .iter()
            .zip(&back.data)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(max_err < 16, "max error {max_err}");
    }

    #[test]
    fn garbage_is_a_clean_error() {
        assert!(matches!(
            decode(b"\xFF\xD8\xFF\xE0garbage"),
            Err(Error::Corrupt(_))
        ));
        let mut truncated = encode(&gradient(64, 64), 80).unwrap();
        truncated.truncate(truncated.len() / 3);
        // libjpeg pads a truncated scan with grey and warns; either outcome is clean.
        let _ = decode(&truncated);
    }

    #[test]
    fn alpha_is_refused() {
        let r = Raster::filled(2, 2, PixelLayout::Rgba, &[0, 0, 0, 0]);
        assert!(matches!(encode(&r, 80), Err(Error::Unsupported(_))));
    }

    #[test]
    fn splice_joins_tables_and_tile() {
        let tables = [0xFF, 0xD8, 1, 2, 0xFF, 0xD9];
        let tile = [0xFF, 0xD8, 3, 4, 0xFF, 0xD9];
        assert_eq!(
            splice_tables(&tables, &tile).unwrap(),
            vec![0xFF, 0xD8, 1, 2, 3, 4, 0xFF, 0xD9]
        );
        assert!(splice_tables(&[1, 2], &tile).is_none());
    }
}
