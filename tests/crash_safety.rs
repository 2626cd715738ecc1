//! Crash safety, with real processes: `gigatile serve` is killed with SIGKILL at seeded random
//! moments during pyramid builds, uploads, tile cache writes and evictions (small budgets for
//! the tile cache, the pyramids and the fitted images), and restarted on the same data folder,
//! round after round. After every restart: the server becomes ready; no temporary file of a dead
//! process is left anywhere under DATA_DIR, nor any upload cut off mid-body; every upload
//! answered 201 is listed under its name and serves tiles; every pyramid under a final name
//! opens whole; a pyramid killed mid-build is rebuilt; every tile and fitted image served,
//! before the kill or from the caches after it, decodes whole at its size.
//!
//! Kills are placed by progress (rows built, bytes of a body sent) or after a seeded delay;
//! nothing is asserted on timing. Windows too narrow for a kill to hit by chance (a sidecar or
//! marker being written, a preview not yet removed beside its pyramid) are also planted after
//! each kill as the dead process would have left them. `GIGATILE_CRASH_SEED` (decimal or
//! 0x-hex) replays a run's choices; `GIGATILE_CRASH_ROUNDS` sets its length.

mod common;

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::process::ServerProcess;
use common::server::{encode, multipart, Response};
use common::{photo, TempDir};
use gigatile::config::{Settings, SettingsLayer};
use gigatile::geometry::{Geometry, Level, TILE_SIZE};
use gigatile::limits::Limits;
use gigatile::pyramid::from_tiff::tiff_levels;
use gigatile::pyramid::store::{PyramidStore, SourceVersion};
use gigatile::raster::{PixelLayout, Raster};
use gigatile::source::tiff::TiffFile;
use gigatile::storage::LocalFile;

const DEFAULT_ROUNDS: usize = 30;
/// The non-pyramidal source rebuilt in build rounds: wider than 4096, so a preview pyramid is
/// built first, and large enough that a build takes a good fraction of a second.
const BIG: &str = "big.jpg";
const BIG_SIZE: (u32, u32) = (4400, 1200);
/// Longest anything may take to become true before the test fails.
const PATIENCE: Duration = Duration::from_secs(90);

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged_and_serves_nothing_torn() {
    let seed = std::env::var("GIGATILE_CRASH_SEED")
        .ok()
        .map(|s| parse_seed(&s))
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let rounds = std::env::var("GIGATILE_CRASH_ROUNDS")
        .ok()
        .map_or(DEFAULT_ROUNDS, |r| {
            r.parse().expect("GIGATILE_CRASH_ROUNDS")
        });
    eprintln!("crash safety: seed {seed:#x} (GIGATILE_CRASH_SEED={seed:#x} replays it)");
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let data = TempDir::new("crash-data");
    let logs = TempDir::new("crash-logs");
    let big = photo(BIG_SIZE.0, BIG_SIZE.1, PixelLayout::Rgb);
    std::fs::write(
        data.path(BIG),
        gigatile::codec::jpeg::encode(&big, 90).unwrap(),
    )
    .unwrap();
    let payloads = Payloads::new();
    let mut ledger = Ledger::default();

    for round in 0..=rounds {
        let phase = PHASES[round % PHASES.len()];
        let last = round == rounds;
        if phase == Phase::Build && !last {
            set_mtime(&data.path(BIG), 1_700_000_000 + round as u64);
        }
        let mut server = start_server(&data.0, &logs.path(&format!("round-{round}.log")));
        ledger.check_restart(&server, &data.0, &mut rng, phase != Phase::Build || last);
        if last {
            break;
        }
        match phase {
            Phase::Build => build_round(&mut server, &mut rng),
            Phase::Upload => upload_round(&mut server, &mut rng, &payloads, &mut ledger, round),
            Phase::Cache | Phase::Evict => {
                traffic_round(&mut server, &mut rng, &mut ledger, phase == Phase::Evict)
            }
        }
        let kills = &mut ledger.kills[round % PHASES.len()];
        kills.0 += 1;
        kills.1 += usize::from(has_temps_of(&data.0, server.pid));
        plant_leftovers(&data.0, server.pid, &mut rng);
    }
    // Every other upload round is cut mid-body after one or two uploads answered 201.
    let cut_rounds = ledger.kills[1].0.div_ceil(2);
    assert!(ledger.cut_mid_body >= cut_rounds, "uploads cut mid-body");
    assert!(
        ledger.acknowledged.len() >= cut_rounds,
        "uploads acknowledged"
    );
    let kills: Vec<String> = PHASES
        .iter()
        .zip(ledger.kills)
        .map(|(phase, (kills, mid_write))| format!("{phase:?} {kills} ({mid_write})"))
        .collect();
    eprintln!(
        "crash safety: seed {seed:#x}, {rounds} rounds; kills (of which left a file \
         half-written): {}; {} uploads acknowledged, {} cut mid-body; {} tiles, {} fitted images \
         and {} pyramids checked whole; {:.0} s",
        kills.join(", "),
        ledger.acknowledged.len(),
        ledger.cut_mid_body,
        ledger.tiles_checked,
        ledger.fitted_checked,
        ledger.pyramids_checked,
        started.elapsed().as_secs_f64()
    );
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Build,
    Upload,
    Cache,
    Evict,
}

