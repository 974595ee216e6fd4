//! Each subscriber's videos within its bandwidth. Twice a second, and whenever what it shows
//! changes, the room shares the subscriber's estimate ([`super::rtcp::estimate`]) among the
//! videos it receives ([`allocate`]), each video's layers costed from what its publisher sends
//! ([`rates`]), and sets each one's layer selector to the result.
//!
//! Most important first: the largest tile (the featured video: a screen share, the pinned
//! tile, the speaker in speaker view), then, among tiles of a size, the most recent speakers.
//! Beyond the subscriber's last-N (its own or the room's, the smaller, and never more than the
//! room's most videos per receiver, [`super::Policy::max_videos`]) a shown video gets
//! nothing, and its publisher is told no one needs it ([`super::send_layers`]). The subscriber
//! is told which of its shown videos get nothing, and why (`paused_videos`).

mod allocate;
pub mod probe;
pub mod rates;

use std::cmp::Reverse;
use std::time::Instant;

use signaling_protocol::{MediaSignal, ParticipantId, PauseReason, PausedVideo};

pub use allocate::{Allocation, Demand, allocate};
pub use rates::LayerRates;

use super::{Layer, MediaKind, MediaRoom, Output, TrackId};

/// The share of the estimate the videos may use: the rest absorbs the estimate's error and
/// a key picture's burst.
const USABLE: f64 = 0.9;

/// Most important first: the largest tile, then the most recent speaker, then the oldest
/// track.
type Priority = (Reverse<u16>, usize, TrackId);

/// One video a subscriber may get, as it is being shared out.
struct Video {
    id: TrackId,
    stream: String,
    wanted: Option<Layer>,
    beyond_last_n: bool,
    order: Priority,
}

impl MediaRoom {
    /// Each track's rates close their window; every subscriber's videos are shared out anew.
    pub(super) fn reallocate_all(&mut self, now: Instant) {
        let ids: Vec<TrackId> = self.tracks.iter().map(|(id, _)| id).collect();
        for id in ids {
            if let Some(t) = self.tracks.get_mut(id) {
                t.rates.roll(now);
            }
        }
        self.reallocate_everyone(now);
    }

    /// Every subscriber's videos shared out anew (as when the speaker changes: the new one's
    /// video goes first, and into each last-N, at once).
    pub(super) fn reallocate_everyone(&mut self, now: Instant) {
        let subs: Vec<ParticipantId> = self.participants.keys().copied().collect();
        for sub in subs {
            self.reallocate(sub, now);
        }
        self.tell_publishers(now);
    }

    /// Sets the layers of every video `sub` receives from what its tiles want, its last-N and
    /// what its estimate allows; tells it which of the videos it shows get nothing now.
    pub(super) fn reallocate(&mut self, sub: ParticipantId, now: Instant) {
        let budget = self
            .participants
            .get_mut(&sub)
            .and_then(|p| p.session())
            .and_then(|s| s.estimate(now))
            .map(|bits| ((bits as f64 * USABLE) as u64).saturating_sub(self.audio_cost(sub)));
        // Its last-N, and in any case no more than it has sections for at most.
        let last_n = self
            .last_n(sub)
            .map_or(self.max_videos, |n| n.min(self.max_videos));
        let wants = self.subscriptions.get(&sub);
        let mut videos: Vec<Video> = Vec::new();
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
            let stream = t.stream_id();
            let height = wants
                .and_then(|w| w.heights.get(&stream))
                .copied()
                .unwrap_or(0);
            let order = (Reverse(height), self.speaker.recency(t.publisher), id);
            videos.push(Video {
                id,
                stream,
                wanted: d.wanted,
                beyond_last_n: false,
                order,
            });
        }
        videos.sort_by_key(|v| v.order);
        for v in videos
            .iter_mut()
            .filter(|v| v.wanted.is_some())
            .skip(last_n)
        {
            v.beyond_last_n = true;
        }
        let demands: Vec<Demand<'_>> = videos
            .iter()
            .filter_map(|v| {
                Some(Demand {
                    wanted: v.wanted.filter(|_| !v.beyond_last_n),
                    rates: &self.tracks.get(v.id)?.rates,
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
        let mut paused = Vec::new();
        for (v, target) in videos.into_iter().zip(targets) {
            if v.wanted.is_some() && target.is_none() {
                paused.push(PausedVideo {
                    reason: if v.beyond_last_n {
                        PauseReason::LastN
                    } else {
                        PauseReason::Bandwidth
                    },
                    stream: v.stream,
                });
            }
            if let Some(t) = self.tracks.get_mut(v.id)
                && let Some(d) = t.downtracks.iter_mut().find(|d| d.subscriber == sub)
            {
                d.beyond_last_n = v.beyond_last_n;
                if let Some(layers) = d.layers.as_mut()
                    && layers.target() != target
                {
                    layers.set_target(target);
                }
            }
        }
        self.tell_paused(sub, paused);
        // What it takes now, in its video sections.
        self.assign_videos(sub);
    }

    /// Tells `sub` which videos it shows get nothing now, if that changed.
    fn tell_paused(&mut self, sub: ParticipantId, mut paused: Vec<PausedVideo>) {
        paused.sort_by(|a, b| a.stream.cmp(&b.stream));
        let Some(p) = self.participants.get_mut(&sub) else {
            return;
        };
        if p.paused == paused {
            return;
        }
        p.paused = paused.clone();
        self.outputs.push_back(Output::Signal {
            participant: sub,
            signal: MediaSignal::PausedVideos(paused),
        });
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
