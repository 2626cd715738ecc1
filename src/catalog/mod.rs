//! catalog: which images exist in DATA_DIR, their status, metadata and pyramids.
//!
//! The HTTP layer calls [`Catalog`]; nothing here knows HTTP. Submodules:
//! - `scan`: the walk of DATA_DIR, id rules, recognition by content;
//! - `watch`: the notify watcher and the periodic rescan (one thread);
//! - `builds`: the bounded build queue and its workers;
//! - `sidecar`: per-image metadata files;
//! - `evict`: derived files, purge and the `PYRAMID_MAX_BYTES` budget;
//! - `uploads`: images added and deleted through the API.
//!
//! Choices, documented:
//! - A new or changed file found after start is registered only once its size and mtime are
//!   unchanged across two looks at least one second apart (a copy in progress is not built);
//!   the watch thread looks every second while such a file exists. The first scan, in
//!   [`Catalog::start`], takes files as they are. Uploads are registered at once.
//! - A supported image that cannot be served (corrupt header, over the limits) is listed as
//!   `Failed` with a reason safe for clients; a file that is not a supported image, or cannot
//!   be read, is not listed (logged once per version).
//! - `changes()` bumps on add, remove, status and `ready_level` changes, not on progress.
//! - A pyramid is "in use", so never evicted, while it is being built or for [`IN_USE_GRACE`]
//!   after its last `pyramid()` call. An evicted image goes back to `Building { 0 }` with no
//!   `ready_level`, and is rebuilt on its next `pyramid()` call (not at once: with a budget
//!   smaller than all pyramids, eager rebuilds would evict each other forever).
//! - Each listed image whose pyramid is open keeps its file open (one descriptor per image).

mod builds;
mod evict;
mod scan;
mod sidecar;
mod uploads;
mod watch;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::atomic::remove_stale_temps;
use crate::error::{Error, Result};
use crate::geometry::Level;
use crate::limits::Limits;
use crate::pyramid::build::BuildOptions;
use crate::pyramid::levels::Pyramid;
use crate::pyramid::store::{Prepared, PyramidStore, SourceVersion};
use crate::source::SourceFormat;

use builds::{BuildQueue, BuildSlot, Job};
use scan::{Found, Probe, ScanRules, UPLOADS};
use watch::Wake;

pub use evict::purge_dir;

/// How long after its last use a pyramid counts as in use (never evicted).
pub const IN_USE_GRACE: Duration = Duration::from_secs(3);

/// Where the catalogue looks, where derived data goes, and how builds run.
#[derive(Debug, Clone)]
pub struct CatalogConfig {
    pub data_dir: PathBuf,
    /// Derived pyramids (the caller decides; usually `DATA_DIR/.gigatile/pyramids`).
    pub pyramid_dir: PathBuf,
    /// Budget of the pyramid folder in bytes; 0 = unlimited.
    pub pyramid_max_bytes: u64,
    pub build: BuildOptions,
    pub limits: Limits,
    /// Builds running at once (at least 1); `build.threads` is divided among them.
    pub max_concurrent_builds: usize,
    /// Fallback poll for changes the watcher misses.
    pub rescan_interval: Duration,
    /// More folders of derived data never scanned for images (the tile file cache, fitted
    /// images), wherever they are configured.
    pub derived_dirs: Vec<PathBuf>,
}

impl CatalogConfig {
    /// The defaults for a data folder: pyramids in `DATA_DIR/.gigatile/pyramids`, no budget,
    /// one build at a time, a rescan every 30 s.
    pub fn new(data_dir: impl Into<PathBuf>) -> CatalogConfig {
        let data_dir = data_dir.into();
        CatalogConfig {
            pyramid_dir: data_dir.join(".gigatile").join("pyramids"),
            data_dir,
            pyramid_max_bytes: 0,
            build: BuildOptions::default(),
            limits: Limits::default(),
            max_concurrent_builds: 1,
            rescan_interval: Duration::from_secs(30),
            derived_dirs: Vec::new(),
        }
    }
}

