//! The home side: this node runs the delivery service of the rooms it is home to, for
//! participants connected here and to other nodes. A remote participant joins with a request
//! from its node; its room's messages reach it through a queue like any connection's, which a
//! task forwards to its node in order; its own messages come in on this node's `in` subject.
//! When its node is gone, it is disconnected like a connection that dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use signaling_protocol::{ParticipantId, ServerMessage, decode_client};

use super::super::local_rooms::LocalRooms;
use super::super::outbox::{Inbox, Outbound, encode, outbox};
use super::super::room_task::Command;
use super::super::rooms::{Joiner, Rooms};
use super::Cluster;
use super::uplink::Uplink;
use super::wire::{self, JoinReply, JoinRequest};

/// A participant of a room here, connected to another node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Remote {
    room: String,
    pid: ParticipantId,
}

pub(in super::super) struct HomeSide {
    /// The node drains: it takes no room back.
    draining: Arc<std::sync::atomic::AtomicBool>,
    cluster: Cluster,
    local: Arc<LocalRooms>,
    uplink: Uplink,
    /// Remote participants, with their node.
    remotes: Mutex<HashMap<Remote, String>>,
    outbox_capacity: usize,
    outbox_bytes: usize,
}

impl HomeSide {
    pub(super) fn new(
        draining: Arc<std::sync::atomic::AtomicBool>,
        cluster: Cluster,
        local: Arc<LocalRooms>,
        uplink: Uplink,
        outbox_capacity: usize,
        outbox_bytes: usize,
    ) -> Arc<Self> {
        Arc::new(HomeSide {
            draining,
            cluster,
            local,
            uplink,
            remotes: Mutex::default(),
            outbox_capacity,
            outbox_bytes,
        })
    }

    fn remotes(&self) -> std::sync::MutexGuard<'_, HashMap<Remote, String>> {
        self.remotes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves join requests and remote participants' messages, for as long as the node runs.
    pub(super) async fn serve(self: Arc<Self>) {
        let client = self.cluster.client().clone();
        let me = self.cluster.node_id().to_owned();
        let joins = client.subscribe(wire::join_subject(&me)).await;
        let inbound = client.subscribe(wire::in_subject(&me)).await;
        let pings = client.subscribe(wire::ping_subject(&me)).await;
        let (Ok(mut joins), Ok(mut inbound), Ok(mut pings)) = (joins, inbound, pings) else {
            tracing::error!("cannot subscribe to this node's subjects: no remote joins");
            return;
        };
        let pong = client.clone();
        tokio::spawn(async move {
            while let Some(ping) = pings.next().await {
                if let Some(reply) = ping.reply {
                    let _ = pong.publish(reply, Bytes::new()).await;
                }
            }
        });
        let this = self.clone();
        tokio::spawn(async move {
            while let Some(request) = joins.next().await {
                let this = this.clone();
                tokio::spawn(async move {
                    let Some(reply_to) = request.reply.clone() else {
                        return;
                    };
                    let reply = match serde_json::from_slice::<JoinRequest>(&request.payload) {
                        Ok(join) => this.join(join).await,
                        Err(_) => return,
                    };
                    let body = serde_json::to_vec(&reply).unwrap_or_default();
                    let _ = this.cluster.client().publish(reply_to, body.into()).await;
                });
            }
        });
        while let Some(message) = inbound.next().await {
            self.inbound(message.headers.as_ref(), &message.payload);
        }
    }

    async fn join(self: &Arc<Self>, join: JoinRequest) -> JoinReply {
        if self.draining.load(std::sync::atomic::Ordering::Relaxed) {
            // Placed here by a node that had not yet heard it drains: the entry goes, and the
            // asker places the room again.
            self.cluster.placement().disown(&join.room).await;
            return JoinReply::NotHome;
        }
        if !matches!(self.cluster.placement().adopt(&join.room).await, Ok(true)) {
            return JoinReply::NotHome;
        }
        let (tx, inbox) = outbox(self.outbox_capacity, self.outbox_bytes);
        let joiner = Joiner {
            pid: join.pid,
            identity: join.identity,
            may_publish: join.may_publish,
            outbox: tx,
            media: false,
            resume: join.resume,
        };
        match self.local.join(&join.room, joiner).await {
            Ok(_) => {}
            Err(code) => return JoinReply::Refused { code },
        }
        let remote = Remote {
            room: join.room.clone(),
            pid: join.pid,
        };
        self.remotes().insert(remote.clone(), join.node.clone());
        let this = self.clone();
        tokio::spawn(async move {
            this.forward(inbox, &join.node, join.pid).await;
            this.remotes().remove(&remote);
        });
        JoinReply::Joined
    }

