//! http: the only code that knows HTTP. A thin layer of handlers over the tile service and the
//! catalogue, the router that maps the URL contract of `shared/DESIGN.md` onto them (behind
//! `signature`'s prefix when URLs are signed), and the server loop (HTTP/1.1 and h2c,
//! timeouts, graceful shutdown).

mod auth;
pub mod base_url;
mod client;
mod cors;
mod deepzoom;
mod error;
pub mod fuzzing;
mod iiif;
mod images;
mod imgserv;
mod middleware;
mod ops;
mod respond;
mod signature;
mod static_files;
mod upload;
mod viewer;
mod write_timeout;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;

pub use error::ApiError;

use crate::catalog::Catalog;
use crate::config::Settings;
use crate::imgserv::service::FitService;
use crate::metrics::Metrics;
use crate::rate_limit::ClientLimiter;
use crate::tiles::TileService;

/// Longest a response write may wait for a client that stopped reading.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest in-flight requests are given to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What every handler can reach, shared: cloning it (which axum does for every request and
/// middleware) is one reference count.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> AppState {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The settings and services behind every route.
pub struct Services {
    pub settings: Arc<Settings>,
    pub catalog: Catalog,
    pub tiles: TileService,
    pub fitted: FitService,
    pub metrics: Arc<Metrics>,
    /// Set when the server stops taking work (`/readyz` answers 503).
    pub stopping: Arc<AtomicBool>,
    /// Per-client buckets, when `RATE_LIMIT` is set.
    pub rate_limiter: Option<ClientLimiter>,
}

/// The peer's address, put in each request's extensions by the server loop.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// The router of the whole URL contract.
pub fn app(state: AppState) -> Router {
    let upload_limit = usize::try_from(state.settings.max_upload_size)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    let settings = state.settings.clone();
    let router = Router::new()
        .route("/", get(viewer::index))
        .route("/assets/{name}", get(viewer::asset))
        .route("/api/images", get(images::list))
        .route(
            "/api/images/{*path}",
            get(images::get).delete(images::delete),
        )
        .route("/iiif/3/{*path}", get(iiif::v3))
        .route("/iiif/2/{*path}", get(iiif::v2))
        .route(
            "/api/upload",
            post(upload::upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/imgserv.cgi", get(imgserv::fitted))
        .route("/imgserv", get(imgserv::fitted))
        .route("/imgcache/{*name}", get(imgserv::cached))
        .route("/dzi/{*path}", get(deepzoom::dzi))
        .route("/zoomify/{*path}", get(deepzoom::zoomify))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        // Innermost first: rate limits before any route's work, inside CORS (so a 429 can be
        // read by a page on another origin; preflights are answered before they count).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::rate_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cors::cors,
        ))
        .layer(axum::middleware::from_fn(middleware::json_errors))
        .layer(axum::middleware::from_fn(middleware::request_limits))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn(middleware::request_id))
        .with_state(state);
    signature::wrap(router, &settings)
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// (for at most [`SHUTDOWN_GRACE`]). A client that takes longer than `header_timeout` to send
/// a request's headers, or keeps a connection idle that long, is cut off, and so is one that
/// stops reading a response for [`WRITE_TIMEOUT`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = app.clone().map_request(move |mut req: axum::extract::Request<_>| {
                    req.extensions_mut().insert(Peer(peer));
                    req
                });
                let service = hyper_util::service::TowerToHyperService::new(service);
                let stream = write_timeout::WriteTimeout::new(stream, WRITE_TIMEOUT);
                let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let connection = graceful.watch(connection.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("shutdown grace period over; closing remaining connections"),
    }
    Ok(())
}
