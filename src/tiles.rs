//! tiles: the service behind every tile route. A canonical request for an image goes through
//! the catalogue (is the image there, is the level built yet: wait a bounded time), the cache,
//! then at most one render per key in flight, on the bounded render pool.
//!
//! Protocol adapters build the [`TileRequest`] from their URLs; this module knows no URLs and no
//! HTTP, only what can go wrong ([`TileError`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cache::inflight::Inflight;
use crate::cache::{CachedTile, TileCache};
use crate::catalog::{Catalog, ImageEntry, ImageStatus};
use crate::geometry::Geometry;
use crate::memory::MemoryBudget;
use crate::metrics::Metrics;
use crate::pool::{PoolError, Priority, RenderPool};
use crate::render::{render, TileRequest};

/// Bumped whenever rendering changes the bytes of a tile, so caches never serve old renders.
pub const RENDERER_VERSION: u32 = 1;

/// Why a tile could not be served.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TileError {
    /// No such image.
    #[error("no such image")]
    NotFound,
    /// The tile lies outside the image or its levels.
    #[error("{0}")]
    OutOfRange(String),
    /// The level is still being built: try again later.
    #[error("this level is still being built")]
    NotReady,
    /// Too many renders are waiting.
    #[error("the server is busy")]
    Overloaded,
    /// The work asked for could never fit a limit (the memory budget, the output size).
    #[error("{0}")]
    TooLarge(String),
    /// The image cannot be read (its reason is safe to show).
    #[error("{0}")]
    ImageFailed(String),
    /// Rendering failed.
    #[error("{0}")]
    Render(String),
}

impl TileError {
    /// A render the pool did not run or finish (counted as overloaded unless it panicked).
    pub fn from_pool(e: PoolError, metrics: &Metrics) -> TileError {
        match e {
            PoolError::Overloaded | PoolError::DeadlineExceeded | PoolError::ShuttingDown => {
                Metrics::inc(&metrics.overloaded);
                TileError::Overloaded
            }
            PoolError::Panicked => TileError::Render("the renderer failed".into()),
        }
    }

    /// A render that failed (counted: as overloaded when the memory budget was in use).
    pub fn from_render(e: crate::Error, metrics: &Metrics) -> TileError {
        if let crate::Error::Busy(_) = e {
            Metrics::inc(&metrics.overloaded);
            return TileError::Overloaded;
        }
        Metrics::inc(&metrics.render_errors);
        match e {
            crate::Error::OutOfRange(m) => TileError::OutOfRange(m),
            crate::Error::TooLarge(m) => TileError::TooLarge(m),
            other => TileError::Render(other.to_string()),
        }
    }
}

/// Settings of the tile service.
#[derive(Debug, Clone, Copy)]
pub struct TileSettings {
    /// Longest a render may wait in the queue.
    pub deadline: Duration,
    /// Longest a request waits for a level still being built.
    pub wait: Duration,
}

/// A served tile with what its response headers need.
#[derive(Debug, Clone)]
pub struct Tile {
    pub data: CachedTile,
    pub entry: ImageEntry,
}

/// The tile service; cheap to clone.
#[derive(Clone)]
pub struct TileService {
    catalog: Catalog,
    cache: TileCache,
    inflight: Arc<Inflight<Result<CachedTile, TileError>>>,
    pool: RenderPool,
    budget: MemoryBudget,
    settings: TileSettings,
    metrics: Arc<Metrics>,
}

impl TileService {
    /// A service over a catalogue, a cache and a pool.
    pub fn new(
        catalog: Catalog,
        cache: TileCache,
        pool: RenderPool,
        budget: MemoryBudget,
        settings: TileSettings,
        metrics: Arc<Metrics>,
    ) -> TileService {
        TileService {
            catalog,
            cache,
            inflight: Arc::new(Inflight::default()),
            pool,
            budget,
            settings,
            metrics,
        }
    }

    /// The catalogue the service reads.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The cache the service fills.
    pub fn cache(&self) -> &TileCache {
        &self.cache
    }

    /// The render pool.
    pub fn pool(&self) -> &RenderPool {
        &self.pool
    }

    /// The memory budget renders draw from.
    pub fn budget(&self) -> &MemoryBudget {
        &self.budget
    }

