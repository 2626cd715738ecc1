//! The tile server over real HTTP on 127.0.0.1: every route and error of the contract, caches,
//! coalescing, uploads, auth, slow clients and shutdown.

mod common;

use std::io::Write;
use std::time::Duration;

use common::server::{encode, ids, multipart, TestServer};
use common::{photo, write_png};
use gigatile::config::SettingsLayer;
use gigatile::raster::PixelLayout;

/// A server over a PNG in a sub-folder and a JPEG at the top.
fn photos(name: &str, layer: SettingsLayer) -> TestServer {
    TestServer::start(name, layer, |data| {
        std::fs::create_dir_all(data.path("album")).unwrap();
        write_png(
            &photo(700, 500, PixelLayout::Rgb),
            &data.path("album/sea.png"),
        );
        let jpeg = gigatile::codec::jpeg::encode(&photo(300, 200, PixelLayout::Rgb), 90).unwrap();
        std::fs::write(data.path("small.jpg"), jpeg).unwrap();
        std::fs::write(data.path("notes.txt"), "not an image").unwrap();
    })
}

#[test]
fn lists_images_and_their_metadata() {
    let server = photos("srv-list", SettingsLayer::default());
    let list = server.wait_list(10, |l| l.as_array().is_some_and(|a| a.len() == 2));
    assert_eq!(ids(&list), ["album/sea.png", "small.jpg"]);
    let sea = &list[0];
    assert_eq!(sea["original_filename"], "sea.png");
    assert_eq!(
        (sea["width"].as_u64(), sea["height"].as_u64()),
        (Some(700), Some(500))
    );
    assert_eq!(sea["format"], "png");
    let meta = server.wait_ready("album/sea.png", 20);
    assert_eq!(meta["tileSize"], 256);
    assert_eq!(meta["maxZoom"], 2);
    assert_eq!(meta["readyMaxZoom"], 2);
    // The id works percent-encoded and raw.
    assert_eq!(server.json("/api/images/album/sea.png/meta")["width"], 700);
    server
        .get("/api/images/nope.png/meta")
        .assert_error(404, "not_found");
}

