//! http::imgserv: fitted images over HTTP. `GET /imgserv.cgi` (and `/imgserv`) answers a
//! redirect to the fitted file, on the fastest mirror holding it or under `/imgcache/`, making
//! it first when needed; `GET /imgcache/{name}` serves the cache folder as static files.
//!
//! The work is [`crate::imgserv::service::FitService`]'s; this module only parses and answers.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::base_url::BaseUrl;
use super::signature::Signature;
use super::{static_files, ApiError, AppState};
use crate::imgserv::fit;
use crate::metrics::Metrics;

/// `GET /imgserv.cgi?src=/{id}&width=W&height=H[&format=jpg|png|webp]`.
pub async fn fitted(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    BaseUrl(base): BaseUrl,
    signature: Signature,
) -> Result<Response, ApiError> {
    let query = fit::parse_query_string(query.as_deref().unwrap_or_default())?;
    signature.verify(&state, &query.id)?;
    let location = state.fitted.locate(&query).await?;
    Metrics::inc(&state.metrics.imgserv_redirects);
    let url = location.url(&format!("{}/imgcache", signature.base(&base)));
    let target = HeaderValue::from_str(&url).map_err(|e| {
        ApiError::internal(
            "internal",
            "internal error",
            format!("redirect to {url:?}: {e}"),
        )
    })?;
    let status =
        StatusCode::from_u16(state.settings.imgserv_redirect_status).unwrap_or(StatusCode::FOUND);
    let mut response = status.into_response();
    let h = response.headers_mut();
    h.insert(header::LOCATION, target);
    // The redirect must reach the server each time: it records the file's last use.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /imgcache/{name}`: a fitted file; `name` is `{id}/{file}`.
pub async fn cached(
    State(state): State<AppState>,
    Path(name): Path<String>,
    signature: Signature,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = name.rsplit_once('/').map_or("", |(id, _)| id);
    signature.verify(&state, id)?;
    static_files::serve(state.fitted.imgserv().cache_dir(), &name, &headers).await
}
