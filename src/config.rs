//! config: the server's settings, from a TOML file, the environment and flags.
//!
//! Two stages: [`SettingsLayer`] holds what one source said (every field optional); clap fills
//! one from flags and environment variables (flags win), serde one from the TOML file; the
//! flag/environment layer is laid over the file's, and [`Settings::resolve`] applies defaults
//! and checks values. Environment names are Gigaview's where it had them.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::cache::CacheMode;
use crate::imgserv::mirrors::MirrorConfig;
use crate::imgserv::{ImgServConfig, DEFAULT_RASTER};
use crate::limits::Limits;
use crate::memory::MemoryBudget;
use crate::pyramid::build::{BaseStorage, BuildOptions};
use crate::rate_limit::RateLimit;
use crate::signing::UrlSigner;

/// A size in bytes, written as a number of bytes or with a K, M, G or T suffix (powers of
/// 1024): `1048576`, `512M`, `2GiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (number, unit) = t.split_at(digits);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("{s:?} is not a size (bytes, or with K, M, G, T)"))?;
        let shift = match unit
            .trim()
            .to_ascii_uppercase()
            .trim_end_matches("IB")
            .trim_end_matches('B')
        {
            "" => 0,
            "K" => 10,
            "M" => 20,
            "G" => 30,
            "T" => 40,
            _ => return Err(format!("{s:?}: unknown size unit (use K, M, G or T)")),
        };
        number
            .checked_mul(1 << shift)
            .map(ByteSize)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// What one source of settings (flags with environment, or the TOML file) says. Every field is
