//! catalog::evict: the derived files in the pyramid folder as groups, their owners, purging and
//! the `PYRAMID_MAX_BYTES` budget.
//!
//! The store names a source version's files by a hash (`<stem>.tif`, `<stem>.preview.tif`);
//! beside them the catalogue writes `<stem>.id`, holding the image id, before building, so
//! files can be mapped back to an image without a shared index (`purge_dir` works without a
//! running catalogue). A group is every file of one stem; temporary files (dot-files, owned by
//! running builds) are never touched here. Eviction removes orphans first (groups of no
//! current image version: old versions, removed sources), then the least recently used groups
//! not in use, until the folder fits the budget.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;
use std::time::Instant;

use super::{lock, Inner, IN_USE_GRACE};
use crate::atomic::{self, Durability};

/// The extension of the marker file naming a group's image id.
const MARKER: &str = "id";

/// Records which image id a stem's files belong to (atomically: a torn marker would hide its
/// group from a delete).
pub(super) fn write_marker(dir: &Path, stem: &str, id: &str) -> io::Result<()> {
    let marker = dir.join(format!("{stem}.{MARKER}"));
    atomic::write(&marker, &[id.as_bytes()], Durability::Synced).map(drop)
}

/// The groups of derived files in `dir`: stem → total bytes.
pub(super) fn groups(dir: &Path) -> io::Result<BTreeMap<String, u64>> {
    let mut groups = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(stem_of) else {
            continue;
        };
        let bytes = entry.metadata().map_or(0, |m| m.len());
        *groups.entry(stem.to_owned()).or_insert(0) += bytes;
    }
    Ok(groups)
}

/// The stem of a derived file's name; `None` for temporary and foreign names.
fn stem_of(name: &str) -> Option<&str> {
    if name.starts_with('.') {
        return None;
    }
    name.split_once('.').map(|(stem, _)| stem)
}

