//! The seam between connections and rooms: a directory of rooms ([`Rooms`]) that finds or
//! makes the room a participant joins, and a way to reach a room's task from a connection
//! ([`RoomLink`]) wherever the task runs. This process's rooms ([`super::local_rooms`]) are
//! the default.

use futures_util::future::BoxFuture;
use signaling_protocol::{ClientMessage, ErrorCode, ParticipantId};

use super::outbox::Outbox;
use super::revocation::{Revocation, Revocations};
use crate::room::Occupancy;

/// A room as an administrator sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoomInfo {
    pub name: String,
    /// In a cluster: the node that is the room's home.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// The MLS epoch, or `None` before the group exists.
    pub epoch: Option<u64>,
    pub participants: Vec<Occupancy>,
}

/// Rooms and participants now, and what the delivery service has done since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoomStats {
    pub rooms: usize,
    pub participants: usize,
    /// MLS epochs begun (groups created and commits accepted), all rooms.
    pub epochs: u64,
    /// Commits refused (stale epoch, not a member, invalid MLS).
    pub commits_rejected: u64,
    /// Frames participants reported they could not decrypt.
    pub client_decrypt_failures: u64,
}

/// Who joins: a participant id from [`Rooms::next_id`], its token's identity and right to
/// publish, and the queue that reaches its connection.
pub(super) struct Joiner {
    pub(super) pid: ParticipantId,
    pub(super) identity: String,
    pub(super) may_publish: bool,
    pub(super) outbox: Outbox,
    /// Whether the room's media here serves it: false for one whose media is on the node it
    /// is connected to, in a cluster.
    pub(super) media: bool,
    /// Coming back to a room whose home moved (its node re-attaches it, its connection open
    /// all along): a member is taken back as a member ([`crate::room::Room::resume`]).
    pub(super) resume: bool,
}

/// Where rooms are found and made.
pub(super) trait Rooms: Send + Sync + 'static {
    /// A fresh participant id, for a join.
    fn next_id(&self) -> ParticipantId;

    /// Enters `room` (made if needed); the link reaches the room until the joiner leaves.
    fn join<'a>(
        &'a self,
        room: &'a str,
        joiner: Joiner,
    ) -> BoxFuture<'a, Result<Box<dyn RoomLink>, ErrorCode>>;

    /// Every room, with who is in it, by name.
    fn rooms(&self) -> BoxFuture<'_, Vec<RoomInfo>>;

    /// Removes one participant of `room` (or all, `None`), telling each `goodbye` with
    /// `reason` and `code`; how many were removed.
    fn remove<'a>(
        &'a self,
        room: &'a str,
        pid: Option<ParticipantId>,
        reason: &'a str,
        code: ErrorCode,
    ) -> BoxFuture<'a, usize>;

    /// Rooms and participants now (client decrypt failures are the server's to add).
    fn stats(&self) -> RoomStats;

    /// Moves the rooms this node holds to others before it stops (in a cluster); alone, there
    /// is nowhere to move them.
    fn drain(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Tells every node of a revocation or ban made here (in a cluster; each removes whoever
    /// holds it there, and refuses it from then on). Alone: nobody else to tell.
    fn share<'a>(&'a self, _revocation: &'a Revocation) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// The cluster's live nodes as this node sees them; `None` alone.
    fn nodes(&self) -> Option<Vec<super::cluster::NodeInfo>> {
        None
    }

    /// Learns the revocations that concern `claims` from the cluster now, into `revocations`
    /// (the watch that follows them may be a moment behind). Alone: nothing to learn.
    fn learn_revocations<'a>(
        &'a self,
        _claims: &'a signaling_token::Claims,
        _revocations: &'a Revocations,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// Removes `pid` for good at the node it is connected to, if that is another node (in a
    /// cluster: only its node knows the token it holds): `Some(removed)`; `None` if it is
    /// connected here (or the server is alone), to be done here.
    fn remove_at_its_node<'a>(
        &'a self,
        _room: &'a str,
        _pid: ParticipantId,
    ) -> BoxFuture<'a, Option<bool>> {
        Box::pin(async { None })
    }
}

/// How a connection reaches its room's task.
pub(super) trait RoomLink: Send + Sync {
    /// Hands the room a message from `pid`; false if the room has ended.
    fn message(&self, pid: ParticipantId, message: ClientMessage) -> bool;

    /// `pid`'s connection is gone.
    fn leave(&self, pid: ParticipantId);
}