/// optional; defaults are applied by [`Settings::resolve`] and shown in each setting's help.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsLayer {
    /// Address to listen on (default: 127.0.0.1; 0.0.0.0 for every interface).
    #[arg(long, env = "HOST")]
    pub host: Option<IpAddr>,
    /// Port to listen on (default: 8080).
    #[arg(long, env = "PORT")]
    pub port: Option<u16>,
    /// Folder of images, scanned recursively (default: ./data).
    #[arg(long, env = "DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Tile cache: memory, file or disabled (default: memory).
    #[arg(long, env = "CACHE")]
    pub cache: Option<String>,
    /// Most tiles the memory cache holds (default: 10000).
    #[arg(long, env = "CACHE_MEMORY_TILES")]
    pub cache_memory_tiles: Option<u64>,
    /// Most bytes the memory cache holds, at most half of MEMORY_LIMIT (default: a quarter of
    /// MEMORY_LIMIT, 256M at most).
    #[arg(long, env = "CACHE_MEMORY_BYTES")]
    pub cache_memory_bytes: Option<ByteSize>,
    /// Folder of the file cache (default: DATA_DIR/.gigatile/tiles).
    #[arg(long, env = "CACHE_FILE_DIR")]
    pub cache_file_dir: Option<PathBuf>,
    /// Most bytes the file cache holds; least recently used tiles go first (default: 1G).
    #[arg(long, env = "CACHE_FILE_MAX_BYTES")]
    pub cache_file_max_bytes: Option<ByteSize>,
    /// Coarse levels of every image rendered ahead of requests, 1 being the whole-image tile
    /// (default: 3).
    #[arg(long, env = "WARMUP_LEVELS")]
    pub warmup_levels: Option<u32>,
    /// Background workers rendering warm-up tiles (default: 1).
    #[arg(long, env = "WARMUP_WORKERS")]
    pub warmup_workers: Option<usize>,
    /// Log filter: error, warn, info, debug, trace, or a tracing filter (default: info).
    #[arg(long, env = "LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Log format (default: pretty).
    #[arg(long, env = "LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Bearer token required to upload and delete; without it, only loopback clients may (default: none).
    #[arg(long, env = "UPLOAD_TOKEN", hide_env_values = true)]
    pub upload_token: Option<String>,
    /// Largest upload accepted; larger ones get 413 (default: 1G).
    #[arg(long, env = "MAX_UPLOAD_SIZE")]
    pub max_upload_size: Option<ByteSize>,
    /// Origins allowed by CORS: `*` (every route, any origin, no credentials) or a
    /// comma-separated list of exact origins (`scheme://host[:port]`, every route); when unset,
    /// image routes allow any origin and the API only its own (default: unset).
    #[arg(long, env = "ALLOWED_ORIGIN")]
    pub allowed_origin: Option<String>,
    /// Base URL used in emitted links, e.g. `https://example.org/tiles` (default: from the request).
    #[arg(long, env = "PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,
    /// Trust a reverse proxy's X-Forwarded-Proto/Host (emitted links) and X-Forwarded-For
    /// (the client's address, for rate limits and loopback-only uploads) (default: false).
    #[arg(long, env = "TRUST_PROXY")]
    pub trust_proxy: Option<bool>,
    /// Requests per second each client address may make, fractions allowed; beyond, 429 with
    /// Retry-After; 0 = no limit (default: 0).
    #[arg(long, env = "RATE_LIMIT")]
    pub rate_limit: Option<f64>,
    /// Requests a client may make at once before RATE_LIMIT paces it (default: RATE_LIMIT
    /// rounded up, at least 1).
    #[arg(long, env = "RATE_BURST")]
    pub rate_burst: Option<u32>,
    /// Folder of built pyramids (default: DATA_DIR/.gigatile/pyramids).
    #[arg(long, env = "PYRAMID_DIR")]
    pub pyramid_dir: Option<PathBuf>,
    /// Most bytes of built pyramids; least recently used go first; 0 = no limit (default: 0).
    #[arg(long, env = "PYRAMID_MAX_BYTES")]
    pub pyramid_max_bytes: Option<ByteSize>,
    /// Full-resolution level of built pyramids: jpeg or lossless (default: jpeg).
    #[arg(long, env = "PYRAMID_BASE")]
    pub pyramid_base: Option<String>,
    /// Pyramids built at once (default: 1).
    #[arg(long, env = "PYRAMID_BUILDS")]
    pub pyramid_builds: Option<usize>,
    /// Render threads (default: one per core).
    #[arg(long, env = "RENDER_THREADS")]
    pub render_threads: Option<usize>,
    /// Renders that may wait for a thread; beyond, 503 with Retry-After (default: 64).
    #[arg(long, env = "RENDER_QUEUE")]
    pub render_queue: Option<usize>,
    /// Longest a render may wait and run, in milliseconds (default: 10000).
    #[arg(long, env = "RENDER_DEADLINE_MS")]
    pub render_deadline_ms: Option<u64>,
    /// Longest a tile of a level still being built waits before 503, in milliseconds (default: 2000).
    #[arg(long, env = "TILE_WAIT_MS")]
    pub tile_wait_ms: Option<u64>,
    /// Longest a client may take to send a request's headers, and to keep an idle connection,
    /// in milliseconds (default: 15000).
    #[arg(long, env = "HEADER_READ_TIMEOUT_MS")]
    pub header_read_timeout_ms: Option<u64>,
    /// Most pixels a source may have (default: 4000000000).
    #[arg(long, env = "MAX_SOURCE_PIXELS")]
    pub max_source_pixels: Option<u64>,
    /// Longest side a source may have, in pixels (default: 1048576).
    #[arg(long, env = "MAX_SOURCE_DIMENSION")]
    pub max_source_dimension: Option<u32>,
    /// Most memory a source that cannot be streamed may take decoded (default: half of
    /// MEMORY_LIMIT).
    #[arg(long, env = "MAX_DECODE_BYTES")]
    pub max_decode_bytes: Option<ByteSize>,
    /// The memory budget every large allocation draws from: the memory tile cache, whole
    /// decodes, pyramid builds, renders; work that does not fit waits, then gets 503
    /// (default: 1G).
    #[arg(long, env = "MEMORY_LIMIT")]
    pub memory_limit: Option<ByteSize>,
    /// JPEG quality of rendered and built tiles, 1-100 (default: 85).
    #[arg(long, env = "JPEG_QUALITY")]
    pub jpeg_quality: Option<u8>,
    /// WebP quality of rendered tiles, 1-100 (default: 80).
    #[arg(long, env = "WEBP_QUALITY")]
    pub webp_quality: Option<u8>,
    /// Colour of padding and of transparency in JPEG tiles, as RRGGBB (default: 000000).
    #[arg(long, env = "TILE_BACKGROUND")]
    pub tile_background: Option<String>,
    /// Fitted images' widths are rounded down to a multiple of this, in pixels (default: 50).
    #[arg(long, env = "RASTER")]
    pub raster: Option<u32>,
    /// Folder of fitted images (default: DATA_DIR/.gigatile/imgcache).
    #[arg(long, env = "IMGSERV_CACHE_DIR")]
    pub imgserv_cache_dir: Option<PathBuf>,
    /// Most bytes of fitted images; over it, least recently used ones are deleted down to 2/3
    /// of it (default: 1G).
    #[arg(long, env = "IMGSERV_CACHE_MAX_BYTES")]
    pub imgserv_cache_max_bytes: Option<ByteSize>,
    /// Seconds since a fitted image was last handed out by a redirect during which it is never
    /// deleted (default: 60).
    #[arg(long, env = "IMGSERV_CACHE_MIN_LIFETIME")]
    pub imgserv_cache_min_lifetime: Option<u64>,
    /// Status of fitted-image redirects: 302, 303 or 307 (default: 302).
    #[arg(long, env = "IMGSERV_REDIRECT_STATUS")]
    pub imgserv_redirect_status: Option<u16>,
    /// Mirrors of fitted images (TOML file only: `[[mirrors]]` tables with `name`, `base_url`,
    /// `bandwidth` and `manifest`; a relative manifest path is read from the file's folder).
    #[arg(skip)]
    pub mirrors: Option<Vec<MirrorConfig>>,
    /// Pixels by which each Deep Zoom tile reaches into its neighbours, 0 to 128 (default: 0).
    #[arg(long, env = "DZI_OVERLAP")]
    pub dzi_overlap: Option<u32>,
    /// Keys that sign image URLs, comma-separated, each used as the bytes of its text and at
    /// least 16 bytes long; the first signs, all verify. When set, image routes need a valid
    /// `/s/{token}` prefix (see `gigatile sign`) (default: none, URLs are not signed).
    #[arg(long, env = "URL_SIGNING_KEYS", hide_env_values = true)]
    pub url_signing_keys: Option<String>,
}

