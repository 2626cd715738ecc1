//! http::error: the one place that knows HTTP statuses. Every failure becomes a JSON body
//! `{"error": "...", "code": "..."}` with a documented code; messages never carry a server path
//! or a stack (causes go to the log).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::protocol::ParseError;
use crate::signing::SignatureError;
use crate::tiles::TileError;

/// Seconds a client is told to wait before retrying a 503.
pub const RETRY_AFTER_SECONDS: u32 = 2;

/// Every `code` an error response may carry; README.md lists each one.
pub const CODES: &[&str] = &[
    "bad_request",
    "malformed_body",
    "malformed_multipart",
    "not_found",
    "tile_out_of_range",
    "out_of_range",
    "method_not_allowed",
    "unsupported_format",
    "unsupported_media_type",
    "unprocessable",
    "token_required",
    "token_invalid",
    "uploads_disabled",
    "not_uploaded",
    "signature_invalid",
    "too_large",
    "uri_too_long",
    "headers_too_large",
    "request_timeout",
    "timeout",
    "corrupt_image",
    "unsupported_image",
    "image_failed",
    "not_ready",
    "overloaded",
    "rate_limited",
    "unavailable",
    "shutting_down",
    "render_failed",
    "storage_error",
    "range_not_satisfiable",
    "internal",
    "error",
];

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds in `Retry-After` of a 429 or 503 ([`RETRY_AFTER_SECONDS`] when not set).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    code: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429 for a client over its rate limit, to retry after `wait` (in whole seconds, at least 1).
    pub fn rate_limited(wait: std::time::Duration) -> ApiError {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError {
            retry_after: Some(seconds.max(1)),
            ..ApiError::for_status(StatusCode::TOO_MANY_REQUESTS)
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// A failure that is not the client's (a bug, or the server's own I/O): logs `cause` at
    /// error level, in the request's span and so with its id, and answers a 500 with `code` and
    /// a `message` that names no server path.
    pub fn internal(code: &'static str, message: &str, cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(code, cause = %cause, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, message)
    }

    /// A request body that could not be read whole: bad chunked encoding, or a client that
    /// closed the connection before sending all its `Content-Length` promised. The client's
    /// fault (and it is often gone), so an info line, not an error.
    pub fn malformed_body(cause: impl std::fmt::Display) -> ApiError {
        tracing::info!(cause = %cause, "request body could not be read");
        ApiError::bad_request_with(
            "malformed_body",
            "the request body could not be read: bad chunked encoding, or shorter than its \
             Content-Length",
        )
    }

    /// A 400 with a more specific code than `bad_request`.
    pub fn bad_request_with(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The code for a status produced outside our handlers (framework and server limits).
    pub fn for_status(status: StatusCode) -> ApiError {
        let (code, message) = match status.as_u16() {
            400 => ("bad_request", "the request is malformed"),
            404 => ("not_found", "no such resource"),
            405 => ("method_not_allowed", "this method is not allowed here"),
            408 => ("request_timeout", "the request took too long to arrive"),
            413 => ("too_large", "the request body is too large"),
            414 => ("uri_too_long", "the request URI is too long"),
            415 => ("unsupported_media_type", "unsupported content type"),
            422 => ("unprocessable", "the request could not be processed"),
            429 => (
                "rate_limited",
                "too many requests; try again after Retry-After seconds",
            ),
            431 => ("headers_too_large", "the request headers are too large"),
            503 => ("unavailable", "the server is busy; try again shortly"),
            504 => ("timeout", "the request took too long"),
            s if s >= 500 => ("internal", "internal error"),
            _ => ("error", "the request failed"),
        };
        ApiError::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_string(&Body {
            error: &self.message,
            code: self.code,
        })
        .unwrap_or_else(|_| r#"{"error":"internal error","code":"internal"}"#.to_string());
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::SERVICE_UNAVAILABLE
            || self.status == StatusCode::TOO_MANY_REQUESTS
        {
            let seconds = self.retry_after.unwrap_or(RETRY_AFTER_SECONDS.into());
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<ParseError> for ApiError {
    fn from(e: ParseError) -> ApiError {
        ApiError::bad_request(e.0)
    }
}

impl From<SignatureError> for ApiError {
    fn from(e: SignatureError) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "signature_invalid", e.to_string())
    }
}

impl From<TileError> for ApiError {
    fn from(e: TileError) -> ApiError {
        match e {
            TileError::NotFound => ApiError::not_found("no such image"),
            TileError::OutOfRange(m) => {
                ApiError::new(StatusCode::NOT_FOUND, "tile_out_of_range", m)
            }
            TileError::NotReady => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "this level is still being built; try again shortly",
            ),
            TileError::Overloaded => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "the server is busy; try again shortly",
            ),
            TileError::TooLarge(m) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("too large: {m}"),
            ),
            TileError::ImageFailed(reason) => {
                ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "image_failed", reason)
            }
            TileError::Render(reason) => {
                ApiError::internal("render_failed", "the tile could not be rendered", reason)
            }
        }
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> ApiError {
        use crate::Error as E;
        match e {
            E::Corrupt(m) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "corrupt_image",
                format!("corrupt image: {m}"),
            ),
            E::Unsupported(m) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_image",
                format!("unsupported image: {m}"),
            ),
            E::TooLarge(m) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("too large: {m}"),
            ),
            E::OutOfRange(m) => ApiError::new(StatusCode::NOT_FOUND, "out_of_range", m),
            E::NotFound => ApiError::not_found("no such image"),
            E::Cancelled => ApiError::for_status(StatusCode::SERVICE_UNAVAILABLE),
            E::Busy(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "the server is busy; try again shortly",
            ),
            other => ApiError::internal("internal", "internal error", other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CODES;

    #[test]
    fn readme_documents_every_code() {
        let readme = include_str!("../../README.md");
        for code in CODES {
            assert!(
                readme.contains(&format!("`{code}`")),
                "README lacks `{code}`"
            );
        }
    }
}