/// Every phase in turn, so that any seed kills in each.
const PHASES: [Phase; 4] = [Phase::Build, Phase::Upload, Phase::Cache, Phase::Evict];

/// Build round: the source's mtime was bumped, so its pyramid is being rebuilt; the kill comes
/// once the build has consumed a random fraction of the rows (0: during the preview). Preview
/// tiles served meanwhile must be whole.
fn build_round(server: &mut Server, rng: &mut Rng) {
    let target = rng.below(95) as f64 / 100.0;
    let addr = server.addr;
    let mut client_rng = rng.fork();
    let (reached, kill_now) = mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let until = Instant::now() + PATIENCE;
            while Instant::now() < until {
                let Ok(list) = get(addr, "/api/images") else {
                    return;
                };
                let Some(entry) = list.json().as_array().and_then(|l| find(l, BIG).cloned()) else {
                    return;
                };
                let progress = entry["progress"].as_f64().unwrap_or(0.0);
                if entry["status"] != "building" || progress >= target {
                    let _ = reached.send(());
                    return;
                }
                if let Ok(meta) = get(addr, &format!("/api/images/{BIG}/meta")) {
                    if let Some(z) = meta.json()["readyMaxZoom"].as_u64() {
                        let url = random_tile(&mut client_rng, BIG, &meta.json(), z as u32);
                        let _ = fetch_tile(addr, &url);
                    }
                }
            }
        });
        let _ = kill_now.recv_timeout(PATIENCE);
        server.kill_alive();
    });
}

