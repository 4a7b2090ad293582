//! Per-key rate limits: a token bucket for every API key (`governor`'s generic cell rate
//! algorithm), refilled at the key's own `rate_per_second` or `[auth] rate_per_second`, with
//! a burst of `[auth] rate_burst` (by default one second's worth). A request over the limit
//! is answered 429 `rate_limited` with `Retry-After`. The master key is not limited; nor is
//! anything while no master key is configured (there are no keys then).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
use souk_engine::serving::shop::keys::ApiKey;

/// The buckets of every key seen, by key id.
#[derive(Debug, Default)]
pub struct RateLimits {
    /// Requests per second and burst for keys without a rate of their own (`None`: no limit).
    default: Option<(f64, u32)>,
    buckets: Mutex<HashMap<String, (f64, Arc<DefaultDirectRateLimiter>)>>,
}

/// The quota of `rate` requests per second with `burst` at once.
fn quota(rate: f64, burst: u32) -> Option<Quota> {
    if !(rate.is_finite() && rate > 0.0) {
        return None;
    }
    let period = Duration::from_secs_f64(1.0 / rate).max(Duration::from_nanos(1));
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period).map(|q| q.allow_burst(burst))
}

/// The burst that goes with a rate when none is configured: one second's worth.
fn default_burst(rate: f64) -> u32 {
    rate.ceil().clamp(1.0, f64::from(u32::MAX)) as u32
}

impl RateLimits {
    /// `rate_per_second` 0 leaves keys without a rate of their own unlimited; `burst` 0
    /// means one second's worth.
    pub fn new(rate_per_second: f64, burst: u32) -> Self {
        let default = (rate_per_second > 0.0)
            .then(|| (rate_per_second, if burst == 0 { default_burst(rate_per_second) } else { burst }));
        Self { default, buckets: Mutex::new(HashMap::new()) }
    }

    /// Take one request from `key`'s bucket; `Err(wait)` when it is empty, with how long
    /// until the next request would be allowed.
    pub fn check(&self, key: &ApiKey) -> Result<(), Duration> {
        let (rate, burst) = match (key.rate_per_second, self.default) {
            (Some(rate), Some((_, burst))) => (rate, burst),
            (Some(rate), None) => (rate, default_burst(rate)),
            (None, Some(default)) => default,
            (None, None) => return Ok(()),
        };
        let limiter = {
            let mut buckets = self.buckets.lock();
            let entry = buckets.entry(key.id.clone()).or_insert_with(|| (f64::NAN, Arc::new(unlimited())));
            if entry.0 != rate {
                let Some(quota) = quota(rate, burst) else { return Ok(()) };
                *entry = (rate, Arc::new(RateLimiter::direct(quota)));
            }
            entry.1.clone()
        };
        limiter.check().map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forget the bucket of a revoked key.
    pub fn forget(&self, key_id: &str) {
        self.buckets.lock().remove(key_id);
    }
}

fn unlimited() -> DefaultDirectRateLimiter {
    RateLimiter::direct(Quota::per_second(NonZeroU32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, rate: Option<f64>) -> ApiKey {
        ApiKey { id: id.into(), name: None, scopes: vec![], created_at: 0, hash: String::new(), rate_per_second: rate }
    }

    #[test]
    fn each_key_has_its_own_bucket_of_its_own_rate() {
        let limits = RateLimits::new(2.0, 3);
        let a = key("a", None);
        for _ in 0..3 {
            assert!(limits.check(&a).is_ok(), "the burst");
        }
        let wait = limits.check(&a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500), "{wait:?}");
        // Another key is untouched by a's use; a key's own rate overrides the default.
        assert!(limits.check(&key("b", None)).is_ok());
        let slow = key("slow", Some(0.5));
        for _ in 0..3 {
            assert!(limits.check(&slow).is_ok());
        }
        let wait = limits.check(&slow).unwrap_err();
        assert!(wait > Duration::from_millis(500) && wait <= Duration::from_secs(2), "{wait:?}");
    }

    #[test]
    fn without_a_default_only_keys_with_a_rate_are_limited() {
        let limits = RateLimits::new(0.0, 0);
        let free = key("free", None);
        assert!((0..1_000).all(|_| limits.check(&free).is_ok()));
        let limited = key("limited", Some(1.0));
        assert!(limits.check(&limited).is_ok());
        assert!(limits.check(&limited).is_err(), "a burst of one second's worth: one");
        limits.forget("limited");
        assert!(limits.check(&limited).is_ok(), "a forgotten key starts full");
    }
}
