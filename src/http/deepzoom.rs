//! http::deepzoom: the Deep Zoom (`/dzi/...`) and Zoomify (`/zoomify/...`) routes: thin handlers
//! that parse with [`crate::protocol::dzi`] and [`crate::protocol::zoomify`], answer the XML
//! descriptors, and hand tiles to the tile service.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;

use super::respond::{self, encode_options};
use super::signature::Signature;
use super::{ApiError, AppState};
use crate::cache::CachedTile;
use crate::catalog::ImageStatus;
use crate::codec::OutputFormat;
use crate::geometry::Geometry;
use crate::pool::Priority;
use crate::protocol::dzi::{self, parse_dzi_path, DziPath};
use crate::protocol::zoomify::{self, parse_zoomify_path, ZoomifyPath};
use crate::render::TileRequest;
use crate::tiles::{Tile, TileError};

/// `GET /dzi/{id}.dzi` and `GET /dzi/{id}_files/{level}/{col}_{row}.{ext}`.
pub async fn dzi(
    State(state): State<AppState>,
    Path(path): Path<String>,
    signature: Signature,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let overlap = state.settings.dzi_overlap;
    match parse_dzi_path(&path)? {
        DziPath::Descriptor(id) => {
            signature.verify(&state, &id)?;
            descriptor(&state, &id, &headers, |geometry| {
                dzi::format_descriptor(geometry, overlap)
            })
        }
        DziPath::Tile(id, tile) => {
            signature.verify(&state, &id)?;
            let encode = encode_options(&state.settings, tile.format);
            let background = state.settings.tile_background;
            serve_tile(&state, &id, &headers, |geometry| {
                dzi::tile_request(geometry, &tile, overlap, encode, background)
            })
            .await
        }
    }
}

/// `GET /zoomify/{id}/ImageProperties.xml` and `GET /zoomify/{id}/TileGroup{g}/{z}-{x}-{y}.jpg`.
pub async fn zoomify(
    State(state): State<AppState>,
    Path(path): Path<String>,
    signature: Signature,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match parse_zoomify_path(&path)? {
        ZoomifyPath::Properties(id) => {
            signature.verify(&state, &id)?;
            descriptor(&state, &id, &headers, zoomify::format_properties)
        }
        ZoomifyPath::Tile(id, tile) => {
            signature.verify(&state, &id)?;
            let encode = encode_options(&state.settings, OutputFormat::Jpeg);
            let background = state.settings.tile_background;
            serve_tile(&state, &id, &headers, |geometry| {
                zoomify::tile_request(geometry, &tile, encode, background)
            })
            .await
        }
    }
}

/// An image's XML descriptor, with the validators and caching of its tiles.
fn descriptor(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    format: impl FnOnce(&Geometry) -> String,
) -> Result<Response, ApiError> {
    let entry = state.catalog.get(id).ok_or(TileError::NotFound)?;
    if let ImageStatus::Failed { reason } = entry.status {
        return Err(TileError::ImageFailed(reason).into());
    }
    let xml = format(&Geometry::new(entry.width, entry.height));
    let data = CachedTile::new(Bytes::from(xml), "application/xml");
    Ok(respond::tile(headers, &Tile { data, entry }))
}

async fn serve_tile(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    plan: impl FnOnce(&Geometry) -> Option<TileRequest>,
) -> Result<Response, ApiError> {
    let served = state.tiles.tile(id, Priority::User, plan).await?;
    Ok(respond::tile(headers, &served))
}
