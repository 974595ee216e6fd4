//! What the participant reports.

use media_crypto::mls::{EpochKey, RosterEntry, SafetyNumber};
use signaling_protocol::{
    ErrorCode, IceCandidate, Participant, ParticipantId, PausedVideo, VideoSection,
};

use crate::app::AppMessage;
use crate::checks::{LeafWarning, SameName};

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
        /// Leaves that entered with this epoch unexplained ([`crate::checks`]).
        warnings: Vec<LeafWarning>,
        /// Whether this member may send media now: no unexplained leaf is in the group, or
        /// the user acknowledged each one ([`crate::Participant::acknowledge`]).
        may_send: bool,
        /// Identities more than one member holds, in this epoch.
        same_names: Vec<SameName>,
    },
    /// Whether media may be sent changed without a new epoch (an acknowledgement).
    SendGate {
        may_send: bool,
        /// The unexplained leaves still in the group and not acknowledged.
        unexplained: Vec<LeafWarning>,
    },
    /// The delivery service's account of a commit (`added`, `removed`) differs from what the
    /// commit does.
    AccountMismatch {
        epoch: u64,
        claimed_added: Vec<ParticipantId>,
        added: Vec<ParticipantId>,
        claimed_removed: Vec<ParticipantId>,
        removed: Vec<ParticipantId>,
    },
    /// As committer, this member refused to add a key package the delivery service asked it
    /// to add.
    RefusedAdd {
        participant_id: ParticipantId,
        reason: String,
    },
    /// A proposal from another member was refused (not kept for any commit).
    RefusedProposal { from: ParticipantId, reason: String },
    /// The delivery service re-created the group (or stopped counting this member in it):
    /// this member dropped the group and asked to be added to the next one.
    GroupReset { reason: String },
    /// This member could not process a commit; it dropped the group and asked to be added
    /// again.
    GroupLost { epoch: u64, reason: String },
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
    /// Send at most this many spatial layers of our video `source`, the top one `height`
    /// tall (0: nobody shows it).
    SendLayers {
        source: String,
        spatial_layers: u8,
        height: u16,
    },
    /// The videos we show that the SFU sends us nothing of now, and why (a hint for what
    /// their tiles say).
    PausedVideos(Vec<PausedVideo>),
    /// The videos published in the room now, by stream id (a hint).
    VideoStreams(Vec<String>),
    /// What each of our video sections carries now (a hint: the keys name the sender).
    VideoSections(Vec<VideoSection>),
    /// The server refused a message of ours.
    ServerError { code: ErrorCode, message: String },
    /// Something the server sent could not be applied to the MLS session.
    MlsFailure(String),
    /// A member said something ([`crate::app::AppMessage`]), in `epoch`. `sender` is the
    /// member whose key signed it; `claimed_from` is who the server said relayed it.
    Application {
        epoch: u64,
        sender: RosterEntry,
        claimed_from: ParticipantId,
        /// The sender's number for it in this group.
        seq: u64,
        message: AppMessage,
    },
    /// `missing` messages of `sender` did not arrive (the server dropped them, or they were
    /// lost): their numbers were skipped and did not come within `inbox::GAP_WAIT`.
    ApplicationGap { sender: RosterEntry, missing: u64 },
    /// A message of ours (`id`) waits to be sealed: the group is changing, or someone
    /// unexplained is in it. It goes out by itself when it can.
    ApplicationWaiting { id: u64, reason: String },
    /// An application message that is not shown: it did not open (another epoch, not a
    /// member, tampered, replayed) or is not one this meeting sends; or the server refused
    /// ours for good.
    ApplicationRefused { from: ParticipantId, reason: String },
    /// The connection dropped (`reason`) and the client joins again by itself, attempt
    /// `attempt` (from 1) after its backoff; the media connection made for the old one is
    /// dead. Reported by the Rust client when reconnecting is on, never by the participant core.
    Reconnecting { reason: String, attempt: u32 },
    /// Joined again, as a new participant `participant_id` with the same device key; the
    /// group adds it anew (new epochs follow): make the media connection again.
    Reconnected { participant_id: ParticipantId },
    /// The connection is closed.
    Closed { reason: String },
}
