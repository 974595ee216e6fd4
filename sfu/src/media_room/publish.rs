//! Publishing: a track a participant's connection opened is published by its first packet
//! (which names the codec), if the participant may publish and has room for one more; it ends
//! for every subscriber when its section stops or its publisher leaves.

use rtc::peer_connection::configuration::media_engine::MIME_TYPE_VP9;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling_protocol::{ErrorCode, ParticipantId};

use super::participant::Link;
use super::rewrite::END_TO_END_EXTENSIONS;
use super::tracks::{InputOrder, Published};
use super::{MAX_TRACKS_PER_PUBLISHER, MediaKind, MediaRoom, TrackId};

impl MediaRoom {
    /// A track's first packet arrived with `payload_type`: it is published, if it may be.
    pub(super) fn publish(
        &mut self,
        pid: ParticipantId,
        engine_track: &str,
        payload_type: u8,
    ) -> Option<TrackId> {
        let count = self.tracks.of(pid).len();
        let p = self.participants.get_mut(&pid)?;
        let opening = p.opening.get(engine_track)?.clone();
        if opening.refused {
            return None;
        }
        let refusal = if !p.may_publish {
            Some(format!("participant {pid} may not publish"))
        } else if count >= MAX_TRACKS_PER_PUBLISHER {
            Some(format!(
                "participant {pid} already publishes {MAX_TRACKS_PER_PUBLISHER} tracks, the most one may"
            ))
        } else {
            None
        };
        if let Some(message) = refusal {
            tracing::info!(participant = pid, %message, "track refused");
            if let Some(t) = p.opening.get_mut(engine_track) {
                t.refused = true;
            }
            self.refuse(pid, ErrorCode::PublishNotAllowed, message);
            return None;
        }
        let Link::Open(s) = &mut p.link else {
            return None;
        };
        let received = s.received_track(opening.receiver, payload_type)?;
        let kind = match received.kind {
            RtpCodecKind::Audio => Some(MediaKind::Audio),
            RtpCodecKind::Video => Some(MediaKind::Video),
            _ => None,
        };
        let (Some(kind), Some(codec)) = (kind, received.codec) else {
            // Its packets are dropped from now on, without looking again.
            tracing::info!(
                participant = pid,
                payload_type,
                "a track in a codec not negotiated"
            );
            if let Some(t) = p.opening.get_mut(engine_track) {
                t.refused = true;
            }
            return None;
        };
        let extensions = received.extensions;
        let audio_level = (kind == MediaKind::Audio)
            .then(|| {
                extensions
                    .iter()
                    .find(|(uri, _)| uri == END_TO_END_EXTENSIONS[0])
                    .map(|&(_, id)| id)
            })
            .flatten();
        p.opening.remove(engine_track);
        let layered = codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_VP9);
        let id = self.tracks.insert(Published {
            publisher: pid,
            kind,
            receiver: opening.receiver,
            engine_track: engine_track.to_owned(),
            media_ssrc: opening.ssrc,
            source: opening.source,
            codec,
            extensions,
            audio_level,
            layered,
            resolutions: None,
            order: InputOrder::default(),
            rates: Default::default(),
            told: None,
            fewer_since: None,
            downtracks: Vec::new(),
        });
        tracing::info!(participant = pid, track = id.0, ?kind, "publishing");
        let subscribers: Vec<ParticipantId> = self
            .participants
            .iter()
            .filter(|&(&q, p)| q != pid && p.negotiation.routed)
            .map(|(&q, _)| q)
            .collect();
        for sub in subscribers {
            self.subscribe(sub, id);
        }
        self.tell_streams();
        Some(id)
    }

    /// Tracks whose section the participant's latest offer no longer sends on end at once for
    /// every subscriber.
    pub(super) fn unpublish_stopped(&mut self, pid: ParticipantId) {
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        let Some(s) = p.session() else { return };
        let receiving = s.receiving();
        let stopped: Vec<TrackId> = self
            .tracks
            .of(pid)
            .into_iter()
            .filter(|&id| {
                self.tracks
                    .get(id)
                    .is_some_and(|t| !receiving.contains(&t.receiver))
            })
            .collect();
        // A stopped section may open again with a new track: its first packet publishes it.
        p.opening.retain(|_, t| receiving.contains(&t.receiver));
        for id in stopped {
            tracing::info!(participant = pid, track = id.0, "track stopped");
            self.unpublish(id);
        }
        self.tell_streams();
    }

    /// Ends track `id` for every subscriber and forgets it: a section that carried it is free
    /// for the subscriber's next video.
    pub(super) fn unpublish(&mut self, id: TrackId) {
        let Some(track) = self.tracks.remove(id) else {
            return;
        };
        self.keyframes.forget(id);
        self.audio.forget(id);
        for d in track.downtracks {
            if let Some(p) = self.participants.get_mut(&d.subscriber) {
                p.video.forget(id);
                self.assign_videos(d.subscriber);
            }
        }
    }
}