    /// Renders (or finds) the tile that `plan` describes for the image `id`. `plan` maps the
    /// image's geometry to the canonical request, or `None` when the tile lies outside it.
    pub async fn tile(
        &self,
        id: &str,
        priority: Priority,
        plan: impl FnOnce(&Geometry) -> Option<TileRequest>,
    ) -> Result<Tile, TileError> {
        Metrics::inc(&self.metrics.tile_requests);
        let entry = self.catalog.get(id).ok_or(TileError::NotFound)?;
        if let ImageStatus::Failed { reason } = &entry.status {
            return Err(TileError::ImageFailed(reason.clone()));
        }
        let geometry = Geometry::new(entry.width, entry.height);
        let request = plan(&geometry)
            .ok_or_else(|| TileError::OutOfRange("no such tile in this image".into()))?;
        let key = cache_key(&entry, &request);
        if let Some(data) = self.cache.get(&key) {
            Metrics::inc(&self.metrics.cache_hits);
            return Ok(Tile { data, entry });
        }
        let (entry, pyramid) = self.wait_for_level(id, request.level, priority).await?;
        let service = self.clone();
        let data = self
            .inflight
            .run(key.clone(), move || async move {
                service
                    .render_and_store(pyramid, request, priority, key)
                    .await
            })
            .await?;
        Ok(Tile { data, entry })
    }

    /// Waits until the image can serve `level` (a preview serves coarse levels early), for at
    /// most the configured wait (background work does not wait); then the image and what
    /// serves it.
    pub async fn wait_for_level(
        &self,
        id: &str,
        level: crate::geometry::Level,
        priority: Priority,
    ) -> Result<(ImageEntry, crate::pyramid::levels::Pyramid), TileError> {
        let until = Instant::now() + self.settings.wait;
        let mut changes = self.catalog.changes();
        loop {
            changes.borrow_and_update();
            if let Some((entry, pyramid)) = self.catalog.pyramid(id) {
                if entry.ready_level.is_some_and(|ready| ready <= level) {
                    return Ok((entry, pyramid));
                }
            }
            match self.catalog.get(id).map(|e| e.status) {
                None => return Err(TileError::NotFound),
                Some(ImageStatus::Failed { reason }) => return Err(TileError::ImageFailed(reason)),
                Some(_) => {}
            }
            let left = until.saturating_duration_since(Instant::now());
            if priority == Priority::Background || left.is_zero() {
                Metrics::inc(&self.metrics.not_ready);
                return Err(TileError::NotReady);
            }
            let _ = tokio::time::timeout(left, changes.changed()).await;
        }
    }

    /// Renders on the pool and stores the result in the cache, both on the render thread (a
    /// file cache's write never blocks the async runtime).
    async fn render_and_store(
        &self,
        pyramid: crate::pyramid::levels::Pyramid,
        request: TileRequest,
        priority: Priority,
        key: String,
    ) -> Result<CachedTile, TileError> {
        let cache = self.cache.clone();
        let budget = self.budget.clone();
        let job = move || {
            let rendered = render(&pyramid, &request, &budget)?;
            let tile = CachedTile::new(rendered.bytes, rendered.format.media_type());
            cache.insert(&key, tile.clone());
            Ok::<_, crate::Error>((tile, rendered.passthrough))
        };
        let (tile, passthrough) = self
            .pool
            .run(priority, self.settings.deadline, job)
            .await
            .map_err(|e| TileError::from_pool(e, &self.metrics))?
            .map_err(|e| TileError::from_render(e, &self.metrics))?;
        Metrics::inc(if priority == Priority::Background {
            &self.metrics.warmup_renders
        } else {
            &self.metrics.renders
        });
        if passthrough {
            Metrics::inc(&self.metrics.passthrough);
        }
        Ok(tile)
    }
}

/// Everything that changes a tile's bytes: the image and its version, the canonical request
/// (level, region, size, canvas, format, quality, background) and the renderer's version.
pub fn cache_key(entry: &ImageEntry, request: &TileRequest) -> String {
    format!(
        "{}|{}-{}|{:?}|r{RENDERER_VERSION}",
        entry.id, entry.version.len, entry.version.mtime_ns, request
    )
}
