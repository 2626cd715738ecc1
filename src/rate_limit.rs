//! rate_limit: a token bucket per client (`RATE_LIMIT` tokens a second, `RATE_BURST` at most),
//! on `governor`'s keyed GCRA limiter. It knows no HTTP: the caller names the client's
//! address and is told to go on or how long to wait.
//!
//! Clients are IPv4 addresses, or IPv6 /64 networks (one host commonly holds a whole /64, so
//! counting single IPv6 addresses would let it spread over endless buckets). Memory is bounded
//! by pruning: at most once a [`PRUNE_EVERY`], triggered by a request, every bucket that has
//! refilled completely (and so is indistinguishable from a new one) is dropped; what remains
//! are the clients seen within the last `RATE_BURST / RATE_LIMIT` seconds plus one prune
//! interval, a few dozen bytes each.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};

/// How often buckets that have refilled are dropped (at most; only while requests arrive).
pub const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// The fastest rate accepted, per second: a token a microsecond (a limit beyond is none).
const MAX_PER_SECOND: f64 = 1e6;

/// A per-client rate: tokens a second (fractions allowed) and the bucket's size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// Checks a rate (`RATE_LIMIT`, > 0) and a burst (`RATE_BURST`; by default the rate
    /// rounded up, at least 1).
    pub fn new(per_second: f64, burst: Option<u32>) -> Result<RateLimit, String> {
        if !(per_second > 0.0 && per_second <= MAX_PER_SECOND) {
            return Err(format!(
                "RATE_LIMIT must be a number of requests per second from 0 (off) to {MAX_PER_SECOND}"
            ));
        }
        let burst = match burst {
            Some(b) => NonZeroU32::new(b).ok_or("RATE_BURST must be at least 1")?,
            None => NonZeroU32::new(per_second.ceil() as u32).unwrap_or(NonZeroU32::MIN),
        };
        Ok(RateLimit { per_second, burst })
    }

    /// The quota: a token every 1/`per_second` seconds, `burst` at most (a rate that
    /// [`RateLimit::new`] would refuse limits nothing).
    fn quota(&self) -> Quota {
        Duration::try_from_secs_f64(1.0 / self.per_second)
            .ok()
            .and_then(Quota::with_period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(self.burst)
    }
}

/// Whose bucket a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(std::net::Ipv4Addr),
    /// The first 64 bits of an IPv6 address.
    V6Network(u64),
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> ClientKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => ClientKey::V4(v4),
            IpAddr::V6(v6) => ClientKey::V6Network((v6.to_bits() >> 64) as u64),
        }
    }
}

/// The buckets of every client seen recently.
pub struct ClientLimiter {
    limiter: DefaultKeyedRateLimiter<ClientKey>,
    started: Instant,
    /// Milliseconds from `started` to the last prune.
    pruned_at: AtomicU64,
}

impl ClientLimiter {
    pub fn new(limit: RateLimit) -> ClientLimiter {
        ClientLimiter {
            limiter: DefaultKeyedRateLimiter::keyed(limit.quota()),
            started: Instant::now(),
            pruned_at: AtomicU64::new(0),
        }
    }

    /// Takes a token from `client`'s bucket, or says how long until the next one is there.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        self.prune_now_and_then();
        self.limiter
            .check_key(&ClientKey::from(client))
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// Buckets held now (for tests and metrics).
    pub fn clients(&self) -> usize {
        self.limiter.len()
    }

    /// Drops refilled buckets when the last prune is [`PRUNE_EVERY`] old (one caller does it).
    fn prune_now_and_then(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.pruned_at.load(Ordering::Relaxed);
        let due = now.saturating_sub(last) >= PRUNE_EVERY.as_millis() as u64;
        if due
            && self
                .pruned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: u32) -> ClientLimiter {
        ClientLimiter::new(RateLimit::new(per_second, Some(burst)).unwrap())
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_about_one_period() {
        let l = limiter(0.5, 3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            l.check(ip).unwrap();
        }
        let wait = l.check(ip).unwrap_err();
        assert!(
            wait > Duration::from_secs(1) && wait <= Duration::from_secs(2),
            "{wait:?}"
        );
        // Another client has a bucket of its own.
        l.check("192.0.2.2".parse().unwrap()).unwrap();
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64_network() {
        let l = limiter(0.5, 1);
        l.check("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(l.check("2001:db8:1:2:ffff::9".parse().unwrap()).is_err());
        l.check("2001:db8:1:3::1".parse().unwrap()).unwrap();
        // An IPv4-mapped address is the IPv4 client.
        l.check("198.51.100.7".parse().unwrap()).unwrap();
        assert!(l.check("::ffff:198.51.100.7".parse().unwrap()).is_err());
    }

    #[test]
    fn refilled_buckets_are_pruned() {
        let mut l = limiter(1e6, 1);
        for i in 0..100u8 {
            l.check(IpAddr::from([10, 0, 0, i])).unwrap();
        }
        assert_eq!(l.clients(), 100);
        // Every bucket refills within a microsecond; make a prune due: the next check drops
        // them all.
        std::thread::sleep(Duration::from_millis(2));
        l.started = Instant::now().checked_sub(2 * PRUNE_EVERY).unwrap();
        l.check(IpAddr::from([10, 0, 1, 0])).unwrap();
        assert!(l.clients() <= 1, "{} buckets kept", l.clients());
    }

    #[test]
    fn rates_and_bursts_are_checked() {
        assert!(RateLimit::new(0.0, None).is_err());
        assert!(RateLimit::new(f64::INFINITY, None).is_err());
        assert!(RateLimit::new(3.0, Some(0)).is_err());
        assert_eq!(RateLimit::new(3.2, None).unwrap().burst.get(), 4);
        assert_eq!(RateLimit::new(0.01, None).unwrap().burst.get(), 1);
    }
}
