//! http::fuzzing: one entry point that sends an arbitrary request through the real router
//! ([`super::app`] over a real [`AppState`] of a small temporary data folder holding two tiny
//! images, built once per process), for `cargo fuzz` (`fuzz/fuzz_targets/http.rs`) and the
//! test that replays the kept inputs (`tests/http_fuzz_cases.rs`). Whatever the request, the
//! answer must be well formed: no panic, no 5xx but the documented 503s, and every error a JSON
//! `{"error", "code"}` with a documented code that names no server path.
//!
//! An input reads like an HTTP/1.1 request (lines end in LF or CRLF):
//!
//! ```text
//! METHOD TARGET
//! Name: value
//! ...
//!
//! body
//! ```
//!
//! TARGET is taken as raw bytes (those a URI cannot hold are percent-encoded, so they reach the
//! router), or `@N seg|seg|...` for route template `N` (of `ROUTES` below) with its `{}` holes
//! filled by the segments, so the fuzzer can keep a route's shape while it mutates the parts.
//! Header lines that are no valid name and value are skipped (hyper refuses those before any
//! router), and so is an input whose method is no token. The body is the rest, bytes as they
//! are: a multipart form when the `Content-Type` says so.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, Method, Request, Uri};
use axum::Router;
use tower::ServiceExt;

use super::error::CODES;
use super::{AppState, Peer};
use crate::catalog::ImageStatus;
use crate::config::{ByteSize, Settings, SettingsLayer};
use crate::raster::{PixelLayout, Raster};

/// The route templates `@N` picks from; `{}` is a hole for a segment.
const ROUTES: &[&str] = &[
    "/",
    "/assets/{}",
    "/api/images",
    "/api/images/{}/meta",
    "/api/images/{}/tiles/{}/{}/{}.{}",
    "/api/images/{}/tiles/{}/{}/{}",
    "/api/images/{}",
    "/api/upload",
    "/iiif/3/{}/info.json",
    "/iiif/3/{}/{}/{}/{}/{}.{}",
    "/iiif/3/{}/manifest.json",
    "/iiif/2/{}/info.json",
    "/iiif/2/{}/{}/{}/{}/{}.{}",
    "/iiif/3/{}",
    "/dzi/{}.dzi",
    "/dzi/{}_files/{}/{}_{}.{}",
    "/zoomify/{}/ImageProperties.xml",
    "/zoomify/{}/TileGroup{}/{}-{}-{}.jpg",
    "/imgserv.cgi?src=/{}&width={}&height={}",
    "/imgserv?{}",
    "/imgcache/{}",
    "/healthz",
    "/readyz",
    "/metrics",
];

/// The ids of the images in the data folder.
const IMAGES: [&str; 2] = ["small.png", "album/tiny.jpg"];

/// Largest upload the fuzzed server accepts, so that uploads stay small.
const MAX_UPLOAD: u64 = 64 * 1024;
/// Most body bytes of a response read for checking.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// The server every input is sent to, built at the first.
struct Harness {
    runtime: tokio::runtime::Runtime,
    app: Router,
    data_dir: PathBuf,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        remove_stale_data_dirs();
        let data_dir =
            std::env::temp_dir().join(format!("{DATA_DIR_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        write_images(&data_dir);
        let settings = Settings::resolve(SettingsLayer {
            data_dir: Some(data_dir.clone()),
            max_upload_size: Some(ByteSize(MAX_UPLOAD)),
            warmup_levels: Some(0),
            render_threads: Some(1),
            pyramid_builds: Some(1),
            tile_wait_ms: Some(2000),
            trust_proxy: Some(true),
            ..SettingsLayer::default()
        })
        .expect("fuzzing settings");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let state = runtime
            .block_on(crate::server::in_process_state(settings))
            .expect("the fuzzed server's state");
        wait_until_built(&state);
        Harness {
            runtime,
            app: super::app(state),
            data_dir,
        }
    })
}

/// The data folders' names: this prefix, then the process id.
const DATA_DIR_PREFIX: &str = "gigatile-fuzz-http-";

