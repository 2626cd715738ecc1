//! http::iiif: the IIIF routes: Image API 3.0 under `/iiif/3/` and 2.1 under `/iiif/2/`
//! (info.json, image requests, base URI redirects) and the Presentation 3 manifest at
//! `/iiif/3/{id}/manifest.json`. Parsing, resolution and documents live in
//! `protocol::iiif`; this adds HTTP: statuses (400, 404, 415), content negotiation, `Link`
//! headers and caching.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::base_url::BaseUrl;
use super::respond::{self, encode_options};
use super::signature::Signature;
use super::{ApiError, AppState};
use crate::catalog::{ImageEntry, ImageStatus};
use crate::geometry::Geometry;
use crate::pool::Priority;
use crate::protocol::iiif::info::{self, Attribution};
use crate::protocol::iiif::{self as protocol, IiifError, IiifPath, ImageRequest, Version};
use crate::tiles::TileError;

impl From<IiifError> for ApiError {
    fn from(e: IiifError) -> ApiError {
        match e {
            IiifError::BadRequest(m) => ApiError::bad_request(m),
            IiifError::UnsupportedFormat(m) => {
                ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_format", m)
            }
        }
    }
}

/// `GET /iiif/3/{path}`.
pub async fn v3(
    State(state): State<AppState>,
    Path(path): Path<String>,
    BaseUrl(base): BaseUrl,
    signature: Signature,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    handle(Version::V3, &state, &path, &base, &signature, &headers).await
}

/// `GET /iiif/2/{path}`.
pub async fn v2(
    State(state): State<AppState>,
    Path(path): Path<String>,
    BaseUrl(base): BaseUrl,
    signature: Signature,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    handle(Version::V2, &state, &path, &base, &signature, &headers).await
}

async fn handle(
    version: Version,
    state: &AppState,
    path: &str,
    base: &str,
    signature: &Signature,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    // A path that is an image id as a whole is its base URI, whatever it looks like.
    if state.catalog.contains(path) {
        signature.verify(state, path)?;
        return Ok(redirect_to_info(version, &signature.base(base), path));
    }
    let parsed = protocol::parse_path(version, path)?;
    signature.verify(state, parsed.id())?;
    let base = &signature.base(base);
    match parsed {
        IiifPath::Base(_) => Err(ApiError::not_found("no such image")),
        IiifPath::Info(id) => info_json(version, state, &id, base, headers),
        IiifPath::Manifest(id) => manifest(state, &id, base, headers),
        IiifPath::Image(id, req) => image(version, state, &id, req, base, headers).await,
    }
}

/// `{id}` → 303 to `{id}/info.json`.
fn redirect_to_info(version: Version, base: &str, id: &str) -> Response {
    let location = format!("{}/info.json", protocol::service_uri(version, base, id));
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// The image, which must exist and be readable.
fn entry(state: &AppState, id: &str) -> Result<ImageEntry, ApiError> {
    let entry = state
        .catalog
        .get(id)
        .ok_or_else(|| ApiError::not_found("no such image"))?;
    if let ImageStatus::Failed { reason } = &entry.status {
        return Err(TileError::ImageFailed(reason.clone()).into());
    }
    Ok(entry)
}

fn attribution(entry: &ImageEntry) -> Attribution<'_> {
    Attribution {
        text: entry.meta.copyright_text.as_deref(),
        link: entry.meta.copyright_link.as_deref(),
    }
}

/// A JSON-LD document: `application/ld+json` with its context as profile when `Accept` asks
/// for JSON-LD, else `application/json`; never stored (an image's status changes as it
/// builds, and ids follow the request's host).
fn json_ld(body: &serde_json::Value, context: &str, headers: &HeaderMap) -> Response {
    let wants_ld = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/ld+json"));
    let media_type = if wants_ld {
        format!("application/ld+json;profile=\"{context}\"")
    } else {
        "application/json".to_string()
    };
    let mut response = body.to_string().into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&media_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.append(header::VARY, HeaderValue::from_static("Accept"));
    response
}

fn profile_link(version: Version) -> String {
    format!("<{}>;rel=\"profile\"", version.profile_uri())
}

fn info_json(
    version: Version,
    state: &AppState,
    id: &str,
    base: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let entry = entry(state, id)?;
    let geometry = Geometry::new(entry.width, entry.height);
    let body = match version {
        Version::V3 => info::info_v3(base, id, &geometry, attribution(&entry)),
        Version::V2 => info::info_v2(base, id, &geometry, attribution(&entry)),
    };
    let mut response = json_ld(&body, version.context(), headers);
    if let Ok(v) = HeaderValue::from_str(&profile_link(version)) {
        response.headers_mut().insert(header::LINK, v);
    }
    Ok(response)
}

fn manifest(
    state: &AppState,
    id: &str,
    base: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let entry = entry(state, id)?;
    let geometry = Geometry::new(entry.width, entry.height);
    // The name the user gave: an upload's original file name, else the file's own name.
    let label = &entry.meta.original_filename;
    let body = info::manifest(base, id, label, &geometry, attribution(&entry));
    Ok(json_ld(
        &body,
        "http://iiif.io/api/presentation/3/context.json",
        headers,
    ))
}

async fn image(
    version: Version,
    state: &AppState,
    id: &str,
    req: ImageRequest,
    base: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let entry = entry(state, id)?;
    let size = (entry.width, entry.height);
    let resolved = protocol::resolve(version, &req, size)?;
    let encode = encode_options(&state.settings, req.format);
    let background = state.settings.tile_background;
    let transform = protocol::transform(&req);
    let served = state
        .tiles
        .tile(id, Priority::User, |geometry| {
            Some(protocol::tile_request(
                geometry, &resolved, transform, encode, background,
            ))
        })
        .await?;
    let mut response = respond::tile(headers, &served);
    let canonical = protocol::canonical_uri(version, base, id, size, &req, &resolved);
    let link = format!("<{canonical}>;rel=\"canonical\",{}", profile_link(version));
    if let Ok(v) = HeaderValue::from_str(&link) {
        response.headers_mut().insert(header::LINK, v);
    }
    Ok(response)
}
