//! cli::precache: `gigatile precache --sizes 200x200,800x600 [--out DIR] [--mirror NAME]
//! [SRC...]`: makes fitted images ahead of time, into the cache, or into a folder laid out
//! like it (ready to copy to a mirror) while adding their names to the mirror's manifest.
//! Waits for the pyramids it needs; progress bars on a terminal.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use gigatile::catalog::{Catalog, ImageEntry, ImageStatus};
use gigatile::config::SettingsLayer;
use gigatile::imgserv::fit::parse_src;
use gigatile::imgserv::ImgServ;
use gigatile::pyramid::levels::Pyramid;
use gigatile::server::catalog_config;

use super::progress::bar;
use super::serve::ServeArgs;

#[derive(Debug, Args)]
pub struct PrecacheArgs {
    /// Boxes to fit every image in, as WIDTHxHEIGHT, comma-separated (e.g. 200x200,800x600).
    #[arg(long, required = true, value_delimiter = ',', value_parser = parse_box)]
    sizes: Vec<(u32, u32)>,
    /// Write into this folder, laid out like the cache, instead of into the cache.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Make the files for this mirror of the configuration file: into --out (by default
    /// DATA_DIR/.gigatile/mirrors/NAME), adding their names to the mirror's manifest.
    #[arg(long)]
    mirror: Option<String>,
    /// Images as imgserv `src` paths (`/gallery/1.jpg`); every image when none is given.
    #[arg(value_name = "SRC")]
    sources: Vec<String>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// `WIDTHxHEIGHT`, both > 0.
fn parse_box(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{s:?} is not a box like 800x600");
    let (w, h) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    match (w.parse::<u32>(), h.parse::<u32>()) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => Ok((w, h)),
        _ => Err(bad()),
    }
}

pub fn run(args: &PrecacheArgs) -> anyhow::Result<()> {
    let settings = args.serve.settings(SettingsLayer::default())?;
    let (out, manifest) = match &args.mirror {
        None => (args.out.clone(), None),
        Some(name) => {
            let Some(mirror) = settings.imgserv.mirrors.iter().find(|m| &m.name == name) else {
                bail!("no mirror {name:?} in the configuration file (see --config)");
            };
            let out = args.out.clone().unwrap_or_else(|| {
                settings
                    .data_dir
                    .join(".gigatile")
                    .join("mirrors")
                    .join(name)
            });
            (Some(out), Some(mirror.manifest.clone()))
        }
    };
    let ids = args
        .sources
        .iter()
        .map(|src| parse_src(src).map_err(|e| anyhow::anyhow!("{src}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let imgserv =
        ImgServ::open(settings.imgserv.clone()).context("cannot open the fitted-image cache")?;
    let catalog = Catalog::start(catalog_config(&settings))?;
    let result = precache(&catalog, &imgserv, &ids, args, out, manifest);
    catalog.shutdown();
    let names = result?;
    imgserv.flush()?;
    println!("{} fitted images ready", names.len());
    Ok(())
}

fn precache(
    catalog: &Catalog,
    imgserv: &ImgServ,
    ids: &[String],
    args: &PrecacheArgs,
    out: Option<PathBuf>,
    manifest: Option<PathBuf>,
) -> anyhow::Result<Vec<String>> {
    let sources = wait_for_pyramids(catalog, ids)?;
    let bar = bar("fitted images", (sources.len() * args.sizes.len()) as u64);
    let names = imgserv.precache(
        &sources,
        &args.sizes,
        out.as_deref(),
        manifest.as_deref(),
        |_| bar.inc(1),
    )?;
    bar.finish_and_clear();
    Ok(names)
}

/// The images named (all when none is), once their pyramids are built; a bar follows the
/// builds. An unknown or unreadable image is an error.
fn wait_for_pyramids(
    catalog: &Catalog,
    ids: &[String],
) -> anyhow::Result<Vec<(ImageEntry, Pyramid)>> {
    let ids: Vec<String> = if ids.is_empty() {
        catalog.list().into_iter().map(|e| e.id).collect()
    } else {
        ids.to_vec()
    };
    let bar = bar("pyramids", ids.len() as u64 * 100);
    loop {
        let mut progress = 0.0;
        let mut ready = Vec::new();
        for id in &ids {
            let Some(entry) = catalog.get(id) else {
                bail!("no image {id:?} in the data folder");
            };
            match entry.status {
                ImageStatus::Failed { reason } => bail!("{id}: {reason}"),
                ImageStatus::Building { progress: p } => progress += p,
                ImageStatus::Ready => {
                    progress += 1.0;
                    ready.extend(
                        catalog
                            .pyramid(id)
                            .filter(|(e, _)| e.status == ImageStatus::Ready),
                    );
                }
            }
        }
        bar.set_position((progress * 100.0) as u64);
        if ready.len() == ids.len() {
            bar.finish_and_clear();
            return Ok(ready);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
