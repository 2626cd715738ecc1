//! protocol::gigaview: the Gigaview tile API (Leaflet) — `/api/images/{id}/...` paths to image
//! ids and tile addresses, and Gigaview's zoom numbering to canonical levels and back.
//!
//! Ids may contain `/` (raw or percent-encoded as `%2F`); what follows the id is fixed by the
//! route, so the id is parsed anchored at the right. Zoom z = 0 is the whole image in one tile,
//! z = K is full resolution; tiles are always 256×256, edge tiles padded. Knows no HTTP.

use crate::codec::{EncodeOptions, OutputFormat};
use crate::geometry::{Geometry, Level};
use crate::raster::Rect;
use crate::render::{TileRequest, Transform};

use super::ParseError;

/// What a path under `/api/images/` addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImagePath {
    /// `{id}`: the image itself (DELETE).
    Image(String),
    /// `{id}/meta`.
    Meta(String),
    /// `{id}/tiles/{z}/{x}/{y}[.{ext}]`.
    Tile(String, TileAddress),
}

/// A Gigaview tile: zoom, column, row, and the format named by the extension (`None` when the
/// URL names none, so `Accept` decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileAddress {
    pub z: u32,
    pub x: u32,
    pub y: u32,
    pub format: Option<OutputFormat>,
}

/// Parses the (percent-decoded) path after `/api/images/`.
///
/// ```
/// use gigatile::protocol::gigaview::{parse_image_path, ImagePath};
/// let p = parse_image_path("hubble/heic1502a.tif/tiles/3/1/2.png").unwrap();
/// let ImagePath::Tile(id, tile) = p else { panic!() };
/// assert_eq!(id, "hubble/heic1502a.tif");
/// assert_eq!((tile.z, tile.x, tile.y), (3, 1, 2));
/// ```
pub fn parse_image_path(path: &str) -> Result<ImagePath, ParseError> {
    if let Some(id) = path.strip_suffix("/meta") {
        return Ok(ImagePath::Meta(parse_id(id)?));
    }
    // {id}/tiles/{z}/{x}/{y}[.ext]: the last four segments are fixed.
    let segments: Vec<&str> = path.rsplitn(5, '/').collect();
    if let [last, x, z, "tiles", id] = segments[..] {
        let (y, format) = match last.split_once('.') {
            Some((y, ext)) => (y, Some(parse_format(ext)?)),
            None => (last, None),
        };
        let address = TileAddress {
            z: parse_number(z, "zoom")?,
            x: parse_number(x, "x")?,
            y: parse_number(y, "y")?,
            format,
        };
        return Ok(ImagePath::Tile(parse_id(id)?, address));
    }
    Ok(ImagePath::Image(parse_id(path)?))
}

pub(crate) fn parse_number(s: &str, what: &str) -> Result<u32, ParseError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 9 {
        return Err(ParseError::new(format!(
            "{what} must be a whole number, not {s:?}"
        )));
    }
    s.parse()
        .map_err(|_| ParseError::new(format!("{what} must be a whole number")))
}

pub(crate) fn parse_format(ext: &str) -> Result<OutputFormat, ParseError> {
    OutputFormat::from_extension(ext).ok_or_else(|| {
        ParseError::new(format!(
            "unknown tile format {ext:?}: use jpg, jpeg, png or webp"
        ))
    })
}

/// Checks an image id: a relative path of non-empty segments, none `.` or `..`.
pub fn parse_id(id: &str) -> Result<String, ParseError> {
    let bad = id.is_empty()
        || id.starts_with('/')
        || id.contains('\\')
        || id.contains('\0')
        || id
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if bad {
        return Err(ParseError::new("not a valid image id"));
    }
    Ok(id.to_string())
}

/// The canonical level of Gigaview zoom `z` (z = 0: one tile; z = K: full resolution);
/// `None` when z is deeper than full resolution.
pub fn level_of_zoom(geometry: &Geometry, z: u32) -> Option<Level> {
    geometry.max_level().0.checked_sub(z).map(Level)
}

/// Gigaview's zoom for a canonical level.
pub fn zoom_of_level(geometry: &Geometry, level: Level) -> u32 {
    geometry.max_level().0.saturating_sub(level.0)
}

/// The region of a tile at a level, cropped to the image (the tile is then padded to
/// 256×256); `None` when the tile lies outside.
pub fn tile_region(geometry: &Geometry, tile: &TileAddress) -> Option<(Level, Rect)> {
    let level = level_of_zoom(geometry, tile.z)?;
    Some((level, geometry.tile_rect(level, tile.x, tile.y)?))
}

/// The canonical request for a Gigaview tile: the tile's region at its level, padded to a
/// 256×256 canvas (background colour for JPEG, transparent for PNG and WebP); `None` when the
/// tile lies outside the image.
pub fn tile_request(
    geometry: &Geometry,
    tile: &TileAddress,
    encode: EncodeOptions,
    background: [u8; 3],
) -> Option<TileRequest> {
    let (level, region) = tile_region(geometry, tile)?;
    Some(TileRequest {
        level,
        region,
        out_size: (region.width, region.height),
        canvas: Some((geometry.tile_size, geometry.tile_size)),
        encode,
        background,
        transform: Transform::NONE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_parsed_anchored_at_the_right() {
        assert_eq!(
            parse_image_path("a.tif").unwrap(),
            ImagePath::Image("a.tif".into())
        );
        assert_eq!(
            parse_image_path("x/y/a.tif/meta").unwrap(),
            ImagePath::Meta("x/y/a.tif".into())
        );
        let ImagePath::Tile(id, t) = parse_image_path("tiles/tiles/0/0/0").unwrap() else {
            panic!("a tile")
        };
        assert_eq!(id, "tiles");
        assert_eq!(t.format, None);
        let ImagePath::Tile(id, t) = parse_image_path("a/b.jpg/tiles/12/3/4.webp").unwrap() else {
            panic!("a tile")
        };
        assert_eq!(
            (id.as_str(), t.z, t.x, t.y, t.format),
            ("a/b.jpg", 12, 3, 4, Some(OutputFormat::Webp))
        );
    }

    #[test]
    fn bad_paths_are_parse_errors() {
        for p in [
            "",
            "/abs",
            "../etc/passwd",
            "a/../../b",
            "a//b",
            "a.tif/tiles/1/2/x.jpg",
            "a.tif/tiles/-1/2/3.jpg",
            "a.tif/tiles/1/2/3.gif",
            "a.tif/tiles/1/2/99999999999.jpg",
        ] {
            assert!(parse_image_path(p).is_err(), "{p:?} should not parse");
        }
    }

    #[test]
    fn zoom_and_levels_convert() {
        let g = Geometry::new(1000, 600); // K = 2
        assert_eq!(level_of_zoom(&g, 0), Some(Level(2)));
        assert_eq!(level_of_zoom(&g, 2), Some(Level(0)));
        assert_eq!(level_of_zoom(&g, 3), None);
        assert_eq!(zoom_of_level(&g, Level(1)), 1);
        let t = TileAddress {
            z: 2,
            x: 3,
            y: 2,
            format: None,
        };
        assert_eq!(
            tile_region(&g, &t),
            Some((Level(0), Rect::new(768, 512, 232, 88)))
        );
        assert_eq!(tile_region(&g, &TileAddress { x: 4, ..t }), None);
    }
}
