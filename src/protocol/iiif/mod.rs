//! protocol::iiif: the IIIF Image API 3.0 and 2.1 (compliance level 2): paths under `/iiif/3/`
//! and `/iiif/2/` to image ids and image requests, image requests resolved against an image's
//! size with the spec's rules into the one canonical [`TileRequest`], and canonical URIs.
//! [`info`] formats info.json and the Presentation 3 manifest. Knows no HTTP, files or pixels.
//!
//! Every feature of level 2 is served, and beyond it mirroring, arbitrary rotation (to a
//! thousandth of a degree), upscaling (`^` in 3.0), WebP and the canonical and profile links;
//! tif, gif, pdf and jp2 are refused with 415.
//!
//! Resolution follows the spec in full-resolution pixels: the region is cropped to the image
//! (entirely outside or empty: 400), the size computed from it (3.0 needs `^` to upscale), then
//! the request is put on the coarsest pyramid level on whose pixel grid the region lies exactly,
//! so that a request for an advertised tile (region on the 256·2^k grid at its level-k size)
//! is exactly one stored tile and can pass through.

pub mod info;

use crate::codec::{EncodeOptions, OutputFormat};
use crate::geometry::{halve_ceil, Geometry, Level};
use crate::raster::Rect;
use crate::render::transform::{Quality, Rotation, Transform};
use crate::render::TileRequest;

/// Widest and tallest output: the renderer's limit, less one pixel for WebP's 16383.
pub const MAX_WIDTH: u32 = 16383;
/// See [`MAX_WIDTH`].
pub const MAX_HEIGHT: u32 = 16383;
/// Most output pixels: 4096², a quarter of the renderer's limit, because a render holds its
/// whole region read from the stored level below the output's scale (up to four times the
/// output's pixels) and IIIF lets any client ask for `full/max`.
pub const MAX_AREA: u64 = 1 << 24;

/// The two versions served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// Image API 2.1 under `/iiif/2/`.
    V2,
    /// Image API 3.0 under `/iiif/3/`.
    V3,
}

impl Version {
    /// The path prefix, without slashes (`iiif/3`).
    pub const fn prefix(self) -> &'static str {
        match self {
            Version::V2 => "iiif/2",
            Version::V3 => "iiif/3",
        }
    }

    /// The JSON-LD context of the Image API.
    pub const fn context(self) -> &'static str {
        match self {
            Version::V2 => "http://iiif.io/api/image/2/context.json",
            Version::V3 => "http://iiif.io/api/image/3/context.json",
        }
    }

    /// The URI of the level 2 profile (for the `rel="profile"` link).
    pub const fn profile_uri(self) -> &'static str {
        match self {
            Version::V2 => "http://iiif.io/api/image/2/level2.json",
            Version::V3 => "http://iiif.io/api/image/3/level2.json",
        }
    }
}

/// Why an IIIF request cannot be answered; each kind is one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IiifError {
    /// Bad syntax, a region outside the image, an empty or too large size (400).
    #[error("{0}")]
    BadRequest(String),
    /// A format the spec names that this server does not produce (415).
    #[error("{0}")]
    UnsupportedFormat(String),
}

fn bad(msg: impl Into<String>) -> IiifError {
    IiifError::BadRequest(msg.into())
}

/// What a path under `/iiif/{2,3}/` addresses.
#[derive(Debug, Clone, PartialEq)]
pub enum IiifPath {
    /// `{id}`: redirected to its info.json.
    Base(String),
    /// `{id}/info.json`.
    Info(String),
    /// `{id}/manifest.json` (a Presentation 3 manifest; 3.0 only).
    Manifest(String),
    /// `{id}/{region}/{size}/{rotation}/{quality}.{format}`.
    Image(String, ImageRequest),
}

impl IiifPath {
    /// The image id the path addresses.
    pub fn id(&self) -> &str {
        match self {
            IiifPath::Base(id) | IiifPath::Info(id) | IiifPath::Manifest(id) => id,
            IiifPath::Image(id, _) => id,
        }
    }
}

/// The region parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Region {
    Full,
    Square,
    Pixels { x: u32, y: u32, w: u32, h: u32 },
    Percent { x: f64, y: f64, w: f64, h: f64 },
}

