//! Benchmark helper: renders a list of tiles (`level x y` lines on stdin, level 0 = full
//! resolution) from one image through the real pipeline, one after another, and prints the
//! process's CPU time per tile. Used by `bench/pipeline.sh` beside iipsrv on the same list.
//!
//! With `reencode`, every tile is decoded, resampled where needed and encoded again (the path
//! of tiles that do not line up with stored ones), instead of passing stored tiles through.
//!
//! usage: cargo run --release --example render_tiles -- IMAGE [QUALITY [reencode]] < tiles.txt

use std::io::BufRead;
use std::time::Instant;

use gigatile::codec::jpeg;
use gigatile::codec::{EncodeOptions, OutputFormat};
use gigatile::geometry::Level;
use gigatile::limits::Limits;
use gigatile::pyramid::build::BuildOptions;
use gigatile::pyramid::store::{Prepared, PyramidStore};
use gigatile::render::{render, render_raster, TileRequest, Transform};

/// User plus system CPU time of this process, in seconds (from /proc/self/stat).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat[stat.rfind(')').expect("stat format") + 2..]
        .split(' ')
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let image = std::path::Path::new(
        args.get(1)
            .expect("usage: render_tiles IMAGE [QUALITY [reencode]]"),
    );
    let quality: u8 = args.get(2).map_or(Ok(85), |q| q.parse())?;
    let reencode = args.get(3).is_some_and(|a| a == "reencode");
    let dir = std::env::temp_dir().join("gigatile-bench-pyramids");
    let store = PyramidStore::new(&dir, BuildOptions::default(), Limits::default());
    let pyramid = match store.prepare(&image.to_string_lossy(), image)? {
        Prepared::Source(p) | Prepared::Built(p) => p,
        _ => anyhow::bail!("{} is not a usable tiled pyramid", image.display()),
    };
    let geometry = pyramid.geometry();
    let tiles: Vec<(u32, u32, u32)> = std::io::stdin()
        .lock()
        .lines()
        .map(|line| {
            let line = line?;
            let v: Vec<u32> = line
                .split_whitespace()
                .map(|s| s.parse().unwrap())
                .collect();
            Ok((v[0], v[1], v[2]))
        })
        .collect::<anyhow::Result<_>>()?;
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    let (mut bytes, mut passthrough) = (0usize, 0usize);
    let budget = gigatile::memory::MemoryBudget::unlimited();
    for &(level, x, y) in &tiles {
        let Some(region) = geometry.tile_rect(Level(level), x, y) else {
            anyhow::bail!("tile {level} {x} {y} is outside the image");
        };
        if reencode {
            let (pixels, _memory) = render_raster(
                &pyramid,
                Level(level),
                region,
                (region.width, region.height),
                &budget,
            )?;
            bytes += jpeg::encode(&pixels.flatten([0, 0, 0]), quality)?.len();
            continue;
        }
        let out = render(
            &pyramid,
            &TileRequest {
                level: Level(level),
                region,
                out_size: (region.width, region.height),
                canvas: None,
                encode: EncodeOptions {
                    format: OutputFormat::Jpeg,
                    quality: Some(quality),
                },
                background: [0, 0, 0],
                transform: Transform::NONE,
            },
            &budget,
        )?;
        bytes += out.bytes.len();
        passthrough += usize::from(out.passthrough);
    }
    let cpu = cpu_seconds() - cpu0;
    let wall = wall0.elapsed().as_secs_f64();
    println!(
        "tiles={} cpu_s={cpu:.3} wall_s={wall:.3} cpu_ms_per_tile={:.4} passthrough={passthrough} bytes={bytes}",
        tiles.len(),
        cpu * 1000.0 / tiles.len() as f64
    );
    Ok(())
}
