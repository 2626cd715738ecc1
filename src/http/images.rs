//! http::images: the Gigaview image API: the list, an image's metadata, its tiles, and
//! deleting an upload.

use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::auth::authorize;
use super::{ApiError, AppState, Peer};
use crate::catalog::{DeleteError, ImageEntry, ImageStatus};
use crate::codec::{EncodeOptions, OutputFormat};
use crate::geometry::Geometry;
use crate::pool::Priority;
use crate::protocol::gigaview::{self, parse_image_path, ImagePath, TileAddress};

/// `Cache-Control` of tiles: browsers and proxies may keep them an hour, then revalidate (a
/// replaced source keeps its URLs, and its tiles get new ETags).
const TILE_CACHE_CONTROL: &str = "public, max-age=3600";

#[derive(Serialize)]
struct ListItem<'a> {
    id: &'a str,
    original_filename: &'a str,
    width: u32,
    height: u32,
    bytes: u64,
    format: &'static str,
    status: &'static str,
    progress: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    copyright_text: Option<&'a str>,
    copyright_link: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Meta<'a> {
    width: u32,
    height: u32,
    tile_size: u32,
    max_zoom: u32,
    ready_max_zoom: Option<u32>,
    status: &'static str,
    progress: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    bytes: u64,
    format: &'static str,
    #[serde(rename = "copyright_text")]
    copyright_text: Option<&'a str>,
    #[serde(rename = "copyright_link")]
    copyright_link: Option<&'a str>,
}

/// Status name, progress (0 to 1) and failure reason of an entry.
fn status_of(entry: &ImageEntry) -> (&'static str, f64, Option<&str>) {
    match &entry.status {
        ImageStatus::Ready => ("ready", 1.0, None),
        ImageStatus::Building { progress } => ("building", *progress, None),
        ImageStatus::Failed { reason } => ("failed", 0.0, Some(reason.as_str())),
    }
}

/// `GET /api/images`.
pub async fn list(State(state): State<AppState>) -> Response {
    let entries = state.catalog.list();
    let items: Vec<ListItem> = entries
        .iter()
        .map(|e| {
            let (status, progress, reason) = status_of(e);
            ListItem {
                id: &e.id,
                original_filename: &e.meta.original_filename,
                width: e.width,
                height: e.height,
                bytes: e.bytes,
                format: e.format.name(),
                status,
                progress,
                reason,
                copyright_text: e.meta.copyright_text.as_deref(),
                copyright_link: e.meta.copyright_link.as_deref(),
            }
        })
        .collect();
    no_store(Json(items).into_response())
}

/// `GET /api/images/{id}/meta` and `GET /api/images/{id}/tiles/{z}/{x}/{y}[.ext]`.
pub async fn get(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match parse_image_path(&path)? {
        ImagePath::Meta(id) => meta(&state, &id),
        ImagePath::Tile(id, tile) => tile_response(&state, &id, tile, &headers).await,
        ImagePath::Image(_) => Err(ApiError::not_found("no such resource; see /api/images")),
    }
}

fn meta(state: &AppState, id: &str) -> Result<Response, ApiError> {
    let entry = state
        .catalog
        .get(id)
        .ok_or_else(|| ApiError::not_found("no such image"))?;
    let geometry = Geometry::new(entry.width, entry.height);
    let (status, progress, reason) = status_of(&entry);
    let body = Meta {
        width: entry.width,
        height: entry.height,
        tile_size: geometry.tile_size,
        max_zoom: geometry.max_level().0,
        ready_max_zoom: entry
            .ready_level
            .map(|level| gigaview::zoom_of_level(&geometry, level)),
        status,
        progress,
        reason,
        bytes: entry.bytes,
        format: entry.format.name(),
        copyright_text: entry.meta.copyright_text.as_deref(),
        copyright_link: entry.meta.copyright_link.as_deref(),
    };
    Ok(no_store(Json(body).into_response()))
}

/// The tile format: the one the URL names, else WebP when `Accept` lists it, else JPEG.
fn negotiate(tile: &TileAddress, headers: &HeaderMap) -> OutputFormat {
    tile.format.unwrap_or_else(|| {
        let accepts_webp = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("image/webp"));
        if accepts_webp {
            OutputFormat::Webp
        } else {
            OutputFormat::Jpeg
        }
    })
}

async fn tile_response(
    state: &AppState,
    id: &str,
    tile: TileAddress,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let format = negotiate(&tile, headers);
    let quality = match format {
        OutputFormat::Jpeg => Some(state.settings.jpeg_quality),
        OutputFormat::Webp => Some(state.settings.webp_quality),
        OutputFormat::Png => None,
    };
    let encode = EncodeOptions { format, quality };
    let background = state.settings.tile_background;
    let served = state
        .tiles
        .tile(id, Priority::User, |geometry| {
            gigaview::tile_request(geometry, &tile, encode, background)
        })
        .await?;
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
    if tile.format.is_none() {
        response
            .headers_mut()
            .append(header::VARY, HeaderValue::from_static("Accept"));
    }
    Ok(response)
}

/// A 200 with the body, or a 304 when the client's `If-None-Match` (or, without it,
/// `If-Modified-Since`) shows it has the body already; both carry the validators.
pub fn conditional(
    headers: &HeaderMap,
    etag: &str,
    modified: SystemTime,
    media_type: &'static str,
    body: bytes::Bytes,
) -> Response {
    let last_modified = httpdate::fmt_http_date(modified);
    let not_modified = match headers.get(header::IF_NONE_MATCH) {
        Some(inm) => inm
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")),
        None => headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .is_some_and(|since| {
                since >= httpdate::parse_http_date(&last_modified).unwrap_or(modified)
            }),
    };
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(body));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
        r
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&last_modified) {
        h.insert(header::LAST_MODIFIED, v);
    }
    response
}

/// `DELETE /api/images/{id}`: removes an upload and everything derived from it.
pub async fn delete(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
    peer: Option<axum::Extension<Peer>>,
) -> Result<Response, ApiError> {
    authorize(&state.settings, &headers, peer.map(|p| p.0))?;
    let ImagePath::Image(id) = parse_image_path(&path)? else {
        return Err(ApiError::for_status(StatusCode::METHOD_NOT_ALLOWED));
    };
    let catalog = state.catalog.clone();
    let result = tokio::task::spawn_blocking(move || catalog.delete(&id))
        .await
        .map_err(|_| ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR))?;
    match result {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(DeleteError::NotFound) => Err(ApiError::not_found("no such image")),
        Err(DeleteError::NotUploaded) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_uploaded",
            "only images uploaded through the API can be deleted",
        )),
        Err(DeleteError::Io(e)) => {
            tracing::error!(error = %e, "delete failed");
            Err(ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR))
        }
    }
}

/// Marks a response as never cached (lists and metadata change as images build).
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
