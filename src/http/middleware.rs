//! http::middleware: what wraps every request: a request id (in the response and every log
//! line), a logged JSON 500 for a handler that panics, limits on URI and header size answered
//! in JSON, JSON bodies for errors the framework produces (405, 413, ...), and per-client rate
//! limits (CORS is `http::cors`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::client::client_ip;
use super::{ApiError, AppState, Peer};
use crate::metrics::Metrics;

/// Longest URI accepted (414 beyond; hyper's own, larger limit stays as a last resort).
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header bytes accepted (431 beyond).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

const REQUEST_ID: &str = "x-request-id";

/// Gives each request an id (the client's `X-Request-Id` when it is short and printable), a
/// log span carrying it, a log line when it ends, and the id in the response.
pub async fn request_id(req: Request, next: Next) -> Response {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "{:x}-{:x}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            )
        });
    let span =
        tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path());
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "done"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The answer to a handler that panicked (a bug): a JSON 500, the panic's message logged at
/// error level. Called while the request's span is entered, so the line carries its id.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    ApiError::internal(
        "internal",
        "internal error",
        format_args!("panic: {message}"),
    )
    .into_response()
}

/// Refuses overlong URIs (414) and header sections (431) with JSON bodies.
pub async fn request_limits(req: Request, next: Next) -> Response {
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return ApiError::for_status(StatusCode::URI_TOO_LONG).into_response();
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return ApiError::for_status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE).into_response();
    }
    next.run(req).await
}

/// Replaces the plain-text bodies of framework errors (405, 413, 422, ...) with the JSON
/// error every route answers with, keeping headers such as `Allow`.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    if status.is_server_error() {
        tracing::error!(
            status = status.as_u16(),
            "the framework answered a server error"
        );
    }
    let (parts, _) = response.into_parts();
    let mut fresh = ApiError::for_status(status).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            fresh.headers_mut().insert(name, value.clone());
        }
    }
    fresh
}

/// Paths never rate limited: the probes of orchestrators and the metrics scraper, which
/// must see the server as it is exactly when clients are being limited.
const UNLIMITED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// With `RATE_LIMIT` set, answers 429 with `Retry-After` when the client's bucket is empty.
pub async fn rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(limiter) = &state.rate_limiter else {
        return next.run(req).await;
    };
    if UNLIMITED.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<Peer>().copied();
    let Some(client) = client_ip(&state.settings, req.headers(), peer) else {
        return next.run(req).await;
    };
    match limiter.check(client) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            Metrics::inc(&state.metrics.rate_limited);
            tracing::debug!(%client, ?wait, "rate limited");
            ApiError::rate_limited(wait).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;
    use tower_http::catch_panic::CatchPanicLayer;

    use super::*;

    /// Log lines written while `run` runs, without colours.
    fn logged(run: impl FnOnce()) -> String {
        #[derive(Clone)]
        struct Lines(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines(Arc::default());
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, run);
        let bytes = lines.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn server_errors_are_logged_at_error_level_with_the_request_id_and_cause() {
        let app = Router::new()
            .route(
                "/internal",
                get(|| async { ApiError::internal("internal", "internal error", "disk on fire") }),
            )
            .route(
                "/panic",
                get(|| async {
                    panic!("kaboom");
                    #[allow(unreachable_code)]
                    StatusCode::OK
                }),
            )
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(axum::middleware::from_fn(request_id));
        for (path, cause) in [("/internal", "disk on fire"), ("/panic", "kaboom")] {
            let mut status = StatusCode::OK;
            let log = logged(|| {
                let request = Request::builder()
                    .uri(path)
                    .header(REQUEST_ID, "req-42")
                    .body(axum::body::Body::empty())
                    .unwrap();
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                status = runtime
                    .block_on(app.clone().oneshot(request))
                    .unwrap()
                    .status();
            });
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
            let line = log
                .lines()
                .find(|l| l.contains("ERROR"))
                .unwrap_or_else(|| panic!("{path}: no error line in {log}"));
            assert!(line.contains("req-42") && line.contains(cause), "{line}");
        }
    }
}
