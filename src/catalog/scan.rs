//! catalog::scan: which files under DATA_DIR are candidate images, and their ids.
//!
//! Rules: an id is the path relative to DATA_DIR with `/` separators. Dot-files and
//! dot-folders (so `.gigatile` and `uploads/.incoming`) and the configured skip folders (the
//! pyramid folder when it lies inside DATA_DIR) are never entered; names that are not valid
//! UTF-8 are skipped with a log line. A symlink to a file is followed only when its target,
//! canonicalized, lies inside DATA_DIR (the entry's path is then the target, so a retargeted
//! link cannot leak); symlinks to folders are never descended (no loops, no duplicate ids).
//! Images are recognised by content ([`probe`]), never by extension. It never writes.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::limits::Limits;
use crate::pyramid::store::SourceVersion;
use crate::source::{detect_format, Source, SourceFormat, SourceInfo, MAGIC_LEN};
use crate::storage::LocalFile;

/// The folder, relative to DATA_DIR, where uploads are stored.
pub(super) const UPLOADS: &str = "uploads";

/// A file found by a walk: a candidate image.
#[derive(Debug, Clone)]
pub(super) struct Found {
    pub id: String,
    /// Canonical path of the file (the target of a symlink).
    pub path: PathBuf,
    pub version: SourceVersion,
    pub modified: SystemTime,
}

/// What to walk and what to leave out.
#[derive(Debug, Clone)]
pub(super) struct ScanRules {
    /// DATA_DIR, canonicalized.
    pub root: PathBuf,
    /// Canonical folders never entered (the pyramid folder).
    pub skip: Vec<PathBuf>,
}

impl ScanRules {
    /// Whether a path (absolute, under the root) is one a scan never looks at: filesystem
    /// events there (pyramid builds, sidecars, incoming uploads) need no rescan.
    pub fn is_ignored(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return true;
        };
        self.skip.iter().any(|s| path.starts_with(s))
            || rel
                .components()
                .any(|c| c.as_os_str().as_encoded_bytes().starts_with(b"."))
    }

    /// Every candidate file under the root. Unreadable folders are logged and skipped;
    /// `reported` remembers the paths already logged, so each is logged once.
    pub fn walk(&self, reported: &mut HashSet<PathBuf>) -> Vec<Found> {
        let mut found = Vec::new();
        let mut folders = vec![self.root.clone()];
        while let Some(folder) = folders.pop() {
            let entries = match std::fs::read_dir(&folder) {
                Ok(entries) => entries,
                Err(e) => {
                    log_once(reported, &folder, &format!("folder unreadable: {e}"));
                    continue;
                }
            };
            for entry in entries.flatten() {
                self.visit(&entry.path(), &mut folders, &mut found, reported);
            }
        }
        found
    }

    fn visit(
        &self,
        path: &Path,
        folders: &mut Vec<PathBuf>,
        found: &mut Vec<Found>,
        reported: &mut HashSet<PathBuf>,
    ) {
        if self.is_ignored(path) {
            return;
        }
        let Ok(kind) = std::fs::symlink_metadata(path).map(|m| m.file_type()) else {
            return;
        };
        if kind.is_dir() {
            folders.push(path.to_path_buf());
            return;
        }
        let Some(id) = self.id_of(path) else {
            log_once(reported, path, "name is not valid UTF-8, skipped");
            return;
        };
        match self.resolve(path, kind.is_symlink()) {
            Ok(Some(target)) => match stat(&target) {
                Ok((version, modified)) => found.push(Found {
                    id,
                    path: target,
                    version,
                    modified,
                }),
                Err(e) => log_once(reported, path, &format!("unreadable: {e}")),
            },
            Ok(None) => log_once(
                reported,
                path,
                "symlink leads outside DATA_DIR or into an ignored folder, skipped",
            ),
            Err(e) => log_once(reported, path, &format!("unresolvable: {e}")),
        }
    }

    /// The file a path serves: itself, or a symlink's target when it is a regular file inside
    /// the root (`None` otherwise; a loop is an error from `canonicalize`).
    fn resolve(&self, path: &Path, symlink: bool) -> std::io::Result<Option<PathBuf>> {
        if !symlink {
            return Ok(std::fs::metadata(path)?
                .is_file()
                .then(|| path.to_path_buf()));
        }
        let target = std::fs::canonicalize(path)?;
        let inside = target.starts_with(&self.root) && !self.is_ignored(&target);
        Ok((inside && std::fs::metadata(&target)?.is_file()).then_some(target))
    }

    /// The id of a path under the root, `None` when a name is not valid UTF-8.
    pub fn id_of(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.root).ok()?;
        let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
        Some(parts?.join("/"))
    }
}

/// Whether an id names a file uploaded through the API.
pub(super) fn is_upload(id: &str) -> bool {
    id.strip_prefix(UPLOADS)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// A file's version and modification time.
pub(super) fn stat(path: &Path) -> std::io::Result<(SourceVersion, SystemTime)> {
    let modified = std::fs::metadata(path)?.modified()?;
    Ok((SourceVersion::of(path)?, modified))
}

fn log_once(reported: &mut HashSet<PathBuf>, path: &Path, what: &str) {
    if reported.insert(path.to_path_buf()) {
        tracing::info!(path = %path.display(), "{what}");
    }
}

/// What a file is, judged by content.
#[derive(Debug)]
pub(super) enum Probe {
    /// A supported image whose header opens within the limits.
    Image(SourceInfo),
    /// A supported format that cannot be served: the reason is safe for clients.
    Broken(SourceFormat, String),
    /// Not an image gigatile reads.
    NotImage,
}

/// Recognises a file by its magic bytes, then opens its header with the limits.
pub(super) fn probe(path: &Path, limits: &Limits) -> std::io::Result<Probe> {
    let mut head = Vec::with_capacity(MAGIC_LEN);
    std::fs::File::open(path)?
        .take(MAGIC_LEN as u64)
        .read_to_end(&mut head)?;
    let Some(format) = detect_format(&head) else {
        return Ok(Probe::NotImage);
    };
    Ok(match Source::open(LocalFile::open_shared(path)?, limits) {
        Ok(source) => Probe::Image(source.info()),
        Err(e) => Probe::Broken(format, e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ScanRules {
        ScanRules {
            root: PathBuf::from("/data"),
            skip: vec![PathBuf::from("/data/pyr")],
        }
    }

    #[test]
    fn ids_use_slashes() {
        let r = rules();
        assert_eq!(
            r.id_of(Path::new("/data/a/b.tif")).as_deref(),
            Some("a/b.tif")
        );
        assert_eq!(r.id_of(Path::new("/elsewhere/b.tif")), None);
    }

    #[test]
    fn ignores_dot_paths_skip_folders_and_outside() {
        let r = rules();
        assert!(r.is_ignored(Path::new("/data/.gigatile/pyramids/x.tif")));
        assert!(r.is_ignored(Path::new("/data/uploads/.incoming/t")));
        assert!(r.is_ignored(Path::new("/data/a/.hidden.jpg")));
        assert!(r.is_ignored(Path::new("/data/pyr/x.tif")));
        assert!(r.is_ignored(Path::new("/other/x.tif")));
        assert!(!r.is_ignored(Path::new("/data/a/b.jpg")));
    }

    #[test]
    fn uploads_are_recognised_by_id() {
        assert!(is_upload("uploads/abc.jpg"));
        assert!(!is_upload("uploadsx/abc.jpg"));
        assert!(!is_upload("a/uploads/abc.jpg"));
    }
}
