//! geometry: pyramid levels and tile grids, in the one convention used inside gigatile.
//!
//! Level k = 0 is full resolution; level k measures ceil(W/2^k) × ceil(H/2^k). The coarsest
//! level K is the first whose longer side fits one tile: K = max(0, ceil(log2(max(W,H)/256))).
//! Protocol adapters convert their own numbering (Gigaview z, Deep Zoom levels, IIIF scale
//! factors, Zoomify tiers) to and from this one.

use crate::raster::Rect;

/// The tile edge used for every pyramid gigatile builds and every Gigaview tile.
pub const TILE_SIZE: u32 = 256;

/// A pyramid level: 0 is full resolution, each next level half the size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Level(pub u32);

/// The pyramid geometry of an image of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub width: u32,
    pub height: u32,
    pub tile_size: u32,
}

/// ceil(v / 2^k) without overflow.
pub const fn halve_ceil(v: u32, k: u32) -> u32 {
    if k >= 32 {
        return if v == 0 { 0 } else { 1 };
    }
    ((v as u64 + (1u64 << k) - 1) >> k) as u32
}

impl Geometry {
    /// The geometry of a `width`×`height` image with 256-pixel tiles.
    pub const fn new(width: u32, height: u32) -> Geometry {
        Geometry {
            width,
            height,
            tile_size: TILE_SIZE,
        }
    }

    /// The coarsest level K: the first whose longer side fits one tile.
    pub fn max_level(&self) -> Level {
        let mut k = 0;
        while halve_ceil(self.width.max(self.height), k) > self.tile_size {
            k += 1;
        }
        Level(k)
    }

    /// The number of levels, K + 1.
    pub fn level_count(&self) -> u32 {
        self.max_level().0 + 1
    }

    /// The size of level `k` (any k; levels past K keep halving down to 1×1).
    pub fn level_size(&self, level: Level) -> (u32, u32) {
        (
            halve_ceil(self.width, level.0).max(1),
            halve_ceil(self.height, level.0).max(1),
        )
    }

    /// Columns and rows of tiles at a level.
    pub fn tile_grid(&self, level: Level) -> (u32, u32) {
        let (w, h) = self.level_size(level);
        (w.div_ceil(self.tile_size), h.div_ceil(self.tile_size))
    }

    /// The pixels of tile (`col`, `row`) at a level, cropped at the right and bottom edges;
    /// `None` when the tile lies outside the grid.
    pub fn tile_rect(&self, level: Level, col: u32, row: u32) -> Option<Rect> {
        let (cols, rows) = self.tile_grid(level);
        if col >= cols || row >= rows {
            return None;
        }
        let (w, h) = self.level_size(level);
        let x = col * self.tile_size;
        let y = row * self.tile_size;
        Some(Rect::new(
            x,
            y,
            self.tile_size.min(w - x),
            self.tile_size.min(h - y),
        ))
    }

    /// Whether a stored image of `width`×`height` can serve as level `k`: libvips halves with
    /// floor, gigatile with ceil, so sizes within one pixel match.
    pub fn matches_level(&self, level: Level, width: u32, height: u32) -> bool {
        let (w, h) = self.level_size(level);
        w.abs_diff(width) <= 1 && h.abs_diff(height) <= 1
    }

    /// The coarsest level (at most K) still at least `width`×`height`: the finest level a
    /// picture scaled down to that size needs.
    pub fn level_for_size(&self, width: u32, height: u32) -> Level {
        let coarsest = self.max_level().0;
        let fits = |k: u32| {
            let (w, h) = self.level_size(Level(k));
            w >= width && h >= height
        };
        Level((0..coarsest).take_while(|&k| fits(k + 1)).count() as u32)
    }

    /// Total number of tiles over all levels 0..=K.
    pub fn total_tiles(&self) -> u64 {
        (0..self.level_count())
            .map(|k| {
                let (c, r) = self.tile_grid(Level(k));
                u64::from(c) * u64::from(r)
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_for_a_size_is_the_coarsest_still_large_enough() {
        let g = Geometry::new(4000, 3000);
        assert_eq!(g.level_for_size(4000, 3000), Level(0));
        assert_eq!(g.level_for_size(2001, 10), Level(0));
        assert_eq!(g.level_for_size(2000, 1500), Level(1));
        assert_eq!(g.level_for_size(800, 600), Level(2));
        assert_eq!(g.level_for_size(1, 1), g.max_level());
    }

    #[test]
    fn max_level_follows_the_design_formula() {
        assert_eq!(Geometry::new(1, 1).max_level(), Level(0));
        assert_eq!(Geometry::new(256, 100).max_level(), Level(0));
        assert_eq!(Geometry::new(257, 100).max_level(), Level(1));
        assert_eq!(Geometry::new(512, 512).max_level(), Level(1));
        assert_eq!(Geometry::new(513, 2).max_level(), Level(2));
        // 60000×40000: ceil(log2(60000/256)) = ceil(7.87) = 8.
        assert_eq!(Geometry::new(60000, 40000).max_level(), Level(8));
        assert_eq!(Geometry::new(20000, 15000).max_level(), Level(7));
    }

    #[test]
    fn levels_halve_with_ceil() {
        let g = Geometry::new(1001, 3);
        assert_eq!(g.level_size(Level(1)), (501, 2));
        assert_eq!(g.level_size(Level(2)), (251, 1));
        assert_eq!(g.level_size(Level(40)), (1, 1));
    }

    #[test]
    fn edge_tiles_are_cropped() {
        let g = Geometry::new(600, 300);
        assert_eq!(g.tile_grid(Level(0)), (3, 2));
        assert_eq!(
            g.tile_rect(Level(0), 2, 1),
            Some(Rect::new(512, 256, 88, 44))
        );
        assert_eq!(g.tile_rect(Level(0), 3, 0), None);
        assert_eq!(g.total_tiles(), 6 + 2 + 1);
    }

    #[test]
    fn vips_floor_levels_match() {
        let g = Geometry::new(20001, 15001);
        // vips: floor(20001/2) = 10000; gigatile: 10001.
        assert!(g.matches_level(Level(1), 10000, 7500));
        assert!(!g.matches_level(Level(1), 9998, 7500));
    }
}
