//! The tile caches, in-flight coalescing and the render pool, through their public API.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gigatile::cache::{CacheConfig, CacheMode, CachedTile, Inflight, TileCache};
use gigatile::pool::{PoolError, Priority, RenderPool};
use gigatile::pyramid::store::fnv1a;

/// A folder removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("gigatile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tile(fill: u8, len: usize) -> CachedTile {
    CachedTile::new(Bytes::from(vec![fill; len]), "image/jpeg")
}

fn memory_cache(bytes: u64, entries: u64) -> TileCache {
    let config = CacheConfig {
        mode: CacheMode::Memory,
        memory_bytes: bytes,
        memory_entries: entries,
        ..CacheConfig::default()
    };
    TileCache::new(&config).expect("a memory cache opens")
}

/// A file cache without a memory front, so that every lookup reaches the disk.
fn file_cache(dir: &Path, max_bytes: u64) -> TileCache {
    let config = CacheConfig {
        mode: CacheMode::File,
        memory_bytes: 0,
        file_dir: dir.to_owned(),
        file_max_bytes: max_bytes,
        ..CacheConfig::default()
    };
    TileCache::new(&config).expect("a file cache opens")
}

/// Where the file cache keeps `key` (its documented layout).
fn entry_path(dir: &Path, key: &str) -> PathBuf {
    let hex = format!("{:016x}", fnv1a(&[key.as_bytes()]));
    dir.join(&hex[..1]).join(&hex[1..3]).join(hex)
}

#[test]
fn memory_hits_and_misses() {
    let cache = memory_cache(1 << 20, 100);
    assert!(cache.get("a").is_none());
    cache.insert("a", tile(1, 100));
    let hit = cache.get("a").expect("a hit");
    assert_eq!(hit.bytes.len(), 100);
    assert_eq!(hit.media_type, "image/jpeg");
    let stats = cache.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.inserts, stats.entries),
        (1, 1, 1, 1)
    );
    assert_eq!(stats.bytes, 101);
}

#[test]
fn memory_evicts_by_bytes_and_by_count() {
    let by_bytes = memory_cache(10_000, 1_000);
    let by_count = memory_cache(1 << 30, 5);
    for i in 0..20u8 {
        by_bytes.insert(&format!("k{i:02}"), tile(i, 996));
        by_count.insert(&format!("k{i:02}"), tile(i, 10));
    }
    let stats = by_bytes.stats();
    assert!(stats.bytes <= 10_000, "{stats:?}");
    assert!(stats.evictions >= 10, "{stats:?}");
    let stats = by_count.stats();
    assert!(stats.entries <= 5, "{stats:?}");
    assert!(stats.evictions >= 15, "{stats:?}");
}

#[test]
fn memory_evicts_the_least_recently_used() {
    let cache = memory_cache(3 * 1_001, 1_000);
    for key in ["a", "b", "c"] {
        cache.insert(key, tile(0, 1_000));
    }
    cache.stats();
    assert!(cache.get("a").is_some());
    cache.insert("d", tile(0, 1_000));
    cache.stats();
    assert!(cache.get("a").is_some());
    assert!(cache.get("b").is_none());
}

#[test]
fn etags_follow_the_bytes() {
    assert_eq!(tile(1, 10).etag, tile(1, 10).etag);
    assert_ne!(tile(1, 10).etag, tile(2, 10).etag);
    assert_ne!(tile(1, 10).etag, tile(1, 11).etag);
}

#[test]
fn file_cache_persists_across_restarts() {
    let dir = TempDir::new("cache-persists");
    let original = tile(9, 5_000);
    file_cache(&dir.0, 1 << 20).insert("img/1/z3", original.clone());
    let reopened = file_cache(&dir.0, 1 << 20);
    assert_eq!(reopened.stats().entries, 1);
    let found = reopened.get("img/1/z3").expect("kept across a restart");
    assert_eq!(found.bytes, original.bytes);
    assert_eq!(found.etag, original.etag);
    assert_eq!(found.media_type, "image/jpeg");
    assert!(reopened.get("img/1/z4").is_none());
}

#[test]
fn file_cache_evicts_the_least_recently_used_under_its_limit() {
    let dir = TempDir::new("cache-lru");
    let limit = 3_200;
    let cache = file_cache(&dir.0, limit);
    for key in ["a", "b", "c"] {
        cache.insert(key, tile(0, 1_000));
    }
    assert!(cache.get("a").is_some());
    cache.insert("d", tile(0, 1_000));
    let stats = cache.stats();
    assert!(stats.bytes <= limit, "{stats:?}");
    assert_eq!((stats.entries, stats.evictions), (3, 1));
    assert!(cache.get("a").is_some());
    assert!(cache.get("b").is_none());
    assert!(!entry_path(&dir.0, "b").exists());
    // A smaller budget at startup evicts down to it.
    drop(cache);
    let smaller = file_cache(&dir.0, 2_200);
    assert_eq!(smaller.stats().entries, 2);
}

