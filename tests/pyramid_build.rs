//! The pyramid builder end to end: BigTIFFs checked with libtiff's tools and decoded by libvips.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use common::{assert_close, photo, TempDir};
use gigatile::geometry::{Geometry, Level};
use gigatile::pyramid::build::{build_pyramid, BaseStorage, BuildOptions, BuildReport, Progress};
use gigatile::raster::{PixelLayout, Raster};
use gigatile::source::RowReader;
use gigatile::{Error, Result};

/// Serves a raster's rows in uneven chunks; optionally fails or raises a cancel flag after a
/// number of rows.
struct UnevenRows {
    rows: gigatile::source::RasterRows,
    next_row: u32,
    calls: usize,
    fail_after: Option<u32>,
    cancel_after: Option<(u32, Arc<AtomicBool>)>,
}

impl UnevenRows {
    fn new(raster: Raster) -> UnevenRows {
        UnevenRows {
            rows: gigatile::source::RasterRows::new(raster),
            next_row: 0,
            calls: 0,
            fail_after: None,
            cancel_after: None,
        }
    }
}

impl RowReader for UnevenRows {
    fn width(&self) -> u32 {
        self.rows.width()
    }

    fn height(&self) -> u32 {
        self.rows.height()
    }

    fn layout(&self) -> PixelLayout {
        self.rows.layout()
    }

    fn read_rows(&mut self, buf: &mut [u8]) -> Result<u32> {
        if self.fail_after.is_some_and(|n| self.next_row >= n) {
            return Err(Error::corrupt("source broke mid-way"));
        }
        if let Some((n, flag)) = &self.cancel_after {
            if self.next_row >= *n {
                flag.store(true, Ordering::Relaxed);
            }
        }
        const CHUNKS: [usize; 5] = [1, 3, 7, 2, 5];
        self.calls += 1;
        let stride = self.width() as usize * self.layout().channels();
        let rows = CHUNKS[self.calls % CHUNKS.len()].min(buf.len() / stride);
        let read = self.rows.read_rows(&mut buf[..rows * stride])?;
        self.next_row += read;
        Ok(read)
    }
}

fn options(base: BaseStorage, quality: u8) -> BuildOptions {
    BuildOptions {
        quality,
        base,
        threads: 2,
    }
}

fn build(dir: &TempDir, source: &Raster, options: &BuildOptions) -> (PathBuf, BuildReport) {
    let out = dir.path("pyramid.tif");
    let progress = Progress::new();
    let rows = Box::new(UnevenRows::new(source.clone()));
    let report = build_pyramid(rows, &out, options, &progress, &AtomicBool::new(false)).unwrap();
    assert_eq!(progress.fraction(), 1.0);
    assert_eq!(report.bytes, std::fs::metadata(&out).unwrap().len());
    (out, report)
}

fn output(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?} failed");
    assert!(
        out.stderr.is_empty(),
        "{cmd} {args:?} complained: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Checks with tiffinfo and tiffdump that the file is a BigTIFF with one tiled IFD per level of
/// the geometry, reduced levels marked as such, and that libtiff decodes every tile quietly
/// (`tiffcp -c none`; `tiffinfo -D` cannot display subsampled YCbCr, even from libvips).
fn check_structure(path: &Path, geometry: &Geometry) -> String {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"II\x2B\x00", "not a little-endian BigTIFF");
    assert!(output("tiffdump", &[path.to_str().unwrap()]).contains("BigTIFF"));
    let info = output("tiffinfo", &[path.to_str().unwrap()]);
    let decoded = path.with_file_name("decoded.tif");
    output(
        "tiffcp",
        &[
            "-c",
            "none",
            path.to_str().unwrap(),
            decoded.to_str().unwrap(),
        ],
    );
    let levels = geometry.level_count() as usize;
    assert_eq!(info.matches("TIFF Directory").count(), levels, "{info}");
    assert_eq!(info.matches("reduced-resolution").count(), levels - 1);
    assert_eq!(
        info.matches("Tile Width: 256 Tile Length: 256").count(),
        levels
    );
    for k in 0..levels as u32 {
        let (w, h) = geometry.level_size(Level(k));
        assert!(info.contains(&format!("Image Width: {w} Image Length: {h}\n")));
    }
    info
}

/// Decodes one IFD of the file with libvips.
fn vips_decode(path: &Path, page: u32, layout: PixelLayout) -> Raster {
    let png = path.with_file_name(format!("page{page}.png"));
    let input = format!("{}[page={page}]", path.display());
    common::run("vips", &["copy", &input, png.to_str().unwrap()]);
    let file = std::io::BufReader::new(std::fs::File::open(&png).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut data = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut data).unwrap();
    data.truncate(frame.buffer_size());
    Raster::from_data(frame.width, frame.height, layout, data).unwrap()
}

