//! catalog::uploads: images added and removed through the API, under `DATA_DIR/uploads/`.
//!
//! An upload is validated (a supported image within the limits whose first row decodes), moved
//! by rename to a generated hexadecimal name with the extension of its detected format, given
//! its sidecar, and registered at once (no wait for stability: it is complete). The rename and
//! the sidecar are synced before this returns (the caller then answers 201), so an upload
//! acknowledged is kept through a kill or a power cut. Only uploads
//! can be deleted, with their sidecar and every derived file. Both hold the scan lock, so a
//! concurrent rescan never sees half of either.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::atomic;
use crate::error::{Error, Result};
use crate::source::SourceFormat;

use super::scan::{self, Found, UPLOADS};
use super::{evict, lock, sidecar, DeleteError, ImageEntry, ImageMeta, Inner};

pub(super) fn remove_quietly(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!(path = %path.display(), error = %e, "could not remove a rejected upload");
    }
}

/// The extension an upload of a format is stored with.
fn extension(format: SourceFormat) -> &'static str {
    match format {
        SourceFormat::Tiff | SourceFormat::BigTiff => "tif",
        SourceFormat::Jpeg => "jpg",
        SourceFormat::Png => "png",
        SourceFormat::Webp => "webp",
    }
}

/// A fresh hexadecimal name for an upload (time-based, with a counter against collisions).
fn upload_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}{counter:04x}")
}

impl Inner {
    /// Opens an upload and decodes its first row; returns its format.
    pub(super) fn validate_upload(&self, temp_file: &Path) -> Result<SourceFormat> {
        let source = self.store.open_source(temp_file)?;
        let info = source.info();
        let mut row = vec![0; info.width as usize * info.layout.channels()];
        source.rows()?.read_rows(&mut row)?;
        Ok(info.format)
    }

    /// Moves a validated upload into `uploads/`, writes its sidecar and registers it.
    pub(super) fn store_upload(
        &self,
        temp: &Path,
        format: SourceFormat,
        mut meta: ImageMeta,
    ) -> Result<ImageEntry> {
        let mut memory = lock(&self.scan);
        let folder = self.rules.root.join(UPLOADS);
        let name = loop {
            let name = format!("{}.{}", upload_name(), extension(format));
            if !folder.join(&name).exists() {
                break name;
            }
        };
        let path = folder.join(&name);
        std::fs::rename(temp, &path).inspect_err(|_| remove_quietly(temp))?;
        let id = format!("{UPLOADS}/{name}");
        if meta.original_filename.is_empty() {
            meta.original_filename = name;
        }
        let registered = atomic::sync_folder_of(&path)
            .and_then(|()| sidecar::write(&self.meta_dir, &id, &meta))
            .map_err(Error::from)
            .and_then(|()| self.register_upload(&id, &path));
        if registered.is_err() {
            remove_quietly(&path);
            let _ = sidecar::remove(&self.meta_dir, &id);
        }
        memory.pending.remove(&id);
        registered
    }

    fn register_upload(&self, id: &str, path: &Path) -> Result<ImageEntry> {
        let (version, modified) = scan::stat(path)?;
        let found = Found {
            id: id.to_owned(),
            path: path.to_path_buf(),
            version,
            modified,
        };
        let record = self
            .examine(&found)
            .ok_or_else(|| Error::unsupported("not a supported image"))?;
        let entry = record.snapshot();
        self.register(record);
        Ok(entry)
    }

    pub(super) fn delete(&self, id: &str) -> std::result::Result<(), DeleteError> {
        let _scan = lock(&self.scan);
        let path = {
            let mut records = lock(&self.records);
            match records.get(id) {
                None => return Err(DeleteError::NotFound),
                Some(record) if !record.entry.uploaded => return Err(DeleteError::NotUploaded),
                Some(_) => {}
            }
            let mut record = records.remove(id).ok_or(DeleteError::NotFound)?;
            record.cancel_build();
            self.bump();
            record.entry.path
        };
        tracing::info!(id, "deleting upload");
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        sidecar::remove(&self.meta_dir, id)?;
        evict::remove_derived(self.store.dir(), Some(id))?;
        Ok(())
    }
}
