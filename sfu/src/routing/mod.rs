//! Who receives what, in one room: IO-free, so it is tested without sockets. The media driver
//! asks it what to do when participants join, leave, publish and unpublish, and when
//! subscribers ask for key frames or publishers report audio levels; it carries out the
//! returned [`Action`]s on webrtc-rs.

mod keyframes;
mod speaker;

use std::collections::BTreeMap;
use std::time::Instant;

use signaling_protocol::ParticipantId;

pub use keyframes::KeyframeThrottle;
pub use speaker::ActiveSpeaker;

/// Tracks one participant may publish at once: a microphone, a camera, and a screen share
/// with its sound.
pub const MAX_TRACKS_PER_PUBLISHER: usize = 4;

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaKind {
    Audio,
    Video,
}

/// A published track, numbered by the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub u64);

/// A track someone publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedTrack {
    pub id: TrackId,
    pub publisher: ParticipantId,
    pub kind: MediaKind,
}

/// What the media driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start sending `track` to `subscriber` (add a local track and renegotiate).
    Subscribe {
        subscriber: ParticipantId,
        track: PublishedTrack,
    },
    /// Stop sending `track` to `subscriber` (remove it and renegotiate).
    Unsubscribe {
        subscriber: ParticipantId,
        track: TrackId,
    },
    /// Ask the publisher of `track` for a key frame (PLI).
    RequestKeyframe { track: TrackId },
    /// The loudest participant changed (`None`: nobody is speaking).
    ActiveSpeaker { participant: Option<ParticipantId> },
}

/// Refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    #[error("participant {0} is not in the room")]
    UnknownParticipant(ParticipantId),
    #[error("participant {0} may not publish")]
    PublishNotAllowed(ParticipantId),
    #[error("track {0:?} does not exist")]
    UnknownTrack(TrackId),
    #[error(
        "participant {0} already publishes {MAX_TRACKS_PER_PUBLISHER} tracks, the most one may"
    )]
    TooManyTracks(ParticipantId),
}

#[derive(Debug)]
struct Member {
    may_publish: bool,
}

/// The routing table of one room.
#[derive(Debug)]
pub struct RoomRouter {
    members: BTreeMap<ParticipantId, Member>,
    tracks: BTreeMap<TrackId, PublishedTrack>,
    next_track: u64,
    keyframes: KeyframeThrottle,
    speaker: ActiveSpeaker,
}

impl RoomRouter {
    /// An empty room; key-frame requests per track are at most one per `keyframe_interval`.
    pub fn new(keyframes: KeyframeThrottle, speaker: ActiveSpeaker) -> Self {
        RoomRouter {
            members: BTreeMap::new(),
            tracks: BTreeMap::new(),
            next_track: 1,
            keyframes,
            speaker,
        }
    }

    /// Everyone in the room.
    pub fn participants(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        self.members.keys().copied()
    }

    /// The published tracks.
    pub fn tracks(&self) -> impl Iterator<Item = &PublishedTrack> {
        self.tracks.values()
    }

    /// Who receives `track`: every participant but its publisher.
    pub fn subscribers(&self, track: TrackId) -> Vec<ParticipantId> {
        let Some(t) = self.tracks.get(&track) else {
            return Vec::new();
        };
        self.members
            .keys()
            .copied()
            .filter(|&p| p != t.publisher)
            .collect()
    }

    /// A participant's media connection is up: it receives every track already published, and
    /// their publishers are asked for key frames so its video starts at once.
    pub fn join(&mut self, pid: ParticipantId, may_publish: bool, now: Instant) -> Vec<Action> {
        self.members.insert(pid, Member { may_publish });
        let mut actions = Vec::new();
        let tracks: Vec<PublishedTrack> = self.tracks.values().copied().collect();
        for track in tracks {
            actions.push(Action::Subscribe {
                subscriber: pid,
                track,
            });
            if track.kind == MediaKind::Video && self.keyframes.allow(track.id, now) {
                actions.push(Action::RequestKeyframe { track: track.id });
            }
        }
        actions
    }

    /// A participant left or vanished: its tracks leave every subscriber.
    pub fn leave(&mut self, pid: ParticipantId, now: Instant) -> Vec<Action> {
        if self.members.remove(&pid).is_none() {
            return Vec::new();
        }
        let mine: Vec<TrackId> = self
            .tracks
            .values()
            .filter(|t| t.publisher == pid)
            .map(|t| t.id)
            .collect();
        let mut actions = Vec::new();
        for id in mine {
            actions.extend(self.remove_track(id));
        }
        if let Some(change) = self.speaker.forget(pid, now) {
            actions.push(Action::ActiveSpeaker {
                participant: change,
            });
        }
        actions
    }

    /// A participant publishes a track: every other participant receives it.
    pub fn publish(
        &mut self,
        pid: ParticipantId,
        kind: MediaKind,
    ) -> Result<(PublishedTrack, Vec<Action>), RouteError> {
        let member = self
            .members
            .get(&pid)
            .ok_or(RouteError::UnknownParticipant(pid))?;
        if !member.may_publish {
            return Err(RouteError::PublishNotAllowed(pid));
        }
        if self.tracks.values().filter(|t| t.publisher == pid).count() >= MAX_TRACKS_PER_PUBLISHER {
            return Err(RouteError::TooManyTracks(pid));
        }
        let track = PublishedTrack {
            id: TrackId(self.next_track),
            publisher: pid,
            kind,
        };
        self.next_track += 1;
        self.tracks.insert(track.id, track);
        let actions = self
            .subscribers(track.id)
            .into_iter()
            .map(|subscriber| Action::Subscribe { subscriber, track })
            .collect();
        Ok((track, actions))
    }

    /// A track ends.
    pub fn unpublish(&mut self, track: TrackId) -> Result<Vec<Action>, RouteError> {
        if !self.tracks.contains_key(&track) {
            return Err(RouteError::UnknownTrack(track));
        }
        Ok(self.remove_track(track))
    }

    fn remove_track(&mut self, id: TrackId) -> Vec<Action> {
        let subscribers = self.subscribers(id);
        self.tracks.remove(&id);
        self.keyframes.forget(id);
        subscribers
            .into_iter()
            .map(|subscriber| Action::Unsubscribe {
                subscriber,
                track: id,
            })
            .collect()
    }

    /// A subscriber sent PLI or FIR for `track`: passed to the publisher, throttled.
    pub fn keyframe_request(&mut self, track: TrackId, now: Instant) -> Option<Action> {
        (self.tracks.contains_key(&track) && self.keyframes.allow(track, now))
            .then_some(Action::RequestKeyframe { track })
    }

    /// An audio packet's RFC 6464 level (`0` loudest, `127` silence) for `track`.
    pub fn audio_level(&mut self, track: TrackId, level: u8, now: Instant) {
        if let Some(t) = self.tracks.get(&track)
            && t.kind == MediaKind::Audio
        {
            self.speaker.observe(t.publisher, level, now);
        }
    }

    /// Re-evaluates the active speaker; call a few times a second.
    pub fn tick(&mut self, now: Instant) -> Option<Action> {
        self.speaker
            .update(now)
            .map(|participant| Action::ActiveSpeaker { participant })
    }
}

#[cfg(test)]
mod tests;
