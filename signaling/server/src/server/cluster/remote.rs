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
use signaling_protocol::{ClientMessage, MediaSignal, ParticipantId, ServerMessage, decode_server};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::super::local_rooms::LocalRooms;
use super::super::media_leg::{LegCommand, MediaLegs};
use super::super::outbox::{Outbound, Outbox, PushError};
use super::super::room_task::Command;
use super::super::rooms::{Joiner, RoomLink};
use super::placement::room_key;
use super::uplink::Uplink;
use super::wire;

/// The home of a participant whose room is on its way to a new home.
const MOVING: &str = "";

struct Participant {
    room: String,
    /// Its room's home now (this node's own, after a home that moved here).
    home: String,
    identity: String,
    may_publish: bool,
    outbox: Outbox,
}

/// The participants connected here whose rooms' homes are elsewhere.
pub(in super::super) struct RemoteSide {
    me: String,
    /// Participants whose room's home moved away (it drains): to be taken to the new home.
    moved: tokio::sync::mpsc::UnboundedSender<ParticipantId>,
    uplink: Uplink,
    legs: Option<MediaLegs>,
    /// This node's rooms: where a participant's room goes when its home moves here.
    local: Arc<LocalRooms>,
    participants: Mutex<HashMap<ParticipantId, Participant>>,
}

impl RemoteSide {
    pub(super) fn new(
        me: String,
        uplink: Uplink,
        legs: Option<MediaLegs>,
        local: Arc<LocalRooms>,
        moved: tokio::sync::mpsc::UnboundedSender<ParticipantId>,
    ) -> Arc<Self> {
        Arc::new(RemoteSide {
            me,
            moved,
            uplink,
            legs,
            local,
            participants: Mutex::default(),
        })
    }

    fn participants(&self) -> std::sync::MutexGuard<'_, HashMap<ParticipantId, Participant>> {
        self.participants.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Expects what `room`'s home (`home`) will say to `joiner`: registered before the join is
    /// asked for, so that nothing said at once is lost (and again, with its new home, when
    /// its room's home moves).
    pub(super) fn expect(&self, room: &str, home: &str, joiner: &Joiner) {
        self.participants().insert(
            joiner.pid,
            Participant {
                room: room.to_owned(),
                home: home.to_owned(),
                identity: joiner.identity.clone(),
                may_publish: joiner.may_publish,
                outbox: joiner.outbox.clone(),
            },
        );
    }

    /// The participant `pid` as it would join its room again (it moves), if it is still here.
    pub(super) fn moving(&self, pid: ParticipantId) -> Option<(String, Joiner)> {
        self.participants().get(&pid).map(|p| {
            (
                p.room.clone(),
                Joiner {
                    pid,
                    identity: p.identity.clone(),
                    may_publish: p.may_publish,
                    outbox: p.outbox.clone(),
                    media: false,
                    resume: true,
                },
            )
        })
    }

    /// The participants here whose rooms' homes are among `gone`, by room: (room, stale home,
    /// each one as it would join again).
    pub(super) fn stranded(&self, gone: &[String]) -> Vec<(String, String, Vec<Joiner>)> {
        let mut by_room: HashMap<(String, String), Vec<Joiner>> = HashMap::new();
        for (&pid, p) in self.participants().iter() {
            if gone.contains(&p.home) {
                by_room
                    .entry((p.room.clone(), p.home.clone()))
                    .or_default()
                    .push(Joiner {
                        pid,
                        identity: p.identity.clone(),
                        may_publish: p.may_publish,
                        outbox: p.outbox.clone(),
                        media: false,
                        resume: true,
                    });
            }
        }
        by_room
            .into_iter()
            .map(|((room, home), joiners)| (room, home, joiners))
            .collect()
    }

