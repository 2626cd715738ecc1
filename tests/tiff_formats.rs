//! TIFF/BigTIFF reading: files written by libvips and libtiff's tiffcp at test time, compared
//! pixel by pixel with the image they were made from; error cases; a byte-flipping fuzz pass.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_close, photo, run, write_png, TempDir};
use gigatile::codec::jpeg;
use gigatile::color::{ColorTransform, InputModel};
use gigatile::limits::Limits;
use gigatile::raster::{PixelLayout, Raster};
use gigatile::source::tiff::{fuzz_one, Chunking, Compression, ImageRole, TiffFile};
use gigatile::source::SourceFormat;
use gigatile::storage::{LocalFile, MemBytes};
use gigatile::Error;

const LOSSLESS: f64 = f64::INFINITY;

fn open(path: &Path) -> TiffFile {
    TiffFile::open(LocalFile::open_shared(path).unwrap(), &Limits::default()).unwrap()
}

fn open_bytes(bytes: Vec<u8>) -> gigatile::Result<TiffFile> {
    TiffFile::open(MemBytes::shared(bytes), &Limits::default())
}

/// The original as a PNG in `dir`.
fn source_png(dir: &TempDir, original: &Raster) -> PathBuf {
    let png = dir.path("in.png");
    write_png(original, &png);
    png
}

/// `vips tiffsave` of `input` with extra options; returns the file written.
fn vips_save(dir: &TempDir, input: &Path, name: &str, options: &[&str]) -> PathBuf {
    let out = dir.path(name);
    let mut args = vec!["tiffsave", input.to_str().unwrap(), out.to_str().unwrap()];
    args.extend_from_slice(options);
    run("vips", &args);
    out
}

/// `tiffcp` with options; returns the file written.
fn tiffcp(dir: &TempDir, input: &Path, name: &str, options: &[&str]) -> PathBuf {
    let out = dir.path(name);
    let mut args = options.to_vec();
    args.extend_from_slice(&[input.to_str().unwrap(), out.to_str().unwrap()]);
    run("tiffcp", &args);
    out
}

/// An image reassembled from its chunks, checking each chunk's cropped size.
fn read_by_chunks(file: &TiffFile, image: usize) -> Raster {
    let img = &file.images()[image];
    let (cols, rows) = file.chunk_grid(image);
    let mut out = Raster::filled(
        img.width,
        img.height,
        img.layout,
        &vec![0; img.layout.channels()],
    );
    let (mut y, mut x) = (0, 0);
    for row in 0..rows {
        let mut height = 0;
        for col in 0..cols {
            let chunk = file.read_chunk(image, col, row).unwrap();
            assert_eq!(chunk.layout, img.layout);
            assert!(x + chunk.width <= img.width && y + chunk.height <= img.height);
            out.paste(&chunk, x, y);
            x += chunk.width;
            height = chunk.height;
        }
        assert_eq!(x, img.width, "chunk row {row} width");
        x = 0;
        y += height;
    }
    assert_eq!(y, img.height);
    out
}

/// An image read through `rows()`, in odd-sized batches.
fn read_by_rows(file: &TiffFile, image: usize) -> Raster {
    let mut rows = file.rows(image).unwrap();
    let stride = rows.width() as usize * rows.layout().channels();
    let mut data = Vec::new();
    let mut buf = vec![0; stride * 37];
    loop {
        let n = rows.read_rows(&mut buf).unwrap() as usize;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n * stride]);
    }
    Raster::from_data(rows.width(), rows.height(), rows.layout(), data).unwrap()
}

/// Reads the primary both ways, checks them equal, and compares with `expected`.
fn check_primary(file: &TiffFile, expected: &Raster, min_db: f64, what: &str) {
    let primary = file.primary();
    let img = &file.images()[primary];
    assert_eq!(img.role, ImageRole::Primary);
    assert_eq!(
        (img.width, img.height),
        (expected.width, expected.height),
        "{what}"
    );
    let chunks = read_by_chunks(file, primary);
    assert_close(&chunks, expected, min_db, what);
    assert_eq!(
        read_by_rows(file, primary),
        chunks,
        "{what}: rows() differ from chunks"
    );
}