/// Whether an image can be served.
#[derive(Clone, Debug, PartialEq)]
pub enum ImageStatus {
    Ready,
    /// Waiting for or running its pyramid build; `progress` from 0 to 1.
    Building {
        progress: f64,
    },
    /// Cannot be served; `reason` is safe to show clients (no server paths).
    Failed {
        reason: String,
    },
}

/// An image's metadata, kept in a sidecar apart from the source.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageMeta {
    pub original_filename: String,
    pub copyright_text: Option<String>,
    pub copyright_link: Option<String>,
}

/// One listed image.
#[derive(Clone, Debug)]
pub struct ImageEntry {
    /// Path relative to DATA_DIR with `/` separators, e.g. `hubble/heic1502a.tif`.
    pub id: String,
    /// Absolute (the target of a symlink); never sent to clients.
    pub path: PathBuf,
    /// Display size; 0×0 when the header could not be read (`Failed`).
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    pub format: SourceFormat,
    pub version: SourceVersion,
    pub modified: SystemTime,
    pub status: ImageStatus,
    /// Finest canonical level servable now; `Level(0)` when `Ready`, `None` when nothing is.
    pub ready_level: Option<Level>,
    /// `original_filename` defaults to the file name.
    pub meta: ImageMeta,
    /// Stored under `DATA_DIR/uploads/` (only these can be deleted).
    pub uploaded: bool,
}

/// Why `delete` refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error("no such image")]
    NotFound,
    /// The image was not uploaded through the API (HTTP 403).
    #[error("only images uploaded through the API can be deleted")]
    NotUploaded,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// The catalogue: cheap to clone, shared by every request. Call [`Catalog::shutdown`] to stop
/// its threads (they hold it alive).
#[derive(Clone)]
pub struct Catalog {
    inner: Arc<Inner>,
}

/// What the catalogue knows of one image.
struct Record {
    entry: ImageEntry,
    /// What can be served now, opened once.
    pyramid: Option<Pyramid>,
    /// Served from a built pyramid (not the source itself, not failed).
    derived: bool,
    build: Option<BuildSlot>,
    queued: bool,
    last_used: Instant,
}

impl Record {
    /// The entry as clients see it now (live build progress).
    fn snapshot(&self) -> ImageEntry {
        let mut entry = self.entry.clone();
        if let (ImageStatus::Building { progress }, Some(slot)) = (&mut entry.status, &self.build) {
            *progress = slot.progress.fraction();
        }
        entry
    }

