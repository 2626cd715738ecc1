//! gigatile: an image pipeline for very large images, and the server built on it.
//!
//! The pipeline knows nothing of HTTP. Pixels flow one way:
//!
//! ```text
//! storage   ByteSource: ranged reads of a local file (later an object store)
//!   └─ source    recognise by content, check limits, decode rows or chunks to 8-bit sRGB
//!        └─ pyramid   the source itself when it is a tiled pyramid; otherwise a pyramidal
//!                     tiled BigTIFF built once, streaming, in bounded memory
//!             └─ render    canonical request → choose level → read tiles → crop/resize → encode
//!                          (stored JPEG tiles that match exactly pass through untouched)
//! ```
//!
//! Shared vocabulary: [`raster::Raster`] (8-bit pixels), [`geometry`] (level k = 0 is full
//! resolution, each level half the previous, rounded up), [`error::Error`] (sorted by whose
//! fault), [`limits::Limits`] (checked from headers before decoding).

pub mod atomic;
pub mod cache;
pub mod catalog;
pub mod codec;
pub mod color;
pub mod config;
pub mod demo;
pub mod error;
pub mod geometry;
pub mod http;
pub mod imgserv;
pub mod limits;
pub mod memory;
pub mod metrics;
pub mod pool;
pub mod protocol;
pub mod pyramid;
pub mod raster;
pub mod rate_limit;
pub mod render;
pub mod server;
pub mod signing;
pub mod source;
pub mod storage;
pub mod tiles;
pub mod warmup;

pub use error::{Error, Result};
