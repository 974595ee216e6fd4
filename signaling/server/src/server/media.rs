//! The seam between signaling and media: the SFU implements [`MediaHandler`] to learn who is in
//! which room and to exchange SDP and ICE with each participant over its signaling connection.

use signaling_protocol::{ErrorCode, IceCandidate, ParticipantId, ServerMessage};

use super::outbox::{Outbound, Outbox};

/// Media negotiation messages from a participant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaSignal {
    Offer(String),
    Answer(String),
    Candidate(IceCandidate),
}

/// Sends SDP and ICE to one participant's signaling connection.
#[derive(Debug, Clone)]
pub struct MediaSender {
    pub(super) outbox: Outbox,
}

impl MediaSender {
    /// Queues `signal` for the participant; false if its connection is gone or stuck.
    pub fn send(&self, signal: MediaSignal) -> bool {
        let message = match signal {
            MediaSignal::Offer(sdp) => ServerMessage::SdpOffer { sdp },
            MediaSignal::Answer(sdp) => ServerMessage::SdpAnswer { sdp },
            MediaSignal::Candidate(c) => ServerMessage::IceCandidate(c),
        };
        self.outbox.push(Outbound::Message(message)).is_ok()
    }

    /// Tells the participant who the active speaker is.
    pub fn active_speaker(&self, participant_id: Option<ParticipantId>) -> bool {
        self.outbox
            .push(Outbound::Message(ServerMessage::ActiveSpeaker {
                participant_id,
            }))
            .is_ok()
    }

    /// Tells the participant that its media request failed, and why.
    pub fn error(&self, code: ErrorCode, message: impl Into<String>) -> bool {
        self.outbox
            .push(Outbound::Message(ServerMessage::error(code, message)))
            .is_ok()
    }

    /// Tells the participant why, then closes its signaling connection: it leaves the room as
    /// if it had gone (its MLS removal follows in the next commit).
    pub fn disconnect(&self, code: ErrorCode, message: impl Into<String>) {
        let _ = self
            .outbox
            .push(Outbound::Message(ServerMessage::error(code, message)));
        let _ = self.outbox.push(Outbound::Close);
    }
}

/// What the media side (the SFU) is told. Calls come from connection tasks and must not block.
pub trait MediaHandler: Send + Sync + 'static {
    /// A participant entered `room`; `sender` reaches it until [`MediaHandler::left`].
    fn joined(
        &self,
        room: &str,
        participant: ParticipantId,
        may_publish: bool,
        sender: MediaSender,
    );
    /// A participant sent an offer, an answer or a candidate.
    fn signal(&self, room: &str, participant: ParticipantId, signal: MediaSignal);
    /// A participant's signaling connection is gone (left, closed, timed out).
    fn left(&self, room: &str, participant: ParticipantId);
}