/// The reference 2×2 box reduction: each pixel the rounded mean of the pixels that exist.
fn reduce(src: &Raster) -> Raster {
    let channels = src.layout.channels();
    let (w, h) = (src.width.div_ceil(2), src.height.div_ceil(2));
    let mut data = Vec::with_capacity(w as usize * h as usize * channels);
    for y in 0..h {
        for x in 0..w {
            for c in 0..channels {
                let mut sum = 0u32;
                let mut n = 0u32;
                for sy in (2 * y..2 * y + 2).filter(|&v| v < src.height) {
                    for sx in (2 * x..2 * x + 2).filter(|&v| v < src.width) {
                        sum += u32::from(src.row(sy)[sx as usize * channels + c]);
                        n += 1;
                    }
                }
                data.push(((sum + n / 2) / n) as u8);
            }
        }
    }
    Raster::from_data(w, h, src.layout, data).unwrap()
}

/// Builds, checks the structure, and compares every level with the reference reduction:
/// exactly where stored losslessly, by PSNR where JPEG.
fn round_trip(width: u32, height: u32, layout: PixelLayout, base: BaseStorage, quality: u8) {
    let dir = TempDir::new(&format!("pyr-{width}x{height}-{}-{base:?}", layout.name()));
    let source = photo(width, height, layout);
    let (path, report) = build(&dir, &source, &options(base, quality));
    let geometry = Geometry::new(width, height);
    assert_eq!(report.levels, geometry.level_count());
    assert_eq!(report.tiles, geometry.total_tiles());
    check_structure(&path, &geometry);
    let mut expected = source;
    for k in 0..report.levels {
        let decoded = vips_decode(&path, k, layout);
        let lossless = layout.has_alpha() || (k == 0 && base == BaseStorage::Lossless);
        let what = format!("{width}×{height} {} level {k}", layout.name());
        if lossless {
            assert!(decoded == expected, "{what} differs");
        } else {
            assert_close(&decoded, &expected, 30.0, &what);
        }
        expected = reduce(&expected);
    }
}

#[test]
fn rgb_jpeg_pyramid() {
    round_trip(1000, 700, PixelLayout::Rgb, BaseStorage::Jpeg, 85);
}

#[test]
fn rgb_lossless_base() {
    round_trip(1000, 700, PixelLayout::Rgb, BaseStorage::Lossless, 85);
}

#[test]
fn gray_jpeg_and_lossless() {
    round_trip(257, 257, PixelLayout::Gray, BaseStorage::Jpeg, 85);
    round_trip(257, 257, PixelLayout::Gray, BaseStorage::Lossless, 85);
}

#[test]
fn alpha_is_kept_losslessly_at_every_level() {
    round_trip(1000, 700, PixelLayout::Rgba, BaseStorage::Jpeg, 85);
    round_trip(257, 257, PixelLayout::GrayAlpha, BaseStorage::Jpeg, 85);
}

#[test]
fn degenerate_sizes() {
    for (w, h) in [(1, 1), (1, 600), (600, 1), (256, 256)] {
        round_trip(w, h, PixelLayout::Rgb, BaseStorage::Jpeg, 90);
        round_trip(w, h, PixelLayout::GrayAlpha, BaseStorage::Jpeg, 85);
    }
}

#[test]
fn chroma_subsampling_tag_matches_the_tiles() {
    for (quality, tag) in [
        (85, "YCbCr Subsampling: 2, 2"),
        (95, "YCbCr Subsampling: 1, 1"),
    ] {
        let dir = TempDir::new(&format!("chroma-{quality}"));
        let source = photo(300, 300, PixelLayout::Rgb);
        let (path, _) = build(&dir, &source, &options(BaseStorage::Jpeg, quality));
        let info = check_structure(&path, &Geometry::new(300, 300));
        assert_eq!(info.matches(tag).count(), 2, "{info}");
        assert!(info.contains("Software: gigatile"));
    }
}

