//! Deep Zoom and Zoomify over real HTTP: descriptors, levels down to 1×1, edge tiles, overlap,
//! tier and TileGroup numbering, pixels against the source, passthrough of stored tiles, errors.

mod common;

use common::server::{encode, Response, TestServer};
use common::{assert_close, photo, reference_level, write_png};
use gigatile::config::SettingsLayer;
use gigatile::raster::{PixelLayout, Raster, Rect};

const SEA: &str = "album/sea.png";
const SEA_SIZE: (u32, u32) = (1000, 600);
/// 4200×3300: 313 Zoomify tiles over six tiers, so TileGroup1 exists.
const BIG: &str = "big.jpg";
const BIG_SIZE: (u32, u32) = (4200, 3300);

/// A server over a 1000×600 PNG in a sub-folder.
fn sea_server(name: &str, layer: SettingsLayer) -> (TestServer, Raster) {
    let original = photo(SEA_SIZE.0, SEA_SIZE.1, PixelLayout::Rgb);
    let server = TestServer::start(name, layer, |data| {
        std::fs::create_dir_all(data.path("album")).unwrap();
        write_png(&original, &data.path(SEA));
    });
    server.wait_ready(SEA, 30);
    (server, original)
}

/// A server over a 4200×3300 JPEG (its pyramid has JPEG tiles that pass through).
fn big_server(name: &str) -> (TestServer, Raster) {
    let original = photo(BIG_SIZE.0, BIG_SIZE.1, PixelLayout::Rgb);
    let server = TestServer::start(name, SettingsLayer::default(), |data| {
        let jpeg = gigatile::codec::jpeg::encode(&original, 92).unwrap();
        std::fs::write(data.path(BIG), jpeg).unwrap();
    });
    server.wait_ready(BIG, 120);
    (server, original)
}

fn jpeg(r: &Response, what: &str) -> Raster {
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("image/jpeg"), "{what}");
    gigatile::codec::jpeg::decode(&r.body).unwrap()
}

fn size(r: &Raster) -> (u32, u32) {
    (r.width, r.height)
}