    fn cancel_build(&mut self) {
        if let Some(slot) = self.build.take() {
            slot.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Back to "nothing servable yet, a build is needed".
    fn reset(&mut self) {
        self.cancel_build();
        self.pyramid = None;
        self.entry.ready_level = None;
        self.entry.status = ImageStatus::Building { progress: 0.0 };
        self.queued = false;
    }

    fn owns(&self, slot: &BuildSlot) -> bool {
        self.build
            .as_ref()
            .is_some_and(|b| Arc::ptr_eq(&b.cancel, &slot.cancel))
    }
}

/// What only scans (and uploads and deletes, which must not race them) touch.
#[derive(Default)]
struct ScanMemory {
    /// Paths already logged as skipped.
    reported: HashSet<PathBuf>,
    /// Files that are not images, at the version judged.
    ignored: HashMap<PathBuf, SourceVersion>,
    /// New or changed files waiting to be stable: version and when first seen so.
    pending: HashMap<String, (SourceVersion, Instant)>,
}

impl ScanMemory {
    /// Whether a file has kept its version for [`watch::STABLE_AFTER`]; starts the clock.
    fn settled(&mut self, found: &Found) -> bool {
        match self.pending.get(&found.id) {
            Some(&(version, since)) if version == found.version => {
                since.elapsed() >= watch::STABLE_AFTER
            }
            _ => {
                self.pending
                    .insert(found.id.clone(), (found.version, Instant::now()));
                false
            }
        }
    }
}

struct Inner {
    config: CatalogConfig,
    rules: ScanRules,
    meta_dir: PathBuf,
    store: PyramidStore,
    records: Mutex<BTreeMap<String, Record>>,
    scan: Mutex<ScanMemory>,
    queue: BuildQueue,
    changes: tokio::sync::watch::Sender<u64>,
    wake: Sender<Wake>,
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stopping: AtomicBool,
}

/// Locks a mutex, going on with the data if a thread panicked while holding it (every update
/// here leaves the data consistent at each step).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Catalog {
    /// Creates the folders, removes the temporaries that dead processes left in them (builds,
    /// sidecars, uploads cut off while they arrived), starts the filesystem watcher, scans
    /// DATA_DIR synchronously (headers only), then starts the build workers and the watch
    /// thread (which also rescans every `rescan_interval`).
    pub fn start(config: CatalogConfig) -> Result<Catalog> {
        let meta_dir = config.data_dir.join(".gigatile").join("meta");
        let incoming = config.data_dir.join(UPLOADS).join(".incoming");
        for dir in [&incoming, &config.pyramid_dir, &meta_dir] {
            std::fs::create_dir_all(dir)?;
            remove_stale_temps(dir)?;
        }
        let rules = ScanRules {
            root: std::fs::canonicalize(&config.data_dir)?,
            skip: std::iter::once(&config.pyramid_dir)
                .chain(&config.derived_dirs)
                .map(|dir| std::fs::canonicalize(dir).or_else(|_| std::path::absolute(dir)))
                .collect::<std::io::Result<_>>()?,
        };
        let workers = config.max_concurrent_builds.max(1);
        let mut options = config.build;
        options.threads = (options.threads / workers).max(1);
        let store = PyramidStore::new(&config.pyramid_dir, options, config.limits.clone());
        let (wake, wake_rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            meta_dir,
            config,
            rules,
            store,
            records: Mutex::default(),
            scan: Mutex::default(),
            queue: BuildQueue::default(),
            changes: tokio::sync::watch::Sender::new(0),
            wake,
            watcher: Mutex::default(),
            threads: Mutex::default(),
            stopping: AtomicBool::new(false),
        });
        // Watch before the first scan, so nothing added meanwhile is missed.
        *lock(&inner.watcher) = watch::start_watcher(inner.rules.clone(), inner.wake.clone());
        inner.rescan(false);
        inner.evict();
        let mut threads = Vec::with_capacity(workers + 1);
        for n in 0..workers {
            let worker = Arc::clone(&inner);
            threads.push(spawn(&format!("catalog-build-{n}"), move || {
                builds::work(&worker)
            })?);
        }
        let watcher = Arc::clone(&inner);
        threads.push(spawn("catalog-watch", move || {
            watch::run(&watcher, &wake_rx)
        })?);
        *lock(&inner.threads) = threads;
        Ok(Catalog { inner })
    }

    /// Whether `id` is a listed image (cheaper than [`Catalog::get`]: nothing is copied).
    pub fn contains(&self, id: &str) -> bool {
        lock(&self.inner.records).contains_key(id)
    }

    /// Every listed image, sorted by id.
    pub fn list(&self) -> Vec<ImageEntry> {
        lock(&self.inner.records)
            .values()
            .map(Record::snapshot)
            .collect()
    }

    /// One image by id.
    pub fn get(&self, id: &str) -> Option<ImageEntry> {
        lock(&self.inner.records).get(id).map(Record::snapshot)
    }

    /// What can be served now (the source itself, the built pyramid or the preview; the
    /// entry's `ready_level` says how deep); `None` if the id is unknown or nothing is ready.
    /// Marks the image used; an evicted pyramid is queued for rebuilding.
    pub fn pyramid(&self, id: &str) -> Option<(ImageEntry, Pyramid)> {
        let mut records = lock(&self.inner.records);
        let record = records.get_mut(id)?;
        record.last_used = Instant::now();
        if record.pyramid.is_none() {
            self.inner.queue_if_idle(record);
        }
        let pyramid = record.pyramid.clone()?;
        Some((record.snapshot(), pyramid))
    }

