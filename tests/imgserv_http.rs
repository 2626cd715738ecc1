//! Fitted images over real HTTP: `/imgserv.cgi` redirects, the `/imgcache/` static files, the
//! cache's rules (raster, versions, eviction, minimum lifetime, one render per file), mirrors,
//! path safety, and `gigatile precache`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::server::TestServer;
use common::{assert_close, photo, reference_level, write_png, TempDir};
use gigatile::config::{ByteSize, SettingsLayer};
use gigatile::imgserv::mirrors::MirrorConfig;
use gigatile::raster::{PixelLayout, Raster};

/// A 1000×600 JPEG photo (`gallery/photo.jpg`, so that ids have folders) and a 400×300 PNG
/// with alpha.
fn gallery(name: &str, layer: SettingsLayer) -> (TestServer, Raster) {
    let full = photo(1000, 600, PixelLayout::Rgb);
    let jpeg = gigatile::codec::jpeg::encode(&full, 95).unwrap();
    let server = TestServer::start(name, layer, |dir| {
        std::fs::create_dir_all(dir.path("gallery")).unwrap();
        std::fs::write(dir.path("gallery/photo.jpg"), &jpeg).unwrap();
        write_png(&photo(400, 300, PixelLayout::Rgba), &dir.path("clear.png"));
    });
    server.wait_ready("gallery/photo.jpg", 30);
    server.wait_ready("clear.png", 30);
    (server, gigatile::codec::jpeg::decode(&jpeg).unwrap())
}

fn fitted_url(src: &str, width: u32, height: u32) -> String {
    format!("/imgserv.cgi?src={src}&width={width}&height={height}")
}

