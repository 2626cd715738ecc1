//! Benchmark helper: the time until a whole-image view WIDTH pixels wide can be rendered from a
//! source that has no pyramid yet, through the path the server takes (a preview pyramid of the
//! coarse levels from a reduced decode, then a render from it). The full build that follows
//! the preview is cancelled once the view is written.
//!
//! usage: cargo run --release --example first_view -- SOURCE OUT.jpg [WIDTH]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use gigatile::codec::jpeg;
use gigatile::geometry::Level;
use gigatile::limits::Limits;
use gigatile::pyramid::build::{BuildOptions, Progress};
use gigatile::pyramid::levels::Pyramid;
use gigatile::pyramid::store::PyramidStore;
use gigatile::raster::Rect;
use gigatile::render::render_raster;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (source, out) = match (args.get(1), args.get(2)) {
        (Some(s), Some(o)) => (std::path::PathBuf::from(s), std::path::PathBuf::from(o)),
        _ => anyhow::bail!("usage: first_view SOURCE OUT.jpg [WIDTH]"),
    };
    let width: u32 = args.get(3).map_or(Ok(1024), |w| w.parse())?;
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("gigatile-first-view-{}", std::process::id()));
    let store = PyramidStore::new(&dir, BuildOptions::default(), Limits::default());
    let cancel = AtomicBool::new(false);
    let view = |pyramid: &Pyramid| -> anyhow::Result<()> {
        let g = pyramid.geometry();
        let height = (u64::from(g.height) * u64::from(width) / u64::from(g.width)).max(1) as u32;
        let whole = Rect::new(0, 0, g.width, g.height);
        let budget = gigatile::memory::MemoryBudget::unlimited();
        let (pixels, _memory) = render_raster(pyramid, Level(0), whole, (width, height), &budget)?;
        std::fs::write(&out, jpeg::encode(&pixels.flatten([0, 0, 0]), 85)?)?;
        Ok(())
    };
    let mut from_preview = None;
    let result = store.build(
        "bench",
        &source,
        &Progress::new(),
        &cancel,
        &mut |preview| {
            from_preview = Some(view(&preview).map(|()| started.elapsed()));
            cancel.store(true, Ordering::Relaxed);
        },
    );
    let elapsed = match from_preview {
        Some(elapsed) => elapsed?,
        None => {
            // No cheap reduced read for this source: the first view waits for the full build.
            view(&result?)?;
            started.elapsed()
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    println!("first_view_s={:.3}", elapsed.as_secs_f64());
    Ok(())
}
