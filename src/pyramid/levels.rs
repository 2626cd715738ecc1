//! pyramid::levels: which stored image serves each level of an image's canonical geometry.
//!
//! A [`Pyramid`] is the set of tiled images stored for one picture (the IFDs of a pyramidal
//! TIFF, a built BigTIFF, or a quick preview of the coarse levels), each with its scale relative
//! to full resolution. It knows nothing of files or formats: stored images are [`TiledImage`]
//! trait objects, so the renderer can be driven by any tiled store.

use std::fmt;
use std::sync::Arc;

use crate::error::Result;
use crate::geometry::{Geometry, Level};
use crate::raster::{PixelLayout, Raster, Rect};

/// One stored, tiled image: random access to its tiles by grid position.
pub trait TiledImage: Send + Sync + fmt::Debug {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Width and height of a (full) tile.
    fn tile_size(&self) -> (u32, u32);
    /// Layout of decoded tiles.
    fn layout(&self) -> PixelLayout;
    /// The tile at (`col`, `row`), decoded to sRGB and cropped to the image at the edges.
    fn read_tile(&self, col: u32, row: u32) -> Result<Raster>;
    /// The tile's stored bytes as a complete JPEG a browser can show as-is, when they are one
    /// (no decode, no re-encode); `None` otherwise.
    fn read_jpeg_tile(&self, col: u32, row: u32) -> Result<Option<Vec<u8>>>;
}

/// A stored image and the canonical level it serves, if its size matches one.
#[derive(Debug, Clone)]
pub struct StoredLevel {
    pub image: Arc<dyn TiledImage>,
    /// The level whose size this image matches within one pixel, if any.
    pub level: Option<Level>,
    /// Full-resolution pixels per stored pixel, horizontally and vertically.
    pub scale: (f64, f64),
}

impl StoredLevel {
    /// The rectangle of tile (`col`, `row`), cropped at the edges.
    pub fn tile_rect(&self, col: u32, row: u32) -> Rect {
        let (w, h) = self.image.size();
        let (tw, th) = self.image.tile_size();
        let x = col * tw;
        let y = row * th;
        Rect::new(x, y, tw.min(w - x), th.min(h - y))
    }
}

/// The stored images of one picture, finest first.
#[derive(Debug, Clone)]
pub struct Pyramid {
    geometry: Geometry,
    stored: Vec<StoredLevel>,
}

impl Pyramid {
    /// A pyramid for a picture of `geometry` from its stored images (any order; images larger
    /// than the picture or degenerate are ignored).
    pub fn new(geometry: Geometry, images: Vec<Arc<dyn TiledImage>>) -> Pyramid {
        let mut stored: Vec<StoredLevel> = images
            .into_iter()
            .filter_map(|image| {
                let (w, h) = image.size();
                let (tw, th) = image.tile_size();
                if w == 0 || h == 0 || tw == 0 || th == 0 {
                    return None;
                }
                if w > geometry.width + 1 || h > geometry.height + 1 {
                    return None;
                }
                let level = (0..64)
                    .map(Level)
                    .take_while(|&k| geometry.level_size(k).0 + 1 >= w)
                    .find(|&k| geometry.matches_level(k, w, h));
                let scale = (
                    f64::from(geometry.width) / f64::from(w),
                    f64::from(geometry.height) / f64::from(h),
                );
                Some(StoredLevel {
                    image,
                    level,
                    scale,
                })
            })
            .collect();
        stored.sort_by(|a, b| a.scale.0.total_cmp(&b.scale.0));
        Pyramid { geometry, stored }
    }

    /// The picture's canonical geometry.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Stored images, finest first.
    pub fn stored(&self) -> &[StoredLevel] {
        &self.stored
    }

    /// Layout of decoded pixels (that of the finest stored image).
    pub fn layout(&self) -> PixelLayout {
        self.stored
            .first()
            .map_or(PixelLayout::Rgb, |s| s.image.layout())
    }

    /// The stored image whose size matches `level`, if any.
    pub fn find_level(&self, level: Level) -> Option<&StoredLevel> {
        self.stored.iter().find(|s| s.level == Some(level))
    }