#[test]
fn file_cache_never_reads_half_written_files() {
    let dir = TempDir::new("cache-torn");
    let cache = file_cache(&dir.0, 1 << 20);
    cache.insert("whole", tile(1, 1_000));
    cache.insert("torn", tile(2, 1_000));
    drop(cache);
    // A crash mid-write: a temporary of a dead process holding a whole entry...
    let whole = entry_path(&dir.0, "whole");
    let name = whole.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let temp = whole.with_file_name(format!(".{name}.tmp-4000000000-0"));
    std::fs::rename(&whole, &temp).expect("rename");
    // ...and a file cut short (no rename ever lands one, but a crash without fsync may).
    let torn = entry_path(&dir.0, "torn");
    let data = std::fs::read(&torn).expect("read");
    std::fs::write(&torn, &data[..data.len() / 2]).expect("write");

    let cache = file_cache(&dir.0, 1 << 20);
    assert!(!temp.exists(), "stale temporaries are removed at startup");
    assert!(cache.get("whole").is_none());
    assert!(cache.get("torn").is_none());
    assert!(!torn.exists(), "a torn file is removed when found");
    assert_eq!(cache.stats().entries, 0);
}

#[test]
fn file_cache_survives_an_unwritable_folder() {
    let dir = TempDir::new("cache-unwritable");
    let config = CacheConfig {
        mode: CacheMode::File,
        file_dir: dir.0.clone(),
        ..CacheConfig::default()
    };
    let fronted = TileCache::new(&config).expect("opens");
    let disk_only = file_cache(&dir.0, 1 << 20);
    // The folder turns into a file: every write below it fails, even for root.
    std::fs::remove_dir_all(&dir.0).expect("remove");
    std::fs::write(&dir.0, b"not a folder").expect("write");
    for cache in [&fronted, &disk_only] {
        cache.insert("k", tile(3, 100));
        assert_eq!(cache.stats().entries, 0);
    }
    let served = fronted.get("k").expect("the memory front still serves");
    assert_eq!(served.bytes.len(), 100);
    assert!(disk_only.get("k").is_none());
}

async fn wait_until(what: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while !what() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the condition holds within 5 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn inflight_runs_one_make_for_many_callers() {
    let inflight = Arc::new(Inflight::<u32>::default());
    let runs = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let (inflight, runs) = (Arc::clone(&inflight), Arc::clone(&runs));
            tokio::spawn(async move {
                inflight
                    .run("key".into(), || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        42
                    })
                    .await
            })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.ok(), Some(42));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(inflight.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn inflight_runs_different_keys_in_parallel() {
    let inflight = Inflight::<u32>::default();
    let both = Arc::new(tokio::sync::Barrier::new(2));
    let run = |key: &str, value| {
        let both = Arc::clone(&both);
        inflight.run(key.into(), move || async move {
            both.wait().await;
            value
        })
    };
    let joined = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(run("a", 1), run("b", 2))
    });
    assert_eq!(joined.await.ok(), Some((1, 2)));
}

