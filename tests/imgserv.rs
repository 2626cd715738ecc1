//! Fitted images end to end, without HTTP: fit rules on real catalogue entries, the cache
//! folder (mtimes, invalidation, LRU to 2/3, minimum lifetime, one render per file, batched
//! last use), path safety, mirrors and precaching.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, UNIX_EPOCH};

use common::{photo, write_png, TempDir};
use gigatile::catalog::{Catalog, CatalogConfig, ImageEntry, ImageStatus};
use gigatile::codec::OutputFormat;
use gigatile::imgserv::fit::{parse_query, FitQuery, Fitted, SourceFacts};
use gigatile::imgserv::mirrors::MirrorConfig;
use gigatile::imgserv::{source_facts, ImgServ, ImgServConfig, Location};
use gigatile::pyramid::levels::Pyramid;
use gigatile::pyramid::store::SourceVersion;
use gigatile::raster::PixelLayout;
use gigatile::source::SourceFormat;

fn config(cache: &Path, max_bytes: u64, min_lifetime_secs: u64) -> ImgServConfig {
    ImgServConfig {
        cache_dir: cache.to_owned(),
        raster: 50,
        max_bytes,
        min_lifetime: Duration::from_secs(min_lifetime_secs),
        jpeg_quality: None,
        webp_quality: None,
        mirrors: Vec::new(),
    }
}

/// A 4000×3000 JPEG source that exists only as facts (the store never reads sources).
fn facts(len: u64) -> SourceFacts {
    SourceFacts {
        width: 4000,
        height: 3000,
        format: SourceFormat::Jpeg,
        has_alpha: false,
        version: SourceVersion {
            len,
            mtime_ns: 1_700_000_000_123_456_789,
        },
    }
}

fn fit_box(serv: &ImgServ, source: &SourceFacts, id: &str, box_size: (u32, u32)) -> Fitted {
    let query = FitQuery {
        id: id.to_owned(),
        box_size,
        format: None,
    };
    serv.fit(source, &query)
}

/// Ensures a version whose bytes are `len` zeros; returns the file's path.
fn make(serv: &ImgServ, source: &SourceFacts, id: &str, width: u32, len: usize) -> PathBuf {
    let fitted = fit_box(serv, source, id, (width, 10_000));
    let location = serv.ensure(source, &fitted, || Ok(vec![0; len])).unwrap();
    assert_eq!(location, Location::Local(fitted.name.clone()));
    serv.cache_dir().join(&fitted.name)
}

