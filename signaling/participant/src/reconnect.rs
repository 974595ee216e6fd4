//! When to try again after the signaling connection dropped (the server restarted, the network
//! went away, the server said goodbye without a final code): the one policy of the Rust client,
//! the bots and the page (through wasm). Quick at first, so a network back within seconds is
//! rejoined within about one; then slower, so a server that is down is not hammered; with
//! jitter, so a room does not come back all at once; and given up after a while.

use std::time::Duration;

/// How a client joins again after its connection drops. Not after a leave, a removal from the
/// group, or a final refusal ([`signaling_protocol::ErrorCode::is_final`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Reconnect {
    /// The wait before the first attempt, doubled after each failed one ...
    pub first_delay: Duration,
    /// ... up to this, for the first `fast_attempts` attempts ...
    pub max_delay: Duration,
    pub fast_attempts: u32,
    /// ... then this between attempts.
    pub slow_delay: Duration,
    /// Give up (and close) when not back within this long.
    pub give_up_after: Duration,
}

impl Default for Reconnect {
    /// 250 ms doubling to 2 s for ten attempts, then every 8 s, for 2 minutes.
    fn default() -> Self {
        Reconnect {
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(2),
            fast_attempts: 10,
            slow_delay: Duration::from_secs(8),
            give_up_after: Duration::from_secs(120),
        }
    }
}

impl Reconnect {
    /// The wait before attempt `attempt` (from 1), spread by `jitter` (0 to 1, uniform: ±25%).
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let base = if attempt > self.fast_attempts {
            self.slow_delay
        } else {
            self.first_delay
                .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
                .min(self.max_delay)
        };
        base.mul_f64(0.75 + jitter.clamp(0.0, 1.0) / 2.0)
    }

    /// Whether a client down for `down` should stop trying.
    pub fn gives_up(&self, down: Duration) -> bool {
        down > self.give_up_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn quick_then_slow_then_given_up() {
        let r = Reconnect::default();
        let plain = |n| r.delay(n, 0.5);
        assert_eq!(
            (1..=5).map(plain).collect::<Vec<_>>(),
            [MS(250), MS(500), MS(1000), MS(2000), MS(2000)]
        );
        assert_eq!(plain(10), MS(2000));
        assert_eq!(plain(11), MS(8000));
        assert_eq!(plain(1000), MS(8000));
        assert_eq!(r.delay(1, 0.0), MS(187) + Duration::from_micros(500));
        assert_eq!(r.delay(11, 1.0), MS(10_000));
        assert!(!r.gives_up(Duration::from_secs(120)));
        assert!(r.gives_up(Duration::from_secs(121)));
    }
}
