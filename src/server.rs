//! server: assembles the running server from its settings (catalogue, tile cache, render
//! pool, tile service, warm-up, HTTP) and takes it down in order at shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::cache::{CacheConfig, TileCache};
use crate::catalog::{Catalog, CatalogConfig};
use crate::codec::{EncodeOptions, OutputFormat};
use crate::config::Settings;
use crate::http::{self, AppState, Services};
use crate::imgserv::service::FitService;
use crate::imgserv::ImgServ;
use crate::metrics::Metrics;
use crate::pool::RenderPool;
use crate::rate_limit::ClientLimiter;
use crate::tiles::{TileService, TileSettings};
use crate::warmup::{self, WarmupSettings};

/// The catalogue's settings, from the server's.
pub fn catalog_config(settings: &Settings) -> CatalogConfig {
    CatalogConfig {
        data_dir: settings.data_dir.clone(),
        pyramid_dir: settings.pyramid_dir.clone(),
        pyramid_max_bytes: settings.pyramid_max_bytes,
        build: settings.build,
        limits: settings.limits.clone(),
        max_concurrent_builds: settings.pyramid_builds,
        rescan_interval: std::time::Duration::from_secs(30),
        derived_dirs: vec![
            settings.cache_file_dir.clone(),
            settings.imgserv.cache_dir.clone(),
        ],
    }
}

/// The services behind the router, and what [`run`] must stop with them.
struct Assembled {
    state: AppState,
    imgserv: Arc<ImgServ>,
    pool: RenderPool,
}

/// Opens the catalogue, caches, render pool and services of `settings`.
async fn assemble(settings: Settings, stopping: Arc<AtomicBool>) -> crate::Result<Assembled> {
    std::fs::create_dir_all(&settings.data_dir)?;
    // The cache takes its memory from the budget before builds start drawing from it.
    let cache = TileCache::new(&CacheConfig {
        mode: settings.cache,
        memory_bytes: settings.cache_memory_bytes,
        memory_entries: settings.cache_memory_tiles,
        file_dir: settings.cache_file_dir.clone(),
        file_max_bytes: settings.cache_file_max_bytes,
        budget: settings.limits.budget.clone(),
    })?;
    let config = catalog_config(&settings);
    let catalog = tokio::task::spawn_blocking(move || Catalog::start(config))
        .await
        .map_err(|e| crate::Error::Io(std::io::Error::other(e.to_string())))??;
    let imgserv_config = settings.imgserv.clone();
    let imgserv = tokio::task::spawn_blocking(move || ImgServ::open(imgserv_config).map(Arc::new))
        .await
        .map_err(|e| crate::Error::Io(std::io::Error::other(e.to_string())))??;
    let pool = RenderPool::new(settings.render_threads, settings.render_queue);
    let metrics = Arc::new(Metrics::default());
    let tiles = TileService::new(
        catalog.clone(),
        cache,
        pool.clone(),
        settings.limits.budget.clone(),
        TileSettings {
            deadline: settings.render_deadline,
            wait: settings.tile_wait,
        },
        Arc::clone(&metrics),
    );
    let fitted = FitService::new(
        Arc::clone(&imgserv),
        tiles.clone(),
        settings.render_deadline,
        Arc::clone(&metrics),
    );
    let rate_limiter = settings.rate_limit.map(ClientLimiter::new);
    let state = AppState::new(Services {
        rate_limiter,
        settings: Arc::new(settings),
        catalog,
        tiles,
        fitted,
        metrics,
        stopping,
    });
    Ok(Assembled {
        state,
        imgserv,
        pool,
    })
}

/// The state [`http::app`] serves, for driving the router in process (the HTTP fuzz target
/// and its replay test): the catalogue of `settings.data_dir` (scanned, pyramids building in
/// the background), caches and render pool, without a listener, warm-up or shutdown. It lives
/// as long as the process.
pub async fn in_process_state(settings: Settings) -> crate::Result<AppState> {
    let stopping = Arc::new(AtomicBool::new(false));
    Ok(assemble(settings, stopping).await?.state)
}

/// Runs the server on `listener` until `shutdown` resolves; then stops taking requests, lets
/// in-flight ones finish, stops warm-up and builds cleanly.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> crate::Result<()> {
    let stopping = Arc::new(AtomicBool::new(false));
    let header_timeout = settings.header_read_timeout;
    let Assembled {
        state,
        imgserv,
        pool,
    } = assemble(settings, Arc::clone(&stopping)).await?;
    let catalog = state.catalog.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let warmup = tokio::spawn(warmup::run(
        state.tiles.clone(),
        WarmupSettings {
            levels: state.settings.warmup_levels,
            workers: state.settings.warmup_workers,
            encode: EncodeOptions {
                format: OutputFormat::Jpeg,
                quality: Some(state.settings.jpeg_quality),
            },
            background: state.settings.tile_background,
        },
        stop_rx,
    ));
    let flusher = tokio::spawn(flush_fitted_uses(Arc::clone(&imgserv), stop_tx.subscribe()));
    tracing::info!(address = %listener.local_addr()?, images = catalog.list().len(), "serving");
    let shutdown = async move {
        shutdown.await;
        stopping.store(true, Ordering::Relaxed);
        let _ = stop_tx.send(true);
        tracing::info!("shutting down: finishing in-flight requests");
    };
    http::serve(listener, http::app(state), header_timeout, shutdown).await?;
    let _ = warmup.await;
    let _ = flusher.await;
    flush_uses(Arc::clone(&imgserv)).await;
    pool.shutdown();
    tokio::task::spawn_blocking(move || catalog.shutdown())
        .await
        .map_err(|e| crate::Error::Io(std::io::Error::other(e.to_string())))?;
    tracing::info!("stopped");
    Ok(())
}

/// How often the last uses of fitted images are written to their records.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Writes fitted images' last uses every [`FLUSH_EVERY`] until the server stops (a cached
/// redirect itself never writes; the server writes them once more after the last request).
async fn flush_fitted_uses(imgserv: Arc<ImgServ>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(FLUSH_EVERY) => flush_uses(Arc::clone(&imgserv)).await,
            _ = stop.changed() => return,
        }
    }
}

/// Writes fitted images' last uses, off the async runtime.
async fn flush_uses(imgserv: Arc<ImgServ>) {
    match tokio::task::spawn_blocking(move || imgserv.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not write fitted-image records"),
        Err(e) => tracing::warn!(error = %e, "fitted-image record writer failed"),
    }
}