/// Upload round: one to two uploads answered 201, then one more, cut off by the kill at a
/// random byte of its body (even upload rounds), or killed after a random delay, whatever the
/// server is doing with it then: receiving, validating, renaming, building (odd ones).
fn upload_round(
    server: &mut Server,
    rng: &mut Rng,
    payloads: &Payloads,
    ledger: &mut Ledger,
    round: usize,
) {
    let whole = 1 + rng.below(2) as usize;
    let mid_body = (round / PHASES.len()) % 2 == 0;
    let delay = Duration::from_millis(rng.below(1500));
    let addr = server.addr;
    let (cutting, kill_now) = mpsc::channel();
    let (killed, killed_rx) = mpsc::channel();
    let mut client_rng = rng.fork();
    let outcome = std::thread::scope(|scope| {
        let client = scope.spawn(move || {
            let mut outcome = UploadOutcome::default();
            for i in 0..=whole {
                let (name, bytes) = payloads.pick(&mut client_rng, round, i);
                let (content_type, body) = multipart(&name, bytes, &[("copyright_text", "crash")]);
                let pace = if i == whole && mid_body {
                    let at = 1 + client_rng.below(body.len() as u64 - 1) as usize;
                    Pace::CutAt {
                        at,
                        cutting: &cutting,
                        killed: &killed_rx,
                    }
                } else {
                    Pace::Chunked
                };
                let head = format!(
                    "POST /api/upload HTTP/1.1\r\nContent-Type: {content_type}\r\n\
                     Content-Length: {}\r\n",
                    body.len()
                );
                let (sent, response) = exchange(addr, &head, &body, pace);
                match response {
                    Ok(r) if r.status == 201 => {
                        let id = r.json()["id"].as_str().unwrap().to_owned();
                        outcome.acknowledged.push(Upload { id, name });
                    }
                    Ok(r) => panic!("upload answered {}: {}", r.status, r.text()),
                    Err(_) if sent => {
                        outcome.unanswered += 1;
                        break;
                    }
                    Err(_) => {
                        outcome.cut += 1;
                        break;
                    }
                }
            }
            outcome
        });
        if mid_body {
            let _ = kill_now.recv_timeout(PATIENCE);
        } else {
            std::thread::sleep(delay);
        }
        server.kill_alive();
        let _ = killed.send(());
        client.join().unwrap()
    });
    ledger.cut_mid_body += outcome.cut;
    ledger.unanswered = outcome.unanswered;
    ledger.acknowledged.extend(outcome.acknowledged);
}

#[derive(Default)]
struct UploadOutcome {
    acknowledged: Vec<Upload>,
    /// Bodies sent whole without an answer (the kill came while the server handled them).
    unanswered: usize,
    /// Bodies cut off by the kill.
    cut: usize,
}

/// Cache and evict rounds: distinct tiles in random formats (tile cache writes and evictions),
/// and in evict rounds fitted images of random sizes too (fitted-image writes and evictions),
/// until a kill at a random moment. Everything served must be whole; what was served is asked
/// again after the restart, from the caches.
fn traffic_round(server: &mut Server, rng: &mut Rng, ledger: &mut Ledger, fitted: bool) {
    let delay = Duration::from_millis(100 + rng.below(1500));
    let addr = server.addr;
    let images = ledger.images.clone();
    let mut client_rng = rng.fork();
    let (tiles, fits) = std::thread::scope(|scope| {
        let client = scope.spawn(move || {
            let (mut tiles, mut fits) = (Vec::new(), Vec::new());
            loop {
                let (id, meta) = &images[client_rng.below(images.len() as u64) as usize];
                let z = client_rng.below(meta["maxZoom"].as_u64().unwrap() + 1) as u32;
                let url = random_tile(&mut client_rng, id, meta, z);
                match fetch_tile(addr, &url) {
                    Ok(true) => tiles.push(url),
                    Ok(false) => {}
                    Err(_) => return (tiles, fits),
                }
                if fitted {
                    let (w, h) = (50 + client_rng.below(900), 50 + client_rng.below(900));
                    let format = ["jpg", "png", "webp"][client_rng.below(3) as usize];
                    let query =
                        format!("/imgserv.cgi?src=/{id}&width={w}&height={h}&format={format}");
                    match fetch_fitted(addr, &query) {
                        Ok(Some(url)) => fits.push(url),
                        Ok(None) => {}
                        Err(_) => return (tiles, fits),
                    }
                }
            }
        });
        std::thread::sleep(delay);
        server.kill_alive();
        client.join().unwrap()
    });
    ledger.tiles_checked += tiles.len();
    ledger.fitted_checked += fits.len();
    ledger.served_tiles = tiles;
    ledger.served_fitted = fits;
}

