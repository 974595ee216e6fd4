//! Removals and bans that hold: the token (or identity) is revoked where its holder is
//! connected, shared with every node of a cluster, and whoever holds it anywhere is removed
//! from the room (at the room's home).

use signaling_protocol::{ErrorCode, ParticipantId};

use super::revocation::{Revocation, Revocations};
use super::rooms::Rooms;

fn reason(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Banned => "banned from this room by an administrator",
        _ => "removed by an administrator",
    }
}

/// Removes `participant` of `room` for good, from here (it is connected here, or the server is
/// alone): its token is revoked for the rest of its life, every node is told, and it and any
/// other connection of the same token leave the room. False if it is not there.
pub(super) async fn remove_for_good(
    rooms: &dyn Rooms,
    revocations: &Revocations,
    room: &str,
    participant: ParticipantId,
) -> bool {
    // Revoked first: a reconnect racing the goodbye is refused.
    let revoked = revocations.revoke(room, participant, signaling_token::unix_now());
    // Connected here: it goes (a node that learns of the revocation first may remove it
    // before this does).
    let mut removed = revoked.is_some();
    let holding = match revoked {
        Some((revocation, holding)) => {
            rooms.share(&revocation).await;
            holding
        }
        None => Vec::new(),
    };
    for pid in holding.into_iter().chain([participant]) {
        removed |= rooms
            .remove(
                room,
                Some(pid),
                reason(ErrorCode::Removed),
                ErrorCode::Removed,
            )
            .await
            > 0;
    }
    removed
}

/// Bans `identity` from `room` until `until`: here, at every node, and whoever holds a token
/// for it here is removed. How many were removed here.
pub(super) async fn ban(
    rooms: &dyn Rooms,
    revocations: &Revocations,
    room: &str,
    identity: &str,
    until: u64,
) -> usize {
    let (revocation, holding) = revocations.ban(room, identity, until, signaling_token::unix_now());
    rooms.share(&revocation).await;
    remove_all(rooms, room, holding, ErrorCode::Banned).await
}

/// A revocation another node made: from now on refused here too, and whoever holds it here
/// goes. How many went.
pub(super) async fn apply(
    rooms: &dyn Rooms,
    revocations: &Revocations,
    revocation: &Revocation,
) -> usize {
    let holding = revocations.apply(revocation, signaling_token::unix_now());
    remove_all(rooms, revocation.room(), holding, revocation.code()).await
}

async fn remove_all(
    rooms: &dyn Rooms,
    room: &str,
    holding: Vec<ParticipantId>,
    code: ErrorCode,
) -> usize {
    let mut removed = 0;
    for pid in holding {
        removed += rooms.remove(room, Some(pid), reason(code), code).await;
    }
    removed
}