/// Checks the reduced levels halve (with floor) down from the primary and decode.
fn check_levels(file: &TiffFile, expected_count: usize) {
    let levels: Vec<usize> = (0..file.images().len())
        .filter(|&i| file.images()[i].role == ImageRole::Reduced)
        .collect();
    assert_eq!(levels.len(), expected_count, "{file:?}");
    let primary = &file.images()[file.primary()];
    let (mut w, mut h) = (primary.width, primary.height);
    for &level in &levels {
        (w, h) = ((w / 2).max(1), (h / 2).max(1));
        let img = &file.images()[level];
        assert_eq!((img.width, img.height), (w, h));
        let r = read_by_chunks(file, level);
        assert_eq!((r.width, r.height), (w, h));
    }
}

#[test]
fn vips_tiled_pyramids_in_every_compression() {
    let dir = TempDir::new("tiff-vips");
    let original = photo(1000, 700, PixelLayout::Rgb);
    let png = source_png(&dir, &original);
    let cases: &[(&str, &[&str], Compression, f64)] = &[
        (
            "none",
            &["--compression", "none"],
            Compression::None,
            LOSSLESS,
        ),
        ("lzw", &["--compression", "lzw"], Compression::Lzw, LOSSLESS),
        (
            "lzw-pred",
            &["--compression", "lzw", "--predictor", "horizontal"],
            Compression::Lzw,
            LOSSLESS,
        ),
        (
            "deflate-pred",
            &["--compression", "deflate", "--predictor", "horizontal"],
            Compression::Deflate,
            LOSSLESS,
        ),
        (
            "packbits",
            &["--compression", "packbits"],
            Compression::PackBits,
            LOSSLESS,
        ),
        (
            "zstd",
            &["--compression", "zstd"],
            Compression::Zstd,
            LOSSLESS,
        ),
        (
            "jpeg",
            &["--compression", "jpeg", "--Q", "90"],
            Compression::Jpeg,
            30.0,
        ),
        (
            "jpeg-420",
            &["--compression", "jpeg", "--Q", "75"],
            Compression::Jpeg,
            30.0,
        ),
        (
            "rgbjpeg",
            &["--compression", "jpeg", "--Q", "90", "--rgbjpeg"],
            Compression::Jpeg,
            30.0,
        ),
    ];
    for (name, options, compression, min_db) in cases {
        let mut args = vec![
            "--tile",
            "--tile-width",
            "256",
            "--tile-height",
            "256",
            "--pyramid",
        ];
        args.extend_from_slice(options);
        let file = open(&vips_save(&dir, &png, &format!("{name}.tif"), &args));
        let primary = &file.images()[file.primary()];
        assert_eq!(primary.compression, *compression, "{name}");
        assert_eq!(
            primary.chunking,
            Chunking::Tiles {
                width: 256,
                height: 256
            }
        );
        assert_eq!(file.chunk_grid(file.primary()), (4, 3));
        check_primary(&file, &original, *min_db, name);
        check_levels(&file, 2);
        let info = file.info();
        assert_eq!(info.format, SourceFormat::Tiff);
        assert!(
            info.details
                .contains(&("levels", "500×350, 250×175".to_string())),
            "{info:?}"
        );
    }
}

#[test]
fn subifd_bigtiff_and_edges() {
    let dir = TempDir::new("tiff-subifd");
    let original = photo(300, 257, PixelLayout::Rgb);
    let png = source_png(&dir, &original);
    for (name, extra) in [
        ("sub.tif", &["--subifd"][..]),
        ("big.tif", &["--bigtiff", "--subifd"][..]),
    ] {
        let mut args = vec![
            "--tile",
            "--pyramid",
            "--compression",
            "deflate",
            "--tile-width",
            "128",
            "--tile-height",
            "128",
        ];
        args.extend_from_slice(extra);
        let file = open(&vips_save(&dir, &png, name, &args));
        assert_eq!(file.chunk_grid(file.primary()), (3, 3));
        assert_eq!(file.read_chunk(file.primary(), 2, 2).unwrap().width, 44);
        assert_eq!(file.read_chunk(file.primary(), 2, 2).unwrap().height, 1);
        check_primary(&file, &original, LOSSLESS, name);
        check_levels(&file, 2);
        let big = name == "big.tif";
        let format = if big {
            SourceFormat::BigTiff
        } else {
            SourceFormat::Tiff
        };
        assert_eq!(file.info().format, format);
    }
}

