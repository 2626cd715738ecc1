//! source::tiff::decode: one chunk's bytes to pixels: decompression (LZW, deflate, PackBits,
//! zstd, JPEG) into one buffer of exactly the expected size, the horizontal predictor, and
//! unpacking of 1/8/16-bit grey, RGB, palette and CMYK samples to 8-bit sRGB.
//!
//! It works on bytes already read and knows neither files nor IFDs nor chunk grids: its callers
//! in `mod` say how big a chunk is and which part of it lies inside the image.

use super::ifd::ByteOrder;
use super::image::{Alpha, Compression, Photometric, Samples};
use crate::codec::jpeg;
use crate::color::{cmyk_to_rgb_naive, ColorTransform};
use crate::error::{Error, Result};
use crate::raster::{PixelLayout, Raster};

/// Decompresses a non-JPEG chunk to exactly `expected` bytes (extra output is ignored, as
/// libtiff does; short output is corrupt).
pub fn decompress(compression: Compression, raw: Vec<u8>, expected: usize) -> Result<Vec<u8>> {
    if compression == Compression::None {
        return if raw.len() >= expected {
            let mut raw = raw;
            raw.truncate(expected);
            Ok(raw)
        } else {
            Err(too_short(raw.len(), expected))
        };
    }
    let mut out = vec![0u8; expected];
    let written = match compression {
        Compression::Lzw => lzw(&raw, &mut out)?,
        Compression::Deflate => deflate(&raw, &mut out)?,
        Compression::PackBits => packbits(&raw, &mut out),
        Compression::Zstd => zstd(&raw, &mut out)?,
        other => return Err(Error::unsupported(format!("{} compression", other.name()))),
    };
    if written < expected {
        return Err(too_short(written, expected));
    }
    Ok(out)
}

fn too_short(got: usize, expected: usize) -> Error {
    Error::corrupt(format!(
        "chunk decompresses to {got} bytes where {expected} are expected"
    ))
}

fn lzw(raw: &[u8], out: &mut [u8]) -> Result<usize> {
    let mut decoder = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
    let (mut read, mut written) = (0, 0);
    while written < out.len() {
        let result = decoder.decode_bytes(&raw[read..], &mut out[written..]);
        read += result.consumed_in;
        written += result.consumed_out;
        match result.status {
            Ok(weezl::LzwStatus::Ok) if result.consumed_in + result.consumed_out > 0 => {}
            Ok(_) => break,
            Err(e) => return Err(Error::corrupt(format!("LZW data: {e}"))),
        }
    }
    Ok(written)
}

fn deflate(raw: &[u8], out: &mut [u8]) -> Result<usize> {
    let mut inflater = flate2::Decompress::new(true);
    loop {
        let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
        let (read, written) = (before_in as usize, before_out as usize);
        let status = inflater
            .decompress(
                &raw[read..],
                &mut out[written..],
                flate2::FlushDecompress::Finish,
            )
            .map_err(|e| Error::corrupt(format!("deflate data: {e}")))?;
        let progressed = inflater.total_in() != before_in || inflater.total_out() != before_out;
        let full = inflater.total_out() as usize == out.len();
        if status == flate2::Status::StreamEnd || full || !progressed {
            return Ok(inflater.total_out() as usize);
        }
    }
}

/// PackBits (Apple run-length): a header byte n, then n+1 literal bytes (n ≥ 0) or one byte
/// repeated 1−n times (n < 0, except −128, which is skipped). Stops when `out` is full.
fn packbits(raw: &[u8], out: &mut [u8]) -> usize {
    let (mut read, mut written) = (0, 0);
    while written < out.len() && read < raw.len() {
        let n = raw[read] as i8;
        read += 1;
        if n >= 0 {
            let len = (n as usize + 1)
                .min(raw.len() - read)
                .min(out.len() - written);
            out[written..written + len].copy_from_slice(&raw[read..read + len]);
            read += n as usize + 1;
            written += len;
        } else if n != -128 {
            let Some(&value) = raw.get(read) else { break };
            read += 1;
            let len = (1 - n as isize) as usize;
            let len = len.min(out.len() - written);
            out[written..written + len].fill(value);
            written += len;
        }
    }
    written
}