/// What the test knows across restarts.
#[derive(Default)]
struct Ledger {
    /// Every upload answered 201, ever.
    acknowledged: Vec<Upload>,
    /// Files in `uploads/` at the last check.
    upload_files: BTreeSet<String>,
    /// Upload bodies sent whole but not answered in the last round.
    unanswered: usize,
    /// Images and their meta at the last check (all ready).
    images: Vec<(String, serde_json::Value)>,
    /// Tile and fitted-image URLs served whole in the last round.
    served_tiles: Vec<String>,
    served_fitted: Vec<String>,
    /// Per phase: kills, and kills that left a temporary file (a write was under way).
    kills: [(usize, usize); 4],
    cut_mid_body: usize,
    tiles_checked: usize,
    fitted_checked: usize,
    pyramids_checked: usize,
}

#[derive(Debug, Clone)]
struct Upload {
    id: String,
    name: String,
}

impl Ledger {
    /// Everything a restart must give, on the server just started. `settle`: also wait until
    /// every image is ready and check what it serves (not in build rounds, whose kill must come
    /// mid-build).
    fn check_restart(&mut self, server: &Server, data: &Path, rng: &mut Rng, settle: bool) {
        server.wait_ready();
        assert_no_leftovers(data, server.pid);
        let list = server.json("/api/images");
        let list = list.as_array().unwrap();
        self.check_uploads(data, list);
        self.pyramids_checked += check_pyramids(&data.join(".gigatile/pyramids"));
        if !settle {
            return;
        }
        self.images = wait_all_ready(server)
            .into_iter()
            .map(|id| {
                let meta = server.json(&format!("/api/images/{}/meta", encode(&id)));
                (id, meta)
            })
            .collect();
        for (id, meta) in &self.images {
            let max = meta["maxZoom"].as_u64().unwrap() as u32;
            for z in [0, rng.below(u64::from(max) + 1) as u32] {
                let url = random_tile(rng, id, meta, z);
                server.tile_eventually(&url);
                self.tiles_checked += 1;
            }
        }
        for url in &self.served_tiles {
            server.tile_eventually(url);
        }
        for url in &self.served_fitted {
            // Gone is fine (evicted, or dropped with a record the kill cut short); torn is not.
            let _ = fetch_whole_fitted(server.addr, url).unwrap();
        }
        self.tiles_checked += self.served_tiles.len();
        self.fitted_checked += self.served_fitted.len();
        wait_no_stale_previews(data, &self.images);
    }

    /// Acknowledged uploads are there under their names; any other new file in `uploads/` is
    /// an upload whose body had arrived whole; every file there is listed and not failed.
    fn check_uploads(&mut self, data: &Path, list: &[serde_json::Value]) {
        let files: BTreeSet<String> = std::fs::read_dir(data.join("uploads"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| !name.starts_with('.'))
            .collect();
        for upload in &self.acknowledged {
            let entry = find(list, &upload.id)
                .unwrap_or_else(|| panic!("acknowledged upload {} lost", upload.id));
            assert_eq!(entry["original_filename"], upload.name, "{entry}");
            assert_eq!(entry["copyright_text"], "crash", "{entry}");
        }
        let acknowledged: BTreeSet<&str> =
            self.acknowledged.iter().map(|u| u.id.as_str()).collect();
        let unexplained = files
            .difference(&self.upload_files)
            .filter(|name| !acknowledged.contains(format!("uploads/{name}").as_str()))
            .count();
        assert!(
            unexplained <= self.unanswered,
            "{unexplained} new uploads never acknowledged, but only {} bodies arrived whole",
            self.unanswered
        );
        for name in &files {
            let id = format!("uploads/{name}");
            let entry = find(list, &id).unwrap_or_else(|| panic!("{id} is not listed"));
            assert_ne!(entry["status"], "failed", "{entry}");
        }
        self.upload_files = files;
        self.unanswered = 0;
    }
}

/// The two upload payloads: a JPEG and a PNG, small enough to build in a moment.
struct Payloads {
    jpeg: Vec<u8>,
    png: Vec<u8>,
}

impl Payloads {
    fn new() -> Payloads {
        let raster = photo(640, 480, PixelLayout::Rgb);
        Payloads {
            jpeg: gigatile::codec::jpeg::encode(&raster, 85).unwrap(),
            png: gigatile::codec::png::encode(&raster).unwrap(),
        }
    }

