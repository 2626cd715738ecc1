//! disk: the on-disk tier, an LRU folder of encoded tiles that survives restarts.
//!
//! It owns its folder and knows no HTTP or pixels. Layout: a key's 64-bit FNV-1a hash in hex
//! names its file, under two fan-out folders (`c/29/c29f…`, as nginx's `levels=1:2`). Each
//! file holds a one-line header `gigatile-tile-1 {media type} {etag} {key length}`, then the
//! key, then the bytes. A read checks the key (so a hash collision is a miss) and the ETag
//! against the bytes (so a file torn by a crash is a miss and is removed); this is why writes
//! need no fsync. Writes go to `.{name}.tmp-{pid}-{n}` and are renamed into place, so no
//! reader sees half a file; temporaries of dead processes are removed at startup.
//!
//! The index (sizes and last uses) lives in memory and is rebuilt at startup from a scan of
//! sizes and mtimes. Last use is tracked in memory; a hit refreshes the file's mtime only
//! when it is more than [`TOUCH_EVERY`] old, so the order survives a restart without a
//! write per hit. I/O errors are logged and the call behaves as a miss or a no-op.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::{lock, CachedTile, Usage};
use crate::atomic::{self, remove_stale_temps, Durability};
use crate::pyramid::store::fnv1a;

/// How stale a file's mtime may get before a hit refreshes it.
const TOUCH_EVERY: Duration = Duration::from_secs(3600);

/// The first word of every cache file; a new layout gets a new word.
const MAGIC: &str = "gigatile-tile-1";

/// The media types a cache file may carry (a tile's media type is `&'static str`). Tiles of
/// any other type are kept in memory only.
const MEDIA_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/avif",
    "image/gif",
    "image/tiff",
    "image/jp2",
    "application/json",
    "application/ld+json",
    "application/xml",
    "text/xml",
    "text/plain",
];

/// An LRU folder of tiles within a byte budget.
pub(crate) struct DiskCache {
    dir: PathBuf,
    max_bytes: u64,
    index: Mutex<Index>,
    /// Set while writes fail, so that a full disk logs one warning, not one per tile.
    failing: AtomicBool,
}

impl DiskCache {
    /// Opens (creating) `dir`, removes stale temporaries, indexes what is there and evicts
    /// down to `max_bytes`.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> io::Result<DiskCache> {
        fs::create_dir_all(dir)?;
        let mut index = Index::default();
        for file in scan(dir)? {
            index.put(file.name, file.len, file.mtime);
        }
        let cache = DiskCache {
            dir: dir.to_owned(),
            max_bytes,
            index: Mutex::new(index),
            failing: AtomicBool::new(false),
        };
        let victims = cache.lock().evict_over(max_bytes);
        cache.remove_files(&victims);
        Ok(cache)
    }

    pub(crate) fn get(&self, key: &str) -> Option<CachedTile> {
        let name = file_name(key);
        let refresh = self.lock().touch(name)?;
        let path = self.path(name);
        match read_entry(&path, key) {
            Ok(Some(tile)) => {
                if refresh {
                    refresh_mtime(&path);
                }
                Some(tile)
            }
            Ok(None) => {
                tracing::warn!(path = %path.display(), "dropping an unreadable tile cache file");
                self.forget(name);
                self.remove_files(&[name]);
                None
            }
            Err(err) => {
                tracing::debug!(path = %path.display(), %err, "tile cache file vanished");
                self.forget(name);
                None
            }
        }
    }

    pub(crate) fn insert(&self, key: &str, tile: &CachedTile) {
        if find_media_type(tile.media_type).is_none() {
            tracing::debug!(
                media_type = tile.media_type,
                "not caching this type on disk"
            );
            return;
        }
        let name = file_name(key);
        let path = self.path(name);
        match write_entry(&path, key, tile) {
            Ok(len) => {
                self.recovered();
                let victims = {
                    let mut index = self.lock();
                    index.put(name, len, SystemTime::now());
                    index.evict_over(self.max_bytes)
                };
                self.remove_files(&victims);
            }
            Err(err) => self.failed(&path, &err),
        }
    }

    /// Records a use of `key` (a hit in a faster tier) without reading the file.
    pub(crate) fn touch(&self, key: &str) {
        let name = file_name(key);
        let refresh = self.lock().touch(name);
        if refresh == Some(true) {
            refresh_mtime(&self.path(name));
        }
    }

    pub(crate) fn usage(&self) -> Usage {
        let index = self.lock();
        Usage {
            bytes: index.bytes,
            entries: index.entries.len() as u64,
            evictions: index.evictions,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        lock(&self.index)
    }

    fn forget(&self, name: u64) {
        self.lock().remove(name);
    }

    fn path(&self, name: u64) -> PathBuf {
        let hex = format!("{name:016x}");
        self.dir.join(&hex[..1]).join(&hex[1..3]).join(hex)
    }

    fn remove_files(&self, names: &[u64]) {
        for &name in names {
            let path = self.path(name);
            if let Err(err) = fs::remove_file(&path) {
                if err.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), %err, "cannot remove a tile cache file");
                }
            }
        }
    }

    fn failed(&self, path: &Path, err: &io::Error) {
        if self.failing.swap(true, Ordering::Relaxed) {
            tracing::debug!(path = %path.display(), %err, "tile cache write failed");
        } else {
            tracing::warn!(path = %path.display(), %err, "tile cache writes fail; serving without caching them until they work again");
        }
    }

    fn recovered(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(dir = %self.dir.display(), "tile cache writes work again");
        }
    }
}

