//! imgserv: fitted images, the library behind `/imgserv.cgi` and `gigatile precache`.
//!
//! A query (`src`, `width`, `height`, optional `format`) is parsed by [`fit::parse_query`],
//! fitted to its source by [`ImgServ::fit`] (ratio kept, never scaled up, width rounded down
//! to the raster), then [`ImgServ::ensure`] answers where the file is: on the fastest mirror
//! whose manifest lists it, else in the local cache folder, made there first when missing.
//! [`ImgServ::precache`] makes versions ahead of time, into the cache or a folder laid out
//! like it, and writes a mirror's manifest.
//!
//! Parts: [`fit`] (pure query, geometry and names), [`store`] (the cache folder), [`mirrors`]
//! (mirror map and manifests), [`service`] (the server's async side: waiting, the pool, one
//! render per file). It knows no HTTP: the caller turns a [`Location`] into a
//! redirect and serves the cache folder as static files.
//!
//! The server opens one `ImgServ` from the settings (`RASTER`, `IMGSERV_CACHE_*`, the TOML
//! file's mirrors), serves it through [`service::FitService`] and writes last uses every
//! 30 s and at shutdown; `gigatile precache` calls [`ImgServ::precache`].

pub mod fit;
pub mod mirrors;
pub mod service;
pub mod store;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalog::ImageEntry;
use crate::codec::{self, EncodeOptions, OutputFormat};
use crate::error::Result;
use crate::geometry::Level;
use crate::memory::MemoryBudget;
use crate::pyramid::levels::Pyramid;
use crate::raster::Rect;
use crate::render::render_raster;

use fit::{FitQuery, Fitted, SourceFacts};
use mirrors::{MirrorConfig, Mirrors};
use store::{FileStore, StoreConfig};

/// The default raster: fitted widths are multiples of this.
pub const DEFAULT_RASTER: u32 = 50;

/// The settings of fitted images (`RASTER`, `IMGSERV_CACHE_*`, the mirrors of the TOML file).
#[derive(Debug, Clone)]
pub struct ImgServConfig {
    /// `IMGSERV_CACHE_DIR`.
    pub cache_dir: PathBuf,
    /// `RASTER`, > 0.
    pub raster: u32,
    /// `IMGSERV_CACHE_MAX_BYTES`.
    pub max_bytes: u64,
    /// `IMGSERV_CACHE_MIN_LIFETIME`.
    pub min_lifetime: Duration,
    /// `JPEG_QUALITY`; `None` for the codec's default.
    pub jpeg_quality: Option<u8>,
    /// `WEBP_QUALITY`; `None` for lossless.
    pub webp_quality: Option<u8>,
    pub mirrors: Vec<MirrorConfig>,
}

/// Where a fitted file can be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// In the cache folder, by this cache-relative name (serve as `/imgcache/{name}`).
    Local(String),
    /// On a mirror, at this URL.
    Mirror(String),
}

impl Location {
    /// The redirect target: the mirror's URL, or `{local_base}/{name}` with the name
    /// percent-encoded (`local_base` is e.g. `https://host/imgcache`).
    pub fn url(&self, local_base: &str) -> String {
        match self {
            Location::Mirror(url) => url.clone(),
            Location::Local(name) => mirrors::join_url(local_base, name),
        }
    }
}

/// Fitted images: the raster, the cache folder and the mirrors.
pub struct ImgServ {
    raster: u32,
    jpeg_quality: Option<u8>,
    webp_quality: Option<u8>,
    store: FileStore,
    mirrors: Mirrors,
}

impl ImgServ {
    /// Opens the cache folder (see [`FileStore::open`]).
    pub fn open(config: ImgServConfig) -> Result<ImgServ> {
        let store = FileStore::open(StoreConfig {
            dir: config.cache_dir,
            max_bytes: config.max_bytes,
            min_lifetime: config.min_lifetime,
        })?;
        Ok(ImgServ {
            raster: config.raster.max(1),
            jpeg_quality: config.jpeg_quality,
            webp_quality: config.webp_quality,
            store,
            mirrors: Mirrors::new(config.mirrors, mirrors::RELOAD_EVERY),
        })
    }

    /// The raster fitted widths are rounded down to.
    pub fn raster(&self) -> u32 {
        self.raster
    }

    /// The cache folder, to serve under `/imgcache/`.
    pub fn cache_dir(&self) -> &Path {
        self.store.dir()
    }

    /// The mirror map.
    pub fn mirrors(&self) -> &Mirrors {
        &self.mirrors
    }

    /// The fitted version a query asks of a source.
    pub fn fit(&self, source: &SourceFacts, query: &FitQuery) -> Fitted {
        fit::fit(query, source, self.raster)
    }

