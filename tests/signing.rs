//! Signed URLs over real HTTP (`URL_SIGNING_KEYS`): every image route refuses a missing, wrong,
//! foreign, expired or malformed token with 403 `signature_invalid` and serves a valid one;
//! the URLs the server emits (info.json ids, manifests, redirects, `Link` headers, the list
//! and metadata) work when followed as they are; keys rotate; `gigatile sign` mints URLs the
//! server accepts. Tokens are minted with the library's own signer, as an application would.

mod common;

use std::process::Command;

use common::server::{encode, Response, TestServer};
use common::{photo, write_png};
use gigatile::config::SettingsLayer;
use gigatile::raster::PixelLayout;
use gigatile::signing::{unix_now, UrlSigner};

const KEY: &str = "signing-key-0123456789";
const OLD_KEY: &str = "old-signing-key-0123456789";
const SEA: &str = "album/sea.png";
const OTHER: &str = "other.png";

fn keys(keys: &str) -> SettingsLayer {
    SettingsLayer {
        url_signing_keys: Some(keys.into()),
        ..SettingsLayer::default()
    }
}

fn signer(keys: &str) -> UrlSigner {
    keys.parse().unwrap()
}

/// A server over a 1000×600 PNG in a folder and a small PNG beside it.
fn start(name: &str, layer: SettingsLayer) -> TestServer {
    let server = TestServer::start(name, layer, |data| {
        std::fs::create_dir_all(data.path("album")).unwrap();
        write_png(&photo(1000, 600, PixelLayout::Rgb), &data.path(SEA));
        write_png(&photo(300, 200, PixelLayout::Rgb), &data.path(OTHER));
    });
    server.wait_ready(SEA, 30);
    server.wait_ready(OTHER, 30);
    server
}

/// The paths of every image route for `id`, after the token prefix.
fn image_routes(id: &str) -> Vec<String> {
    let e = encode(id);
    vec![
        format!("/api/images/{e}/tiles/0/0/0.jpg"),
        format!("/iiif/3/{e}"),
        format!("/iiif/3/{e}/info.json"),
        format!("/iiif/3/{e}/manifest.json"),
        format!("/iiif/3/{e}/full/max/0/default.jpg"),
        format!("/iiif/2/{e}/info.json"),
        format!("/iiif/2/{e}/full/full/0/default.jpg"),
        format!("/dzi/{e}.dzi"),
        format!("/dzi/{e}_files/0/0_0.jpg"),
        format!("/zoomify/{e}/ImageProperties.xml"),
        format!("/zoomify/{e}/TileGroup0/0-0-0.jpg"),
        format!("/imgserv.cgi?src=/{id}&width=200&height=200"),
        format!("/imgserv?src=/{id}&width=200&height=200"),
    ]
}

/// The path of an absolute URL on this server.
fn local(server: &TestServer, url: &str) -> String {
    let base = format!("http://{}", server.addr);
    url.strip_prefix(&base)
        .unwrap_or_else(|| panic!("{url} is not on {base}"))
        .to_owned()
}

fn ok(server: &TestServer, path: &str) -> Response {
    let r = server.get(path);
    assert!(
        r.status == 200 || r.status == 302 || r.status == 303,
        "{path}: {} {}",
        r.status,
        r.text()
    );
    r
}

fn refused(server: &TestServer, path: &str) -> Response {
    let r = server.get(path);
    r.assert_error(403, "signature_invalid");
    r
}

