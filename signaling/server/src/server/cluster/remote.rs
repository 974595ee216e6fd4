//! The participant side: a participant connected to this node whose room's home is another.
//! Its connection reaches the room through a [`RemoteLink`]: its delivery-service messages
//! go to the home's `in` subject, its media negotiation to this node's leg of the room's
//! media ([`super::super::media_leg`]). What the room says to it comes in on this node's
//! `out` subject and goes into its connection's queue; the room's `joined` starts its media
//! here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use signaling_protocol::{ClientMessage, MediaSignal, ParticipantId, decode_server};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::super::media_leg::{LegCommand, MediaLegs};
use super::super::outbox::{Outbound, Outbox, PushError};
use super::super::rooms::RoomLink;
use super::placement::room_key;
use super::uplink::Uplink;
use super::wire;

struct Participant {
    room: String,
    home: String,
    may_publish: bool,
    outbox: Outbox,
}

/// The participants connected here whose rooms' homes are elsewhere.
pub(in super::super) struct RemoteSide {
    me: String,
    uplink: Uplink,
    legs: Option<MediaLegs>,
    participants: Mutex<HashMap<ParticipantId, Participant>>,
}

impl RemoteSide {
    pub(super) fn new(me: String, uplink: Uplink, legs: Option<MediaLegs>) -> Arc<Self> {
        Arc::new(RemoteSide {
            me,
            uplink,
            legs,
            participants: Mutex::default(),
        })
    }

    fn participants(&self) -> std::sync::MutexGuard<'_, HashMap<ParticipantId, Participant>> {
        self.participants.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Expects what `room`'s home (`home`) will say to `pid`: registered before the join is
    /// asked for, so that nothing said at once is lost.
    pub(super) fn expect(
        &self,
        room: &str,
        home: &str,
        pid: ParticipantId,
        may_publish: bool,
        outbox: Outbox,
    ) {
        self.participants().insert(
            pid,
            Participant {
                room: room.to_owned(),
                home: home.to_owned(),
                may_publish,
                outbox,
            },
        );
    }

    /// `pid` did not get in.
    pub(super) fn forget(&self, pid: ParticipantId) {
        self.participants().remove(&pid);
    }

    /// A link to `room` at `home` for `pid`.
    pub(super) fn link(self: &Arc<Self>, room: &str, home: &str) -> Box<dyn RoomLink> {
        Box::new(RemoteLink {
            side: self.clone(),
            room: room.to_owned(),
            home: home.to_owned(),
        })
    }

    /// Delivers what homes say to participants here, for as long as the node runs.
    pub(super) async fn serve(self: Arc<Self>, client: async_nats::Client) {
        let mut out = match client.subscribe(wire::out_subject(&self.me)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot subscribe to this node's out subject");
                return;
            }
        };
        while let Some(message) = out.next().await {
            self.deliver(message.headers.as_ref(), message.payload);
        }
    }

    fn deliver(&self, headers: Option<&HeaderMap>, body: Bytes) {
        let (Some(pid), Some(kind)) = (wire::pid_of(headers), wire::header(headers, wire::KIND))
        else {
            return;
        };
        let Ok(text) = String::from_utf8(body.to_vec()) else {
            return;
        };
        let out = match kind {
            wire::KIND_MESSAGE | wire::KIND_JOINED => match decode_server(&text) {
                Ok(m) => Outbound::Message(m),
                Err(_) => return,
            },
            wire::KIND_FRAME => Outbound::Frame(Utf8Bytes::from(text)),
            wire::KIND_CLOSE => Outbound::Close,
            _ => return,
        };
        let (pushed, room, may_publish, outbox) = {
            let participants = self.participants();
            let Some(p) = participants.get(&pid) else {
                return;
            };
            (
                p.outbox.push(out),
                p.room.clone(),
                p.may_publish,
                p.outbox.clone(),
            )
        };
        match pushed {
            Ok(()) if kind == wire::KIND_JOINED => {
                if let Some(legs) = &self.legs {
                    legs.send(
                        &room,
                        LegCommand::Joined {
                            pid,
                            may_publish,
                            outbox,
                        },
                    );
                }
            }
            Ok(()) => {}
            // The connection does not read: it is dropped, as its home would drop it.
            Err(PushError::Full) => {
                tracing::warn!(participant = pid, "outbox full: dropping the connection");
                let _ = outbox.push(Outbound::Close);
            }
            Err(PushError::Closed) => {}
        }
    }

    fn publish(&self, home: &str, room: &str, pid: ParticipantId, kind: &'static str, body: Bytes) {
        let mut headers = HeaderMap::new();
        headers.insert(wire::ROOM, room_key(room).as_str());
        headers.insert(wire::PID, pid.to_string().as_str());
        headers.insert(wire::KIND, kind);
        self.uplink.publish(wire::in_subject(home), headers, body);
    }

    /// The home of `pid`'s room is gone: its connection is closed (it reconnects, and its
    /// room finds a new home).
    pub(super) fn drop_rooms_of(&self, gone: &[String]) {
        let dropped: Vec<(ParticipantId, Outbox)> = self
            .participants()
            .iter()
            .filter(|(_, p)| gone.contains(&p.home))
            .map(|(pid, p)| (*pid, p.outbox.clone()))
            .collect();
        for (pid, outbox) in dropped {
            tracing::info!(participant = pid, "the room's home node is gone: closing");
            let _ = outbox.push(Outbound::Close);
        }
    }

    /// How many participants here have their rooms elsewhere.
    pub(super) fn count(&self) -> usize {
        self.participants().len()
    }

    /// The homes this node's participants' rooms are on.
    pub(super) fn homes(&self) -> Vec<String> {
        let mut homes: Vec<String> = self
            .participants()
            .values()
            .map(|p| p.home.clone())
            .collect();
        homes.sort();
        homes.dedup();
        homes
    }
}

/// How a connection here reaches its room at another node.
struct RemoteLink {
    side: Arc<RemoteSide>,
    room: String,
    home: String,
}

impl RoomLink for RemoteLink {
    fn message(&self, pid: ParticipantId, message: ClientMessage) -> bool {
        // Media negotiation goes to the media here (without media, to the home, which says
        // it has none).
        if let (Some(signal), Some(legs)) = (MediaSignal::from_client(&message), &self.side.legs) {
            legs.send(&self.room, LegCommand::Signal { pid, signal });
            return true;
        }
        let Ok(body) = serde_json::to_vec(&message) else {
            return true;
        };
        self.side
            .publish(&self.home, &self.room, pid, wire::KIND_MESSAGE, body.into());
        true
    }

    fn leave(&self, pid: ParticipantId) {
        self.side
            .publish(&self.home, &self.room, pid, wire::KIND_LEAVE, Bytes::new());
        if let Some(legs) = &self.side.legs {
            legs.send(&self.room, LegCommand::Left { pid });
        }
        self.side.forget(pid);
    }
}
