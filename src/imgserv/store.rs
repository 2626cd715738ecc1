//! store: the imgserv cache folder, a size-bounded LRU of fitted images that mirrors the
//! source tree.
//!
//! It owns the folder's layout and its info records: the versions of image `{id}` live in
//! folder `{id}/`, beside a sidecar `.info.json` holding the source's dimensions, size and
//! mtime and every version's size and last use. Files and records are written to
//! `.{name}.tmp-{pid}-{n}` and renamed, so a crash leaves whole files only (and temporaries
//! that [`remove_stale_temps`] clears at the next open). A fitted file's mtime is its source's.
//!
//! Last uses are kept in memory: a hit costs no disk write; records are written when a version
//! is made or dropped and on [`FileStore::flush`]. When a source's size or mtime differs from
//! its record, all its versions are dropped. After each creation over `max_bytes`, the least
//! recently used versions are deleted down to 2/3 of it, except those handed out less than
//! `min_lifetime` ago. One version is made once however many ask for it at a time.
//!
//! It knows no HTTP, pixels or mirrors: the bytes come from a closure.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::fit::{Fitted, SourceFacts};
use crate::atomic::{self, remove_stale_temps, Durability};
use crate::error::{Error, Result};

/// The sidecar holding a source's record, in the source's cache folder.
const RECORD_NAME: &str = ".info.json";

/// The cache folder's limits.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub dir: PathBuf,
    /// Over this, least recently used versions are deleted down to 2/3 of it.
    pub max_bytes: u64,
    /// A version handed out less than this long ago is never deleted.
    pub min_lifetime: Duration,
}

/// The info record of one source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Record {
    width: u32,
    height: u32,
    source_len: u64,
    source_mtime_ns: u128,
    /// By file name inside the source's folder.
    versions: BTreeMap<String, Version>,
}

/// One fitted file of a source.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Version {
    bytes: u64,
    /// Milliseconds since the Unix epoch; 0 when unknown (found on disk without a record).
    last_use_ms: u64,
}

impl Record {
    fn matches(&self, source: &SourceFacts) -> bool {
        self.source_len == source.version.len && self.source_mtime_ns == source.version.mtime_ns
    }

    fn fresh(source: &SourceFacts) -> Record {
        Record {
            width: source.width,
            height: source.height,
            source_len: source.version.len,
            source_mtime_ns: source.version.mtime_ns,
            versions: BTreeMap::new(),
        }
    }
}

/// Everything behind the lock: records by source id, which need writing, what is being made.
#[derive(Default)]
struct State {
    records: HashMap<String, Record>,
    dirty: HashSet<String>,
    making: HashSet<String>,
    bytes: u64,
}

/// A version chosen for deletion.
struct Victim {
    last_use_ms: u64,
    id: String,
    file: String,
}

impl State {
    /// Drops every version of `source` when its record no longer matches it; returns the
    /// files to delete.
    fn check_source(&mut self, id: &str, source: &SourceFacts) -> Vec<String> {
        let record = self
            .records
            .entry(id.to_owned())
            .or_insert_with(|| Record::fresh(source));
        if record.matches(source) {
            return Vec::new();
        }
        let stale = std::mem::replace(record, Record::fresh(source));
        self.bytes -= stale.versions.values().map(|v| v.bytes).sum::<u64>();
        self.dirty.insert(id.to_owned());
        stale.versions.into_keys().collect()
    }

    fn has_version(&self, id: &str, file: &str) -> bool {
        self.records
            .get(id)
            .is_some_and(|r| r.versions.contains_key(file))
    }

    /// Records a use now, in memory only: the record is written at the next flush.
    fn touch(&mut self, id: &str, file: &str) {
        if let Some(version) = self
            .records
            .get_mut(id)
            .and_then(|r| r.versions.get_mut(file))
        {
            version.last_use_ms = now_ms();
            self.dirty.insert(id.to_owned());
        }
    }

    fn put_version(&mut self, id: &str, file: &str, version: Version) {
        if let Some(record) = self.records.get_mut(id) {
            let old = record.versions.insert(file.to_owned(), version);
            self.bytes = self.bytes + version.bytes - old.map_or(0, |v| v.bytes);
            self.dirty.insert(id.to_owned());
        }
    }

    fn forget_version(&mut self, id: &str, file: &str) {
        if let Some(old) = self
            .records
            .get_mut(id)
            .and_then(|r| r.versions.remove(file))
        {
            self.bytes -= old.bytes;
            self.dirty.insert(id.to_owned());
        }
    }

