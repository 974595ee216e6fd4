//! Key-frame requests (PLI, RFC 4585 §6.3.1; FIR, RFC 5104 §4.3.1): found in a subscriber's
//! RTCP, throttled per track ([`KeyframeThrottle`]: a joiner or a lossy subscriber must not make
//! the publisher send key frames back to back), and sent to the publisher.
//!
//! They reach the room only if an interceptor marks them for delivery ([`super::inbound`]);
//! `media_packet::keyframe` reads them (the bots read them with it too).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;

use crate::media_room::TrackId;

/// A PLI asking the sender of `media_ssrc` for a key frame.
pub fn picture_loss(media_ssrc: u32) -> Box<dyn rtc::rtcp::Packet> {
    Box::new(PictureLossIndication {
        sender_ssrc: 0,
        media_ssrc,
    })
}

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