#[tokio::test(flavor = "multi_thread")]
async fn inflight_survives_its_first_caller_being_dropped() {
    let inflight = Arc::new(Inflight::<u32>::default());
    let runs = Arc::new(AtomicUsize::new(0));
    let call = |value| {
        let (inflight, runs) = (Arc::clone(&inflight), Arc::clone(&runs));
        tokio::spawn(async move {
            inflight
                .run("key".into(), || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    value
                })
                .await
        })
    };
    let first = call(1);
    wait_until(|| inflight.in_flight() == 1).await;
    let others: Vec<_> = (0..5).map(|_| call(2)).collect();
    first.abort();
    for other in others {
        assert_eq!(other.await.ok(), Some(1));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn inflight_shares_errors_then_forgets_them() {
    let inflight = Arc::new(Inflight::<Result<u32, String>>::default());
    let runs = Arc::new(AtomicUsize::new(0));
    let call = || {
        let (inflight, runs) = (Arc::clone(&inflight), Arc::clone(&runs));
        tokio::spawn(async move {
            inflight
                .run("key".into(), || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err("corrupt".to_owned())
                })
                .await
        })
    };
    let callers: Vec<_> = (0..10).map(|_| call()).collect();
    for caller in callers {
        assert_eq!(caller.await.ok(), Some(Err("corrupt".to_owned())));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(call().await.is_ok_and(|answer| answer.is_err()));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

/// Occupies the pool's only worker until the returned sender is dropped or sent to.
async fn block_worker(pool: &RenderPool) -> std::sync::mpsc::Sender<()> {
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let blocker = pool.clone();
    tokio::spawn(async move {
        blocker
            .run(Priority::User, Duration::from_secs(5), move || {
                let _ = hold.recv();
            })
            .await
    });
    wait_until(|| pool.stats().running == 1).await;
    release
}

#[tokio::test(flavor = "multi_thread")]
async fn pool_runs_user_jobs_before_queued_background_jobs() {
    let pool = RenderPool::new(1, 8);
    let release = block_worker(&pool).await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut jobs = Vec::new();
    for (n, priority) in [
        Priority::Background,
        Priority::Background,
        Priority::User,
        Priority::User,
    ]
    .into_iter()
    .enumerate()
    {
        let (pool2, order) = (pool.clone(), Arc::clone(&order));
        jobs.push(tokio::spawn(async move {
            pool2
                .run(priority, Duration::from_secs(5), move || {
                    order.lock().map(|mut o| o.push(priority)).ok();
                })
                .await
        }));
        wait_until(|| pool.stats().queued == n as u64 + 1).await;
    }
    drop(release);
    for job in jobs {
        assert!(job.await.is_ok_and(|answer| answer.is_ok()));
    }
    let order = order.lock().map(|o| o.clone()).unwrap_or_default();
    assert_eq!(
        order,
        [
            Priority::User,
            Priority::User,
            Priority::Background,
            Priority::Background
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pool_refuses_at_once_when_full() {
    let pool = RenderPool::new(1, 2);
    let release = block_worker(&pool).await;
    let queued: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(
                async move { pool.run(Priority::User, Duration::from_secs(5), || 1).await },
            )
        })
        .collect();
    wait_until(|| pool.stats().queued == 2).await;
    let at_once = Duration::from_millis(100);
    let user = tokio::time::timeout(at_once, pool.run(Priority::User, at_once, || 1)).await;
    assert!(matches!(user, Ok(Err(PoolError::Overloaded))));
    let background =
        tokio::time::timeout(at_once, pool.run(Priority::Background, at_once, || 1)).await;
    assert!(matches!(background, Ok(Err(PoolError::Overloaded))));
    assert_eq!(pool.stats().rejected, 2);
    drop(release);
    for job in queued {
        assert!(job.await.is_ok_and(|answer| answer.is_ok()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pool_drops_queued_jobs_past_their_deadline() {
    let pool = RenderPool::new(1, 4);
    let release = block_worker(&pool).await;
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let late = pool
        .run(Priority::User, Duration::from_millis(30), move || {
            flag.store(true, Ordering::SeqCst)
        })
        .await;
    assert!(matches!(late, Err(PoolError::DeadlineExceeded)));
    drop(release);
    let after = pool.run(Priority::User, Duration::from_secs(5), || 2).await;
    assert!(matches!(after, Ok(2)));
    assert!(!ran.load(Ordering::SeqCst));
    let stats = pool.stats();
    assert_eq!((stats.deadline_exceeded, stats.queued), (1, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn pool_survives_a_panicking_job() {
    let pool = RenderPool::new(1, 4);
    let panicked = pool
        .run(Priority::User, Duration::from_secs(5), || -> u32 {
            panic!("a render bug")
        })
        .await;
    assert!(matches!(panicked, Err(PoolError::Panicked)));
    let next = pool.run(Priority::User, Duration::from_secs(5), || 3).await;
    assert!(matches!(next, Ok(3)));
    let stats = pool.stats();
    assert_eq!((stats.panicked, stats.completed, stats.running), (1, 1, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn pool_shutdown_lets_running_jobs_finish_and_joins() {
    let pool = RenderPool::new(2, 4);
    let finished = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&finished);
    let running = {
        let pool = pool.clone();
        tokio::spawn(async move {
            pool.run(Priority::User, Duration::from_secs(5), move || {
                std::thread::sleep(Duration::from_millis(100));
                flag.store(true, Ordering::SeqCst);
            })
            .await
        })
    };
    wait_until(|| pool.stats().running == 1).await;
    let stopper = pool.clone();
    tokio::task::spawn_blocking(move || stopper.shutdown())
        .await
        .expect("shutdown returns");
    assert!(
        finished.load(Ordering::SeqCst),
        "joined after the job ended"
    );
    assert!(running.await.is_ok_and(|answer| answer.is_ok()));
    let refused = pool.run(Priority::User, Duration::from_secs(5), || 4).await;
    assert!(matches!(refused, Err(PoolError::ShuttingDown)));
}