/// Removes the data folders of fuzzing processes that have ended (where `/proc` tells).
fn remove_stale_data_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix(DATA_DIR_PREFIX));
        if let Some(pid) = pid.filter(|p| p.bytes().all(|b| b.is_ascii_digit())) {
            if Path::new("/proc/self").exists() && !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// A 300×200 PNG at the root and a 40×30 JPEG in a folder, with some texture.
fn write_images(dir: &Path) {
    let image = |width: u32, height: u32| {
        let data = (0..height)
            .flat_map(|y| (0..width).flat_map(move |x| [x as u8, y as u8, (x ^ y) as u8]))
            .collect();
        Raster::from_data(width, height, PixelLayout::Rgb, data).expect("a raster")
    };
    std::fs::create_dir_all(dir.join("album")).expect("the fuzzing data folder");
    let png = crate::codec::png::encode(&image(300, 200)).expect("a PNG");
    std::fs::write(dir.join(IMAGES[0]), png).expect("the PNG");
    let jpeg = crate::codec::jpeg::encode(&image(40, 30), 80).expect("a JPEG");
    std::fs::write(dir.join(IMAGES[1]), jpeg).expect("the JPEG");
}

/// Gives the background builds of the images a few seconds, so that tiles are rendered rather
/// than refused as not ready (inputs still run, and must hold, if they take longer).
fn wait_until_built(state: &AppState) {
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until
        && !state
            .catalog
            .list()
            .iter()
            .all(|e| matches!(e.status, ImageStatus::Ready | ImageStatus::Failed { .. }))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends the request that `data` describes and checks the answer; panics when it is wrong.
pub fn fuzz_one(data: &[u8]) {
    let Some(request) = parse_request(data) else {
        return;
    };
    let summary = format!("{} {}", request.method(), request.uri());
    let head = request.method() == Method::HEAD;
    let harness = harness();
    let (status, headers, body) = harness.runtime.block_on(async {
        let response = harness
            .app
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|e| match e {});
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, MAX_RESPONSE)
            .await
            .unwrap_or_default();
        (parts.status, parts.headers, body)
    });
    if let Err(problem) = check_response(
        status,
        &headers,
        (!head).then_some(&body[..]),
        &harness.data_dir,
        data,
    ) {
        panic!(
            "{summary}: {problem}: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
}

/// What is wrong with a response, if anything: a 5xx other than a documented 503, or an error
/// that is not JSON `{"error", "code"}` with a documented code, or that names a server path
/// the request did not name itself (`input`, raw or percent-decoded: an error may quote the
/// client). `body` is `None` for the answer to a HEAD, which has none.
fn check_response(
    status: axum::http::StatusCode,
    headers: &axum::http::HeaderMap,
    body: Option<&[u8]>,
    data_dir: &Path,
    input: &[u8],
) -> Result<(), String> {
    if status.as_u16() < 400 {
        return Ok(());
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_json {
        return Err("an error that is not JSON".into());
    }
    let Some(body) = body else {
        return match status {
            s if s.is_server_error() && s != axum::http::StatusCode::SERVICE_UNAVAILABLE => {
                Err("a server error".into())
            }
            _ => Ok(()),
        };
    };
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("an error body that is no JSON: {e}"))?;
    let code = value["code"].as_str().ok_or("an error without a code")?;
    if !value["error"].is_string() {
        return Err("an error without a message".into());
    }
    if !CODES.contains(&code) {
        return Err(format!("an undocumented code {code:?}"));
    }
    let said = [
        String::from_utf8_lossy(input).into_owned(),
        String::from_utf8_lossy(&percent_decode(input)).into_owned(),
    ];
    let text = String::from_utf8_lossy(body);
    let data_dir = data_dir.to_string_lossy();
    for path in [&*data_dir, "/tmp/"] {
        if text.contains(path) && !said.iter().any(|s| s.contains(path)) {
            return Err("a server path in an error".into());
        }
    }
    let documented_503 = ["not_ready", "overloaded", "unavailable", "shutting_down"];
    if status.is_server_error()
        && !(status == axum::http::StatusCode::SERVICE_UNAVAILABLE
            && documented_503.contains(&code))
    {
        return Err("a server error".into());
    }
    Ok(())
}

/// The request `data` describes (see the module's documentation), or `None` when hyper would
/// refuse it before any router.
fn parse_request(data: &[u8]) -> Option<Request<Body>> {
    let (head, body) = split_head(data);
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines.next()?;
    let (method, target) = match request_line.iter().position(|&b| b == b' ') {
        Some(at) => (&request_line[..at], &request_line[at + 1..]),
        None => (request_line, &b"/"[..]),
    };
    let method = Method::from_bytes(method).ok()?;
    let uri = Uri::try_from(percent_encode(&expand_target(target))).ok()?;
    let mut request = Request::new(Body::from(body.to_vec()));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            request.headers_mut().append(name, value);
        }
    }
    request
        .extensions_mut()
        .insert(Peer(SocketAddr::from(([127, 0, 0, 1], 40000))));
    Some(request)
}

