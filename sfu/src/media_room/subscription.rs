//! What each subscriber asks to see (`video_wants`): for each video, the height of the largest
//! tile showing it. The room turns that into the layers the subscriber gets: the lowest
//! spatial layer at least 3/4 as tall as the tile (with every temporal layer), nothing of a
//! video no tile shows or it did not name. A subscriber that never said what it shows gets
//! everything (a client that shows every video it is sent); one that did is sent no video
//! before it names it (the room lists the videos published, `video_streams`), so that its
//! connection holds a video section per video it shows, not per video in the room. A video without spatial layers,
//! or whose publisher has not said their sizes, is sent whole or not at all.
//!
//! It may also name its own last-N: how many of the videos it shows it takes at a time (the
//! room's own applies as well; [`super::bandwidth`] picks which).
//!
//! A subscriber's word only: what it asks changes what it is sent, never what anyone else is.

use std::collections::HashMap;
use std::time::Instant;

use signaling_protocol::{ErrorCode, MAX_VIDEO_WANTS, ParticipantId, VideoWant};

use super::layers::Layer;
use super::{MediaKind, MediaRoom, TrackId};

/// What a subscriber last asked to see.
#[derive(Debug, Default)]
pub(super) struct Wants {
    /// Tile heights by stream id.
    pub heights: HashMap<String, u16>,
    /// The most videos it takes at a time, if it said.
    pub last_n: Option<u16>,
}

impl MediaRoom {
    /// `sub` shows these videos this large from now on, and takes at most `last_n` at a time.
    pub(super) fn video_wants(
        &mut self,
        sub: ParticipantId,
        wants: Vec<VideoWant>,
        last_n: Option<u16>,
        now: Instant,
    ) {
        if wants.len() > MAX_VIDEO_WANTS {
            self.refuse(
                sub,
                ErrorCode::MalformedMessage,
                format!("video_wants names at most {MAX_VIDEO_WANTS} videos"),
            );
            return;
        }
        let mut heights: HashMap<String, u16> = HashMap::new();
        for w in wants {
            let h = heights.entry(w.stream).or_default();
            *h = (*h).max(w.height);
        }
        self.subscriptions.insert(sub, Wants { heights, last_n });
        let video: Vec<TrackId> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.kind == MediaKind::Video)
            .map(|(id, _)| id)
            .collect();
        for id in video {
            self.rewant(id, Some(sub));
        }
        self.reallocate(sub, now);
        // A tile that grew needs its layer sent now.
        self.tell_publishers(now);
    }

    /// The most videos `sub` takes at a time, if anyone set a limit: its own last-N or the
    /// room's, the smaller (a receiver's 0 sets none of its own). (Beyond it, the room's most
    /// video sections caps what a receiver takes: [`super::bandwidth`].)
    pub(super) fn last_n(&self, sub: ParticipantId) -> Option<usize> {
        let own = self
            .subscriptions
            .get(&sub)
            .and_then(|w| w.last_n)
            .map_or(0, usize::from);
        [self.last_n, own].into_iter().filter(|&n| n > 0).min()
    }

    /// Track `id`'s layers changed size: what each subscriber's tile needs of it, anew.
    pub(super) fn resized(&mut self, id: TrackId, now: Instant) {
        self.rewant(id, None);
        let subs: Vec<ParticipantId> = self
            .tracks
            .get(id)
            .map(|t| t.downtracks.iter().map(|d| d.subscriber).collect())
            .unwrap_or_default();
        for sub in subs {
            self.reallocate(sub, now);
        }
    }

    /// Sets what `only` (or every subscriber) needs of track `id`, from what it asked.
    pub(super) fn rewant(&mut self, id: TrackId, only: Option<ParticipantId>) {
        let Some(track) = self.tracks.get_mut(id) else {
            return;
        };
        let stream = track.stream_id();
        for d in &mut track.downtracks {
            if only.is_some_and(|s| s != d.subscriber) {
                continue;
            }
            // Not named by one that says what it shows: not shown.
            let height = self
                .subscriptions
                .get(&d.subscriber)
                .map(|w| w.heights.get(&stream).copied().unwrap_or(0));
            d.wanted = layer_for(height, track.resolutions.as_deref());
        }
    }
}

/// The layers for a tile `height` device pixels tall (`None`: not named, everything) of a
/// video whose spatial layers are `resolutions` (width, height) tall, lowest first.
pub fn layer_for(height: Option<u16>, resolutions: Option<&[(u16, u16)]>) -> Option<Layer> {
    let Some(height) = height else {
        return Some(Layer::ALL);
    };
    if height == 0 {
        return None;
    }
    let spatial = resolutions.map_or(Layer::ALL.spatial, |sizes| {
        let enough = |&(_, h): &(u16, u16)| u32::from(h) * 4 >= u32::from(height) * 3;
        sizes
            .iter()
            .position(enough)
            .unwrap_or(sizes.len().saturating_sub(1)) as u8
    });
    Some(Layer {
        spatial,
        temporal: Layer::ALL.temporal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVC: &[(u16, u16)] = &[(320, 180), (640, 360), (1280, 720)];

    fn spatial(height: u16) -> Option<u8> {
        layer_for(Some(height), Some(SVC)).map(|l| l.spatial)
    }

    #[test]
    fn the_lowest_layer_at_least_three_quarters_as_tall_as_the_tile() {
        assert_eq!(spatial(120), Some(0));
        assert_eq!(spatial(240), Some(0), "180 of 240");
        assert_eq!(spatial(241), Some(1));
        assert_eq!(spatial(480), Some(1));
        assert_eq!(spatial(720), Some(2));
        assert_eq!(spatial(2160), Some(2), "the top layer for anything larger");
        assert_eq!(spatial(0), None, "not shown: nothing");
    }

    #[test]
    fn without_sizes_or_a_wish_the_video_is_sent_whole() {
        assert_eq!(layer_for(None, Some(SVC)), Some(Layer::ALL));
        assert_eq!(layer_for(Some(100), None), Some(Layer::ALL));
        assert_eq!(layer_for(Some(0), None), None);
    }
}
