//! memory: the process's one memory budget (`MEMORY_LIMIT`).
//!
//! Every large allocation draws from it before it is made: the memory tile cache (its whole
//! capacity, once, at start), whole-image decodes of sources that cannot stream, pyramid builds'
//! band buffers, TIFF chunk decodes and render buffers. A [`Reservation`] gives its bytes back
//! when dropped, so the holder of the buffer holds the reservation beside it.
//!
//! Work that does not fit now waits (a bounded time, on the calling thread) and is then refused
//! with [`Error::Busy`] (a request answers 503 with Retry-After, a build is put back and tried
//! again later); work that could never fit is refused at once with [`Error::TooLarge`]: more than
//! the budget leaves beside the fixed reservations and what the asking thread already holds.
//! Allocations under [`SMALL`] are not counted: with a bounded number of threads they are part of
//! the documented constant above the budget (README, "Memory budget").
//!
//! It knows nothing of what the bytes are for, of files or of HTTP.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Allocations below this are not reserved (they are covered by the constant overhead).
pub const SMALL: u64 = 1 << 20;

/// A shared byte budget; cheap to clone.
#[derive(Clone)]
pub struct MemoryBudget(Arc<Inner>);

struct Inner {
    limit: u64,
    state: Mutex<State>,
    freed: Condvar,
    refused: AtomicU64,
}

#[derive(Default)]
struct State {
    used: u64,
    peak: u64,
    /// Of `used`, what is held for the process's life (the memory cache's capacity).
    fixed: u64,
    /// Of `used`, what each thread holds: work that asks for more than the budget leaves
    /// beside its own holdings could wait for ever, so it is refused at once.
    held: HashMap<ThreadId, u64>,
}

/// What `/metrics` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUsage {
    /// The budget, in bytes (`u64::MAX` when unlimited).
    pub limit: u64,
    /// Bytes reserved now.
    pub used: u64,
    /// The most bytes reserved at once since start.
    pub peak: u64,
    /// Reservations refused (too large, or still not fitting after their wait).
    pub refused: u64,
}

/// Bytes drawn from a budget, given back on drop.
#[must_use = "the bytes are given back as soon as the reservation is dropped"]
pub struct Reservation {
    budget: Option<MemoryBudget>,
    bytes: u64,
    /// The thread that drew the bytes (`None` for a fixed reservation).
    owner: Option<ThreadId>,
}