/// A catalogue over `data` with one PNG `name`, built and ready.
fn ready_source(data: &Path, name: &str, layout: PixelLayout) -> (Catalog, ImageEntry, Pyramid) {
    let path = data.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_png(&photo(400, 300, layout), &path);
    let catalog = Catalog::start(CatalogConfig::new(data)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while catalog.get(name).map(|e| e.status) != Some(ImageStatus::Ready) {
        assert!(Instant::now() < deadline, "{name} never became ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (entry, pyramid) = catalog.pyramid(name).unwrap();
    (catalog, entry, pyramid)
}

#[test]
fn near_boxes_share_one_file_and_small_or_huge_boxes_are_defined() {
    let dir = TempDir::new("imgserv-fit");
    let serv = ImgServ::open(config(&dir.path("cache"), 1 << 30, 0)).unwrap();
    let source = facts(1);
    let a = fit_box(&serv, &source, "gallery/holiday/1.jpg", (801, 600));
    let b = fit_box(&serv, &source, "gallery/holiday/1.jpg", (820, 600));
    assert_eq!(a, b);
    assert!(a.name.starts_with("gallery/holiday/1.jpg/800x600-r50-"));
    assert!(a.name.ends_with(".jpg"));
    // Larger than the picture: its own width, rounded down to the raster; never scaled up.
    let huge = fit_box(&serv, &source, "x.jpg", (9000, 9000));
    assert_eq!((huge.width, huge.height), (4000, 3000));
    // Below the raster: the fitted width unrastered, still inside the box.
    let tiny = fit_box(&serv, &source, "x.jpg", (30, 30));
    assert_eq!((tiny.width, tiny.height), (30, 23));
}

#[test]
fn fitted_files_carry_the_source_mtime_and_follow_its_format() {
    let dir = TempDir::new("imgserv-render");
    let data = dir.path("data");
    let (catalog, entry, pyramid) = ready_source(&data, "gallery/a.png", PixelLayout::Rgb);
    let serv = ImgServ::open(config(&dir.path("cache"), 1 << 30, 0)).unwrap();
    let source = source_facts(&entry, &pyramid);
    let query = parse_query([
        ("src", "/gallery/a.png"),
        ("width", "200"),
        ("height", "200"),
    ]);
    let fitted = serv.fit(&source, &query.unwrap());
    assert_eq!(
        (fitted.width, fitted.height, fitted.format),
        (200, 150, OutputFormat::Jpeg)
    );
    let location = serv
        .ensure(&source, &fitted, || {
            serv.render(
                &pyramid,
                &fitted,
                &gigatile::memory::MemoryBudget::unlimited(),
            )
        })
        .unwrap();
    assert_eq!(location, Location::Local(fitted.name.clone()));
    let path = serv.cache_dir().join(&fitted.name);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..2], b"\xff\xd8");
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let source_mtime = std::fs::metadata(data.join("gallery/a.png"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(mtime, source_mtime);
    catalog.shutdown();

    let (catalog, entry, pyramid) = ready_source(&dir.path("data2"), "b.png", PixelLayout::Rgba);
    let source = source_facts(&entry, &pyramid);
    let fitted = fit_box(&serv, &source, "b.png", (100, 100));
    assert_eq!(fitted.format, OutputFormat::Png);
    serv.ensure(&source, &fitted, || {
        serv.render(
            &pyramid,
            &fitted,
            &gigatile::memory::MemoryBudget::unlimited(),
        )
    })
    .unwrap();
    let bytes = std::fs::read(serv.cache_dir().join(&fitted.name)).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    catalog.shutdown();
}

#[test]
fn a_changed_source_drops_its_old_versions() {
    let dir = TempDir::new("imgserv-invalidate");
    let serv = ImgServ::open(config(&dir.path("cache"), 1 << 30, 0)).unwrap();
    let old = [
        make(&serv, &facts(1), "a.jpg", 800, 10),
        make(&serv, &facts(1), "a.jpg", 400, 10),
    ];
    let other = make(&serv, &facts(1), "b.jpg", 800, 10);
    let new = make(&serv, &facts(2), "a.jpg", 800, 10);
    assert_ne!(new, old[0], "a changed source gets a new name");
    assert!(old.iter().all(|p| !p.exists()), "old versions are dropped");
    assert!(new.exists() && other.exists());
    let record = std::fs::read_to_string(dir.path("cache/a.jpg/.info.json")).unwrap();
    assert!(record.contains("\"source_len\": 2"), "{record}");
}

#[test]
fn eviction_goes_down_to_two_thirds_in_last_use_order() {
    let dir = TempDir::new("imgserv-evict");
    let serv = ImgServ::open(config(&dir.path("cache"), 1000, 0)).unwrap();
    let source = facts(1);
    let mut paths = Vec::new();
    for id in ["a.jpg", "b.jpg", "c.jpg"] {
        paths.push(make(&serv, &source, id, 800, 300));
        std::thread::sleep(Duration::from_millis(5));
    }
    // A hit makes a the most recently used: the order is now b, c, a.
    make(&serv, &source, "a.jpg", 800, 300);
    std::thread::sleep(Duration::from_millis(5));
    let d = make(&serv, &source, "d.jpg", 800, 300);
    // 1200 bytes > 1000: b then c go, leaving 600 <= 666.
    let kept: Vec<bool> = paths.iter().map(|p| p.exists()).collect();
    assert_eq!(kept, [true, false, false]);
    assert!(d.exists());
}

#[test]
fn files_handed_out_within_the_minimum_lifetime_survive_eviction() {
    let dir = TempDir::new("imgserv-lifetime");
    let serv = ImgServ::open(config(&dir.path("cache"), 1000, 3600)).unwrap();
    let source = facts(1);
    let paths: Vec<PathBuf> = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
        .iter()
        .map(|id| make(&serv, &source, id, 800, 300))
        .collect();
    assert!(paths.iter().all(|p| p.exists()));
}

#[test]
fn concurrent_requests_for_one_size_make_one_file() {
    let dir = TempDir::new("imgserv-coalesce");
    let serv = Arc::new(ImgServ::open(config(&dir.path("cache"), 1 << 30, 0)).unwrap());
    let renders = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (serv, renders, barrier) = (serv.clone(), renders.clone(), barrier.clone());
            std::thread::spawn(move || {
                let source = facts(1);
                // Different boxes that map to the same rastered width.
                let fitted = fit_box(&serv, &source, "a.jpg", (800 + i, 600));
                barrier.wait();
                serv.ensure(&source, &fitted, || {
                    renders.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                    Ok(vec![1; 100])
                })
                .unwrap()
            })
        })
        .collect();
    let locations: Vec<Location> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(renders.load(Ordering::SeqCst), 1);
    assert!(locations.iter().all(|l| *l == locations[0]));
}

#[test]
fn a_hit_writes_nothing_until_flush() {
    let dir = TempDir::new("imgserv-batch");
    let serv = ImgServ::open(config(&dir.path("cache"), 1 << 30, 0)).unwrap();
    let source = facts(1);
    make(&serv, &source, "a.jpg", 800, 10);
    let record = dir.path("cache/a.jpg/.info.json");
    let read = || {
        let mtime = std::fs::metadata(&record).unwrap().modified().unwrap();
        (std::fs::read(&record).unwrap(), mtime)
    };
    let before = read();
    std::thread::sleep(Duration::from_millis(10));
    let fitted = fit_box(&serv, &source, "a.jpg", (800, 10_000));
    let hit = serv.ensure(&source, &fitted, || panic!("a hit must not render"));
    assert!(hit.is_ok());
    assert_eq!(read(), before, "a hit wrote the record");
    serv.flush().unwrap();
    assert_ne!(read().0, before.0, "flush writes the new last use");
}

#[test]
fn records_survive_a_restart() {
    let dir = TempDir::new("imgserv-restart");
    let cache = dir.path("cache");
    let path = {
        let serv = ImgServ::open(config(&cache, 1 << 30, 0)).unwrap();
        make(&serv, &facts(1), "x/a.jpg", 800, 10)
    };
    let serv = ImgServ::open(config(&cache, 1 << 30, 0)).unwrap();
    let fitted = fit_box(&serv, &facts(1), "x/a.jpg", (800, 10_000));
    serv.ensure(&facts(1), &fitted, || panic!("the file is cached"))
        .unwrap();
    assert!(path.exists());
}

#[test]
fn paths_outside_the_data_root_are_refused() {
    for src in [
        "/../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/%2E%2E/%2E%2E/etc/passwd",
        "/a/../../b",
        "/etc/../../passwd",
        "//etc/passwd",
        "C:\\Windows\\win.ini",
        "",
        "gallery/a.jpg",
    ] {
        let query = parse_query([("src", src), ("width", "100"), ("height", "100")]);
        assert!(query.is_err(), "{src:?} was accepted");
    }
}

fn mirror(dir: &TempDir, name: &str, bandwidth: u64) -> MirrorConfig {
    MirrorConfig {
        name: name.to_owned(),
        base_url: format!("https://{name}.example/imgcache/"),
        bandwidth,
        manifest: dir.path(&format!("{name}.txt")),
    }
}

#[test]
fn mirrors_are_chosen_by_bandwidth_and_manifests_reload() {
    let dir = TempDir::new("imgserv-mirrors");
    let mut config = config(&dir.path("cache"), 1 << 30, 0);
    config.mirrors = vec![mirror(&dir, "slow", 10), mirror(&dir, "fast", 100)];
    let serv = ImgServ::open(config).unwrap();
    let source = facts(1);
    let [x, y, z] = ["x.jpg", "y.jpg", "z.jpg"].map(|id| fit_box(&serv, &source, id, (800, 600)));
    std::fs::write(dir.path("slow.txt"), format!("{}\n{}\n", x.name, y.name)).unwrap();
    std::fs::write(dir.path("fast.txt"), format!("{}\n", x.name)).unwrap();
    let locate = |f: &Fitted| serv.ensure(&source, f, || Ok(vec![0; 10])).unwrap();
    assert_eq!(
        locate(&x),
        Location::Mirror(format!("https://fast.example/imgcache/{}", x.name))
    );
    assert_eq!(
        locate(&y),
        Location::Mirror(format!("https://slow.example/imgcache/{}", y.name))
    );
    assert_eq!(locate(&z), Location::Local(z.name.clone()));
    let local = locate(&z).url("https://here.example/imgcache/");
    assert_eq!(local, format!("https://here.example/imgcache/{}", z.name));

    std::fs::write(dir.path("fast.txt"), format!("{}\n{}\n", x.name, y.name)).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        locate(&y),
        Location::Mirror(format!("https://fast.example/imgcache/{}", y.name))
    );
}

