//! http::static_files: a folder of immutable, versioned files served as a static web server
//! would: `ETag` and `Last-Modified`, 304s, single byte ranges (206, 416, `If-Range`), a long
//! `Cache-Control`, and the body streamed from the file. Names are checked before any file is
//! touched: no `..`, no empty or dot segments (records and temporaries stay hidden).

use std::path::Path;
use std::time::UNIX_EPOCH;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::respond::{not_modified, validators, IMMUTABLE};
use super::ApiError;
use crate::codec::OutputFormat;
use crate::pyramid::store::fnv1a;

/// Serves the file `name` (a `/`-separated path, percent-decoded) of `folder`.
pub async fn serve(folder: &Path, name: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let missing = || ApiError::not_found("no such file");
    let safe = name
        .split('/')
        .all(|s| !s.is_empty() && !s.starts_with('.') && !s.contains(['\\', '\0']));
    let media_type = name
        .rsplit_once('.')
        .and_then(|(_, ext)| OutputFormat::from_extension(ext))
        .map(OutputFormat::media_type);
    let (true, Some(media_type)) = (safe, media_type) else {
        return Err(missing());
    };
    let mut file = tokio::fs::File::open(folder.join(name))
        .await
        .map_err(|_| missing())?;
    let meta = file.metadata().await.map_err(|_| missing())?;
    if !meta.is_file() {
        return Err(missing());
    }
    let len = meta.len();
    let modified = meta.modified().unwrap_or(UNIX_EPOCH);
    let mtime_ns = modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let etag = format!(
        "\"{:x}-{len:x}-{mtime_ns:x}\"",
        fnv1a(&[name.as_bytes()]) as u32
    );
    let last_modified = httpdate::fmt_http_date(modified);

    let mut response = if not_modified(headers, &etag, &last_modified) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let wanted = range_header(headers, &etag, &last_modified)
            .map_or(Wanted::Whole, |spec| parse_range(spec, len));
        let (start, end) = match wanted {
            Wanted::Whole => (0, len),
            Wanted::Part(start, end) => (start, end),
            Wanted::Unsatisfiable => {
                let mut r = ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range_not_satisfiable",
                    "the range lies outside the file",
                )
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return Ok(r);
            }
        };
        if start > 0 {
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(|_| missing())?;
        }
        let stream = tokio_util::io::ReaderStream::new(file.take(end - start));
        let mut r = Response::new(Body::from_stream(stream));
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
        if let Wanted::Part(..) = wanted {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)) {
                h.insert(header::CONTENT_RANGE, v);
            }
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
        }
        r
    };
    let h = response.headers_mut();
    validators(h, &etag, &last_modified);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    Ok(response)
}

/// The `Range` header's value, unless an `If-Range` names another version of the file (then
/// the whole file is sent).
fn range_header<'a>(headers: &'a HeaderMap, etag: &str, last_modified: &str) -> Option<&'a str> {
    let range = headers.get(header::RANGE)?.to_str().ok()?;
    match headers.get(header::IF_RANGE).map(HeaderValue::to_str) {
        None => Some(range),
        Some(Ok(v)) if v == etag || v == last_modified => Some(range),
        Some(_) => None,
    }
}

/// What a `Range` header asks of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    /// The whole file: no range, or one this server does not serve as a range (another
    /// unit, several ranges, bad syntax), which RFC 9110 lets it ignore.
    Whole,
    /// Bytes `[start, end)`.
    Part(u64, u64),
    /// A range wholly past the end (416).
    Unsatisfiable,
}

/// Parses a `Range` value against a file of `len` bytes.
fn parse_range(spec: &str, len: u64) -> Wanted {
    let Some(range) = spec
        .trim()
        .strip_prefix("bytes=")
        .filter(|r| !r.contains(','))
    else {
        return Wanted::Whole;
    };
    let Some((first, last)) = range.split_once('-') else {
        return Wanted::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| s.parse::<u64>().ok();
    match (number(first), number(last)) {
        (Some(start), _) if start >= len => Wanted::Unsatisfiable,
        (Some(start), Some(last)) if last >= start => {
            Wanted::Part(start, last.saturating_add(1).min(len))
        }
        (Some(start), None) if last.is_empty() => Wanted::Part(start, len),
        (None, Some(suffix)) if first.is_empty() && (suffix == 0 || len == 0) => {
            Wanted::Unsatisfiable
        }
        (None, Some(suffix)) if first.is_empty() => Wanted::Part(len - suffix.min(len), len),
        _ => Wanted::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_range, Wanted};

    #[test]
    fn byte_ranges_parse_as_rfc_9110_says() {
        assert_eq!(parse_range("bytes=0-99", 1000), Wanted::Part(0, 100));
        assert_eq!(parse_range("bytes=900-", 1000), Wanted::Part(900, 1000));
        assert_eq!(parse_range("bytes=-100", 1000), Wanted::Part(900, 1000));
        assert_eq!(parse_range("bytes=-5000", 1000), Wanted::Part(0, 1000));
        assert_eq!(parse_range("bytes=990-5000", 1000), Wanted::Part(990, 1000));
        assert_eq!(parse_range("bytes=1000-", 1000), Wanted::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Wanted::Unsatisfiable);
        for ignored in [
            "bytes=0-1,5-9",
            "items=0-1",
            "bytes=9-1",
            "bytes=a-b",
            "bytes=5",
        ] {
            assert_eq!(parse_range(ignored, 1000), Wanted::Whole, "{ignored}");
        }
    }
}
