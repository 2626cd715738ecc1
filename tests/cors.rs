//! CORS as users configure it (`ALLOWED_ORIGIN`), judged by the browser: headless Chromium
//! opens a page on another origin (a tiny server of this test, on its own port) and `fetch()`es
//! a tile, an IIIF info.json and `/api/images` from a gigatile server of each form, simply and
//! with a preflight (`tests/browser/cors.mjs`): unset (image routes open, the API not), `*`
//! (everything open), a list naming the page's origin (everything open) and one that does not
//! (nothing open). One browser launch for all of them. The headers themselves (`Vary`,
//! preflights of a disallowed origin) are checked over plain HTTP.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};

use common::browser::run_script;
use common::server::{encode, TestServer};
use common::{photo, write_png};
use gigatile::config::SettingsLayer;
use gigatile::raster::PixelLayout;

const ID: &str = "album/sea.png";

/// Serves one small HTML page on 127.0.0.1 at a port of its own, so that the page's origin is
/// another than any gigatile server's; runs until the test process ends.
fn page_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let body = "<!doctype html><title>another origin</title>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

fn gigatile(name: &str, allowed_origin: Option<String>) -> TestServer {
    let layer = SettingsLayer {
        allowed_origin,
        ..SettingsLayer::default()
    };
    let server = TestServer::start(name, layer, |data| {
        std::fs::create_dir_all(data.path("album")).unwrap();
        write_png(&photo(600, 400, PixelLayout::Rgb), &data.path(ID));
    });
    server.wait_ready(ID, 60);
    server
}

/// One form for the script: the server's base URL and whether the page may read each route.
fn case(form: &str, server: &TestServer, images: bool, api: bool) -> serde_json::Value {
    serde_json::json!({
        "form": form,
        "base": format!("http://{}", server.addr),
        "id": encode(ID),
        "expect": { "tile": images, "info": images, "api": api },
    })
}

#[test]
fn a_page_on_another_origin_reads_what_allowed_origin_allows() {
    let page = page_server();
    let page_origin = format!("http://{page}");
    let unset = gigatile("cors-unset", None);
    let any = gigatile("cors-any", Some("*".into()));
    let listed = gigatile(
        "cors-listed",
        Some(format!("https://app.example, {page_origin}")),
    );
    let unlisted = gigatile(
        "cors-unlisted",
        Some("https://app.example, http://127.0.0.1:1".into()),
    );
    let cases = serde_json::json!([
        case("unset", &unset, true, false),
        case("*", &any, true, true),
        case("list with the page's origin", &listed, true, true),
        case("list without it", &unlisted, false, false),
    ]);
    run_script("cors.mjs", &[&page_origin, &cases.to_string()]);
}

#[test]
fn headers_of_each_form() {
    let origin = ("Origin", "https://app.example");
    let preflight = |server: &TestServer, path: &str| {
        server.request(
            "OPTIONS",
            path,
            &[
                origin,
                ("Access-Control-Request-Method", "GET"),
                ("Access-Control-Request-Headers", "x-request-id"),
            ],
            b"",
        )
    };
    let tile = format!("/api/images/{}/tiles/0/0/0.jpg", encode(ID));

    let unset = gigatile("cors-h-unset", None);
    let r = unset.get(&tile);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r
        .header("access-control-expose-headers")
        .is_some_and(|h| h.contains("ETag")));
    let r = unset.request("GET", "/api/images", &[origin], b"");
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = preflight(&unset, "/api/images");
    assert_eq!(r.status, 204);
    assert!(
        r.headers
            .iter()
            .all(|(k, _)| !k.starts_with("access-control-")),
        "a disallowed preflight gets no allow headers: {:?}",
        r.headers
    );

    let any = gigatile("cors-h-any", Some(" * ".into()));
    for path in [tile.as_str(), "/api/images"] {
        let r = any.request("GET", path, &[origin], b"");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{path}");
        assert_eq!(r.header("access-control-allow-credentials"), None);
    }
    let r = preflight(&any, "/api/images");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r
        .header("access-control-allow-headers")
        .is_some_and(|h| h.contains("x-request-id")));

    let listed = gigatile(
        "cors-h-list",
        Some("https://other.example,https://app.example".into()),
    );
    for path in [tile.as_str(), "/api/images"] {
        let r = listed.request("GET", path, &[origin], b"");
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://app.example")
        );
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| k == "vary" && v.contains("Origin")));
        let r = listed.request("GET", path, &[("Origin", "https://evil.example")], b"");
        assert_eq!(r.header("access-control-allow-origin"), None);
    }
    assert_eq!(
        preflight(&listed, &tile).header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let r = listed.request(
        "OPTIONS",
        "/api/upload",
        &[
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    );
    assert!(r
        .headers
        .iter()
        .all(|(k, _)| !k.starts_with("access-control-")));
}
