//! Key-frame requests (PLI/FIR, RFC 4585 §6.3.1, RFC 5104 §4.3.1) from many subscribers reach
//! a publisher at most once per interval: a joiner or a lossy subscriber must not make the
//! publisher send key frames back to back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::TrackId;

/// At most one key-frame request per track per interval.
#[derive(Debug, Clone)]
pub struct KeyframeThrottle {
    interval: Duration,
    last: HashMap<TrackId, Instant>,
}

impl KeyframeThrottle {
    /// A throttle with this minimum interval (the default in the server is 500 ms).
    pub fn new(interval: Duration) -> Self {
        KeyframeThrottle {
            interval,
            last: HashMap::new(),
        }
    }

    /// True (and remembered) if a request for `track` may go out now.
    pub fn allow(&mut self, track: TrackId, now: Instant) -> bool {
        match self.last.get(&track) {
            Some(&t) if now.saturating_duration_since(t) < self.interval => false,
            _ => {
                self.last.insert(track, now);
                true
            }
        }
    }

    /// The track is gone.
    pub fn forget(&mut self, track: TrackId) {
        self.last.remove(&track);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_per_interval_per_track() {
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::new(Duration::from_millis(500));
        assert!(k.allow(TrackId(1), t0));
        assert!(!k.allow(TrackId(1), t0 + Duration::from_millis(499)));
        assert!(k.allow(TrackId(2), t0), "tracks are throttled separately");
        assert!(k.allow(TrackId(1), t0 + Duration::from_millis(500)));
    }
}
