//! fit: the imgserv query parsed and checked, the fitted size worked out, the file named.
//!
//! Pure: it owns the query syntax (`src`, `width`, `height`, optional `format`), the path
//! safety rule, the fit-and-raster geometry, the default format rule and the cache-relative
//! file name. It knows no HTTP, files, caches or pixels.

use crate::codec::OutputFormat;
use crate::protocol::ParseError;
use crate::pyramid::store::{fnv1a, SourceVersion};
use crate::source::SourceFormat;

/// A parsed imgserv query: which image, the box to fit it in, and an optional format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitQuery {
    /// The image id: `src` without its leading `/` (`gallery/holiday/1.jpg`).
    pub id: String,
    /// The box: width and height, both > 0.
    pub box_size: (u32, u32),
    /// An explicit `format=` (jpg, jpeg, png, webp); `None` follows the source.
    pub format: Option<OutputFormat>,
}

/// What the source contributes to a fit: its size, format, alpha and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceFacts {
    pub width: u32,
    pub height: u32,
    pub format: SourceFormat,
    pub has_alpha: bool,
    pub version: SourceVersion,
}

/// A fitted version of an image: its size, format and cache-relative file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    pub id: String,
    pub width: u32,
    pub height: u32,
    pub format: OutputFormat,
    /// `{id}/{w}x{h}-r{raster}-{ver}.{ext}`, relative to the cache folder.
    pub name: String,
}

/// Parses a form-decoded query. Exactly `src`, `width` and `height`, each once, plus an
/// optional `format`; any other or repeated key is an error.
///
/// ```
/// use gigatile::imgserv::fit::parse_query;
/// let q = parse_query([("src", "/gallery/1.jpg"), ("width", "800"), ("height", "600")]).unwrap();
/// assert_eq!((q.id.as_str(), q.box_size), ("gallery/1.jpg", (800, 600)));
/// assert!(parse_query([("src", "/../etc/passwd"), ("width", "8"), ("height", "6")]).is_err());
/// assert!(parse_query([("src", "/a.jpg"), ("width", "0"), ("height", "6")]).is_err());
/// ```
pub fn parse_query<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<FitQuery, ParseError> {
    let (mut src, mut width, mut height, mut format) = (None, None, None, None);
    for (key, value) in pairs {
        let slot = match key {
            "src" => &mut src,
            "width" => &mut width,
            "height" => &mut height,
            "format" => &mut format,
            _ => return Err(ParseError::new(format!("unknown parameter `{key}`"))),
        };
        if slot.replace(value).is_some() {
            return Err(ParseError::new(format!("`{key}` is given twice")));
        }
    }
    let format = match format {
        None => None,
        Some(ext) => Some(
            OutputFormat::from_extension(ext)
                .ok_or_else(|| ParseError::new("`format` must be jpg, png or webp"))?,
        ),
    };
    Ok(FitQuery {
        id: parse_src(src.ok_or_else(|| ParseError::new("`src` is missing"))?)?,
        box_size: (parse_side("width", width)?, parse_side("height", height)?),
        format,
    })
}

