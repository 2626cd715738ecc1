//! metrics: counters the server keeps, written in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The server's own counters; cache, pool and catalogue figures are read at scrape time.
#[derive(Debug, Default)]
pub struct Metrics {
    pub tile_requests: AtomicU64,
    pub cache_hits: AtomicU64,
    pub renders: AtomicU64,
    pub passthrough: AtomicU64,
    pub render_errors: AtomicU64,
    pub not_ready: AtomicU64,
    pub overloaded: AtomicU64,
    pub warmup_renders: AtomicU64,
    pub uploads: AtomicU64,
    pub imgserv_redirects: AtomicU64,
    pub imgserv_renders: AtomicU64,
    pub rate_limited: AtomicU64,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Builds a Prometheus text exposition.
#[derive(Debug, Default)]
pub struct Exposition(String);

impl Exposition {
    /// Adds one metric with its help text, type and value.
    pub fn metric(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        let _ = writeln!(
            self.0,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }

    /// Adds a counter read from an atomic.
    pub fn counter(&mut self, name: &str, help: &str, value: &AtomicU64) {
        self.metric(name, "counter", help, value.load(Ordering::Relaxed));
    }

    /// The text.
    pub fn finish(self) -> String {
        self.0
    }
}
