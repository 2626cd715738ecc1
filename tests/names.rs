//! Names as users gave them: an upload is listed, labelled in its IIIF manifest (and canvas)
//! and shown in the viewer by its original file name, never by the name it is stored under;
//! other files by their own name. The viewer part runs in headless Chromium
//! (`tests/browser/names.mjs`), which also checks that a name made of markup stays text.

mod common;

use common::browser::run_script;
use common::server::{encode, multipart, TestServer};
use common::{photo, write_png};
use gigatile::config::SettingsLayer;
use gigatile::raster::PixelLayout;

/// Uploads `bytes` as `name` and returns the id it was given, once it is ready.
fn upload(server: &TestServer, name: &str, bytes: &[u8]) -> String {
    let (ctype, body) = multipart(name, bytes, &[]);
    let r = server.request("POST", "/api/upload", &[("Content-Type", &ctype)], &body);
    assert_eq!(r.status, 201, "{}", r.text());
    let answer = r.json();
    assert_eq!(answer["name"], name);
    let id = answer["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("uploads/") && !id.contains("Sunset"), "{id}");
    server.wait_ready(&id, 60);
    id
}

fn manifest_labels(server: &TestServer, id: &str) -> (String, String) {
    let m = server.json(&format!("/iiif/3/{}/manifest.json", encode(id)));
    let label = |v: &serde_json::Value| v["none"][0].as_str().unwrap().to_string();
    (label(&m["label"]), label(&m["items"][0]["label"]))
}

#[test]
fn uploads_are_named_as_their_users_named_them() {
    let server = TestServer::start("names", SettingsLayer::default(), |data| {
        std::fs::create_dir_all(data.path("album")).unwrap();
        write_png(
            &photo(500, 300, PixelLayout::Rgb),
            &data.path("album/harbour.png"),
        );
    });
    server.wait_ready("album/harbour.png", 60);
    let sunset = "Sunset über Meer.jpg";
    let jpeg = gigatile::codec::jpeg::encode(&photo(900, 600, PixelLayout::Rgb), 85).unwrap();
    let sunset_id = upload(&server, sunset, &jpeg);
    let markup = "<img src=x onerror=alert(1)> & co.png";
    let png = gigatile::codec::png::encode(&photo(300, 200, PixelLayout::Rgb)).unwrap();
    let markup_id = upload(&server, markup, &png);

    let list = server.json("/api/images");
    let listed = |id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed: {list}"))["original_filename"]
            .clone()
    };
    assert_eq!(listed(&sunset_id), sunset);
    assert_eq!(listed(&markup_id), markup);
    assert_eq!(listed("album/harbour.png"), "harbour.png");

    for (id, name) in [(&sunset_id, sunset), (&markup_id, markup)] {
        assert_eq!(manifest_labels(&server, id), (name.into(), name.into()));
    }
    assert_eq!(
        manifest_labels(&server, "album/harbour.png"),
        ("harbour.png".into(), "harbour.png".into())
    );

    let names = serde_json::json!([
        { "id": sunset_id, "name": sunset },
        { "id": markup_id, "name": markup },
        { "id": "album/harbour.png", "name": "harbour.png" },
    ]);
    run_script(
        "names.mjs",
        &[&format!("http://{}", server.addr), &names.to_string()],
    );
}
