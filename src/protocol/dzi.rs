//! protocol::dzi: Deep Zoom (OpenSeadragon's `DziTileSource`, `vips dzsave`): `/dzi/...` paths
//! to image ids and tile addresses, Deep Zoom levels to canonical requests, and the `.dzi` XML.
//!
//! Deep Zoom numbers levels from the 1×1 image (level 0) up to full resolution, level
//! ceil(log2(max(W,H))); level L measures ceil(W/2^k) × ceil(H/2^k) with k = maxLevel − L, so
//! it is canonical level k, whatever k (levels coarser than gigatile's one-tile level K are
//! rendered from the coarsest stored image). Tiles are 256 px, edge tiles cropped, and each
//! tile reaches `overlap` pixels further into its neighbours on every side that has one. Ids
//! are parsed anchored at the right, as in [`super::gigaview`]. Knows no HTTP, files or pixels.

use crate::codec::{EncodeOptions, OutputFormat};
use crate::geometry::{Geometry, Level};
use crate::raster::Rect;
use crate::render::{TileRequest, Transform};

use super::gigaview::{parse_format, parse_id, parse_number};
use super::ParseError;

/// The XML namespace of a `.dzi` descriptor.
pub const NAMESPACE: &str = "http://schemas.microsoft.com/deepzoom/2008";

/// What a path under `/dzi/` addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DziPath {
    /// `{id}.dzi`: the descriptor.
    Descriptor(String),
    /// `{id}_files/{level}/{col}_{row}.{ext}`: a tile.
    Tile(String, DziTile),
}

/// A Deep Zoom tile: level (0 = 1×1), column, row, and the format its extension names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DziTile {
    pub level: u32,
    pub col: u32,
    pub row: u32,
    pub format: OutputFormat,
}

/// Parses the (percent-decoded) path after `/dzi/`.
///
/// ```
/// use gigatile::protocol::dzi::{parse_dzi_path, DziPath};
/// assert_eq!(
///     parse_dzi_path("hubble/heic1502a.tif.dzi").unwrap(),
///     DziPath::Descriptor("hubble/heic1502a.tif".into())
/// );
/// let DziPath::Tile(id, tile) = parse_dzi_path("a/b.tif_files/12/3_4.jpg").unwrap() else {
///     panic!()
/// };
/// assert_eq!((id.as_str(), tile.level, tile.col, tile.row), ("a/b.tif", 12, 3, 4));
/// ```
pub fn parse_dzi_path(path: &str) -> Result<DziPath, ParseError> {
    if let Some(id) = path.strip_suffix(".dzi") {
        return Ok(DziPath::Descriptor(parse_id(id)?));
    }
    // {id}_files/{level}/{col}_{row}.{ext}: the last two segments are fixed.
    let segments: Vec<&str> = path.rsplitn(3, '/').collect();
    let [name, level, files] = segments[..] else {
        return Err(not_dzi());
    };
    let id = files.strip_suffix("_files").ok_or_else(not_dzi)?;
    let (stem, ext) = name.split_once('.').ok_or_else(not_dzi)?;
    let (col, row) = stem.split_once('_').ok_or_else(not_dzi)?;
    let tile = DziTile {
        level: parse_number(level, "level")?,
        col: parse_number(col, "column")?,
        row: parse_number(row, "row")?,
        format: parse_format(ext)?,
    };
    Ok(DziPath::Tile(parse_id(id)?, tile))
}

fn not_dzi() -> ParseError {
    ParseError::new("not a Deep Zoom path: use {id}.dzi or {id}_files/{level}/{col}_{row}.jpg")
}

/// The full-resolution Deep Zoom level, ceil(log2(max(W,H))).
pub fn max_dzi_level(geometry: &Geometry) -> u32 {
    let longest = geometry.width.max(geometry.height).max(1);
    u32::BITS - (longest - 1).leading_zeros()
}