impl SettingsLayer {
    /// Reads a TOML file of settings (keys as the flags, with `_` for `-`).
    pub fn from_file(path: &Path) -> Result<SettingsLayer, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut layer: SettingsLayer =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let folder = path.parent().unwrap_or(Path::new(""));
        for mirror in layer.mirrors.iter_mut().flatten() {
            mirror.manifest = folder.join(&mirror.manifest);
        }
        Ok(layer)
    }

    /// This layer with `other`'s values where this one has none.
    pub fn over(self, other: SettingsLayer) -> SettingsLayer {
        let mut top = serde_json::to_value(self).expect("settings serialize");
        let bottom = serde_json::to_value(other).expect("settings serialize");
        if let (Some(top), serde_json::Value::Object(bottom)) = (top.as_object_mut(), bottom) {
            for (key, value) in bottom {
                if top.get(&key).is_none_or(|v| v.is_null()) {
                    top.insert(key, value);
                }
            }
        }
        serde_json::from_value(top).expect("settings deserialize")
    }
}

/// Default `MEMORY_LIMIT`: the server fits a 1 GiB container.
pub const DEFAULT_MEMORY_LIMIT: u64 = 1 << 30;
/// The smallest `MEMORY_LIMIT` accepted.
pub const MIN_MEMORY_LIMIT: u64 = 64 << 20;

/// Who may read responses from other origins (CORS), as `ALLOWED_ORIGIN` says; parsed once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Unset: image routes answer any origin (`*`); the API and uploads their own origin only.
    #[default]
    ImageRoutesOnly,
    /// `*`: every route answers any origin with `*` (never with credentials).
    Any,
    /// Exact origins, as browsers send them (lower case, without a default port): every route
    /// answers a listed origin with itself.
    List(Vec<String>),
}

impl FromStr for AllowedOrigins {
    type Err = String;