/// Asks for a fitted image; asserts a 302 and returns the redirect's target.
fn redirect(server: &TestServer, url: &str) -> String {
    let r = server.get(url);
    assert_eq!(r.status, 302, "{url}: {}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.header("location").expect("a Location").to_owned()
}

/// The path of a redirect target on this server.
fn local_path(server: &TestServer, target: &str) -> String {
    let prefix = format!("http://{}", server.addr);
    target
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{target} is not on {prefix}"))
        .to_owned()
}

/// `{w}x{h}` of a redirect target's file name.
fn size_in_name(target: &str) -> (u32, u32) {
    let file = target.rsplit('/').next().unwrap();
    let (w, rest) = file.split_once('x').unwrap();
    let h = rest.split('-').next().unwrap();
    (w.parse().unwrap(), h.parse().unwrap())
}

#[test]
fn fits_keep_the_ratio_follow_the_raster_and_never_upscale() {
    let (server, full) = gallery("fit-rules", SettingsLayer::default());
    let src = "/gallery/photo.jpg";
    let a = redirect(&server, &fitted_url(src, 500, 500));
    assert!(
        a.starts_with(&format!(
            "http://{}/imgcache/gallery/photo.jpg/500x300-r50-",
            server.addr
        )),
        "{a}"
    );
    assert!(a.ends_with(".jpg"), "a JPEG source gives a JPEG: {a}");
    // Near boxes share one file: the width rounds down to the raster.
    assert_eq!(redirect(&server, &fitted_url(src, 549, 10_000)), a);
    assert_eq!(redirect(&server, &fitted_url(src, 10_000, 300)), a);
    assert_eq!(server.metric("gigatile_imgserv_renders_total"), 1.0);
    // The height bounds the box: 1000×600 in 800×240 is 400×240.
    assert_eq!(
        size_in_name(&redirect(&server, &fitted_url(src, 800, 240))),
        (400, 240)
    );
    // Never upscaled: a box larger than the picture gives the picture's size.
    assert_eq!(
        size_in_name(&redirect(&server, &fitted_url(src, 5000, 5000))),
        (1000, 600)
    );
    // Below the raster the exact fit is used.
    assert_eq!(
        size_in_name(&redirect(&server, &fitted_url(src, 30, 30))),
        (30, 18)
    );

    // The target serves the right pixels, at the name's size.
    let r = server.get(&local_path(&server, &a));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    let got = gigatile::codec::jpeg::decode(&r.body).unwrap();
    assert_eq!((got.width, got.height), (500, 300));
    assert_close(&got, &reference_level(&full, 1), 30.0, "fitted 500×300");
}

#[test]
fn formats_follow_the_source_or_the_query() {
    let (server, _) = gallery("fit-formats", SettingsLayer::default());
    let png = redirect(&server, &fitted_url("/clear.png", 200, 200));
    assert!(png.ends_with(".png"), "a PNG with alpha stays PNG: {png}");
    let r = server.get(&local_path(&server, &png));
    assert_eq!(r.header("content-type"), Some("image/png"));
    let decoded = common::decode_png(&r.body);
    assert!(decoded.layout.has_alpha(), "alpha survives");
    let webp = redirect(
        &server,
        &(fitted_url("/clear.png", 200, 200) + "&format=webp"),
    );
    assert!(webp.ends_with(".webp"), "{webp}");
    assert_eq!(
        server
            .get(&local_path(&server, &webp))
            .header("content-type"),
        Some("image/webp")
    );
}

#[test]
fn cached_files_are_static_with_validators_ranges_and_the_source_mtime() {
    let (server, _) = gallery("fit-static", SettingsLayer::default());
    let target = redirect(&server, &fitted_url("/gallery/photo.jpg", 300, 300));
    let path = local_path(&server, &target);
    let whole = server.get(&path);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert!(whole
        .header("cache-control")
        .is_some_and(|c| c.contains("max-age=31536000") && c.contains("immutable")));
    assert_eq!(whole.header("access-control-allow-origin"), Some("*"));

    // The cached file's mtime is its source's; Last-Modified says so.
    let source_mtime = std::fs::metadata(server.path("gallery/photo.jpg"))
        .unwrap()
        .modified()
        .unwrap();
    let cached = server.path(&format!(
        ".gigatile/imgcache/{}",
        path.strip_prefix("/imgcache/").unwrap()
    ));
    assert_eq!(
        std::fs::metadata(&cached).unwrap().modified().unwrap(),
        source_mtime
    );
    assert_eq!(
        whole.header("last-modified").unwrap(),
        httpdate::fmt_http_date(source_mtime)
    );

    let etag = whole.header("etag").unwrap().to_owned();
    let again = server.request("GET", &path, &[("If-None-Match", &etag)], b"");
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());

    let len = whole.body.len();
    let part = server.request("GET", &path, &[("Range", "bytes=10-109")], b"");
    assert_eq!(part.status, 206);
    assert_eq!(part.body, whole.body[10..110]);
    let content_range = format!("bytes 10-109/{len}");
    assert_eq!(part.header("content-range"), Some(content_range.as_str()));
    let tail = server.request("GET", &path, &[("Range", "bytes=-20")], b"");
    assert_eq!(tail.body, whole.body[len - 20..]);
    let stale = server.request(
        "GET",
        &path,
        &[("Range", "bytes=0-9"), ("If-Range", "\"other\"")],
        b"",
    );
    assert_eq!((stale.status, stale.body.len()), (200, len));
    let past = server.request("GET", &path, &[("Range", &format!("bytes={len}-"))], b"");
    past.assert_error(416, "range_not_satisfiable");
    let head = server.request("HEAD", &path, &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(len.to_string().as_str())
    );
}

#[test]
fn a_changed_source_gets_a_new_file_and_its_old_ones_go() {
    let (server, _) = gallery("fit-invalidate", SettingsLayer::default());
    let url = fitted_url("/gallery/photo.jpg", 400, 400);
    let before = redirect(&server, &url);
    let old_file = server.path(&format!(
        ".gigatile/imgcache/{}",
        local_path(&server, &before)
            .strip_prefix("/imgcache/")
            .unwrap()
    ));
    assert!(old_file.is_file());
    std::thread::sleep(Duration::from_millis(50));
    let other = gigatile::codec::jpeg::encode(&photo(800, 800, PixelLayout::Gray), 90).unwrap();
    std::fs::write(server.path("gallery/photo.jpg"), other).unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let r = server.get(&url);
        if r.status == 302 && r.header("location") != Some(before.as_str()) {
            break r.header("location").unwrap().to_owned();
        }
        assert!(Instant::now() < until, "the changed source was never seen");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        size_in_name(&after),
        (400, 400),
        "the new picture is square"
    );
    assert!(!old_file.exists(), "the old version is dropped");
    assert_eq!(server.get(&local_path(&server, &after)).status, 200);
}