    /// A receiver whose value bumps on any add, remove, status or `ready_level` change.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Validates an uploaded temporary file (a supported image within the limits whose first
    /// row decodes), moves it to `DATA_DIR/uploads/<generated name>.<ext>`, writes its sidecar,
    /// registers it and queues its build. On any rejection the temporary file is deleted.
    /// `temp_file` must be on DATA_DIR's filesystem (e.g. under `uploads/.incoming/`).
    pub fn add_upload(&self, temp_file: &Path, meta: ImageMeta) -> Result<ImageEntry> {
        let format = self
            .inner
            .validate_upload(temp_file)
            .inspect_err(|_| uploads::remove_quietly(temp_file))?;
        self.inner.store_upload(temp_file, format, meta)
    }

    /// Removes an uploaded image: its file, its sidecar and every derived pyramid or preview
    /// of it (all versions); cancels its build. Files not uploaded are refused.
    pub fn delete(&self, id: &str) -> std::result::Result<(), DeleteError> {
        self.inner.delete(id)
    }

    /// Drops the derived pyramids of one image (all its versions; unknown id: `NotFound`) or
    /// of all, and queues their rebuilds; returns the bytes freed.
    pub fn purge(&self, id: Option<&str>) -> Result<u64> {
        self.inner.purge(id)
    }

    /// Cancels builds (their temporary files are removed), stops the threads and joins them.
    /// Idempotent; the catalogue still answers queries afterwards, but no longer changes.
    pub fn shutdown(&self) {
        let inner = &self.inner;
        if inner.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        lock(&inner.watcher).take();
        for record in lock(&inner.records).values_mut() {
            if let Some(slot) = &record.build {
                slot.cancel.store(true, Ordering::Relaxed);
            }
        }
        inner.queue.stop();
        let _ = inner.wake.send(Wake::Stop);
        let threads = std::mem::take(&mut *lock(&inner.threads));
        for thread in threads {
            if thread.join().is_err() {
                tracing::error!("a catalogue thread panicked");
            }
        }
    }
}

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    Ok(std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(work)?)
}

