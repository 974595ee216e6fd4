//! Messages from the server to a participant.

use serde::{Deserialize, Serialize};

use crate::ParticipantId;
use crate::bytes::Base64Bytes;
use crate::client::IceCandidate;
use crate::error::{ErrorCode, KnownTypes};

/// A participant as the server knows it (who holds a token for the room). What the MLS group
/// says about its members is the clients' to show; this list is for media routing and UI hints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub participant_id: ParticipantId,
    pub identity: String,
    pub may_publish: bool,
}

/// A STUN or TURN server for the participant's ICE agent (as in `RTCIceServer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// A key package waiting to be added, in a commit request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAdd {
    pub participant_id: ParticipantId,
    pub key_package: Base64Bytes,
}

/// A video the SFU pauses for its receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PausedVideo {
    /// Its stream id.
    pub stream: String,
    pub reason: PauseReason,
}

/// What one of a receiver's video sections carries now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoSection {
    /// The section's SDP media id.
    pub mid: String,
    /// The stream id of the video it carries (`None`: nothing now).
    #[serde(default)]
    pub stream: Option<String>,
}

/// Why the SFU sends a shown video no packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PauseReason {
    /// The receiver's bandwidth does not carry even its lowest layer beside the videos before
    /// it (larger tiles, the active speaker).
    Bandwidth,
    /// More videos are shown than the receiver's or the room's last-N: this one is not among
    /// the largest tiles or the most recent speakers'.
    LastN,
}

/// Why a commit was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CommitRejection {
    /// Another commit already took that epoch.
    StaleEpoch,
    /// The sender is not a member of the group.
    NotAMember,
    /// The MLS bytes do not parse as a commit of this room's group, or fail verification
    /// against the group's public tree (signature, tree, path, sender).
    InvalidMls,
    /// The commit adds or removes other than what the delivery service queued, or its
    /// `added`/`removed` lists do not say what it does.
    NotAsQueued,
    /// An application message larger than the server relays.
    TooLarge,
    /// An application message beyond the sender's rate (each 4 KiB counts as a message).
    RateLimited,
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerMessage {
    /// The join was accepted. `participants` are the others in the room; `epoch` is the MLS
    /// group's epoch, or `None` if the group does not exist yet.
    Joined {
        participant_id: ParticipantId,
        room: String,
        identity: String,
        may_publish: bool,
        participants: Vec<Participant>,
        epoch: Option<u64>,
        /// STUN/TURN servers to use for media (empty: host candidates only).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServer>,
    },
    /// This participant is the first: create the MLS group with this id, then send
    /// `group_created`.
    CreateGroup { group_id: Base64Bytes },
    /// Commit these adds and removes (and any proposals received) in `epoch`, now.
    CommitRequest {
        epoch: u64,
        add: Vec<PendingAdd>,
        remove: Vec<ParticipantId>,
    },
    /// The commit accepted for `epoch - 1`: every member processes it to reach `epoch`. Its
    /// author receives it too, as the acceptance of its commit. `added` and `removed` are the
    /// participants the delivery service verified it adds and removes; members compare them
    /// with what the commit itself does.
    Commit {
        epoch: u64,
        from: ParticipantId,
        commit: Base64Bytes,
        #[serde(default)]
        added: Vec<ParticipantId>,
        #[serde(default)]
        removed: Vec<ParticipantId>,
    },
    /// The delivery service no longer counts this participant in the group (the group was
    /// re-created, or it did not confirm its Welcome in time): drop the group and send a fresh
    /// key package (unless asked to create the next group).
    Rejoin { reason: String },
    /// A commit of this participant's was refused; `epoch` is the room's current epoch.
    CommitRejected { epoch: u64, reason: CommitRejection },
    /// The Welcome that adds this participant to the group at `epoch`.
    Welcome { epoch: u64, welcome: Base64Bytes },
    /// An application message from another member, in the delivery service's order (between
    /// the commits, in the epoch it names). Who wrote it is the MLS sender inside, not `from`.
    Application {
        from: ParticipantId,
        epoch: u64,
        message: Base64Bytes,
    },
    /// An application message of this participant's (its `id`) was not relayed; `epoch` is
    /// the epoch the message said it was sealed in (a sender resends a stale one, once, only
    /// when that is the epoch it sealed it in and it has moved on since).
    ApplicationRejected {
        id: u64,
        epoch: u64,
        reason: CommitRejection,
    },
    /// A proposal from another member.
    Proposal {
        from: ParticipantId,
        proposal: Base64Bytes,
    },
    /// Someone entered the room.
    ParticipantJoined(Participant),
    /// Someone left the room (their MLS removal follows in the next commit).
    ParticipantLeft { participant_id: ParticipantId },
    /// SDP offer from the SFU.
    SdpOffer { sdp: String },
    /// SDP answer from the SFU.
    SdpAnswer { sdp: String },
    /// A trickled ICE candidate from the SFU.
    IceCandidate(IceCandidate),
    /// The loudest participant now (from the audio level RTP header extension), or `None`.
    ActiveSpeaker {
        participant_id: Option<ParticipantId>,
    },
    /// How many spatial layers of the participant's own video `source` (its stream id) anyone
    /// shows now, the top one `height` pixels tall: it may send no more (0: nobody shows it,
    /// it may pause it). Said when that changes; until said, all.
    SendLayers {
        source: String,
        spatial_layers: u8,
        height: u16,
    },
    /// The videos this participant shows (named in its `video_wants`) that the SFU sends it
    /// nothing of now, and why. Said when that changes; an empty list: none. A hint for what a
    /// tile says while it has no picture; who a tile is stays the keys' word.
    PausedVideos { videos: Vec<PausedVideo> },
    /// The videos published in the room now, by stream id (the receiver's own among them),
    /// so that it can name the ones it shows in `video_wants`. Said when the list changes,
    /// and once when the receiver's media connection is up. A hint: what a tile shows is
    /// named by the keys that open its frames.
    VideoStreams { streams: Vec<String> },
    /// Which video each of the receiver's video sections carries now, by the section's media
    /// id (the SFU moves videos between a receiver's sections as what it takes changes;
    /// decision 0044). Said when that changes, for every video section. A hint like the
    /// rest: each frame's key names its sender.
    VideoSections { sections: Vec<VideoSection> },
    /// A request was refused; the connection stays open unless the code says otherwise.
    Error { code: ErrorCode, message: String },
    /// The server closes the connection (leave, shutdown, timeout, removal). `code`, when
    /// given, says why in a form clients act on: a final one ([`ErrorCode::is_final`]) means
    /// do not reconnect.
    Goodbye {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<ErrorCode>,
    },
}

