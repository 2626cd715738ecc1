//! http::base_url: the scheme and host that absolute links in responses start with (IIIF ids,
//! manifests, redirects), right behind a reverse proxy: `PUBLIC_BASE_URL` when set, else
//! `X-Forwarded-Proto`/`X-Forwarded-Host` when `TRUST_PROXY` is on, else the request's `Host`
//! (or, over HTTP/2, its authority). Hosts that are not plain host[:port] are ignored, so a
//! client cannot inject text into the links.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};

use super::AppState;
use crate::config::Settings;

/// The base URL of links in a response, without a final `/` (`https://example.org/tiles`).
pub fn base_url(settings: &Settings, headers: &HeaderMap, uri: &Uri) -> String {
    if let Some(base) = &settings.public_base_url {
        return base.trim_end_matches('/').to_string();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let mut scheme = "http";
    let mut host = None;
    if settings.trust_proxy {
        scheme = match header("x-forwarded-proto").map(str::to_ascii_lowercase) {
            Some(p) if p == "https" => "https",
            _ => "http",
        };
        host = header("x-forwarded-host").filter(|h| is_host(h));
    }
    let host = host
        .or_else(|| header("host").filter(|h| is_host(h)))
        .or_else(|| uri.authority().map(|a| a.as_str()).filter(|h| is_host(h)))
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

/// A host name or address with an optional port, nothing else.
fn is_host(h: &str) -> bool {
    h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b))
}

/// The base URL as an extractor: `BaseUrl(base): BaseUrl` in a handler's arguments.
#[derive(Debug, Clone)]
pub struct BaseUrl(pub String);

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(BaseUrl(base_url(
            &state.settings,
            &parts.headers,
            &parts.uri,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SettingsLayer;

    fn settings(public: Option<&str>, trust_proxy: bool) -> Settings {
        Settings::resolve(SettingsLayer {
            public_base_url: public.map(str::to_string),
            trust_proxy: Some(trust_proxy),
            ..SettingsLayer::default()
        })
        .unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn public_base_url_wins() {
        let h = headers(&[("host", "inner:8080"), ("x-forwarded-host", "proxy")]);
        let s = settings(Some("https://tiles.example.org/base/"), true);
        assert_eq!(
            base_url(&s, &h, &Uri::from_static("/x")),
            "https://tiles.example.org/base"
        );
    }

    #[test]
    fn forwarded_headers_only_with_trust_proxy() {
        let h = headers(&[
            ("host", "inner:8080"),
            ("x-forwarded-proto", "https, http"),
            ("x-forwarded-host", "tiles.example.org, inner"),
        ]);
        let uri = Uri::from_static("/x");
        assert_eq!(
            base_url(&settings(None, true), &h, &uri),
            "https://tiles.example.org"
        );
        assert_eq!(
            base_url(&settings(None, false), &h, &uri),
            "http://inner:8080"
        );
    }

    #[test]
    fn bad_hosts_are_ignored() {
        let h = headers(&[("host", "evil.org/\"><script>")]);
        assert_eq!(
            base_url(&settings(None, false), &h, &Uri::from_static("/x")),
            "http://localhost"
        );
        let uri = Uri::from_static("http://h2.example:9/x");
        assert_eq!(
            base_url(&settings(None, false), &HeaderMap::new(), &uri),
            "http://h2.example:9"
        );
    }
}
