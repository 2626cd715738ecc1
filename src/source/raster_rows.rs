//! source::raster_rows: rows of a raster held in memory, the reader of every source that
//! must be decoded whole (rotated JPEGs, interlaced PNGs, WebP), and of tests.

use crate::error::Result;
use crate::memory::Reservation;
use crate::raster::{PixelLayout, Raster};
use crate::source::RowReader;

/// Rows of a raster already in memory: the reader of every source decoded whole.
#[derive(Debug)]
pub struct RasterRows {
    raster: Raster,
    next_row: u32,
    /// The raster's bytes in the memory budget, given back with the reader.
    _memory: Reservation,
}

impl RasterRows {
    /// A reader that yields `raster`'s rows top to bottom.
    pub fn new(raster: Raster) -> RasterRows {
        RasterRows::reserved(raster, Reservation::none())
    }

    /// A reader of `raster` that holds `memory`, the raster's share of the budget.
    pub fn reserved(raster: Raster, memory: Reservation) -> RasterRows {
        RasterRows {
            raster,
            next_row: 0,
            _memory: memory,
        }
    }
}

impl RowReader for RasterRows {
    fn width(&self) -> u32 {
        self.raster.width
    }

    fn height(&self) -> u32 {
        self.raster.height
    }

    fn layout(&self) -> PixelLayout {
        self.raster.layout
    }

    fn read_rows(&mut self, buf: &mut [u8]) -> Result<u32> {
        let stride = self.raster.stride();
        let left = self.raster.height - self.next_row;
        let rows = (buf.len() / stride.max(1)).min(left as usize);
        let start = self.next_row as usize * stride;
        let bytes = rows * stride;
        buf[..bytes].copy_from_slice(&self.raster.data[start..start + bytes]);
        self.next_row += rows as u32;
        Ok(rows as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raster_rows_serve_in_bands() {
        let r = Raster::from_data(2, 3, PixelLayout::Gray, (0..6).collect()).unwrap();
        let mut rows = RasterRows::new(r);
        let mut buf = [0u8; 4];
        assert_eq!(rows.read_rows(&mut buf).unwrap(), 2);
        assert_eq!(buf, [0, 1, 2, 3]);
        assert_eq!(rows.read_rows(&mut buf).unwrap(), 1);
        assert_eq!(&buf[..2], &[4, 5]);
        assert_eq!(rows.read_rows(&mut buf).unwrap(), 0);
    }
}
