//! End to end through the library: a source of every format → the pyramid store (served as it
//! is, or built) → every tile of every level rendered → reassembled and compared with a
//! box-filtered reference of the original by PSNR.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use common::{photo, psnr, reference_level, write_png, TempDir};
use gigatile::codec::{self, EncodeOptions, OutputFormat};
use gigatile::geometry::Level;
use gigatile::limits::Limits;
use gigatile::pyramid::build::{BaseStorage, BuildOptions, Progress};
use gigatile::pyramid::levels::Pyramid;
use gigatile::pyramid::store::{Prepared, PyramidStore};
use gigatile::raster::{PixelLayout, Raster};
use gigatile::render::{render, TileRequest, Transform};

fn store(dir: &TempDir, base: BaseStorage) -> PyramidStore {
    let options = BuildOptions {
        quality: 90,
        base,
        ..BuildOptions::default()
    };
    PyramidStore::new(dir.path("pyramids"), options, Limits::default())
}

/// The store's pyramid for a file, built when needed; says which it was.
fn pyramid(store: &PyramidStore, file: &Path) -> (Pyramid, &'static str) {
    let id = file.to_string_lossy().into_owned();
    match store.prepare(&id, file).unwrap() {
        Prepared::Source(p) => (p, "source"),
        Prepared::Built(p) => (p, "built"),
        Prepared::Preview(_) | Prepared::Missing => {
            let built = store
                .build(
                    &id,
                    file,
                    &Progress::new(),
                    &AtomicBool::new(false),
                    &mut |_| {},
                )
                .unwrap();
            // Built once: asking again finds it.
            assert!(matches!(
                store.prepare(&id, file).unwrap(),
                Prepared::Built(_)
            ));
            (built, "built")
        }
    }
}

/// Renders every tile of a level as PNG (lossless output) and reassembles the level.
fn render_level(p: &Pyramid, level: Level) -> Raster {
    let g = p.geometry();
    let (w, h) = g.level_size(level);
    let (cols, rows) = g.tile_grid(level);
    let mut out: Option<Raster> = None;
    for row in 0..rows {
        for col in 0..cols {
            let region = g.tile_rect(level, col, row).unwrap();
            let req = TileRequest {
                level,
                region,
                out_size: (region.width, region.height),
                canvas: None,
                encode: EncodeOptions {
                    format: OutputFormat::Png,
                    quality: None,
                },
                background: [0, 0, 0],
                transform: Transform::NONE,
            };
            let tile = common::decode_png(
                &render(p, &req, &gigatile::memory::MemoryBudget::unlimited())
                    .unwrap()
                    .bytes,
            );
            assert_eq!((tile.width, tile.height), (region.width, region.height));
            let canvas = out.get_or_insert_with(|| {
                Raster::filled(w, h, tile.layout, &vec![0; tile.layout.channels()])
            });
            canvas.paste(&tile, region.x, region.y);
        }
    }
    out.unwrap()
}

/// Checks every level of the pyramid against the reference with a PSNR floor.
fn check_levels(p: &Pyramid, original: &Raster, min_db: f64, what: &str) {
    let g = p.geometry();
    assert_eq!(
        (g.width, g.height),
        (original.width, original.height),
        "{what}"
    );
    for k in 0..g.level_count() {
        let got = render_level(p, Level(k));
        let want = reference_level(original, k).to_layout(got.layout);
        let db = psnr(&got, &want);
        assert!(
            db >= min_db,
            "{what}, level {k}: PSNR {db:.1} dB < {min_db}"
        );
    }
}

#[test]
fn jpeg_source_is_built_and_every_level_matches() {
    let dir = TempDir::new("pipe-jpeg");
    let original = photo(1000, 700, PixelLayout::Rgb);
    let file = dir.path("photo.jpg");
    std::fs::write(&file, codec::jpeg::encode(&original, 95).unwrap()).unwrap();
    let (p, how) = pyramid(&store(&dir, BaseStorage::Jpeg), &file);
    assert_eq!(how, "built");
    check_levels(&p, &original, 30.0, "jpeg");
}

#[test]
fn png_with_alpha_keeps_alpha_through_the_pyramid() {
    let dir = TempDir::new("pipe-png");
    let original = photo(700, 300, PixelLayout::Rgba);
    let file = dir.path("photo.png");
    write_png(&original, &file);
    let (p, _) = pyramid(&store(&dir, BaseStorage::Jpeg), &file);
    assert_eq!(p.layout(), PixelLayout::Rgba);
    check_levels(&p, &original, 40.0, "png rgba");
}

#[test]
fn lossless_base_serves_full_resolution_exactly() {
    let dir = TempDir::new("pipe-lossless");
    let original = photo(600, 520, PixelLayout::Rgb);
    let file = dir.path("photo.png");
    write_png(&original, &file);
    let (p, _) = pyramid(&store(&dir, BaseStorage::Lossless), &file);
    assert_eq!(render_level(&p, Level(0)), original);
    check_levels(&p, &original, 30.0, "lossless base");
}

