//! The web viewer: its page and assets over HTTP (CSP, content types, caching, relative URLs),
//! and the whole app driven in headless Chromium by `tests/browser/viewer.mjs`: pick an image,
//! tiles drawn and matching the image, zoom and pan, deep links, uploads good and bad (and with
//! a token), the download counter, no console errors, screenshots at phone and desktop sizes;
//! and, with signed URLs, the viewer's tiles through the signed prefix
//! (`tests/browser/viewer_signed.mjs`).

mod common;

use common::browser::{artifacts_dir, run_script};
use common::server::TestServer;
use common::{photo, write_png, TempDir};
use gigatile::config::SettingsLayer;
use gigatile::raster::PixelLayout;

/// A server over a PNG in a folder and a JPEG, each a few thousand pixels wide (several zoom
/// levels), both ready before the browser opens, and a truncated PNG that fails.
fn gallery(name: &str, layer: SettingsLayer) -> TestServer {
    let server = TestServer::start(name, layer, |data| {
        std::fs::create_dir_all(data.path("album")).unwrap();
        write_png(
            &photo(3000, 2000, PixelLayout::Rgb),
            &data.path("album/harbour.png"),
        );
        let jpeg = gigatile::codec::jpeg::encode(&photo(3900, 2600, PixelLayout::Rgb), 88).unwrap();
        std::fs::write(data.path("night.jpg"), jpeg).unwrap();
        // A PNG cut short: listed as failed, with the reason.
        let png = gigatile::codec::png::encode(&photo(300, 200, PixelLayout::Rgb)).unwrap();
        std::fs::write(data.path("broken.png"), &png[..png.len() / 3]).unwrap();
    });
    server.wait_ready("album/harbour.png", 60);
    server.wait_ready("night.jpg", 60);
    server.wait_list(20, |list| {
        list.as_array()
            .is_some_and(|a| a.iter().any(|i| i["status"] == "failed"))
    });
    server
}

#[test]
fn the_page_and_its_assets_over_http() {
    let server = TestServer::start("viewer-http", SettingsLayer::default(), |_| {});
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    let csp = page.header("content-security-policy").expect("a CSP");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    let html = page.text();
    // Relative URLs only, so the viewer works under a proxy's path prefix; no inline code.
    for absolute in ["\"/", "'/", "`/"] {
        assert!(
            !html.contains(&format!("{absolute}api"))
                && !html.contains(&format!("{absolute}assets")),
            "an absolute URL in the page"
        );
    }
    assert!(!html.contains("<style") && !html.contains(" style="));
    assert!(!html.contains("<script>"), "inline script");

    let assets: Vec<&str> = html
        .split('"')
        .filter(|s| s.starts_with("assets/"))
        .collect();
    assert_eq!(assets.len(), 4, "{assets:?}");
    for asset in assets {
        let r = server.get(&format!("/{asset}"));
        assert_eq!(r.status, 200, "{asset}");
        let expected = if asset.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else {
            "text/css; charset=utf-8"
        };
        assert_eq!(r.header("content-type"), Some(expected), "{asset}");
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{asset}"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert!(r.body.len() > 1000, "{asset} is nearly empty");
        if asset.contains("app.") && asset.ends_with(".js") {
            let js = r.text();
            for sink in [
                ".innerHTML",
                ".outerHTML",
                "insertAdjacentHTML",
                "document.write",
            ] {
                assert!(!js.contains(sink), "the app must not use {sink}");
            }
            assert!(
                !js.contains("'/api") && !js.contains("`/api"),
                "absolute API URL"
            );
        }
    }
    // An old or unknown asset name is a JSON 404, never a stale file.
    server
        .get("/assets/app.0000000000.js")
        .assert_error(404, "not_found");
}

#[test]
fn the_viewer_in_a_browser() {
    let server = gallery(
        "viewer-browser",
        SettingsLayer {
            max_upload_size: Some("4M".parse().unwrap()),
            ..SettingsLayer::default()
        },
    );
    let token_server = TestServer::start(
        "viewer-token",
        SettingsLayer {
            upload_token: Some("open-sesame".into()),
            ..SettingsLayer::default()
        },
        |_| {},
    );
    let uploads = TempDir::new("viewer-uploads");
    let good = uploads.path("lighthouse.png");
    write_png(&photo(900, 600, PixelLayout::Rgb), &good);
    let artifacts = artifacts_dir("viewer");
    run_script(
        "viewer.mjs",
        &[
            &format!("http://{}", server.addr),
            artifacts.to_str().unwrap(),
            good.to_str().unwrap(),
            &format!("http://{}", token_server.addr),
            "open-sesame",
        ],
    );
}

#[test]
fn the_viewer_with_signed_urls() {
    let server = TestServer::start(
        "viewer-signed",
        SettingsLayer {
            url_signing_keys: Some("viewer-signing-key-0123456789".into()),
            ..SettingsLayer::default()
        },
        |data| write_png(&photo(1200, 800, PixelLayout::Rgb), &data.path("bay.png")),
    );
    server.wait_ready("bay.png", 30);
    // Unsigned tiles are refused, so tiles the browser draws came through the prefix.
    server
        .get("/api/images/bay.png/tiles/0/0/0.jpg")
        .assert_error(403, "signature_invalid");
    run_script("viewer_signed.mjs", &[&format!("http://{}", server.addr)]);
}