    /// Where `fitted` can be fetched without making it: the fastest mirror holding it, else
    /// the cache folder when it is there already (its use recorded in memory). No render and
    /// no write: the path of a cached redirect.
    pub fn locate(&self, source: &SourceFacts, fitted: &Fitted) -> Result<Option<Location>> {
        if let Some(url) = self.mirrors.find_url(&fitted.name) {
            return Ok(Some(Location::Mirror(url)));
        }
        let cached = self.store.lookup(source, fitted)?;
        Ok(cached.then(|| Location::Local(fitted.name.clone())))
    }

    /// Where `fitted` can be fetched: the fastest mirror holding it, else the cache folder,
    /// where it is made with `render` first when missing. Blocking: call off the async runtime.
    pub fn ensure(
        &self,
        source: &SourceFacts,
        fitted: &Fitted,
        render: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<Location> {
        if let Some(url) = self.mirrors.find_url(&fitted.name) {
            return Ok(Location::Mirror(url));
        }
        self.store.ensure(source, fitted, render)?;
        Ok(Location::Local(fitted.name.clone()))
    }

    /// Renders and encodes the whole picture at the fitted size (alpha flattened onto white for
    /// JPEG), for [`ImgServ::ensure`]. Blocking and CPU-bound.
    pub fn render(
        &self,
        pyramid: &Pyramid,
        fitted: &Fitted,
        budget: &MemoryBudget,
    ) -> Result<Vec<u8>> {
        let geometry = pyramid.geometry();
        let whole = Rect::new(0, 0, geometry.width, geometry.height);
        let (mut raster, _memory) = render_raster(
            pyramid,
            Level(0),
            whole,
            (fitted.width, fitted.height),
            budget,
        )?;
        if !fitted.format.supports_alpha() && raster.layout.has_alpha() {
            raster = raster.flatten([255, 255, 255]);
        }
        let quality = match fitted.format {
            OutputFormat::Jpeg => self.jpeg_quality,
            OutputFormat::Webp => self.webp_quality,
            OutputFormat::Png => None,
        };
        codec::encode(
            &raster,
            EncodeOptions {
                format: fitted.format,
                quality,
            },
        )
    }

    /// Writes the last uses recorded since the previous flush (call every few seconds and at
    /// shutdown; hits never write).
    pub fn flush(&self) -> Result<()> {
        self.store.flush()
    }

    /// Makes the versions of every source for every box in `sizes` ahead of time, into the
    /// cache folder when `out` is `None`, else into `out` laid out like the cache (for copying
    /// to a mirror), and adds their names to `manifest` when given. Calls `done` after each
    /// source and box. Returns the names, in order; stops at the first error.
    pub fn precache(
        &self,
        sources: &[(ImageEntry, Pyramid)],
        sizes: &[(u32, u32)],
        out: Option<&Path>,
        manifest: Option<&Path>,
        mut done: impl FnMut(&Fitted),
    ) -> Result<Vec<String>> {
        let mut names = Vec::new();
        // Precaching is a command of its own, one render at a time: nothing to share memory with.
        let budget = MemoryBudget::unlimited();
        for (entry, pyramid) in sources {
            let source = source_facts(entry, pyramid);
            for &box_size in sizes {
                let query = FitQuery {
                    id: entry.id.clone(),
                    box_size,
                    format: None,
                };
                let fitted = self.fit(&source, &query);
                let render = || self.render(pyramid, &fitted, &budget);
                match out {
                    None => self.store.ensure(&source, &fitted, render)?,
                    Some(dir) => write_missing(&dir.join(&fitted.name), &source, render)?,
                }
                done(&fitted);
                if !names.contains(&fitted.name) {
                    names.push(fitted.name);
                }
            }
        }
        if let Some(manifest) = manifest {
            mirrors::write_manifest(manifest, &names)?;
        }
        Ok(names)
    }
}

/// What a fit needs of a catalogue entry and its pyramid.
pub fn source_facts(entry: &ImageEntry, pyramid: &Pyramid) -> SourceFacts {
    SourceFacts {
        width: entry.width,
        height: entry.height,
        format: entry.format,
        has_alpha: pyramid.layout().has_alpha(),
        version: entry.version,
    }
}

/// Writes a fitted file into a folder laid out like the cache, unless it is there already
/// (names carry the source's version, so an existing file is current).
fn write_missing(
    path: &Path,
    source: &SourceFacts,
    render: impl FnOnce() -> Result<Vec<u8>>,
) -> Result<()> {
    if path.is_file() {
        return Ok(());
    }
    store::write_atomic(path, &render()?, Some(store::source_mtime(source)))
}