    fn pick(&self, rng: &mut Rng, round: usize, i: usize) -> (String, &[u8]) {
        if rng.below(2) == 0 {
            (format!("photo {round}-{i}.jpg"), &self.jpeg)
        } else {
            (format!("scan {round}-{i}.png"), &self.png)
        }
    }
}

/// The server under test, with this test's settings: a file tile cache and budgets small
/// enough that evictions run.
type Server = ServerProcess;

fn start_server(data: &Path, log: &Path) -> Server {
    ServerProcess::start(
        data,
        log,
        &[
            ("CACHE", "file"),
            ("CACHE_FILE_MAX_BYTES", "300K"),
            ("PYRAMID_MAX_BYTES", "1500K"),
            ("IMGSERV_CACHE_MAX_BYTES", "400K"),
            ("IMGSERV_CACHE_MIN_LIFETIME", "0"),
            ("WARMUP_LEVELS", "0"),
            ("RENDER_THREADS", "2"),
            ("LOG_LEVEL", "info"),
        ],
    )
}

impl ServerProcess {
    /// Polls `/readyz` until it answers 200.
    fn wait_ready(&self) {
        let until = Instant::now() + PATIENCE;
        while !get(self.addr, "/readyz").is_ok_and(|r| r.status == 200) {
            assert!(Instant::now() < until, "the server never became ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn json(&self, path: &str) -> serde_json::Value {
        let r = get(self.addr, path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json()
    }

    /// A tile served whole, waiting while it answers 503 (its pyramid being rebuilt).
    fn tile_eventually(&self, url: &str) {
        let until = Instant::now() + PATIENCE;
        while !fetch_tile(self.addr, url).unwrap_or_else(|e| panic!("{url}: {e}")) {
            assert!(Instant::now() < until, "{url} never served");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server, which must not have died by itself meanwhile.
    fn kill_alive(&mut self) {
        let exited = self.exited();
        assert!(
            exited.is_none(),
            "the server died before its kill: {exited:?}"
        );
        self.kill();
    }
}

/// Waits until every listed image is ready (none failed); returns their ids.
fn wait_all_ready(server: &Server) -> Vec<String> {
    let until = Instant::now() + PATIENCE;
    loop {
        let list = server.json("/api/images");
        let list = list.as_array().unwrap();
        for entry in list {
            assert_ne!(entry["status"], "failed", "{entry}");
        }
        if list.iter().all(|e| e["status"] == "ready") {
            return list
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned())
                .collect();
        }
        assert!(Instant::now() < until, "images never all ready: {list:?}");
        // Asking for an image queues its rebuild when an eviction reset it.
        for entry in list.iter().filter(|e| e["status"] != "ready") {
            let _ = get(
                server.addr,
                &tile_url(entry["id"].as_str().unwrap(), 0, 0, 0, "jpg"),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn find<'a>(list: &'a [serde_json::Value], id: &str) -> Option<&'a serde_json::Value> {
    list.iter().find(|e| e["id"] == id)
}

/// No temporary file of a process other than the running server anywhere under DATA_DIR (the
/// derived folders, the sidecars), and nothing else in `uploads/.incoming/` (uploads being
/// received); the only other dot-files allowed are fitted images' records.
fn assert_no_leftovers(data: &Path, live: u32) {
    let incoming = data.join("uploads/.incoming");
    for path in files_under(data) {
        let name = path.file_name().unwrap().to_str().unwrap();
        let temporary = name.starts_with('.') || path.starts_with(&incoming);
        if !temporary || name == ".info.json" {
            continue;
        }
        let owner = gigatile::atomic::temp_owner(name);
        assert_eq!(
            owner,
            Some(live),
            "left over after a restart: {}",
            path.display()
        );
    }
}

/// Whether process `pid` left temporaries under DATA_DIR (it was killed mid-write).
fn has_temps_of(data: &Path, pid: u32) -> bool {
    files_under(data).iter().any(|path| {
        let name = path.file_name().unwrap().to_str().unwrap();
        gigatile::atomic::temp_owner(name) == Some(pid)
    })
}

/// Every file under `dir`, recursively (files removed meanwhile are skipped).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => folders.push(entry.path()),
                Ok(_) => files.push(entry.path()),
                Err(_) => {}
            }
        }
    }
    files
}

/// Opens every pyramid under a final name: all its levels are there, and the last tile of each
/// decodes at its size. Returns how many were checked (one evicted meanwhile is skipped).
fn check_pyramids(dir: &Path) -> usize {
    let mut checked = 0;
    for path in files_under(dir) {
        let name = path.file_name().unwrap().to_str().unwrap();
        if name.starts_with('.') || !name.ends_with(".tif") {
            continue;
        }
        let Ok(bytes) = LocalFile::open_shared(&path) else {
            continue;
        };
        let what = path.display();
        let tiff = TiffFile::open(bytes, &Limits::default())
            .unwrap_or_else(|e| panic!("{what} is not a whole TIFF: {e}"));
        let (geometry, levels) = tiff_levels(&Arc::new(tiff)).expect("a tiled pyramid");
        assert_eq!(levels.len() as u32, geometry.level_count(), "{what}");
        for (k, level) in levels.iter().enumerate() {
            let (width, height) = level.size();
            assert_eq!(
                (width, height),
                geometry.level_size(Level(k as u32)),
                "{what}"
            );
            let (cols, rows) = (width.div_ceil(TILE_SIZE), height.div_ceil(TILE_SIZE));
            let tile = level
                .read_tile(cols - 1, rows - 1)
                .unwrap_or_else(|e| panic!("{what}, level {k}: {e}"));
            let edge = |size: u32, n: u32| size - (n - 1) * TILE_SIZE;
            assert_eq!(
                (tile.width, tile.height),
                (edge(width, cols), edge(height, rows))
            );
        }
        checked += 1;
    }
    checked
}

/// No current image has a preview beside its complete pyramid (a build killed between its
/// rename and the preview's removal leaves both; the next start removes the preview). A build
/// of the running server may show both for an instant, hence a poll.
fn wait_no_stale_previews(data: &Path, images: &[(String, serde_json::Value)]) {
    let store = store_of(data);
    let until = Instant::now() + PATIENCE;
    loop {
        let stale: Vec<PathBuf> = images
            .iter()
            .filter_map(|(id, _)| {
                let version = SourceVersion::of(&data.join(id)).ok()?;
                let preview = store.preview_path(id, version);
                (store.final_path(id, version).exists() && preview.exists()).then_some(preview)
            })
            .collect();
        if stale.is_empty() {
            return;
        }
        assert!(
            Instant::now() < until,
            "previews left beside their pyramids: {stale:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pyramid store as the server sees it: the same folder and names (the server's
/// environment sets nothing that changes them: quality, base storage).
fn store_of(data: &Path) -> PyramidStore {
    let settings = Settings::resolve(SettingsLayer {
        data_dir: Some(data.to_owned()),
        ..SettingsLayer::default()
    })
    .unwrap();
    PyramidStore::new(settings.pyramid_dir, settings.build, settings.limits)
}

/// Leaves what a kill at the narrowest moments leaves, as process `dead` would have: a
/// temporary in every folder that has writers (a sidecar, a marker or pyramid, a tile, a fitted
/// image or record, an upload arriving), and a preview beside an upload's complete pyramid. The
/// next start must clean all of it.
fn plant_leftovers(data: &Path, dead: u32, rng: &mut Rng) {
    let folders_of = |dir: &Path| -> Vec<PathBuf> {
        let mut folders: Vec<PathBuf> = files_under(dir)
            .iter()
            .filter_map(|f| f.parent().map(Path::to_owned))
            .collect();
        folders.dedup();
        folders
    };
    let mut folders = vec![
        data.join(".gigatile/meta"),
        data.join(".gigatile/pyramids"),
        data.join("uploads/.incoming"),
    ];
    for derived in [".gigatile/tiles", ".gigatile/imgcache"] {
        let found = folders_of(&data.join(derived));
        if !found.is_empty() {
            folders.push(found[rng.below(found.len() as u64) as usize].clone());
        }
    }
    for folder in folders {
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(format!(".planted.tmp-{dead}-0")), b"half").unwrap();
    }
    let store = store_of(data);
    let uploads: Vec<String> = std::fs::read_dir(data.join("uploads"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|name| !name.starts_with('.'))
        .collect();
    if uploads.is_empty() {
        return;
    }
    let id = format!(
        "uploads/{}",
        uploads[rng.below(uploads.len() as u64) as usize]
    );
    let version = SourceVersion::of(&data.join(&id)).unwrap();
    let built = store.final_path(&id, version);
    if built.exists() {
        std::fs::copy(built, store.preview_path(&id, version)).unwrap();
    }
}

/// A random tile of image `id` at zoom `z` in a random format.
fn random_tile(rng: &mut Rng, id: &str, meta: &serde_json::Value, z: u32) -> String {
    let size = |key: &str| meta[key].as_u64().unwrap() as u32;
    let geometry = Geometry::new(size("width"), size("height"));
    let k = size("maxZoom") - z;
    let (width, height) = geometry.level_size(Level(k));
    let x = rng.below(u64::from(width.div_ceil(TILE_SIZE))) as u32;
    let y = rng.below(u64::from(height.div_ceil(TILE_SIZE))) as u32;
    tile_url(id, z, x, y, ["jpg", "png", "webp"][rng.below(3) as usize])
}

fn tile_url(id: &str, z: u32, x: u32, y: u32, ext: &str) -> String {
    format!("/api/images/{}/tiles/{z}/{x}/{y}.{ext}", encode(id))
}

/// GETs a tile: `Ok(true)` when served (and then whole, 256×256), `Ok(false)` for a 503 (not
/// ready yet, or overloaded); `Err` when the server went away.
fn fetch_tile(addr: SocketAddr, url: &str) -> io::Result<bool> {
    let r = get(addr, url)?;
    match r.status {
        200 => {
            let tile = decode_whole(&r, url);
            assert_eq!((tile.width, tile.height), (TILE_SIZE, TILE_SIZE), "{url}");
            Ok(true)
        }
        503 => Ok(false),
        status => panic!("{url}: {status} {}", r.text()),
    }
}

/// Asks for a fitted image and fetches it: its `/imgcache/` path when it was served whole at
/// its size, `None` on a 503.
fn fetch_fitted(addr: SocketAddr, query: &str) -> io::Result<Option<String>> {
    let r = get(addr, query)?;
    if r.status == 503 {
        return Ok(None);
    }
    assert_eq!(r.status, 302, "{query}: {}", r.text());
    let location = r.header("location").expect("a Location");
    let path = &location[location.find("/imgcache/").expect("a local file")..];
    let served = fetch_whole_fitted(addr, path)?;
    assert!(served, "{path} redirected to but missing");
    Ok(Some(path.to_owned()))
}

/// GETs a fitted file: `Ok(true)` when it is whole at the size its name says, `Ok(false)` when
/// it is gone (404).
fn fetch_whole_fitted(addr: SocketAddr, path: &str) -> io::Result<bool> {
    let r = get(addr, path)?;
    if r.status == 404 {
        return Ok(false);
    }
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    let image = decode_whole(&r, path);
    let file = path.rsplit('/').next().unwrap();
    let (size, _) = file.split_once('-').unwrap();
    let (w, h) = size.split_once('x').unwrap();
    assert_eq!(
        (image.width, image.height),
        (w.parse().unwrap(), h.parse().unwrap()),
        "{path}"
    );
    Ok(true)
}

/// Decodes a served image whole, by its media type; a torn one fails the test.
fn decode_whole(r: &Response, what: &str) -> Raster {
    let decoded = match r.header("content-type") {
        Some("image/jpeg") => gigatile::codec::jpeg::decode(&r.body).map_err(|e| e.to_string()),
        Some("image/webp") => gigatile::codec::webp::decode(&r.body).map_err(|e| e.to_string()),
        Some("image/png") => std::panic::catch_unwind(|| common::decode_png(&r.body))
            .map_err(|_| "PNG decode failed".to_owned()),
        other => Err(format!("unexpected type {other:?}")),
    };
    decoded.unwrap_or_else(|e| panic!("{what} was served torn: {e}"))
}

/// Sets a file's mtime (a new source version, so its pyramid is built again).
fn set_mtime(path: &Path, secs: u64) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

fn get(addr: SocketAddr, path: &str) -> io::Result<Response> {
    exchange(addr, &format!("GET {path} HTTP/1.1\r\n"), &[], Pace::Whole).1
}

/// How a request's body is sent.
enum Pace<'a> {
    /// In one write.
    Whole,
    /// In 16 KiB chunks 2 ms apart, so that a kill can land mid-body.
    Chunked,
    /// Chunked up to byte `at`; then `cutting` is told, and the request is given up once
    /// `killed` confirms the server is dead.
    CutAt {
        at: usize,
        cutting: &'a mpsc::Sender<()>,
        killed: &'a mpsc::Receiver<()>,
    },
}

/// The chunk size of a paced body.
const CHUNK: usize = 16 << 10;

/// One request on a fresh connection (`Connection: close`): `head` is the request line and
/// headers without the blank line. Returns whether the body was sent whole, and the response
/// if it arrived whole (by Content-Length).
fn exchange(addr: SocketAddr, head: &str, body: &[u8], pace: Pace) -> (bool, io::Result<Response>) {
    let mut sent = false;
    let response = (|| {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(PATIENCE))?;
        stream.write_all(format!("{head}Host: {addr}\r\nConnection: close\r\n\r\n").as_bytes())?;
        let end = match pace {
            Pace::Whole => 0,
            Pace::Chunked => body.len(),
            Pace::CutAt { at, .. } => at,
        };
        for chunk in body[..end].chunks(CHUNK) {
            stream.write_all(chunk)?;
            std::thread::sleep(Duration::from_millis(2));
        }
        match pace {
            Pace::Whole => stream.write_all(body)?,
            Pace::Chunked => {}
            Pace::CutAt {
                cutting, killed, ..
            } => {
                let _ = cutting.send(());
                let _ = killed.recv();
                return Err(io::Error::new(io::ErrorKind::Interrupted, "cut mid-body"));
            }
        }
        sent = true;
        let mut raw = Vec::new();
        // A kill may reset the connection after the whole answer arrived: judge what came.
        let _ = stream.read_to_end(&mut raw);
        parse_response(&raw)
    })();
    (sent, response)
}

/// A whole HTTP response, or an error when it was cut off.
fn parse_response(raw: &[u8]) -> io::Result<Response> {
    let cut = || io::Error::new(io::ErrorKind::UnexpectedEof, "the response was cut off");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(cut)?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = raw[split + 4..].to_vec();
    let length = headers.iter().find(|(k, _)| k == "content-length");
    let whole = length.map_or(body.is_empty(), |(_, v)| v.parse() == Ok(body.len()));
    if !whole {
        return Err(cut());
    }
    Ok(Response {
        status: status.ok_or_else(cut)?,
        headers,
        body,
    })
}

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform enough in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An independent generator for a client thread.
    fn fork(&mut self) -> Rng {
        Rng::new(self.next())
    }
}

fn parse_seed(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .expect("GIGATILE_CRASH_SEED is a number")
}
