//! http::viewer: the web viewer, embedded in the binary. The page (`GET /`), its script and
//! style, and Leaflet (from `node_modules/`, pinned in `package.json`) are compiled in, so the
//! viewer works offline and needs no CDN. Assets are served under content-hashed names
//! (`assets/app.3f09c1a2b4.js`) with a year-long immutable cache; the page itself is
//! revalidated on every load, so a new binary's assets are picked up at once. With no inline
//! script or style anywhere, the Content-Security-Policy can forbid both.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};

use super::{respond, ApiError};

const PAGE: &str = include_str!("viewer/index.html");

/// Scripts, styles and connections to this server only; images also from `data:`/`blob:`
/// (the favicon and the tests' screenshots); no plugins, frames, `<base>` or foreign forms.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; manifest-src 'self'; \
    frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'";

/// One embedded file: the `{{stem.ext}}` placeholder the page names it by, and its bytes.
struct Asset {
    stem: &'static str,
    ext: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: [Asset; 4] = [
    Asset {
        stem: "leaflet",
        ext: "css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/node_modules/leaflet/dist/leaflet.css"
        )),
    },
    Asset {
        stem: "leaflet",
        ext: "js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/node_modules/leaflet/dist/leaflet.js"
        )),
    },
    Asset {
        stem: "app",
        ext: "css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("viewer/app.css"),
    },
    Asset {
        stem: "app",
        ext: "js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("viewer/app.js"),
    },
];

/// The page with its asset URLs filled in, and each asset's served file name.
struct Built {
    page: String,
    names: Vec<String>,
}

/// FNV-1a, 64 bits: a stable content hash for cache-busting names (not for security).
fn content_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut page = PAGE.to_string();
        let mut names = Vec::new();
        for asset in &ASSETS {
            let hash = content_hash(asset.body);
            let name = format!("{}.{:010x}.{}", asset.stem, hash >> 24, asset.ext);
            // Relative URLs, so that the viewer works under a proxy's path prefix.
            page = page.replace(
                &format!("{{{{{}.{}}}}}", asset.stem, asset.ext),
                &format!("assets/{name}"),
            );
            names.push(name);
        }
        Built { page, names }
    })
}

/// `GET /`.
pub async fn index() -> Response {
    let mut response = Html(built().page.as_str()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /assets/{name}`: an embedded asset under its current hashed name.
pub async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let built = built();
    let index = built
        .names
        .iter()
        .position(|n| *n == name)
        .ok_or_else(|| ApiError::not_found("no such asset"))?;
    let asset = &ASSETS[index];
    let mut response = asset.body.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(respond::IMMUTABLE),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::{built, ASSETS};

    #[test]
    fn the_page_names_every_asset_by_a_relative_hashed_url() {
        let built = built();
        assert!(!built.page.contains("{{"), "a placeholder is left");
        for name in &built.names {
            assert!(built.page.contains(&format!("\"assets/{name}\"")), "{name}");
        }
        assert_eq!(built.names.len(), ASSETS.len());
        assert!(!built.page.contains("=\"/"), "an absolute URL in the page");
    }
}