#[test]
fn tiffcp_strips_tiles_byte_orders_and_codecs() {
    let dir = TempDir::new("tiff-tiffcp");
    let original = photo(300, 257, PixelLayout::Rgb);
    let plain = vips_save(&dir, &source_png(&dir, &original), "plain.tif", &[]);
    let cases: &[(&str, &[&str])] = &[
        ("strips-lzw2-be", &["-s", "-r", "16", "-c", "lzw:2", "-B"]),
        ("strips-zstd-le", &["-s", "-r", "16", "-c", "zstd", "-L"]),
        (
            "strips-packbits-be",
            &["-s", "-r", "7", "-c", "packbits", "-B"],
        ),
        (
            "strips-deflate-be",
            &["-s", "-r", "64", "-c", "zip:2", "-B"],
        ),
        (
            "tiles-lzw-be",
            &["-t", "-w", "256", "-l", "256", "-c", "lzw", "-B"],
        ),
        ("tiles-none-be", &["-t", "-w", "64", "-l", "32", "-B"]),
    ];
    for (name, options) in cases {
        let file = open(&tiffcp(&dir, &plain, &format!("{name}.tif"), options));
        check_primary(&file, &original, LOSSLESS, name);
        let byte_order = if options.contains(&"-B") {
            "big-endian (MM)"
        } else {
            "little-endian (II)"
        };
        assert!(file
            .info()
            .details
            .contains(&("byte order", byte_order.to_string())));
    }
    let strips = open(&dir.path("strips-lzw2-be.tif"));
    assert_eq!(
        strips.images()[0].chunking,
        Chunking::Strips { rows_per_strip: 16 }
    );
    assert_eq!(strips.chunk_grid(0), (1, 17));
    assert_eq!(strips.read_chunk(0, 0, 16).unwrap().height, 1);
    assert!(strips
        .info()
        .details
        .contains(&("tiling", "strips of 16 rows".to_string())));
}

#[test]
fn grey_alpha_and_min_is_white() {
    let dir = TempDir::new("tiff-layouts");
    for layout in [PixelLayout::Gray, PixelLayout::GrayAlpha, PixelLayout::Rgba] {
        let original = photo(300, 257, layout);
        let png = source_png(&dir, &original);
        let file = open(&vips_save(
            &dir,
            &png,
            "t.tif",
            &[
                "--tile",
                "--compression",
                "lzw",
                "--predictor",
                "horizontal",
            ],
        ));
        assert_eq!(file.images()[0].layout, layout);
        check_primary(&file, &original, LOSSLESS, layout.name());
        let strips = open(&tiffcp(
            &dir,
            &dir.path("t.tif"),
            "s.tif",
            &["-s", "-r", "10", "-c", "packbits", "-B"],
        ));
        check_primary(&strips, &original, LOSSLESS, layout.name());
    }
    let original = photo(300, 257, PixelLayout::Gray);
    let png = source_png(&dir, &original);
    let file = open(&vips_save(&dir, &png, "mw.tif", &["--miniswhite"]));
    assert!(file
        .info()
        .details
        .contains(&("photometric", "min-is-white grey".to_string())));
    check_primary(&file, &original, LOSSLESS, "min-is-white");
}

#[test]
fn sixteen_bit_scaled_to_eight() {
    let dir = TempDir::new("tiff-16");
    for layout in [PixelLayout::Rgb, PixelLayout::Gray, PixelLayout::Rgba] {
        let original = photo(300, 257, layout);
        let png = source_png(&dir, &original);
        let wide = dir.path("wide.v");
        run(
            "vips",
            &[
                "linear",
                png.to_str().unwrap(),
                wide.to_str().unwrap(),
                "257",
                "0",
            ],
        );
        let ushort = dir.path("ushort.v");
        run(
            "vips",
            &[
                "cast",
                wide.to_str().unwrap(),
                ushort.to_str().unwrap(),
                "ushort",
            ],
        );
        let tiled = vips_save(
            &dir,
            &ushort,
            "t16.tif",
            &[
                "--tile",
                "--compression",
                "lzw",
                "--predictor",
                "horizontal",
            ],
        );
        let file = open(&tiled);
        assert!(file
            .info()
            .details
            .contains(&("bits per sample", "16".to_string())));
        check_primary(&file, &original, LOSSLESS, "16-bit LE predictor");
        let be = tiffcp(
            &dir,
            &tiled,
            "be16.tif",
            &["-s", "-r", "32", "-c", "lzw:2", "-B"],
        );
        check_primary(&open(&be), &original, LOSSLESS, "16-bit BE predictor");
    }
}

