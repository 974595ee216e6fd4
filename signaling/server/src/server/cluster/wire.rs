//! What nodes say to each other over NATS subjects, for participants connected to one node
//! whose room's home is another. Each node listens on its own subjects:
//!
//! - `sfu.node.<node>.join` (request): enter a room this node is home to, for a participant
//!   connected to the asking node ([`JoinRequest`], answered with a [`JoinReply`]).
//! - `sfu.node.<node>.in`: a remote participant's message for its room, or its leaving
//!   (headers [`ROOM`], [`PID`], [`KIND`]; the body a client message's JSON).
//! - `sfu.node.<node>.out`: what a room here says to a participant connected there (headers
//!   [`PID`], [`KIND`]; the body the server message's JSON).
//!
//! One NATS connection per node, and one task publishing in order, keep each participant's
//! messages in the order they were sent both ways, as on one node.

use serde::{Deserialize, Serialize};
use signaling_protocol::{ErrorCode, ParticipantId};

pub(super) fn join_subject(node: &str) -> String {
    format!("sfu.node.{node}.join")
}

/// Answers at once while the node runs: NATS says "no responders" as soon as it is gone.
pub(super) fn ping_subject(node: &str) -> String {
    format!("sfu.node.{node}.ping")
}

pub(super) fn in_subject(node: &str) -> String {
    format!("sfu.node.{node}.in")
}

pub(super) fn out_subject(node: &str) -> String {
    format!("sfu.node.{node}.out")
}

/// The room's key ([`super::placement::room_key`]).
pub(super) const ROOM: &str = "Sfu-Room";
/// The participant.
pub(super) const PID: &str = "Sfu-Pid";
/// What the message is: one of the `KIND_*`.
pub(super) const KIND: &str = "Sfu-Kind";

/// A client message (in), or a server message for this participant alone (out).
pub(super) const KIND_MESSAGE: &str = "message";
/// Out: the server message that admits the participant (`joined`): its media starts here.
pub(super) const KIND_JOINED: &str = "joined";
/// Out: a server message serialized once for many.
pub(super) const KIND_FRAME: &str = "frame";
/// Out: close the participant's connection.
pub(super) const KIND_CLOSE: &str = "close";
/// In: the participant's connection is gone.
pub(super) const KIND_LEAVE: &str = "leave";
/// Out: the room leaves its home (which drains): take the participant to its new home.
pub(super) const KIND_MOVED: &str = "moved";
/// Out: the node that sends it (a participant's node heeds only its room's current home).
pub(super) const HOME: &str = "Sfu-Home";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct JoinRequest {
    pub(super) room: String,
    pub(super) pid: ParticipantId,
    pub(super) identity: String,
    pub(super) may_publish: bool,
    /// The node the participant is connected to.
    pub(super) node: String,
    /// Coming back after the room's home moved.
    #[serde(default)]
    pub(super) resume: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub(super) enum JoinReply {
    Joined,
    /// This node is not (or no longer) the room's home: ask the bucket again.
    NotHome,
    Refused {
        code: ErrorCode,
    },
}

/// The participant id in a message's headers.
pub(super) fn pid_of(headers: Option<&async_nats::HeaderMap>) -> Option<ParticipantId> {
    headers?.get(PID)?.as_str().parse().ok()
}

/// A header's value.
pub(super) fn header<'a>(
    headers: Option<&'a async_nats::HeaderMap>,
    name: &str,
) -> Option<&'a str> {
    Some(headers?.get(name)?.as_str())
}