#[test]
fn lossless_webp_source_is_built() {
    let dir = TempDir::new("pipe-webp");
    let original = photo(640, 480, PixelLayout::Rgb);
    let file = dir.path("photo.webp");
    std::fs::write(&file, codec::webp::encode(&original, None).unwrap()).unwrap();
    let (p, _) = pyramid(&store(&dir, BaseStorage::Jpeg), &file);
    check_levels(&p, &original, 30.0, "webp");
}

#[test]
fn tiled_pyramidal_tiff_is_served_as_it_is_and_striped_tiff_is_built() {
    let dir = TempDir::new("pipe-tiff");
    let original = photo(1100, 600, PixelLayout::Rgb);
    let png = dir.path("photo.png");
    write_png(&original, &png);
    let tiled = dir.path("pyramid.tif");
    let striped = dir.path("strips.tif");
    let png_arg = png.to_str().unwrap();
    common::run(
        "vips",
        &[
            "tiffsave",
            png_arg,
            tiled.to_str().unwrap(),
            "--tile",
            "--pyramid",
            "--compression",
            "jpeg",
            "--Q",
            "95",
            "--tile-width",
            "256",
            "--tile-height",
            "256",
        ],
    );
    common::run(
        "vips",
        &[
            "tiffsave",
            png_arg,
            striped.to_str().unwrap(),
            "--compression",
            "lzw",
        ],
    );
    let s = store(&dir, BaseStorage::Jpeg);
    let (p, how) = pyramid(&s, &tiled);
    assert_eq!(how, "source");
    check_levels(&p, &original, 30.0, "vips pyramid");
    // Interior tiles of the stored levels pass through untouched.
    let req = TileRequest {
        level: Level(0),
        region: gigatile::raster::Rect::new(256, 256, 256, 256),
        out_size: (256, 256),
        canvas: None,
        encode: EncodeOptions {
            format: OutputFormat::Jpeg,
            quality: Some(85),
        },
        background: [0, 0, 0],
        transform: Transform::NONE,
    };
    assert!(
        render(&p, &req, &gigatile::memory::MemoryBudget::unlimited())
            .unwrap()
            .passthrough
    );
    let (p, how) = pyramid(&s, &striped);
    assert_eq!(how, "built");
    check_levels(&p, &original, 30.0, "striped tiff");
}

#[test]
fn a_changed_source_gets_a_new_pyramid() {
    let dir = TempDir::new("pipe-change");
    let file = dir.path("photo.png");
    write_png(&photo(300, 300, PixelLayout::Rgb), &file);
    let s = store(&dir, BaseStorage::Jpeg);
    let id = file.to_string_lossy().into_owned();
    pyramid(&s, &file);
    // Replace the file with another picture of another size.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_png(&photo(200, 100, PixelLayout::Gray), &file);
    assert!(matches!(s.prepare(&id, &file).unwrap(), Prepared::Missing));
    let (p, _) = pyramid(&s, &file);
    assert_eq!((p.geometry().width, p.geometry().height), (200, 100));
}

#[test]
fn a_large_jpeg_gets_a_preview_of_the_coarse_levels_first() {
    use std::sync::atomic::Ordering;
    let dir = TempDir::new("pipe-preview");
    let original = photo(4400, 3000, PixelLayout::Rgb);
    let file = dir.path("big.jpg");
    std::fs::write(&file, codec::jpeg::encode(&original, 90).unwrap()).unwrap();
    let s = store(&dir, BaseStorage::Jpeg);
    let id = "big.jpg";
    // Cancel right after the preview: what remains is the preview, served as such.
    let cancel = AtomicBool::new(false);
    let mut previews = 0;
    let result = s.build(id, &file, &Progress::new(), &cancel, &mut |preview| {
        previews += 1;
        assert_eq!(preview.finest_level(), Some(Level(3)));
        cancel.store(true, Ordering::Relaxed);
    });
    assert!(
        matches!(result, Err(gigatile::Error::Cancelled)),
        "{result:?}"
    );
    assert_eq!(previews, 1);
    let Prepared::Preview(preview) = s.prepare(id, &file).unwrap() else {
        panic!("the preview should be what exists");
    };
    // The whole image from the preview matches the reference of its coarsest level.
    let top = preview.geometry().max_level();
    let got = render_level(&preview, top);
    assert!(psnr(&got, &reference_level(&original, top.0)) > 28.0);
    // A complete build replaces the preview and removes its file.
    let progress = Progress::new();
    let full = s
        .build(id, &file, &progress, &AtomicBool::new(false), &mut |_| {})
        .unwrap();
    assert_eq!(progress.fraction(), 1.0);
    assert_eq!(full.finest_level(), Some(Level(0)));
    assert!(matches!(s.prepare(id, &file).unwrap(), Prepared::Built(_)));
    let leftovers: Vec<_> = std::fs::read_dir(s.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}
