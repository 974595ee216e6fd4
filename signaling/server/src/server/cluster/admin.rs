//! Administration across the cluster: each node answers on `sfu.node.<node>.admin` for the
//! rooms it is home to (list them, remove participants) and for the participants connected to
//! it (a removal for good is made where the token is known). Revocations and bans are shared
//! in the `sfu_revoked` bucket, which every node watches: each refuses them from then on and
//! removes whoever holds one there.

use std::sync::{Arc, Weak};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use signaling_protocol::{ErrorCode, ParticipantId};

use super::super::removal;
use super::super::revocation::{Revocation, Revocations};
use super::directory::ClusterRooms;

pub(super) fn admin_subject(node: &str) -> String {
    format!("sfu.node.{node}.admin")
}

/// What one node asks another.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(super) enum AdminRequest {
    /// The rooms it is home to.
    Rooms,
    /// Removes a participant (or everyone) from a room it is home to; answers how many.
    Remove {
        room: String,
        pid: Option<ParticipantId>,
        reason: String,
        code: ErrorCode,
    },
    /// Removes a participant connected to it for good; answers whether it was there.
    RemoveForGood { room: String, pid: ParticipantId },
}

/// Answers other nodes' administration requests, for as long as the rooms live.
pub(super) async fn serve(rooms: Weak<ClusterRooms>, client: async_nats::Client, me: String) {
    let Ok(mut requests) = client.subscribe(admin_subject(&me)).await else {
        tracing::error!("cannot subscribe to this node's admin subject");
        return;
    };
    while let Some(request) = requests.next().await {
        let Some(rooms) = rooms.upgrade() else { return };
        let (Some(reply), Ok(ask)) = (
            request.reply.clone(),
            serde_json::from_slice::<AdminRequest>(&request.payload),
        ) else {
            continue;
        };
        let client = client.clone();
        tokio::spawn(async move {
            let body = match ask {
                AdminRequest::Rooms => serde_json::to_vec(&rooms.local_rooms().await),
                AdminRequest::Remove {
                    room,
                    pid,
                    reason,
                    code,
                } => serde_json::to_vec(&rooms.remove_here(&room, pid, &reason, code).await),
                AdminRequest::RemoveForGood { room, pid } => serde_json::to_vec(
                    &removal::remove_for_good(rooms.as_ref(), rooms.revocations(), &room, pid)
                        .await,
                ),
            };
            let _ = client.publish(reply, body.unwrap_or_default().into()).await;
        });
    }
}

/// Applies the revocations other nodes share, for as long as the rooms live: each is refused
/// here from then on, and whoever holds it here goes. Those whose time is over are deleted.
pub(super) async fn follow_revocations(
    rooms: Weak<ClusterRooms>,
    store: async_nats::jetstream::kv::Store,
    revocations: Arc<Revocations>,
) {
    loop {
        if let Ok(mut watch) = store.watch_with_history(">").await {
            while let Some(Ok(entry)) = watch.next().await {
                if entry.operation != async_nats::jetstream::kv::Operation::Put {
                    continue;
                }
                let Ok(revocation) = serde_json::from_slice::<Revocation>(&entry.value) else {
                    continue;
                };
                if revocation.until() <= signaling_token::unix_now() {
                    let _ = store.delete(&entry.key).await;
                    continue;
                }
                let Some(rooms) = rooms.upgrade() else { return };
                let removed = removal::apply(rooms.as_ref(), &revocations, &revocation).await;
                if removed > 0 {
                    tracing::info!(
                        room = revocation.room(),
                        removed,
                        "a revocation shared by the cluster"
                    );
                }
            }
        }
        if rooms.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}
