//! http::images: the Gigaview image API: the list, an image's metadata, its tiles, and
//! deleting an upload.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::auth::authorize;
use super::respond::{self, encode_options};
use super::signature::{token_for, Signature};
use super::{ApiError, AppState, Peer};
use crate::catalog::{DeleteError, ImageEntry, ImageStatus};
use crate::codec::OutputFormat;
use crate::geometry::Geometry;
use crate::pool::Priority;
use crate::protocol::gigaview::{self, parse_image_path, ImagePath, TileAddress};

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
    /// The token of the image's signed URLs, when URLs are signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
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
    /// The token of the image's signed URLs, when URLs are signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
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
                signature: token_for(&state.settings, &e.id),
            }
        })
        .collect();
    no_store(Json(items).into_response())
}

/// `GET /api/images/{id}/meta` and `GET /api/images/{id}/tiles/{z}/{x}/{y}[.ext]`.
pub async fn get(
    State(state): State<AppState>,
    Path(path): Path<String>,
    signature: Signature,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match parse_image_path(&path)? {
        ImagePath::Meta(id) => meta(&state, &id),
        ImagePath::Tile(id, tile) => {
            signature.verify(&state, &id)?;
            tile_response(&state, &id, tile, &headers).await
        }
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
        signature: token_for(&state.settings, &entry.id),
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
    let encode = encode_options(&state.settings, negotiate(&tile, headers));
    let background = state.settings.tile_background;
    let served = state
        .tiles
        .tile(id, Priority::User, |geometry| {
            gigaview::tile_request(geometry, &tile, encode, background)
        })
        .await?;
    let mut response = respond::tile(headers, &served);
    if tile.format.is_none() {
        response
            .headers_mut()
            .append(header::VARY, HeaderValue::from_static("Accept"));
    }
    Ok(response)
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
        .map_err(|e| ApiError::internal("internal", "internal error", e))?;
    match result {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(DeleteError::NotFound) => Err(ApiError::not_found("no such image")),
        Err(DeleteError::NotUploaded) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_uploaded",
            "only images uploaded through the API can be deleted",
        )),
        Err(DeleteError::Io(e)) => Err(ApiError::internal(
            "storage_error",
            "the image could not be deleted",
            e,
        )),
    }
}

/// Marks a response as never cached (lists and metadata change as images build).
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
