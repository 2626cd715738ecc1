//! pyramid::store: derived pyramids on disk, one per source version, built once.
//!
//! A source that is already a usable tiled pyramid is served as it is. Any other source gets a
//! pyramidal BigTIFF in the store's folder, named by a hash of the source's id, its version
//! (size and mtime) and the build settings, so a changed source or setting never meets a stale
//! pyramid, and names (never renames or mtimes) identify derived files. When the source can be
//! read cheaply at reduced size (JPEG DCT scaling), a small preview pyramid of the coarse
//! levels is built first, so a whole-image view is ready within seconds while the full build
//! runs. Builds are atomic (see `build`): what exists under a final name is complete.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use crate::atomic::remove_stale_temps;
use crate::error::Result;
use crate::geometry::Geometry;
use crate::limits::Limits;
use crate::memory::Reservation;
use crate::pyramid::build::{build_pyramid, memory_needed, BaseStorage, BuildOptions, Progress};
use crate::pyramid::from_tiff::{is_usable, tiff_levels, tiff_pyramid};
use crate::pyramid::levels::Pyramid;
use crate::source::tiff::TiffFile;
use crate::source::RowReader;
use crate::source::Source;
use crate::storage::LocalFile;

/// Bumped whenever the bytes a build writes change, so old pyramids are not reused.
pub const BUILD_FORMAT_VERSION: u32 = 1;

/// The reduction of the preview pass (1/8: JPEG's cheapest DCT scale).
const PREVIEW_FACTOR: u32 = 8;
/// Sources whose longer side is at most this are built in one pass, without a preview.
const PREVIEW_MIN_SIDE: u32 = 4096;

/// A source's version: what changes when its content may have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceVersion {
    pub len: u64,
    pub mtime_ns: u128,
}

impl SourceVersion {
    /// The version of a local file.
    pub fn of(path: &Path) -> std::io::Result<SourceVersion> {
        let meta = std::fs::metadata(path)?;
        let mtime_ns = meta
            .modified()?
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(SourceVersion {
            len: meta.len(),
            mtime_ns,
        })
    }
}

/// 64-bit FNV-1a: a stable hash (the standard library's may change between releases).
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// What the store has for a source right now.
#[derive(Debug, Clone)]
pub enum Prepared {
    /// The source is a usable pyramid itself.
    Source(Pyramid),
    /// A complete built pyramid.
    Built(Pyramid),
    /// Only the coarse levels, from a preview build.
    Preview(Pyramid),
    /// Nothing yet: a build is needed.
    Missing,
}

/// The folder of derived pyramids and how they are built.
#[derive(Debug, Clone)]
pub struct PyramidStore {
    dir: PathBuf,
    options: BuildOptions,
    limits: Limits,
}

impl PyramidStore {
    /// A store in `dir` (created on first build).
    pub fn new(dir: impl Into<PathBuf>, options: BuildOptions, limits: Limits) -> PyramidStore {
        PyramidStore {
            dir: dir.into(),
            options,
            limits,
        }
    }

    /// The folder holding derived pyramids.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file stem for a source id at a version under the current settings.
    pub fn stem(&self, id: &str, version: SourceVersion) -> String {
        let base = match self.options.base {
            BaseStorage::Jpeg => b"jpeg".as_slice(),
            BaseStorage::Lossless => b"lossless".as_slice(),
        };
        let hash = fnv1a(&[
            id.as_bytes(),
            &version.len.to_le_bytes(),
            &version.mtime_ns.to_le_bytes(),
            &[self.options.quality],
            base,
            &BUILD_FORMAT_VERSION.to_le_bytes(),
        ]);
        format!("{hash:016x}")
    }

    /// Where the complete pyramid of a source version lives.
    pub fn final_path(&self, id: &str, version: SourceVersion) -> PathBuf {
        self.dir.join(format!("{}.tif", self.stem(id, version)))
    }

