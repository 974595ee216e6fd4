//! Each subscriber's videos within its bandwidth. Twice a second, and whenever what it shows
//! changes, the room shares the subscriber's estimate ([`super::rtcp::estimate`]) among the
//! videos it receives ([`allocate`]), each video's layers costed from what its publisher sends
//! ([`rates`]), and sets each one's layer selector to the result.
//!
//! Most important first: the largest tile (the featured video: a screen share, the pinned
//! tile, the speaker in speaker view), then, among tiles of a size, the active speaker.

mod allocate;
pub mod probe;
pub mod rates;

use std::cmp::Reverse;
use std::time::Instant;

use signaling_protocol::{ParticipantId, media_stream};

pub use allocate::{Allocation, Demand, allocate};
pub use rates::LayerRates;

use super::{Layer, MediaKind, MediaRoom, TrackId};

/// The share of the estimate the videos may use: the rest absorbs the estimate's error and
/// a key picture's burst.
const USABLE: f64 = 0.9;

/// Most important first: the largest tile, then the active speaker, then the oldest track.
type Priority = (Reverse<u16>, bool, TrackId);

impl MediaRoom {
    /// Each track's rates close their window; every subscriber's videos are shared out anew.
    pub(super) fn reallocate_all(&mut self, now: Instant) {
        let ids: Vec<TrackId> = self.tracks.iter().map(|(id, _)| id).collect();
        for id in ids {
            if let Some(t) = self.tracks.get_mut(id) {
                t.rates.roll(now);
            }
        }
        let subs: Vec<ParticipantId> = self.participants.keys().copied().collect();
        for sub in subs {
            self.reallocate(sub, now);
        }
        self.tell_publishers(now);
    }

    /// Sets the layers of every video `sub` receives from what its tiles want and what its
    /// estimate allows.
    pub(super) fn reallocate(&mut self, sub: ParticipantId, now: Instant) {
        let budget = self
            .participants
            .get_mut(&sub)
            .and_then(|p| p.session())
            .and_then(|s| s.estimate(now))
            .map(|bits| ((bits as f64 * USABLE) as u64).saturating_sub(self.audio_cost(sub)));
        let speaker = self.speaker.current();
        let wants = self.subscriptions.get(&sub);
        let mut videos: Vec<(TrackId, Option<Layer>, Priority)> = Vec::new();
        for (id, t) in self.tracks.iter() {
            if t.kind != MediaKind::Video || t.publisher == sub {
                continue;
            }
            let Some(d) = t.downtracks.iter().find(|d| d.subscriber == sub) else {
                continue;
            };
            if d.layers.is_none() {
                continue;
            }
            let stream = media_stream::stream_id(t.publisher, t.source.as_deref());
            let height = wants.and_then(|w| w.get(&stream)).copied().unwrap_or(0);
            let order = (Reverse(height), Some(t.publisher) != speaker, id);
            videos.push((id, d.wanted, order));
        }
        videos.sort_by_key(|v| v.2);
        let demands: Vec<Demand<'_>> = videos
            .iter()
            .filter_map(|&(id, wanted, _)| {
                Some(Demand {
                    wanted,
                    rates: &self.tracks.get(id)?.rates,
                })
            })
            .collect();
        let Allocation { targets, limited } = allocate(budget, &demands);
        if let Some(p) = self.participants.get_mut(&sub) {
            match budget {
                Some(budget) => p.probe.allocated(now, budget, limited),
                None => p.probe = Default::default(),
            }
        }
        self.start_probe(sub, now);
        for ((id, _, _), target) in videos.into_iter().zip(targets) {
            if let Some(t) = self.tracks.get_mut(id)
                && let Some(d) = t.downtracks.iter_mut().find(|d| d.subscriber == sub)
                && let Some(layers) = d.layers.as_mut()
                && layers.target() != target
            {
                layers.set_target(target);
            }
        }
    }

    /// What the audio `sub` is forwarded costs at most: the costliest streams of the others,
    /// as many as are forwarded at a time.
    fn audio_cost(&self, sub: ParticipantId) -> u64 {
        let mut costs: Vec<u64> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.kind == MediaKind::Audio && t.publisher != sub)
            .map(|(_, t)| t.rates.cost(Layer::ALL))
            .collect();
        costs.sort_unstable_by(|a, b| b.cmp(a));
        let places = match self.audio.places() {
            0 => costs.len(),
            n => n,
        };
        costs.iter().take(places).sum()
    }
}

#[cfg(test)]
mod tests;
