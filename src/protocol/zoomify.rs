//! protocol::zoomify: Zoomify (OpenSeadragon's `ZoomifyTileSource`): `/zoomify/...` paths to
//! image ids and tile addresses, tiers and tile groups to canonical requests, and
//! `ImageProperties.xml`.
//!
//! Tiers are numbered from the smallest: the full-resolution tier is halved with floor, both
//! sides at once, while either side is larger than a tile, and the list is reversed. Tiles are
//! counted across tiers from the smallest, row by row, and tile `n` lives in folder
//! `TileGroup{n / 256}`. Tier z of T + 1 tiers is drawn by clients at scale 2^-(T−z) of the
//! full image, so it is served from canonical level k = T − z: the tile's cell there, scaled
//! to the tier's (floor) size, which differs from the level's (ceil) size by at most a pixel
//! and only at the right and bottom edges, so interior tiles are stored tiles sent as they are.
//! A tile named under a TileGroup other than its own is not found (as on a static Zoomify
//! export). Ids are parsed anchored at the right. Knows no HTTP, files or pixels.

use crate::codec::EncodeOptions;
use crate::geometry::{Geometry, Level};
use crate::render::{TileRequest, Transform};

use super::gigaview::{parse_id, parse_number};
use super::ParseError;

/// Tiles per `TileGroup` folder.
pub const TILES_PER_GROUP: u64 = 256;

/// What a path under `/zoomify/` addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoomifyPath {
    /// `{id}/ImageProperties.xml`.
    Properties(String),
    /// `{id}/TileGroup{g}/{z}-{x}-{y}.jpg`.
    Tile(String, ZoomifyTile),
}

/// A Zoomify tile: its group folder, tier (0 = smallest), column and row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ZoomifyTile {
    pub group: u32,
    pub tier: u32,
    pub x: u32,
    pub y: u32,
}

/// Parses the (percent-decoded) path after `/zoomify/`.
///
/// ```
/// use gigatile::protocol::zoomify::{parse_zoomify_path, ZoomifyPath, ZoomifyTile};
/// assert_eq!(
///     parse_zoomify_path("a/b.tif/TileGroup1/5-3-2.jpg").unwrap(),
///     ZoomifyPath::Tile("a/b.tif".into(), ZoomifyTile { group: 1, tier: 5, x: 3, y: 2 })
/// );
/// ```
pub fn parse_zoomify_path(path: &str) -> Result<ZoomifyPath, ParseError> {
    if let Some(id) = path.strip_suffix("/ImageProperties.xml") {
        return Ok(ZoomifyPath::Properties(parse_id(id)?));
    }
    // {id}/TileGroup{g}/{z}-{x}-{y}.jpg: the last two segments are fixed.
    let segments: Vec<&str> = path.rsplitn(3, '/').collect();
    let [name, folder, id] = segments[..] else {
        return Err(not_zoomify());
    };
    let group = folder.strip_prefix("TileGroup").ok_or_else(not_zoomify)?;
    let stem = name.strip_suffix(".jpg").ok_or_else(|| {
        ParseError::new(format!(
            "Zoomify tiles are JPEG: {name:?} should end in .jpg"
        ))
    })?;
    let [tier, x, y] = stem.split('-').collect::<Vec<_>>()[..] else {
        return Err(not_zoomify());
    };
    let tile = ZoomifyTile {
        group: parse_number(group, "TileGroup")?,
        tier: parse_number(tier, "tier")?,
        x: parse_number(x, "x")?,
        y: parse_number(y, "y")?,
    };
    Ok(ZoomifyPath::Tile(parse_id(id)?, tile))
}

fn not_zoomify() -> ParseError {
    ParseError::new(
        "not a Zoomify path: use {id}/ImageProperties.xml or {id}/TileGroup{g}/{z}-{x}-{y}.jpg",
    )
}

/// The size of every tier, smallest first, as clients compute them.
pub fn tier_sizes(geometry: &Geometry) -> Vec<(u32, u32)> {
    let mut size = (geometry.width, geometry.height);
    let mut tiers = vec![size];
    while size.0 > geometry.tile_size || size.1 > geometry.tile_size {
        size = (size.0 / 2, size.1 / 2);
        tiers.push(size);
    }
    tiers.reverse();
    tiers
}

/// Columns and rows of tiles of a tier of `size`.
fn grid(geometry: &Geometry, size: (u32, u32)) -> (u64, u64) {
    let tiles = |side: u32| u64::from(side.div_ceil(geometry.tile_size));
    (tiles(size.0), tiles(size.1))
}

/// The number of tiles over all tiers (`NUMTILES`).
pub fn tile_count(geometry: &Geometry) -> u64 {
    tier_sizes(geometry)
        .into_iter()
        .map(|size| {
            let (cols, rows) = grid(geometry, size);
            cols * rows
        })
        .sum()
}