/// The head (up to the first empty line) and the body.
fn split_head(data: &[u8]) -> (&[u8], &[u8]) {
    for (at, _) in data.iter().enumerate().filter(|(_, &b)| b == b'\n') {
        let rest = &data[at + 1..];
        let blank = if rest.starts_with(b"\n") {
            Some(1)
        } else if rest.starts_with(b"\r\n") {
            Some(2)
        } else {
            None
        };
        if let Some(len) = blank {
            return (&data[..at], &rest[len..]);
        }
    }
    (data, &[])
}

/// A target as raw bytes, or `@N seg|seg|...` expanded into route template `N`.
fn expand_target(target: &[u8]) -> Vec<u8> {
    let Some(rest) = target.strip_prefix(b"@") else {
        return target.to_vec();
    };
    let (number, segments) = match rest.iter().position(|&b| b == b' ') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &b""[..]),
    };
    let index = std::str::from_utf8(number)
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    let template = ROUTES[index % ROUTES.len()];
    let mut segments = segments.split(|&b| b == b'|');
    let mut out = Vec::new();
    let mut pieces = template.split("{}").peekable();
    while let Some(piece) = pieces.next() {
        out.extend_from_slice(piece.as_bytes());
        if pieces.peek().is_some() {
            out.extend_from_slice(segments.next().unwrap_or(&b"0"[..]));
        }
    }
    out
}

/// `bytes` with every byte a URI cannot hold raw percent-encoded (`%` itself is kept, so both
/// good and broken escapes reach the router).
fn percent_encode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

/// `bytes` with `%XX` escapes decoded and `+` as a space (as query values are read).
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|h| Some(hex(h[0])? * 16 + hex(h[1])?));
        match (escaped, bytes[i]) {
            (Some(value), _) => {
                out.push(value as u8);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_read_as_requests() {
        let request =
            parse_request(b"POST /api/upload\r\nContent-Type: a/b\r\nBad Name: x\r\n\r\nbody")
                .unwrap();
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri(), "/api/upload");
        assert_eq!(request.headers()[header::CONTENT_TYPE], "a/b");
        assert_eq!(request.headers().len(), 1);
        let (head, body) = split_head(b"POST /\nA: b\n\n--x\r\nC: d\r\n\r\ne");
        assert_eq!(
            (head, body),
            (&b"POST /\nA: b"[..], &b"--x\r\nC: d\r\n\r\ne"[..])
        );
        let request = parse_request(b"GET @4 small.png|1|0|0\n\n").unwrap();
        assert_eq!(request.uri(), "/api/images/small.png/tiles/1/0/0.0");
        let request = parse_request(b"GET /a b\xff\n").unwrap();
        assert_eq!(request.uri(), "/a%20b%FF");
        assert!(parse_request(b"G(T /\n").is_none());
        assert_eq!(percent_decode(b"%2Ftmp%2f+x%zz%4"), b"/tmp/ x%zz%4");
    }
}