    /// Lets go of every participant here whose room is elsewhere: each is told `goodbye`
    /// (`shutting_down`, `why`) and closed, and reconnects.
    pub(super) fn strand_all(&self, why: &str) {
        let all: Vec<Participant> = self
            .participants()
            .drain()
            .map(|(_, p)| p)
            .filter(|p| p.home != self.me)
            .collect();
        for p in all {
            let _ = p.outbox.push(Outbound::Message(ServerMessage::Goodbye {
                reason: why.to_owned(),
                code: Some(signaling_protocol::ErrorCode::ShuttingDown),
            }));
            let _ = p.outbox.push(Outbound::Close);
        }
    }

    /// `pid` did not get in.
    pub(super) fn forget(&self, pid: ParticipantId) {
        self.participants().remove(&pid);
    }

    /// A link to `room`, wherever its home is (and goes).
    pub(super) fn link(self: &Arc<Self>, room: &str) -> Box<dyn RoomLink> {
        Box::new(RemoteLink {
            side: self.clone(),
            room: room.to_owned(),
        })
    }

    /// Where `pid`'s room's home is now.
    fn route(&self, pid: ParticipantId) -> Route {
        match self.participants().get(&pid).map(|p| p.home.clone()) {
            Some(home) if home == MOVING => Route::Moving,
            Some(home) if home != self.me => Route::Remote(home),
            // This node (or `pid` is gone, and the room here ignores it).
            _ => Route::Local,
        }
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
        let (Some(pid), Some(kind), Some(from)) = (
            wire::pid_of(headers),
            wire::header(headers, wire::KIND),
            wire::header(headers, wire::HOME),
        ) else {
            return;
        };
        {
            let mut participants = self.participants();
            // Only its room's home now speaks for it: what an old home still sends after the
            // room moved is dropped.
            let Some(p) = participants.get_mut(&pid).filter(|p| p.home == from) else {
                return;
            };
            if kind == wire::KIND_MOVED {
                p.home = MOVING.to_owned();
                let _ = self.moved.send(pid);
                return;
            }
        }
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

    /// How many participants here have their rooms elsewhere.
    pub(super) fn count(&self) -> usize {
        self.participants()
            .values()
            .filter(|p| p.home != self.me)
            .count()
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

/// Where a participant's messages for its room go.
enum Route {
    Local,
    Remote(String),
    Moving,
}

/// How a connection here reaches its room at another node (or here, once its home moved
/// here).
struct RemoteLink {
    side: Arc<RemoteSide>,
    room: String,
}

impl RoomLink for RemoteLink {
    fn message(&self, pid: ParticipantId, message: ClientMessage) -> bool {
        // Media negotiation goes to the media here (without media, to the home, which says
        // it has none).
        if let (Some(signal), Some(legs)) = (MediaSignal::from_client(&message), &self.side.legs) {
            legs.send(&self.room, LegCommand::Signal { pid, signal });
            return true;
        }
        match self.side.route(pid) {
            Route::Local => self
                .side
                .local
                .handle(&self.room)
                .is_some_and(|h| h.send(Command::Message { pid, message })),
            Route::Remote(home) => {
                if let Ok(body) = serde_json::to_vec(&message) {
                    self.side
                        .publish(&home, &self.room, pid, wire::KIND_MESSAGE, body.into());
                }
                true
            }
            // Between two homes for a moment: what it says meanwhile is dropped, as a message
            // in flight when a connection drops is (a commit is asked for again).
            Route::Moving => true,
        }
    }

    fn leave(&self, pid: ParticipantId) {
        match self.side.route(pid) {
            Route::Remote(home) => {
                self.side
                    .publish(&home, &self.room, pid, wire::KIND_LEAVE, Bytes::new())
            }
            Route::Local => {
                if let Some(h) = self.side.local.handle(&self.room) {
                    h.send(Command::Disconnect { pid });
                }
            }
            Route::Moving => {}
        }
        if let Some(legs) = &self.side.legs {
            legs.send(&self.room, LegCommand::Left { pid });
        }
        self.side.forget(pid);
    }
}
