//! cli::info: `gigatile info FILE`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use gigatile::geometry::Geometry;
use gigatile::pyramid::from_tiff::{is_usable, tiff_pyramid};
use gigatile::source::tiff::Chunking;
use gigatile::source::Source;
use gigatile::storage::LocalFile;

use super::LimitArgs;

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The image file.
    file: PathBuf,
    #[command(flatten)]
    limits: LimitArgs,
}

pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let bytes = LocalFile::open_shared(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = bytes.len();
    let source = Source::open(bytes, &args.limits.limits())
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let info = source.info();
    let geometry = Geometry::new(info.width, info.height);
    field("file", args.file.display());
    field("format", info.format.name());
    field("bytes", size);
    field("dimensions", format!("{}×{}", info.width, info.height));
    field("pixels", info.layout.name());
    field("icc", info.icc.as_deref().unwrap_or("none (taken as sRGB)"));
    for (key, value) in &info.details {
        field(key, value);
    }
    field(
        "tile levels",
        format!(
            "{} (256×256 tiles, {} in all)",
            geometry.level_count(),
            geometry.total_tiles()
        ),
    );
    if let Source::Tiff(file) = source {
        let file = Arc::new(file);
        for (i, image) in file.images().iter().enumerate() {
            let chunks = match image.chunking {
                Chunking::Tiles { width, height } => format!("tiles {width}×{height}"),
                Chunking::Strips { rows_per_strip } => format!("strips of {rows_per_strip} rows"),
            };
            field(
                &format!("image {i}"),
                format!(
                    "{}×{} {:?} {} {} {}",
                    image.width,
                    image.height,
                    image.role,
                    image.layout.name(),
                    chunks,
                    image.compression.name()
                ),
            );
        }
        let served = match tiff_pyramid(&file) {
            Some(p) if is_usable(&p) => "served as it is (a usable tiled pyramid)",
            _ => "a pyramid will be built",
        };
        field("pyramid", served);
    } else {
        field("pyramid", "a pyramid will be built");
    }
    Ok(())
}

/// Prints one `key: value` line, values aligned.
fn field(key: &str, value: impl std::fmt::Display) {
    println!("{:<17}{value}", format!("{key}:"));
}
