//! limits: how much a source may ask of the machine, checked from headers before decoding, and
//! the memory budget its large buffers draw from.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::memory::{MemoryBudget, Reservation};

/// Longest a source's large buffer waits for the memory budget before the work is refused as
/// busy (a build is then tried again later).
pub const DECODE_MEMORY_WAIT: Duration = Duration::from_secs(10);

/// Bounds on a source, checked before any pixel is decoded.
///
/// The defaults accept a 60000×40000 image and refuse what would exhaust memory: a source that
/// cannot be streamed (progressive JPEG, interlaced PNG, WebP) is decoded whole only when its
/// decoded size fits `max_decode_bytes`, and its buffer is drawn from `budget` first.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most pixels (width × height) a source may have.
    pub max_pixels: u64,
    /// Longest side, in pixels.
    pub max_dimension: u32,
    /// Most bytes a whole-image decode may allocate.
    pub max_decode_bytes: u64,
    /// The budget whole decodes and chunk decodes draw from.
    pub budget: MemoryBudget,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: 4_000_000_000,
            max_dimension: 1 << 20,
            max_decode_bytes: 1 << 30,
            budget: MemoryBudget::unlimited(),
        }
    }
}

impl Limits {
    /// Checks a source's dimensions against the pixel and dimension limits.
    pub fn check_dimensions(&self, width: u32, height: u32) -> Result<()> {
        if width == 0 || height == 0 {
            return Err(Error::corrupt(format!(
                "image has an empty dimension ({width}×{height})"
            )));
        }
        if width > self.max_dimension || height > self.max_dimension {
            return Err(Error::too_large(format!(
                "image is {width}×{height}, beyond the {} px limit on either side (MAX_SOURCE_DIMENSION)",
                self.max_dimension
            )));
        }
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.max_pixels {
            return Err(Error::too_large(format!(
                "image has {pixels} pixels, beyond the limit of {} (MAX_SOURCE_PIXELS)",
                self.max_pixels
            )));
        }
        Ok(())
    }

    /// Checks that a whole-image decode of `bytes` bytes is allowed; `why` says why the format
    /// cannot be streamed, so the error tells the user what to do.
    pub fn check_whole_decode(&self, bytes: u64, why: &str) -> Result<()> {
        if bytes > self.max_decode_bytes {
            return Err(Error::too_large(format!(
                "{why}, so it must be decoded whole, which needs {} MiB, beyond MAX_DECODE_BYTES ({} MiB); \
                 convert it to a tiled TIFF (for example `vips tiffsave in out.tif --tile --pyramid`) \
                 or raise MAX_DECODE_BYTES",
                bytes >> 20,
                self.max_decode_bytes >> 20
            )));
        }
        Ok(())
    }

    /// [`Limits::check_whole_decode`], then draws the buffer from the memory budget (waiting up
    /// to [`DECODE_MEMORY_WAIT`]); hold the reservation as long as the buffer.
    pub fn reserve_whole_decode(&self, bytes: u64, why: &str) -> Result<Reservation> {
        self.check_whole_decode(bytes, why)?;
        self.reserve(bytes, &format!("{why}; decoding it whole"))
    }

    /// Draws a decode buffer of `bytes` for `what` from the memory budget.
    pub fn reserve(&self, bytes: u64, what: &str) -> Result<Reservation> {
        self.budget.reserve(bytes, DECODE_MEMORY_WAIT, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_accept_60000_by_40000() {
        Limits::default().check_dimensions(60000, 40000).unwrap();
    }

    #[test]
    fn refuses_beyond_limits() {
        let limits = Limits {
            max_pixels: 100,
            max_dimension: 50,
            max_decode_bytes: 10,
            budget: MemoryBudget::unlimited(),
        };
        assert!(matches!(
            limits.check_dimensions(51, 1),
            Err(Error::TooLarge(_))
        ));
        assert!(matches!(
            limits.check_dimensions(20, 20),
            Err(Error::TooLarge(_))
        ));
        assert!(matches!(
            limits.check_dimensions(0, 20),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            limits.check_whole_decode(11, "progressive JPEG"),
            Err(Error::TooLarge(_))
        ));
        limits.check_dimensions(10, 10).unwrap();
    }
}
