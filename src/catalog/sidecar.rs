//! catalog::sidecar: an image's metadata (original file name, copyright), kept apart from the
//! source in `DATA_DIR/.gigatile/meta/<hash of id>.json`, written atomically (temp + rename).
//!
//! It owns the sidecar files only; it knows nothing of sources or pyramids.

use std::io;

use crate::atomic::{self, Durability};
use std::path::{Path, PathBuf};

use crate::pyramid::store::fnv1a;

use super::ImageMeta;

/// The sidecar file of an image id.
fn sidecar_path(meta_dir: &Path, id: &str) -> PathBuf {
    meta_dir.join(format!("{:016x}.json", fnv1a(&[id.as_bytes()])))
}

/// The stored metadata of `id`, if a readable sidecar exists (a broken one is logged and
/// ignored: metadata never makes an image unservable).
pub(super) fn read(meta_dir: &Path, id: &str) -> Option<ImageMeta> {
    let path = sidecar_path(meta_dir, id);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "sidecar unreadable");
            return None;
        }
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| tracing::warn!(path = %path.display(), error = %e, "sidecar invalid"))
        .ok()
}

/// Writes the metadata of `id` atomically: a temporary file beside it, then a rename.
pub(super) fn write(meta_dir: &Path, id: &str, meta: &ImageMeta) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(meta).map_err(io::Error::other)?;
    atomic::write(&sidecar_path(meta_dir, id), &[&json], Durability::Synced).map(drop)
}

/// Removes the sidecar of `id`; a missing one is not an error.
pub(super) fn remove(meta_dir: &Path, id: &str) -> io::Result<()> {
    match std::fs::remove_file(sidecar_path(meta_dir, id)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_remove() {
        let dir = std::env::temp_dir().join(format!("gigatile-sidecar-{}", std::process::id()));
        let meta = ImageMeta {
            original_filename: "a b.jpg".into(),
            copyright_text: Some("© me".into()),
            copyright_link: None,
        };
        write(&dir, "uploads/x.jpg", &meta).unwrap();
        assert_eq!(read(&dir, "uploads/x.jpg"), Some(meta));
        assert_eq!(read(&dir, "other.jpg"), None);
        remove(&dir, "uploads/x.jpg").unwrap();
        remove(&dir, "uploads/x.jpg").unwrap();
        assert_eq!(read(&dir, "uploads/x.jpg"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
