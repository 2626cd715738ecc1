//! http::ops: liveness, readiness, Prometheus metrics, and the JSON answers for unknown routes
//! and methods.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{ApiError, AppState};
use crate::catalog::ImageStatus;
use crate::metrics::Exposition;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

/// `GET /readyz`: the catalogue is loaded and the server is not shutting down.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.stopping.load(Ordering::Relaxed) {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        )
        .into_response();
    }
    Json(serde_json::json!({ "status": "ready", "images": state.catalog.list().len() }))
        .into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let m = &state.metrics;
    let mut out = Exposition::default();
    out.counter(
        "gigatile_tile_requests_total",
        "Tile requests received.",
        &m.tile_requests,
    );
    out.counter(
        "gigatile_tile_cache_hits_total",
        "Tiles answered from the cache.",
        &m.cache_hits,
    );
    out.counter(
        "gigatile_renders_total",
        "Tiles rendered for requests.",
        &m.renders,
    );
    out.counter(
        "gigatile_passthrough_total",
        "Renders answered with a stored tile's bytes.",
        &m.passthrough,
    );
    out.counter(
        "gigatile_warmup_renders_total",
        "Tiles rendered by warm-up.",
        &m.warmup_renders,
    );
    out.counter(
        "gigatile_render_errors_total",
        "Renders that failed.",
        &m.render_errors,
    );
    out.counter(
        "gigatile_not_ready_total",
        "Tile requests answered 503 while a level was building.",
        &m.not_ready,
    );
    out.counter(
        "gigatile_overloaded_total",
        "Renders refused because the queue was full or late.",
        &m.overloaded,
    );
    out.counter("gigatile_uploads_total", "Uploads accepted.", &m.uploads);
    out.counter(
        "gigatile_imgserv_redirects_total",
        "Fitted-image requests answered with a redirect.",
        &m.imgserv_redirects,
    );
    out.counter(
        "gigatile_imgserv_renders_total",
        "Fitted images made for requests.",
        &m.imgserv_renders,
    );
    out.counter(
        "gigatile_rate_limited_total",
        "Requests answered 429 because their client was over RATE_LIMIT.",
        &m.rate_limited,
    );
    if let Some(limiter) = &state.rate_limiter {
        out.metric(
            "gigatile_rate_limit_clients",
            "gauge",
            "Rate-limit buckets held (clients seen in the last seconds).",
            limiter.clients(),
        );
    }
    let cache = state.tiles.cache().stats();
    out.metric(
        "gigatile_cache_bytes",
        "gauge",
        "Bytes held by the tile cache.",
        cache.bytes,
    );
    out.metric(
        "gigatile_cache_entries",
        "gauge",
        "Tiles held by the tile cache.",
        cache.entries,
    );
    out.metric(
        "gigatile_cache_evictions_total",
        "counter",
        "Tiles evicted from the cache.",
        cache.evictions,
    );
    let pool = state.tiles.pool().stats();
    out.metric(
        "gigatile_render_queue",
        "gauge",
        "Renders waiting for a thread.",
        pool.queued,
    );
    out.metric(
        "gigatile_render_running",
        "gauge",
        "Renders running.",
        pool.running,
    );
    let memory = state.settings.limits.budget.usage();
    out.metric(
        "gigatile_memory_limit_bytes",
        "gauge",
        "The memory budget (MEMORY_LIMIT).",
        memory.limit,
    );
    out.metric(
        "gigatile_memory_reserved_bytes",
        "gauge",
        "Bytes of the memory budget reserved now (caches, decodes, builds, renders).",
        memory.used,
    );
    out.metric(
        "gigatile_memory_reserved_peak_bytes",
        "gauge",
        "The most bytes of the memory budget reserved at once since start.",
        memory.peak,
    );
    out.metric(
        "gigatile_memory_refused_total",
        "counter",
        "Work refused by the memory budget (too large, or no room within its wait).",
        memory.refused,
    );
    let images = state.catalog.list();
    let count = |f: fn(&ImageStatus) -> bool| images.iter().filter(|e| f(&e.status)).count();
    out.metric(
        "gigatile_images_ready",
        "gauge",
        "Images ready.",
        count(|s| matches!(s, ImageStatus::Ready)),
    );
    out.metric(
        "gigatile_images_building",
        "gauge",
        "Images whose pyramid is being built.",
        count(|s| matches!(s, ImageStatus::Building { .. })),
    );
    out.metric(
        "gigatile_images_failed",
        "gauge",
        "Images that cannot be served.",
        count(|s| matches!(s, ImageStatus::Failed { .. })),
    );
    let mut response = out.finish().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

/// Any unknown route.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such resource")
}

/// A known route with a method it does not take.
pub async fn method_not_allowed() -> ApiError {
    ApiError::for_status(StatusCode::METHOD_NOT_ALLOWED)
}
