//! cli::demo: `gigatile demo`: a procedural scene rendered straight into a pyramid, so deep
//! zoom can be tried with no image at hand.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use gigatile::codec::{EncodeOptions, OutputFormat};
use gigatile::demo::DemoScene;
use gigatile::geometry::Level;
use gigatile::pyramid::build::{build_pyramid, Progress};
use gigatile::pyramid::from_tiff::tiff_pyramid;
use gigatile::render::{render, TileRequest};
use gigatile::source::tiff::TiffFile;
use gigatile::storage::LocalFile;

use super::{progress, BuildArgs};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo pyramid and the tiles written from it.
    #[arg(long, default_value = "demo")]
    dir: PathBuf,
    /// Width of the demo image in pixels.
    #[arg(long, default_value_t = 16384)]
    width: u32,
    /// Height of the demo image in pixels.
    #[arg(long, default_value_t = 12288)]
    height: u32,
    #[command(flatten)]
    build: BuildArgs,
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let path = args
        .dir
        .join(format!("mandelbrot-{}x{}.tif", args.width, args.height));
    if !path.exists() {
        let started = Instant::now();
        let progress = Progress::new();
        let report = progress::with_bar("rendering the demo pyramid", &progress, || {
            build_pyramid(
                Box::new(DemoScene::new(args.width, args.height)),
                &path,
                &args.build.options(),
                &progress,
                &AtomicBool::new(false),
            )
        })?;
        println!(
            "{}: {}×{} demo pyramid, {} levels, {} tiles in {:.1} s",
            path.display(),
            report.width,
            report.height,
            report.levels,
            report.tiles,
            started.elapsed().as_secs_f64()
        );
    }
    let tiff = std::sync::Arc::new(TiffFile::open(
        LocalFile::open_shared(&path)?,
        &gigatile::limits::Limits::default(),
    )?);
    let pyramid = tiff_pyramid(&tiff).context("the demo pyramid is not tiled")?;
    let geometry = pyramid.geometry();
    // The whole image, then a tile deep inside along the set's boundary.
    let deep = Level(0);
    let (cols, rows) = geometry.tile_grid(deep);
    for (level, x, y) in [(geometry.max_level(), 0, 0), (deep, cols / 5, rows / 2)] {
        let region = geometry
            .tile_rect(level, x, y)
            .context("tile outside the demo")?;
        let request = TileRequest {
            level,
            region,
            out_size: (region.width, region.height),
            canvas: None,
            encode: EncodeOptions {
                format: OutputFormat::Jpeg,
                quality: Some(args.build.quality),
            },
            background: [0, 0, 0],
        };
        let out = args.dir.join(format!("tile-{}-{x}-{y}.jpg", level.0));
        std::fs::write(&out, render(&pyramid, &request)?.bytes)?;
        println!("{}: level {} tile ({x}, {y})", out.display(), level.0);
    }
    println!(
        "try: gigatile info {0} ; gigatile tile {0} 2 3 1 -o t.png",
        path.display()
    );
    Ok(())
}