fn zstd(raw: &[u8], out: &mut [u8]) -> Result<usize> {
    zstd::bulk::Decompressor::new()
        .and_then(|mut d| d.decompress_to_buffer(raw, out))
        .map_err(|e| Error::corrupt(format!("zstd data: {e}")))
}

/// Undoes horizontal differencing (Predictor 2) in place, row by row, on 8- or 16-bit samples
/// (16-bit ones in the file's byte order).
pub fn undo_predictor(buf: &mut [u8], row_bytes: usize, samples: &Samples, order: ByteOrder) {
    let spp = usize::from(samples.per_pixel);
    for row in buf.chunks_exact_mut(row_bytes) {
        if samples.bits == 16 {
            let stride = spp * 2;
            for i in (stride..row.len() - row.len() % 2).step_by(2) {
                let sum = order
                    .u16(&row[i..])
                    .wrapping_add(order.u16(&row[i - stride..]));
                let bytes = match order {
                    ByteOrder::Little => sum.to_le_bytes(),
                    ByteOrder::Big => sum.to_be_bytes(),
                };
                row[i..i + 2].copy_from_slice(&bytes);
            }
        } else {
            for i in spp..row.len() {
                row[i] = row[i].wrapping_add(row[i - spp]);
            }
        }
    }
}

/// The stored rows of a decompressed chunk.
pub struct Stored<'a> {
    pub data: &'a [u8],
    pub row_bytes: usize,
}

/// Unpacks the top-left `width`×`height` pixels of a chunk to 8-bit pixels of `layout`,
/// converted to sRGB by `transform` when given. Associated alpha is divided out.
pub fn unpack(
    stored: &Stored<'_>,
    samples: &Samples,
    order: ByteOrder,
    (width, height): (u32, u32),
    layout: PixelLayout,
    transform: Option<&ColorTransform>,
) -> Raster {
    let spp = usize::from(samples.per_pixel);
    let pixels = width as usize;
    let mut data = vec![0u8; pixels * height as usize * layout.channels()];
    let mut wide = Vec::new();
    let mut cmyk = Vec::new();
    let out_rows = data.chunks_exact_mut(pixels * layout.channels());
    for (src, out) in stored.data.chunks_exact(stored.row_bytes).zip(out_rows) {
        let row = samples_to_8bit(src, samples.bits, order, pixels * spp, &mut wide);
        match samples.photometric {
            Photometric::Cmyk => {
                cmyk.resize(pixels * 4, 0);
                compact(row, spp, 4, &mut cmyk);
                match transform {
                    Some(t) => t.apply_cmyk(&cmyk, out),
                    None => cmyk_to_rgb_naive(&cmyk, out, false),
                }
            }
            Photometric::Palette => {
                let palette = samples.palette.as_deref().unwrap_or(&[0; 768]);
                for (px, index) in out.chunks_exact_mut(3).zip(row.iter().step_by(spp)) {
                    let at = usize::from(*index) * 3;
                    px.copy_from_slice(&palette[at..at + 3]);
                }
            }
            _ => {
                compact(row, spp, layout.channels(), out);
                if samples.photometric == Photometric::MinIsWhite {
                    invert_colour(out, layout);
                }
                if samples.alpha == Alpha::Premultiplied {
                    unpremultiply(out, layout.channels());
                }
            }
        }
    }
    let mut raster = Raster {
        width,
        height,
        layout,
        data,
    };
    if let (Some(t), false) = (transform, samples.photometric == Photometric::Cmyk) {
        t.apply(&mut raster.data);
    }
    raster
}

/// The first `count` samples of a stored row as 8-bit values: borrowed when they already are,
/// else scaled (16-bit, rounded) or expanded (1-bit) into `scratch`.
fn samples_to_8bit<'a>(
    src: &'a [u8],
    bits: u16,
    order: ByteOrder,
    count: usize,
    scratch: &'a mut Vec<u8>,
) -> &'a [u8] {
    match bits {
        16 => {
            scratch.clear();
            scratch.extend(
                src.chunks_exact(2)
                    .take(count)
                    .map(|b| ((u32::from(order.u16(b)) * 255 + 32895) >> 16) as u8),
            );
            scratch
        }
        1 => {
            scratch.clear();
            scratch.extend((0..count).map(|i| {
                let bit = (src[i / 8] >> (7 - i % 8)) & 1;
                bit * 255
            }));
            scratch
        }
        _ => &src[..count],
    }
}

