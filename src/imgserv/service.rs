//! imgserv::service: fitted images as the server serves them. A parsed query in, where its file
//! is out: the service waits (a bounded time) for the pyramid level the fit needs, answers from
//! memory when a mirror or the cache folder holds the file already, and otherwise makes it on
//! the render pool, once per file however many ask at a time. It knows no HTTP.

use std::sync::Arc;
use std::time::Duration;

use super::fit::{self, FitQuery};
use super::{source_facts, ImgServ, Location};
use crate::cache::inflight::Inflight;
use crate::geometry::{Geometry, Level};
use crate::metrics::Metrics;
use crate::pool::Priority;
use crate::tiles::{TileError, TileService};

/// The fitted-image service; cheap to clone.
#[derive(Clone)]
pub struct FitService {
    imgserv: Arc<ImgServ>,
    tiles: TileService,
    inflight: Arc<Inflight<Result<Location, TileError>>>,
    deadline: Duration,
    metrics: Arc<Metrics>,
}

impl FitService {
    /// A service making fitted files from the pyramids of `tiles`' catalogue, on its pool,
    /// each render within `deadline`.
    pub fn new(
        imgserv: Arc<ImgServ>,
        tiles: TileService,
        deadline: Duration,
        metrics: Arc<Metrics>,
    ) -> FitService {
        FitService {
            imgserv,
            tiles,
            inflight: Arc::default(),
            deadline,
            metrics,
        }
    }

    /// The fitted images' cache and mirrors.
    pub fn imgserv(&self) -> &Arc<ImgServ> {
        &self.imgserv
    }

    /// Where the file `query` asks for can be fetched, made first when missing.
    pub async fn locate(&self, query: &FitQuery) -> Result<Location, TileError> {
        let catalog = self.tiles.catalog();
        let (entry, pyramid) = match catalog.pyramid(&query.id) {
            Some(ready) if ready.0.ready_level == Some(Level(0)) => ready,
            _ => {
                let entry = catalog.get(&query.id).ok_or(TileError::NotFound)?;
                // The level the fitted size needs decides whether a preview can serve it yet.
                let (width, height) = fit::fit_size(
                    (entry.width, entry.height),
                    query.box_size,
                    self.imgserv.raster(),
                );
                let level = Geometry::new(entry.width, entry.height).level_for_size(width, height);
                self.tiles
                    .wait_for_level(&query.id, level, Priority::User)
                    .await?
            }
        };
        let source = source_facts(&entry, &pyramid);
        let fitted = self.imgserv.fit(&source, query);
        let found = self
            .imgserv
            .locate(&source, &fitted)
            .map_err(|e| TileError::from_render(e, &self.metrics))?;
        if let Some(location) = found {
            return Ok(location);
        }
        let service = self.clone();
        let key = fitted.name.clone();
        self.inflight
            .run(key, move || async move {
                let imgserv = Arc::clone(&service.imgserv);
                let metrics = Arc::clone(&service.metrics);
                let budget = service.tiles.budget().clone();
                let job = move || {
                    imgserv.ensure(&source, &fitted, || {
                        Metrics::inc(&metrics.imgserv_renders);
                        imgserv.render(&pyramid, &fitted, &budget)
                    })
                };
                service
                    .tiles
                    .pool()
                    .run(Priority::User, service.deadline, job)
                    .await
                    .map_err(|e| TileError::from_pool(e, &service.metrics))?
                    .map_err(|e| TileError::from_render(e, &service.metrics))
            })
            .await
    }
}