/// The canonical level of Deep Zoom level `level`; `None` above full resolution.
pub fn level_of_dzi(geometry: &Geometry, level: u32) -> Option<Level> {
    max_dzi_level(geometry).checked_sub(level).map(Level)
}

/// The pixels a tile covers at its canonical level: the tile's cell, widened by `overlap` on
/// each side that has a neighbour and cropped to the level; `None` when the tile lies outside.
pub fn tile_region(geometry: &Geometry, tile: &DziTile, overlap: u32) -> Option<(Level, Rect)> {
    let level = level_of_dzi(geometry, tile.level)?;
    let cell = geometry.tile_rect(level, tile.col, tile.row)?;
    let (width, height) = geometry.level_size(level);
    let x = cell.x.saturating_sub(overlap);
    let y = cell.y.saturating_sub(overlap);
    let right = (cell.x + cell.width).saturating_add(overlap).min(width);
    let bottom = (cell.y + cell.height).saturating_add(overlap).min(height);
    Some((level, Rect::new(x, y, right - x, bottom - y)))
}

/// The canonical request for a Deep Zoom tile: its region at its level, at that size, on no
/// canvas (so a tile that is exactly one stored JPEG tile is sent as stored); `None` when the
/// tile lies outside the image.
pub fn tile_request(
    geometry: &Geometry,
    tile: &DziTile,
    overlap: u32,
    encode: EncodeOptions,
    background: [u8; 3],
) -> Option<TileRequest> {
    let (level, region) = tile_region(geometry, tile, overlap)?;
    Some(TileRequest {
        level,
        region,
        out_size: (region.width, region.height),
        canvas: None,
        encode,
        background,
        transform: Transform::NONE,
    })
}