    /// The finest canonical level that can be rendered without upscaling: the finest stored
    /// image's level (or the level just coarser than its scale).
    pub fn finest_level(&self) -> Option<Level> {
        let finest = self.stored.first()?;
        Some(
            finest
                .level
                .unwrap_or_else(|| Level(finest.scale.0.max(1.0).log2().ceil() as u32)),
        )
    }

    /// The coarsest stored image that still has at least the resolution asked for: `needed` is
    /// full-resolution pixels per output pixel, horizontally. Falls back to the finest image
    /// when none has enough (upscaling, or levels not built yet).
    pub fn choose(&self, needed: f64) -> Option<&StoredLevel> {
        let tolerance = 1.0 + 1e-9;
        self.stored
            .iter()
            .rev()
            .find(|s| s.scale.0 <= needed * tolerance)
            .or_else(|| self.stored.first())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error::Error;

    /// A tiled image held in memory, for renderer tests.
    #[derive(Debug)]
    pub struct MemTiled {
        pub raster: Raster,
        pub tile: (u32, u32),
        pub jpeg_tiles: bool,
    }

    impl TiledImage for MemTiled {
        fn size(&self) -> (u32, u32) {
            (self.raster.width, self.raster.height)
        }
        fn tile_size(&self) -> (u32, u32) {
            self.tile
        }
        fn layout(&self) -> PixelLayout {
            self.raster.layout
        }
        fn read_tile(&self, col: u32, row: u32) -> Result<Raster> {
            let rect = Rect::new(
                col * self.tile.0,
                row * self.tile.1,
                self.tile.0,
                self.tile.1,
            );
            let full = Rect::new(0, 0, self.raster.width, self.raster.height);
            let part = rect
                .intersect(&full)
                .ok_or_else(|| Error::out_of_range("tile outside the image"))?;
            Ok(self.raster.crop(part))
        }
        fn read_jpeg_tile(&self, col: u32, row: u32) -> Result<Option<Vec<u8>>> {
            if !self.jpeg_tiles {
                return Ok(None);
            }
            let tile = self.read_tile(col, row)?;
            crate::codec::jpeg::encode(&tile, 90).map(Some)
        }
    }

    /// A pyramid of in-memory levels halving down from `base`, with box-filtered levels.
    pub fn mem_pyramid(base: Raster, tile: u32, jpeg_tiles: bool) -> Pyramid {
        let geometry = Geometry::new(base.width, base.height);
        let mut images: Vec<Arc<dyn TiledImage>> = Vec::new();
        let mut level = base;
        for k in 0..geometry.level_count() {
            if k > 0 {
                level = level.halve();
            }
            images.push(Arc::new(MemTiled {
                raster: level.clone(),
                tile: (tile, tile),
                jpeg_tiles,
            }));
        }
        Pyramid::new(geometry, images)
    }

    #[test]
    fn levels_are_matched_and_chosen() {
        let base = Raster::filled(1000, 600, PixelLayout::Rgb, &[1, 2, 3]);
        let p = mem_pyramid(base, 256, false);
        assert_eq!(p.stored().len(), 3);
        assert_eq!(p.find_level(Level(2)).unwrap().image.size(), (250, 150));
        assert_eq!(p.finest_level(), Some(Level(0)));
        assert_eq!(p.choose(1.0).unwrap().level, Some(Level(0)));
        assert_eq!(p.choose(3.9).unwrap().level, Some(Level(1)));
        assert_eq!(p.choose(4.0).unwrap().level, Some(Level(2)));
        assert_eq!(p.choose(100.0).unwrap().level, Some(Level(2)));
        assert_eq!(p.choose(0.5).unwrap().level, Some(Level(0)));
    }

    #[test]
    fn a_preview_serves_coarse_levels_only() {
        // A preview built from a 1/8 reduced decode: its finest image is level 3.
        let geometry = Geometry::new(4000, 3000);
        let preview: Arc<dyn TiledImage> = Arc::new(MemTiled {
            raster: Raster::filled(500, 375, PixelLayout::Rgb, &[0, 0, 0]),
            tile: (256, 256),
            jpeg_tiles: false,
        });
        let p = Pyramid::new(geometry, vec![preview]);
        assert_eq!(p.finest_level(), Some(Level(3)));
    }
}
