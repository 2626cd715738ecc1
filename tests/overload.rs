//! Overload and the memory budget, with the real binary as a user runs it: a small
//! `MEMORY_LIMIT`, sources that must be decoded whole and TIFF tiles of 12 MiB each, and far
//! more concurrent cold renders than render threads. Every answer is a 200 or a 503 with
//! Retry-After, `/healthz` keeps answering, the peak RSS stays within the budget plus the
//! documented constant (README, "Memory budget"), and tiles are served again once the load
//! drops. Latencies are printed, not asserted (bench/overload.sh measures them).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::ServerProcess;
use common::server::{request_at, Response};
use common::{photo, run, write_png, TempDir};
use gigatile::raster::PixelLayout;

/// The budget under test.
const MEMORY_LIMIT_MIB: u64 = 192;
/// What the README documents above `MEMORY_LIMIT`: the binary, the runtime and thread stacks,
/// allocations under 1 MiB, the catalogue and connections.
const OVERHEAD_MIB: u64 = 128;

/// The server under test: a real process with only `env` set.
fn start(data: &TempDir, logs: &TempDir, env: &[(&str, &str)]) -> ServerProcess {
    let mut env = env.to_vec();
    env.push(("LOG_LEVEL", "warn"));
    ServerProcess::start(&data.0, &logs.path("server.log"), &env)
}

impl ServerProcess {
    fn get(&self, path: &str) -> Response {
        request_at(self.addr, "GET", path, &[], b"")
    }