/// The `.dzi` descriptor: JPEG tiles of the geometry's tile size with `overlap`.
pub fn format_descriptor(geometry: &Geometry, overlap: u32) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Image xmlns=\"{NAMESPACE}\" Format=\"jpg\" Overlap=\"{overlap}\" TileSize=\"{}\">\n  \
         <Size Width=\"{}\" Height=\"{}\"/>\n</Image>\n",
        geometry.tile_size, geometry.width, geometry.height
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(level: u32, col: u32, row: u32) -> DziTile {
        DziTile {
            level,
            col,
            row,
            format: OutputFormat::Jpeg,
        }
    }

    #[test]
    fn every_url_form_parses() {
        assert_eq!(
            parse_dzi_path("a.tif.dzi").unwrap(),
            DziPath::Descriptor("a.tif".into())
        );
        assert_eq!(
            parse_dzi_path("x/y/a.tif.dzi").unwrap(),
            DziPath::Descriptor("x/y/a.tif".into())
        );
        // An id that itself looks like a Deep Zoom path is taken from the right.
        assert_eq!(
            parse_dzi_path("a_files/1/0_0.jpg.dzi").unwrap(),
            DziPath::Descriptor("a_files/1/0_0.jpg".into())
        );
        for (ext, format) in [
            ("jpg", OutputFormat::Jpeg),
            ("jpeg", OutputFormat::Jpeg),
            ("png", OutputFormat::Png),
            ("webp", OutputFormat::Webp),
        ] {
            let path = format!("d/a_files/b.tif_files/14/2_3.{ext}");
            assert_eq!(
                parse_dzi_path(&path).unwrap(),
                DziPath::Tile(
                    "d/a_files/b.tif".into(),
                    DziTile {
                        format,
                        ..tile(14, 2, 3)
                    }
                )
            );
        }
    }

    #[test]
    fn bad_paths_are_parse_errors() {
        for p in [
            "",
            ".dzi",
            "a.tif",
            "/abs.dzi",
            "../x.dzi",
            "a//b.dzi",
            "a.tif_files/1/0_0",
            "a.tif_files/1/0-0.jpg",
            "a.tif_files/1/0_0.gif",
            "a.tif_files/x/0_0.jpg",
            "a.tif_files/1/-1_0.jpg",
            "a.tif_files/1/0_99999999999.jpg",
            "a.tif/1/0_0.jpg",
            "_files/1/0_0.jpg",
            "1/0_0.jpg",
            "../_files/1/0_0.jpg",
        ] {
            assert!(parse_dzi_path(p).is_err(), "{p:?} should not parse");
        }
    }

    #[test]
    fn levels_run_from_one_pixel_to_full_resolution() {
        assert_eq!(max_dzi_level(&Geometry::new(1, 1)), 0);
        assert_eq!(max_dzi_level(&Geometry::new(2, 1)), 1);
        assert_eq!(max_dzi_level(&Geometry::new(256, 256)), 8);
        assert_eq!(max_dzi_level(&Geometry::new(257, 10)), 9);
        assert_eq!(max_dzi_level(&Geometry::new(20000, 15000)), 15);
        let g = Geometry::new(1000, 600);
        assert_eq!(level_of_dzi(&g, 10), Some(Level(0)));
        assert_eq!(level_of_dzi(&g, 0), Some(Level(10)));
        assert_eq!(level_of_dzi(&g, 11), None);
        assert_eq!(g.level_size(Level(10)), (1, 1));
        assert_eq!(g.level_size(Level(9)), (2, 2));
    }

    #[test]
    fn tiles_are_cropped_at_the_edges_and_outside_tiles_are_none() {
        let g = Geometry::new(1000, 600);
        assert_eq!(
            tile_region(&g, &tile(10, 3, 2), 0),
            Some((Level(0), Rect::new(768, 512, 232, 88)))
        );
        assert_eq!(tile_region(&g, &tile(10, 4, 0), 0), None);
        assert_eq!(tile_region(&g, &tile(11, 0, 0), 0), None);
        assert_eq!(
            tile_region(&g, &tile(0, 0, 0), 0),
            Some((Level(10), Rect::new(0, 0, 1, 1)))
        );
        assert_eq!(tile_region(&g, &tile(0, 1, 0), 0), None);
        // Level 8 (k = 2) is 250×150: one tile.
        assert_eq!(
            tile_region(&g, &tile(8, 0, 0), 0),
            Some((Level(2), Rect::new(0, 0, 250, 150)))
        );
    }

    #[test]
    fn overlap_widens_interior_sides_only() {
        let g = Geometry::new(1000, 600);
        let region = |c, r| tile_region(&g, &tile(10, c, r), 2).unwrap().1;
        assert_eq!(region(0, 0), Rect::new(0, 0, 258, 258));
        assert_eq!(region(1, 1), Rect::new(254, 254, 260, 260));
        assert_eq!(region(3, 2), Rect::new(766, 510, 234, 90));
        // A one-tile level has no neighbours.
        assert_eq!(
            tile_region(&g, &tile(8, 0, 0), 2).unwrap().1,
            Rect::new(0, 0, 250, 150)
        );
    }

    #[test]
    fn requests_are_unpadded_at_their_own_size() {
        let g = Geometry::new(1000, 600);
        let encode = EncodeOptions {
            format: OutputFormat::Jpeg,
            quality: Some(85),
        };
        let req = tile_request(&g, &tile(9, 1, 0), 0, encode, [0; 3]).unwrap();
        assert_eq!(req.level, Level(1));
        assert_eq!(req.region, Rect::new(256, 0, 244, 256));
        assert_eq!(req.out_size, (244, 256));
        assert_eq!(req.canvas, None);
        assert!(tile_request(&g, &tile(9, 2, 0), 0, encode, [0; 3]).is_none());
    }

    #[test]
    fn the_descriptor_names_size_tiles_and_overlap() {
        let xml = format_descriptor(&Geometry::new(20000, 15000), 1);
        assert!(xml.starts_with("<?xml"));
        assert!(xml.contains(
            "<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\" Format=\"jpg\" Overlap=\"1\" TileSize=\"256\">"
        ));
        assert!(xml.contains("<Size Width=\"20000\" Height=\"15000\"/>"));
    }
}
