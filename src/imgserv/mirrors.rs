//! mirrors: which mirror, if any, answers for a fitted file.
//!
//! It owns the mirror map (name → base URL, bandwidth figure, manifest file) and the
//! manifests: plain text, one cache-relative file name a line. A manifest is re-read when its
//! mtime or size changes, checked at most once per `reload_every`, so manifests reload
//! without a restart. A file held by several mirrors goes to the one with the highest
//! bandwidth (no load balancing). It knows no HTTP, pixels or cache folder.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::store::write_atomic;
use crate::error::Result;

/// How often a manifest's mtime is checked, at most.
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// One mirror as configured (the TOML file's `[[mirrors]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    pub name: String,
    /// Prefix of the mirror's URLs; a file's URL is this, `/`, then its cache-relative name.
    pub base_url: String,
    /// A relative bandwidth figure: higher wins.
    pub bandwidth: u64,
    /// The manifest listing the files the mirror holds.
    pub manifest: PathBuf,
}

/// The mirror map and its manifests as last read.
pub struct Mirrors {
    /// Highest bandwidth first.
    mirrors: Vec<Mirror>,
    reload_every: Duration,
}

struct Mirror {
    config: MirrorConfig,
    manifest: Mutex<Manifest>,
}

#[derive(Default)]
struct Manifest {
    checked: Option<Instant>,
    /// The manifest file's mtime and size when it was read.
    stamp: Option<(SystemTime, u64)>,
    names: HashSet<String>,
}

impl Mirrors {
    /// The mirrors of `configs`; manifests are read at first use.
    pub fn new(mut configs: Vec<MirrorConfig>, reload_every: Duration) -> Mirrors {
        configs.sort_by(|a, b| b.bandwidth.cmp(&a.bandwidth).then(a.name.cmp(&b.name)));
        let mirrors = configs
            .into_iter()
            .map(|config| Mirror {
                config,
                manifest: Mutex::default(),
            })
            .collect();
        Mirrors {
            mirrors,
            reload_every,
        }
    }

    /// The configuration of mirror `name`.
    pub fn find_config(&self, name: &str) -> Option<&MirrorConfig> {
        self.mirrors
            .iter()
            .map(|m| &m.config)
            .find(|c| c.name == name)
    }

    /// The URL of cache-relative file `name` on the fastest mirror holding it.
    pub fn find_url(&self, name: &str) -> Option<String> {
        let mirror = self
            .mirrors
            .iter()
            .find(|m| m.holds(name, self.reload_every))?;
        Some(join_url(&mirror.config.base_url, name))
    }
}

impl Mirror {
    fn holds(&self, name: &str, reload_every: Duration) -> bool {
        let mut manifest = self.manifest.lock().unwrap_or_else(PoisonError::into_inner);
        let due = manifest
            .checked
            .is_none_or(|at| at.elapsed() >= reload_every);
        if due {
            manifest.checked = Some(Instant::now());
            self.reload(&mut manifest);
        }
        manifest.names.contains(name)
    }

    /// Re-reads the manifest when its mtime or size changed; a missing manifest holds
    /// nothing, an unreadable one keeps what was read before.
    fn reload(&self, manifest: &mut Manifest) {
        let path = &self.config.manifest;
        let stamp = fs::metadata(path).and_then(|m| Ok((m.modified()?, m.len())));
        match stamp {
            Ok(stamp) if manifest.stamp == Some(stamp) => {}
            Ok(stamp) => match fs::read_to_string(path) {
                Ok(text) => {
                    manifest.names = parse_manifest(&text).map(str::to_owned).collect();
                    manifest.stamp = Some(stamp);
                }
                Err(err) => self.warn(&err),
            },
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                *manifest = Manifest {
                    checked: manifest.checked,
                    ..Manifest::default()
                }
            }
            Err(err) => self.warn(&err),
        }
    }

    fn warn(&self, err: &io::Error) {
        tracing::warn!(mirror = %self.config.name, %err, "could not read a mirror manifest");
    }
}

/// The names in a manifest: one a line, blank lines and surrounding spaces ignored.
fn parse_manifest(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|line| !line.is_empty())
}

/// Adds `names` to the manifest at `path` (keeping the names already there), sorted, one a
/// line, written whole through a temporary and a rename.
pub fn write_manifest(path: &Path, names: &[String]) -> Result<()> {
    let old = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => String::new(),
        Err(err) => return Err(err.into()),
    };
    let all: BTreeSet<&str> = parse_manifest(&old)
        .chain(names.iter().map(String::as_str))
        .collect();
    let text: String = all.into_iter().flat_map(|name| [name, "\n"]).collect();
    write_atomic(path, text.as_bytes(), None)
}

/// `base`, one `/`, then the cache-relative `name` percent-encoded.
pub(super) fn join_url(base: &str, name: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), encode_path(name))
}

/// Percent-encodes a cache-relative name for a URL path, keeping `/` and unreserved bytes.
fn encode_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_percent_encoded_but_keep_slashes() {
        assert_eq!(encode_path("a b/ü.jpg"), "a%20b/%C3%BC.jpg");
        assert_eq!(encode_path("x/800x600-r50-ab.jpg"), "x/800x600-r50-ab.jpg");
    }

    #[test]
    fn manifests_skip_blank_lines() {
        let names: Vec<&str> = parse_manifest(" a/1.jpg \n\n b/2.png\r\n").collect();
        assert_eq!(names, ["a/1.jpg", "b/2.png"]);
    }
}
