//! pyramid::from_tiff: the tiled images of a TIFF as a [`Pyramid`], and whether a source TIFF
//! is a pyramid good enough to serve as it is.

use std::sync::Arc;

use crate::error::Result;
use crate::geometry::{Geometry, TILE_SIZE};
use crate::pyramid::levels::{Pyramid, TiledImage};
use crate::raster::{PixelLayout, Raster};
use crate::source::tiff::{Chunking, ImageRole, TiffFile};

/// One tiled image (IFD) of a TIFF file.
#[derive(Debug)]
pub struct TiffLevel {
    file: Arc<TiffFile>,
    index: usize,
}

impl TiledImage for TiffLevel {
    fn size(&self) -> (u32, u32) {
        let image = &self.file.images()[self.index];
        (image.width, image.height)
    }

    fn tile_size(&self) -> (u32, u32) {
        match self.file.images()[self.index].chunking {
            Chunking::Tiles { width, height } => (width, height),
            Chunking::Strips { rows_per_strip } => {
                (self.file.images()[self.index].width, rows_per_strip)
            }
        }
    }

    fn layout(&self) -> PixelLayout {
        self.file.images()[self.index].layout
    }

    fn read_tile(&self, col: u32, row: u32) -> Result<Raster> {
        self.file.read_chunk(self.index, col, row)
    }

    fn read_jpeg_tile(&self, col: u32, row: u32) -> Result<Option<Vec<u8>>> {
        self.file.jpeg_chunk(self.index, col, row)
    }
}

/// The geometry of a TIFF's primary image and its tiled full-resolution and reduced images
/// (labels, thumbnails and striped images are left out). `None` when the primary image is not
/// tiled.
pub fn tiff_levels(file: &Arc<TiffFile>) -> Option<(Geometry, Vec<Arc<dyn TiledImage>>)> {
    let images = file.images();
    let primary = &images[file.primary()];
    if !matches!(primary.chunking, Chunking::Tiles { .. }) {
        return None;
    }
    let geometry = Geometry::new(primary.width, primary.height);
    let levels = images
        .iter()
        .enumerate()
        .filter(|(i, image)| {
            (*i == file.primary() || image.role == ImageRole::Reduced)
                && matches!(image.chunking, Chunking::Tiles { .. })
                && image.layout == primary.layout
        })
        .map(|(index, _)| {
            Arc::new(TiffLevel {
                file: Arc::clone(file),
                index,
            }) as Arc<dyn TiledImage>
        })
        .collect();
    Some((geometry, levels))
}

/// A TIFF's tiled images as a pyramid of its primary image's geometry.
pub fn tiff_pyramid(file: &Arc<TiffFile>) -> Option<Pyramid> {
    tiff_levels(file).map(|(geometry, levels)| Pyramid::new(geometry, levels))
}

/// Whether a pyramid can serve every level cheaply: each canonical level has a stored image at
/// most 4× finer (so a tile never reads more than 16 stored tiles' worth of pixels).
pub fn is_usable(pyramid: &Pyramid) -> bool {
    let geometry = pyramid.geometry();
    let Some(coarsest) = pyramid.stored().last() else {
        return false;
    };
    let (w, h) = coarsest.image.size();
    pyramid
        .stored()
        .first()
        .is_some_and(|s| s.scale.0 <= 1.0 + 1e-9)
        && w.max(h) <= TILE_SIZE * 4
        && pyramid
            .stored()
            .windows(2)
            .all(|pair| pair[1].scale.0 / pair[0].scale.0 <= 4.0 + 1e-9)
        && geometry.width > 0
}
