//! The catalogue end to end on real files in a temporary DATA_DIR: discovery by content, ids,
//! what is never listed, background builds with previews, live changes, uploads, delete, purge,
//! eviction and shutdown.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{photo, write_png, TempDir};
use gigatile::catalog::{purge_dir, Catalog, CatalogConfig, DeleteError, ImageMeta, ImageStatus};
use gigatile::geometry::Level;
use gigatile::raster::PixelLayout;
use gigatile::source::SourceFormat;

fn config(data: &Path) -> CatalogConfig {
    let mut config = CatalogConfig::new(data);
    config.build.threads = 2;
    config
}

fn png(path: &Path, width: u32, height: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_png(&photo(width, height, PixelLayout::Rgb), path);
}

fn jpeg(path: &Path, width: u32, height: u32) {
    let bytes = gigatile::codec::jpeg::encode(&photo(width, height, PixelLayout::Rgb), 85);
    std::fs::write(path, bytes.unwrap()).unwrap();
}

/// A file with PNG's signature and garbage after it.
fn corrupt_png(path: &Path) {
    std::fs::write(path, b"\x89PNG\r\n\x1a\n-- not really a png, just bytes --").unwrap();
}

fn ids(catalog: &Catalog) -> Vec<String> {
    catalog.list().into_iter().map(|e| e.id).collect()
}

/// Waits (on `changes()`, re-checking every 100 ms for progress) until `done`.
fn wait_for(catalog: &Catalog, what: &str, mut done: impl FnMut(&Catalog) -> bool) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut changes = catalog.changes();
    let deadline = Instant::now() + Duration::from_secs(20);
    runtime.block_on(async {
        while !done(catalog) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for {what}");
            let tick = left.min(Duration::from_millis(100));
            let _ = tokio::time::timeout(tick, changes.changed()).await;
        }
    });
}

fn is_ready(catalog: &Catalog, id: &str) -> bool {
    catalog
        .get(id)
        .is_some_and(|e| e.status == ImageStatus::Ready)
}

/// Files in a folder (names), temporary dot-files included.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn pyramid_dir(data: &Path) -> PathBuf {
    data.join(".gigatile/pyramids")
}

#[test]
fn the_catalogue_is_shared_across_threads() {
    fn shared<T: Send + Sync + Clone + 'static>() {}
    shared::<Catalog>();
}

#[test]
fn the_first_scan_finds_images_by_content_and_skips_the_rest() {
    let dir = TempDir::new("cat-scan");
    let data = dir.path("data");
    png(&data.join("a.png"), 300, 200);
    png(&data.join("nested/deeper/b.png"), 64, 64);
    jpeg(&data.join("photo.dat"), 320, 240);
    std::fs::write(data.join("text.jpg"), "hello, not a picture").unwrap();
    png(&data.join(".gigatile/own.png"), 32, 32);
    png(&data.join(".hidden/c.png"), 32, 32);
    png(&data.join("uploads/.incoming/partial.png"), 32, 32);
    corrupt_png(&data.join("broken.png"));
    let outside = dir.path("outside.png");
    png(&outside, 40, 40);
    std::os::unix::fs::symlink(&outside, data.join("out-link.png")).unwrap();
    std::os::unix::fs::symlink(data.join("a.png"), data.join("in-link.png")).unwrap();
    std::os::unix::fs::symlink(&data, data.join("loop")).unwrap();
    let tiff = data.join("pyramid.tif");
    common::run(
        "vips",
        &[
            "tiffsave",
            data.join("a.png").to_str().unwrap(),
            tiff.to_str().unwrap(),
            "--tile",
            "--pyramid",
        ],
    );

    let catalog = Catalog::start(config(&data)).unwrap();
    assert_eq!(
        ids(&catalog),
        [
            "a.png",
            "broken.png",
            "in-link.png",
            "nested/deeper/b.png",
            "photo.dat",
            "pyramid.tif"
        ]
    );
    let photo = catalog.get("photo.dat").unwrap();
    assert_eq!(
        (photo.format, photo.width, photo.height),
        (SourceFormat::Jpeg, 320, 240)
    );
    assert_eq!(photo.meta.original_filename, "photo.dat");
    assert!(!photo.uploaded);
    let Some(ImageStatus::Failed { reason }) = catalog.get("broken.png").map(|e| e.status) else {
        panic!("a corrupt PNG is listed as failed");
    };
    assert!(!reason.contains(data.to_str().unwrap()), "{reason}");
    // A tiled pyramidal TIFF is served as it is, at once, and never copied.
    let (entry, pyramid) = catalog.pyramid("pyramid.tif").unwrap();
    assert_eq!(
        (entry.status, entry.ready_level),
        (ImageStatus::Ready, Some(Level(0)))
    );
    assert_eq!(pyramid.geometry().width, 300);
    // The symlink inside is served from its (checked) target.
    assert_eq!(
        catalog.get("in-link.png").unwrap().path,
        std::fs::canonicalize(data.join("a.png")).unwrap()
    );
    catalog.shutdown();
}

