//! JPEG, PNG and WebP sources: every variant read back against the raster it was made from,
//! reduced and oriented rows, colour profiles, limits, and damaged files (including a
//! deterministic fuzz loop and the saved crashers in `tests/fuzz_cases/`).

mod common;

use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use common::{assert_close, photo, run, write_png, TempDir};
use gigatile::error::{Error, Result};
use gigatile::limits::Limits;
use gigatile::raster::{PixelLayout, Raster};
use gigatile::source::{Detail, RowReader, Source};
use gigatile::storage::MemBytes;
use mozjpeg::{ColorSpace, Compress, Marker};

// ---------------------------------------------------------------- helpers

fn open_with(bytes: Vec<u8>, limits: &Limits) -> Result<Source> {
    Source::open(MemBytes::shared(bytes), limits)
}

fn open(bytes: Vec<u8>) -> Source {
    open_with(bytes, &Limits::default()).unwrap()
}

/// Reads every row in bands of 7, checking the reader yields exactly its height.
fn read_all(mut rows: Box<dyn RowReader>) -> Result<Raster> {
    let stride = rows.width() as usize * rows.layout().channels();
    let mut data = vec![0; stride * rows.height() as usize];
    let mut filled = 0;
    while filled < data.len() {
        let end = (filled + 7 * stride).min(data.len());
        let n = rows.read_rows(&mut data[filled..end])?;
        assert!(n > 0, "reader stopped before its last row");
        filled += n as usize * stride;
    }
    assert_eq!(
        rows.read_rows(&mut vec![0; stride])?,
        0,
        "rows past the end"
    );
    Raster::from_data(rows.width(), rows.height(), rows.layout(), data)
}

/// Opens and reads a file, checking the rows match what `info` announced.
fn decode(bytes: Vec<u8>) -> Raster {
    let source = open(bytes);
    let info = source.info();
    let raster = read_all(source.rows().unwrap()).unwrap();
    assert_eq!(
        (raster.width, raster.height, raster.layout),
        (info.width, info.height, info.layout)
    );
    raster
}

fn detail(source: &Source, key: &str) -> Option<String> {
    let details: Vec<Detail> = source.info().details;
    details.into_iter().find(|(k, _)| *k == key).map(|(_, v)| v)
}

fn tight(max_decode_bytes: u64) -> Limits {
    Limits {
        max_decode_bytes,
        ..Limits::default()
    }
}

fn assert_refused_as_too_large(bytes: Vec<u8>, what: &str) {
    match open_with(bytes, &tight(1000)) {
        Err(Error::TooLarge(msg)) => assert!(msg.contains("tiled TIFF"), "{what}: {msg}"),
        other => panic!("{what}: expected TooLarge, got {other:?}"),
    }
}

