//! cli::purge: `gigatile purge [ID]`: drops derived data (pyramids; with no id, also the tile
//! file cache), which is rebuilt on demand. Users' source files are never touched.

use clap::Args;
use gigatile::catalog::purge_dir;
use gigatile::config::SettingsLayer;

use super::serve::ServeArgs;

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// The image whose derived data to drop (its id, e.g. `hubble/heic1502a.tif`); all
    /// images when omitted.
    id: Option<String>,
    #[command(flatten)]
    serve: ServeArgs,
}

pub fn run(args: &PurgeArgs) -> anyhow::Result<()> {
    let settings = args.serve.settings(SettingsLayer::default())?;
    let mut freed = purge_dir(&settings.pyramid_dir, args.id.as_deref())?;
    if args.id.is_none() && settings.cache_file_dir.exists() {
        freed += dir_size(&settings.cache_file_dir);
        std::fs::remove_dir_all(&settings.cache_file_dir)?;
    }
    println!("purged {freed} bytes of derived data");
    Ok(())
}

/// Bytes of the files under a folder.
fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}