#[test]
fn jpeg_chunks_pass_through() {
    let dir = TempDir::new("tiff-jpeg");
    let original = photo(600, 300, PixelLayout::Rgb);
    let png = source_png(&dir, &original);
    for (name, extra) in [("ycc.tif", &[][..]), ("rgb.tif", &["--rgbjpeg"][..])] {
        let mut args = vec!["--tile", "--tile-width", "256", "--tile-height", "256"];
        args.extend_from_slice(&["--compression", "jpeg", "--Q", "85"]);
        args.extend_from_slice(extra);
        let file = open(&vips_save(&dir, &png, name, &args));
        let (cols, rows) = file.chunk_grid(0);
        for row in 0..rows {
            for col in 0..cols {
                let decoded = file.read_chunk(0, col, row).unwrap();
                match file.jpeg_chunk(0, col, row).unwrap() {
                    Some(bytes) => {
                        assert_eq!(
                            jpeg::decode(&bytes).unwrap(),
                            decoded,
                            "{name} ({col}, {row})"
                        );
                        let x = col * 256;
                        let y = row * 256;
                        let part = original.crop(gigatile::raster::Rect::new(x, y, 256, 256));
                        assert_close(&decoded, &part, 30.0, name);
                    }
                    // Edge tiles extend past the image.
                    None => assert!(col == cols - 1 || row == rows - 1, "{name} ({col}, {row})"),
                }
            }
        }
        assert!(file.jpeg_chunk(0, 0, 0).unwrap().is_some());
    }
    let lzw = open(&vips_save(
        &dir,
        &png,
        "lzw.tif",
        &["--tile", "--compression", "lzw"],
    ));
    assert_eq!(lzw.jpeg_chunk(0, 0, 0).unwrap(), None);
}

#[test]
fn icc_profiles_convert_to_srgb_and_cmyk_reads() {
    let dir = TempDir::new("tiff-icc");
    let original = photo(200, 150, PixelLayout::Rgb);
    let png = source_png(&dir, &original);
    // Embed a wide-gamut profile without converting: the reader must convert to sRGB.
    let profile = common::adobe_rgb_icc();
    let wide = dir.path("wide.icc");
    std::fs::write(&wide, &profile).unwrap();
    let options = [
        "--tile",
        "--compression",
        "jpeg",
        "--profile",
        wide.to_str().unwrap(),
    ];
    let file = open(&vips_save(&dir, &png, "wide.tif", &options));
    let mut expected = original.clone();
    ColorTransform::to_srgb(&profile, InputModel::Layout(PixelLayout::Rgb))
        .expect("a wide-gamut profile needs a transform")
        .apply(&mut expected.data);
    check_primary(&file, &expected, 30.0, "wide-gamut ICC");
    assert!(file.info().icc.is_some());
    assert_eq!(
        file.jpeg_chunk(0, 0, 0).unwrap(),
        None,
        "non-sRGB JPEG must not pass through"
    );
    let cmyk = dir.path("cmyk.tif");
    run(
        "vips",
        &[
            "colourspace",
            png.to_str().unwrap(),
            cmyk.to_str().unwrap(),
            "cmyk",
        ],
    );
    let file = open(&cmyk);
    assert_eq!(file.images()[0].layout, PixelLayout::Rgb);
    // Compare with libvips' own conversion back to sRGB (gamut clipping makes the original a
    // poor reference).
    let back = dir.path("back.tif");
    run(
        "vips",
        &[
            "colourspace",
            cmyk.to_str().unwrap(),
            back.to_str().unwrap(),
            "srgb",
        ],
    );
    let expected = read_by_chunks(&open(&back), 0);
    check_primary(&file, &expected, 30.0, "CMYK through its profile");
}

#[test]
fn unsupported_variants_are_named() {
    let dir = TempDir::new("tiff-unsupported");
    let original = photo(64, 48, PixelLayout::Rgb);
    let plain = vips_save(&dir, &source_png(&dir, &original), "plain.tif", &[]);
    let planar = tiffcp(&dir, &plain, "planar.tif", &["-p", "separate"]);
    let err =
        TiffFile::open(LocalFile::open_shared(&planar).unwrap(), &Limits::default()).unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported(m) if m.contains("PlanarConfiguration 2")),
        "{err}"
    );
    let float = dir.path("float.tif");
    run(
        "vips",
        &[
            "cast",
            plain.to_str().unwrap(),
            float.to_str().unwrap(),
            "float",
        ],
    );
    let err =
        TiffFile::open(LocalFile::open_shared(&float).unwrap(), &Limits::default()).unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported(m) if m.contains("floating-point")),
        "{err}"
    );
    let tight = Limits {
        max_pixels: 1000,
        ..Limits::default()
    };
    let err = TiffFile::open(LocalFile::open_shared(&plain).unwrap(), &tight).unwrap_err();
    assert!(matches!(err, Error::TooLarge(_)), "{err}");
}