/// The cache folder's fitted files of `gallery/photo.jpg`, by width.
fn cached_widths(server: &TestServer) -> Vec<u32> {
    let dir = server.path(".gigatile/imgcache/gallery/photo.jpg");
    let mut widths: Vec<u32> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .map(|n| n.split('x').next().unwrap().parse().unwrap())
        .collect();
    widths.sort_unstable();
    widths
}

fn cache_limits(max_bytes: u64, min_lifetime: u64) -> SettingsLayer {
    SettingsLayer {
        imgserv_cache_max_bytes: Some(ByteSize(max_bytes)),
        imgserv_cache_min_lifetime: Some(min_lifetime),
        ..SettingsLayer::default()
    }
}

/// Sizes of the files of widths 100, 200, 300 and 400 (made in a throwaway server).
fn file_sizes() -> [u64; 4] {
    let (server, _) = gallery("fit-sizes", SettingsLayer::default());
    [100, 200, 300, 400].map(|w| {
        let target = redirect(&server, &fitted_url("/gallery/photo.jpg", w, 1000));
        server.get(&local_path(&server, &target)).body.len() as u64
    })
}

#[test]
fn eviction_goes_to_two_thirds_in_last_use_order() {
    let size = file_sizes();
    let of = |w: u32| size[(w / 100 - 1) as usize];
    // Room for the first three files, not the fourth.
    let limit = of(300) + of(400) + of(200) + of(100) / 2;
    let (server, _) = gallery("fit-evict", cache_limits(limit, 0));
    let get = |w: u32| {
        redirect(&server, &fitted_url("/gallery/photo.jpg", w, 1000));
        std::thread::sleep(Duration::from_millis(20));
    };
    for w in [300, 400, 200, 300] {
        get(w);
    }
    get(100);
    // Last uses, oldest first: 400, 200, 300; the new 100 stays whatever happens.
    let mut expected = vec![100, 200, 300, 400];
    let mut used: u64 = expected.iter().map(|&w| of(w)).sum();
    for victim in [400, 200, 300] {
        if used <= limit * 2 / 3 {
            break;
        }
        expected.retain(|&w| w != victim);
        used -= of(victim);
    }
    assert!(
        !expected.contains(&400),
        "the least recently used goes: {expected:?}"
    );
    assert_eq!(
        cached_widths(&server),
        expected,
        "sizes {size:?}, limit {limit}"
    );
}

#[test]
fn files_handed_out_within_the_minimum_lifetime_are_kept() {
    let size = file_sizes();
    let limit = size[..3].iter().sum::<u64>() + size[3] / 2;
    let (server, _) = gallery("fit-lifetime", cache_limits(limit, 3600));
    for w in [100, 200, 300, 400] {
        redirect(&server, &fitted_url("/gallery/photo.jpg", w, 1000));
    }
    assert_eq!(
        cached_widths(&server),
        [100, 200, 300, 400],
        "every file was handed out within the minimum lifetime"
    );
}

