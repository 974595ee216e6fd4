//! Subscribing: every published video is offered to every other participant as a copy the
//! room decides on (its layers, within the subscriber's tiles, last-N and bandwidth); a copy
//! the subscriber takes goes out in one of its video sections ([`super::video_sections`]).
//! (Audio takes turns in the receiver's audio sections: [`super::audio_sections`].)

use signaling_protocol::ParticipantId;

use super::layers::{Layer, LayerSelector};
use super::tracks::Downtrack;
use super::{MediaKind, MediaRoom, TrackId};

impl MediaRoom {
    /// `sub` may take video track `id` from now on, as much as its tiles need of it.
    pub(super) fn subscribe(&mut self, sub: ParticipantId, id: TrackId) {
        let Some(track) = self.tracks.get(id).filter(|t| t.kind == MediaKind::Video) else {
            return;
        };
        if track.publisher == sub || track.downtracks.iter().any(|d| d.subscriber == sub) {
            return;
        }
        let layers = track.layered.then(LayerSelector::default);
        // Under a last-N, a new copy waits for the allocation to take it in: until then it is
        // not forwarded, nor counted as needed by its publisher.
        let beyond_last_n = layers.is_some() && self.last_n(sub).is_some();
        self.tracks.add_downtrack(
            id,
            Downtrack {
                subscriber: sub,
                layers,
                wanted: Some(Layer::ALL),
                beyond_last_n,
            },
        );
        // What its tile needs; its bandwidth's share comes with the next allocation.
        self.rewant(id, Some(sub));
        if let Some(d) = self
            .tracks
            .get_mut(id)
            .and_then(|t| t.downtracks.iter_mut().find(|d| d.subscriber == sub))
        {
            let needed = d.needed();
            if let Some(layers) = d.layers.as_mut() {
                layers.set_target(needed);
            }
        }
        self.assign_videos(sub);
    }
}