/// A small pyramidal file for the damage tests.
fn small_tiff(dir: &TempDir, name: &str, options: &[&str]) -> Vec<u8> {
    let png = source_png(dir, &photo(64, 48, PixelLayout::Rgb));
    let mut args = vec![
        "--tile",
        "--tile-width",
        "16",
        "--tile-height",
        "16",
        "--pyramid",
    ];
    args.extend_from_slice(options);
    std::fs::read(vips_save(dir, &png, name, &args)).unwrap()
}

/// Reads everything a file offers, returning the first error.
fn read_all(bytes: Vec<u8>) -> gigatile::Result<()> {
    let file = open_bytes(bytes)?;
    for image in 0..file.images().len() {
        let (cols, rows) = file.chunk_grid(image);
        for row in 0..rows {
            for col in 0..cols {
                file.read_chunk(image, col, row)?;
            }
        }
    }
    Ok(())
}

#[test]
fn damaged_files_fail_cleanly() {
    let dir = TempDir::new("tiff-damage");
    let good = small_tiff(&dir, "lzw.tif", &["--compression", "lzw"]);
    read_all(good.clone()).unwrap();
    for cut in [4, 9, 100, good.len() / 3, good.len() / 2, good.len() - 50] {
        let err = read_all(good[..cut].to_vec()).unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)), "cut at {cut}: {err}");
    }
    // Garbage after the header.
    let mut garbage = good[..8].to_vec();
    garbage.extend((0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    assert!(matches!(read_all(garbage), Err(Error::Corrupt(_))));
    // An IFD whose next pointer leads back to itself.
    let mut looped = good.clone();
    let first = u32::from_le_bytes(good[4..8].try_into().unwrap()) as usize;
    let count = u16::from_le_bytes(good[first..first + 2].try_into().unwrap()) as usize;
    let next_at = first + 2 + count * 12;
    looped[next_at..next_at + 4].copy_from_slice(&(first as u32).to_le_bytes());
    let err = open_bytes(looped).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt(m) if m.contains("loop")),
        "{err}"
    );
    // Out-of-range chunk requests.
    let file = open_bytes(good).unwrap();
    assert!(matches!(
        file.read_chunk(0, 4, 0),
        Err(Error::OutOfRange(_))
    ));
    assert!(matches!(
        file.read_chunk(99, 0, 0),
        Err(Error::OutOfRange(_))
    ));
}

/// Deterministic byte flips over small files of several kinds: nothing may panic or hang.
#[test]
fn fuzzed_files_never_panic() {
    let dir = TempDir::new("tiff-fuzz");
    let seeds = [
        small_tiff(
            &dir,
            "f-lzw.tif",
            &["--compression", "lzw", "--predictor", "horizontal"],
        ),
        small_tiff(&dir, "f-jpeg.tif", &["--compression", "jpeg", "--subifd"]),
        small_tiff(&dir, "f-zstd.tif", &["--compression", "zstd", "--bigtiff"]),
        small_tiff(&dir, "f-pack.tif", &["--compression", "packbits"]),
    ];
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for seed in &seeds {
        for _ in 0..600 {
            let mut data = seed.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % data.len() as u64) as usize;
                // Flip bytes mostly in the header and IFDs, where damage matters most.
                let at = if next() % 2 == 0 {
                    at % 512.min(data.len())
                } else {
                    at
                };
                data[at] = match next() % 3 {
                    0 => data[at] ^ (1 << (next() % 8)),
                    1 => 0xFF,
                    _ => next() as u8,
                };
            }
            fuzz_one(&data);
        }
    }
}

/// Inputs that once crashed the reader, kept in tests/fuzz_cases/tiff/.
#[test]
fn kept_fuzz_cases_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_cases/tiff");
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        fuzz_one(&std::fs::read(entry.path()).unwrap());
    }
}