#[test]
fn concurrent_requests_for_one_size_make_one_file() {
    let (server, _) = gallery("fit-concurrent", SettingsLayer::default());
    let url = fitted_url("/gallery/photo.jpg", 640, 480);
    let targets: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| s.spawn(|| redirect(&server, &url)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(targets.iter().all(|t| t == &targets[0]));
    assert_eq!(server.metric("gigatile_imgserv_renders_total"), 1.0);
    assert_eq!(cached_widths(&server), [600]);
}

#[test]
fn bad_queries_and_paths_outside_the_data_root_are_refused() {
    let (server, _) = gallery("fit-bad", SettingsLayer::default());
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc/hostname", server.path("outside.jpg")).unwrap();
    for url in [
        "/imgserv.cgi",
        "/imgserv.cgi?src=/gallery/photo.jpg&width=0&height=10",
        "/imgserv.cgi?src=/gallery/photo.jpg&width=-5&height=10",
        "/imgserv.cgi?src=/gallery/photo.jpg&width=1.5&height=10",
        "/imgserv.cgi?src=/gallery/photo.jpg&width=10",
        "/imgserv.cgi?src=/gallery/photo.jpg&width=10&height=10&width=20",
        "/imgserv.cgi?src=/gallery/photo.jpg&width=10&height=10&colour=red",
        "/imgserv.cgi?src=/gallery/photo.jpg&width=10&height=10&format=gif",
        "/imgserv.cgi?src=gallery/photo.jpg&width=10&height=10",
        "/imgserv.cgi?src=/../gallery/photo.jpg&width=10&height=10",
        "/imgserv.cgi?src=/gallery/../../etc/passwd&width=10&height=10",
        "/imgserv.cgi?src=/%252e%252e/etc/passwd&width=10&height=10",
        "/imgserv?src=/gallery/./photo.jpg&width=10&height=10",
    ] {
        server.get(url).assert_error(400, "bad_request");
    }
    for url in [
        "/imgserv.cgi?src=/etc/passwd&width=10&height=10",
        "/imgserv.cgi?src=/outside.jpg&width=10&height=10",
        "/imgserv.cgi?src=/gallery/missing.jpg&width=10&height=10",
        "/imgcache/gallery/photo.jpg/.info.json",
        "/imgcache/..%2F..%2Fgallery/photo.jpg",
        "/imgcache/gallery/photo.jpg",
        "/imgcache/gallery/photo.jpg/nothing-here.jpg",
    ] {
        server.get(url).assert_error(404, "not_found");
    }
    // `/imgserv` is the same as `/imgserv.cgi`, and `src` is form-decoded.
    assert_eq!(
        redirect(
            &server,
            "/imgserv?src=%2Fgallery%2Fphoto.jpg&width=100&height=100"
        ),
        redirect(&server, &fitted_url("/gallery/photo.jpg", 100, 100))
    );
}

#[test]
fn redirects_name_the_public_base_url() {
    let (server, _) = gallery(
        "fit-base",
        SettingsLayer {
            public_base_url: Some("https://img.example.org/pics/".into()),
            ..SettingsLayer::default()
        },
    );
    let target = redirect(&server, &fitted_url("/gallery/photo.jpg", 100, 100));
    assert!(
        target.starts_with("https://img.example.org/pics/imgcache/gallery/photo.jpg/100x60-r50-"),
        "{target}"
    );
    let (proxied, _) = gallery(
        "fit-proxy",
        SettingsLayer {
            trust_proxy: Some(true),
            ..SettingsLayer::default()
        },
    );
    let r = proxied.request(
        "GET",
        &fitted_url("/gallery/photo.jpg", 100, 100),
        &[
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "cdn.example.org"),
        ],
        b"",
    );
    assert!(r
        .header("location")
        .unwrap()
        .starts_with("https://cdn.example.org/imgcache/"));
}

