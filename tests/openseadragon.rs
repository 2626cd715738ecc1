//! OpenSeadragon in headless Chromium opens a photo through Deep Zoom and Zoomify (IIIF 3 too,
//! once its routes exist), from a page on another origin, and shows the picture: the views
//! match the source and each other, with no failed request or console error
//! (`tests/browser/openseadragon.mjs`; screenshots in `target/browser-artifacts/openseadragon`).

mod common;

use common::browser::{artifacts_dir, run_script};
use common::server::TestServer;
use common::{photo, reference_level, write_png};
use gigatile::config::SettingsLayer;
use gigatile::raster::PixelLayout;

/// The protocols the script opens the image through.
const PROTOCOLS: &str = "dzi,zoomify,iiif";

#[test]
fn openseadragon_shows_the_image_through_every_protocol() {
    // 2500×1700: floor-halved Zoomify tiers (312×212) differ from canonical levels (313×213).
    let (width, height) = (2500, 1700);
    let id = "album/harbour view.png";
    let original = photo(width, height, PixelLayout::Rgb);
    let server = TestServer::start("osd", SettingsLayer::default(), |data| {
        std::fs::create_dir_all(data.path("album")).unwrap();
        write_png(&original, &data.path(id));
    });
    server.wait_ready(id, 60);
    let artifacts = artifacts_dir("openseadragon");
    let reference = artifacts.join("reference.png");
    write_png(&reference_level(&original, 2), &reference);
    run_script(
        "openseadragon.mjs",
        &[
            &format!("http://{}", server.addr),
            artifacts.to_str().unwrap(),
            id,
            &width.to_string(),
            &height.to_string(),
            reference.to_str().unwrap(),
            PROTOCOLS,
        ],
    );
}
