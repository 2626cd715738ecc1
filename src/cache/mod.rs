//! cache: encoded tile responses kept by an opaque key, in memory and optionally on disk, plus
//! the coalescing of identical renders in flight ([`inflight::Inflight`]).
//!
//! It owns the tiers and their bounds; it must not know HTTP, pixels or how keys are built (the
//! caller puts everything that changes the bytes into the key). A cache failure is never a
//! request failure: I/O errors are logged and the call behaves as a miss or a no-op.
//!
//! - `CACHE=memory`: one bytes-bounded LRU in RAM (`memory`).
//! - `CACHE=file`: an LRU folder on disk (`disk`) that survives restarts, fronted by the
//!   same memory LRU (sized by `CACHE_MEMORY_BYTES` and `CACHE_MEMORY_TILES`; set either to 0
//!   for a disk-only cache). Hits in the front count as uses of the disk entry.
//! - `CACHE=disabled`: nothing is kept.

mod disk;
pub mod inflight;
mod memory;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

use crate::memory::{MemoryBudget, Reservation};
use crate::pyramid::store::fnv1a;
use crate::{Error, Result};
use disk::DiskCache;
use memory::MemoryCache;

pub use inflight::Inflight;

/// Default `CACHE_MEMORY_BYTES`: 256 MiB.
pub const DEFAULT_MEMORY_BYTES: u64 = 256 << 20;
/// Default `CACHE_MEMORY_TILES`.
pub const DEFAULT_MEMORY_TILES: u64 = 10_000;
/// Default `CACHE_FILE_MAX_BYTES`: 1 GiB.
pub const DEFAULT_FILE_MAX_BYTES: u64 = 1 << 30;

/// Which tiers the tile cache uses (`CACHE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// A bytes-bounded LRU in memory.
    #[default]
    Memory,
    /// An LRU folder on disk that persists across restarts, with a memory front.
    File,
    /// No tile caching (pyramids are unaffected).
    Disabled,
}

/// A `CACHE` value that is none of `memory`, `file`, `disabled`.
#[derive(Debug, thiserror::Error)]
#[error("CACHE must be memory, file or disabled, not {0:?}")]
pub struct ParseCacheModeError(String);

impl FromStr for CacheMode {
    type Err = ParseCacheModeError;

    /// Parses `memory`, `file` or `disabled`, ignoring ASCII case and surrounding blanks.
    fn from_str(s: &str) -> std::result::Result<CacheMode, ParseCacheModeError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "memory" => Ok(CacheMode::Memory),
            "file" => Ok(CacheMode::File),
            "disabled" => Ok(CacheMode::Disabled),
            _ => Err(ParseCacheModeError(s.to_owned())),
        }
    }
}

/// The tile cache's settings.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// `CACHE`.
    pub mode: CacheMode,
    /// `CACHE_MEMORY_BYTES`: the memory tier's budget (keys and tile bytes).
    pub memory_bytes: u64,
    /// `CACHE_MEMORY_TILES`: the memory tier's entry limit.
    pub memory_entries: u64,
    /// `CACHE_FILE_DIR`: the disk tier's folder, owned by the cache (required for `File`;
    /// `DATA_DIR/.gigatile/tiles` is a good choice).
    pub file_dir: PathBuf,
    /// `CACHE_FILE_MAX_BYTES`: the disk tier's budget (whole file sizes).
    pub file_max_bytes: u64,
    /// The memory budget the memory tier takes its whole capacity from, for the cache's life.
    pub budget: MemoryBudget,
}

impl Default for CacheConfig {
    /// Memory mode with the documented defaults; `file_dir` is empty.
    fn default() -> CacheConfig {
        CacheConfig {
            mode: CacheMode::Memory,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            memory_entries: DEFAULT_MEMORY_TILES,
            file_dir: PathBuf::new(),
            file_max_bytes: DEFAULT_FILE_MAX_BYTES,
            budget: MemoryBudget::unlimited(),
        }
    }
}

/// One encoded response: its bytes, media type and strong ETag.
#[derive(Clone, Debug)]
pub struct CachedTile {
    /// The encoded image.
    pub bytes: Bytes,
    /// Its media type, e.g. `image/jpeg`.
    pub media_type: &'static str,
    /// A strong ETag value with its quotes: the 64-bit FNV-1a hash of the bytes, in hex.
    pub etag: String,
}

impl CachedTile {
    /// Wraps encoded bytes, computing their ETag.
    pub fn new(bytes: Bytes, media_type: &'static str) -> CachedTile {
        let etag = format!("\"{:016x}\"", fnv1a(&[bytes.as_ref()]));
        CachedTile {
            bytes,
            media_type,
            etag,
        }
    }
}

/// Counters for `/metrics`. `bytes`, `entries` and `evictions` describe the backing tier: the
/// disk in `File` mode (the memory front holds copies of disk entries), memory otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered by any tier.
    pub hits: u64,
    /// Lookups answered by none.
    pub misses: u64,
    /// Tiles handed to `insert` (while caching is on).
    pub inserts: u64,
    /// Entries dropped to stay within the backing tier's bounds.
    pub evictions: u64,
    /// Bytes held by the backing tier.
    pub bytes: u64,
    /// Entries held by the backing tier.
    pub entries: u64,
}

/// What one tier reports about itself.
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    bytes: u64,
    entries: u64,
    evictions: u64,
}

/// The tile cache: cheap to clone, shared by all requests.
#[derive(Clone)]
pub struct TileCache {
    inner: Arc<Tiers>,
}

struct Tiers {
    memory: Option<MemoryCache>,
    /// The memory tier's capacity in the budget.
    _reserved: Reservation,
    disk: Option<DiskCache>,
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
}

