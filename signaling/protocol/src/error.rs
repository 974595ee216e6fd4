//! Protocol errors: what the server replies when a message is refused, and decoding failures.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why the server refused something; sent in [`crate::ServerMessage::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame is not JSON, or not a message of this protocol.
    MalformedMessage,
    /// A well-formed JSON object with an unknown `"type"`.
    UnknownMessageType,
    /// The frame is larger than the server accepts.
    MessageTooLarge,
    /// Too many messages per second on this connection.
    RateLimited,
    /// Too many open connections from this address.
    TooManyConnections,
    /// The client speaks another protocol version.
    UnsupportedVersion,
    /// The first message must be `join`; or `join` came twice.
    NotJoined,
    /// The access token is malformed or its signature does not verify.
    InvalidToken,
    /// The access token has expired.
    TokenExpired,
    /// The access token is for another room.
    WrongRoom,
    /// The room has as many participants as it may.
    RoomFull,
    /// The participant may not publish media (token claim).
    PublishNotAllowed,
    /// MLS bytes that do not parse, or are for another group, or of the wrong kind.
    InvalidMls,
    /// A key package whose credential is not the one bound to this participant.
    CredentialMismatch,
    /// A commit or proposal for an epoch the room has left behind.
    StaleEpoch,
    /// Only members of the MLS group may commit.
    NotAMember,
    /// This action does not fit the room's state (e.g. creating a group that exists).
    InvalidState,
    /// A proposal the delivery service does not relay (only a member's own removal or update).
    ProposalRefused,
    /// Media negotiation is not available on this server.
    MediaUnavailable,
    /// An SDP offer or answer that cannot be applied: malformed, or with no usable codec.
    InvalidSdp,
    /// The server is shutting down.
    ShuttingDown,
    /// An administrator removed this participant: its token is revoked for the rest of its
    /// life.
    Removed,
    /// This identity is banned from this room (until a time an administrator chose).
    Banned,
    /// An administrator closed the room, ending the meeting for everyone.
    RoomClosed,
    /// A bug on the server.
    Internal,
    /// The room cannot be reached just now (in a cluster: its home node does not answer and
    /// no other node could take it yet); trying again shortly may succeed.
    Unavailable,
}

impl ErrorCode {
    /// A refusal that trying again with the same token cannot change: a client that gets it
    /// (to a join, or in a goodbye) stops, and does not reconnect.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ErrorCode::InvalidToken
                | ErrorCode::TokenExpired
                | ErrorCode::WrongRoom
                | ErrorCode::RoomFull
                | ErrorCode::PublishNotAllowed
                | ErrorCode::UnsupportedVersion
                | ErrorCode::Removed
                | ErrorCode::Banned
                | ErrorCode::RoomClosed
        )
    }
}

/// A frame that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not JSON, or not an object with a string `"type"`.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// An object whose `"type"` this protocol does not know.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// A known type with missing or invalid fields.
    #[error("invalid {kind} message: {reason}")]
    InvalidFields { kind: String, reason: String },
}

impl DecodeError {
    /// The error code to reply with.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::UnknownType(_) => ErrorCode::UnknownMessageType,
            _ => ErrorCode::MalformedMessage,
        }
    }
}

/// Decodes a tagged message, telling an unknown type from bad fields.
pub(crate) fn decode<T: serde::de::DeserializeOwned + KnownTypes>(
    text: &str,
) -> Result<T, DecodeError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let kind = value
        .get("type")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| DecodeError::Malformed("no string \"type\" field".into()))?
        .to_owned();
    if !T::TYPES.contains(&kind.as_str()) {
        return Err(DecodeError::UnknownType(kind));
    }
    serde_json::from_value(value).map_err(|e| DecodeError::InvalidFields {
        kind,
        reason: e.to_string(),
    })
}

/// The `"type"` values a message enum accepts.
pub(crate) trait KnownTypes {
    const TYPES: &'static [&'static str];
}
