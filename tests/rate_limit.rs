//! Rate limits over real HTTP (`RATE_LIMIT`, `RATE_BURST`): a client's burst is served, then
//! 429 with `Retry-After` and the JSON error; the probes are never limited; `X-Forwarded-For`
//! names the client only with `TRUST_PROXY`; after the wait it is told, a client is served
//! again; and 429s are counted in `/metrics`.
//!
//! Tokens refill while a burst runs, so counts are bounded by the time the burst took, never
//! assumed exact; the bucket tests use a rate slow enough that no token comes back meanwhile.

mod common;

use std::time::{Duration, Instant};

use common::server::{Response, TestServer};
use gigatile::config::SettingsLayer;

fn server(name: &str, rate: f64, burst: u32, trust_proxy: bool) -> TestServer {
    let layer = SettingsLayer {
        rate_limit: Some(rate),
        rate_burst: Some(burst),
        trust_proxy: Some(trust_proxy),
        ..SettingsLayer::default()
    };
    TestServer::start(name, layer, |_| {})
}

fn from(server: &TestServer, forwarded_for: &str) -> Response {
    server.request(
        "GET",
        "/api/images",
        &[("X-Forwarded-For", forwarded_for)],
        b"",
    )
}

/// Asserts a 429 as the contract says and returns its `Retry-After` in seconds.
fn assert_limited(r: &Response) -> u64 {
    r.assert_error(429, "rate_limited");
    assert!(
        r.header("x-request-id").is_some(),
        "a 429 carries its request id"
    );
    let seconds: u64 = r
        .header("retry-after")
        .expect("a 429 says when to retry")
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(seconds >= 1);
    seconds
}

#[test]
fn a_burst_is_served_then_limited() {
    let server = server("rl-burst", 5.0, 5, false);
    let started = Instant::now();
    let statuses: Vec<Response> = (0..20).map(|_| server.get("/api/images")).collect();
    let elapsed = started.elapsed().as_secs_f64();
    let served = statuses.iter().filter(|r| r.status == 200).count();
    // The bucket starts full; while the burst runs, 5 tokens a second come back.
    let most = 5 + (5.0 * elapsed).ceil() as usize;
    assert!(
        statuses[..5].iter().all(|r| r.status == 200),
        "the first 5 of a burst are served"
    );
    assert!(
        (5..=most).contains(&served),
        "{served} of 20 served in {elapsed:.2} s"
    );
    let limited: Vec<&Response> = statuses.iter().filter(|r| r.status != 200).collect();
    assert!(
        !limited.is_empty(),
        "no 429 in 20 requests in {elapsed:.2} s"
    );
    for r in &limited {
        assert_eq!(assert_limited(r), 1, "a token is at most 0.2 s away");
    }
    assert_eq!(
        server.metric("gigatile_rate_limited_total"),
        limited.len() as f64
    );
}

#[test]
fn the_probes_and_metrics_are_never_limited() {
    // One token every 10 s: none comes back while the test runs.
    let server = server("rl-probes", 0.1, 1, false);
    assert_eq!(server.get("/api/images").status, 200);
    assert_limited(&server.get("/api/images"));
    for _ in 0..10 {
        assert_eq!(server.get("/healthz").status, 200);
        assert_eq!(server.get("/readyz").status, 200);
    }
    assert_eq!(server.metric("gigatile_rate_limited_total"), 1.0);
    assert_eq!(server.metric("gigatile_rate_limit_clients"), 1.0);
    // Every other route is limited, unknown ones included; a 429 carries CORS headers, so a
    // page on another origin can read it, and preflights are answered without a token.
    let r = server.request(
        "GET",
        "/iiif/3/none.tif/info.json",
        &[("Origin", "https://a.example")],
        b"",
    );
    assert_limited(&r);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_limited(&server.get("/nowhere"));
    let preflight = server.request(
        "OPTIONS",
        "/iiif/3/none.tif/info.json",
        &[
            ("Origin", "https://a.example"),
            ("Access-Control-Request-Method", "GET"),
        ],
        b"",
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(server.metric("gigatile_rate_limited_total"), 3.0);
}

#[test]
fn forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    // One token every 10 s: none comes back while the test runs.
    let trusted = server("rl-proxy", 0.1, 2, true);
    for _ in 0..2 {
        assert_eq!(from(&trusted, "203.0.113.7").status, 200);
    }
    assert_limited(&from(&trusted, "203.0.113.7"));
    // Another address behind the proxy, and the proxy itself, have buckets of their own.
    assert_eq!(from(&trusted, "198.51.100.9, 203.0.113.7").status, 200);
    assert_eq!(trusted.get("/api/images").status, 200);

    let direct = server("rl-direct", 0.1, 2, false);
    for _ in 0..2 {
        assert_eq!(from(&direct, "203.0.113.7").status, 200);
    }
    // Without TRUST_PROXY the header is the client's word only: the peer's bucket is empty.
    assert_limited(&from(&direct, "198.51.100.9"));
    assert_limited(&direct.get("/api/images"));
}

#[test]
fn after_the_wait_it_was_told_a_client_is_served_again() {
    let server = server("rl-recover", 1.0, 1, false);
    assert_eq!(server.get("/api/images").status, 200);
    // The next request is limited unless it took a whole second to send.
    let r = (0..5)
        .map(|_| server.get("/api/images"))
        .find(|r| r.status != 200)
        .expect("a second request within a second is limited");
    let wait = assert_limited(&r);
    std::thread::sleep(Duration::from_secs(wait));
    assert_eq!(server.get("/api/images").status, 200);
}