    /// Where the preview pyramid of a source version lives.
    pub fn preview_path(&self, id: &str, version: SourceVersion) -> PathBuf {
        self.dir
            .join(format!("{}.preview.tif", self.stem(id, version)))
    }

    /// Opens a source file with the store's limits.
    pub fn open_source(&self, path: &Path) -> Result<Source> {
        Source::open(LocalFile::open_shared(path)?, &self.limits)
    }

    /// What exists for the source `id` at `path`, without building anything.
    pub fn prepare(&self, id: &str, path: &Path) -> Result<Prepared> {
        let source = self.open_source(path)?;
        let geometry = geometry_of(&source);
        if let Source::Tiff(file) = source {
            if let Some(pyramid) = tiff_pyramid(&Arc::new(file)).filter(is_usable) {
                return Ok(Prepared::Source(pyramid));
            }
        }
        self.find_derived(id, path, geometry)
    }

    fn find_derived(&self, id: &str, path: &Path, geometry: Geometry) -> Result<Prepared> {
        let version = SourceVersion::of(path)?;
        if let Some(p) = self.open_built(&self.final_path(id, version), geometry)? {
            // A build killed between its rename and the preview's removal left it behind.
            let _ = std::fs::remove_file(self.preview_path(id, version));
            return Ok(Prepared::Built(p));
        }
        if let Some(p) = self.open_built(&self.preview_path(id, version), geometry)? {
            return Ok(Prepared::Preview(p));
        }
        Ok(Prepared::Missing)
    }

    fn open_built(&self, file: &Path, geometry: Geometry) -> Result<Option<Pyramid>> {
        let bytes = match LocalFile::open_shared(file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let tiff = Arc::new(TiffFile::open(bytes, &Limits::default())?);
        Ok(tiff_levels(&tiff).map(|(_, levels)| Pyramid::new(geometry, levels)))
    }

    /// Builds the pyramid of the source `id` at `path`: a preview of the coarse levels first
    /// when that is cheap (handed to `on_preview` as soon as it exists), then the complete
    /// pyramid. Returns the complete pyramid; the preview file is removed once it is replaced.
    pub fn build(
        &self,
        id: &str,
        path: &Path,
        progress: &Progress,
        cancel: &AtomicBool,
        on_preview: &mut dyn FnMut(Pyramid),
    ) -> Result<Pyramid> {
        std::fs::create_dir_all(&self.dir)?;
        remove_stale_temps(&self.dir)?;
        let version = SourceVersion::of(path)?;
        let source = self.open_source(path)?;
        let geometry = geometry_of(&source);
        let preview_path = self.preview_path(id, version);
        if geometry.width.max(geometry.height) > PREVIEW_MIN_SIDE {
            if let Some(reduced) = source.reduced_rows(PREVIEW_FACTOR) {
                let (_, rows) = reduced?;
                let _memory = self.reserve_build(rows.as_ref())?;
                build_pyramid(rows, &preview_path, &self.options, &Progress::new(), cancel)?;
                if let Some(preview) = self.open_built(&preview_path, geometry)? {
                    on_preview(preview);
                }
            }
        }
        let final_path = self.final_path(id, version);
        let rows = source.rows()?;
        let memory = self.reserve_build(rows.as_ref())?;
        build_pyramid(rows, &final_path, &self.options, progress, cancel)?;
        drop(memory);
        let _ = std::fs::remove_file(&preview_path);
        self.open_built(&final_path, geometry)?
            .ok_or_else(|| crate::error::Error::corrupt("the built pyramid could not be read back"))
    }

    /// Draws a build's buffers from the memory budget.
    fn reserve_build(&self, rows: &dyn RowReader) -> Result<Reservation> {
        self.limits.reserve(
            memory_needed(rows.width(), rows.layout()),
            "a pyramid build",
        )
    }
}

fn geometry_of(source: &Source) -> Geometry {
    let info = source.info();
    Geometry::new(info.width, info.height)
}