impl std::fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("limit", &self.0.limit)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> MemoryBudget {
        MemoryBudget(Arc::new(Inner {
            limit,
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
            refused: AtomicU64::new(0),
        }))
    }

    /// A budget that never refuses (command-line tools, tests); it still counts.
    pub fn unlimited() -> MemoryBudget {
        MemoryBudget::new(u64::MAX)
    }

    /// The budget in bytes.
    pub fn limit(&self) -> u64 {
        self.0.limit
    }

    /// Draws `bytes` for `what` (named in errors), waiting up to `wait` for others to give
    /// bytes back. Blocking: call on a worker thread, never on the async runtime.
    pub fn reserve(&self, bytes: u64, wait: Duration, what: &str) -> Result<Reservation> {
        if bytes < SMALL {
            return Ok(Reservation::none());
        }
        let until = Instant::now() + wait;
        let owner = std::thread::current().id();
        let mut state = self.lock();
        let room = self.0.limit - state.fixed;
        let own = state.held.get(&owner).copied().unwrap_or(0);
        if bytes.saturating_add(own) > room {
            self.0.refused.fetch_add(1, Ordering::Relaxed);
            let beside = if own > 0 {
                format!(" beside the {} MiB its work holds already", own >> 20)
            } else {
                String::new()
            };
            return Err(Error::too_large(format!(
                "{what} needs {} MiB{beside}, more than the memory budget leaves for work \
                 ({} MiB of MEMORY_LIMIT's {} MiB)",
                bytes >> 20,
                room >> 20,
                self.0.limit >> 20
            )));
        }
        loop {
            if state.used.saturating_add(bytes) <= self.0.limit {
                state.used += bytes;
                state.peak = state.peak.max(state.used);
                *state.held.entry(owner).or_default() += bytes;
                return Ok(Reservation {
                    budget: Some(self.clone()),
                    bytes,
                    owner: Some(owner),
                });
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.0.refused.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Busy(format!(
                    "{what} needs {} MiB of memory and the budget (MEMORY_LIMIT) is in use",
                    bytes >> 20
                )));
            }
            state = self
                .0
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Draws `bytes` for the life of the process (a cache's capacity), at once or not at all:
    /// at most half the budget, so that work always has room.
    pub fn reserve_fixed(&self, bytes: u64, what: &str) -> Result<Reservation> {
        let mut state = self.lock();
        if bytes > (self.0.limit / 2).saturating_sub(state.fixed) {
            return Err(Error::too_large(format!(
                "{what} of {} MiB is more than half the memory budget (MEMORY_LIMIT, {} MiB)",
                bytes >> 20,
                self.0.limit >> 20
            )));
        }
        state.used += bytes;
        state.fixed += bytes;
        state.peak = state.peak.max(state.used);
        Ok(Reservation {
            budget: Some(self.clone()),
            bytes,
            owner: None,
        })
    }

    /// What is in use now.
    pub fn usage(&self) -> MemoryUsage {
        let state = self.lock();
        MemoryUsage {
            limit: self.0.limit,
            used: state.used,
            peak: state.peak,
            refused: self.0.refused.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn give_back(&self, bytes: u64, owner: Option<ThreadId>) {
        let mut state = self.lock();
        state.used -= bytes;
        match owner {
            None => state.fixed -= bytes,
            Some(owner) => {
                if let Some(held) = state.held.get_mut(&owner) {
                    *held -= bytes;
                    if *held == 0 {
                        state.held.remove(&owner);
                    }
                }
            }
        }
        drop(state);
        self.0.freed.notify_all();
    }
}

impl Reservation {
    /// A reservation of nothing.
    pub fn none() -> Reservation {
        Reservation {
            budget: None,
            bytes: 0,
            owner: None,
        }
    }

    /// The bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Keeps `bytes` of the reservation (at most what it holds) and gives the rest back; under
    /// [`SMALL`], gives everything back.
    pub fn shrink_to(&mut self, bytes: u64) {
        let keep = if bytes < SMALL {
            0
        } else {
            bytes.min(self.bytes)
        };
        if let Some(budget) = &self.budget {
            budget.give_back(self.bytes - keep, self.owner);
        }
        self.bytes = keep;
        if keep == 0 {
            self.budget = None;
        }
    }
}

/// `data` as shared bytes that hold their share of the budget until the last clone is dropped
/// (a response still being sent, a cache entry): the reservation shrinks to `data`'s length.
pub fn hold(data: Vec<u8>, mut memory: Reservation) -> bytes::Bytes {
    memory.shrink_to(data.len() as u64);
    if memory.bytes() == 0 {
        return bytes::Bytes::from(data);
    }
    bytes::Bytes::from_owner(Held {
        data,
        _memory: memory,
    })
}

/// Bytes and their reservation, the owner behind [`hold`]'s `Bytes`.
struct Held {
    data: Vec<u8>,
    _memory: Reservation,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(budget) = self.budget.take() {
            budget.give_back(self.bytes, self.owner);
        }
    }
}

/// Makes the allocator give freed large buffers back to the system at once, so that resident
/// memory follows the budget's use instead of its high-water mark: glibc otherwise raises its
/// mmap threshold after each large free (up to 32 MiB) and keeps later large buffers in arenas
/// it rarely trims. Call once at start, before threads are spawned.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // M_MMAP_THRESHOLD = -3, M_ARENA_MAX = -8 (glibc's malloc.h).
        const M_MMAP_THRESHOLD: i32 = -3;
        const M_ARENA_MAX: i32 = -8;
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: mallopt only changes allocator parameters; it is called before other threads
        // allocate.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 1 << 20);
            mallopt(M_ARENA_MAX, 4);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_given_back_on_drop() {
        let budget = MemoryBudget::new(10 << 20);
        let a = budget.reserve(6 << 20, Duration::ZERO, "a").unwrap();
        assert_eq!(budget.usage().used, 6 << 20);
        let other = budget.clone();
        let refused = std::thread::spawn(move || {
            other
                .reserve(5 << 20, Duration::from_millis(10), "b")
                .map(|r| r.bytes())
        })
        .join()
        .unwrap();
        assert!(matches!(refused, Err(Error::Busy(_))));
        drop(a);
        let b = budget.reserve(5 << 20, Duration::ZERO, "b").unwrap();
        assert_eq!(b.bytes(), 5 << 20);
        let usage = budget.usage();
        assert_eq!(
            (usage.used, usage.peak, usage.refused),
            (5 << 20, 6 << 20, 1)
        );
    }

    #[test]
    fn what_can_never_fit_is_too_large_and_small_is_free() {
        let budget = MemoryBudget::new(4 << 20);
        assert!(matches!(
            budget.reserve(5 << 20, Duration::from_secs(60), "x"),
            Err(Error::TooLarge(_))
        ));
        let small = budget.reserve(SMALL - 1, Duration::ZERO, "s").unwrap();
        assert_eq!((small.bytes(), budget.usage().used), (0, 0));
    }

    #[test]
    fn work_that_cannot_fit_beside_its_own_holdings_is_refused_at_once() {
        let budget = MemoryBudget::new(10 << 20);
        let first = budget.reserve(6 << 20, Duration::ZERO, "band").unwrap();
        // Waiting could never help: the 6 MiB are this thread's own.
        assert!(matches!(
            budget.reserve(5 << 20, Duration::from_secs(60), "chunk"),
            Err(Error::TooLarge(_))
        ));
        drop(first);
        assert_eq!(budget.usage().used, 0);
    }

    #[test]
    fn held_bytes_keep_their_share_until_the_last_clone_is_dropped() {
        let budget = MemoryBudget::new(64 << 20);
        let memory = budget.reserve(16 << 20, Duration::ZERO, "render").unwrap();
        let bytes = hold(vec![7; 2 << 20], memory);
        let clone = bytes.clone();
        assert_eq!(budget.usage().used, 2 << 20);
        drop(bytes);
        assert_eq!(budget.usage().used, 2 << 20);
        drop(clone);
        assert_eq!(budget.usage().used, 0);
        let small = hold(
            vec![1; 10],
            budget.reserve(4 << 20, Duration::ZERO, "r").unwrap(),
        );
        assert_eq!((small.len(), budget.usage().used), (10, 0));
    }

    #[test]
    fn fixed_reservations_shrink_what_work_may_ask_for() {
        let budget = MemoryBudget::new(8 << 20);
        assert!(budget.reserve_fixed(5 << 20, "cache").is_err());
        let cache = budget.reserve_fixed(4 << 20, "cache").unwrap();
        assert!(matches!(
            budget.reserve(5 << 20, Duration::from_secs(60), "x"),
            Err(Error::TooLarge(_))
        ));
        drop(cache);
        assert!(budget.reserve(5 << 20, Duration::ZERO, "x").is_ok());
    }

    #[test]
    fn a_waiter_gets_the_bytes_another_thread_gives_back() {
        let budget = MemoryBudget::new(8 << 20);
        let held = budget.reserve(8 << 20, Duration::ZERO, "held").unwrap();
        let waiter = {
            let budget = budget.clone();
            std::thread::spawn(move || {
                budget
                    .reserve(4 << 20, Duration::from_secs(30), "waiter")
                    .map(|r| r.bytes())
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        drop(held);
        assert_eq!(waiter.join().unwrap().unwrap(), 4 << 20);
    }
}