/// The TileGroup of tile (`x`, `y`) of `tier`: its number counted from the smallest tier's
/// first tile, row by row, divided by [`TILES_PER_GROUP`]; `None` when there is no such tier.
pub fn tile_group(geometry: &Geometry, tier: u32, x: u32, y: u32) -> Option<u64> {
    let tiers = tier_sizes(geometry);
    let tier = usize::try_from(tier).ok().filter(|&t| t < tiers.len())?;
    let before: u64 = tiers[..tier]
        .iter()
        .map(|&size| {
            let (cols, rows) = grid(geometry, size);
            cols * rows
        })
        .sum();
    let (cols, _) = grid(geometry, tiers[tier]);
    Some((before + cols * u64::from(y) + u64::from(x)) / TILES_PER_GROUP)
}

/// The canonical request for a Zoomify tile; `None` when the tier or tile does not exist or
/// the TileGroup is not the tile's own.
///
/// Clients lay tier z out at scale 2^-(T−z) and ask for ceil(W·2^-(T−z) / 256) columns, which
/// is exactly level T − z's grid; a last column (or row) that the floor-halved tier lacks is
/// served at the level's size.
pub fn tile_request(
    geometry: &Geometry,
    tile: &ZoomifyTile,
    encode: EncodeOptions,
    background: [u8; 3],
) -> Option<TileRequest> {
    let tiers = tier_sizes(geometry);
    let top = u32::try_from(tiers.len() - 1).ok()?;
    let level = Level(top.checked_sub(tile.tier)?);
    let region = geometry.tile_rect(level, tile.x, tile.y)?;
    if tile_group(geometry, tile.tier, tile.x, tile.y)? != u64::from(tile.group) {
        return None;
    }
    let (tier_w, tier_h) = tiers[tile.tier as usize];
    // The tile's side in the tier, or the level's when the tier has no such tile.
    let side = |tier_side: u32, start: u32, region_side: u32| match tier_side.saturating_sub(start)
    {
        0 => region_side,
        left => left.min(geometry.tile_size),
    };
    Some(TileRequest {
        level,
        region,
        out_size: (
            side(tier_w, region.x, region.width),
            side(tier_h, region.y, region.height),
        ),
        canvas: None,
        encode,
        background,
        transform: Transform::NONE,
    })
}

