//! protocol: each client protocol's URLs translated into the one canonical request, and its
//! metadata formatted. Pure parsing and formatting: no HTTP, files or pixels.

pub mod dzi;
pub mod fuzzing;
pub mod gigaview;
pub mod iiif;
pub mod zoomify;

/// A URL that does not follow a protocol's syntax (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub fn new(msg: impl Into<String>) -> Self {
        ParseError(msg.into())
    }
}