fn leftovers(dir: &TempDir) -> Vec<String> {
    std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn cancellation_leaves_nothing() {
    let dir = TempDir::new("pyr-cancel");
    let cancel = Arc::new(AtomicBool::new(false));
    let mut rows = UnevenRows::new(photo(600, 900, PixelLayout::Rgb));
    rows.cancel_after = Some((300, cancel.clone()));
    let out = dir.path("pyramid.tif");
    let progress = Progress::new();
    let result = build_pyramid(
        Box::new(rows),
        &out,
        &options(BaseStorage::Jpeg, 85),
        &progress,
        &cancel,
    );
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    assert!(progress.fraction() < 1.0);
    assert_eq!(leftovers(&dir), Vec::<String>::new());
}

#[test]
fn a_failing_source_leaves_the_old_file_untouched() {
    let dir = TempDir::new("pyr-fail");
    let out = dir.path("pyramid.tif");
    std::fs::write(&out, b"previous").unwrap();
    let mut rows = UnevenRows::new(photo(600, 900, PixelLayout::Rgb));
    rows.fail_after = Some(500);
    let result = build_pyramid(
        Box::new(rows),
        &out,
        &options(BaseStorage::Lossless, 85),
        &Progress::new(),
        &AtomicBool::new(false),
    );
    assert!(matches!(result, Err(Error::Corrupt(_))), "{result:?}");
    assert_eq!(std::fs::read(&out).unwrap(), b"previous");
    assert_eq!(leftovers(&dir), vec!["pyramid.tif".to_string()]);
}

#[test]
fn a_missing_folder_is_an_io_error() {
    let dir = TempDir::new("pyr-nofolder");
    let out = dir.path("absent/pyramid.tif");
    let rows = Box::new(UnevenRows::new(photo(10, 10, PixelLayout::Rgb)));
    let result = build_pyramid(
        rows,
        &out,
        &BuildOptions::default(),
        &Progress::new(),
        &AtomicBool::new(false),
    );
    assert!(matches!(result, Err(Error::Io(_))), "{result:?}");
}

/// Photo-like rows of any size, generated on the fly by repeating a 2000×1500 photo (as
/// `vips replicate` does).
struct SyntheticRows {
    tile: Raster,
    width: u32,
    height: u32,
    next_row: u32,
}

impl RowReader for SyntheticRows {
    fn width(&self) -> u32 {
        self.width
    }

    fn height(&self) -> u32 {
        self.height
    }

    fn layout(&self) -> PixelLayout {
        self.tile.layout
    }

    fn read_rows(&mut self, buf: &mut [u8]) -> Result<u32> {
        let stride = self.width as usize * 3;
        let rows = ((buf.len() / stride) as u32).min(self.height - self.next_row);
        for (i, out) in buf.chunks_exact_mut(stride).take(rows as usize).enumerate() {
            let src = self.tile.row((self.next_row + i as u32) % self.tile.height);
            for dst in out.chunks_mut(src.len()) {
                dst.copy_from_slice(&src[..dst.len()]);
            }
        }
        self.next_row += rows;
        Ok(rows)
    }
}

/// Measures a 20000×15000 RGB build: `cargo test --release --test pyramid_build -- --ignored
/// --nocapture` (`GIGATILE_BENCH_OUT` chooses where the file goes, `GIGATILE_BENCH_SIZE` another
/// size, e.g. `60000x40000`). It leaves the repeated
/// photo beside the output, so that a peer can build the same image:
/// `vips replicate photo.png big.v 10 10` then `vips tiffsave big.v x.tif --tile --pyramid
/// --compression jpeg --Q 85 --bigtiff`.
#[test]
#[ignore]
fn bench_build() {
    let out = std::env::var_os("GIGATILE_BENCH_OUT").map_or_else(
        || std::env::temp_dir().join("gigatile-bench.tif"),
        PathBuf::from,
    );
    let size = std::env::var("GIGATILE_BENCH_SIZE").unwrap_or_else(|_| "20000x15000".into());
    let (width, height) = size.split_once('x').expect("GIGATILE_BENCH_SIZE is WxH");
    let tile = photo(2000, 1500, PixelLayout::Rgb);
    common::write_png(&tile, &out.with_file_name("photo.png"));
    let rows = SyntheticRows {
        tile,
        width: width.parse().unwrap(),
        height: height.parse().unwrap(),
        next_row: 0,
    };
    let started = Instant::now();
    let report = build_pyramid(
        Box::new(rows),
        &out,
        &BuildOptions::default(),
        &Progress::new(),
        &AtomicBool::new(false),
    )
    .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}×{}: {} levels, {} tiles, {} bytes in {seconds:.2} s: {:.0} tiles/s, {:.1} Mpx/s",
        report.width,
        report.height,
        report.levels,
        report.tiles,
        report.bytes,
        report.tiles as f64 / seconds,
        f64::from(report.width) * f64::from(report.height) / seconds / 1e6
    );
}