    /// `*`, or a comma-separated list of `scheme://host[:port]` (spaces around each are
    /// trimmed, empty items skipped); empty or blank means unset.
    ///
    /// ```
    /// use gigatile::config::AllowedOrigins;
    ///
    /// assert_eq!("*".parse(), Ok(AllowedOrigins::Any));
    /// assert_eq!(
    ///     "https://A.example:443, http://localhost:3000".parse(),
    ///     Ok(AllowedOrigins::List(vec![
    ///         "https://a.example".to_string(),
    ///         "http://localhost:3000".to_string(),
    ///     ]))
    /// );
    /// assert!("https://a.example/app".parse::<AllowedOrigins>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let items: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .collect();
        match items.as_slice() {
            [] => Ok(AllowedOrigins::ImageRoutesOnly),
            ["*"] => Ok(AllowedOrigins::Any),
            _ => items
                .iter()
                .map(|o| parse_origin(o))
                .collect::<Result<_, _>>()
                .map(AllowedOrigins::List),
        }
    }
}

/// An origin, `scheme://host[:port]` with nothing after, in the form browsers send it in
/// `Origin`: scheme and host in lower case, the scheme's default port left out.
fn parse_origin(s: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "ALLOWED_ORIGIN must be * or a comma-separated list of origins \
             (scheme://host[:port], without a path); {s:?} is not one"
        )
    };
    let (scheme, rest) = s.split_once("://").ok_or_else(bad)?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return Err(bad());
    }
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (address, after) = v6.split_once(']').ok_or_else(bad)?;
            address.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            let port = match after {
                "" => None,
                after => Some(after.strip_prefix(':').ok_or_else(bad)?),
            };
            (&rest[..address.len() + 2], port)
        }
        None => {
            let (host, port) = match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            };
            let host_ok = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
            if !host_ok {
                return Err(bad());
            }
            (host, port)
        }
    };
    let port = match port {
        Some(p) if (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().map_err(|_| bad())?)
        }
        Some(_) => return Err(bad()),
        None => None,
    };
    let scheme = scheme.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    Ok(match (scheme.as_str(), port) {
        ("http", Some(80)) | ("https", Some(443)) | (_, None) => format!("{scheme}://{host}"),
        (_, Some(port)) => format!("{scheme}://{host}:{port}"),
    })
}

/// The largest Deep Zoom overlap: half a tile.
pub const MAX_DZI_OVERLAP: u32 = 128;

/// Every setting, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: IpAddr,
    pub port: u16,
    pub data_dir: PathBuf,
    pub cache: CacheMode,
    pub cache_memory_tiles: u64,
    pub cache_memory_bytes: u64,
    pub cache_file_dir: PathBuf,
    pub cache_file_max_bytes: u64,
    pub warmup_levels: u32,
    pub warmup_workers: usize,
    pub log_level: String,
    pub log_format: LogFormat,
    pub upload_token: Option<String>,
    pub max_upload_size: u64,
    /// Who may read responses from other origins (`ALLOWED_ORIGIN`).
    pub allowed_origins: AllowedOrigins,
    pub public_base_url: Option<String>,
    pub trust_proxy: bool,
    /// Per-client request rate (`RATE_LIMIT`, `RATE_BURST`); `None` when off.
    pub rate_limit: Option<RateLimit>,
    pub pyramid_dir: PathBuf,
    pub pyramid_max_bytes: u64,
    pub pyramid_builds: usize,
    pub build: BuildOptions,
    pub render_threads: usize,
    pub render_queue: usize,
    pub render_deadline: Duration,
    pub tile_wait: Duration,
    pub header_read_timeout: Duration,
    pub limits: Limits,
    pub jpeg_quality: u8,
    pub webp_quality: u8,
    pub tile_background: [u8; 3],
    /// Fitted images: raster, cache folder and limits, qualities, mirrors.
    pub imgserv: ImgServConfig,
    /// Status of fitted-image redirects.
    pub imgserv_redirect_status: u16,
    pub dzi_overlap: u32,
    /// `URL_SIGNING_KEYS`; `None` when URLs are not signed.
    pub url_signing: Option<UrlSigner>,
}