/// The size parameter, without its `^`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SizeKind {
    /// `max` (and 2.1's `full`).
    Max,
    Width(u32),
    Height(u32),
    Percent(f64),
    Exact(u32, u32),
    Confined(u32, u32),
}

/// The size parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    /// `^`: upscaling allowed (3.0; 2.1 always allows it).
    pub upscale: bool,
    pub kind: SizeKind,
}

/// The quality named in the URL (`default` and `color` render alike, but canonical URIs keep
/// the name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QualityName {
    Default,
    Color,
    Gray,
    Bitonal,
}

impl QualityName {
    const fn name(self) -> &'static str {
        match self {
            QualityName::Default => "default",
            QualityName::Color => "color",
            QualityName::Gray => "gray",
            QualityName::Bitonal => "bitonal",
        }
    }

    const fn quality(self) -> Quality {
        match self {
            QualityName::Default | QualityName::Color => Quality::Color,
            QualityName::Gray => Quality::Gray,
            QualityName::Bitonal => Quality::Bitonal,
        }
    }
}

/// The parameters of an image request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageRequest {
    pub region: Region,
    pub size: Size,
    pub mirror: bool,
    pub rotation: Rotation,
    pub quality: QualityName,
    pub format: OutputFormat,
}

/// Parses the (percent-decoded) path after `/iiif/3/` or `/iiif/2/`. The id is what is left
/// after the fixed parts at the right; an id with slashes whose path ends like an image
/// request is read as one (the caller checks whole-path ids first for base URIs).
///
/// ```
/// use gigatile::protocol::iiif::{parse_path, IiifPath, Version};
/// let p = parse_path(Version::V3, "hubble/x.tif/0,0,512,512/256,/0/default.jpg").unwrap();
/// let IiifPath::Image(id, req) = p else { panic!() };
/// assert_eq!(id, "hubble/x.tif");
/// assert!(!req.mirror);
/// ```
pub fn parse_path(version: Version, path: &str) -> Result<IiifPath, IiifError> {
    let id = |s: &str| super::gigaview::parse_id(s).map_err(|e| bad(e.0));
    if let Some(rest) = path.strip_suffix("/info.json") {
        return Ok(IiifPath::Info(id(rest)?));
    }
    if version == Version::V3 {
        if let Some(rest) = path.strip_suffix("/manifest.json") {
            return Ok(IiifPath::Manifest(id(rest)?));
        }
    }
    let segments: Vec<&str> = path.rsplitn(5, '/').collect();
    if let [last, rotation, size, region, image_id] = segments[..] {
        if let Some((quality, format)) = last.rsplit_once('.') {
            let request = ImageRequest {
                region: parse_region(region)?,
                size: parse_size(version, size)?,
                mirror: rotation.starts_with('!'),
                rotation: parse_rotation(rotation)?,
                quality: parse_quality(quality)?,
                format: parse_format(format)?,
            };
            return Ok(IiifPath::Image(id(image_id)?, request));
        }
    }
    Ok(IiifPath::Base(id(path)?))
}

/// A whole number of at most 9 digits.
fn parse_int(s: &str, what: &str) -> Result<u32, IiifError> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!("{what} must be a whole number, not {s:?}")));
    }
    s.parse()
        .map_err(|_| bad(format!("{what} is not a number")))
}

/// A non-negative decimal (`12`, `12.5`, `.5`); no sign, exponent, NaN or infinity.
fn parse_decimal(s: &str, what: &str) -> Result<f64, IiifError> {
    let ok = !s.is_empty()
        && s.len() <= 20
        && s.bytes().filter(|&b| b == b'.').count() <= 1
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.bytes().any(|b| b.is_ascii_digit());
    if !ok {
        return Err(bad(format!("{what} must be a number, not {s:?}")));
    }
    s.parse()
        .map_err(|_| bad(format!("{what} is not a number")))
}

fn four<T>(
    s: &str,
    what: &str,
    parse: impl Fn(&str, &str) -> Result<T, IiifError>,
) -> Result<[T; 4], IiifError> {
    let parts: Vec<&str> = s.split(',').collect();
    let [x, y, w, h] = parts[..] else {
        return Err(bad(format!("{what} must be x,y,w,h")));
    };
    Ok([
        parse(x, what)?,
        parse(y, what)?,
        parse(w, what)?,
        parse(h, what)?,
    ])
}