#[test]
fn the_dzi_descriptor_describes_the_image() {
    let (server, _) = sea_server("dz-descriptor", SettingsLayer::default());
    let r = server.get(&format!("/dzi/{}.dzi", encode(SEA)));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/xml"));
    let xml = r.text();
    for part in [
        "<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\"",
        "Format=\"jpg\"",
        "Overlap=\"0\"",
        "TileSize=\"256\"",
        "<Size Width=\"1000\" Height=\"600\"/>",
    ] {
        assert!(xml.contains(part), "{part} not in {xml}");
    }
    // The raw id names the same image; validators and CORS as for tiles.
    assert_eq!(server.get(&format!("/dzi/{SEA}.dzi")).body, r.body);
    let etag = r.header("etag").unwrap();
    assert!(r.header("last-modified").is_some());
    assert!(r.header("cache-control").unwrap().contains("max-age"));
    let again = server.request(
        "GET",
        &format!("/dzi/{SEA}.dzi"),
        &[("If-None-Match", etag)],
        b"",
    );
    assert_eq!(again.status, 304);
    let cors = server.request(
        "GET",
        &format!("/dzi/{SEA}.dzi"),
        &[("Origin", "http://x.example")],
        b"",
    );
    assert_eq!(cors.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn dzi_levels_go_down_to_one_pixel_with_cropped_edge_tiles() {
    let (server, original) = sea_server("dz-levels", SettingsLayer::default());
    // 1000×600: levels 0 (1×1) to 10 (full resolution).
    for level in 0..=10u32 {
        let k = 10 - level;
        let (w, h) = (
            SEA_SIZE.0.div_ceil(1 << k).max(1),
            SEA_SIZE.1.div_ceil(1 << k).max(1),
        );
        let (cols, rows) = (w.div_ceil(256), h.div_ceil(256));
        let base = format!("/dzi/{}_files/{level}", encode(SEA));
        let first = jpeg(&server.get(&format!("{base}/0_0.jpg")), "first tile");
        assert_eq!(size(&first), (w.min(256), h.min(256)), "level {level}");
        let last = jpeg(
            &server.get(&format!("{base}/{}_{}.jpg", cols - 1, rows - 1)),
            "last tile",
        );
        assert_eq!(
            size(&last),
            (w - (cols - 1) * 256, h - (rows - 1) * 256),
            "level {level}"
        );
        server
            .get(&format!("{base}/{cols}_0.jpg"))
            .assert_error(404, "tile_out_of_range");
        server
            .get(&format!("{base}/0_{rows}.jpg"))
            .assert_error(404, "tile_out_of_range");
    }
    server
        .get(&format!("/dzi/{}_files/11/0_0.jpg", encode(SEA)))
        .assert_error(404, "tile_out_of_range");
    // Pixels against the source at full resolution, at half, and at 1/8 (8 = level 7).
    for (level, col, row) in [(10, 1, 1), (10, 3, 2), (9, 1, 0), (7, 0, 0)] {
        let k = 10 - level;
        let tile = jpeg(
            &server.get(&format!("/dzi/{SEA}_files/{level}/{col}_{row}.jpg")),
            "tile",
        );
        let want = reference_level(&original, k).crop(Rect::new(
            col * 256,
            row * 256,
            tile.width,
            tile.height,
        ));
        assert_close(
            &tile,
            &want,
            30.0,
            &format!("level {level} tile {col}_{row}"),
        );
    }
    // Every format the extension names.
    let png = server.get(&format!("/dzi/{SEA}_files/10/3_2.png"));
    assert_eq!(png.header("content-type"), Some("image/png"));
    assert_eq!(size(&common::decode_png(&png.body)), (232, 88));
    let webp = server.get(&format!("/dzi/{SEA}_files/10/3_2.webp"));
    assert_eq!(webp.header("content-type"), Some("image/webp"));
    assert_eq!(
        size(&gigatile::codec::webp::decode(&webp.body).unwrap()),
        (232, 88)
    );
    let jpeg_ext = server.get(&format!("/dzi/{SEA}_files/10/3_2.jpeg"));
    assert_eq!(jpeg_ext.header("content-type"), Some("image/jpeg"));
}

#[test]
fn dzi_overlap_widens_tiles_into_their_neighbours() {
    let layer = SettingsLayer {
        dzi_overlap: Some(2),
        ..SettingsLayer::default()
    };
    let (server, original) = sea_server("dz-overlap", layer);
    assert!(server
        .get(&format!("/dzi/{SEA}.dzi"))
        .text()
        .contains("Overlap=\"2\""));
    let tile = |c: u32, r: u32| {
        jpeg(
            &server.get(&format!("/dzi/{SEA}_files/10/{c}_{r}.jpg")),
            "tile",
        )
    };
    assert_eq!(size(&tile(0, 0)), (258, 258));
    assert_eq!(size(&tile(3, 2)), (234, 90));
    let inner = tile(1, 1);
    assert_eq!(size(&inner), (260, 260));
    assert_close(
        &inner,
        &original.crop(Rect::new(254, 254, 260, 260)),
        30.0,
        "overlapping tile",
    );
    // A one-tile level has no neighbours.
    assert_eq!(
        size(&jpeg(
            &server.get(&format!("/dzi/{SEA}_files/8/0_0.jpg")),
            "level 8"
        )),
        (250, 150)
    );
}

#[test]
fn zoomify_tiers_groups_pixels_and_passthrough() {
    let (server, original) = big_server("dz-zoomify");
    let props = server.get(&format!("/zoomify/{BIG}/ImageProperties.xml"));
    assert_eq!(props.status, 200, "{}", props.text());
    assert_eq!(props.header("content-type"), Some("application/xml"));
    assert_eq!(
        props.text().trim(),
        "<IMAGE_PROPERTIES WIDTH=\"4200\" HEIGHT=\"3300\" NUMTILES=\"313\" NUMIMAGES=\"1\" VERSION=\"1.8\" TILESIZE=\"256\" />"
    );
    let tile = |group: u32, z: u32, x: u32, y: u32| {
        server.get(&format!("/zoomify/{BIG}/TileGroup{group}/{z}-{x}-{y}.jpg"))
    };
    // Tiers, smallest first: 131×103, 262×206, 525×412, 1050×825, 2100×1650, 4200×3300; the
    // last starts at tile 92, so its tile (11, 9) = 92 + 17·9 + 11 = 256 opens TileGroup1.
    assert_eq!(size(&jpeg(&tile(0, 0, 0, 0), "tier 0")), (131, 103));
    assert_eq!(
        size(&jpeg(&tile(0, 5, 10, 9), "last of group 0")),
        (256, 256)
    );
    assert_eq!(
        size(&jpeg(&tile(1, 5, 11, 9), "first of group 1")),
        (256, 256)
    );
    assert_eq!(size(&jpeg(&tile(1, 5, 16, 12), "last tile")), (104, 228));
    tile(0, 5, 11, 9).assert_error(404, "tile_out_of_range");
    tile(1, 5, 10, 9).assert_error(404, "tile_out_of_range");
    tile(1, 5, 17, 0).assert_error(404, "tile_out_of_range");
    tile(0, 6, 0, 0).assert_error(404, "tile_out_of_range");
    // Floor tiers one pixel smaller than the canonical level: tier 1 is 262×206 where level 4
    // is 263×207, so its edge tile is 6×206 (and tier 2's bottom row 156 high, not 157).
    assert_eq!(size(&jpeg(&tile(0, 1, 1, 0), "tier 1 edge")), (6, 206));
    assert_eq!(size(&jpeg(&tile(0, 2, 2, 1), "tier 2 corner")), (13, 156));
    // Pixels: a full-resolution tile and one of tier 3 (level 2).
    let full = jpeg(&tile(0, 5, 3, 2), "full resolution");
    assert_close(
        &full,
        &original.crop(Rect::new(768, 512, 256, 256)),
        30.0,
        "tier 5 tile",
    );
    let quarter = jpeg(&tile(0, 3, 1, 1), "tier 3");
    assert_close(
        &quarter,
        &reference_level(&original, 2).crop(Rect::new(256, 256, 256, 256)),
        30.0,
        "tier 3 tile",
    );
    // Both protocols pass stored tiles through, byte for byte what Gigaview sends.
    let before = server.metric("gigatile_passthrough_total");
    let dzi = server.get(&format!("/dzi/{}_files/13/5_4.jpg", encode(BIG)));
    assert_eq!(size(&jpeg(&dzi, "dzi tile")), (256, 256));
    let zoomify = tile(0, 5, 5, 4);
    assert_eq!(server.metric("gigatile_passthrough_total"), before + 1.0);
    let gigaview = server.get(&format!("/api/images/{BIG}/tiles/5/5/4.jpg"));
    assert_eq!(dzi.body, gigaview.body);
    assert_eq!(zoomify.body, gigaview.body);
    // A DZI level coarser than gigatile's coarsest (K = 5): level 3 of 13 is k = 10, 5×4.
    assert_eq!(
        size(&jpeg(
            &server.get(&format!("/dzi/{BIG}_files/3/0_0.jpg")),
            "small level"
        )),
        (5, 4)
    );
}

#[test]
fn malformed_and_unknown_paths_are_json_errors() {
    let (server, _) = sea_server("dz-errors", SettingsLayer::default());
    for path in [
        "/dzi/album/sea.png",
        "/dzi/..%2Fx.dzi",
        "/dzi/album/sea.png_files/x/0_0.jpg",
        "/dzi/album/sea.png_files/1/0_0.gif",
        "/dzi/album/sea.png_files/1/00.jpg",
        "/zoomify/album/sea.png",
        "/zoomify/album/sea.png/TileGroup0/0-0-0.png",
        "/zoomify/album/sea.png/TileGroupA/0-0-0.jpg",
        "/zoomify/album/sea.png/TileGroup0/0-0.jpg",
    ] {
        server.get(path).assert_error(400, "bad_request");
    }
    server
        .get("/dzi/nope.png.dzi")
        .assert_error(404, "not_found");
    server
        .get("/dzi/nope.png_files/0/0_0.jpg")
        .assert_error(404, "not_found");
    server
        .get("/zoomify/nope.png/ImageProperties.xml")
        .assert_error(404, "not_found");
    server
        .get("/zoomify/nope.png/TileGroup0/0-0-0.jpg")
        .assert_error(404, "not_found");
    // 1000×600 Zoomify tiers: 250×150, 500×300, 1000×600 (1 + 4 + 12 tiles).
    assert!(server
        .get(&format!("/zoomify/{}/ImageProperties.xml", encode(SEA)))
        .text()
        .contains("NUMTILES=\"17\""));
    server
        .get(&format!("/zoomify/{SEA}/TileGroup0/3-0-0.jpg"))
        .assert_error(404, "tile_out_of_range");
}
