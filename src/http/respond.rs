//! http::respond: the response every image route builds the same way: validators (ETag,
//! Last-Modified), 304s, Cache-Control, and encode options from the settings.

use std::time::SystemTime;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::codec::{EncodeOptions, OutputFormat};
use crate::config::Settings;
use crate::tiles::Tile;

/// `Cache-Control` of tiles: browsers and proxies may keep them an hour, then revalidate (a
/// replaced source keeps its URLs, and its tiles get new ETags).
pub const TILE_CACHE_CONTROL: &str = "public, max-age=3600";

/// `Cache-Control` of versioned names (content-hashed assets, fitted files), which never
/// change content: caches may keep them for a year.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The configured quality for `format`.
pub fn encode_options(settings: &Settings, format: OutputFormat) -> EncodeOptions {
    let quality = match format {
        OutputFormat::Jpeg => Some(settings.jpeg_quality),
        OutputFormat::Webp => Some(settings.webp_quality),
        OutputFormat::Png => None,
    };
    EncodeOptions { format, quality }
}

/// A served tile: its bytes (or a 304), validators and [`TILE_CACHE_CONTROL`].
pub fn tile(headers: &HeaderMap, served: &Tile) -> Response {
    let mut response = conditional(
        headers,
        &served.data.etag,
        served.entry.modified,
        served.data.media_type,
        served.data.bytes.clone(),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(TILE_CACHE_CONTROL),
    );
    response
}

/// A 200 with the body, or a 304 when the client has it already (see [`not_modified`]); both
/// carry the validators.
pub fn conditional(
    headers: &HeaderMap,
    etag: &str,
    modified: SystemTime,
    media_type: &'static str,
    body: bytes::Bytes,
) -> Response {
    let last_modified = httpdate::fmt_http_date(modified);
    let mut response = if not_modified(headers, etag, &last_modified) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(body));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
        r
    };
    validators(response.headers_mut(), etag, &last_modified);
    response
}

/// Whether the client's `If-None-Match` (or, without it, `If-Modified-Since`) shows it has
/// the body whose validators are `etag` and `last_modified` (an HTTP date).
pub fn not_modified(headers: &HeaderMap, etag: &str, last_modified: &str) -> bool {
    match headers.get(header::IF_NONE_MATCH) {
        Some(inm) => inm
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")),
        None => headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .zip(httpdate::parse_http_date(last_modified).ok())
            .is_some_and(|(since, modified)| since >= modified),
    }
}

/// Sets `ETag` and `Last-Modified`.
pub fn validators(h: &mut HeaderMap, etag: &str, last_modified: &str) {
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(last_modified) {
        h.insert(header::LAST_MODIFIED, v);
    }
}