fn parse_region(s: &str) -> Result<Region, IiifError> {
    match s {
        "full" => Ok(Region::Full),
        "square" => Ok(Region::Square),
        _ => {
            if let Some(pct) = s.strip_prefix("pct:") {
                let [x, y, w, h] = four(pct, "the region", parse_decimal)?;
                if w == 0.0 || h == 0.0 {
                    return Err(bad("the region is empty"));
                }
                return Ok(Region::Percent { x, y, w, h });
            }
            let [x, y, w, h] = four(s, "the region", parse_int)?;
            if w == 0 || h == 0 {
                return Err(bad("the region is empty"));
            }
            Ok(Region::Pixels { x, y, w, h })
        }
    }
}

fn parse_size(version: Version, s: &str) -> Result<Size, IiifError> {
    let (upscale, rest) = match s.strip_prefix('^') {
        Some(rest) if version == Version::V3 => (true, rest),
        Some(_) => {
            return Err(bad(
                "`^` sizes are IIIF 3.0 syntax; 2.1 upscales without it",
            ))
        }
        None => (false, s),
    };
    let kind = match rest {
        "max" => SizeKind::Max,
        "full" if version == Version::V2 => SizeKind::Max,
        "full" => return Err(bad("size `full` is not IIIF 3.0: use `max`")),
        _ => {
            if let Some(pct) = rest.strip_prefix("pct:") {
                let n = parse_decimal(pct, "the size percentage")?;
                if n == 0.0 {
                    return Err(bad("the size is empty"));
                }
                SizeKind::Percent(n)
            } else {
                let (confined, wh) = match rest.strip_prefix('!') {
                    Some(wh) => (true, wh),
                    None => (false, rest),
                };
                let Some((w, h)) = wh.split_once(',') else {
                    return Err(bad(format!("size {s:?} is not valid")));
                };
                let size = |v| -> Result<u32, IiifError> {
                    let n = parse_int(v, "the size")?;
                    if n == 0 {
                        return Err(bad("the size is empty"));
                    }
                    Ok(n)
                };
                match (w, h) {
                    ("", "") => return Err(bad(format!("size {s:?} is not valid"))),
                    (w, "") if !confined => SizeKind::Width(size(w)?),
                    ("", h) if !confined => SizeKind::Height(size(h)?),
                    (w, h) if confined => SizeKind::Confined(size(w)?, size(h)?),
                    (w, h) => SizeKind::Exact(size(w)?, size(h)?),
                }
            }
        }
    };
    Ok(Size { upscale, kind })
}

/// Rotation: degrees clockwise from 0 to 360, to a thousandth of a degree.
fn parse_rotation(s: &str) -> Result<Rotation, IiifError> {
    let degrees = parse_decimal(s.strip_prefix('!').unwrap_or(s), "the rotation")?;
    Rotation::from_degrees(degrees).ok_or_else(|| bad("the rotation must be from 0 to 360"))
}

fn parse_quality(s: &str) -> Result<QualityName, IiifError> {
    match s {
        "default" => Ok(QualityName::Default),
        "color" => Ok(QualityName::Color),
        "gray" => Ok(QualityName::Gray),
        "bitonal" => Ok(QualityName::Bitonal),
        _ => Err(bad(format!(
            "unknown quality {s:?}: use default, color, gray or bitonal"
        ))),
    }
}

fn parse_format(s: &str) -> Result<OutputFormat, IiifError> {
    match s {
        "jpg" => Ok(OutputFormat::Jpeg),
        "png" => Ok(OutputFormat::Png),
        "webp" => Ok(OutputFormat::Webp),
        "tif" | "gif" | "pdf" | "jp2" => Err(IiifError::UnsupportedFormat(format!(
            "format {s} is not supported: use jpg, png or webp"
        ))),
        _ => Err(bad(format!("unknown format {s:?}: use jpg, png or webp"))),
    }
}

/// An image request resolved against an image: the region in full-resolution pixels and the
/// output size before rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub region: Rect,
    pub size: (u32, u32),
}