/// What the cache knows about its files: sizes and an order of last use.
#[derive(Default)]
struct Index {
    entries: HashMap<u64, Entry>,
    /// Use tick → file name, least recent first.
    by_use: BTreeMap<u64, u64>,
    tick: u64,
    bytes: u64,
    evictions: u64,
}

struct Entry {
    len: u64,
    tick: u64,
    /// The file's mtime as last written or refreshed.
    mtime: SystemTime,
}

impl Index {
    /// Adds or replaces a file as the most recently used.
    fn put(&mut self, name: u64, len: u64, mtime: SystemTime) {
        self.remove(name);
        let tick = self.next_tick();
        self.by_use.insert(tick, name);
        self.bytes += len;
        self.entries.insert(name, Entry { len, tick, mtime });
    }

    /// Marks a file used; `None` when it is not indexed, else whether its mtime is stale
    /// enough to refresh (which this records as done).
    fn touch(&mut self, name: u64) -> Option<bool> {
        let tick = self.next_tick();
        let entry = self.entries.get_mut(&name)?;
        self.by_use.remove(&entry.tick);
        self.by_use.insert(tick, name);
        entry.tick = tick;
        let now = SystemTime::now();
        let stale = now
            .duration_since(entry.mtime)
            .is_ok_and(|age| age > TOUCH_EVERY);
        if stale {
            entry.mtime = now;
        }
        Some(stale)
    }

    fn remove(&mut self, name: u64) -> Option<Entry> {
        let entry = self.entries.remove(&name)?;
        self.by_use.remove(&entry.tick);
        self.bytes -= entry.len;
        Some(entry)
    }

    /// Drops least recently used entries until the total fits `max_bytes`; returns their
    /// names, for the caller to delete outside the lock.
    fn evict_over(&mut self, max_bytes: u64) -> Vec<u64> {
        let mut victims = Vec::new();
        while self.bytes > max_bytes {
            let Some((_, name)) = self.by_use.pop_first() else {
                break;
            };
            if let Some(entry) = self.entries.remove(&name) {
                self.bytes -= entry.len;
            }
            self.evictions += 1;
            victims.push(name);
        }
        victims
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }
}

/// A cache file found by the startup scan.
struct Found {
    name: u64,
    len: u64,
    mtime: SystemTime,
}

/// Lists the cache files under `dir`, oldest first, after removing dead processes'
/// temporaries. Unreadable folders and foreign files are logged or skipped, not fatal; only
/// an unreadable `dir` is.
fn scan(dir: &Path) -> io::Result<Vec<Found>> {
    let mut found = Vec::new();
    for outer in subfolders(dir)? {
        let inner = subfolders(&outer).unwrap_or_else(|err| skip(&outer, &err));
        for folder in inner {
            if let Err(err) = remove_stale_temps(&folder) {
                tracing::warn!(path = %folder.display(), %err, "cannot remove stale temporaries");
            }
            found.extend(cache_files(&folder).unwrap_or_else(|err| skip(&folder, &err)));
        }
    }
    found.sort_by_key(|file| file.mtime);
    Ok(found)
}

fn skip<T>(path: &Path, err: &io::Error) -> Vec<T> {
    tracing::warn!(path = %path.display(), %err, "skipping an unreadable tile cache folder");
    Vec::new()
}

fn subfolders(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut folders = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            folders.push(entry.path());
        }
    }
    Ok(folders)
}

/// The files of one fan-out folder whose names are cache file names.
fn cache_files(folder: &Path) -> io::Result<Vec<Found>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(folder)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().and_then(parse_file_name) else {
            continue;
        };
        let meta = entry.metadata()?;
        if meta.is_file() {
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            found.push(Found {
                name,
                len: meta.len(),
                mtime,
            });
        }
    }
    Ok(found)
}

fn file_name(key: &str) -> u64 {
    fnv1a(&[key.as_bytes()])
}

