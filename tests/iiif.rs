//! IIIF Image API 3.0 and 2.1 and the Presentation 3 manifest over real HTTP: info.json,
//! negotiation, redirects, Link headers, CORS, ids with `/`, stored tiles passing through,
//! pixels of regions, sizes, mirroring, rotations and qualities, errors (400, 404, 415), and
//! links behind a reverse proxy.

mod common;

use common::server::{encode, TestServer};
use common::{assert_close, decode_png, photo, write_png};
use gigatile::config::SettingsLayer;
use gigatile::raster::{PixelLayout, Raster, Rect};

const ID: &str = "album/sea.png";
const W: u32 = 700;
const H: u32 = 500;

fn source() -> Raster {
    photo(W, H, PixelLayout::Rgb)
}

/// A server over one 700×500 photo in a sub-folder, its pyramid built and ready.
fn server(name: &str, layer: SettingsLayer) -> TestServer {
    let server = TestServer::start(name, layer, |data| {
        std::fs::create_dir_all(data.path("album")).unwrap();
        write_png(&source(), &data.path("album/sea.png"));
    });
    server.wait_ready(ID, 30);
    server
}

/// A server whose full-resolution level is lossless, for pixel comparisons.
fn lossless(name: &str) -> TestServer {
    server(
        name,
        SettingsLayer {
            pyramid_base: Some("lossless".into()),
            ..SettingsLayer::default()
        },
    )
}

fn path(version: u32, rest: &str) -> String {
    format!("/iiif/{version}/{}/{rest}", encode(ID))
}

