//! http::client: who the client is, by address: the TCP peer, or with `TRUST_PROXY` the
//! left-most valid address of `X-Forwarded-For` (what the proxy was asked by). Used by the
//! loopback-only upload rule and the rate limits; it decides nothing itself.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use super::Peer;
use crate::config::Settings;

/// The client's address: with `TRUST_PROXY`, the left-most valid `X-Forwarded-For` entry (an
/// address, or an address with a port); else, or when there is none, the peer's.
pub fn client_ip(settings: &Settings, headers: &HeaderMap, peer: Option<Peer>) -> Option<IpAddr> {
    let forwarded = || {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(parse_entry)
    };
    settings
        .trust_proxy
        .then(forwarded)
        .flatten()
        .or(peer.map(|p| p.0.ip()))
}

/// One `X-Forwarded-For` entry: `192.0.2.1`, `2001:db8::1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SettingsLayer;

    fn settings(trust_proxy: bool) -> Settings {
        Settings::resolve(SettingsLayer {
            trust_proxy: Some(trust_proxy),
            ..SettingsLayer::default()
        })
        .unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let peer = Some(Peer("127.0.0.1:5000".parse().unwrap()));
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "unknown, 203.0.113.9:4711, 10.0.0.1".parse().unwrap(),
        );
        assert_eq!(
            client_ip(&settings(true), &h, peer),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            client_ip(&settings(false), &h, peer),
            Some("127.0.0.1".parse().unwrap())
        );
        h.insert("x-forwarded-for", "[2001:db8::7]:80".parse().unwrap());
        assert_eq!(
            client_ip(&settings(true), &h, peer),
            Some("2001:db8::7".parse().unwrap())
        );
        h.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(
            client_ip(&settings(true), &h, peer),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(client_ip(&settings(true), &HeaderMap::new(), None), None);
    }
}