/// Parses a raw query string (`src=%2Fa.jpg&width=800&height=600`): form-decodes it, then
/// [`parse_query`].
pub fn parse_query_string(query: &str) -> Result<FitQuery, ParseError> {
    let pairs: Vec<_> = form_urlencoded::parse(query.as_bytes()).collect();
    parse_query(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
}

/// A box side: a decimal integer > 0 that fits in `u32`.
fn parse_side(key: &str, value: Option<&str>) -> Result<u32, ParseError> {
    let value = value.ok_or_else(|| ParseError::new(format!("`{key}` is missing")))?;
    match value.parse::<u32>() {
        Ok(n) if n > 0 && value.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(ParseError::new(format!("`{key}` must be an integer > 0"))),
    }
}

/// Turns `src` into an image id that cannot leave the data root: it must start with one `/`,
/// and no segment may be empty, `.` or `..`, or hold `\`, `%` (an escape left after form
/// decoding: double encoding) or a control character (nor `:` on Windows, for drive
/// prefixes). A host path such as `/etc/passwd` is thus read inside the data root, where it
/// is not found (404).
///
/// ```
/// use gigatile::imgserv::fit::parse_src;
/// assert_eq!(parse_src("/gallery/holiday/1.jpg").unwrap(), "gallery/holiday/1.jpg");
/// for bad in ["", "a.jpg", "//etc/passwd", "/a/../../b", "/%2e%2e/x", "/a\\..\\x", "/a/./b"] {
///     assert!(parse_src(bad).is_err(), "{bad}");
/// }
/// ```
pub fn parse_src(src: &str) -> Result<String, ParseError> {
    let refuse = || ParseError::new("`src` must be a path in the image folder, like /a/b.jpg");
    let id = src.strip_prefix('/').ok_or_else(refuse)?;
    let bad_segment = |s: &str| {
        s.is_empty()
            || s == "."
            || s == ".."
            || s.chars()
                .any(|c| matches!(c, '\\' | '%') || c.is_control() || (cfg!(windows) && c == ':'))
    };
    if id.split('/').any(bad_segment) {
        return Err(refuse());
    }
    Ok(id.to_owned())
}

/// The size of a `source` picture fitted into `box_size`: ratio kept, never scaled up, width
/// rounded down to a multiple of `raster`, height following the ratio (to nearest, ≥ 1).
///
/// When the width rounds down to 0 (the fitted width is below the raster), the fitted width
/// itself is used, unrastered, so the picture still fits the box; at most `raster - 1`
/// such widths exist per image. A box larger than the picture gives the picture's own width
/// rounded down to the raster (the same rule: the fitted width is then the picture's).
///
/// ```
/// use gigatile::imgserv::fit::fit_size;
/// assert_eq!(fit_size((4000, 3000), (801, 600), 50), (800, 600));
/// assert_eq!(fit_size((4000, 3000), (820, 600), 50), (800, 600));
/// assert_eq!(fit_size((4000, 3000), (10000, 10000), 50), (4000, 3000));
/// assert_eq!(fit_size((1030, 500), (5000, 5000), 50), (1000, 485));
/// assert_eq!(fit_size((4000, 3000), (40, 30), 50), (40, 30));
/// ```
pub fn fit_size(source: (u32, u32), box_size: (u32, u32), raster: u32) -> (u32, u32) {
    let (sw, sh) = (u64::from(source.0.max(1)), u64::from(source.1.max(1)));
    let (bw, bh) = (u64::from(box_size.0), u64::from(box_size.1));
    // The widest width whose height (at the source's ratio) still fits the box.
    let width_for_height = bh * sw / sh;
    let fitted = sw.min(bw).min(width_for_height).max(1);
    let raster = u64::from(raster.max(1));
    let rastered = fitted / raster * raster;
    let width = if rastered == 0 { fitted } else { rastered };
    // Rounded to nearest; u128 since `sh * width * 2` may pass u64.
    let height = (u128::from(sh) * u128::from(width) * 2 + u128::from(sw)) / (u128::from(sw) * 2);
    let height = (height as u64).clamp(1, bh.max(1));
    (width as u32, height as u32)
}

/// The format a fitted image gets without `format=`: PNG for PNG and WebP sources with
/// alpha (so transparency survives; PNG is what every client reads), JPEG for everything
/// else.
pub fn default_format(format: SourceFormat, has_alpha: bool) -> OutputFormat {
    match format {
        SourceFormat::Png | SourceFormat::Webp if has_alpha => OutputFormat::Png,
        _ => OutputFormat::Jpeg,
    }
}

/// A short hash of a source's size and mtime, so a changed source gets a new file name.
pub fn version_tag(version: SourceVersion) -> String {
    let hash = fnv1a(&[&version.len.to_le_bytes(), &version.mtime_ns.to_le_bytes()]);
    format!("{:08x}", (hash ^ (hash >> 32)) as u32)
}

/// Fits a parsed query to a source: the size, the format and the file name.
pub fn fit(query: &FitQuery, source: &SourceFacts, raster: u32) -> Fitted {
    let (width, height) = fit_size((source.width, source.height), query.box_size, raster);
    let format = query
        .format
        .unwrap_or_else(|| default_format(source.format, source.has_alpha));
    let name = format!(
        "{}/{width}x{height}-r{raster}-{}.{}",
        query.id,
        version_tag(source.version),
        format.extension()
    );
    Fitted {
        id: query.id.clone(),
        width,
        height,
        format,
        name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERSION: SourceVersion = SourceVersion {
        len: 1234,
        mtime_ns: 5678,
    };

    fn facts(width: u32, height: u32, format: SourceFormat, has_alpha: bool) -> SourceFacts {
        SourceFacts {
            width,
            height,
            format,
            has_alpha,
            version: VERSION,
        }
    }

    fn query(src: &str, w: &str, h: &str) -> Result<FitQuery, ParseError> {
        parse_query([("src", src), ("width", w), ("height", h)])
    }

    #[test]
    fn keeps_the_ratio_and_fits_the_box() {
        // Height-limited and width-limited boxes.
        assert_eq!(fit_size((4000, 3000), (2000, 600), 50), (800, 600));
        assert_eq!(fit_size((3000, 4000), (600, 2000), 50), (600, 800));
        for (bw, bh) in [(801, 599), (333, 777), (51, 51), (1, 1), (4999, 17)] {
            let (w, h) = fit_size((4000, 3000), (bw, bh), 50);
            assert!(w <= bw && h <= bh, "{bw}x{bh} gave {w}x{h}");
            let ratio = f64::from(w) / f64::from(h);
            assert!(w < 4 || (ratio - 4.0 / 3.0).abs() < 0.05, "{w}x{h}");
        }
    }

    #[test]
    fn never_scales_up() {
        assert_eq!(fit_size((120, 90), (5000, 5000), 50), (100, 75));
        assert_eq!(fit_size((30, 20), (5000, 5000), 50), (30, 20));
    }

    #[test]
    fn near_boxes_share_one_rastered_width() {
        let a = fit_size((4000, 3000), (801, 600), 50);
        let b = fit_size((4000, 3000), (820, 600), 50);
        let c = fit_size((4000, 3000), (849, 10_000), 50);
        assert_eq!((a, b, c), ((800, 600), (800, 600), (800, 600)));
        assert_eq!(fit_size((4000, 3000), (850, 10_000), 50), (850, 638));
    }

    #[test]
    fn extreme_sizes_do_not_overflow() {
        let max = u32::MAX;
        assert_eq!(
            fit_size((max, max), (max, max), 50),
            (max / 50 * 50, max / 50 * 50)
        );
        assert_eq!(fit_size((max, 1), (max, max), 1), (max, 1));
        assert_eq!(fit_size((1, max), (max, max), 50), (1, max));
    }

    #[test]
    fn width_below_the_raster_is_kept_unrastered() {
        assert_eq!(fit_size((4000, 3000), (49, 1000), 50), (49, 37));
        // A very tall picture in a short box: at least one pixel wide, never taller than the box.
        assert_eq!(fit_size((10, 10_000), (100, 50), 50), (1, 50));
    }

    #[test]
    fn format_follows_the_source_unless_asked() {
        assert_eq!(default_format(SourceFormat::Png, true), OutputFormat::Png);
        assert_eq!(default_format(SourceFormat::Webp, true), OutputFormat::Png);
        assert_eq!(default_format(SourceFormat::Png, false), OutputFormat::Jpeg);
        assert_eq!(default_format(SourceFormat::Tiff, true), OutputFormat::Jpeg);
        let q = parse_query([
            ("src", "/a.png"),
            ("width", "100"),
            ("height", "100"),
            ("format", "webp"),
        ])
        .unwrap();
        let fitted = fit(&q, &facts(400, 300, SourceFormat::Png, true), 50);
        assert_eq!(fitted.format, OutputFormat::Webp);
    }

    #[test]
    fn names_carry_size_raster_version_and_extension() {
        let q = query("/gallery/holiday/1.jpg", "801", "600").unwrap();
        let fitted = fit(&q, &facts(4000, 3000, SourceFormat::Jpeg, false), 50);
        let tag = version_tag(VERSION);
        assert_eq!(
            fitted.name,
            format!("gallery/holiday/1.jpg/800x600-r50-{tag}.jpg")
        );
        let changed = SourceVersion {
            len: 1235,
            ..VERSION
        };
        assert_ne!(version_tag(changed), tag);
        assert_eq!(tag.len(), 8);
    }

    #[test]
    fn bad_queries_are_refused() {
        for (w, h) in [
            ("0", "5"),
            ("5", "-1"),
            ("+5", "5"),
            ("5.0", "5"),
            ("", "5"),
        ] {
            assert!(query("/a.jpg", w, h).is_err(), "{w}x{h}");
        }
        assert!(query("/a.jpg", "99999999999", "5").is_err());
        assert!(parse_query([("src", "/a.jpg"), ("width", "5")]).is_err());
        assert!(parse_query([("src", "/a"), ("width", "5"), ("height", "5"), ("x", "1")]).is_err());
        assert!(parse_query([
            ("src", "/a"),
            ("src", "/b"),
            ("width", "5"),
            ("height", "5")
        ])
        .is_err());
        let bad_format = [
            ("src", "/a"),
            ("width", "5"),
            ("height", "5"),
            ("format", "gif"),
        ];
        assert!(parse_query(bad_format).is_err());
    }

    #[test]
    fn paths_cannot_leave_the_data_root() {
        for bad in [
            "/../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E%2Fetc",
            "/a/../../b",
            "/a/..",
            "/etc/passwd/",
            "//etc/passwd",
            "C:\\Windows\\win.ini",
            "/a\\..\\b",
            "",
            "/",
            "a/b.jpg",
            "/a\0b",
        ] {
            assert!(parse_src(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_src("/a/b c.jpg").unwrap(), "a/b c.jpg");
        // Host paths are read inside the data root.
        assert_eq!(parse_src("/etc/passwd").unwrap(), "etc/passwd");
    }
}
