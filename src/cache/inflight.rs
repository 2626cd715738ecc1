//! inflight: one run per key at a time; callers asking for a key already being made wait for
//! that run and share its result.
//!
//! It knows nothing of what is made (renders, HTTP, caches): the value is opaque and errors
//! are just values (use `V = Result<T, E>` with `E: Clone`, e.g. `Arc<Error>`). Nothing is
//! remembered after a run ends; caching its result is the caller's job.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::lock;

/// The runs in flight, by key.
pub struct Inflight<V: Clone + Send + Sync + 'static> {
    runs: Arc<Mutex<HashMap<String, watch::Receiver<Option<V>>>>>,
}

impl<V: Clone + Send + Sync + 'static> Default for Inflight<V> {
    fn default() -> Self {
        Inflight {
            runs: Arc::default(),
        }
    }
}

/// What a caller does for a key: lead a new run, or follow the one in flight (keeping its
/// own `make`, in case that run ends without a value).
enum Role<V, F> {
    Leader(JoinHandle<V>),
    Follower(watch::Receiver<Option<V>>, F),
}

impl<V: Clone + Send + Sync + 'static> Inflight<V> {
    /// Runs `make` for `key` unless a run for the same key is in flight, in which case waits
    /// for and returns that run's result. Exactly one `make` per key at a time; the entry is
    /// removed when the run finishes (success or error), so a later call runs again.
    ///
    /// Cancellation-safe: the run is a spawned task (so this must be called within a tokio
    /// runtime), and dropping any caller, the first included, does not stop it. If a run's
    /// future panics, the caller that started it gets the panic and the others start over
    /// with their own `make`.
    pub async fn run<F, Fut>(&self, key: String, make: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        let mut make = make;
        loop {
            match self.join_or_start(&key, make) {
                Role::Leader(handle) => return lead(handle).await,
                Role::Follower(rx, unused) => {
                    if let Some(value) = follow(rx).await {
                        return value;
                    }
                    make = unused;
                }
            }
        }
    }

    /// How many keys have a run in flight.
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }

    /// Joins the run in flight for `key`, or starts one with `make`.
    fn join_or_start<F, Fut>(&self, key: &str, make: F) -> Role<V, F>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        let mut runs = self.lock();
        if let Some(rx) = runs.get(key) {
            return Role::Follower(rx.clone(), make);
        }
        let (tx, rx) = watch::channel(None);
        runs.insert(key.to_owned(), rx);
        drop(runs);
        // Created before `make` runs, so that even a panicking `make` removes the entry.
        let done = Done {
            runs: Arc::clone(&self.runs),
            key: key.to_owned(),
        };
        let future = make();
        Role::Leader(tokio::spawn(async move {
            let value = future.await;
            drop(done);
            tx.send_replace(Some(value.clone()));
            value
        }))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, watch::Receiver<Option<V>>>> {
        lock(&self.runs)
    }
}

/// Awaits the run this caller started, passing on its panic.
async fn lead<V>(handle: JoinHandle<V>) -> V {
    match handle.await {
        Ok(value) => value,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // Cancelled: only when the runtime shuts down, which drops this future too.
        Err(_) => std::future::pending().await,
    }
}

/// Awaits another caller's run; `None` when it ended without a value (it panicked).
async fn follow<V: Clone>(mut rx: watch::Receiver<Option<V>>) -> Option<V> {
    let value = rx.wait_for(Option::is_some).await.ok()?;
    value.clone()
}

/// Removes a run's entry when the run ends, however it ends (a panic included).
struct Done<V> {
    runs: Arc<Mutex<HashMap<String, watch::Receiver<Option<V>>>>>,
    key: String,
}

impl<V> Drop for Done<V> {
    fn drop(&mut self) {
        lock(&self.runs).remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_finished_run_is_forgotten() {
        let inflight = Inflight::<u32>::default();
        assert_eq!(inflight.run("k".into(), || async { 1 }).await, 1);
        assert_eq!(inflight.in_flight(), 0);
        assert_eq!(inflight.run("k".into(), || async { 2 }).await, 2);
    }

    #[tokio::test]
    async fn followers_of_a_panicked_run_start_over() {
        let inflight = Arc::new(Inflight::<u32>::default());
        let (release, hold) = tokio::sync::oneshot::channel::<()>();
        let leader = {
            let inflight = Arc::clone(&inflight);
            tokio::spawn(async move {
                inflight
                    .run("k".into(), || async move {
                        let _ = hold.await;
                        panic!("render failed");
                    })
                    .await
            })
        };
        while inflight.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        let follower = {
            let inflight = Arc::clone(&inflight);
            tokio::spawn(async move { inflight.run("k".into(), || async { 7 }).await })
        };
        tokio::task::yield_now().await;
        let _ = release.send(());
        assert!(leader.await.is_err_and(|err| err.is_panic()));
        assert_eq!(follower.await.ok(), Some(7));
    }
}
