//! cli::tile: `gigatile tile FILE LEVEL X Y -o OUT`.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context};
use clap::Args;
use gigatile::codec::{EncodeOptions, OutputFormat};
use gigatile::geometry::Level;
use gigatile::memory::MemoryBudget;
use gigatile::pyramid::build::Progress;
use gigatile::pyramid::levels::Pyramid;
use gigatile::pyramid::store::{Prepared, PyramidStore};
use gigatile::render::{render, TileRequest, Transform};

use super::{progress, BuildArgs, LimitArgs, StoreArgs};

#[derive(Debug, Args)]
pub struct TileArgs {
    /// The image file.
    file: PathBuf,
    /// Level: 0 is full resolution, each next level half the size.
    level: u32,
    /// Tile column, from the left.
    x: u32,
    /// Tile row, from the top.
    y: u32,
    /// Where to write the tile; its extension picks the format unless --format is given.
    #[arg(short, long)]
    output: PathBuf,
    /// Output format: jpg, png or webp.
    #[arg(long)]
    format: Option<String>,
    /// Pad edge tiles to 256×256 (as the Gigaview tile API does) instead of cropping them.
    #[arg(long)]
    pad: bool,
    #[command(flatten)]
    build: BuildArgs,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

pub fn run(args: &TileArgs) -> anyhow::Result<()> {
    let format = match &args.format {
        Some(name) => name.as_str(),
        None => args
            .output
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or(""),
    };
    let Some(format) = OutputFormat::from_extension(format) else {
        bail!("unknown output format {format:?}: use jpg, png or webp");
    };
    let store = PyramidStore::new(args.store.dir(), args.build.options(), args.limits.limits());
    let pyramid = ready_pyramid(&store, &args.file)?;
    let geometry = pyramid.geometry();
    let level = Level(args.level);
    if level > geometry.max_level() {
        bail!(
            "level {} does not exist: this image has levels 0 to {}",
            args.level,
            geometry.max_level().0
        );
    }
    let Some(region) = geometry.tile_rect(level, args.x, args.y) else {
        let (cols, rows) = geometry.tile_grid(level);
        bail!(
            "tile ({}, {}) is outside level {} ({cols}×{rows} tiles)",
            args.x,
            args.y,
            args.level
        );
    };
    let request = TileRequest {
        level,
        region,
        out_size: (region.width, region.height),
        canvas: args.pad.then_some((geometry.tile_size, geometry.tile_size)),
        encode: EncodeOptions {
            format,
            quality: Some(args.build.quality),
        },
        background: [0, 0, 0],
        transform: Transform::NONE,
    };
    let rendered = render(&pyramid, &request, &MemoryBudget::unlimited())?;
    std::fs::write(&args.output, &rendered.bytes)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    println!(
        "{}: {}×{} {} ({} bytes{})",
        args.output.display(),
        request.canvas.unwrap_or(request.out_size).0,
        request.canvas.unwrap_or(request.out_size).1,
        format.extension(),
        rendered.bytes.len(),
        if rendered.passthrough {
            ", stored tile passed through"
        } else {
            ""
        }
    );
    Ok(())
}

/// The complete pyramid of a file: the file itself when it is one, else the one built before,
/// else built now (with a progress bar on a terminal).
pub fn ready_pyramid(store: &PyramidStore, file: &Path) -> anyhow::Result<Pyramid> {
    let id = std::fs::canonicalize(file)
        .with_context(|| format!("cannot open {}", file.display()))?
        .to_string_lossy()
        .into_owned();
    match store
        .prepare(&id, file)
        .with_context(|| format!("cannot read {}", file.display()))?
    {
        Prepared::Source(p) | Prepared::Built(p) => Ok(p),
        Prepared::Preview(_) | Prepared::Missing => {
            let progress = Progress::new();
            let cancel = AtomicBool::new(false);
            let built = progress::with_bar("building pyramid", &progress, || {
                store.build(&id, file, &progress, &cancel, &mut |_| {})
            })
            .with_context(|| format!("cannot build the pyramid of {}", file.display()))?;
            Ok(built)
        }
    }
}