impl KnownTypes for ServerMessage {
    const TYPES: &'static [&'static str] = &[
        "joined",
        "create_group",
        "commit_request",
        "commit",
        "commit_rejected",
        "rejoin",
        "welcome",
        "application",
        "application_rejected",
        "proposal",
        "participant_joined",
        "participant_left",
        "sdp_offer",
        "sdp_answer",
        "ice_candidate",
        "active_speaker",
        "send_layers",
        "paused_videos",
        "video_streams",
        "video_sections",
        "error",
        "goodbye",
    ];
}

impl ServerMessage {
    /// An error reply.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode_server;

    #[test]
    fn every_message_round_trips() {
        let p = Participant {
            participant_id: 2,
            identity: "bob".into(),
            may_publish: true,
        };
        let all = [
            ServerMessage::Joined {
                participant_id: 1,
                room: "r".into(),
                identity: "alice".into(),
                may_publish: true,
                participants: vec![p.clone()],
                epoch: Some(3),
                ice_servers: vec![IceServer {
                    urls: vec!["turn:turn.example.org:3478".into()],
                    username: Some("u".into()),
                    credential: Some("c".into()),
                }],
            },
            ServerMessage::CreateGroup {
                group_id: vec![9].into(),
            },
            ServerMessage::CommitRequest {
                epoch: 3,
                add: vec![PendingAdd {
                    participant_id: 2,
                    key_package: vec![1].into(),
                }],
                remove: vec![5],
            },
            ServerMessage::Commit {
                epoch: 4,
                from: 1,
                commit: vec![1, 2].into(),
                added: vec![2],
                removed: vec![3],
            },
            ServerMessage::Rejoin {
                reason: "the group was re-created".into(),
            },
            ServerMessage::CommitRejected {
                epoch: 4,
                reason: CommitRejection::StaleEpoch,
            },
            ServerMessage::Welcome {
                epoch: 4,
                welcome: vec![7].into(),
            },
            ServerMessage::Application {
                from: 1,
                epoch: 4,
                message: vec![8].into(),
            },
            ServerMessage::ApplicationRejected {
                id: 3,
                epoch: 5,
                reason: CommitRejection::StaleEpoch,
            },
            ServerMessage::Proposal {
                from: 1,
                proposal: vec![7].into(),
            },
            ServerMessage::ParticipantJoined(p),
            ServerMessage::ParticipantLeft { participant_id: 2 },
            ServerMessage::SdpOffer { sdp: "v=0".into() },
            ServerMessage::SdpAnswer { sdp: "v=0".into() },
            ServerMessage::IceCandidate(IceCandidate {
                candidate: "candidate:1".into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
                username_fragment: None,
            }),
            ServerMessage::ActiveSpeaker {
                participant_id: Some(2),
            },
            ServerMessage::SendLayers {
                source: "stream-7".into(),
                spatial_layers: 1,
                height: 180,
            },
            ServerMessage::PausedVideos {
                videos: vec![PausedVideo {
                    stream: "3.cam".into(),
                    reason: PauseReason::LastN,
                }],
            },
            ServerMessage::VideoStreams {
                streams: vec!["3.cam".into(), "4".into()],
            },
            ServerMessage::VideoSections {
                sections: vec![
                    VideoSection {
                        mid: "3".into(),
                        stream: Some("3.cam".into()),
                    },
                    VideoSection {
                        mid: "4".into(),
                        stream: None,
                    },
                ],
            },
            ServerMessage::error(ErrorCode::RoomFull, "full"),
            ServerMessage::Goodbye {
                reason: "bye".into(),
                code: Some(ErrorCode::Removed),
            },
        ];
        assert_eq!(all.len(), ServerMessage::TYPES.len());
        for m in all {
            let json = serde_json::to_string(&m).expect("json");
            assert_eq!(decode_server(&json), Ok(m), "{json}");
        }
    }
}