impl TileCache {
    /// Opens the cache the config describes. In `File` mode this creates the folder, removes
    /// temporary files that dead processes left, and rebuilds the index by scanning it (sizes
    /// and mtimes), evicting down to the budget; it fails only when the folder cannot be
    /// created or listed (a configuration error worth stopping for).
    pub fn new(config: &CacheConfig) -> Result<TileCache> {
        let (memory, disk) = match config.mode {
            CacheMode::Disabled => (None, None),
            CacheMode::Memory => (memory_tier(config), None),
            CacheMode::File => (memory_tier(config), Some(disk_tier(config)?)),
        };
        let reserved = match memory {
            Some(_) => config.budget.reserve_fixed(
                config.memory_bytes,
                "the memory tile cache (CACHE_MEMORY_BYTES)",
            )?,
            None => Reservation::none(),
        };
        Ok(TileCache {
            inner: Arc::new(Tiers {
                memory,
                _reserved: reserved,
                disk,
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                inserts: AtomicU64::new(0),
            }),
        })
    }

    /// Finds the tile stored under `key`: memory first, then disk (a disk hit is copied into
    /// memory). In `File` mode a disk lookup reads one small file, blocking briefly.
    pub fn get(&self, key: &str) -> Option<CachedTile> {
        let tiers = &*self.inner;
        let found = tiers
            .find_in_memory(key)
            .or_else(|| tiers.find_on_disk(key));
        let counter = if found.is_some() {
            &tiers.hits
        } else {
            &tiers.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Stores `tile` under `key` in every tier. In `File` mode this writes one file (temporary
    /// name, then rename), blocking briefly; call it from the render thread that made the
    /// tile. Failures are logged, never returned.
    pub fn insert(&self, key: &str, tile: CachedTile) {
        let tiers = &*self.inner;
        if tiers.memory.is_none() && tiers.disk.is_none() {
            return;
        }
        tiers.inserts.fetch_add(1, Ordering::Relaxed);
        if let Some(disk) = &tiers.disk {
            disk.insert(key, &tile);
        }
        if let Some(memory) = &tiers.memory {
            memory.insert(key, tile);
        }
    }

    /// The counters, with the memory tier's pending bookkeeping applied first.
    pub fn stats(&self) -> CacheStats {
        let tiers = &*self.inner;
        let backing = match (&tiers.disk, &tiers.memory) {
            (Some(disk), _) => disk.usage(),
            (None, Some(memory)) => memory.usage(),
            (None, None) => Usage::default(),
        };
        CacheStats {
            hits: tiers.hits.load(Ordering::Relaxed),
            misses: tiers.misses.load(Ordering::Relaxed),
            inserts: tiers.inserts.load(Ordering::Relaxed),
            evictions: backing.evictions,
            bytes: backing.bytes,
            entries: backing.entries,
        }
    }
}

impl Tiers {
    fn find_in_memory(&self, key: &str) -> Option<CachedTile> {
        let tile = self.memory.as_ref()?.get(key)?;
        if let Some(disk) = &self.disk {
            disk.touch(key);
        }
        Some(tile)
    }

    fn find_on_disk(&self, key: &str) -> Option<CachedTile> {
        let tile = self.disk.as_ref()?.get(key)?;
        if let Some(memory) = &self.memory {
            memory.insert(key, tile.clone());
        }
        Some(tile)
    }
}

fn memory_tier(config: &CacheConfig) -> Option<MemoryCache> {
    MemoryCache::new(config.memory_bytes, config.memory_entries)
}

fn disk_tier(config: &CacheConfig) -> Result<DiskCache> {
    if config.file_dir.as_os_str().is_empty() {
        return Err(Error::unsupported("CACHE=file needs CACHE_FILE_DIR"));
    }
    DiskCache::open(&config.file_dir, config.file_max_bytes).map_err(|err| {
        tracing::error!(dir = %config.file_dir.display(), %err, "cannot open the tile cache folder");
        Error::Io(err)
    })
}

/// Locks a mutex, carrying on past a poisoning (every critical section here leaves its data
/// consistent before anything that could panic).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_from_their_setting_names() {
        assert_eq!("memory".parse::<CacheMode>().ok(), Some(CacheMode::Memory));
        assert_eq!(" File ".parse::<CacheMode>().ok(), Some(CacheMode::File));
        assert_eq!(
            "disabled".parse::<CacheMode>().ok(),
            Some(CacheMode::Disabled)
        );
        assert!("redis".parse::<CacheMode>().is_err());
    }

    #[test]
    fn etags_are_quoted_and_follow_the_bytes() {
        let a = CachedTile::new(Bytes::from_static(b"abc"), "image/png");
        let b = CachedTile::new(Bytes::from_static(b"abc"), "image/jpeg");
        let c = CachedTile::new(Bytes::from_static(b"abd"), "image/png");
        assert_eq!(a.etag, b.etag);
        assert_ne!(a.etag, c.etag);
        assert!(a.etag.starts_with('"') && a.etag.ends_with('"'));
        assert_eq!(a.etag.len(), 18);
    }

    #[test]
    fn file_mode_needs_a_folder() {
        let config = CacheConfig {
            mode: CacheMode::File,
            ..CacheConfig::default()
        };
        assert!(TileCache::new(&config).is_err());
    }

    #[test]
    fn disabled_keeps_nothing() {
        let config = CacheConfig {
            mode: CacheMode::Disabled,
            ..CacheConfig::default()
        };
        let cache = TileCache::new(&config).expect("a disabled cache opens");
        cache.insert("k", CachedTile::new(Bytes::from_static(b"x"), "image/png"));
        assert!(cache.get("k").is_none());
        let stats = cache.stats();
        assert_eq!((stats.inserts, stats.misses, stats.entries), (0, 1, 0));
    }
}