impl Settings {
    /// Applies defaults and checks values.
    pub fn resolve(layer: SettingsLayer) -> Result<Settings, String> {
        let data_dir = layer.data_dir.unwrap_or_else(|| PathBuf::from("data"));
        let own = data_dir.join(".gigatile");
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let jpeg_quality = quality(layer.jpeg_quality.unwrap_or(85), "JPEG_QUALITY")?;
        let render_threads = layer.render_threads.unwrap_or(cores).max(1);
        let defaults = Limits::default();
        let memory_limit = layer.memory_limit.map_or(DEFAULT_MEMORY_LIMIT, |b| b.0);
        if memory_limit < MIN_MEMORY_LIMIT {
            return Err(format!(
                "MEMORY_LIMIT must be at least {} MiB",
                MIN_MEMORY_LIMIT >> 20
            ));
        }
        let cache_memory_bytes = layer
            .cache_memory_bytes
            .map_or((memory_limit / 4).min(256 << 20), |b| b.0);
        if cache_memory_bytes > memory_limit / 2 {
            return Err(format!(
                "CACHE_MEMORY_BYTES ({} MiB) must be at most half of MEMORY_LIMIT ({} MiB)",
                cache_memory_bytes >> 20,
                memory_limit >> 20
            ));
        }
        let webp_quality = quality(layer.webp_quality.unwrap_or(80), "WEBP_QUALITY")?;
        let imgserv = ImgServConfig {
            cache_dir: layer
                .imgserv_cache_dir
                .unwrap_or_else(|| own.join("imgcache")),
            raster: match layer.raster.unwrap_or(DEFAULT_RASTER) {
                0 => return Err("RASTER must be at least 1".into()),
                raster => raster,
            },
            max_bytes: layer.imgserv_cache_max_bytes.map_or(1 << 30, |b| b.0),
            min_lifetime: Duration::from_secs(layer.imgserv_cache_min_lifetime.unwrap_or(60)),
            jpeg_quality: Some(jpeg_quality),
            webp_quality: Some(webp_quality),
            mirrors: layer.mirrors.unwrap_or_default(),
        };
        Ok(Settings {
            host: layer.host.unwrap_or(IpAddr::from([127, 0, 0, 1])),
            port: layer.port.unwrap_or(8080),
            cache: layer
                .cache
                .as_deref()
                .unwrap_or("memory")
                .parse()
                .map_err(|_| "CACHE must be memory, file or disabled".to_string())?,
            cache_memory_tiles: layer.cache_memory_tiles.unwrap_or(10_000),
            cache_memory_bytes,
            cache_file_dir: layer.cache_file_dir.unwrap_or_else(|| own.join("tiles")),
            cache_file_max_bytes: layer.cache_file_max_bytes.map_or(1 << 30, |b| b.0),
            warmup_levels: layer.warmup_levels.unwrap_or(3),
            warmup_workers: layer.warmup_workers.unwrap_or(1),
            log_level: layer.log_level.unwrap_or_else(|| "info".into()),
            log_format: layer.log_format.unwrap_or(LogFormat::Pretty),
            upload_token: layer.upload_token.filter(|t| !t.is_empty()),
            max_upload_size: layer.max_upload_size.map_or(1 << 30, |b| b.0),
            allowed_origins: layer
                .allowed_origin
                .as_deref()
                .map_or(Ok(AllowedOrigins::default()), str::parse)?,
            public_base_url: layer
                .public_base_url
                .filter(|u| !u.is_empty())
                .map(|u| u.trim_end_matches('/').to_string()),
            trust_proxy: layer.trust_proxy.unwrap_or(false),
            rate_limit: layer
                .rate_limit
                .filter(|&per_second| per_second != 0.0)
                .map(|per_second| RateLimit::new(per_second, layer.rate_burst))
                .transpose()?,
            pyramid_dir: layer.pyramid_dir.unwrap_or_else(|| own.join("pyramids")),
            pyramid_max_bytes: layer.pyramid_max_bytes.map_or(0, |b| b.0),
            pyramid_builds: layer.pyramid_builds.unwrap_or(1).max(1),
            build: BuildOptions {
                quality: jpeg_quality,
                base: match layer.pyramid_base.as_deref().unwrap_or("jpeg") {
                    "jpeg" => BaseStorage::Jpeg,
                    "lossless" => BaseStorage::Lossless,
                    other => {
                        return Err(format!(
                            "PYRAMID_BASE must be jpeg or lossless, not {other:?}"
                        ))
                    }
                },
                threads: render_threads,
            },
            render_threads,
            render_queue: layer.render_queue.unwrap_or(64).max(1),
            render_deadline: Duration::from_millis(layer.render_deadline_ms.unwrap_or(10_000)),
            tile_wait: Duration::from_millis(layer.tile_wait_ms.unwrap_or(2_000)),
            header_read_timeout: Duration::from_millis(
                layer.header_read_timeout_ms.unwrap_or(15_000),
            ),
            limits: Limits {
                max_pixels: layer.max_source_pixels.unwrap_or(defaults.max_pixels),
                max_dimension: layer.max_source_dimension.unwrap_or(defaults.max_dimension),
                max_decode_bytes: layer.max_decode_bytes.map_or(memory_limit / 2, |b| b.0),
                budget: MemoryBudget::new(memory_limit),
            },
            jpeg_quality,
            webp_quality,
            tile_background: parse_colour(layer.tile_background.as_deref().unwrap_or("000000"))?,
            imgserv,
            imgserv_redirect_status: match layer.imgserv_redirect_status.unwrap_or(302) {
                status @ (302 | 303 | 307) => status,
                other => {
                    return Err(format!(
                        "IMGSERV_REDIRECT_STATUS must be 302, 303 or 307, not {other}"
                    ))
                }
            },
            dzi_overlap: match layer.dzi_overlap.unwrap_or(0) {
                overlap @ 0..=MAX_DZI_OVERLAP => overlap,
                _ => return Err(format!("DZI_OVERLAP must be from 0 to {MAX_DZI_OVERLAP}")),
            },
            url_signing: layer
                .url_signing_keys
                .as_deref()
                .map(str::trim)
                .filter(|keys| !keys.is_empty())
                .map(str::parse)
                .transpose()?,
            data_dir,
        })
    }
}