/// `ImageProperties.xml`.
pub fn format_properties(geometry: &Geometry) -> String {
    format!(
        "<IMAGE_PROPERTIES WIDTH=\"{}\" HEIGHT=\"{}\" NUMTILES=\"{}\" NUMIMAGES=\"1\" VERSION=\"1.8\" TILESIZE=\"{}\" />\n",
        geometry.width,
        geometry.height,
        tile_count(geometry),
        geometry.tile_size
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::OutputFormat;
    use crate::raster::Rect;

    const JPEG: EncodeOptions = EncodeOptions {
        format: OutputFormat::Jpeg,
        quality: Some(85),
    };

    fn tile(group: u32, tier: u32, x: u32, y: u32) -> ZoomifyTile {
        ZoomifyTile { group, tier, x, y }
    }

    #[test]
    fn every_url_form_parses() {
        assert_eq!(
            parse_zoomify_path("a.tif/ImageProperties.xml").unwrap(),
            ZoomifyPath::Properties("a.tif".into())
        );
        assert_eq!(
            parse_zoomify_path("x/TileGroup0/a.tif/ImageProperties.xml").unwrap(),
            ZoomifyPath::Properties("x/TileGroup0/a.tif".into())
        );
        assert_eq!(
            parse_zoomify_path("x/y/a.tif/TileGroup12/7-30-1.jpg").unwrap(),
            ZoomifyPath::Tile("x/y/a.tif".into(), tile(12, 7, 30, 1))
        );
    }

    #[test]
    fn bad_paths_are_parse_errors() {
        for p in [
            "",
            "ImageProperties.xml",
            "/ImageProperties.xml",
            "../ImageProperties.xml",
            "a.tif",
            "a.tif/",
            "a.tif/TileGroup0",
            "TileGroup0/0-0-0.jpg",
            "a.tif/TileGroup/0-0-0.jpg",
            "a.tif/TileGroupX/0-0-0.jpg",
            "a.tif/Group0/0-0-0.jpg",
            "a.tif/TileGroup0/0-0-0.png",
            "a.tif/TileGroup0/0-0.jpg",
            "a.tif/TileGroup0/0-0-0-0.jpg",
            "a.tif/TileGroup0/0-x-0.jpg",
            "a.tif/TileGroup0/0-0-99999999999.jpg",
            "a//b/TileGroup0/0-0-0.jpg",
        ] {
            assert!(parse_zoomify_path(p).is_err(), "{p:?} should not parse");
        }
    }

    #[test]
    fn tiers_halve_with_floor_smallest_first() {
        assert_eq!(tier_sizes(&Geometry::new(200, 100)), [(200, 100)]);
        assert_eq!(
            tier_sizes(&Geometry::new(1001, 601)),
            [(250, 150), (500, 300), (1001, 601)]
        );
        // 513 wide: floor gives 256 after one halving, where ceil gives 257 (two tiers, not 3).
        assert_eq!(
            tier_sizes(&Geometry::new(513, 100)),
            [(256, 50), (513, 100)]
        );
        assert_eq!(Geometry::new(513, 100).max_level(), Level(2));
    }

    #[test]
    fn tiles_are_counted_from_the_smallest_tier_in_groups_of_256() {
        // 5000×4000: tiers 156×125 (1 tile), 312×250 (2×1), 625×500 (3×2), 1250×1000 (5×4),
        // 2500×2000 (10×8), 5000×4000 (20×16).
        let g = Geometry::new(5000, 4000);
        assert_eq!(tier_sizes(&g).len(), 6);
        assert_eq!(tile_count(&g), 1 + 2 + 6 + 20 + 80 + 320);
        assert_eq!(tile_group(&g, 0, 0, 0), Some(0));
        // Tier 5 starts at tile 109; its tile (6, 7) is 109 + 20·7 + 6 = 255, (7, 7) is 256.
        assert_eq!(tile_group(&g, 5, 6, 7), Some(0));
        assert_eq!(tile_group(&g, 5, 7, 7), Some(1));
        assert_eq!(tile_group(&g, 5, 19, 15), Some(1));
        assert_eq!(tile_group(&g, 6, 0, 0), None);
        assert!(format_properties(&g).starts_with(
            "<IMAGE_PROPERTIES WIDTH=\"5000\" HEIGHT=\"4000\" NUMTILES=\"429\" NUMIMAGES=\"1\" VERSION=\"1.8\" TILESIZE=\"256\" />"
        ));
    }

    #[test]
    fn tiles_map_to_canonical_levels() {
        let g = Geometry::new(5000, 4000);
        let req = tile_request(&g, &tile(1, 5, 8, 7), JPEG, [0; 3]).unwrap();
        assert_eq!(req.level, Level(0));
        assert_eq!(req.region, Rect::new(2048, 1792, 256, 256));
        assert_eq!(req.out_size, (256, 256));
        assert_eq!(req.canvas, None);
        // Tier 2 is 625×500; level 3 is 625×500 too.
        let req = tile_request(&g, &tile(0, 2, 2, 1), JPEG, [0; 3]).unwrap();
        assert_eq!(req.level, Level(3));
        assert_eq!(req.region, Rect::new(512, 256, 113, 244));
        assert_eq!(req.out_size, (113, 244));
    }

    #[test]
    fn floor_tiers_scale_the_level_edge_by_a_pixel() {
        // 1001×601: tier 1 is 500×300, level 1 is 501×301.
        let g = Geometry::new(1001, 601);
        let req = tile_request(&g, &tile(0, 1, 1, 1), JPEG, [0; 3]).unwrap();
        assert_eq!(req.level, Level(1));
        assert_eq!(req.region, Rect::new(256, 256, 245, 45));
        assert_eq!(req.out_size, (244, 44));
        // Interior tiles keep their size, so they pass through.
        let req = tile_request(&g, &tile(0, 1, 0, 0), JPEG, [0; 3]).unwrap();
        assert_eq!(req.out_size, (256, 256));
    }

    #[test]
    fn a_column_the_floor_tier_lacks_is_served_at_the_level_size() {
        // 1026 wide: tier 1 is 512 (2 columns), level 1 is 513 (3 columns, as clients ask).
        let g = Geometry::new(1026, 300);
        assert_eq!(tier_sizes(&g)[1], (513, 150));
        let g = Geometry::new(1025, 300);
        assert_eq!(tier_sizes(&g)[1], (512, 150));
        let req = tile_request(&g, &tile(0, 1, 2, 0), JPEG, [0; 3]).unwrap();
        assert_eq!(req.region, Rect::new(512, 0, 1, 150));
        assert_eq!(req.out_size, (1, 150));
    }

    #[test]
    fn missing_tiers_tiles_and_wrong_groups_are_none() {
        let g = Geometry::new(5000, 4000);
        assert!(tile_request(&g, &tile(0, 6, 0, 0), JPEG, [0; 3]).is_none());
        assert!(tile_request(&g, &tile(1, 5, 20, 0), JPEG, [0; 3]).is_none());
        assert!(tile_request(&g, &tile(1, 5, 0, 16), JPEG, [0; 3]).is_none());
        // (7, 7) is in TileGroup1, (6, 7) in TileGroup0.
        assert!(tile_request(&g, &tile(0, 5, 7, 7), JPEG, [0; 3]).is_none());
        assert!(tile_request(&g, &tile(1, 5, 6, 7), JPEG, [0; 3]).is_none());
        assert!(tile_request(&g, &tile(0, 5, 6, 7), JPEG, [0; 3]).is_some());
    }
}
