//! source::jpeg: (being written)
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::source::{RowReader, SourceInfo};
use crate::storage::ByteSource;

/// (stub)
#[derive(Debug)]
pub struct JpegSource;

impl JpegSource {
    /// (stub)
    pub fn open(_bytes: Arc<dyn ByteSource>, _limits: &Limits) -> Result<Self> {
        Err(Error::unsupported("JPEG reading is not written yet"))
    }

    /// (stub)
    pub fn info(&self) -> SourceInfo {
        unreachable!()
    }

    /// (stub)
    pub fn best_reduction(&self, _denominator: u32) -> u32 {
        1
    }

    /// (stub)
    pub fn rows(&self, _factor: u32) -> Result<Box<dyn RowReader>> {
        unreachable!()
    }
}
