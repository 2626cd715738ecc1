//! cli::demo: `gigatile demo`: a procedural scene rendered straight into a pyramid, then
//! served, so deep zoom can be tried with no image at hand.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use gigatile::config::SettingsLayer;
use gigatile::demo::DemoScene;
use gigatile::pyramid::build::{build_pyramid, Progress};

use super::progress;
use super::serve::{self, ServeArgs};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Width of the demo image in pixels.
    #[arg(long, default_value_t = 16384)]
    width: u32,
    /// Height of the demo image in pixels.
    #[arg(long, default_value_t = 12288)]
    height: u32,
    #[command(flatten)]
    serve: ServeArgs,
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    // The demo's data folder is ./demo unless DATA_DIR (or --data-dir) names another.
    let settings = args.serve.settings(SettingsLayer {
        data_dir: Some(PathBuf::from("demo")),
        ..SettingsLayer::default()
    })?;
    let dir = &settings.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("mandelbrot-{}x{}.tif", args.width, args.height));
    if !path.exists() {
        let started = Instant::now();
        let progress = Progress::new();
        let report = progress::with_bar("rendering the demo pyramid", &progress, || {
            build_pyramid(
                Box::new(DemoScene::new(args.width, args.height)),
                &path,
                &settings.build,
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
    println!(
        "open http://{}:{}/ (the demo image is {})",
        settings.host,
        settings.port,
        path.display()
    );
    serve::serve(settings)
}