fn get_png(server: &TestServer, url: &str) -> Raster {
    let r = server.get(url);
    assert_eq!(r.status, 200, "{url}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("image/png"), "{url}");
    decode_png(&r.body)
}

#[test]
fn info_json_3_describes_the_image_and_the_pyramid() {
    let server = server("iiif-info3", SettingsLayer::default());
    let r = server.get(&path(3, "info.json"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("link"),
        Some("<http://iiif.io/api/image/3/level2.json>;rel=\"profile\"")
    );
    let info = r.json();
    let host = server.addr.to_string();
    assert_eq!(info["@context"], "http://iiif.io/api/image/3/context.json");
    assert_eq!(info["id"], format!("http://{host}/iiif/3/album%2Fsea.png"));
    assert_eq!(info["type"], "ImageService3");
    assert_eq!(info["protocol"], "http://iiif.io/api/image");
    assert_eq!(info["profile"], "level2");
    assert_eq!(
        (info["width"].as_u64(), info["height"].as_u64()),
        (Some(700), Some(500))
    );
    assert_eq!(info["tiles"][0]["width"], 256);
    assert_eq!(
        info["tiles"][0]["scaleFactors"],
        serde_json::json!([1, 2, 4])
    );
    assert_eq!(
        info["sizes"],
        serde_json::json!([
            {"width": 175, "height": 125},
            {"width": 350, "height": 250},
            {"width": 700, "height": 500}
        ])
    );
    assert_eq!(info["extraFormats"], serde_json::json!(["png", "webp"]));
    assert!(info["maxWidth"].as_u64().is_some() && info["maxArea"].as_u64().is_some());
    // JSON-LD when asked for.
    let ld = server.request(
        "GET",
        &path(3, "info.json"),
        &[("Accept", "application/ld+json")],
        b"",
    );
    assert_eq!(
        ld.header("content-type"),
        Some("application/ld+json;profile=\"http://iiif.io/api/image/3/context.json\"")
    );
    // The raw `/` works as well as `%2F`.
    assert_eq!(server.json("/iiif/3/album/sea.png/info.json")["width"], 700);
}

#[test]
fn info_json_2_has_its_own_shape() {
    let server = server("iiif-info2", SettingsLayer::default());
    let info = server.json(&path(2, "info.json"));
    assert_eq!(info["@context"], "http://iiif.io/api/image/2/context.json");
    assert_eq!(
        info["@id"],
        format!("http://{}/iiif/2/album%2Fsea.png", server.addr)
    );
    assert_eq!(info["profile"][0], "http://iiif.io/api/image/2/level2.json");
    assert!(info["profile"][1]["qualities"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("bitonal")));
    assert_eq!(
        info["tiles"][0]["scaleFactors"],
        serde_json::json!([1, 2, 4])
    );
    let ld = server.request(
        "GET",
        &path(2, "info.json"),
        &[("Accept", "application/ld+json")],
        b"",
    );
    assert!(ld
        .header("content-type")
        .unwrap()
        .starts_with("application/ld+json"));
}

#[test]
fn base_uris_redirect_to_info_json() {
    let server = server("iiif-redirect", SettingsLayer::default());
    for (version, url) in [
        (3, format!("/iiif/3/{}", encode(ID))),
        (2, "/iiif/2/album/sea.png".into()),
    ] {
        let r = server.get(&url);
        assert_eq!(r.status, 303, "{url}");
        assert_eq!(
            r.header("location").unwrap(),
            format!(
                "http://{}/iiif/{version}/album%2Fsea.png/info.json",
                server.addr
            )
        );
    }
    server
        .get("/iiif/3/nope.png")
        .assert_error(404, "not_found");
}

#[test]
fn advertised_tiles_pass_through_and_have_links() {
    // 1100×800: levels 1100×800, 550×400, 275×200; level 1 has whole interior tiles.
    let server = TestServer::start("iiif-passthrough", SettingsLayer::default(), |data| {
        std::fs::create_dir_all(data.path("album")).unwrap();
        write_png(
            &photo(1100, 800, PixelLayout::Rgb),
            &data.path("album/sea.png"),
        );
    });
    server.wait_ready(ID, 30);
    let before = server.metric("gigatile_passthrough_total");
    let url = path(3, "256,0,256,256/256,256/0/default.jpg");
    let r = server.get(&url);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(server.metric("gigatile_passthrough_total"), before + 1.0);
    let host = server.addr;
    assert_eq!(
        r.header("link").unwrap(),
        format!(
            "<http://{host}/iiif/3/album%2Fsea.png/256,0,256,256/max/0/default.jpg>;rel=\"canonical\",<http://iiif.io/api/image/3/level2.json>;rel=\"profile\""
        )
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    // Validators and 304.
    let etag = r.header("etag").unwrap().to_string();
    assert!(r.header("last-modified").is_some());
    assert!(r.header("cache-control").unwrap().contains("max-age"));
    let again = server.request("GET", &url, &[("If-None-Match", &etag)], b"");
    assert_eq!(again.status, 304);
    // The same tile in 2.1 (`w,`) is the same canonical request: the same bytes.
    let v2 = server.get(&path(2, "256,0,256,256/256,/0/default.jpg"));
    assert_eq!(v2.body, r.body);
    // A tile at scale factor 2 (level 1, tile 1,0) passes through too.
    let before = server.metric("gigatile_passthrough_total");
    let coarse = server.get(&path(3, "512,0,512,512/256,/0/default.jpg"));
    assert_eq!(coarse.status, 200, "{}", coarse.text());
    assert_eq!(server.metric("gigatile_passthrough_total"), before + 1.0);
    // A mirrored tile is rendered, not passed through.
    let before = server.metric("gigatile_passthrough_total");
    let mirrored = server.get(&path(3, "512,0,512,512/256,/!0/default.jpg"));
    assert_eq!(mirrored.status, 200);
    assert_eq!(server.metric("gigatile_passthrough_total"), before);
    // An edge tile is cropped to its size, not padded.
    let edge = server.get(&path(3, "1024,512,76,288/38,/0/default.jpg"));
    let tile = gigatile::codec::jpeg::decode(&edge.body).unwrap();
    assert_eq!((tile.width, tile.height), (38, 144));
}

#[test]
fn regions_and_sizes_match_the_source() {
    let server = lossless("iiif-pixels");
    let src = source();
    // A 1:1 crop from the lossless base level.
    let crop = Rect::new(13, 17, 151, 97);
    let got = get_png(&server, &path(3, "13,17,151,97/max/0/default.png"));
    assert_close(&got, &src.crop(crop), 50.0, "1:1 crop");
    // A non-aligned region at half size, against an independent 2×2 mean.
    let got = get_png(&server, &path(3, "101,57,400,300/200,/0/default.png"));
    assert_eq!((got.width, got.height), (200, 150));
    let reference = src.crop(Rect::new(101, 57, 400, 300)).halve();
    assert_close(&got, &reference, 28.0, "half-size region");
    // pct: regions and `!w,h`, `,h`, `pct:` sizes give the spec's sizes.
    let got = get_png(&server, &path(3, "pct:10,20,50,50/max/0/default.png"));
    assert_eq!((got.width, got.height), (350, 250));
    assert_close(
        &got,
        &src.crop(Rect::new(70, 100, 350, 250)),
        50.0,
        "pct region",
    );
    for (size, want) in [
        ("!100,100", (100, 71)),
        (",50", (70, 50)),
        ("pct:10", (70, 50)),
        ("^1400,", (1400, 1000)),
    ] {
        let got = get_png(&server, &path(3, &format!("full/{size}/0/default.png")));
        assert_eq!((got.width, got.height), want, "{size}");
    }
    // Square: the centred square of the shorter side.
    let got = get_png(&server, &path(3, "square/100,/0/default.png"));
    assert_eq!((got.width, got.height), (100, 100));
    // 2.1 upscales without `^`.
    let got = get_png(&server, &path(2, "0,0,100,100/200,/0/default.png"));
    assert_eq!((got.width, got.height), (200, 200));
}

#[test]
fn mirroring_rotation_and_qualities() {
    let server = lossless("iiif-transform");
    let src = source().crop(Rect::new(40, 30, 60, 20));
    let region = "40,30,60,20";
    let px = |r: &Raster, x: u32, y: u32| r.row(y)[(x * 3) as usize..(x * 3 + 3) as usize].to_vec();
    let r90 = get_png(&server, &path(3, &format!("{region}/max/90/default.png")));
    assert_eq!((r90.width, r90.height), (20, 60));
    // Clockwise: the source's bottom-left corner is the output's top-left.
    assert_eq!(px(&r90, 0, 0), px(&src, 0, 19));
    assert_eq!(px(&r90, 19, 59), px(&src, 59, 0));
    let r180 = get_png(&server, &path(3, &format!("{region}/max/180/default.png")));
    assert_eq!(px(&r180, 0, 0), px(&src, 59, 19));
    let r270 = get_png(&server, &path(3, &format!("{region}/max/270/default.png")));
    assert_eq!((r270.width, r270.height), (20, 60));
    assert_eq!(px(&r270, 0, 0), px(&src, 59, 0));
    let mirrored = get_png(&server, &path(3, &format!("{region}/max/!0/default.png")));
    assert_eq!(px(&mirrored, 0, 0), px(&src, 59, 0));
    assert_eq!(px(&mirrored, 59, 19), px(&src, 0, 19));
    let gray = get_png(&server, &path(3, &format!("{region}/max/0/gray.png")));
    assert_eq!(gray.layout, PixelLayout::Gray);
    assert_eq!(
        gray.row(0)[0],
        gigatile::raster::luma([src.row(0)[0], src.row(0)[1], src.row(0)[2]])
    );
    let bitonal = get_png(&server, &path(3, &format!("{region}/max/0/bitonal.png")));
    assert!(bitonal.data.iter().all(|&v| v == 0 || v == 255));
    assert!(bitonal.data.contains(&0) || bitonal.data.contains(&255));
    // Gray JPEG and WebP decode; 2.1 knows the same qualities.
    let jpg = server.get(&path(2, &format!("{region}/full/!90/gray.jpg")));
    let decoded = gigatile::codec::jpeg::decode(&jpg.body).unwrap();
    assert_eq!(
        (decoded.width, decoded.height, decoded.layout),
        (20, 60, PixelLayout::Gray)
    );
    // Any angle: the bounding box, transparent corners in PNG, opaque in JPEG.
    let turned = get_png(&server, &path(3, &format!("{region}/max/!30/default.png")));
    // 60·cos 30° + 20·sin 30° = 61.96; 60·sin 30° + 20·cos 30° = 47.3.
    assert_eq!(
        (turned.width, turned.height, turned.layout),
        (62, 47, PixelLayout::Rgba)
    );
    assert_eq!(turned.row(0)[3], 0, "a transparent corner");
    assert_eq!(turned.row(23)[31 * 4 + 3], 255, "an opaque centre");
    let jpg = server.get(&path(2, &format!("{region}/full/30/default.jpg")));
    let decoded = gigatile::codec::jpeg::decode(&jpg.body).unwrap();
    assert_eq!((decoded.width, decoded.height), (62, 47));
    let webp = server.get(&path(3, &format!("{region}/max/0/bitonal.webp")));
    assert_eq!(webp.header("content-type"), Some("image/webp"));
    assert!(gigatile::codec::webp::decode(&webp.body).is_ok());
}

#[test]
fn errors_have_the_spec_statuses() {
    let server = server("iiif-errors", SettingsLayer::default());
    for rest in [
        "full/max/0/nonsense.jpg",
        "foo/max/0/default.jpg",
        "full/bar/0/default.jpg",
        "full/max/45x/default.jpg",
        "full/max/0/default.xyz",
        "full/full/0/default.jpg",
        "700,0,10,10/max/0/default.jpg",
        "0,0,0,10/max/0/default.jpg",
        "full/0,/0/default.jpg",
        // 3.0 upscales only with `^`.
        "full/701,/0/default.jpg",
        "full/pct:120/0/default.jpg",
        "full/!2000,3000/0/default.jpg",
        "full/^20000,/0/default.jpg",
    ] {
        server.get(&path(3, rest)).assert_error(400, "bad_request");
    }
    server
        .get(&path(2, "full/^max/0/default.jpg"))
        .assert_error(400, "bad_request");
    server
        .get(&path(3, "full/max/0/default.tif"))
        .assert_error(415, "unsupported_format");
    server
        .get("/iiif/3/missing.png/full/max/0/default.jpg")
        .assert_error(404, "not_found");
    server
        .get("/iiif/3/missing.png/info.json")
        .assert_error(404, "not_found");
    server
        .get("/iiif/2/..%2Fsecret/info.json")
        .assert_error(400, "bad_request");
}

#[test]
fn the_manifest_opens_the_image_in_viewers() {
    let server = TestServer::start("iiif-manifest", SettingsLayer::default(), |data| {
        std::fs::create_dir_all(data.path("album")).unwrap();
        write_png(&source(), &data.path("album/sea.png"));
    });
    server.wait_ready(ID, 30);
    let m = server.json(&path(3, "manifest.json"));
    let base = format!("http://{}/iiif/3/album%2Fsea.png", server.addr);
    assert_eq!(
        m["@context"],
        "http://iiif.io/api/presentation/3/context.json"
    );
    assert_eq!(m["type"], "Manifest");
    assert_eq!(m["id"], format!("{base}/manifest.json"));
    assert_eq!(m["label"]["none"][0], "sea.png");
    let canvas = &m["items"][0];
    assert_eq!(canvas["type"], "Canvas");
    assert_eq!(
        (canvas["width"].as_u64(), canvas["height"].as_u64()),
        (Some(700), Some(500))
    );
    let page = &canvas["items"][0];
    assert_eq!(page["type"], "AnnotationPage");
    let anno = &page["items"][0];
    assert_eq!(anno["motivation"], "painting");
    assert_eq!(anno["body"]["id"], format!("{base}/full/max/0/default.jpg"));
    assert_eq!(anno["body"]["service"][0]["id"], base);
    assert_eq!(anno["body"]["service"][0]["profile"], "level2");
    assert!(m.get("rights").is_none());
    // The image it paints is served.
    assert_eq!(server.get(&path(3, "full/max/0/default.jpg")).status, 200);
}

#[test]
fn links_follow_public_base_url_and_trusted_proxies() {
    let public = server(
        "iiif-public",
        SettingsLayer {
            public_base_url: Some("https://tiles.example.org/img/".into()),
            ..SettingsLayer::default()
        },
    );
    assert_eq!(
        public.json(&path(3, "info.json"))["id"],
        "https://tiles.example.org/img/iiif/3/album%2Fsea.png"
    );
    let forwarded = [
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "proxy.example.org"),
    ];
    let trusted = server(
        "iiif-proxy",
        SettingsLayer {
            trust_proxy: Some(true),
            ..SettingsLayer::default()
        },
    );
    let r = trusted.request("GET", &path(2, "info.json"), &forwarded, b"");
    assert_eq!(
        r.json()["@id"],
        "https://proxy.example.org/iiif/2/album%2Fsea.png"
    );
    let r = trusted.request("GET", &format!("/iiif/3/{}", encode(ID)), &forwarded, b"");
    assert_eq!(
        r.header("location"),
        Some("https://proxy.example.org/iiif/3/album%2Fsea.png/info.json")
    );
    // Without TRUST_PROXY the headers are ignored.
    drop(trusted);
    let untrusted = server("iiif-untrusted", SettingsLayer::default());
    let r = untrusted.request("GET", &path(3, "info.json"), &forwarded, b"");
    assert_eq!(
        r.json()["id"],
        format!("http://{}/iiif/3/album%2Fsea.png", untrusted.addr)
    );
}