#[test]
fn precache_lays_files_out_like_the_cache_and_writes_the_manifest() {
    let dir = TempDir::new("imgserv-precache");
    let (catalog, entry, pyramid) = ready_source(&dir.path("data"), "g/a.png", PixelLayout::Rgb);
    let serv = ImgServ::open(config(&dir.path("cache"), 1 << 30, 0)).unwrap();
    let out = dir.path("out");
    let manifest = dir.path("mirror.txt");
    std::fs::write(&manifest, "older/file.jpg\n").unwrap();
    let sources = [(entry, pyramid)];
    let sizes = [(200, 200), (100, 100), (120, 100)];
    let names = serv
        .precache(&sources, &sizes, Some(&out), Some(&manifest), |_| {})
        .unwrap();
    assert_eq!(
        names.len(),
        2,
        "(100,100) and (120,100) share one file: {names:?}"
    );
    let source_mtime = sources[0].0.version.mtime_ns;
    for name in &names {
        assert!(name.starts_with("g/a.png/"), "{name}");
        let mtime = std::fs::metadata(out.join(name))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(
            mtime.duration_since(UNIX_EPOCH).unwrap().as_nanos(),
            source_mtime
        );
        assert!(
            !serv.cache_dir().join(name).exists(),
            "a mirror folder is not the cache"
        );
    }
    let mut expected = names.clone();
    expected.push("older/file.jpg".to_owned());
    expected.sort();
    let listed = std::fs::read_to_string(&manifest).unwrap();
    assert_eq!(listed.lines().collect::<Vec<_>>(), expected);

    let cached = serv
        .precache(&sources, &sizes[..1], None, None, |_| {})
        .unwrap();
    assert!(serv.cache_dir().join(&cached[0]).is_file());
    catalog.shutdown();
}