fn quality(q: u8, name: &str) -> Result<u8, String> {
    if (1..=100).contains(&q) {
        Ok(q)
    } else {
        Err(format!("{name} must be from 1 to 100"))
    }
}

/// Parses `RRGGBB` (with or without `#`).
pub fn parse_colour(s: &str) -> Result<[u8; 3], String> {
    let hex = s.trim_start_matches('#');
    let bad = || format!("TILE_BACKGROUND must be a colour as RRGGBB, not {s:?}");
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
    Ok([channel(0)?, channel(2)?, channel(4)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!("1024".parse::<ByteSize>().unwrap().0, 1024);
        assert_eq!("512M".parse::<ByteSize>().unwrap().0, 512 << 20);
        assert_eq!("2GiB".parse::<ByteSize>().unwrap().0, 2 << 30);
        assert_eq!("3 kb".parse::<ByteSize>().unwrap().0, 3 << 10);
        assert!("12X".parse::<ByteSize>().is_err());
        assert!("".parse::<ByteSize>().is_err());
    }

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let file: SettingsLayer =
            toml::from_str("port = 9000\ndata_dir = \"/srv/img\"\ncache_memory_bytes = \"64M\"")
                .unwrap();
        let flags = SettingsLayer {
            port: Some(7000),
            ..SettingsLayer::default()
        };
        let s = Settings::resolve(flags.over(file)).unwrap();
        assert_eq!(s.port, 7000);
        assert_eq!(s.data_dir, PathBuf::from("/srv/img"));
        assert_eq!(s.cache_memory_bytes, 64 << 20);
        assert_eq!(s.pyramid_dir, PathBuf::from("/srv/img/.gigatile/pyramids"));
        assert_eq!(s.jpeg_quality, 85);
        assert_eq!(s.dzi_overlap, 0);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(toml::from_str::<SettingsLayer>("prot = 1").is_err());
        let layer = |f: fn(&mut SettingsLayer)| {
            let mut l = SettingsLayer::default();
            f(&mut l);
            Settings::resolve(l)
        };
        assert!(layer(|l| l.jpeg_quality = Some(0)).is_err());
        assert!(layer(|l| l.cache = Some("ram".into())).is_err());
        assert!(layer(|l| l.tile_background = Some("#12345".into())).is_err());
        assert!(layer(|l| l.dzi_overlap = Some(129)).is_err());
        assert_eq!(
            layer(|l| l.dzi_overlap = Some(128)).unwrap().dzi_overlap,
            128
        );
        assert_eq!(parse_colour("#ff8000").unwrap(), [255, 128, 0]);
        assert!(layer(|l| l.raster = Some(0)).is_err());
        assert!(layer(|l| l.imgserv_redirect_status = Some(301)).is_err());
        assert!(layer(|l| l.url_signing_keys = Some("short".into())).is_err());
        assert!(layer(|l| l.url_signing_keys = Some(" ".into()))
            .unwrap()
            .url_signing
            .is_none());
    }

    #[test]
    fn mirrors_come_from_the_file_with_manifests_beside_it() {
        let dir = std::env::temp_dir().join(format!("gigatile-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("gigatile.toml");
        std::fs::write(
            &file,
            "raster = 100\n[[mirrors]]\nname = \"eu\"\nbase_url = \"https://eu.example.org/img\"\n\
             bandwidth = 1000\nmanifest = \"eu.txt\"\n",
        )
        .unwrap();
        let layer = SettingsLayer::from_file(&file).unwrap();
        let s = Settings::resolve(SettingsLayer::default().over(layer)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(s.imgserv.raster, 100);
        assert_eq!(s.imgserv.mirrors.len(), 1);
        assert_eq!(s.imgserv.mirrors[0].manifest, dir.join("eu.txt"));
        assert_eq!(
            s.imgserv.cache_dir,
            PathBuf::from("data/.gigatile/imgcache")
        );
    }

    #[test]
    fn allowed_origin_is_any_or_a_list_of_exact_origins() {
        let parse = |s: &str| s.parse::<AllowedOrigins>();
        assert_eq!(parse("").unwrap(), AllowedOrigins::ImageRoutesOnly);
        assert_eq!(parse(" , ").unwrap(), AllowedOrigins::ImageRoutesOnly);
        assert_eq!(parse(" * ").unwrap(), AllowedOrigins::Any);
        assert_eq!(
            parse(
                "https://a.example, HTTP://B.Example:8080 ,http://c.example:80,https://[::1]:443"
            )
            .unwrap(),
            AllowedOrigins::List(vec![
                "https://a.example".into(),
                "http://b.example:8080".into(),
                "http://c.example".into(),
                "https://[::1]".into(),
            ])
        );
        assert_eq!(
            parse("http://127.0.0.1:9000").unwrap(),
            AllowedOrigins::List(vec!["http://127.0.0.1:9000".into()])
        );
        for bad in [
            "a.example",
            "https://a.example/",
            "https://a.example/app",
            "https://a.example?x",
            "https://user@a.example",
            "https://a.example:99999",
            "https://a.example:",
            "https://",
            "https://[::1",
            "https://[nope]",
            "https://[::1]x",
            "*, https://a.example",
            "1ttp://a.example",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("ALLOWED_ORIGIN"), "{bad}: {e}");
        }
        let layer = SettingsLayer {
            allowed_origin: Some("https://a.example/path".into()),
            ..SettingsLayer::default()
        };
        assert!(Settings::resolve(layer).is_err());
    }

    #[test]
    fn rate_limits_are_off_by_default_and_burst_follows_the_rate() {
        let resolve = |rate: Option<f64>, burst: Option<u32>| {
            Settings::resolve(SettingsLayer {
                rate_limit: rate,
                rate_burst: burst,
                ..SettingsLayer::default()
            })
        };
        assert!(resolve(None, None).unwrap().rate_limit.is_none());
        assert!(resolve(Some(0.0), Some(9)).unwrap().rate_limit.is_none());
        let limit = resolve(Some(2.5), None).unwrap().rate_limit.unwrap();
        assert_eq!((limit.per_second, limit.burst.get()), (2.5, 3));
        let limit = resolve(Some(0.2), None).unwrap().rate_limit.unwrap();
        assert_eq!(limit.burst.get(), 1);
        let limit = resolve(Some(5.0), Some(20)).unwrap().rate_limit.unwrap();
        assert_eq!(limit.burst.get(), 20);
        let file: SettingsLayer = toml::from_str("rate_limit = 5\nrate_burst = 7").unwrap();
        assert_eq!(file.rate_limit, Some(5.0));
        for (rate, burst) in [(-1.0, None), (f64::NAN, None), (1e12, None), (1.0, Some(0))] {
            assert!(resolve(Some(rate), burst).is_err(), "{rate} {burst:?}");
        }
    }
}