/// The region in full-resolution pixels, cropped to the image.
fn resolve_region(region: Region, (iw, ih): (u32, u32)) -> Result<Rect, IiifError> {
    let (iw64, ih64) = (u64::from(iw), u64::from(ih));
    let (x0, y0, x1, y1) = match region {
        Region::Full => (0, 0, iw64, ih64),
        Region::Square => {
            let side = iw64.min(ih64);
            let (x, y) = ((iw64 - side) / 2, (ih64 - side) / 2);
            (x, y, x + side, y + side)
        }
        Region::Pixels { x, y, w, h } => (
            u64::from(x),
            u64::from(y),
            u64::from(x) + u64::from(w),
            u64::from(y) + u64::from(h),
        ),
        Region::Percent { x, y, w, h } => {
            // The smallest pixel rectangle covering the percentages (x floored, end ceiled).
            let px = |p: f64, side: u64| (p * side as f64 / 100.0).min(4e9);
            (
                px(x, iw64).floor() as u64,
                px(y, ih64).floor() as u64,
                px(x + w, iw64).ceil() as u64,
                px(y + h, ih64).ceil() as u64,
            )
        }
    };
    let (x1, y1) = (x1.min(iw64), y1.min(ih64));
    if x0 >= x1 || y0 >= y1 {
        return Err(bad("the region lies outside the image"));
    }
    Ok(Rect::new(
        x0 as u32,
        y0 as u32,
        (x1 - x0) as u32,
        (y1 - y0) as u32,
    ))
}

fn round_dim(v: f64) -> u32 {
    v.round().clamp(1.0, f64::from(u32::MAX)) as u32
}

/// The side matching `given` for a region of `given_region`×`other_region`, keeping the aspect
/// ratio. When `given` is the region's side at a pyramid scale 2^k (ceil-rounded, as tile
/// requests compute it) and that scale's other side is within a pixel of the exact ratio, that
/// side is used, so edge tiles get their level's size.
fn other_side(given: u32, given_region: u32, other_region: u32) -> u32 {
    let exact = f64::from(other_region) * f64::from(given) / f64::from(given_region);
    let tile_side = (0..32)
        .find(|&k| halve_ceil(given_region, k) == given)
        .map(|k| halve_ceil(other_region, k))
        .filter(|&side| (f64::from(side) - exact).abs() < 1.0);
    tile_side.unwrap_or_else(|| round_dim(exact))
}

/// The largest size of a `w`×`h` region within the output limits, never upscaled.
fn max_size(w: u32, h: u32) -> (u32, u32) {
    let (wf, hf) = (f64::from(w), f64::from(h));
    let scale = (f64::from(MAX_WIDTH) / wf)
        .min(f64::from(MAX_HEIGHT) / hf)
        .min((MAX_AREA as f64 / (wf * hf)).sqrt())
        .min(1.0);
    if scale >= 1.0 {
        return (w, h);
    }
    (
        ((wf * scale).floor() as u32).max(1),
        ((hf * scale).floor() as u32).max(1),
    )
}

fn resolve_size(version: Version, size: Size, region: Rect) -> Result<(u32, u32), IiifError> {
    let (rw, rh) = (region.width, region.height);
    let (w, h) = match size.kind {
        SizeKind::Max => max_size(rw, rh),
        SizeKind::Width(w) => (w, other_side(w, rw, rh)),
        SizeKind::Height(h) => (other_side(h, rh, rw), h),
        SizeKind::Exact(w, h) => (w, h),
        SizeKind::Percent(n) => {
            let f = |side: u32| (f64::from(side) * n / 100.0).round().min(4e9) as u32;
            (f(rw), f(rh))
        }
        SizeKind::Confined(bw, bh) => {
            let (sx, sy) = (f64::from(bw) / f64::from(rw), f64::from(bh) / f64::from(rh));
            if sx <= sy {
                (bw, round_dim(f64::from(rh) * sx).min(bh))
            } else {
                (round_dim(f64::from(rw) * sy).min(bw), bh)
            }
        }
    };
    if w == 0 || h == 0 {
        return Err(bad("the size is empty"));
    }
    if version == Version::V3 && !size.upscale && (w > rw || h > rh) {
        return Err(bad(format!(
            "{w}×{h} is larger than the region ({rw}×{rh}): IIIF 3.0 needs `^` to upscale"
        )));
    }
    if w > MAX_WIDTH || h > MAX_HEIGHT || u64::from(w) * u64::from(h) > MAX_AREA {
        return Err(bad(format!(
            "{w}×{h} exceeds maxWidth {MAX_WIDTH}, maxHeight {MAX_HEIGHT} or maxArea {MAX_AREA}"
        )));
    }
    Ok((w, h))
}