/// Opening and reading damaged data must give an error (or, for harmless cuts, rows), never a
/// panic; `must_fail` cuts must give an error.
fn assert_damage_is_clean(good: &[u8], what: &str) {
    let half = good[..good.len() / 2].to_vec();
    let result = open_with(half, &Limits::default()).and_then(|s| read_all(s.rows()?));
    assert!(result.is_err(), "{what}: half a file read without error");
    for len in [0, 3, 8, 20, 40, good.len() - 1] {
        let cut = good[..len.min(good.len())].to_vec();
        let _ = open_with(cut, &Limits::default()).and_then(|s| read_all(s.rows()?));
    }
    let mut garbage = good[..16.min(good.len())].to_vec();
    garbage.extend((0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let result = open_with(garbage, &Limits::default()).and_then(|s| read_all(s.rows()?));
    assert!(result.is_err(), "{what}: garbage read without error");
}

/// White on top, a soft green below (Adobe RGB (128, 200, 128) is about sRGB (77, 201, 125)).
fn white_and_green() -> Raster {
    let mut data = vec![255; 8 * 8 * 3];
    for px in data.chunks_exact_mut(3).skip(32) {
        px.copy_from_slice(&[128, 200, 128]);
    }
    Raster::from_data(8, 8, PixelLayout::Rgb, data).unwrap()
}

/// Checks colours came out converted from Adobe RGB: white stays white, the green loses red.
fn assert_adobe_green_converted(raster: &Raster, what: &str) {
    let white = &raster.data[..3];
    assert!(white.iter().all(|&v| v >= 250), "{what}: white {white:?}");
    let green = &raster.data[raster.data.len() - 3..];
    assert!(green[0] < 100 && green[1] > 185, "{what}: green {green:?}");
}

// ---------------------------------------------------------------- PNG

fn png_bytes(
    width: u32,
    height: u32,
    colour: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    setup: impl FnOnce(&mut png::Info<'static>),
) -> Vec<u8> {
    let mut info = png::Info::with_size(width, height);
    info.color_type = colour;
    info.bit_depth = depth;
    setup(&mut info);
    let mut out = Vec::new();
    let encoder = png::Encoder::with_info(&mut out, info).unwrap();
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(data).unwrap();
    writer.finish().unwrap();
    out
}

fn png_colour(layout: PixelLayout) -> png::ColorType {
    match layout {
        PixelLayout::Gray => png::ColorType::Grayscale,
        PixelLayout::GrayAlpha => png::ColorType::GrayscaleAlpha,
        PixelLayout::Rgb => png::ColorType::Rgb,
        PixelLayout::Rgba => png::ColorType::Rgba,
    }
}

const LAYOUTS: [PixelLayout; 4] = [
    PixelLayout::Gray,
    PixelLayout::GrayAlpha,
    PixelLayout::Rgb,
    PixelLayout::Rgba,
];

#[test]
fn png_8_and_16_bit_every_colour_type_is_exact() {
    for layout in LAYOUTS {
        let src = photo(61, 37, layout);
        let eight = png_bytes(
            61,
            37,
            png_colour(layout),
            png::BitDepth::Eight,
            &src.data,
            |_| {},
        );
        assert_eq!(decode(eight), src, "8-bit {layout:?}");
        // v·257 + 100 rounds back to v, where keeping the high byte would often give v + 1.
        let wide: Vec<u8> = src
            .data
            .iter()
            .flat_map(|&v| ((u32::from(v) * 257 + 100).min(65535) as u16).to_be_bytes())
            .collect();
        let sixteen = png_bytes(
            61,
            37,
            png_colour(layout),
            png::BitDepth::Sixteen,
            &wide,
            |_| {},
        );
        assert_eq!(decode(sixteen), src, "16-bit {layout:?}");
    }
}

/// Packs samples of `depth` bits per pixel, MSB first, each row to a whole byte.
fn pack(samples: &[u8], width: usize, depth: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for row in samples.chunks_exact(width) {
        let mut bits = 0u32;
        let mut acc = 0u8;
        for &s in row {
            acc = (acc << depth) | s;
            bits += depth as u32;
            if bits == 8 {
                out.push(acc);
                (acc, bits) = (0, 0);
            }
        }
        if bits > 0 {
            out.push(acc << (8 - bits));
        }
    }
    out
}

#[test]
fn png_low_bit_gray_expands() {
    let src = photo(45, 23, PixelLayout::Gray);
    for (depth, bit_depth) in [
        (1, png::BitDepth::One),
        (2, png::BitDepth::Two),
        (4, png::BitDepth::Four),
    ] {
        let levels = (1u32 << depth) - 1;
        let samples: Vec<u8> = src
            .data
            .iter()
            .map(|&v| (u32::from(v) * levels / 255) as u8)
            .collect();
        let bytes = png_bytes(
            45,
            23,
            png::ColorType::Grayscale,
            bit_depth,
            &pack(&samples, 45, depth),
            |_| {},
        );
        let expected: Vec<u8> = samples
            .iter()
            .map(|&s| (u32::from(s) * 255 / levels) as u8)
            .collect();
        let got = decode(bytes);
        assert_eq!(got.layout, PixelLayout::Gray);
        assert_eq!(got.data, expected, "{depth}-bit gray");
    }
}

#[test]
fn png_palette_with_and_without_trns() {
    let gray = photo(40, 30, PixelLayout::Gray);
    let indices: Vec<u8> = gray.data.iter().map(|&v| v >> 4).collect();
    let palette: Vec<u8> = (0..16u8)
        .flat_map(|i| [i * 17, 255 - i * 17, i * 8])
        .collect();
    let alpha: Vec<u8> = (0..16u8).map(|i| i * 17).collect();
    let colour = |i: u8| &palette[usize::from(i) * 3..usize::from(i) * 3 + 3];
    for (depth, bit_depth) in [(8, png::BitDepth::Eight), (4, png::BitDepth::Four)] {
        let data = if depth == 8 {
            indices.clone()
        } else {
            pack(&indices, 40, 4)
        };
        let plain = png_bytes(40, 30, png::ColorType::Indexed, bit_depth, &data, |info| {
            info.palette = Some(Cow::Owned(palette.clone()));
        });
        let expected: Vec<u8> = indices.iter().flat_map(|&i| colour(i).to_vec()).collect();
        let got = decode(plain);
        assert_eq!((got.layout, &got.data), (PixelLayout::Rgb, &expected));
        let with_alpha = png_bytes(40, 30, png::ColorType::Indexed, bit_depth, &data, |info| {
            info.palette = Some(Cow::Owned(palette.clone()));
            info.trns = Some(Cow::Owned(alpha.clone()));
        });
        let expected: Vec<u8> = indices
            .iter()
            .flat_map(|&i| [colour(i), &[alpha[usize::from(i)]]].concat())
            .collect();
        let got = decode(with_alpha);
        assert_eq!((got.layout, &got.data), (PixelLayout::Rgba, &expected));
    }
}

#[test]
fn png_trns_on_gray_and_rgb_becomes_alpha() {
    let gray = photo(30, 20, PixelLayout::Gray);
    let key = gray.data[0];
    let bytes = png_bytes(
        30,
        20,
        png::ColorType::Grayscale,
        png::BitDepth::Eight,
        &gray.data,
        |info| {
            info.trns = Some(Cow::Owned(vec![0, key]));
        },
    );
    let got = decode(bytes);
    let expected: Vec<u8> = gray
        .data
        .iter()
        .flat_map(|&v| [v, if v == key { 0 } else { 255 }])
        .collect();
    assert_eq!((got.layout, got.data), (PixelLayout::GrayAlpha, expected));

    let rgb = photo(30, 20, PixelLayout::Rgb);
    let key = rgb.data[..3].to_vec();
    let bytes = png_bytes(
        30,
        20,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &rgb.data,
        |info| {
            info.trns = Some(Cow::Owned(key.iter().flat_map(|&v| [0, v]).collect()));
        },
    );
    let got = decode(bytes);
    assert_eq!(got.layout, PixelLayout::Rgba);
    assert_eq!(got.to_layout(PixelLayout::Rgb), rgb);
    assert_eq!(got.data[3], 0);
}

#[test]
fn png_interlaced_is_exact_and_limited() {
    let dir = TempDir::new("png-interlace");
    for layout in [PixelLayout::Rgb, PixelLayout::GrayAlpha] {
        let src = photo(53, 41, layout);
        write_png(&src, &dir.path("in.png"));
        run(
            "convert",
            &[
                dir.path("in.png").to_str().unwrap(),
                "-interlace",
                "PNG",
                dir.path("out.png").to_str().unwrap(),
            ],
        );
        let bytes = std::fs::read(dir.path("out.png")).unwrap();
        assert_eq!(
            detail(&open(bytes.clone()), "interlace").as_deref(),
            Some("Adam7")
        );
        assert_eq!(decode(bytes.clone()), src);
        assert_refused_as_too_large(bytes, "interlaced PNG");
    }
    // A 16-bit interlaced PNG (written with the png crate) rounds like a streamed one.
    let src = photo(20, 9, PixelLayout::Rgba);
    let wide: Vec<u8> = src
        .data
        .iter()
        .flat_map(|&v| (u16::from(v) * 257).to_be_bytes())
        .collect();
    let stream = png_bytes(
        20,
        9,
        png::ColorType::Rgba,
        png::BitDepth::Sixteen,
        &wide,
        |_| {},
    );
    write_png(&src, &dir.path("in.png"));
    std::fs::write(dir.path("16.png"), stream).unwrap();
    run(
        "convert",
        &[
            dir.path("16.png").to_str().unwrap(),
            "-interlace",
            "PNG",
            dir.path("16i.png").to_str().unwrap(),
        ],
    );
    let bytes = std::fs::read(dir.path("16i.png")).unwrap();
    assert_eq!(decode(bytes), src);
}

#[test]
fn png_iccp_is_converted_and_gama_ignored() {
    let src = white_and_green();
    let icc = common::adobe_rgb_icc();
    let tagged = png_bytes(
        8,
        8,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &src.data,
        |info| {
            info.icc_profile = Some(Cow::Owned(icc));
        },
    );
    assert!(open(tagged.clone()).info().icc.is_some());
    assert_adobe_green_converted(&decode(tagged), "PNG iCCP");
    let gamma = png_bytes(
        8,
        8,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &src.data,
        |info| {
            info.source_gamma = Some(png::ScaledFloat::new(1.0 / 1.8));
        },
    );
    assert_eq!(decode(gamma), src);
}

#[test]
fn png_damage_is_clean() {
    let src = photo(64, 48, PixelLayout::Rgb);
    assert_damage_is_clean(&gigatile::codec::png::encode(&src).unwrap(), "PNG");
}

#[test]
fn png_streams_beyond_decode_limit() {
    // A non-interlaced PNG larger than MAX_DECODE_BYTES still streams (only a row is held).
    let src = photo(300, 200, PixelLayout::Rgba);
    let bytes = gigatile::codec::png::encode(&src).unwrap();
    let source = open_with(bytes, &tight(10_000)).unwrap();
    assert_eq!(read_all(source.rows().unwrap()).unwrap(), src);
}

// ---------------------------------------------------------------- JPEG

/// Encodes with libjpeg, optionally progressive, with extra markers.
fn jpeg_with(
    raster: &Raster,
    progressive: bool,
    markers: &[(Marker, &[u8])],
    icc: Option<&[u8]>,
) -> Vec<u8> {
    let colour = match raster.layout {
        PixelLayout::Gray => ColorSpace::JCS_GRAYSCALE,
        _ => ColorSpace::JCS_RGB,
    };
    let mut comp = Compress::new(colour);
    // mozjpeg's own defaults are progressive; start from libjpeg-turbo's baseline ones.
    comp.set_fastest_defaults();
    comp.set_size(raster.width as usize, raster.height as usize);
    comp.set_quality(92.0);
    if progressive {
        comp.set_progressive_mode();
    }
    let mut started = comp.start_compress(Vec::new()).unwrap();
    for (marker, data) in markers {
        started.write_marker(*marker, data);
    }
    if let Some(icc) = icc {
        started.write_icc_profile(icc);
    }
    started.write_scanlines(&raster.data).unwrap();
    started.finish().unwrap()
}

/// An EXIF APP1 payload holding only an orientation.
fn exif_orientation(value: u16) -> Vec<u8> {
    let mut out = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    out.extend_from_slice(&value.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    out
}

/// The display raster for an EXIF orientation, composed from mirror and transpose steps
/// (independently of the crate's per-pixel mapping).
fn orient(raster: &Raster, value: u16) -> Raster {
    let ch = raster.layout.channels();
    let remap = |r: &Raster, w: u32, h: u32, at: &dyn Fn(u32, u32) -> (u32, u32)| {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = at(x, y);
                let i = (sy as usize * r.width as usize + sx as usize) * ch;
                data.extend_from_slice(&r.data[i..i + ch]);
            }
        }
        Raster::from_data(w, h, r.layout, data).unwrap()
    };
    let flip_h = |r: &Raster| remap(r, r.width, r.height, &|x, y| (r.width - 1 - x, y));
    let flip_v = |r: &Raster| remap(r, r.width, r.height, &|x, y| (x, r.height - 1 - y));
    let transpose = |r: &Raster| remap(r, r.height, r.width, &|x, y| (y, x));
    match value {
        1 => raster.clone(),
        2 => flip_h(raster),
        3 => flip_v(&flip_h(raster)),
        4 => flip_v(raster),
        5 => transpose(raster),
        6 => flip_h(&transpose(raster)),
        7 => flip_v(&flip_h(&transpose(raster))),
        _ => flip_v(&transpose(raster)),
    }
}

/// A box filter over `f`×`f` blocks, edge blocks averaged over the pixels they have.
fn box_down(r: &Raster, f: u32) -> Raster {
    let (w, h) = (r.width.div_ceil(f), r.height.div_ceil(f));
    let ch = r.layout.channels();
    let mut data = Vec::new();
    for by in 0..h {
        for bx in 0..w {
            for c in 0..ch {
                let (mut sum, mut n) = (0u32, 0u32);
                for y in by * f..((by + 1) * f).min(r.height) {
                    for x in bx * f..((bx + 1) * f).min(r.width) {
                        sum += u32::from(
                            r.data[(y as usize * r.width as usize + x as usize) * ch + c],
                        );
                        n += 1;
                    }
                }
                data.push(((sum + n / 2) / n) as u8);
            }
        }
    }
    Raster::from_data(w, h, r.layout, data).unwrap()
}

#[test]
fn jpeg_baseline_gray_and_rgb() {
    for layout in [PixelLayout::Gray, PixelLayout::Rgb] {
        let src = photo(203, 157, layout);
        let bytes = gigatile::codec::jpeg::encode(&src, 85).unwrap();
        let source = open(bytes.clone());
        assert_eq!(detail(&source, "coding").as_deref(), Some("baseline"));
        if layout == PixelLayout::Rgb {
            assert_eq!(detail(&source, "subsampling").as_deref(), Some("4:2:0"));
            assert_eq!(detail(&source, "colour").as_deref(), Some("YCbCr"));
        }
        assert_close(&decode(bytes), &src, 30.0, "baseline JPEG");
    }
}

#[test]
fn jpeg_dct_reduction_sizes_and_content() {
    let src = photo(203, 157, PixelLayout::Rgb);
    for progressive in [false, true] {
        let source = open(jpeg_with(&src, progressive, &[], None));
        let Source::Jpeg(jpeg) = &source else {
            panic!("not a JPEG")
        };
        for f in [2, 4, 8] {
            let rows = jpeg.rows(f).unwrap();
            assert_eq!(
                (rows.width(), rows.height()),
                (203u32.div_ceil(f), 157u32.div_ceil(f))
            );
            let got = read_all(rows).unwrap();
            assert_close(
                &got,
                &box_down(&src, f),
                25.0,
                &format!("1/{f} progressive={progressive}"),
            );
        }
        let (factor, rows) = source.reduced_rows(5).unwrap().unwrap();
        assert_eq!((factor, rows.width()), (4, 51));
    }
}

#[test]
fn jpeg_progressive_reads_and_is_limited() {
    let src = photo(150, 100, PixelLayout::Rgb);
    let bytes = jpeg_with(&src, true, &[], None);
    assert_eq!(
        detail(&open(bytes.clone()), "coding").as_deref(),
        Some("progressive")
    );
    assert_close(&decode(bytes.clone()), &src, 30.0, "progressive JPEG");
    assert_refused_as_too_large(bytes, "progressive JPEG");

    let dir = TempDir::new("jpeg-progressive");
    write_png(&src, &dir.path("in.png"));
    run(
        "convert",
        &[
            dir.path("in.png").to_str().unwrap(),
            "-interlace",
            "Plane",
            "-quality",
            "92",
            dir.path("out.jpg").to_str().unwrap(),
        ],
    );
    let bytes = std::fs::read(dir.path("out.jpg")).unwrap();
    assert_eq!(
        detail(&open(bytes.clone()), "coding").as_deref(),
        Some("progressive")
    );
    assert_close(&decode(bytes), &src, 30.0, "ImageMagick progressive JPEG");
}

#[test]
fn jpeg_every_orientation() {
    let src = photo(67, 43, PixelLayout::Rgb);
    let upright = decode(jpeg_with(&src, false, &[], None));
    let dir = TempDir::new("jpeg-orient");
    for value in 1..=8u16 {
        let exif = exif_orientation(value);
        let bytes = jpeg_with(&src, false, &[(Marker::APP(1), &exif)], None);
        let source = open(bytes.clone());
        let expected = orient(&upright, value);
        assert_eq!(decode(bytes.clone()), expected, "orientation {value}");
        let shown = detail(&source, "orientation");
        assert_eq!(shown, (value != 1).then(|| value.to_string()));
        // Reduced, then turned.
        let Source::Jpeg(jpeg) = &source else {
            panic!("not a JPEG")
        };
        let reduced = read_all(jpeg.rows(4).unwrap()).unwrap();
        assert_close(
            &reduced,
            &box_down(&expected, 4),
            25.0,
            &format!("1/4 orientation {value}"),
        );
        // ImageMagick agrees on what each value means.
        std::fs::write(dir.path("o.jpg"), &bytes).unwrap();
        run(
            "convert",
            &[
                dir.path("o.jpg").to_str().unwrap(),
                "-auto-orient",
                dir.path("o.png").to_str().unwrap(),
            ],
        );
        let magick = decode(std::fs::read(dir.path("o.png")).unwrap());
        assert_close(
            &magick,
            &expected,
            30.0,
            &format!("ImageMagick orientation {value}"),
        );
    }
    // Turning needs the whole image in memory.
    let bytes = jpeg_with(&src, false, &[(Marker::APP(1), &exif_orientation(6))], None);
    let source = open_with(bytes, &tight(1000)).unwrap();
    assert_eq!((source.info().width, source.info().height), (43, 67));
    match source.rows() {
        Err(Error::TooLarge(msg)) => assert!(msg.contains("tiled TIFF"), "{msg}"),
        other => panic!("expected TooLarge, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn jpeg_cmyk_from_imagemagick() {
    let src = photo(96, 64, PixelLayout::Rgb);
    let dir = TempDir::new("jpeg-cmyk");
    write_png(&src, &dir.path("in.png"));
    run(
        "convert",
        &[
            dir.path("in.png").to_str().unwrap(),
            "-colorspace",
            "CMYK",
            "-quality",
            "95",
            dir.path("cmyk.jpg").to_str().unwrap(),
        ],
    );
    let bytes = std::fs::read(dir.path("cmyk.jpg")).unwrap();
    // ImageMagick stores CMYK as YCCK (both come out of libjpeg as Adobe-inverted CMYK).
    let colour = detail(&open(bytes.clone()), "colour");
    assert!(
        matches!(colour.as_deref(), Some("CMYK" | "YCCK")),
        "{colour:?}"
    );
    let got = decode(bytes);
    assert_eq!(got.layout, PixelLayout::Rgb);
    assert_close(&got, &src, 28.0, "CMYK JPEG");
}

#[test]
fn jpeg_adobe_cmyk_from_libjpeg() {
    // libjpeg writes an Adobe marker for CMYK; the samples are Photoshop's inverted ink, so
    // (R, G, B, 255) is the colour (R, G, B) with no black.
    let src = photo(64, 40, PixelLayout::Rgb);
    let cmyk: Vec<u8> = src
        .data
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    let mut comp = Compress::new(ColorSpace::JCS_CMYK);
    comp.set_fastest_defaults();
    comp.set_size(64, 40);
    comp.set_quality(95.0);
    let mut started = comp.start_compress(Vec::new()).unwrap();
    started.write_scanlines(&cmyk).unwrap();
    let bytes = started.finish().unwrap();
    assert_eq!(
        detail(&open(bytes.clone()), "colour").as_deref(),
        Some("CMYK")
    );
    assert_close(&decode(bytes), &src, 30.0, "Adobe CMYK JPEG");
}

#[test]
fn jpeg_icc_is_converted() {
    let src = white_and_green();
    let bytes = jpeg_with(&src, false, &[], Some(&common::adobe_rgb_icc()));
    assert!(open(bytes.clone()).info().icc.is_some());
    assert_adobe_green_converted(&decode(bytes), "JPEG ICC");
}

#[test]
fn jpeg_truncated_is_corrupt_not_grey() {
    let src = photo(120, 90, PixelLayout::Rgb);
    let bytes = gigatile::codec::jpeg::encode(&src, 90).unwrap();
    let cut = bytes[..bytes.len() * 2 / 3].to_vec();
    let source = open(cut);
    match read_all(source.rows().unwrap()) {
        Err(Error::Corrupt(msg)) => assert!(msg.contains("truncated"), "{msg}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_damage_is_clean(&bytes, "JPEG");
    assert_damage_is_clean(&jpeg_with(&src, true, &[], None), "progressive JPEG");
}

// ---------------------------------------------------------------- WebP

#[test]
fn webp_lossy_lossless_alpha() {
    use gigatile::codec::webp::encode;
    let rgb = photo(77, 51, PixelLayout::Rgb);
    let rgba = photo(77, 51, PixelLayout::Rgba);
    let lossy = open(encode(&rgb, Some(90)).unwrap());
    assert_eq!(detail(&lossy, "compression").as_deref(), Some("lossy"));
    assert_close(
        &decode(encode(&rgb, Some(90)).unwrap()),
        &rgb,
        30.0,
        "lossy WebP",
    );
    assert_eq!(decode(encode(&rgb, None).unwrap()), rgb);
    assert_eq!(decode(encode(&rgba, None).unwrap()), rgba);
    let lossy_alpha = decode(encode(&rgba, Some(90)).unwrap());
    assert_eq!(lossy_alpha.layout, PixelLayout::Rgba);
    assert_close(&lossy_alpha, &rgba, 30.0, "lossy WebP with alpha");
    assert_refused_as_too_large(encode(&rgb, None).unwrap(), "WebP");
}

/// Wraps a simple WebP's image chunk in a VP8X file with extra chunks before it.
fn webp_extended(
    simple: &[u8],
    flags: u8,
    width: u32,
    height: u32,
    chunks: &[(&[u8; 4], &[u8])],
) -> Vec<u8> {
    let mut body = b"WEBP".to_vec();
    let mut chunk = |fourcc: &[u8], data: &[u8]| {
        body.extend_from_slice(fourcc);
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        if data.len() % 2 == 1 {
            body.push(0);
        }
    };
    let mut vp8x = vec![flags, 0, 0, 0];
    vp8x.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    chunk(b"VP8X", &vp8x);
    for (fourcc, data) in chunks {
        chunk(*fourcc, data);
    }
    body.extend_from_slice(&simple[12..]);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

#[test]
fn webp_iccp_is_converted_and_animation_refused() {
    let src = white_and_green();
    let simple = gigatile::codec::webp::encode(&src, None).unwrap();
    let icc = common::adobe_rgb_icc();
    let tagged = webp_extended(&simple, 0x20, 8, 8, &[(b"ICCP", &icc)]);
    assert!(open(tagged.clone()).info().icc.is_some());
    assert_adobe_green_converted(&decode(tagged), "WebP ICCP");
    let animated = webp_extended(&simple, 0x02, 8, 8, &[(b"ANIM", &[0; 6])]);
    match open_with(animated, &Limits::default()) {
        Err(Error::Unsupported(msg)) => assert!(msg.contains("animated"), "{msg}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn webp_damage_is_clean() {
    let src = photo(64, 48, PixelLayout::Rgb);
    assert_damage_is_clean(
        &gigatile::codec::webp::encode(&src, Some(80)).unwrap(),
        "lossy WebP",
    );
    assert_damage_is_clean(
        &gigatile::codec::webp::encode(&src, None).unwrap(),
        "lossless WebP",
    );
}

// ---------------------------------------------------------------- fuzzing

type FuzzOne = fn(&[u8]);

fn seeds() -> Vec<(&'static str, FuzzOne, Vec<u8>)> {
    let rgb = photo(40, 30, PixelLayout::Rgb);
    let rgba = photo(40, 30, PixelLayout::Rgba);
    let exif = exif_orientation(6);
    vec![
        (
            "jpeg",
            gigatile::source::jpeg::fuzz_one as FuzzOne,
            gigatile::codec::jpeg::encode(&rgb, 80).unwrap(),
        ),
        (
            "jpeg",
            gigatile::source::jpeg::fuzz_one,
            jpeg_with(
                &rgb,
                true,
                &[(Marker::APP(1), &exif)],
                Some(&common::adobe_rgb_icc()),
            ),
        ),
        (
            "png",
            gigatile::source::png::fuzz_one,
            gigatile::codec::png::encode(&rgba).unwrap(),
        ),
        (
            "png",
            gigatile::source::png::fuzz_one,
            png_bytes(
                40,
                30,
                png::ColorType::Rgb,
                png::BitDepth::Eight,
                &rgb.data,
                |info| {
                    info.interlaced = true;
                    info.icc_profile = Some(Cow::Owned(common::adobe_rgb_icc()));
                },
            ),
        ),
        (
            "webp",
            gigatile::source::webp::fuzz_one,
            gigatile::codec::webp::encode(&rgb, Some(70)).unwrap(),
        ),
        (
            "webp",
            gigatile::source::webp::fuzz_one,
            gigatile::codec::webp::encode(&rgba, None).unwrap(),
        ),
    ]
}

fn fuzz_dir(format: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_cases")
        .join(format)
}

/// Runs one input; a panic saves it under `tests/fuzz_cases/<format>/` and is reported.
fn shake(format: &str, fuzz_one: FuzzOne, data: &[u8]) -> Option<String> {
    if catch_unwind(AssertUnwindSafe(|| fuzz_one(data))).is_ok() {
        return None;
    }
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = fuzz_dir(format).join(format!("crash-{hash:016x}"));
    let _ = std::fs::create_dir_all(fuzz_dir(format));
    let _ = std::fs::write(&path, data);
    Some(path.display().to_string())
}

#[test]
fn fuzz_flipped_and_truncated_inputs() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut crashes = Vec::new();
    for (format, fuzz_one, seed) in seeds() {
        for round in 0..150 {
            let mut data = seed.clone();
            let flips = 1 + next() % 4;
            for _ in 0..flips {
                let at = (next() % data.len() as u64) as usize;
                data[at] ^= 1 << (next() % 8);
            }
            if round % 3 == 0 {
                data.truncate((next() % data.len() as u64) as usize);
            }
            crashes.extend(shake(format, fuzz_one, &data));
        }
    }
    assert!(crashes.is_empty(), "crashing inputs saved: {crashes:?}");
}

#[test]
fn saved_fuzz_cases_stay_fixed() {
    let runners: [(&str, FuzzOne); 4] = [
        ("jpeg", gigatile::source::jpeg::fuzz_one),
        ("png", gigatile::source::png::fuzz_one),
        ("webp", gigatile::source::webp::fuzz_one),
        // Not a source format: the URL parsers' cases are kept alike.
        ("urls", gigatile::protocol::fuzzing::fuzz_one),
    ];
    for (format, fuzz_one) in runners {
        let Ok(entries) = std::fs::read_dir(fuzz_dir(format)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let result = catch_unwind(AssertUnwindSafe(|| fuzz_one(&data)));
            assert!(result.is_ok(), "{} panics", path.display());
        }
    }
}