    fn wait_ready(&self, id: &str) {
        let until = Instant::now() + Duration::from_secs(240);
        loop {
            let meta = self.get(&format!("/api/images/{id}/meta"));
            if meta.status == 200 && meta.json()["status"] == "ready" {
                return;
            }
            assert!(Instant::now() < until, "{id}: {}", meta.text());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The images: a tiled TIFF whose 2048² tiles decode to 12 MiB each, and sources that
/// cannot be streamed (a progressive JPEG, an interlaced PNG, a WebP), made by libvips from a
/// photo-like picture.
fn fill(data: &TempDir) {
    let picture = data.path("picture.png");
    write_png(&photo(6000, 4500, PixelLayout::Rgb), &picture);
    let p = picture.to_str().unwrap();
    let out = |name: &str| data.path(name).to_str().unwrap().to_string();
    run(
        "vips",
        &[
            "tiffsave",
            p,
            &out("big-tiles.tif"),
            "--tile",
            "--tile-width",
            "2048",
            "--tile-height",
            "2048",
            "--compression",
            "deflate",
        ],
    );
    run("vips", &["jpegsave", p, &out("baseline.jpg")]);
    run(
        "vips",
        &["jpegsave", p, &out("progressive.jpg"), "--interlace"],
    );
    run(
        "vips",
        &["pngsave", p, &out("interlaced.png"), "--interlace"],
    );
    run("vips", &["webpsave", p, &out("picture.webp")]);
    std::fs::remove_file(&picture).unwrap();
}

/// Cold renders of distinct IIIF regions and sizes, fitted images and tiles across levels: far
/// more than the render pool holds at once.
fn urls() -> Vec<String> {
    let mut urls = Vec::new();
    for id in [
        "big-tiles.tif",
        "progressive.jpg",
        "interlaced.png",
        "picture.webp",
    ] {
        for i in 0..24u32 {
            let (x, y) = ((i * 241) % 3000, (i * 173) % 2500);
            urls.push(format!("/iiif/3/{id}/{x},{y},3000,2000/max/0/default.jpg"));
            urls.push(format!(
                "/iiif/3/{id}/full/{},/0/default.png",
                1024 + i * 64
            ));
            urls.push(format!(
                "/imgserv.cgi?src=/{id}&width={}&height=3000",
                1500 + i * 60
            ));
            urls.push(format!(
                "/api/images/{id}/tiles/5/{}/{}.jpg",
                i % 24,
                i % 18
            ));
        }
    }
    urls
}

#[test]
fn overload_within_the_memory_budget() {
    let (data, logs) = (TempDir::new("overload"), TempDir::new("overload-logs"));
    fill(&data);
    let limit = format!("{MEMORY_LIMIT_MIB}M");
    let server = start(
        &data,
        &logs,
        &[
            ("MEMORY_LIMIT", &limit),
            ("RENDER_THREADS", "2"),
            ("RENDER_QUEUE", "4"),
            ("PYRAMID_BUILDS", "2"),
            ("WARMUP_LEVELS", "0"),
            ("RENDER_DEADLINE_MS", "5000"),
        ],
    );
    for id in [
        "big-tiles.tif",
        "progressive.jpg",
        "interlaced.png",
        "picture.webp",
    ] {
        server.wait_ready(id);
    }
    let metrics = server.get("/metrics").text();
    assert!(
        metrics.contains(&format!(
            "gigatile_memory_limit_bytes {}",
            MEMORY_LIMIT_MIB << 20
        )),
        "{metrics}"
    );

    // Sixty clients against two threads and a queue of four: ten times the capacity.
    let urls = Arc::new(urls());
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let counts: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
    let addr = server.addr;
    let clients: Vec<_> = (0..60)
        .map(|_| {
            let (urls, next, counts) = (Arc::clone(&urls), Arc::clone(&next), Arc::clone(&counts));
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(url) = urls.get(i) else { return };
                let r = request_at(addr, "GET", url, &[], b"");
                match r.status {
                    200 | 302 => counts[0].fetch_add(1, Ordering::Relaxed),
                    503 => {
                        assert!(r.header("retry-after").is_some(), "{url}: no Retry-After");
                        assert_eq!(r.json()["code"], "overloaded", "{url}: {}", r.text());
                        counts[1].fetch_add(1, Ordering::Relaxed)
                    }
                    other => panic!("{url}: {other} {}", r.text()),
                };
            })
        })
        .collect();
    let prober = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut slowest = Duration::ZERO;
            let mut probes = 0;
            while !done.load(Ordering::Relaxed) {
                let started = Instant::now();
                let r = request_at(addr, "GET", "/healthz", &[], b"");
                assert_eq!(r.status, 200, "healthz under load: {}", r.text());
                slowest = slowest.max(started.elapsed());
                probes += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            (probes, slowest)
        })
    };
    for client in clients {
        client.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let (probes, slowest) = prober.join().unwrap();

    let peak_mib = server.status_kib("VmHWM:") >> 10;
    let (served, refused) = (
        counts[0].load(Ordering::Relaxed),
        counts[1].load(Ordering::Relaxed),
    );
    println!(
        "overload: {served} served, {refused} refused (503), healthz slowest {:.0} ms over {probes} probes, \
         peak RSS {peak_mib} MiB with MEMORY_LIMIT={MEMORY_LIMIT_MIB}M",
        slowest.as_secs_f64() * 1000.0
    );
    assert!(served > 0, "nothing was served under load");
    assert!(
        peak_mib <= MEMORY_LIMIT_MIB + OVERHEAD_MIB,
        "peak RSS {peak_mib} MiB beyond {MEMORY_LIMIT_MIB} MiB + {OVERHEAD_MIB} MiB"
    );

    // Throughput returns as soon as the load drops: fresh cold renders are served again.
    for i in 0..8 {
        let url = format!(
            "/iiif/3/big-tiles.tif/{},0,512,512/256,/0/default.jpg",
            i * 512
        );
        let r = server.get(&url);
        assert_eq!(r.status, 200, "{url} after the load: {}", r.text());
    }
}

#[test]
fn work_that_can_never_fit_is_refused_with_a_reason() {
    let (data, logs) = (
        TempDir::new("budget-refusal"),
        TempDir::new("budget-refusal-logs"),
    );
    fill(&data);
    // 64 MiB, 16 of them for the cache, leaves 48 for work: neither a 4096² render, nor the
    // 6000×4500 progressive JPEG's coefficients (about 80 MiB), nor a band of 2048² TIFF tiles
    // beside the build's own buffers can ever fit.
    let server = start(
        &data,
        &logs,
        &[
            ("MEMORY_LIMIT", "64M"),
            ("WARMUP_LEVELS", "0"),
            ("MAX_DECODE_BYTES", "1G"),
        ],
    );
    server.wait_ready("baseline.jpg");
    let r = server.get("/iiif/3/baseline.jpg/full/max/0/default.jpg");
    r.assert_error(413, "too_large");
    assert!(r.text().contains("MEMORY_LIMIT"), "{}", r.text());
    for id in ["progressive.jpg", "big-tiles.tif"] {
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            let list = server.get("/api/images").json();
            let entry = list
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["id"] == id)
                .unwrap()
                .clone();
            if entry["status"] == "failed" {
                let reason = entry["reason"].as_str().unwrap();
                assert!(reason.contains("MEMORY_LIMIT"), "{entry}");
                break;
            }
            assert!(Instant::now() < until, "{entry}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(server.get("/healthz").status, 200);
}
