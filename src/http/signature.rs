//! http::signature: signed URLs over HTTP. With `URL_SIGNING_KEYS` set, [`take_prefix`] runs
//! before routing: it takes a leading `/s/{token}` off the path, so that the routes of the
//! contract match unchanged, and leaves the token in the request's extensions. Each image
//! route, once it has parsed its image id, calls [`Signature::verify`], and builds the links it
//! emits (info.json ids, manifests, redirects, `Link` headers) on [`Signature::base`], which
//! carries the request's own token: a link is then exactly as valid, and for as long, as the
//! URL it was found at. Without keys none of this runs and URLs are as they always were.
//!
//! Tokens and their checks are [`crate::signing`]'s; the status of a refusal is
//! [`super::ApiError`]'s.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::uri::PathAndQuery;
use axum::http::Uri;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

use super::{ApiError, AppState};
use crate::config::Settings;
use crate::signing;

/// The token of a request's `/s/{token}` prefix.
#[derive(Debug, Clone)]
struct Token(Arc<str>);

/// `router` behind [`take_prefix`] when URLs are signed; `router` itself otherwise.
pub fn wrap(router: Router, settings: &Settings) -> Router {
    match settings.url_signing {
        Some(_) => Router::new()
            .fallback_service(router)
            .layer(axum::middleware::from_fn(take_prefix)),
        None => router,
    }
}

/// Moves a leading `/s/{token}` from the path into the request's extensions.
async fn take_prefix(mut req: Request, next: Next) -> Response {
    let uri = req.uri();
    if let Some((token, rest)) = signing::split_prefix(uri.path()) {
        let rest = match uri.query() {
            Some(query) => format!("{rest}?{query}"),
            None => rest.to_string(),
        };
        let token = Token(token.into());
        let mut parts = uri.clone().into_parts();
        parts.path_and_query = PathAndQuery::try_from(rest).ok();
        if let Ok(rewritten) = Uri::from_parts(parts) {
            *req.uri_mut() = rewritten;
            req.extensions_mut().insert(token);
        }
    }
    next.run(req).await
}

/// The token that unsigned answers (the image list, an image's metadata) hand out for image
/// `id`, when URLs are signed: one that never expires, so an image's URLs stay the same and
/// caches keep working.
pub fn token_for(settings: &Settings, id: &str) -> Option<String> {
    settings.url_signing.as_ref().map(|s| s.sign(id, None))
}

/// The signature a request carries, as an extractor: `signature: Signature` in an image
/// route's arguments.
#[derive(Debug, Clone)]
pub struct Signature(Option<Token>);

impl<S: Sync> FromRequestParts<S> for Signature {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Signature(parts.extensions.get::<Token>().cloned()))
    }
}

impl Signature {
    /// Whether this request may read image `id`: always when URLs are not signed; else when
    /// its token is valid for `id` now (403 `signature_invalid` otherwise).
    pub fn verify(&self, state: &AppState, id: &str) -> Result<(), ApiError> {
        let Some(signer) = &state.settings.url_signing else {
            return Ok(());
        };
        let token = self.0.as_ref().map(|t| &*t.0);
        signer.verify(id, token, signing::unix_now()).map_err(|e| {
            tracing::debug!(reason = %e, "signature refused");
            ApiError::from(e)
        })
    }

    /// `base` (the server's base URL) with this request's token prefix, for the links a
    /// response emits about the image it verified.
    pub fn base(&self, base: &str) -> String {
        match &self.0 {
            Some(token) => format!("{base}{}", signing::format_prefix(&token.0)),
            None => base.to_string(),
        }
    }
}