/// A cache file's name back to its hash: exactly 16 lowercase hex digits.
fn parse_file_name(name: &str) -> Option<u64> {
    let valid = name.len() == 16 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then(|| u64::from_str_radix(name, 16).ok()).flatten()
}

fn find_media_type(media_type: &str) -> Option<&'static str> {
    MEDIA_TYPES
        .iter()
        .copied()
        .find(|known| *known == media_type)
}

/// The header line and key that precede a tile's bytes in its file.
fn format_header(key: &str, tile: &CachedTile) -> String {
    format!(
        "{MAGIC} {} {} {}\n{key}",
        tile.media_type,
        tile.etag,
        key.len()
    )
}

/// A cache file's contents back to its tile; `None` when it is not a whole file for `key`.
fn parse_entry(key: &str, data: Bytes) -> Option<CachedTile> {
    let line_end = data.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&data[..line_end]).ok()?;
    let mut words = line.split(' ');
    let (magic, media_type, etag, key_len) =
        (words.next()?, words.next()?, words.next()?, words.next()?);
    if magic != MAGIC || words.next().is_some() {
        return None;
    }
    let media_type = find_media_type(media_type)?;
    let key_start = line_end + 1;
    let body_start = key_start.checked_add(key_len.parse().ok()?)?;
    if data.get(key_start..body_start)? != key.as_bytes() {
        return None;
    }
    let tile = CachedTile::new(data.slice(body_start..), media_type);
    (tile.etag == etag).then_some(tile)
}

/// Reads `key`'s file: `Ok(None)` when it exists but is not a valid entry for `key`.
fn read_entry(path: &Path, key: &str) -> io::Result<Option<CachedTile>> {
    let data = fs::read(path)?;
    Ok(parse_entry(key, Bytes::from(data)))
}

/// Writes `key`'s file atomically; returns its size. Entries are checked when read, so a
/// write need only be whole, not synced.
fn write_entry(path: &Path, key: &str, tile: &CachedTile) -> io::Result<u64> {
    atomic::write(
        path,
        &[format_header(key, tile).as_bytes(), &tile.bytes],
        Durability::Whole,
    )
}

/// Sets a file's mtime to now, best effort (it only orders evictions after a restart).
fn refresh_mtime(path: &Path) {
    let touched = File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(SystemTime::now()));
    if let Err(err) = touched {
        tracing::debug!(path = %path.display(), %err, "cannot refresh a tile cache mtime");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(body: &'static [u8]) -> CachedTile {
        CachedTile::new(Bytes::from_static(body), "image/png")
    }

    fn file_of(key: &str, tile: &CachedTile) -> Bytes {
        let mut data = format_header(key, tile).into_bytes();
        data.extend_from_slice(&tile.bytes);
        Bytes::from(data)
    }

    #[test]
    fn entries_parse_back() {
        let original = tile(b"\x89PNG tile\nbytes");
        let parsed = parse_entry("a key", file_of("a key", &original)).expect("parses");
        assert_eq!(parsed.bytes, original.bytes);
        assert_eq!(parsed.media_type, "image/png");
        assert_eq!(parsed.etag, original.etag);
    }

    #[test]
    fn entries_for_another_key_or_torn_are_rejected() {
        let data = file_of("a key", &tile(b"0123456789"));
        assert!(parse_entry("b key", data.clone()).is_none());
        assert!(parse_entry("a key", data.slice(..data.len() - 1)).is_none());
        assert!(parse_entry("a key", data.slice(..5)).is_none());
        assert!(parse_entry("a key", Bytes::from_static(b"junk 1 2 999999999999\n")).is_none());
    }

    #[test]
    fn file_names_round_trip_and_reject_others() {
        assert_eq!(parse_file_name("00000000000000ff"), Some(255));
        assert_eq!(parse_file_name("00000000000000FF"), None);
        assert_eq!(parse_file_name(".00000000000000ff.tmp-1-0"), None);
        assert_eq!(parse_file_name("+000000000000ff"), None);
    }

    #[test]
    fn index_evicts_least_recently_used() {
        let mut index = Index::default();
        let now = SystemTime::now();
        for name in 1..=3 {
            index.put(name, 10, now);
        }
        assert_eq!(index.touch(1), Some(false));
        assert_eq!(index.evict_over(20), vec![2]);
        assert_eq!(index.evict_over(10), vec![3]);
        assert_eq!((index.bytes, index.evictions), (10, 2));
        assert_eq!(index.touch(2), None);
    }

    #[test]
    fn stale_mtimes_are_refreshed_once() {
        let mut index = Index::default();
        index.put(1, 10, SystemTime::UNIX_EPOCH);
        assert_eq!(index.touch(1), Some(true));
        assert_eq!(index.touch(1), Some(false));
    }
}
