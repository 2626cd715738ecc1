//! memory: the in-RAM tier, an LRU of encoded tiles bounded by bytes and by count (moka).
//!
//! It knows no files, HTTP or pixels. moka bounds one weight, so both limits are folded into
//! it: an entry weighs its key and bytes, but never less than the budget's share per entry
//! (`max_bytes / max_entries`). Total weight within `max_bytes` then implies at most
//! `max_entries` entries; the price is that a cache full of tiles smaller than that share
//! holds fewer bytes than `max_bytes` (it is then bounded by count, as configured).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use moka::notification::RemovalCause;
use moka::policy::EvictionPolicy;
use moka::sync::Cache;

use super::{CachedTile, Usage};

/// A bytes- and count-bounded LRU of tiles.
pub(crate) struct MemoryCache {
    cache: Cache<String, CachedTile>,
    counters: Arc<Counters>,
}

/// Kept up to date by inserts and moka's removal listener.
#[derive(Default)]
struct Counters {
    bytes: AtomicU64,
    evictions: AtomicU64,
}

impl MemoryCache {
    /// A cache within `max_bytes` and `max_entries`; `None` when either is 0.
    pub(crate) fn new(max_bytes: u64, max_entries: u64) -> Option<MemoryCache> {
        if max_bytes == 0 || max_entries == 0 {
            return None;
        }
        let floor = max_bytes / max_entries;
        let counters = Arc::new(Counters::default());
        let listener = Arc::clone(&counters);
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .eviction_policy(EvictionPolicy::lru())
            .weigher(move |key: &String, tile: &CachedTile| weight(size(key, tile).max(floor)))
            .eviction_listener(move |key: Arc<String>, tile: CachedTile, cause| {
                listener.removed(size(&key, &tile), cause);
            })
            .build();
        Some(MemoryCache { cache, counters })
    }

    pub(crate) fn get(&self, key: &str) -> Option<CachedTile> {
        self.cache.get(key)
    }

    pub(crate) fn insert(&self, key: &str, tile: CachedTile) {
        let key = key.to_owned();
        self.counters
            .bytes
            .fetch_add(size(&key, &tile), Ordering::Relaxed);
        self.cache.insert(key, tile);
    }

    /// Applies moka's pending bookkeeping, then reports.
    pub(crate) fn usage(&self) -> Usage {
        self.cache.run_pending_tasks();
        Usage {
            bytes: self.counters.bytes.load(Ordering::Relaxed),
            entries: self.cache.entry_count(),
            evictions: self.counters.evictions.load(Ordering::Relaxed),
        }
    }
}

impl Counters {
    fn removed(&self, size: u64, cause: RemovalCause) {
        self.bytes.fetch_sub(size, Ordering::Relaxed);
        if cause.was_evicted() {
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What an entry costs: its key and its bytes.
fn size(key: &str, tile: &CachedTile) -> u64 {
    (key.len() + tile.bytes.len()) as u64
}

/// moka weighs in `u32`; a tile of 4 GiB or more weighs the most it can.
fn weight(size: u64) -> u32 {
    u32::try_from(size).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn tile(len: usize) -> CachedTile {
        CachedTile::new(Bytes::from(vec![7u8; len]), "image/jpeg")
    }

    #[test]
    fn evicts_by_bytes() {
        let cache = MemoryCache::new(10_000, 1_000).expect("bounded");
        for i in 0..20 {
            cache.insert(&format!("k{i:02}"), tile(997));
        }
        let usage = cache.usage();
        assert!(usage.bytes <= 10_000, "{} bytes", usage.bytes);
        assert!(usage.evictions >= 10, "{} evictions", usage.evictions);
        assert!(cache.get("k19").is_some());
    }

    #[test]
    fn evicts_by_count() {
        let cache = MemoryCache::new(1 << 30, 10).expect("bounded");
        for i in 0..30 {
            cache.insert(&format!("k{i:02}"), tile(10));
        }
        let usage = cache.usage();
        assert!(usage.entries <= 10, "{} entries", usage.entries);
        assert_eq!(usage.bytes, usage.entries * 13);
    }

    #[test]
    fn a_zero_bound_means_no_memory_tier() {
        assert!(MemoryCache::new(0, 10).is_none());
        assert!(MemoryCache::new(10, 0).is_none());
    }
}
