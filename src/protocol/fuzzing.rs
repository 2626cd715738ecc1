//! protocol::fuzzing: one entry point that runs every protocol's URL parser on arbitrary input,
//! then maps what parses onto an image's geometry, for `cargo fuzz` (`fuzz/fuzz_targets/urls.rs`)
//! and the tests. Parsing and arithmetic must never panic, whatever the path or the image size.

use super::{dzi, gigaview, iiif, zoomify};
use crate::codec::{EncodeOptions, OutputFormat};
use crate::geometry::Geometry;
use crate::imgserv::fit;

/// Input: 4 bytes of width, 4 of height (little-endian; 0 becomes 1), then the path (lossy
/// UTF-8), tried as every route's path and as an imgserv query.
pub fn fuzz_one(data: &[u8]) {
    let Some((size, path)) = data.split_first_chunk::<8>() else {
        return;
    };
    let side = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes")).max(1);
    let geometry = Geometry::new(side(&size[..4]), side(&size[4..]));
    let path = String::from_utf8_lossy(path);
    let encode = EncodeOptions {
        format: OutputFormat::Jpeg,
        quality: Some(85),
    };
    if let Ok(gigaview::ImagePath::Tile(_, tile)) = gigaview::parse_image_path(&path) {
        let _ = gigaview::tile_request(&geometry, &tile, encode, [0; 3]);
    }
    for version in [iiif::Version::V3, iiif::Version::V2] {
        if let Ok(iiif::IiifPath::Image(_, req)) = iiif::parse_path(version, &path) {
            if let Ok(resolved) = iiif::resolve(version, &req, (geometry.width, geometry.height)) {
                let transform = iiif::transform(&req);
                let _ = iiif::tile_request(&geometry, &resolved, transform, encode, [0; 3]);
            }
        }
    }
    if let Ok(dzi::DziPath::Tile(_, tile)) = dzi::parse_dzi_path(&path) {
        for overlap in [0, 1, 128] {
            let _ = dzi::tile_request(&geometry, &tile, overlap, encode, [0; 3]);
        }
    }
    if let Ok(zoomify::ZoomifyPath::Tile(_, tile)) = zoomify::parse_zoomify_path(&path) {
        let _ = zoomify::tile_request(&geometry, &tile, encode, [0; 3]);
    }
    if let Ok(query) = fit::parse_query_string(&path) {
        let _ = fit::fit_size((geometry.width, geometry.height), query.box_size, 50);
    }
}

#[cfg(test)]
mod tests {
    use super::fuzz_one;

    /// A few inputs of each route, at extreme image sizes, through the fuzz entry point.
    #[test]
    fn every_route_survives_extreme_sizes() {
        let paths = [
            "a.tif/tiles/31/4294967295/4294967295.png",
            "a.tif/0,0,4294967295,4294967295/max/359.999/bitonal.webp",
            "a.tif/pct:0,0,100,100/^pct:1000/!90/gray.png",
            "a.tif/square/!4294967295,1/0/default.jpg",
            "a.tif_files/64/4294967295_0.jpg",
            "a.tif/TileGroup4294967295/31-0-0.jpg",
            "src=/a.jpg&width=4294967295&height=1",
        ];
        for size in [[1u32, 1], [u32::MAX, u32::MAX], [1, u32::MAX], [1000, 600]] {
            for path in paths {
                let mut input = size[0].to_le_bytes().to_vec();
                input.extend_from_slice(&size[1].to_le_bytes());
                input.extend_from_slice(path.as_bytes());
                fuzz_one(&input);
            }
        }
    }
}