    /// When over `max_bytes`, forgets least recently used versions until 2/3 of it is used,
    /// sparing those used since `spare_after_ms` and the file `keep`; returns them.
    fn evict(&mut self, max_bytes: u64, spare_after_ms: u64, keep: (&str, &str)) -> Vec<Victim> {
        if self.bytes <= max_bytes {
            return Vec::new();
        }
        let mut candidates: Vec<Victim> = self
            .records
            .iter()
            .flat_map(|(id, record)| {
                record.versions.iter().map(move |(file, v)| Victim {
                    last_use_ms: v.last_use_ms,
                    id: id.clone(),
                    file: file.clone(),
                })
            })
            .filter(|v| v.last_use_ms < spare_after_ms && (v.id.as_str(), v.file.as_str()) != keep)
            .collect();
        candidates
            .sort_by(|a, b| (a.last_use_ms, &a.id, &a.file).cmp(&(b.last_use_ms, &b.id, &b.file)));
        let target = max_bytes / 3 * 2;
        let mut victims = Vec::new();
        for victim in candidates {
            if self.bytes <= target {
                break;
            }
            self.forget_version(&victim.id, &victim.file);
            victims.push(victim);
        }
        victims
    }

    /// The dirty records, cloned, to write outside the lock.
    fn take_dirty(&mut self) -> Vec<(String, Record)> {
        let ids: Vec<String> = self.dirty.drain().collect();
        ids.into_iter()
            .filter_map(|id| Some((id.clone(), self.records.get(&id)?.clone())))
            .collect()
    }
}

/// The cache folder.
pub struct FileStore {
    config: StoreConfig,
    state: Mutex<State>,
    /// Signalled whenever a version stops being made.
    made: Condvar,
    /// Held while records are written, so an older snapshot never overwrites a newer one.
    flushing: Mutex<()>,
}

