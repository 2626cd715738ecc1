//! http::auth: who may upload and delete. With `UPLOAD_TOKEN` set, a matching
//! `Authorization: Bearer` header (compared in constant time); without it, loopback clients
//! only (behind a trusted proxy, the client `X-Forwarded-For` names; see `http::client`).

use axum::http::{header, HeaderMap, StatusCode};
use subtle::ConstantTimeEq;

use super::client::client_ip;
use super::{ApiError, Peer};
use crate::config::Settings;

/// Checks that the request may change the catalogue.
pub fn authorize(
    settings: &Settings,
    headers: &HeaderMap,
    peer: Option<Peer>,
) -> Result<(), ApiError> {
    match &settings.upload_token {
        Some(token) => {
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            match presented {
                None => Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "token_required",
                    "this server needs an upload token (Authorization: Bearer TOKEN)",
                )),
                Some(p) if bool::from(p.as_bytes().ct_eq(token.as_bytes())) => Ok(()),
                Some(_) => Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "token_invalid",
                    "the upload token is not valid",
                )),
            }
        }
        None if client_ip(settings, headers, peer).is_some_and(|ip| ip.is_loopback()) => Ok(()),
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "uploads_disabled",
            "uploads are accepted from this machine only unless the server sets UPLOAD_TOKEN",
        )),
    }
}
