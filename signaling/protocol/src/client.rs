//! Messages from a participant to the server.

use serde::{Deserialize, Serialize};

use crate::ParticipantId;
use crate::bytes::Base64Bytes;
use crate::error::KnownTypes;

/// A message from a participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientMessage {
    /// The first message on a connection: the protocol version, the room, and a signed access
    /// token for that room, which names the identity.
    Join {
        protocol: u16,
        room: String,
        token: String,
    },
    /// A key package (an MLS `MLSMessage`) whose credential identity is
    /// [`crate::credential_identity`] of this participant; the server queues its add.
    KeyPackage { key_package: Base64Bytes },
    /// The first participant created the MLS group (epoch 0) as asked by
    /// [`crate::ServerMessage::CreateGroup`].
    GroupCreated { group_info: Base64Bytes },
    /// A commit, as asked by [`crate::ServerMessage::CommitRequest`].
    Commit(CommitMessage),
    /// An MLS proposal for the other members (for the epoch it names): only the sender's own
    /// removal or an update of its own leaf; adds go through `key_package`.
    Proposal { epoch: u64, proposal: Base64Bytes },
    /// This participant processed its Welcome and is in the group at `epoch`. Until then the
    /// delivery service does not count it as a member (it is never asked to commit).
    WelcomeAck { epoch: u64 },
    /// This member could not process the accepted commit that made `epoch`: it has dropped its
    /// group state, and `key_package` is a fresh one to be added again with.
    CommitFailed {
        epoch: u64,
        reason: String,
        key_package: Base64Bytes,
    },
    /// An MLS application message (a PrivateMessage of the room's group at `epoch`: chat,
    /// reactions, the sender's own state) for every other member. `id` is the sender's own
    /// number for it, named again if the delivery service refuses it.
    Application {
        id: u64,
        epoch: u64,
        message: Base64Bytes,
    },
    /// Leaving: the server queues this participant's removal and closes the connection.
    Leave,
    /// SDP offer for the media connection with the SFU.
    SdpOffer { sdp: String },
    /// SDP answer to an offer from the SFU.
    SdpAnswer { sdp: String },
    /// A trickled ICE candidate for the media connection.
    IceCandidate(IceCandidate),
    /// How many received frames this participant could not decrypt since it joined (a running
    /// total; counts only, nothing about the frames), for the operator's metrics.
    MediaStats { decrypt_failures: u64 },
    /// Which videos this participant shows, and how large: for each stream the SFU labelled a
    /// video with ([`crate::media_stream`]), the height in device pixels of the largest tile
    /// showing it, 0 when none does. It replaces the last such message; a video it does not
    /// name is sent whole. At most [`MAX_VIDEO_WANTS`] entries. `last_n`, when given: of the
    /// videos it shows, it takes at most this many at a time (the largest tiles, then the most
    /// recent speakers'); the room's own limit applies too.
    VideoWants {
        videos: Vec<VideoWant>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_n: Option<u16>,
    },
}

/// The most videos one `video_wants` names.
pub const MAX_VIDEO_WANTS: usize = 1024;

/// How large a participant shows one video.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoWant {
    /// The stream id the SFU gave the video.
    pub stream: String,
    /// The largest height it is shown at, in device pixels; 0: not shown.
    pub height: u16,
}

impl KnownTypes for ClientMessage {
    const TYPES: &'static [&'static str] = &[
        "join",
        "key_package",
        "group_created",
        "commit",
        "application",
        "proposal",
        "welcome_ack",
        "commit_failed",
        "leave",
        "sdp_offer",
        "sdp_answer",
        "ice_candidate",
        "media_stats",
        "video_wants",
    ];
}

/// A commit and what comes with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitMessage {
    /// The epoch the commit was made in (the room moves to `epoch + 1` if it is accepted).
    pub epoch: u64,
    /// The MLS commit (a `PublicMessage`).
    pub commit: Base64Bytes,
    /// The Welcome for the participants it adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub welcome: Option<Base64Bytes>,
    /// The GroupInfo of the new epoch.
    pub group_info: Base64Bytes,
    /// Participants whose key packages the commit adds.
    #[serde(default)]
    pub added: Vec<ParticipantId>,
    /// Participants the commit removes.
    #[serde(default)]
    pub removed: Vec<ParticipantId>,
}

/// A trickled ICE candidate (as in `RTCIceCandidateInit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DecodeError, decode_client};

    #[test]
    fn messages_are_tagged_objects_with_base64_payloads() {
        let m = ClientMessage::KeyPackage {
            key_package: vec![1, 2, 3].into(),
        };
        let json = serde_json::to_string(&m).expect("json");
        assert_eq!(json, r#"{"type":"key_package","key_package":"AQID"}"#);
        assert_eq!(decode_client(&json), Ok(m));
        let leave = serde_json::to_string(&ClientMessage::Leave).expect("json");
        assert_eq!(leave, r#"{"type":"leave"}"#);
        assert_eq!(decode_client(&leave), Ok(ClientMessage::Leave));
    }

    #[test]
    fn a_commit_is_flat_with_optional_parts() {
        let text = r#"{"type":"commit","epoch":4,"commit":"AA==","group_info":"AQ=="}"#;
        let Ok(ClientMessage::Commit(c)) = decode_client(text) else {
            panic!("commit expected");
        };
        assert_eq!((c.epoch, c.welcome, c.added.len()), (4, None, 0));
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        assert!(matches!(
            decode_client("not json"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode_client("[1]"),
            Err(DecodeError::Malformed(_))
        ));
        assert_eq!(
            decode_client(r#"{"type":"dance"}"#),
            Err(DecodeError::UnknownType("dance".into()))
        );
        assert!(matches!(
            decode_client(r#"{"type":"key_package","key_package":"%%%"}"#),
            Err(DecodeError::InvalidFields { .. })
        ));
        assert!(matches!(
            decode_client(r#"{"type":"join","protocol":1,"room":"r"}"#),
            Err(DecodeError::InvalidFields { .. })
        ));
    }
}
