//! When the room probes the path to a subscriber ([`crate::media_room::rtcp::estimate::probe`]):
//! while its estimate keeps a video below what its tile wants, first [`FIRST`] after the limit
//! showed, then at growing intervals while probes find nothing more (up to [`LONGEST`]), and
//! [`FIRST`] after one that did. A probe asks for half as much again as the estimate, or twice
//! as much after one that found more (so a link that came back is climbed in a few probes);
//! for its 200 ms the room tops what it sends up with padding every [`PACE`], in one of the
//! subscriber's video streams between two frames (one paused for want of bandwidth does as
//! well: padding is no media).

use std::time::{Duration, Instant};

use signaling_protocol::ParticipantId;

use super::super::MediaRoom;
use super::super::participant::Link;

/// The first probe after the estimate began to hold a video back.
pub const FIRST: Duration = Duration::from_secs(1);
/// The longest wait between probes that find nothing more: a link that comes back is found
/// within it.
pub const LONGEST: Duration = Duration::from_secs(4);
/// How often a probe tops up what was sent.
pub const PACE: Duration = Duration::from_millis(5);

/// One subscriber's probing.
#[derive(Debug, Clone, Default)]
pub struct ProbeSchedule {
    /// When the next probe may go; `None`: nothing held back now.
    next: Option<Instant>,
    wait: Duration,
    /// The estimate when the last probe went.
    probed_at: Option<u64>,
    /// The last probe found more.
    found: bool,
    /// A probe should start.
    pub due: bool,
    /// When a probe under way tops up next.
    pub pace_at: Option<Instant>,
}

impl ProbeSchedule {
    /// The allocation at `now` with `budget` held a video back (`limited`) or not.
    pub fn allocated(&mut self, now: Instant, budget: u64, limited: bool) {
        if !limited {
            let pace_at = self.pace_at;
            *self = ProbeSchedule::default();
            self.pace_at = pace_at;
            return;
        }
        if self.probed_at.is_some_and(|b| budget > b + b / 10) {
            // The last probe found more: the next one soon.
            self.wait = Duration::ZERO;
            self.probed_at = None;
            self.found = true;
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

    /// How much more than the estimate the next probe asks for.
    pub fn factor(&self) -> f64 {
        if self.found { 2.0 } else { 1.5 }
    }
}

impl MediaRoom {
    /// Starts a probe to `sub` if one is due.
    pub(super) fn start_probe(&mut self, sub: ParticipantId, now: Instant) {
        let Some(p) = self.participants.get_mut(&sub) else {
            return;
        };
        if !p.probe.due {
            return;
        }
        let factor = p.probe.factor();
        let Link::Open(s) = &mut p.link else { return };
        if s.is_connected() && s.start_probe(now, factor) {
            p.probe.due = false;
            p.probe.found = false;
            p.probe.pace_at = Some(now);
        }
    }

    /// A probe to `sub` tops up what was sent with padding, and says when it does so next.
    pub(in crate::media_room) fn pace_probe(&mut self, sub: ParticipantId, now: Instant) {
        let Some(p) = self.participants.get_mut(&sub) else {
            return;
        };
        let Link::Open(s) = &mut p.link else {
            p.probe.pace_at = None;
            return;
        };
        let packets = s.padding_due(now);
        p.probe.pace_at = s.probing(now).then_some(now + PACE);
        if packets == 0 {
            return;
        }
        for rewriter in p.video.rewriters() {
            // Between two frames (then every padding follows the first).
            let Some(headers) = (0..packets)
                .map(|_| rewriter.padding())
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            match s.write_padding(now, headers) {
                Ok(()) => p.dirty = true,
                Err(e) => tracing::debug!(subscriber = sub, error = %e, "padding not sent"),
            }
            return;
        }
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
        assert_eq!(p.factor(), 1.5);
        // A probe that raised the estimate: the next one a second on.
        let now = t0 + Duration::from_secs(17);
        p.allocated(now, 900_000, true);
        assert!(!p.due);
        p.allocated(now + FIRST, 900_000, true);
        assert!(p.due);
        assert_eq!(p.factor(), 2.0, "twice as much after one that found more");
        // Nothing held back: nothing to probe for.
        p.allocated(now + FIRST, 900_000, false);
        assert!(!p.due);
    }
}
