//! The room's one track table: every published track with the publisher's stream it comes
//! from, and every subscriber's copy of it.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use rtc::rtp_transceiver::RTCRtpReceiverId;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use signaling_protocol::ParticipantId;

use super::bandwidth::LayerRates;
use super::layers::{Layer, LayerSelector};

/// Tracks one participant may publish at once: a microphone, a camera, and a screen share
/// with its sound.
pub const MAX_TRACKS_PER_PUBLISHER: usize = 4;

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaKind {
    Audio,
    Video,
}

/// A published track, numbered by the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub u64);

/// A track someone publishes.
#[derive(Debug)]
pub struct Published {
    pub publisher: ParticipantId,
    pub kind: MediaKind,
    /// The publisher's receiver for it, and the id its connection gives the track.
    pub receiver: RTCRtpReceiverId,
    pub engine_track: String,
    /// The SSRC it arrives with (key-frame requests name it).
    pub media_ssrc: u32,
    /// The publisher's stream it belongs to (its msid stream id), forwarded as the stream id's
    /// second part (`signaling_protocol::media_stream`).
    pub source: Option<String>,
    pub codec: RTCRtpCodec,
    /// The publisher's header-extension ids by URI.
    pub extensions: Vec<(String, u8)>,
    /// The RFC 6464 audio-level extension id, if negotiated.
    pub audio_level: Option<u8>,
    /// VP9: each subscriber gets the layers chosen for it.
    pub layered: bool,
    /// The sizes of its spatial layers, lowest first, as the publisher last said while
    /// sending all it sends (its ladder: told to send fewer, it keeps them).
    pub resolutions: Option<Vec<(u16, u16)>>,
    /// How many spatial layers the publisher was last told to send (`None`: all), and since
    /// when fewer would do ([`super::send_layers`]).
    pub told: Option<u8>,
    pub fewer_since: Option<Instant>,
    /// Where its packets stand in sequence order.
    pub order: InputOrder,
    /// What its layers cost.
    pub rates: LayerRates,
    pub downtracks: Vec<Downtrack>,
}

impl Published {
    /// The stream id receivers know it by (`signaling_protocol::media_stream`).
    pub fn stream_id(&self) -> String {
        signaling_protocol::media_stream::stream_id(self.publisher, self.source.as_deref())
    }
}

/// The newest packet of a track seen, to tell a late packet (a retransmission or a reordered
/// one) from the next.
#[derive(Debug, Default, Clone, Copy)]
pub struct InputOrder {
    newest: Option<(u32, u16)>,
}

impl InputOrder {
    /// True if the packet of `ssrc` and `seq` comes after every one seen (a new SSRC starts
    /// afresh); it is then the newest.
    pub fn next(&mut self, ssrc: u32, seq: u16) -> bool {
        match self.newest {
            Some((s, newest))
                if s == ssrc && (seq == newest || seq.wrapping_sub(newest) >= 0x8000) =>
            {
                false
            }
            _ => {
                self.newest = Some((ssrc, seq));
                true
            }
        }
    }
}

/// What one subscriber takes of a video (which of its video sections carries it, if any, is
/// the subscriber's to say: [`super::video_sections`]).
#[derive(Debug)]
pub struct Downtrack {
    pub subscriber: ParticipantId,
    /// The layers it gets (layered tracks): at most `wanted`, as the subscriber's bandwidth
    /// allows.
    pub layers: Option<LayerSelector>,
    /// The most of it the subscriber's tile needs (`None`: not shown).
    pub wanted: Option<Layer>,
    /// Shown, but beyond the subscriber's last-N: it gets none of it.
    pub beyond_last_n: bool,
}

impl Downtrack {
    /// The most of it the subscriber takes now: what its tile needs, unless last-N leaves
    /// it out.
    pub fn needed(&self) -> Option<Layer> {
        self.wanted.filter(|_| !self.beyond_last_n)
    }

    /// Whether the subscriber takes any of it now, and so needs a section for it: of a layered
    /// video, what its allocation gives; of another, what its tile needs.
    pub fn takes(&self) -> bool {
        match &self.layers {
            Some(layers) => layers.target().is_some(),
            None => self.needed().is_some(),
        }
    }
}

/// Published tracks by id, and the lookups the packet path needs.
#[derive(Debug, Default)]
pub struct TrackTable {
    tracks: BTreeMap<TrackId, Published>,
    /// (publisher, its connection's track id) to the track.
    by_engine_track: HashMap<(ParticipantId, String), TrackId>,
    next: u64,
}

impl TrackTable {
    pub fn get(&self, id: TrackId) -> Option<&Published> {
        self.tracks.get(&id)
    }

    pub fn get_mut(&mut self, id: TrackId) -> Option<&mut Published> {
        self.tracks.get_mut(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (TrackId, &Published)> {
        self.tracks.iter().map(|(&id, t)| (id, t))
    }

    /// The tracks `publisher` publishes.
    pub fn of(&self, publisher: ParticipantId) -> Vec<TrackId> {
        self.tracks
            .iter()
            .filter(|(_, t)| t.publisher == publisher)
            .map(|(&id, _)| id)
            .collect()
    }

    /// The track a publisher's connection delivers as `engine_track`.
    pub fn by_engine_track(&self, publisher: ParticipantId, engine_track: &str) -> Option<TrackId> {
        self.by_engine_track
            .get(&(publisher, engine_track.to_owned()))
            .copied()
    }

    pub fn insert(&mut self, track: Published) -> TrackId {
        self.next += 1;
        let id = TrackId(self.next);
        self.by_engine_track
            .insert((track.publisher, track.engine_track.clone()), id);
        self.tracks.insert(id, track);
        id
    }

    /// Takes the track out, with its downtracks.
    pub fn remove(&mut self, id: TrackId) -> Option<Published> {
        let track = self.tracks.remove(&id)?;
        self.by_engine_track
            .remove(&(track.publisher, track.engine_track.clone()));
        Some(track)
    }

    pub fn add_downtrack(&mut self, id: TrackId, downtrack: Downtrack) {
        if let Some(t) = self.tracks.get_mut(&id) {
            t.downtracks.push(downtrack);
        }
    }

    /// Takes `subscriber`'s copy of `id` out.
    pub fn remove_downtrack(
        &mut self,
        id: TrackId,
        subscriber: ParticipantId,
    ) -> Option<Downtrack> {
        let t = self.tracks.get_mut(&id)?;
        let i = t
            .downtracks
            .iter()
            .position(|d| d.subscriber == subscriber)?;
        Some(t.downtracks.swap_remove(i))
    }
}