    /// Forwards what the room says to a remote participant, until the room lets it go; then
    /// its connection is closed (a room that drops a participant without a word, such as one
    /// whose queue is full, closes it too).
    async fn forward(&self, mut inbox: Inbox, node: &str, pid: ParticipantId) {
        let subject = wire::out_subject(node);
        let send = |kind: &'static str, body: Bytes| {
            self.uplink
                .publish(subject.clone(), self.out_headers(pid, kind), body);
        };
        while let Some(out) = inbox.recv().await {
            match out {
                Outbound::Message(m) => {
                    let kind = if matches!(m, ServerMessage::Joined { .. }) {
                        wire::KIND_JOINED
                    } else {
                        wire::KIND_MESSAGE
                    };
                    send(kind, Bytes::from(encode(&m)));
                }
                Outbound::Frame(text) => {
                    send(wire::KIND_FRAME, Bytes::from(text.as_str().to_owned()));
                }
                Outbound::Close => break,
            }
        }
        send(wire::KIND_CLOSE, Bytes::new());
    }

    /// A remote participant's message, or its leaving, to its room's task.
    fn inbound(&self, headers: Option<&HeaderMap>, body: &[u8]) {
        let (Some(key), Some(pid), Some(kind)) = (
            wire::header(headers, wire::ROOM),
            wire::pid_of(headers),
            wire::header(headers, wire::KIND),
        ) else {
            return;
        };
        let Some(room) = super::placement::room_of_key(key) else {
            return;
        };
        // Only for a participant that joined from another node.
        if !self.remotes().contains_key(&Remote {
            room: room.clone(),
            pid,
        }) {
            return;
        }
        let Some(handle) = self.local.handle(&room) else {
            return;
        };
        match kind {
            wire::KIND_LEAVE => {
                handle.send(Command::Disconnect { pid });
            }
            wire::KIND_MESSAGE => {
                let Ok(text) = std::str::from_utf8(body) else {
                    return;
                };
                if let Ok(message) = decode_client(text) {
                    handle.send(Command::Message { pid, message });
                }
            }
            _ => {}
        }
    }

    fn out_headers(&self, pid: ParticipantId, kind: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(wire::PID, pid.to_string().as_str());
        headers.insert(wire::KIND, kind);
        headers.insert(wire::HOME, self.cluster.node_id());
        headers
    }

    /// `room` leaves this node: the nodes of its remote participants are told to take them to
    /// its new home (before the room closes their queues here, on the same ordered uplink).
    pub(super) fn moving(&self, room: &str) {
        let moving: Vec<(ParticipantId, String)> = self
            .remotes()
            .iter()
            .filter(|(r, _)| r.room == room)
            .map(|(r, node)| (r.pid, node.clone()))
            .collect();
        for (pid, node) in moving {
            self.uplink.publish(
                wire::out_subject(&node),
                self.out_headers(pid, wire::KIND_MOVED),
                Bytes::new(),
            );
        }
    }

    /// How many participants of the rooms here are connected to other nodes.
    pub(super) fn remote_count(&self) -> usize {
        self.remotes().len()
    }

    /// Disconnects the remote participants of nodes that are gone.
    pub(super) async fn drop_gone_nodes(&self) {
        let mut nodes: Vec<String> = self.remotes().values().cloned().collect();
        nodes.sort();
        nodes.dedup();
        let mut gone_nodes = Vec::new();
        for node in nodes {
            if self.cluster.is_gone(&node).await {
                gone_nodes.push(node);
            }
        }
        let gone: Vec<Remote> = self
            .remotes()
            .iter()
            .filter(|(_, node)| gone_nodes.contains(node))
            .map(|(r, _)| r.clone())
            .collect();
        for remote in gone {
            tracing::info!(room = %remote.room, participant = remote.pid, "its node is gone: disconnected");
            if let Some(handle) = self.local.handle(&remote.room) {
                handle.send(Command::Disconnect { pid: remote.pid });
            }
            self.remotes().remove(&remote);
        }
    }
}
