//! What each publisher is told to send: as many spatial layers of each of its videos as the
//! largest tile showing it needs ([`super::subscription`]), nothing of one nobody shows. Said
//! at once when more are needed (a tile grew, someone joined); when fewer, only after
//! [`FEWER_AFTER`] of needing fewer, since each change costs the publisher a key picture. A
//! publisher that sends fewer layers spends less of its uplink and its CPU, and the room reads
//! fewer packets it would drop.
//!
//! The room keeps the layer sizes the publisher sent before it was told to send fewer (its
//! ladder), so that a tile that grows still maps to a layer it does not send now.

use std::time::{Duration, Instant};

use signaling_protocol::MediaSignal;

use super::{MediaKind, MediaRoom, Output, TrackId};

/// How long fewer layers must do before the publisher is told.
pub const FEWER_AFTER: Duration = Duration::from_secs(5);

impl MediaRoom {
    /// Tells each publisher whose videos' needs changed how many layers to send.
    pub(super) fn tell_publishers(&mut self, now: Instant) {
        let ids: Vec<TrackId> = self.tracks.iter().map(|(id, _)| id).collect();
        for id in ids {
            let Some(t) = self.tracks.get_mut(id) else {
                continue;
            };
            if t.kind != MediaKind::Video || !t.layered {
                continue;
            }
            let (Some(source), Some(ladder)) = (t.source.clone(), t.resolutions.as_ref()) else {
                continue;
            };
            let all = ladder.len().clamp(1, 8) as u8;
            let top = |n: u8| match n {
                0 => 0,
                n => ladder.get(usize::from(n) - 1).map_or(0, |&(_, h)| h),
            };
            let needed = t
                .downtracks
                .iter()
                .filter_map(|d| d.needed())
                .map(|l| l.spatial.min(all - 1) + 1)
                .max()
                .unwrap_or(0);
            let sending = t.told.unwrap_or(all);
            let tell = if needed > sending {
                true
            } else if needed < sending {
                let since = *t.fewer_since.get_or_insert(now);
                now.saturating_duration_since(since) >= FEWER_AFTER
            } else {
                false
            };
            if needed >= sending {
                t.fewer_since = None;
            }
            if !tell {
                continue;
            }
            let height = top(needed);
            t.told = (needed < all).then_some(needed);
            t.fewer_since = None;
            tracing::debug!(track = id.0, layers = needed, height, "publisher told");
            self.outputs.push_back(Output::Signal {
                participant: t.publisher,
                signal: MediaSignal::SendLayers {
                    source,
                    spatial_layers: needed,
                    height,
                },
            });
        }
    }
}

#[cfg(test)]
mod tests {

    use super::super::MediaKind;
    use super::super::emulated::{CLEAN, World};
    use super::*;

    /// `sub` shows publisher 1's camera `height` pixels tall.
    fn shows(w: &mut World, sub: u64, height: u16) {
        w.show(sub, &["1.stream-1"], height, None);
    }

    fn spatial(w: &World, sub: u64) -> Vec<u8> {
        let mut s: Vec<u8> = w.video_from(sub, 1).layers.keys().map(|l| l.0).collect();
        s.dedup();
        s
    }

    #[test]
    fn a_publisher_sends_the_layers_the_largest_tile_needs_and_nothing_nobody_shows() {
        let mut w = World::new(31, CLEAN);
        w.join_svc(1);
        w.join(2, false);
        w.join(3, false);
        w.run(Duration::from_secs(1), false);
        w.run(Duration::from_secs(1), true);
        assert!(w.room.track_of(1, MediaKind::Video).is_some());
        assert!(
            w.clients[&1].video.told.is_empty(),
            "everything is shown whole at first"
        );

        // Both show small tiles: after a while the publisher sends the low layer only.
        shows(&mut w, 2, 120);
        shows(&mut w, 3, 150);
        w.run(FEWER_AFTER - Duration::from_secs(1), true);
        assert!(w.clients[&1].video.told.is_empty(), "not at once");
        w.run(Duration::from_secs(2), true);
        assert_eq!(w.clients[&1].video.told, vec![1]);
        w.forget_received(2);
        w.run(Duration::from_secs(1), true);
        assert_eq!(spatial(&w, 2), vec![0]);
        assert_eq!(w.video_from(2, 1).sequence_breaks, 0);

        // 3's tile grows: the publisher is told at once, and 3 climbs to the top.
        shows(&mut w, 3, 720);
        w.run(Duration::from_millis(10), true);
        assert_eq!(w.clients[&1].video.told, vec![1, 3]);
        w.forget_received(3);
        w.run(Duration::from_secs(1), true);
        assert_eq!(
            spatial(&w, 3),
            vec![0, 1, 2],
            "the ladder was kept: 720 is its top"
        );
        assert_eq!(spatial(&w, 2), vec![0]);

        // Nobody shows it: it pauses.
        shows(&mut w, 2, 0);
        shows(&mut w, 3, 0);
        w.run(FEWER_AFTER + Duration::from_secs(1), true);
        assert_eq!(w.clients[&1].video.told, vec![1, 3, 0]);
        let before = w.room.counters().packets_in;
        w.run(Duration::from_secs(1), true);
        let audio_only = w.room.counters().packets_in - before;
        assert!(
            audio_only <= 51,
            "{audio_only} packets in a second: audio alone"
        );
    }
}