#[test]
fn builds_reach_ready_and_serve_the_pyramid() {
    let dir = TempDir::new("cat-build");
    let data = dir.path("data");
    png(&data.join("small.png"), 700, 500);
    let catalog = Catalog::start(config(&data)).unwrap();
    wait_for(&catalog, "the build", |c| is_ready(c, "small.png"));
    let (entry, pyramid) = catalog.pyramid("small.png").unwrap();
    assert_eq!(entry.ready_level, Some(Level(0)));
    assert_eq!(pyramid.finest_level(), Some(Level(0)));
    assert_eq!(
        (pyramid.geometry().width, pyramid.geometry().height),
        (700, 500)
    );
    assert!(catalog.pyramid("unknown.png").is_none());
    catalog.shutdown();
}

#[test]
fn a_large_jpeg_shows_a_preview_level_before_ready() {
    let dir = TempDir::new("cat-preview");
    let data = dir.path("data");
    std::fs::create_dir_all(&data).unwrap();
    jpeg(&data.join("big.jpg"), 4400, 3000);
    let catalog = Catalog::start(config(&data)).unwrap();
    let mut preview_seen = false;
    wait_for(&catalog, "the preview, then ready", |c| {
        let entry = c.get("big.jpg").unwrap();
        if matches!(entry.status, ImageStatus::Building { .. })
            && entry.ready_level == Some(Level(3))
        {
            preview_seen = c
                .pyramid("big.jpg")
                .is_some_and(|(_, p)| p.finest_level() == Some(Level(3)));
        }
        entry.status == ImageStatus::Ready
    });
    assert!(preview_seen, "no preview level was observed before ready");
    assert_eq!(catalog.get("big.jpg").unwrap().ready_level, Some(Level(0)));
    catalog.shutdown();
}

#[test]
fn files_added_changed_and_removed_are_picked_up() {
    let dir = TempDir::new("cat-live");
    let data = dir.path("data");
    std::fs::create_dir_all(&data).unwrap();
    let catalog = Catalog::start(config(&data)).unwrap();
    assert!(catalog.list().is_empty());
    let file = data.join("new/late.png");
    png(&file, 120, 80);
    wait_for(&catalog, "the added file", |c| {
        c.get("new/late.png").is_some()
    });
    let first = catalog.get("new/late.png").unwrap().version;
    png(&file, 140, 90);
    wait_for(&catalog, "the changed file", |c| {
        c.get("new/late.png")
            .is_some_and(|e| e.width == 140 && e.version != first)
    });
    wait_for(&catalog, "the new version's build", |c| {
        is_ready(c, "new/late.png")
    });
    std::fs::remove_file(&file).unwrap();
    wait_for(&catalog, "the removal", |c| c.list().is_empty());
    catalog.shutdown();
}

#[test]
fn uploads_are_validated_stored_and_deletable() {
    let dir = TempDir::new("cat-upload");
    let data = dir.path("data");
    png(&data.join("user.png"), 64, 64);
    std::fs::create_dir_all(data.join("uploads")).unwrap();
    std::os::unix::fs::symlink(data.join("user.png"), data.join("uploads/link.png")).unwrap();
    let catalog = Catalog::start(config(&data)).unwrap();
    let incoming = data.join("uploads/.incoming");
    let uploads_now = || names(&data.join("uploads"));

    // Rejected: not an image, and a corrupt PNG; the temp file goes, nothing is stored.
    let text = incoming.join("t1");
    std::fs::write(&text, "plain text").unwrap();
    let err = catalog.add_upload(&text, ImageMeta::default()).unwrap_err();
    assert!(matches!(err, gigatile::Error::Unsupported(_)), "{err:?}");
    let bad = incoming.join("t2");
    corrupt_png(&bad);
    assert!(catalog.add_upload(&bad, ImageMeta::default()).is_err());
    assert!(!text.exists() && !bad.exists());
    assert_eq!(uploads_now(), [".incoming", "link.png"]);

    // Accepted: stored under a generated name with the detected extension, meta kept.
    let good = incoming.join("t3");
    jpeg(&good, 500, 300);
    let meta = ImageMeta {
        original_filename: "My Photo.jpeg".into(),
        copyright_text: Some("CC BY".into()),
        copyright_link: None,
    };
    let entry = catalog.add_upload(&good, meta.clone()).unwrap();
    assert!(!good.exists());
    assert!(
        entry.id.starts_with("uploads/") && entry.id.ends_with(".jpg"),
        "{}",
        entry.id
    );
    assert!(entry.uploaded && entry.path.exists());
    assert_eq!(entry.meta, meta);
    wait_for(&catalog, "the upload's build", |c| is_ready(c, &entry.id));
    assert!(!names(&pyramid_dir(&data)).is_empty());

    // Delete: refused for users' files, removes the upload and everything derived from it.
    // A symlink in uploads/ to a user's file is not an upload.
    for user_file in ["user.png", "uploads/link.png"] {
        let refused = catalog.delete(user_file);
        assert!(
            matches!(refused, Err(DeleteError::NotUploaded)),
            "{refused:?}"
        );
    }
    assert!(matches!(
        catalog.delete("uploads/nope.jpg"),
        Err(DeleteError::NotFound)
    ));
    wait_for(&catalog, "user.png's build", |c| is_ready(c, "user.png"));
    let before = names(&pyramid_dir(&data)).len();
    catalog.delete(&entry.id).unwrap();
    assert!(!entry.path.exists());
    assert!(catalog.get(&entry.id).is_none());
    assert_eq!(
        names(&pyramid_dir(&data)).len(),
        before - 2,
        "pyramid and marker removed"
    );
    assert_eq!(uploads_now(), [".incoming", "link.png"]);
    assert!(user_file_intact(&data.join("user.png")));
    catalog.shutdown();
}

