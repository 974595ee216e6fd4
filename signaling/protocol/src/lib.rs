//! The signaling wire protocol (version [`PROTOCOL_VERSION`]).
//!
//! Every WebSocket text frame carries one JSON object with a `"type"` field: a
//! [`ClientMessage`] from a participant, a [`ServerMessage`] from the server. MLS messages
//! travel as standard base64 ([`Base64Bytes`]). The server is the MLS delivery service: it
//! orders commits (exactly one per epoch), hands Welcomes to joiners and fans commits out; it
//! never holds a key. docs/protocol.md describes the exchanges.
//!
//! This crate has no MLS or crypto dependency, so the server links it freely; the browser uses
//! the same types through the wasm crate.

mod bytes;
mod client;
mod error;
mod media;
pub mod media_stream;
pub mod names;
mod server;

pub use bytes::Base64Bytes;
pub use client::{ClientMessage, CommitMessage, IceCandidate, MAX_VIDEO_WANTS, VideoWant};
pub use error::{DecodeError, ErrorCode};
pub use media::MediaSignal;
pub use server::{
    CommitRejection, IceServer, Participant, PauseReason, PausedVideo, PendingAdd, ServerMessage,
    VideoSection,
};

/// The protocol version this crate speaks. A client names it in [`ClientMessage::Join`]; the
/// server refuses other versions with [`ErrorCode::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u16 = 7;

/// A participant's id within a room, assigned by the server on join. It is part of the
/// participant's MLS credential identity ([`credential_identity`]).
pub type ParticipantId = u64;

/// The MLS credential identity of a participant: `"<participant id>:<identity>"`. The server
/// refuses key packages whose credential is not the one bound to the connection, so a roster
/// read from the MLS group names people as their tokens do, and removals can find their leaf.
pub fn credential_identity(participant: ParticipantId, identity: &str) -> String {
    format!("{participant}:{identity}")
}

/// Splits a credential identity made by [`credential_identity`].
pub fn parse_credential_identity(credential: &str) -> Option<(ParticipantId, &str)> {
    let (id, identity) = credential.split_once(':')?;
    Some((id.parse().ok()?, identity))
}

/// Parses one client frame.
pub fn decode_client(text: &str) -> Result<ClientMessage, DecodeError> {
    error::decode(text)
}

/// Parses one server frame.
pub fn decode_server(text: &str) -> Result<ServerMessage, DecodeError> {
    error::decode(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_identity_round_trips_even_with_colons_in_the_name() {
        let c = credential_identity(42, "alice:laptop");
        assert_eq!(parse_credential_identity(&c), Some((42, "alice:laptop")));
        assert_eq!(parse_credential_identity("nope"), None);
        assert_eq!(parse_credential_identity("x:alice"), None);
    }
}