impl FileStore {
    /// Opens (creating) the folder, removes stale temporaries and loads the records. Fitted
    /// files without a record entry (a crash before the record was written) are kept as the
    /// least recently used; a folder without a record is dropped at its source's next use.
    pub fn open(config: StoreConfig) -> Result<FileStore> {
        fs::create_dir_all(&config.dir)?;
        let mut state = State::default();
        load_tree(&config.dir, "", &mut state)?;
        Ok(FileStore {
            config,
            state: Mutex::new(state),
            made: Condvar::new(),
            flushing: Mutex::new(()),
        })
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// Makes sure `fitted` is in the folder, calling `render` for its bytes when it is not
    /// (once, however many threads ask at a time), and records its use.
    pub fn ensure(
        &self,
        source: &SourceFacts,
        fitted: &Fitted,
        render: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<()> {
        let file = file_in_folder(fitted)?;
        let path = self.config.dir.join(&fitted.name);
        let mut state = self.lock();
        loop {
            if self.hit(&mut state, source, fitted, file, &path) {
                return Ok(());
            }
            if state.making.insert(fitted.name.clone()) {
                break;
            }
            state = self
                .made
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(state);
        let _making = Making {
            store: self,
            name: &fitted.name,
        };
        let bytes = render()?;
        write_atomic(&path, &bytes, Some(source_mtime(source)))?;
        self.add_version(source, fitted, file, bytes.len() as u64);
        self.flush()
    }

    /// Whether `fitted` is in the folder already; records its use when it is. No render and
    /// no write (but the files of a changed source are dropped).
    pub fn lookup(&self, source: &SourceFacts, fitted: &Fitted) -> Result<bool> {
        let file = file_in_folder(fitted)?;
        let path = self.config.dir.join(&fitted.name);
        Ok(self.hit(&mut self.lock(), source, fitted, file, &path))
    }

    /// The check of [`FileStore::ensure`] and [`FileStore::lookup`]: drops the versions of a
    /// changed source and a version whose file has gone, then touches the version if present.
    fn hit(
        &self,
        state: &mut State,
        source: &SourceFacts,
        fitted: &Fitted,
        file: &str,
        path: &Path,
    ) -> bool {
        let stale = state.check_source(&fitted.id, source);
        self.remove_files(&fitted.id, &stale);
        if state.has_version(&fitted.id, file) {
            if path.is_file() {
                state.touch(&fitted.id, file);
                return true;
            }
            state.forget_version(&fitted.id, file);
        }
        false
    }

    /// Writes the records whose last uses or versions changed since they were last written.
    pub fn flush(&self) -> Result<()> {
        let _flushing = self.flushing.lock().unwrap_or_else(PoisonError::into_inner);
        let dirty = self.lock().take_dirty();
        for (id, record) in dirty {
            let json =
                serde_json::to_vec_pretty(&record).map_err(|e| Error::Io(io::Error::other(e)))?;
            write_atomic(&self.config.dir.join(&id).join(RECORD_NAME), &json, None)?;
        }
        Ok(())
    }

    /// Records a new version, then evicts if the folder is over its limit. A version of a
    /// source that changed while it was made is deleted instead.
    fn add_version(&self, source: &SourceFacts, fitted: &Fitted, file: &str, bytes: u64) {
        let now = now_ms();
        let spare_after = now.saturating_sub(self.config.min_lifetime.as_millis() as u64);
        let mut state = self.lock();
        if !state
            .records
            .get(&fitted.id)
            .is_some_and(|r| r.matches(source))
        {
            drop(state);
            self.remove_files(&fitted.id, &[file.to_owned()]);
            return;
        }
        let version = Version {
            bytes,
            last_use_ms: now,
        };
        state.put_version(&fitted.id, file, version);
        let victims = state.evict(self.config.max_bytes, spare_after, (&fitted.id, file));
        drop(state);
        for victim in victims {
            self.remove_files(&victim.id, &[victim.file]);
        }
    }

    /// Deletes fitted files of source `id`; a file already gone is not an error.
    fn remove_files(&self, id: &str, files: &[String]) {
        for file in files {
            let path = self.config.dir.join(id).join(file);
            if let Err(err) = fs::remove_file(&path) {
                if err.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), %err, "could not delete a fitted image");
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Marks a version as no longer being made when dropped (made, failed or panicked), and wakes
/// the threads waiting for it.
struct Making<'a> {
    store: &'a FileStore,
    name: &'a str,
}

impl Drop for Making<'_> {
    fn drop(&mut self) {
        self.store.lock().making.remove(self.name);
        self.store.made.notify_all();
    }
}

/// The file name of a version inside its source's folder.
fn file_in_folder(fitted: &Fitted) -> Result<&str> {
    fitted
        .name
        .strip_prefix(&fitted.id)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|file| !file.contains('/'))
        .ok_or_else(|| Error::out_of_range("a fitted image's name must be {id}/{file}"))
}

/// Loads the records under `dir` (the folder of source `id`, or of a parent when it holds
/// no files), removing stale temporaries on the way.
fn load_tree(dir: &Path, id: &str, state: &mut State) -> Result<()> {
    remove_stale_temps(dir)?;
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            let child = if id.is_empty() {
                name
            } else {
                format!("{id}/{name}")
            };
            load_tree(&entry.path(), &child, state)?;
        } else if kind.is_file() && !name.starts_with('.') {
            files.insert(name, entry.metadata()?.len());
        }
    }
    if files.is_empty() || id.is_empty() {
        return Ok(());
    }
    let mut record = read_record(&dir.join(RECORD_NAME)).unwrap_or_default();
    record.versions.retain(|file, _| files.contains_key(file));
    for (file, bytes) in files {
        let version = record.versions.entry(file).or_insert(Version {
            bytes,
            last_use_ms: 0,
        });
        version.bytes = bytes;
        state.bytes += bytes;
    }
    state.records.insert(id.to_owned(), record);
    Ok(())
}

/// A record as written, or `None` when it is missing or unreadable (then its folder's files
/// are dropped at the source's next use, since the record's source size and mtime are 0).
fn read_record(path: &Path) -> Option<Record> {
    let bytes = fs::read(path).ok()?;
    serde_json::from_slice(&bytes)
        .inspect_err(
            |err| tracing::warn!(path = %path.display(), %err, "unreadable imgserv record"),
        )
        .ok()
}

/// Writes `bytes` to `path` atomically and durably (records must survive a crash), with the
/// source's mtime when given.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mtime: Option<SystemTime>) -> Result<()> {
    match mtime {
        Some(time) => atomic::write_dated(path, &[bytes], Durability::Synced, time)?,
        None => atomic::write(path, &[bytes], Durability::Synced)?,
    };
    Ok(())
}

/// The source's mtime, which every fitted file of it carries.
pub(crate) fn source_mtime(source: &SourceFacts) -> SystemTime {
    let ns = source.version.mtime_ns;
    UNIX_EPOCH
        + Duration::from_secs((ns / 1_000_000_000) as u64)
        + Duration::from_nanos((ns % 1_000_000_000) as u64)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