#[test]
fn mirrors_holding_a_file_get_the_redirect_by_bandwidth() {
    let dir = TempDir::new("fit-mirrors-config");
    let mirror = |name: &str, bandwidth: u64| MirrorConfig {
        name: name.into(),
        base_url: format!("https://{name}.example.org/imgcache"),
        bandwidth,
        manifest: dir.path(&format!("{name}.txt")),
    };
    let (server, _) = gallery(
        "fit-mirrors",
        SettingsLayer {
            mirrors: Some(vec![mirror("slow", 10), mirror("fast", 1000)]),
            ..SettingsLayer::default()
        },
    );
    let url = fitted_url("/gallery/photo.jpg", 200, 200);
    let local = redirect(&server, &url);
    let name = local_path(&server, &local)
        .strip_prefix("/imgcache/")
        .unwrap()
        .to_owned();
    std::fs::write(dir.path("slow.txt"), format!("{name}\n")).unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while redirect(&server, &url) == local {
        assert!(
            Instant::now() < until,
            "the slow mirror's manifest never loaded"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        redirect(&server, &url),
        format!("https://slow.example.org/imgcache/{name}")
    );
    // Both hold it now: the faster one wins, every time.
    std::fs::write(dir.path("fast.txt"), format!("other/file.jpg\n{name}\n")).unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while !redirect(&server, &url).starts_with("https://fast.") {
        assert!(
            Instant::now() < until,
            "the fast mirror's manifest never loaded"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for _ in 0..5 {
        assert_eq!(
            redirect(&server, &url),
            format!("https://fast.example.org/imgcache/{name}")
        );
    }
    // A box of another width is on no mirror: served locally.
    assert!(
        redirect(&server, &fitted_url("/gallery/photo.jpg", 300, 300))
            .starts_with(&format!("http://{}/imgcache/", server.addr))
    );
}

fn gigatile(args: &[&str], config: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_gigatile"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gigatile {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn precache_fills_a_mirror_folder_and_its_manifest_or_the_cache() {
    let dir = TempDir::new("fit-precache-config");
    let config = dir.path("gigatile.toml");
    let out = dir.path("for-eu");
    let server = TestServer::start("fit-precache", SettingsLayer::default(), |data| {
        std::fs::create_dir_all(data.path("gallery")).unwrap();
        let jpeg = gigatile::codec::jpeg::encode(&photo(1000, 600, PixelLayout::Rgb), 90).unwrap();
        std::fs::write(data.path("gallery/photo.jpg"), jpeg).unwrap();
        write_png(&photo(400, 300, PixelLayout::Rgba), &data.path("clear.png"));
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\n[[mirrors]]\nname = \"eu\"\n\
                 base_url = \"https://eu.example.org/c\"\nbandwidth = 100\n\
                 manifest = \"eu-manifest.txt\"\n",
                data.0.display().to_string()
            ),
        )
        .unwrap();
        // Into a mirror's folder, adding to its manifest (beside the configuration file).
        let out = out.to_str().unwrap();
        let sizes = "200x200,800x600";
        gigatile(
            &["precache", "--sizes", sizes, "--mirror", "eu", "--out", out],
            &config,
        );
        // Into the cache, for one image, before the server starts.
        gigatile(
            &["precache", "--sizes", "500x500", "/gallery/photo.jpg"],
            &config,
        );
    });

    let manifest = std::fs::read_to_string(dir.path("eu-manifest.txt")).unwrap();
    let names: Vec<&str> = manifest.lines().collect();
    assert_eq!(names.len(), 4, "two sizes of two images: {names:?}");
    let source_mtime = std::fs::metadata(server.path("gallery/photo.jpg"))
        .unwrap()
        .modified()
        .unwrap();
    for name in &names {
        let file = out.join(name);
        assert!(file.is_file(), "{name}");
        if name.starts_with("gallery/photo.jpg/") {
            let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
            assert_eq!(mtime, source_mtime, "{name}");
        }
    }
    assert!(names
        .iter()
        .any(|n| n.starts_with("gallery/photo.jpg/800x480-r50-")));
    assert!(names
        .iter()
        .any(|n| n.starts_with("clear.png/200x150-r50-") && n.ends_with(".png")));
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("clear.png/400x300-r50-")),
        "never upscaled"
    );

    // The server finds the precached file: a redirect with no render.
    server.wait_ready("gallery/photo.jpg", 30);
    let target = redirect(&server, &fitted_url("/gallery/photo.jpg", 500, 500));
    assert_eq!(server.metric("gigatile_imgserv_renders_total"), 0.0);
    assert_eq!(server.get(&local_path(&server, &target)).status, 200);
}