/// Resolves an image request against an image of `size` (full resolution).
pub fn resolve(
    version: Version,
    req: &ImageRequest,
    size: (u32, u32),
) -> Result<Resolved, IiifError> {
    let region = resolve_region(req.region, size)?;
    let size = resolve_size(version, req.size, region)?;
    let (w, h) = transform(req).output_size(size);
    if w > MAX_WIDTH || h > MAX_HEIGHT || u64::from(w) * u64::from(h) > MAX_AREA {
        return Err(bad(format!(
            "rotated, the image is {w}×{h}: beyond maxWidth, maxHeight or maxArea"
        )));
    }
    Ok(Resolved { region, size })
}

/// The canonical request: the region on the coarsest level k (k ≤ K) whose grid it lies on
/// exactly (corners at multiples of 2^k, or at the image's edge) and which still has the
/// resolution of the output. Every advertised tile lands on its own level, at its own size.
pub fn tile_request(
    geometry: &Geometry,
    resolved: &Resolved,
    transform: Transform,
    encode: EncodeOptions,
    background: [u8; 3],
) -> TileRequest {
    let r = resolved.region;
    let (ow, oh) = resolved.size;
    let on_grid = |k: u32| {
        let s = 1u64 << k;
        let (x, y) = (u64::from(r.x), u64::from(r.y));
        let (w, h) = (u64::from(r.width), u64::from(r.height));
        x % s == 0
            && y % s == 0
            && (w % s == 0 || r.right() == u64::from(geometry.width))
            && (h % s == 0 || r.bottom() == u64::from(geometry.height))
            && halve_ceil(r.width, k) >= ow
            && halve_ceil(r.height, k) >= oh
    };
    let k = (0..=geometry.max_level().0)
        .rev()
        .find(|&k| on_grid(k))
        .unwrap_or(0);
    let region = Rect::new(
        r.x >> k,
        r.y >> k,
        halve_ceil(r.width, k),
        halve_ceil(r.height, k),
    );
    TileRequest {
        level: Level(k),
        region,
        out_size: resolved.size,
        canvas: None,
        encode,
        background,
        transform,
    }
}

/// The transform an image request asks for.
pub fn transform(req: &ImageRequest) -> Transform {
    Transform {
        mirror: req.mirror,
        rotation: req.rotation,
        quality: req.quality.quality(),
    }
}

/// Percent-encodes an id into one path segment (`/` as `%2F`), as the server emits ids.
pub fn format_id(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The service's base URI (`{base}/iiif/3/{id}`): the `id` of info.json.
pub fn service_uri(version: Version, base: &str, id: &str) -> String {
    format!("{base}/{}/{}", version.prefix(), format_id(id))
}

/// The canonical URI of a resolved request (for the `rel="canonical"` link): `full` for the
/// whole image, else pixels; 3.0: `max` or `w,h` (`^w,h` when upscaled); 2.1: `full`, `w,`
/// when the aspect ratio is kept, else `w,h`.
pub fn canonical_uri(
    version: Version,
    base: &str,
    id: &str,
    image: (u32, u32),
    req: &ImageRequest,
    resolved: &Resolved,
) -> String {
    let r = resolved.region;
    let region = if (r.x, r.y, r.width, r.height) == (0, 0, image.0, image.1) {
        "full".to_string()
    } else {
        format!("{},{},{},{}", r.x, r.y, r.width, r.height)
    };
    let (w, h) = resolved.size;
    let size = match version {
        Version::V3 if (w, h) == max_size(r.width, r.height) => "max".to_string(),
        Version::V3 if w > r.width || h > r.height => format!("^{w},{h}"),
        Version::V3 => format!("{w},{h}"),
        Version::V2 if (w, h) == (r.width, r.height) => "full".to_string(),
        Version::V2 if other_side(w, r.width, r.height) == h => format!("{w},"),
        Version::V2 => format!("{w},{h}"),
    };
    format!(
        "{}/{region}/{size}/{}{}/{}.{}",
        service_uri(version, base, id),
        if req.mirror { "!" } else { "" },
        req.rotation.format(),
        req.quality.name(),
        req.format.extension()
    )
}

#[cfg(test)]
mod tests;
