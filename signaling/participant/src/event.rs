//! What the client reports.

use media_crypto::mls::{EpochKey, RosterEntry, SafetyNumber};
use signaling_protocol::{ErrorCode, IceCandidate, Participant, ParticipantId};

/// Something that happened in the room or the group.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The group moved to a new epoch (or this member entered it): install `key` in the
    /// media keyring. The roster and safety number are the group's own.
    NewEpoch {
        epoch: u64,
        key: EpochKey,
        roster: Vec<RosterEntry>,
        safety_number: SafetyNumber,
        added: Vec<RosterEntry>,
        removed: Vec<RosterEntry>,
    },
    /// A commit removed this member: it holds no keys for later epochs.
    Removed { epoch: u64 },
    /// Someone entered the room (not yet the group).
    ParticipantJoined(Participant),
    /// Someone left the room.
    ParticipantLeft(ParticipantId),
    /// SDP offer from the SFU.
    SdpOffer(String),
    /// SDP answer from the SFU.
    SdpAnswer(String),
    /// ICE candidate from the SFU.
    IceCandidate(IceCandidate),
    /// The active speaker changed.
    ActiveSpeaker(Option<ParticipantId>),
    /// The server refused a message of ours.
    ServerError { code: ErrorCode, message: String },
    /// Something the server sent could not be applied to the MLS session.
    MlsFailure(String),
    /// The connection is closed.
    Closed { reason: String },
}
