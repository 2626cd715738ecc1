//! source::tiff: (being written)
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::source::{RowReader, SourceInfo};
use crate::storage::ByteSource;

/// (stub)
#[derive(Debug)]
pub struct TiffFile;

impl TiffFile {
    /// (stub)
    pub fn open(_bytes: Arc<dyn ByteSource>, _limits: &Limits) -> Result<Self> {
        Err(Error::unsupported("TIFF reading is not written yet"))
    }

    /// (stub)
    pub fn info(&self) -> SourceInfo {
        unreachable!()
    }

    /// (stub)
    pub fn primary(&self) -> usize {
        0
    }

    /// (stub)
    pub fn rows(&self, _image: usize) -> Result<Box<dyn RowReader>> {
        unreachable!()
    }
}