#[test]
fn image_routes_refuse_missing_wrong_foreign_expired_and_malformed_tokens() {
    let server = start("signing-refused", keys(KEY));
    let ours = signer(KEY);
    let fitted = ok(
        &server,
        &format!(
            "/s/{}/imgserv.cgi?src=/{SEA}&width=200&height=200",
            ours.sign(SEA, None)
        ),
    );
    let cached = local(&server, fitted.header("location").unwrap());
    let cached = cached.split_once("/imgcache/").unwrap().1.to_owned();

    let mut routes = image_routes(SEA);
    routes.push(format!("/imgcache/{cached}"));
    let later = ours.sign(SEA, Some(unix_now() + 3600));
    let mac = later.split_once('.').unwrap().1;
    let bad_tokens = [
        signer("another-key-0123456789").sign(SEA, None),
        ours.sign(OTHER, None),
        ours.sign(SEA, Some(unix_now() - 1)),
        // A valid MAC under a later expiry than the one it signed.
        format!("{}.{mac}", unix_now() + 7200),
        "not-a-token".to_string(),
    ];
    for route in &routes {
        let r = refused(&server, route);
        assert!(r.json()["error"]
            .as_str()
            .unwrap()
            .contains("needs a signature"));
        for token in &bad_tokens {
            refused(&server, &format!("/s/{token}{route}"));
        }
    }
    let expired = refused(
        &server,
        &format!(
            "/s/{}/iiif/3/{}/info.json",
            ours.sign(SEA, Some(1)),
            encode(SEA)
        ),
    );
    assert!(expired.text().contains("expired"), "{}", expired.text());
    // An image that does not exist is refused the same way: no way to probe for ids.
    refused(&server, "/iiif/3/nothing.png/info.json");
    refused(&server, "/iiif/3/nothing.png");
    refused(&server, "/dzi/nothing.png.dzi");
    // The listing and metadata stay open, and so does everything else.
    assert_eq!(server.get("/api/images").status, 200);
    assert_eq!(
        server
            .get(&format!("/api/images/{}/meta", encode(SEA)))
            .status,
        200
    );
    assert_eq!(server.get("/").status, 200);
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn a_valid_token_opens_every_route_and_what_the_server_emits_works_verbatim() {
    let server = start("signing-valid", keys(KEY));
    let base = format!("http://{}", server.addr);
    for expires in [None, Some(unix_now() + 3600)] {
        let token = signer(KEY).sign(SEA, expires);
        let prefix = format!("/s/{token}");
        for route in image_routes(SEA) {
            ok(&server, &format!("{prefix}{route}"));
        }
        // Ids with a raw `/` too.
        ok(&server, &format!("{prefix}/iiif/3/{SEA}/info.json"));
        ok(
            &server,
            &format!("{prefix}/api/images/{SEA}/tiles/1/0/0.png"),
        );

        // IIIF: the base URI's redirect, info.json's id, the canonical link, followed as given.
        let e = encode(SEA);
        for version in ["3", "2"] {
            let r = ok(&server, &format!("{prefix}/iiif/{version}/{e}"));
            assert_eq!(r.status, 303);
            let info = ok(&server, &local(&server, r.header("location").unwrap())).json();
            let id = info["id"].as_str().or(info["@id"].as_str()).unwrap();
            assert_eq!(id, format!("{base}{prefix}/iiif/{version}/{e}"));
            let size = if version == "3" { "max" } else { "full" };
            let tile = ok(
                &server,
                &format!("{}/0,0,256,256/{size}/0/default.jpg", local(&server, id)),
            );
            assert_eq!(tile.header("content-type"), Some("image/jpeg"));
            let link = tile.header("link").unwrap();
            let canonical = link.split_once('<').unwrap().1.split_once('>').unwrap().0;
            assert!(canonical.starts_with(&format!("{base}{prefix}/")), "{link}");
            ok(&server, &local(&server, canonical));
        }
        // The manifest's ids: itself, the image body and its service.
        let manifest = ok(&server, &format!("{prefix}/iiif/3/{e}/manifest.json")).json();
        ok(&server, &local(&server, manifest["id"].as_str().unwrap()));
        let body = &manifest["items"][0]["items"][0]["items"][0]["body"];
        ok(&server, &local(&server, body["id"].as_str().unwrap()));
        let service = body["service"][0]["id"].as_str().unwrap();
        ok(&server, &format!("{}/info.json", local(&server, service)));

        // Deep Zoom and Zoomify: tile paths derived from the descriptor's URL keep the prefix.
        let dzi = ok(&server, &format!("{prefix}/dzi/{e}.dzi"));
        assert!(dzi.text().contains("Width=\"1000\""), "{}", dzi.text());
        ok(&server, &format!("{prefix}/dzi/{e}_files/10/3_2.jpg"));
        ok(
            &server,
            &format!("{prefix}/zoomify/{e}/TileGroup0/2-3-2.jpg"),
        );

        // imgserv: the redirect to /imgcache carries the token, and the file is served.
        let fitted = ok(
            &server,
            &format!(
                "{prefix}/imgserv.cgi?src=%2F{}&width=400&height=400",
                encode(SEA)
            ),
        );
        let location = fitted.header("location").unwrap();
        assert!(
            location.starts_with(&format!("{base}{prefix}/imgcache/album/sea.png/400x240-")),
            "{location}"
        );
        let file = ok(&server, &local(&server, location));
        assert_eq!(file.header("content-type"), Some("image/jpeg"));
    }
}

#[test]
fn the_list_and_metadata_carry_each_images_token() {
    let server = start("signing-list", keys(KEY));
    let list = server.json("/api/images");
    let items = list.as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        let id = item["id"].as_str().unwrap();
        let token = item["signature"].as_str().expect("a signature");
        assert_eq!(token, signer(KEY).sign(id, None), "tokens never expire");
        ok(
            &server,
            &format!("/s/{token}/api/images/{}/tiles/0/0/0.jpg", encode(id)),
        );
        let meta = server.json(&format!("/api/images/{}/meta", encode(id)));
        assert_eq!(meta["signature"], token);
    }
    // A token is for its own image only.
    let sea = items.iter().find(|i| i["id"] == SEA).unwrap();
    let token = sea["signature"].as_str().unwrap();
    refused(
        &server,
        &format!("/s/{token}/api/images/{OTHER}/tiles/0/0/0.jpg"),
    );
}