/// Copies the first `keep` of every `spp` samples into `out` (dropping extra samples beyond
/// the layout), as many pixels as `out` holds.
fn compact(src: &[u8], spp: usize, keep: usize, out: &mut [u8]) {
    if spp == keep {
        out.copy_from_slice(&src[..out.len()]);
    } else {
        for (dst, px) in out.chunks_exact_mut(keep).zip(src.chunks_exact(spp)) {
            dst.copy_from_slice(&px[..keep]);
        }
    }
}

/// Inverts grey (min-is-white) samples, leaving alpha as it is.
fn invert_colour(out: &mut [u8], layout: PixelLayout) {
    for px in out.chunks_exact_mut(layout.channels()) {
        px[0] = 255 - px[0];
    }
}

/// Divides premultiplied colour by alpha (the last sample of each pixel).
fn unpremultiply(out: &mut [u8], channels: usize) {
    for px in out.chunks_exact_mut(channels) {
        let a = u32::from(px[channels - 1]);
        if a == 255 {
            continue;
        }
        for v in &mut px[..channels - 1] {
            *v = (u32::from(*v) * 255 + a / 2)
                .checked_div(a)
                .map_or(0, |straight| straight.min(255) as u8);
        }
    }
}

/// A self-contained JPEG stream for a chunk: tables spliced in, and for photometric RGB an
/// Adobe marker saying "no colour transform", so that libjpeg (and browsers) do not take the
/// samples for YCbCr.
pub fn jpeg_stream(
    tables: Option<&[u8]>,
    raw: Vec<u8>,
    photometric: Photometric,
) -> Result<Vec<u8>> {
    let mut stream = match tables {
        Some(tables) if tables.len() > 4 => jpeg::splice_tables(tables, &raw)
            .ok_or_else(|| Error::corrupt("JPEG tile or JPEGTables lacks its markers"))?,
        _ => raw,
    };
    if !stream.starts_with(&[0xFF, 0xD8]) {
        return Err(Error::corrupt("JPEG chunk does not start with SOI"));
    }
    if photometric == Photometric::Rgb {
        const ADOBE_RGB: [u8; 16] = [
            0xFF, 0xEE, 0, 14, b'A', b'd', b'o', b'b', b'e', 0, 100, 0, 0, 0, 0, 0,
        ];
        stream.splice(2..2, ADOBE_RGB);
    }
    Ok(stream)
}

