//! Per-connection message rate: a token bucket.

use std::time::Instant;

#[derive(Debug)]
pub(super) struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub(super) fn new(per_second: u32, burst: u32, now: Instant) -> Self {
        RateLimiter {
            rate: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub(super) fn allow(&mut self, now: Instant) -> bool {
        self.allow_n(now, 1)
    }

    /// Takes `n` tokens if there are that many (never more than a burst's worth: a costlier
    /// message waits for a full bucket).
    pub(super) fn allow_n(&mut self, now: Instant, n: u32) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        let n = f64::from(n).min(self.burst);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(10, 3, t0);
        assert!((0..3).all(|_| l.allow(t0)));
        assert!(!l.allow(t0));
        assert!(l.allow(t0 + Duration::from_millis(100)));
        assert!(!l.allow(t0 + Duration::from_millis(100)));
        // Never more than the burst, however long the pause.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| l.allow(later)).count(), 3);
    }
}