fn user_file_intact(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG"))
}

#[test]
fn purge_drops_pyramids_and_rebuilds_them() {
    let dir = TempDir::new("cat-purge");
    let data = dir.path("data");
    png(&data.join("a.png"), 400, 300);
    png(&data.join("b.png"), 300, 200);
    let catalog = Catalog::start(config(&data)).unwrap();
    wait_for(&catalog, "both builds", |c| {
        is_ready(c, "a.png") && is_ready(c, "b.png")
    });
    assert!(catalog.purge(Some("a.png")).unwrap() > 0);
    assert!(matches!(
        catalog.purge(Some("zz.png")),
        Err(gigatile::Error::NotFound)
    ));
    wait_for(&catalog, "a's rebuild", |c| is_ready(c, "a.png"));
    assert!(catalog.purge(None).unwrap() > 0);
    wait_for(&catalog, "the rebuilds", |c| {
        is_ready(c, "a.png") && is_ready(c, "b.png")
    });
    catalog.shutdown();
    // The free function, without a catalogue: one id, then everything.
    let pyramids = pyramid_dir(&data);
    assert!(purge_dir(&pyramids, Some("a.png")).unwrap() > 0);
    assert!(purge_dir(&pyramids, None).unwrap() > 0);
    assert!(names(&pyramids).is_empty());
}

#[test]
fn the_budget_evicts_the_least_recently_used_pyramid() {
    let dir = TempDir::new("cat-evict");
    let data = dir.path("data");
    png(&data.join("old.png"), 400, 300);
    let mut config = config(&data);
    config.pyramid_max_bytes = 1;
    let catalog = Catalog::start(config).unwrap();
    wait_for(&catalog, "old's build", |c| is_ready(c, "old.png"));
    // Once old.png is out of use, the next build pushes it out.
    std::thread::sleep(gigatile::catalog::IN_USE_GRACE);
    png(&data.join("new.png"), 300, 200);
    wait_for(&catalog, "new's build", |c| is_ready(c, "new.png"));
    wait_for(&catalog, "old's eviction", |c| {
        c.get("old.png").is_some_and(|e| e.ready_level.is_none())
    });
    assert!(is_ready(&catalog, "new.png"), "the pyramid in use stays");
    let old = catalog.get("old.png").unwrap();
    assert_eq!(
        (old.status, old.ready_level),
        (ImageStatus::Building { progress: 0.0 }, None)
    );
    // Asking for it again rebuilds it.
    assert!(catalog.pyramid("old.png").is_none());
    wait_for(&catalog, "old's rebuild", |c| is_ready(c, "old.png"));
    catalog.shutdown();
}

#[test]
fn shutdown_cancels_builds_and_leaves_no_temporary_file() {
    let dir = TempDir::new("cat-shutdown");
    let data = dir.path("data");
    std::fs::create_dir_all(&data).unwrap();
    jpeg(&data.join("big.jpg"), 4400, 3000);
    let catalog = Catalog::start(config(&data)).unwrap();
    // The preview exists, the full build is under way.
    wait_for(&catalog, "the preview", |c| {
        c.get("big.jpg").unwrap().ready_level == Some(Level(3))
    });
    catalog.shutdown();
    catalog.shutdown();
    let leftovers: Vec<String> = names(&pyramid_dir(&data))
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(ids(&catalog), ["big.jpg"]);
}