/// The width and height in a JPEG stream's frame header (SOFn), found by walking its marker
/// segments; `None` when there is none before the scan.
pub fn jpeg_frame_size(stream: &[u8]) -> Option<(u32, u32)> {
    let mut at = 2;
    loop {
        // Skip fill bytes before a marker.
        while stream.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let [0xFF, marker, len_hi, len_lo, ..] = *stream.get(at..)? else {
            return None;
        };
        let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_frame {
            let frame = stream.get(at + 5..at + 9)?;
            let height = u16::from_be_bytes([frame[0], frame[1]]);
            let width = u16::from_be_bytes([frame[2], frame[3]]);
            return Some((u32::from(width), u32::from(height)));
        }
        if marker == 0xDA {
            return None;
        }
        at += 2 + usize::from(u16::from_be_bytes([len_hi, len_lo]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(bits: u16, per_pixel: u16, photometric: Photometric, alpha: Alpha) -> Samples {
        Samples {
            bits,
            per_pixel,
            photometric,
            alpha,
            predictor: false,
            palette: None,
        }
    }

    #[test]
    fn packbits_runs_and_literals() {
        let mut out = [0u8; 8];
        let n = packbits(&[2, 1, 2, 3, 0xFD, 9, 0x80, 0], &mut out);
        assert_eq!(n, 7);
        assert_eq!(&out[..7], &[1, 2, 3, 9, 9, 9, 9]);
        // Truncated literal and a run longer than the output stop cleanly.
        assert_eq!(packbits(&[5, 1], &mut out), 1);
        let mut small = [0u8; 2];
        assert_eq!(packbits(&[0x81, 7], &mut small), 2);
    }

    #[test]
    fn short_output_is_corrupt() {
        assert!(matches!(
            decompress(Compression::None, vec![1, 2], 3),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            decompress(Compression::PackBits, vec![0, 1], 3),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            decompress(Compression::Lzw, vec![0xFF; 4], 300),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            decompress(Compression::Deflate, vec![0x78, 0x9C, 1], 300),
            Err(Error::Corrupt(_))
        ));
    }

    #[test]
    fn predictor_on_8_and_16_bits() {
        let s = samples(8, 2, Photometric::MinIsBlack, Alpha::Straight);
        let mut row = [10, 1, 5, 1, 250, 0];
        undo_predictor(&mut row, 6, &s, ByteOrder::Little);
        assert_eq!(row, [10, 1, 15, 2, 9, 2]);
        let s = samples(16, 1, Photometric::MinIsBlack, Alpha::None);
        let mut row = [0x01, 0x00, 0x00, 0x02, 0xFF, 0xFF];
        undo_predictor(&mut row, 6, &s, ByteOrder::Big);
        assert_eq!(row, [0x01, 0x00, 0x01, 0x02, 0x01, 0x01]);
    }

    #[test]
    fn unpacks_16_bit_min_is_white_with_premultiplied_alpha() {
        let s = samples(16, 2, Photometric::MinIsWhite, Alpha::Premultiplied);
        // Two pixels: white (stored 0) opaque; stored 0xFFFF (black) at half alpha.
        let data = [0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0x80];
        let stored = Stored {
            data: &data,
            row_bytes: 8,
        };
        let r = unpack(
            &stored,
            &s,
            ByteOrder::Big,
            (2, 1),
            PixelLayout::GrayAlpha,
            None,
        );
        assert_eq!(r.data, vec![255, 255, 0, 128]);
    }

    #[test]
    fn unpacks_1_bit_and_crops() {
        let s = samples(1, 1, Photometric::MinIsBlack, Alpha::None);
        let data = [0b1010_0000, 0b0100_0000];
        let stored = Stored {
            data: &data,
            row_bytes: 1,
        };
        let r = unpack(
            &stored,
            &s,
            ByteOrder::Little,
            (3, 2),
            PixelLayout::Gray,
            None,
        );
        assert_eq!(r.data, vec![255, 0, 255, 0, 255, 0]);
    }

    #[test]
    fn finds_the_jpeg_frame_size() {
        let stream = [
            0xFF, 0xD8, 0xFF, 0xDB, 0, 3, 9, 0xFF, 0xFF, 0xC0, 0, 11, 8, 0, 16, 1, 0, 3,
        ];
        assert_eq!(jpeg_frame_size(&stream), Some((256, 16)));
        assert_eq!(jpeg_frame_size(&stream[..12]), None);
        assert_eq!(jpeg_frame_size(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]), None);
        assert_eq!(jpeg_frame_size(&[0xFF, 0xD8, 0xFF, 0xDB, 0xFF, 0xFF]), None);
    }

    #[test]
    fn rgb_jpeg_gets_an_adobe_marker() {
        let s = jpeg_stream(
            Some(&[0xFF, 0xD8, 1, 0xFF, 0xD9]),
            vec![0xFF, 0xD8, 2],
            Photometric::Rgb,
        )
        .unwrap();
        assert_eq!(&s[..4], &[0xFF, 0xD8, 0xFF, 0xEE]);
        assert_eq!(&s[s.len() - 2..], &[1, 2]);
        let s = jpeg_stream(None, vec![0xFF, 0xD8, 2], Photometric::YCbCr).unwrap();
        assert_eq!(s, vec![0xFF, 0xD8, 2]);
        assert!(jpeg_stream(None, vec![1, 2], Photometric::YCbCr).is_err());
    }
}
