//! warmup: renders the coarse levels of every image ahead of requests, in the background.
//!
//! `WARMUP_LEVELS` counts from the coarsest level (1 = the whole-image tile). Jobs go through
//! the tile service exactly as a viewer's requests do (same canonical request, so the same
//! cache entries) at background priority, cheapest first: every image's coarsest level before
//! any image's next one. New images and new versions are picked up as the catalogue changes;
//! work stops at shutdown.

use std::collections::HashSet;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::codec::EncodeOptions;
use crate::geometry::Geometry;
use crate::pool::Priority;
use crate::protocol::gigaview::{self, TileAddress};
use crate::tiles::{TileError, TileService};

/// What to warm and how.
#[derive(Debug, Clone, Copy)]
pub struct WarmupSettings {
    /// Levels from the coarsest (0 = none).
    pub levels: u32,
    /// Tiles rendered at once.
    pub workers: usize,
    /// The encoding viewers ask for by default.
    pub encode: EncodeOptions,
    pub background: [u8; 3],
}

/// One tile to warm: image id and version, and its Gigaview address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Job {
    id: String,
    version: (u64, u128),
    tile: TileAddress,
}

/// Runs warm-up until `stop` turns true.
pub async fn run(tiles: TileService, settings: WarmupSettings, mut stop: watch::Receiver<bool>) {
    if settings.levels == 0 || settings.workers == 0 {
        return;
    }
    let mut changes = tiles.catalog().changes();
    let mut done: HashSet<Job> = HashSet::new();
    while !*stop.borrow() {
        changes.borrow_and_update();
        let pending: Vec<Job> = jobs(&tiles, &settings)
            .into_iter()
            .filter(|j| !done.contains(j))
            .collect();
        let finished = work(&tiles, &settings, pending, &mut stop).await;
        let retry = finished.iter().any(|(_, ok)| !ok);
        done.extend(finished.into_iter().filter(|(_, ok)| *ok).map(|(j, _)| j));
        let wait = async {
            if retry {
                tokio::time::sleep(Duration::from_secs(1)).await;
            } else {
                let _ = changes.changed().await;
            }
        };
        tokio::select! {
            () = wait => {}
            _ = stop.changed() => {}
        }
    }
}

/// Every warm-up tile of every servable image, coarsest level first.
fn jobs(tiles: &TileService, settings: &WarmupSettings) -> Vec<Job> {
    let entries = tiles.catalog().list();
    let mut jobs = Vec::new();
    for z in 0..settings.levels {
        for entry in &entries {
            let geometry = Geometry::new(entry.width, entry.height);
            let Some(level) = gigaview::level_of_zoom(&geometry, z) else {
                continue;
            };
            if entry.ready_level.is_none_or(|ready| ready > level) {
                continue;
            }
            let (cols, rows) = geometry.tile_grid(level);
            for y in 0..rows {
                for x in 0..cols {
                    jobs.push(Job {
                        id: entry.id.clone(),
                        version: (entry.version.len, entry.version.mtime_ns),
                        tile: TileAddress {
                            z,
                            x,
                            y,
                            format: Some(settings.encode.format),
                        },
                    });
                }
            }
        }
    }
    jobs
}

/// Renders the jobs, `workers` at a time, until done or stopped; says which succeeded (a job
/// that found its level not built or the pool busy is tried again later).
async fn work(
    tiles: &TileService,
    settings: &WarmupSettings,
    pending: Vec<Job>,
    stop: &mut watch::Receiver<bool>,
) -> Vec<(Job, bool)> {
    let mut running = JoinSet::new();
    let mut finished = Vec::new();
    let mut queue = pending.into_iter();
    loop {
        while running.len() < settings.workers {
            let Some(job) = queue.next() else { break };
            let (tiles, settings) = (tiles.clone(), *settings);
            running.spawn(async move {
                let result = tiles
                    .tile(&job.id, Priority::Background, |g| {
                        gigaview::tile_request(g, &job.tile, settings.encode, settings.background)
                    })
                    .await;
                // Tiles outside the image or of failed images will never render: done.
                let ok = !matches!(result, Err(TileError::NotReady | TileError::Overloaded));
                (job, ok)
            });
        }
        tokio::select! {
            next = running.join_next() => match next {
                Some(Ok(result)) => finished.push(result),
                Some(Err(_)) => {}
                None => return finished,
            },
            _ = stop.changed() => {
                running.abort_all();
                return finished;
            }
        }
    }
}