#[test]
fn without_keys_nothing_is_signed() {
    let server = start("signing-off", SettingsLayer::default());
    let list = server.json("/api/images");
    assert!(list[0].get("signature").is_none(), "{list}");
    let meta = server.json(&format!("/api/images/{}/meta", encode(SEA)));
    assert!(meta.get("signature").is_none(), "{meta}");
    let info = server.json(&format!("/iiif/3/{}/info.json", encode(SEA)));
    assert_eq!(
        info["id"],
        format!("http://{}/iiif/3/{}", server.addr, encode(SEA))
    );
    // The prefix means nothing then.
    let token = signer(KEY).sign(SEA, None);
    server
        .get(&format!("/s/{token}/iiif/3/{}/info.json", encode(SEA)))
        .assert_error(404, "not_found");
}

#[test]
fn keys_rotate_the_first_signs_and_every_one_verifies() {
    let old = signer(OLD_KEY).sign(SEA, None);
    let new = signer(KEY).sign(SEA, None);
    let tile = |token: &str| format!("/s/{token}/api/images/{}/tiles/0/0/0.jpg", encode(SEA));
    let server = start("signing-rotate", keys(&format!("{KEY}, {OLD_KEY}")));
    ok(&server, &tile(&old));
    ok(&server, &tile(&new));
    // What the server hands out is signed with the first key.
    let first = &server.json("/api/images")[0];
    let id = first["id"].as_str().unwrap();
    assert_eq!(first["signature"], signer(KEY).sign(id, None));
    let server = server.restart(keys(KEY));
    server.wait_ready(SEA, 30);
    refused(&server, &tile(&old));
    ok(&server, &tile(&new));
}

fn gigatile(args: &[&str], keys: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gigatile"));
    command.args(args).env_remove("URL_SIGNING_KEYS");
    if let Some(keys) = keys {
        command.env("URL_SIGNING_KEYS", keys);
    }
    command.output().unwrap()
}

#[test]
fn gigatile_sign_mints_urls_the_server_accepts() {
    let server = start("signing-cli", keys(KEY));
    let base = format!("http://{}", server.addr);
    let out = gigatile(
        &[
            "sign",
            SEA,
            "--expires-in",
            "600",
            "--public-base-url",
            &base,
        ],
        Some(KEY),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .trim()
            .to_owned()
    };
    let token = field("token");
    let (expires, _) = token.split_once('.').expect("an expiry");
    let expires: u64 = expires.parse().unwrap();
    assert!(
        (unix_now() + 590..=unix_now() + 600).contains(&expires),
        "{token}"
    );
    assert_eq!(field("prefix"), format!("/s/{token}"));
    for name in [
        "tiles", "iiif 3", "iiif 2", "manifest", "dzi", "zoomify", "imgserv",
    ] {
        let url = field(name).replace("{z}/{x}/{y}", "0/0/0");
        ok(&server, &local(&server, &url));
    }

    // Without keys there is nothing to sign with; a short key is refused by name.
    let out = gigatile(&["sign", SEA], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("URL_SIGNING_KEYS"));
    let out = gigatile(&["sign", SEA], Some("short"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("URL_SIGNING_KEYS"));

    // `serve --help` documents the setting and never shows its value.
    let out = gigatile(&["serve", "--help"], Some(KEY));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("URL_SIGNING_KEYS"), "{help}");
    assert!(!help.contains(KEY), "the key is shown in --help");
}
