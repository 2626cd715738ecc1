//! http::viewer: the web page, embedded in the binary (a placeholder until the viewer lands).

use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};

const PAGE: &str = include_str!("viewer.html");

/// Scripts and styles inline in the page, images and data from this server only.
const CSP: &str = "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `GET /`.
pub async fn index() -> Response {
    let mut response = Html(PAGE).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
