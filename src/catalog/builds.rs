//! catalog::builds: the bounded build queue and its workers.
//!
//! At most `max_concurrent_builds` workers take jobs, smallest image first (a small image is
//! ready soon, and one huge image does not hold the rest back). A job names an id and a
//! version; a worker builds only if the catalogue still wants that exact version, under a
//! fresh cancel flag and progress counter stored in the record (the token: whoever cancels —
//! shutdown, delete, a changed file, purge — replaces or drops it). A build error marks the
//! image Failed with the error's message (which never holds a server path); a panic inside a
//! build is caught and reported as a failure, so a worker thread never dies.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::geometry::Level;
use crate::pyramid::build::Progress;
use crate::pyramid::levels::Pyramid;
use crate::pyramid::store::SourceVersion;

use super::{evict, lock, ImageStatus, Inner};

/// One image version to build.
#[derive(Debug, Clone)]
pub(super) struct Job {
    pub id: String,
    pub version: SourceVersion,
    pub pixels: u64,
}

/// A running build: what cancels it and how far it has got.
#[derive(Debug, Clone)]
pub(super) struct BuildSlot {
    pub cancel: Arc<AtomicBool>,
    pub progress: Progress,
}

/// Jobs waiting for a worker; `pop` blocks until one comes or the queue stops.
#[derive(Debug, Default)]
pub(super) struct BuildQueue {
    state: Mutex<QueueState>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct QueueState {
    jobs: Vec<Job>,
    stopped: bool,
}

impl BuildQueue {
    pub fn push(&self, job: Job) {
        lock(&self.state).jobs.push(job);
        self.wake.notify_one();
    }

    /// The smallest waiting job; `None` once stopped.
    pub fn pop(&self) -> Option<Job> {
        let mut state = lock(&self.state);
        loop {
            if state.stopped {
                return None;
            }
            let smallest = (0..state.jobs.len()).min_by_key(|&i| state.jobs[i].pixels);
            if let Some(i) = smallest {
                return Some(state.jobs.swap_remove(i));
            }
            state = self
                .wake
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    pub fn stop(&self) {
        let mut state = lock(&self.state);
        state.stopped = true;
        state.jobs.clear();
        self.wake.notify_all();
    }
}

/// A worker: builds jobs until the queue stops.
pub(super) fn work(inner: &Inner) {
    while let Some(job) = inner.queue.pop() {
        if let Some(slot) = inner.start_build(&job) {
            let retry = build(inner, &job, &slot);
            inner.evict();
            if retry {
                // The memory budget was in use: let other work finish, then try again.
                std::thread::sleep(BUSY_RETRY);
                inner.queue.push(job);
            }
        }
    }
}

/// How long a build refused by the memory budget waits before it is queued again.
const BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs one build; true when it should be tried again later.
fn build(inner: &Inner, job: &Job, slot: &BuildSlot) -> bool {
    let Some(path) = inner.find_path(&job.id) else {
        return false;
    };
    let stem = inner.store.stem(&job.id, job.version);
    if let Err(e) = super::evict::write_marker(inner.store.dir(), &stem, &job.id) {
        tracing::warn!(id = %job.id, error = %e, "pyramid marker not written");
    }
    tracing::info!(id = %job.id, "building pyramid");
    let mut on_preview = |preview: Pyramid| inner.preview_ready(&job.id, slot, preview);
    let result = catch_unwind(AssertUnwindSafe(|| {
        inner.store.build(
            &job.id,
            &path,
            &slot.progress,
            &slot.cancel,
            &mut on_preview,
        )
    }))
    .unwrap_or_else(|_| Err(crate::Error::corrupt("the image could not be decoded")));
    inner.finish_build(job, slot, result)
}

impl Inner {
    /// Claims a queued job: `None` when the image or version is no longer wanted.
    pub(super) fn start_build(&self, job: &Job) -> Option<BuildSlot> {
        if self.stopping.load(Ordering::SeqCst) {
            return None;
        }
        let mut records = lock(&self.records);
        let record = records.get_mut(&job.id)?;
        if record.entry.version != job.version || !record.queued || record.build.is_some() {
            return None;
        }
        record.queued = false;
        let slot = BuildSlot {
            cancel: Arc::new(AtomicBool::new(false)),
            progress: crate::pyramid::build::Progress::new(),
        };
        record.build = Some(slot.clone());
        Some(slot)
    }

    pub(super) fn find_path(&self, id: &str) -> Option<PathBuf> {
        lock(&self.records).get(id).map(|r| r.entry.path.clone())
    }

    pub(super) fn preview_ready(&self, id: &str, slot: &BuildSlot, preview: Pyramid) {
        let mut records = lock(&self.records);
        if let Some(record) = records.get_mut(id).filter(|r| r.owns(slot)) {
            record.entry.ready_level = preview.finest_level();
            record.pyramid = Some(preview);
            self.bump();
        }
    }

    /// Applies a build's outcome if the build is still the one wanted; otherwise removes what
    /// it left, unless the image still wants that version (purge queued it again). True when
    /// the memory budget refused the build, which is then queued again (by the caller).
    pub(super) fn finish_build(
        &self,
        job: &Job,
        slot: &BuildSlot,
        result: Result<Pyramid>,
    ) -> bool {
        let mut records = lock(&self.records);
        match records.get_mut(&job.id) {
            Some(record) if record.owns(slot) => {
                record.build = None;
                match result {
                    Err(Error::Busy(reason)) => {
                        tracing::info!(id = %job.id, %reason, "pyramid build put back");
                        record.queued = true;
                        return true;
                    }
                    Ok(pyramid) => {
                        tracing::info!(id = %job.id, "pyramid built");
                        record.entry.status = ImageStatus::Ready;
                        record.entry.ready_level = Some(Level(0));
                        record.pyramid = Some(pyramid);
                        record.last_used = Instant::now();
                    }
                    Err(Error::Cancelled) => {}
                    Err(e) => {
                        tracing::warn!(id = %job.id, error = %e, "pyramid build failed");
                        record.entry.status = ImageStatus::Failed {
                            reason: e.to_string(),
                        };
                        record.entry.ready_level = None;
                        record.pyramid = None;
                    }
                }
                self.bump();
            }
            Some(record) if record.entry.version == job.version => {}
            _ => {
                let stem = self.store.stem(&job.id, job.version);
                if let Err(e) = evict::remove_groups(self.store.dir(), [stem.as_str()]) {
                    tracing::warn!(id = %job.id, error = %e, "stale pyramid not removed");
                }
            }
        }
        false
    }
}