/// Removes every file of the groups `stems`, markers last (so that a group cut short by a
/// kill is still found by its id); returns the bytes freed.
pub(super) fn remove_groups<'a>(
    dir: &Path,
    stems: impl IntoIterator<Item = &'a str>,
) -> io::Result<u64> {
    let stems: Vec<&str> = stems.into_iter().collect();
    let mut doomed = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name
            .to_str()
            .and_then(stem_of)
            .is_some_and(|s| stems.contains(&s))
        {
            doomed.push(entry);
        }
    }
    doomed.sort_by_key(|entry| entry.path().extension().is_some_and(|ext| ext == MARKER));
    let mut freed = 0;
    for entry in doomed {
        let bytes = entry.metadata().map_or(0, |m| m.len());
        match std::fs::remove_file(entry.path()) {
            Ok(()) => freed += bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(freed)
}

/// The stems whose marker names `id`.
pub(super) fn stems_of_id(dir: &Path, id: &str) -> io::Result<Vec<String>> {
    Ok(groups(dir)?
        .into_keys()
        .filter(|stem| {
            std::fs::read_to_string(dir.join(format!("{stem}.{MARKER}"))).is_ok_and(|s| s == id)
        })
        .collect())
}

/// Drops derived pyramids from a pyramid folder without a running catalogue (`gigatile purge
/// [ID]`): every derived file, or those of one image id (all its versions). Temporary files of
/// running builds are left to their builds. Returns the bytes freed; a missing folder frees 0.
pub fn purge_dir(pyramid_dir: &Path, id: Option<&str>) -> crate::Result<u64> {
    Ok(remove_derived(pyramid_dir, id)?)
}

/// What [`purge_dir`] does, as I/O.
pub(super) fn remove_derived(pyramid_dir: &Path, id: Option<&str>) -> io::Result<u64> {
    if !pyramid_dir.exists() {
        return Ok(0);
    }
    let stems = match id {
        Some(id) => stems_of_id(pyramid_dir, id)?,
        None => groups(pyramid_dir)?.into_keys().collect(),
    };
    remove_groups(pyramid_dir, stems.iter().map(String::as_str))
}

/// How a group that belongs to a current image version is used.
#[derive(Debug, Clone, Copy)]
pub(super) struct Use {
    pub last_used: Instant,
    pub in_use: bool,
}

/// The stems to remove so that `groups` fit `budget` bytes: orphans (absent from `live`) first,
/// largest first, then live groups not in use, least recently used first. Stops as soon as the
/// total fits; in-use groups are never chosen, even if the budget stays exceeded.
pub(super) fn plan(
    groups: &BTreeMap<String, u64>,
    live: &HashMap<String, Use>,
    budget: u64,
) -> Vec<String> {
    let mut total: u64 = groups.values().sum();
    let mut orphans: Vec<(&String, u64)> = groups
        .iter()
        .filter(|(stem, _)| !live.contains_key(*stem))
        .map(|(stem, &bytes)| (stem, bytes))
        .collect();
    orphans.sort_by_key(|&(_, bytes)| std::cmp::Reverse(bytes));
    let mut idle: Vec<(&String, u64, Instant)> = groups
        .iter()
        .filter_map(|(stem, &bytes)| {
            let usage = live.get(stem)?;
            (!usage.in_use).then_some((stem, bytes, usage.last_used))
        })
        .collect();
    idle.sort_by_key(|&(_, _, last_used)| last_used);
    let candidates = orphans
        .into_iter()
        .chain(idle.into_iter().map(|(stem, bytes, _)| (stem, bytes)));
    let mut victims = Vec::new();
    for (stem, bytes) in candidates {
        if total <= budget {
            break;
        }
        total -= bytes;
        victims.push(stem.clone());
    }
    victims
}

impl Inner {
    /// Brings the pyramid folder under its budget (see `evict`).
    pub(super) fn evict(&self) {
        let budget = self.config.pyramid_max_bytes;
        if budget == 0 {
            return;
        }
        let mut records = lock(&self.records);
        let dir = self.store.dir();
        let groups = match groups(dir) {
            Ok(groups) => groups,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "pyramid folder unreadable");
                return;
            }
        };
        let mut owners = HashMap::new();
        let mut live = HashMap::new();
        for record in records.values().filter(|r| r.derived) {
            let stem = self.store.stem(&record.entry.id, record.entry.version);
            let in_use = record.build.is_some() || record.last_used.elapsed() < IN_USE_GRACE;
            let usage = Use {
                last_used: record.last_used,
                in_use,
            };
            live.insert(stem.clone(), usage);
            owners.insert(stem, record.entry.id.clone());
        }
        let victims = plan(&groups, &live, budget);
        if victims.is_empty() {
            return;
        }
        for stem in &victims {
            if let Some(record) = owners.get(stem).and_then(|id| records.get_mut(id)) {
                tracing::info!(id = %record.entry.id, "pyramid evicted");
                record.reset();
            }
        }
        match remove_groups(dir, victims.iter().map(String::as_str)) {
            Ok(freed) => tracing::info!(freed, "pyramids evicted to fit PYRAMID_MAX_BYTES"),
            Err(e) => tracing::warn!(error = %e, "eviction incomplete"),
        }
        self.bump();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn orphans_go_first_then_least_recently_used_never_in_use() {
        let now = Instant::now();
        let groups: BTreeMap<String, u64> = [("a", 10), ("b", 10), ("c", 10), ("o", 5)]
            .into_iter()
            .map(|(s, b)| (s.to_owned(), b))
            .collect();
        let usage = |secs, in_use| Use {
            last_used: now - Duration::from_secs(secs),
            in_use,
        };
        let live: HashMap<String, Use> = [
            ("a", usage(100, true)),
            ("b", usage(50, false)),
            ("c", usage(80, false)),
        ]
        .into_iter()
        .map(|(s, u)| (s.to_owned(), u))
        .collect();
        assert_eq!(plan(&groups, &live, 34), vec!["o"]);
        assert_eq!(plan(&groups, &live, 25), vec!["o", "c"]);
        assert_eq!(plan(&groups, &live, 0), vec!["o", "c", "b"]);
        assert!(plan(&groups, &live, 100).is_empty());
    }

    #[test]
    fn temp_files_have_no_stem() {
        assert_eq!(stem_of("abc.preview.tif"), Some("abc"));
        assert_eq!(stem_of(".abc.tif.tmp-1-2"), None);
        assert_eq!(stem_of("noext"), None);
    }

    #[test]
    fn purge_by_id_keeps_other_images_and_temps() {
        let dir = std::env::temp_dir().join(format!("gigatile-evict-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (stem, id) in [("s1", "a.jpg"), ("s2", "a.jpg"), ("s3", "b.jpg")] {
            write_marker(&dir, stem, id).unwrap();
            std::fs::write(dir.join(format!("{stem}.tif")), [0u8; 100]).unwrap();
        }
        std::fs::write(dir.join(".s1.tif.tmp-1-1"), [0u8; 7]).unwrap();
        assert_eq!(purge_dir(&dir, Some("a.jpg")).unwrap(), 2 * (100 + 5));
        assert_eq!(
            groups(&dir).unwrap().into_keys().collect::<Vec<_>>(),
            vec!["s3"]
        );
        assert_eq!(purge_dir(&dir, None).unwrap(), 105);
        assert!(dir.join(".s1.tif.tmp-1-1").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