impl Inner {
    fn bump(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn has_pending(&self) -> bool {
        !lock(&self.scan).pending.is_empty()
    }

    /// Walks DATA_DIR and applies what changed; `settle` holds new and changed files back
    /// until they are stable (every scan but the first).
    fn rescan(&self, settle: bool) {
        let mut memory = lock(&self.scan);
        let found = self.rules.walk(&mut memory.reported);
        let ids: HashSet<&str> = found.iter().map(|f| f.id.as_str()).collect();
        let paths: HashSet<&Path> = found.iter().map(|f| f.path.as_path()).collect();
        self.remove_missing(&ids);
        memory.pending.retain(|id, _| ids.contains(id.as_str()));
        memory
            .ignored
            .retain(|path, _| paths.contains(path.as_path()));
        memory
            .reported
            .retain(|path| path.symlink_metadata().is_ok());
        for f in &found {
            if self.is_current(f) || memory.ignored.get(&f.path) == Some(&f.version) {
                continue;
            }
            self.cancel_build(&f.id);
            if settle && !memory.settled(f) {
                continue;
            }
            memory.pending.remove(&f.id);
            match self.examine(f) {
                Some(record) => self.register(record),
                None => {
                    memory.ignored.insert(f.path.clone(), f.version);
                }
            }
        }
    }

    fn is_current(&self, f: &Found) -> bool {
        lock(&self.records)
            .get(&f.id)
            .is_some_and(|r| r.entry.version == f.version && r.entry.path == f.path)
    }

    /// Cancels the build of an image whose file changed: it would read a moving file, and the
    /// new version gets its own build once registered.
    fn cancel_build(&self, id: &str) {
        if let Some(record) = lock(&self.records).get_mut(id) {
            record.cancel_build();
        }
    }

    fn remove_missing(&self, ids: &HashSet<&str>) {
        let mut records = lock(&self.records);
        let before = records.len();
        records.retain(|id, record| {
            let keep = ids.contains(id.as_str());
            if !keep {
                tracing::info!(id = %id, "image removed");
                record.cancel_build();
            }
            keep
        });
        if records.len() != before {
            self.bump();
        }
    }

    /// Opens a found file's header and what the store has for it; `None` when it is not a
    /// listable image (logged).
    fn examine(&self, f: &Found) -> Option<Record> {
        let info = match scan::probe(&f.path, &self.config.limits) {
            Ok(Probe::Image(info)) => info,
            Ok(Probe::Broken(format, reason)) => {
                tracing::warn!(path = %f.path.display(), %reason, "image listed as failed");
                return Some(self.record(f, format, (0, 0), Err(reason)));
            }
            Ok(Probe::NotImage) => {
                tracing::info!(path = %f.path.display(), "not a supported image, not listed");
                return None;
            }
            Err(e) => {
                tracing::warn!(path = %f.path.display(), error = %e, "unreadable, not listed");
                return None;
            }
        };
        let prepared = self.store.prepare(&f.id, &f.path).map_err(|e| {
            tracing::warn!(path = %f.path.display(), error = %e, "image listed as failed");
            e.to_string()
        });
        Some(self.record(f, info.format, (info.width, info.height), prepared))
    }

    fn record(
        &self,
        f: &Found,
        format: SourceFormat,
        (width, height): (u32, u32),
        prepared: std::result::Result<Prepared, String>,
    ) -> Record {
        let mut meta = sidecar::read(&self.meta_dir, &f.id).unwrap_or_default();
        if meta.original_filename.is_empty() {
            meta.original_filename = f.id.rsplit('/').next().unwrap_or(&f.id).to_owned();
        }
        let (status, ready_level, pyramid, derived) = match prepared {
            Ok(Prepared::Source(p)) => (ImageStatus::Ready, Some(Level(0)), Some(p), false),
            Ok(Prepared::Built(p)) => (ImageStatus::Ready, Some(Level(0)), Some(p), true),
            Ok(Prepared::Preview(p)) => (building(), p.finest_level(), Some(p), true),
            Ok(Prepared::Missing) => (building(), None, None, true),
            Err(reason) => (ImageStatus::Failed { reason }, None, None, false),
        };
        Record {
            entry: ImageEntry {
                id: f.id.clone(),
                path: f.path.clone(),
                width,
                height,
                bytes: f.version.len,
                format,
                version: f.version,
                modified: f.modified,
                status,
                ready_level,
                meta,
                uploaded: self.is_upload(f),
            },
            pyramid,
            derived,
            build: None,
            queued: false,
            last_used: Instant::now(),
        }
    }

    /// Whether a file was uploaded through the API, so `delete` may remove it: its id is in
    /// `uploads/` and it is the file itself, not a symlink to a user's file.
    fn is_upload(&self, f: &Found) -> bool {
        scan::is_upload(&f.id) && f.path == self.rules.root.join(&f.id)
    }

    /// Adds or replaces a record (cancelling the old one's build) and queues its build. A file
    /// gone meanwhile (deleted) is not registered.
    fn register(&self, mut record: Record) {
        let mut records = lock(&self.records);
        if !record.entry.path.exists() {
            return;
        }
        tracing::info!(id = %record.entry.id, status = ?record.entry.status, "image registered");
        self.queue_if_idle(&mut record);
        if let Some(mut old) = records.insert(record.entry.id.clone(), record) {
            old.cancel_build();
        }
        self.bump();
    }

    /// Queues a build for a record that needs one and has none waiting or running.
    fn queue_if_idle(&self, record: &mut Record) {
        let needed = record.derived
            && matches!(record.entry.status, ImageStatus::Building { .. })
            && !record.queued
            && record.build.is_none();
        if needed {
            record.queued = true;
            self.queue.push(Job {
                id: record.entry.id.clone(),
                version: record.entry.version,
                pixels: u64::from(record.entry.width) * u64::from(record.entry.height),
            });
        }
    }

    fn purge(&self, id: Option<&str>) -> Result<u64> {
        let mut records = lock(&self.records);
        if id.is_some_and(|id| !records.contains_key(id)) {
            return Err(Error::NotFound);
        }
        let freed = evict::purge_dir(self.store.dir(), id)?;
        let targets = records
            .values_mut()
            .filter(|r| r.derived && id.is_none_or(|id| r.entry.id == id));
        for record in targets {
            record.reset();
            self.queue_if_idle(record);
        }
        self.bump();
        Ok(freed)
    }
}

fn building() -> ImageStatus {
    ImageStatus::Building { progress: 0.0 }
}