#[test]
fn tiles_in_every_format_with_http_caching() {
    let server = photos("srv-tiles", SettingsLayer::default());
    server.wait_ready("album/sea.png", 20);
    let base = format!("/api/images/{}/tiles", encode("album/sea.png"));
    let jpg = server.get(&format!("{base}/2/2/1.jpg"));
    assert_eq!(jpg.status, 200, "{}", jpg.text());
    assert_eq!(jpg.header("content-type"), Some("image/jpeg"));
    let tile = gigatile::codec::jpeg::decode(&jpg.body).unwrap();
    assert_eq!(
        (tile.width, tile.height),
        (256, 256),
        "edge tiles are padded"
    );
    let png = server.get(&format!("{base}/0/0/0.png"));
    assert_eq!(png.header("content-type"), Some("image/png"));
    let decoded = common::decode_png(&png.body);
    assert_eq!(
        (decoded.width, decoded.height, decoded.layout),
        (256, 256, PixelLayout::Rgba)
    );
    assert_eq!(
        &decoded.row(255)[..4],
        &[0, 0, 0, 0],
        "padding is transparent in PNG"
    );
    let webp = server.get(&format!("{base}/1/0/0.webp"));
    assert_eq!(webp.header("content-type"), Some("image/webp"));
    assert!(gigatile::codec::webp::decode(&webp.body).is_ok());
    assert_eq!(
        server
            .get(&format!("{base}/1/0/0.jpeg"))
            .header("content-type"),
        Some("image/jpeg")
    );
    // Without an extension, Accept decides, and the response says it varies.
    let negotiated = server.request(
        "GET",
        &format!("{base}/1/0/0"),
        &[("Accept", "image/webp,*/*")],
        b"",
    );
    assert_eq!(negotiated.header("content-type"), Some("image/webp"));
    assert!(negotiated
        .header("vary")
        .is_some_and(|v| v.contains("Accept")));
    let plain = server.get(&format!("{base}/1/0/0"));
    assert_eq!(plain.header("content-type"), Some("image/jpeg"));
    // Validators, conditional requests, HEAD.
    let etag = jpg.header("etag").unwrap().to_string();
    assert!(jpg.header("last-modified").is_some());
    assert!(jpg.header("cache-control").unwrap().contains("max-age"));
    let again = server.request(
        "GET",
        &format!("{base}/2/2/1.jpg"),
        &[("If-None-Match", &etag)],
        b"",
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let head = server.request("HEAD", &format!("{base}/2/2/1.jpg"), &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("etag"), Some(etag.as_str()));
    assert!(head.body.is_empty());
    // Public image routes allow any origin.
    assert_eq!(jpg.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn tile_errors_are_json() {
    let server = photos("srv-tile-errors", SettingsLayer::default());
    server.wait_ready("album/sea.png", 20);
    let base = format!("/api/images/{}/tiles", encode("album/sea.png"));
    server
        .get(&format!("{base}/2/9/0.jpg"))
        .assert_error(404, "tile_out_of_range");
    server
        .get(&format!("{base}/3/0/0.jpg"))
        .assert_error(404, "tile_out_of_range");
    server
        .get(&format!("{base}/x/0/0.jpg"))
        .assert_error(400, "bad_request");
    server
        .get(&format!("{base}/0/0/0.gif"))
        .assert_error(400, "bad_request");
    server
        .get("/api/images/missing.png/tiles/0/0/0.jpg")
        .assert_error(404, "not_found");
    server
        .get("/api/images/..%2F..%2Fetc%2Fpasswd/meta")
        .assert_error(400, "bad_request");
}

#[test]
fn framework_rejections_are_json() {
    let server = photos("srv-framework", SettingsLayer::default());
    server.get("/no/such/route").assert_error(404, "not_found");
    let r = server.request("POST", "/api/images", &[], b"x");
    r.assert_error(405, "method_not_allowed");
    let long = format!("/api/images/{}/meta", "a".repeat(10_000));
    server.get(&long).assert_error(414, "uri_too_long");
    let big = "b".repeat(40_000);
    server
        .request("GET", "/healthz", &[("X-Big", &big)], b"")
        .assert_error(431, "headers_too_large");
    assert_eq!(server.json("/healthz")["status"], "ok");
    assert_eq!(server.json("/readyz")["status"], "ready");
    assert!(server.get("/").text().contains("<html"));
    assert!(server.get("/").header("content-security-policy").is_some());
    let r = server.get("/healthz");
    assert!(r.header("x-request-id").is_some_and(|id| !id.is_empty()));
}

#[test]
fn cache_hits_and_one_render_for_concurrent_requests() {
    let server = photos("srv-cache", SettingsLayer::default());
    server.wait_ready("album/sea.png", 20);
    let path = format!("/api/images/{}/tiles/2/1/1.jpg", encode("album/sea.png"));
    let renders = server.metric("gigatile_renders_total");
    let responses: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16).map(|_| s.spawn(|| server.get(&path))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(responses
        .iter()
        .all(|r| r.status == 200 && r.body == responses[0].body));
    assert_eq!(
        server.metric("gigatile_renders_total"),
        renders + 1.0,
        "16 requests, one render"
    );
    let hits = server.metric("gigatile_tile_cache_hits_total");
    server.get(&path);
    assert_eq!(server.metric("gigatile_tile_cache_hits_total"), hits + 1.0);
}

#[test]
fn the_file_cache_persists_across_restarts() {
    let layer = || SettingsLayer {
        cache: Some("file".into()),
        ..SettingsLayer::default()
    };
    let server = photos("srv-file-cache", layer());
    server.wait_ready("small.jpg", 20);
    let path = "/api/images/small.jpg/tiles/0/0/0.webp";
    let first = server.get(path);
    assert_eq!(first.status, 200);
    let server = server.restart(layer());
    server.wait_ready("small.jpg", 20);
    let renders = server.metric("gigatile_renders_total");
    let again = server.get(path);
    assert_eq!(again.body, first.body);
    assert_eq!(
        server.metric("gigatile_renders_total"),
        renders,
        "served from the file cache"
    );
    assert_eq!(server.metric("gigatile_tile_cache_hits_total"), 1.0);
}

#[test]
fn a_replaced_file_serves_new_tiles() {
    let server = photos("srv-replace", SettingsLayer::default());
    server.wait_ready("small.jpg", 20);
    let path = "/api/images/small.jpg/tiles/0/0/0.png";
    let before = server.get(path);
    std::thread::sleep(Duration::from_millis(50));
    let other = gigatile::codec::jpeg::encode(&photo(300, 200, PixelLayout::Gray), 90).unwrap();
    std::fs::write(server.path("small.jpg"), other).unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = server.get(path);
        if now.status == 200 && now.header("etag") != before.header("etag") {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "the replaced file was never served"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn uploads_from_loopback_without_a_token() {
    let server = photos("srv-upload", SettingsLayer::default());
    let png = gigatile::codec::png::encode(&photo(400, 300, PixelLayout::Rgba)).unwrap();
    let (ctype, body) = multipart(
        "../../holiday.png",
        &png,
        &[
            ("copyright_text", "© Me"),
            ("copyright_link", "https://example.org"),
        ],
    );
    let r = server.request("POST", "/api/upload", &[("Content-Type", &ctype)], &body);
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(r.json()["name"], "holiday.png");
    assert!(id.starts_with("uploads/"), "{id}");
    let meta = server.wait_ready(&id, 20);
    assert_eq!(meta["copyright_text"], "© Me");
    assert_eq!(meta["copyright_link"], "https://example.org");
    // Corrupt, empty and wrongly typed uploads leave nothing behind.
    for (name, data, status, code) in [
        (
            "bad.png",
            b"\x89PNG\r\n\x1a\ngarbage".to_vec(),
            415,
            "corrupt_image",
        ),
        ("notes.txt", b"hello".to_vec(), 415, "unsupported_image"),
    ] {
        let (ctype, body) = multipart(name, &data, &[]);
        let r = server.request("POST", "/api/upload", &[("Content-Type", &ctype)], &body);
        r.assert_error(status, code);
    }
    let (ctype, body) = multipart("x.png", &png, &[("copyright_link", "javascript:alert(1)")]);
    server
        .request("POST", "/api/upload", &[("Content-Type", &ctype)], &body)
        .assert_error(400, "bad_request");
    server
        .request(
            "POST",
            "/api/upload",
            &[("Content-Type", "text/plain")],
            b"x",
        )
        .assert_error(400, "malformed_multipart");
    let uploads: Vec<_> = std::fs::read_dir(server.path("uploads"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    let incoming = server.path("uploads/.incoming");
    assert!(std::fs::read_dir(incoming).map_or(true, |d| d.count() == 0));
    // Delete: uploads only.
    server
        .request("DELETE", "/api/images/small.jpg", &[], b"")
        .assert_error(403, "not_uploaded");
    let r = server.request("DELETE", &format!("/api/images/{}", encode(&id)), &[], b"");
    assert_eq!(r.status, 204, "{}", r.text());
    server
        .get(&format!("/api/images/{}/meta", encode(&id)))
        .assert_error(404, "not_found");
    server
        .request("DELETE", "/api/images/nope.png", &[], b"")
        .assert_error(404, "not_found");
}

#[test]
fn uploads_beyond_the_limit_get_413() {
    let layer = SettingsLayer {
        max_upload_size: Some("10K".parse().unwrap()),
        ..SettingsLayer::default()
    };
    let server = photos("srv-upload-limit", layer);
    let png = gigatile::codec::png::encode(&photo(300, 300, PixelLayout::Rgb)).unwrap();
    assert!(png.len() > 10 * 1024);
    let (ctype, body) = multipart("big.png", &png, &[]);
    server
        .request("POST", "/api/upload", &[("Content-Type", &ctype)], &body)
        .assert_error(413, "too_large");
}

#[test]
fn uploads_with_a_token() {
    let layer = SettingsLayer {
        upload_token: Some("s3cret".into()),
        ..SettingsLayer::default()
    };
    let server = photos("srv-token", layer);
    let png = gigatile::codec::png::encode(&photo(64, 64, PixelLayout::Rgb)).unwrap();
    let (ctype, body) = multipart("t.png", &png, &[]);
    let post = |auth: Option<&str>| {
        let mut headers = vec![("Content-Type", ctype.as_str())];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        server.request("POST", "/api/upload", &headers, &body)
    };
    post(None).assert_error(401, "token_required");
    post(Some("Bearer wrong")).assert_error(401, "token_invalid");
    assert_eq!(post(Some("Bearer s3cret")).status, 201);
    // Concurrent uploads each get their own file.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| post(Some("Bearer s3cret")).status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses, [201; 4]);
    server.wait_list(10, |l| l.as_array().is_some_and(|a| a.len() == 7));
}

#[test]
fn a_slow_client_is_cut_off_while_others_are_served() {
    let layer = SettingsLayer {
        header_read_timeout_ms: Some(1000),
        ..SettingsLayer::default()
    };
    let server = photos("srv-slowloris", layer);
    let slow = std::net::TcpStream::connect(server.addr).unwrap();
    let mut trickle = slow.try_clone().unwrap();
    let started = std::time::Instant::now();
    // One header byte every 300 ms: the whole header would take 10 s.
    let writer = std::thread::spawn(move || {
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n\r\n" {
            if trickle.write_all(&[*byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    for _ in 0..5 {
        assert_eq!(
            server.get("/healthz").status,
            200,
            "others are served meanwhile"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut slow = slow;
    slow.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    let mut buf = [0u8; 512];
    match std::io::Read::read(&mut slow, &mut buf) {
        Ok(0) | Err(_) => {}
        Ok(n) => assert!(
            !String::from_utf8_lossy(&buf[..n]).contains(" 200 "),
            "the slow request was served"
        ),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cut off after {:?}",
        started.elapsed()
    );
    let _ = slow.shutdown(std::net::Shutdown::Both);
    writer.join().unwrap();
}

#[test]
fn shutdown_lets_in_flight_requests_finish() {
    let mut server = photos("srv-shutdown", SettingsLayer::default());
    server.wait_ready("album/sea.png", 20);
    let addr = server.addr;
    let path = format!("/api/images/{}/tiles/2/0/0.webp", encode("album/sea.png"));
    let in_flight = std::thread::spawn({
        let path = path.clone();
        move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut s, &mut out).unwrap();
            String::from_utf8_lossy(&out[..12.min(out.len())]).into_owned()
        }
    });
    // Stop once the request has reached the server (accepted and counted), however slowly this
    // machine runs the client thread.
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while server.metric("gigatile_tile_requests_total") < 1.0 {
        assert!(
            std::time::Instant::now() < until,
            "the request never arrived"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    server.stop();
    assert_eq!(in_flight.join().unwrap(), "HTTP/1.1 200");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the port is closed after shutdown"
    );
}

#[test]
fn cors_follows_allowed_origin() {
    let layer = SettingsLayer {
        allowed_origin: Some("https://app.example".into()),
        ..SettingsLayer::default()
    };
    let server = photos("srv-cors", layer);
    let ok = server.request(
        "GET",
        "/api/images",
        &[("Origin", "https://app.example")],
        b"",
    );
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(ok.header("vary").is_some_and(|v| v.contains("Origin")));
    let other = server.request(
        "GET",
        "/api/images",
        &[("Origin", "https://evil.example")],
        b"",
    );
    assert_eq!(other.header("access-control-allow-origin"), None);
    let preflight = server.request(
        "OPTIONS",
        "/api/upload",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    );
    assert_eq!(preflight.status, 204);
    assert!(preflight
        .header("access-control-allow-headers")
        .unwrap()
        .contains("authorization"));
}

#[test]
fn a_level_still_building_gets_503_then_serves() {
    let layer = SettingsLayer {
        tile_wait_ms: Some(0),
        ..SettingsLayer::default()
    };
    let server = TestServer::start("srv-not-ready", layer, |data| {
        let big = gigatile::codec::jpeg::encode(&photo(4000, 3000, PixelLayout::Rgb), 85).unwrap();
        std::fs::write(data.path("big.jpg"), big).unwrap();
    });
    let meta = server.json("/api/images/big.jpg/meta");
    let full_resolution = format!("/api/images/big.jpg/tiles/{}/5/5.jpg", meta["maxZoom"]);
    let first = server.get(&full_resolution);
    if meta["status"] == "building" && first.status != 200 {
        first.assert_error(503, "not_ready");
        assert_eq!(first.header("retry-after"), Some("2"));
    }
    server.wait_ready("big.jpg", 60);
    assert_eq!(server.get(&full_resolution).status, 200);
}

#[test]
fn warm_up_renders_the_coarse_levels() {
    let layer = SettingsLayer {
        warmup_levels: Some(2),
        ..SettingsLayer::default()
    };
    let server = photos("srv-warmup", layer);
    server.wait_ready("album/sea.png", 20);
    server.wait_ready("small.jpg", 20);
    // sea.png (700×500, K = 2): z=0 is 175×125, one tile; z=1 is 350×250, two.
    // small.jpg (300×200, K = 1): z=0 is 150×100, one tile; z=1 is full size, two.
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while server.metric("gigatile_warmup_renders_total") < 6.0 {
        assert!(std::time::Instant::now() < until, "warm-up did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        server.metric("gigatile_warmup_renders_total"),
        6.0,
        "no more than the coarse levels"
    );
    let hits = server.metric("gigatile_tile_cache_hits_total");
    server.get(&format!(
        "/api/images/{}/tiles/1/1/0.jpg",
        encode("album/sea.png")
    ));
    assert_eq!(
        server.metric("gigatile_tile_cache_hits_total"),
        hits + 1.0,
        "warmed tiles are cached"
    );
}
