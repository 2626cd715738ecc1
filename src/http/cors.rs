//! http::cors: cross-origin access as the contract says, from the policy `ALLOWED_ORIGIN` was
//! parsed into at start-up ([`AllowedOrigins`]):
//!
//! - unset: the image routes (tiles, IIIF, Deep Zoom, Zoomify, imgserv, imgcache) answer
//!   `Access-Control-Allow-Origin: *`; the API and uploads are same-origin only;
//! - `*`: every route answers `*` (never `Access-Control-Allow-Credentials`);
//! - a list: every route answers a listed `Origin` with itself, and says `Vary: Origin`.
//!
//! Preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered here, before
//! routing and rate limits: 204, with the allow headers only for an allowed origin.
//!
//! Not tower-http's `CorsLayer`: with `ALLOWED_ORIGIN` unset the answer depends on the route
//! within one wildcard route (`/api/images/{*path}` holds both tiles, open to all, and
//! metadata, same-origin), which a layer per route cannot split, and its predicate form echoes
//! the origin where the contract says `*` (which caches across origins); it also answers every
//! `OPTIONS` as a preflight, and a disallowed origin's preflight with allow headers.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::config::AllowedOrigins;

/// Headers a browser script may read from our responses.
const EXPOSED: &str = "ETag, Last-Modified, Content-Length, Retry-After, X-Request-Id, Link";
const METHODS: &str = "GET, HEAD, POST, DELETE, OPTIONS";
const REQUEST_HEADERS: &str = "authorization, content-type, if-none-match, x-request-id";
/// Seconds a browser may keep a preflight's answer.
const PREFLIGHT_MAX_AGE: &str = "600";

/// Whether a path is one of the read-only image routes, open to any origin by default.
fn is_image_route(path: &str) -> bool {
    (path.starts_with("/api/images/") && path.contains("/tiles/"))
        || ["/iiif/", "/dzi/", "/zoomify/", "/imgcache/"]
            .iter()
            .any(|prefix| path.starts_with(prefix))
        || path == "/imgserv.cgi"
        || path == "/imgserv"
}

/// What a response says about its origin.
#[derive(Debug, PartialEq)]
struct Answer {
    /// The `Access-Control-Allow-Origin` value, when the origin may read the response.
    allow: Option<HeaderValue>,
    /// Whether the answer depends on `Origin` (`Vary: Origin`).
    varies: bool,
}

/// The policy's answer to a request for `path` from `origin`.
fn answer(policy: &AllowedOrigins, path: &str, origin: Option<&HeaderValue>) -> Answer {
    let any = || Some(HeaderValue::from_static("*"));
    match policy {
        AllowedOrigins::ImageRoutesOnly => Answer {
            allow: is_image_route(path).then(any).flatten(),
            varies: false,
        },
        AllowedOrigins::Any => Answer {
            allow: any(),
            varies: false,
        },
        AllowedOrigins::List(list) => Answer {
            allow: origin
                .filter(|o| list.iter().any(|l| l.as_bytes() == o.as_bytes()))
                .cloned(),
            varies: true,
        },
    }
}

/// Answers CORS preflights and adds CORS headers to every other response.
pub async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let answer = answer(
        &state.settings.allowed_origins,
        req.uri().path(),
        req.headers().get(header::ORIGIN),
    );
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let headers = response.headers_mut();
    if answer.varies {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    if let Some(origin) = answer.allow {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if preflight {
            allow_preflight(headers);
        } else {
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED),
            );
        }
    }
    response
}

fn allow_preflight(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(METHODS),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(REQUEST_HEADERS),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const TILE: &str = "/api/images/a%2Fb.tif/tiles/0/0/0.jpg";
    const META: &str = "/api/images/a.tif/meta";

    fn allow(policy: &AllowedOrigins, path: &str, origin: Option<&str>) -> Option<String> {
        let origin = origin.map(|o| HeaderValue::from_str(o).unwrap());
        answer(policy, path, origin.as_ref())
            .allow
            .map(|v| v.to_str().unwrap().to_string())
    }

    #[test]
    fn unset_opens_the_image_routes_only() {
        let policy = AllowedOrigins::ImageRoutesOnly;
        for path in [
            TILE,
            "/iiif/3/a.tif/info.json",
            "/dzi/a.dzi",
            "/zoomify/a/x",
            "/imgserv.cgi",
            "/imgserv",
            "/imgcache/a/1.jpg",
        ] {
            assert_eq!(
                allow(&policy, path, Some("https://a.example")).as_deref(),
                Some("*"),
                "{path}"
            );
            assert_eq!(allow(&policy, path, None).as_deref(), Some("*"), "{path}");
        }
        for path in [META, "/api/images", "/api/upload", "/metrics", "/"] {
            assert_eq!(
                allow(&policy, path, Some("https://a.example")),
                None,
                "{path}"
            );
        }
        assert!(!answer(&policy, TILE, None).varies);
    }

    #[test]
    fn star_opens_every_route_without_vary() {
        let policy = AllowedOrigins::Any;
        for path in [TILE, META, "/api/images", "/api/upload"] {
            assert_eq!(
                allow(&policy, path, Some("https://a.example")).as_deref(),
                Some("*")
            );
        }
        assert!(!answer(&policy, META, None).varies);
    }

    #[test]
    fn a_list_echoes_listed_origins_on_every_route() {
        let policy = AllowedOrigins::List(vec![
            "https://a.example".into(),
            "http://127.0.0.1:9000".into(),
        ]);
        for path in [
            TILE,
            META,
            "/api/images",
            "/api/upload",
            "/iiif/3/x/info.json",
        ] {
            assert_eq!(
                allow(&policy, path, Some("http://127.0.0.1:9000")).as_deref(),
                Some("http://127.0.0.1:9000")
            );
            assert_eq!(allow(&policy, path, Some("https://b.example")), None);
            assert_eq!(allow(&policy, path, Some("https://a.example.evil")), None);
            assert_eq!(allow(&policy, path, None), None);
            assert!(answer(&policy, path, None).varies);
        }
    }
}
