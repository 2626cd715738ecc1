//! cli::convert: `gigatile convert SRC OUT.tif`.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use gigatile::pyramid::build::{build_pyramid, Progress};
use gigatile::source::Source;
use gigatile::storage::LocalFile;

use super::{progress, BuildArgs, LimitArgs};

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The source image (TIFF, BigTIFF, JPEG, PNG or WebP).
    src: PathBuf,
    /// The pyramidal tiled BigTIFF to write (replaced atomically when complete).
    out: PathBuf,
    #[command(flatten)]
    build: BuildArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

pub fn run(args: &ConvertArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let source = Source::open(LocalFile::open_shared(&args.src)?, &args.limits.limits())
        .with_context(|| format!("cannot read {}", args.src.display()))?;
    let progress = Progress::new();
    let cancel = AtomicBool::new(false);
    let report = progress::with_bar("building", &progress, || {
        build_pyramid(
            source.rows()?,
            &args.out,
            &args.build.options(),
            &progress,
            &cancel,
        )
    })
    .with_context(|| format!("cannot convert {}", args.src.display()))?;
    println!(
        "{}: {}×{}, {} levels, {} tiles, {} bytes in {:.1} s",
        args.out.display(),
        report.width,
        report.height,
        report.levels,
        report.tiles,
        report.bytes,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
