//! source::png: (being written)
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::source::{RowReader, SourceInfo};
use crate::storage::ByteSource;

/// (stub)
#[derive(Debug)]
pub struct PngSource;

impl PngSource {
    /// (stub)
    pub fn open(_bytes: Arc<dyn ByteSource>, _limits: &Limits) -> Result<Self> {
        Err(Error::unsupported("PNG reading is not written yet"))
    }

    /// (stub)
    pub fn info(&self) -> SourceInfo {
        unreachable!()
    }

    /// (stub)
    pub fn rows(&self) -> Result<Box<dyn RowReader>> {
        unreachable!()
    }
}
