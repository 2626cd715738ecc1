//! error: the one error type of the image pipeline, sorted by whose fault it is.
//!
//! The kinds map straight onto HTTP statuses in the server (`Corrupt` and `Unsupported` are the
//! source's fault, `TooLarge` is a limit, `NotFound` and `Io` are storage), but nothing here
//! knows HTTP. Messages describe the problem in words a user can act on; they never contain a
//! server path (callers log paths through `tracing` separately).

use std::io;

/// Result alias used across the pipeline.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while reading, building or rendering an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a valid image of the format they claim to be (truncated, corrupt).
    #[error("corrupt image: {0}")]
    Corrupt(String),
    /// A valid image that uses a feature gigatile does not read (named in the message).
    #[error("unsupported image: {0}")]
    Unsupported(String),
    /// The image, or the work asked of it, exceeds a configured limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The request does not fit the image (a level or tile outside it, an empty region).
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// The source or derived object does not exist.
    #[error("not found")]
    NotFound,
    /// The work was cancelled (shutdown, deadline).
    #[error("cancelled")]
    Cancelled,
    /// The work does not fit the memory budget now; it may later (retry).
    #[error("busy: {0}")]
    Busy(String),
    /// Reading or writing bytes failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

impl Error {
    /// A corrupt-image error with a message.
    pub fn corrupt(msg: impl Into<String>) -> Self {
        Error::Corrupt(msg.into())
    }

    /// An unsupported-feature error with a message.
    pub fn unsupported(msg: impl Into<String>) -> Self {
        Error::Unsupported(msg.into())
    }

    /// A limit error with a message.
    pub fn too_large(msg: impl Into<String>) -> Self {
        Error::TooLarge(msg.into())
    }

    /// An out-of-range error with a message.
    pub fn out_of_range(msg: impl Into<String>) -> Self {
        Error::OutOfRange(msg.into())
    }

    /// Maps an I/O error met while decoding a stream: an unexpected end of data is a truncated
    /// image, not a storage failure.
    pub fn from_decode_io(err: io::Error, what: &str) -> Self {
        match err.kind() {
            io::ErrorKind::UnexpectedEof => Error::Corrupt(format!("{what}: truncated data")),
            io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::Other => {
                Error::Corrupt(format!("{what}: {err}"))
            }
            _ => Error::Io(err),
        }
    }
}
