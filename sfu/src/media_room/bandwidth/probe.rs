//! When the room probes the path to a subscriber: while its estimate keeps a video below what
//! its tile wants, a probe ([`crate::media_room::rtcp::estimate::probe`]) goes out in one of
//! its video streams (one paused for want of bandwidth does as well: padding is no media),
//! first [`FIRST`] after the limit showed, then at growing intervals while probes find nothing
//! more (up to [`LONGEST`]), and soon again after one that did. A probe is 20 ms of the
//! estimate, so probing every few seconds costs a subscriber under 1%.

use std::time::{Duration, Instant};

use signaling_protocol::ParticipantId;

use super::super::participant::Link;
use super::super::{MediaKind, MediaRoom};

/// The first probe after the estimate began to hold a video back.
pub const FIRST: Duration = Duration::from_secs(1);
/// The longest wait between probes that find nothing more: a link that comes back is found
/// within it.
pub const LONGEST: Duration = Duration::from_secs(4);

/// One subscriber's probing.
#[derive(Debug, Clone, Default)]
pub struct ProbeSchedule {
    /// When the next probe may go; `None`: nothing held back now.
    next: Option<Instant>,
    wait: Duration,
    /// The estimate when the last probe went.
    probed_at: Option<u64>,
    /// A probe goes with the next video packet large enough.
    pub due: bool,
}

impl ProbeSchedule {
    /// The allocation at `now` with `budget` held a video back (`limited`) or not.
    pub fn allocated(&mut self, now: Instant, budget: u64, limited: bool) {
        if !limited {
            *self = ProbeSchedule::default();
            return;
        }
        if self.probed_at.is_some_and(|b| budget > b + b / 10) {
            // The last probe found more: the next one soon.
            self.wait = FIRST;
            self.probed_at = None;
            self.next = Some(now + FIRST);
        }
        let next = *self.next.get_or_insert(now + FIRST);
        if now >= next && !self.due {
            self.due = true;
            self.probed_at = Some(budget);
            self.wait = if self.wait.is_zero() {
                FIRST * 2
            } else {
                (self.wait * 2).min(LONGEST)
            };
            self.next = Some(now + self.wait);
        }
    }
}

impl MediaRoom {
    /// Sends `sub` a probe in the first of its video streams between two frames: false if
    /// none is.
    pub(super) fn send_probe(&mut self, sub: ParticipantId, now: Instant) -> bool {
        let Some(p) = self.participants.get_mut(&sub) else {
            return false;
        };
        let Link::Open(s) = &mut p.link else {
            return false;
        };
        if !s.is_connected() {
            return false;
        }
        let packets = s.probe_packets();
        let ids: Vec<_> = self.tracks.iter().map(|(id, _)| id).collect();
        for id in ids {
            let Some(t) = self.tracks.get_mut(id) else {
                continue;
            };
            if t.kind != MediaKind::Video {
                continue;
            }
            let Some(rewriter) = t
                .downtracks
                .iter_mut()
                .find(|d| d.subscriber == sub)
                .and_then(|d| d.rewriter.as_mut())
            else {
                continue;
            };
            // Between two frames (then every padding follows the first).
            let Some(headers) = (0..packets)
                .map(|_| rewriter.padding())
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            match s.write_probe(now, headers) {
                Ok(()) => p.dirty = true,
                Err(e) => tracing::debug!(subscriber = sub, error = %e, "probe not sent"),
            }
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_come_less_often_while_they_find_nothing_and_soon_after_one_that_did() {
        let t0 = Instant::now();
        let mut p = ProbeSchedule::default();
        let mut probes = Vec::new();
        for ms in (0..16_000).step_by(500) {
            let now = t0 + Duration::from_millis(ms);
            p.allocated(now, 300_000, true);
            if std::mem::take(&mut p.due) {
                probes.push(ms);
            }
        }
        assert_eq!(probes, vec![1000, 3000, 7000, 11000, 15000]);
        // A probe that raised the estimate: the next one a second on.
        let now = t0 + Duration::from_secs(17);
        p.allocated(now, 900_000, true);
        assert!(!p.due);
        p.allocated(now + FIRST, 900_000, true);
        assert!(p.due);
        // Nothing held back: nothing to probe for.
        p.allocated(now + FIRST, 900_000, false);
        assert!(!p.due);
    }
}
