//! The command line, run as a user would: info, convert, tile, and clean errors.

mod common;

use std::process::Command;

use common::{photo, write_png, TempDir};
use gigatile::raster::PixelLayout;

fn gigatile(args: &[&str], dir: &TempDir) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gigatile"))
        .args(args)
        .env("PYRAMID_DIR", dir.path("pyramids"))
        .output()
        .unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn info_convert_and_tile_work_together() {
    let dir = TempDir::new("cli");
    let png = dir.path("photo.png");
    write_png(&photo(900, 600, PixelLayout::Rgb), &png);
    let info = stdout(&gigatile(&["info", png.to_str().unwrap()], &dir));
    assert!(info.contains("format:          png"), "{info}");
    assert!(info.contains("900×600"), "{info}");

    let tif = dir.path("out.tif");
    let converted = stdout(&gigatile(
        &["convert", png.to_str().unwrap(), tif.to_str().unwrap()],
        &dir,
    ));
    assert!(converted.contains("3 levels"), "{converted}");
    // The output is a standard pyramid other tools read.
    let tiffinfo = Command::new("tiffinfo").arg(&tif).output().unwrap();
    let listing = String::from_utf8_lossy(&tiffinfo.stdout);
    assert_eq!(listing.matches("TIFF Directory").count(), 3, "{listing}");
    assert!(listing.contains("Tile Width: 256"), "{listing}");
    let header = Command::new("vipsheader").arg(&tif).output().unwrap();
    assert!(String::from_utf8_lossy(&header.stdout).contains("900x600"));
    let info = stdout(&gigatile(&["info", tif.to_str().unwrap()], &dir));
    assert!(info.contains("served as it is"), "{info}");

    for (args, size) in [
        (vec!["0", "3", "2", "-o"], (132, 88)),
        (vec!["2", "0", "0", "-o"], (225, 150)),
    ] {
        let out = dir.path("t.png");
        let mut all = vec!["tile", png.to_str().unwrap()];
        all.extend(args);
        all.push(out.to_str().unwrap());
        stdout(&gigatile(&all, &dir));
        let tile = common::decode_png(&std::fs::read(&out).unwrap());
        assert_eq!((tile.width, tile.height), size);
    }
    let jpg = dir.path("t.jpg");
    let tiled = stdout(&gigatile(
        &[
            "tile",
            tif.to_str().unwrap(),
            "0",
            "1",
            "1",
            "-o",
            jpg.to_str().unwrap(),
        ],
        &dir,
    ));
    assert!(tiled.contains("passed through"), "{tiled}");
}

#[test]
fn errors_are_clean_messages() {
    let dir = TempDir::new("cli-errors");
    let text = dir.path("notes.txt");
    std::fs::write(&text, "not an image").unwrap();
    for args in [
        vec!["info", text.to_str().unwrap()],
        vec!["info", "/nonexistent/file.tif"],
        vec!["tile", text.to_str().unwrap(), "0", "0", "0", "-o", "x.jpg"],
    ] {
        let out = gigatile(&args, &dir);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("gigatile: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let png = dir.path("p.png");
    write_png(&photo(100, 100, PixelLayout::Rgb), &png);
    let out = gigatile(
        &["tile", png.to_str().unwrap(), "5", "0", "0", "-o", "x.jpg"],
        &dir,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("levels 0 to 0"));
}
