//! catalog::watch: noticing changes in DATA_DIR without a restart.
//!
//! One thread serves both the notify watcher (recursive) and the periodic fallback rescan: it
//! waits on a channel for filesystem events or a stop, with the rescan interval as timeout.
//! Events in ignored places (the catalogue's own folder, dot-folders such as
//! `uploads/.incoming`, the pyramid folder) are dropped in the watcher's callback, so builds
//! do not trigger rescans. Events are debounced: after one, the thread waits until none has
//! come for [`QUIET`] (at most [`MAX_DEBOUNCE`]) and then rescans once. While some file is
//! not yet stable (see `Catalog`'s docs), it looks again every [`STABLE_AFTER`]. A watcher
//! that cannot start, or reports errors, is logged; the periodic rescan still runs.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use super::scan::ScanRules;
use super::Inner;

/// Quiet time that ends a burst of events.
const QUIET: Duration = Duration::from_millis(200);
/// Longest a burst of events delays a rescan.
const MAX_DEBOUNCE: Duration = Duration::from_secs(2);
/// How long a new or changed file must keep its size and mtime before it is registered.
pub(super) const STABLE_AFTER: Duration = Duration::from_secs(1);

/// What wakes the watch thread.
#[derive(Debug)]
pub(super) enum Wake {
    Changed,
    Stop,
}

/// Starts a recursive watcher on the root that sends [`Wake::Changed`] for relevant events;
/// `None` (logged) when the platform refuses.
pub(super) fn start_watcher(
    rules: ScanRules,
    wake: Sender<Wake>,
) -> Option<notify::RecommendedWatcher> {
    let root = rules.root.clone();
    let handler = move |event: notify::Result<notify::Event>| match event {
        Ok(event) if event.paths.iter().all(|p| rules.is_ignored(p)) => {}
        Ok(_) => {
            let _ = wake.send(Wake::Changed);
        }
        Err(e) => {
            tracing::warn!(error = %e, "filesystem watcher error; rescanning");
            let _ = wake.send(Wake::Changed);
        }
    };
    let started = notify::recommended_watcher(handler)
        .and_then(|mut w| w.watch(&root, RecursiveMode::Recursive).map(|()| w));
    started
        .inspect_err(|e| tracing::warn!(error = %e, "filesystem watcher unavailable; polling only"))
        .ok()
}

/// The watch thread's loop: rescans on events (debounced), on the interval, and while files
/// settle; returns on [`Wake::Stop`].
pub(super) fn run(inner: &Arc<Inner>, wake: &Receiver<Wake>) {
    loop {
        let timeout = if inner.has_pending() {
            STABLE_AFTER
        } else {
            inner.config.rescan_interval
        };
        match wake.recv_timeout(timeout) {
            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Wake::Changed) => {
                if debounce(wake) {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        inner.rescan(true);
    }
}

/// Swallows a burst of events; true when a stop came meanwhile.
fn debounce(wake: &Receiver<Wake>) -> bool {
    let start = Instant::now();
    while start.elapsed() < MAX_DEBOUNCE {
        match wake.recv_timeout(QUIET) {
            Ok(Wake::Changed) => {}
            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return true,
            Err(RecvTimeoutError::Timeout) => return false,
        }
    }
    false
}
