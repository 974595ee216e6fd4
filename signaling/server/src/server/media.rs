//! The seam between signaling and media: the SFU implements [`MediaHandler`] to learn who is in
//! which room and to exchange SDP and ICE with each participant over its signaling connection.

use signaling_protocol::{ErrorCode, MediaSignal, ParticipantId, ServerMessage};

use super::outbox::{Outbound, Outbox};

/// Sends SDP and ICE to one participant's signaling connection.
#[derive(Debug, Clone)]
pub struct MediaSender {
    pub(super) outbox: Outbox,
}

impl MediaSender {
    /// Queues `signal` for the participant; false if its connection is gone or stuck.
    pub fn send(&self, signal: MediaSignal) -> bool {
        signal
            .into_server()
            .is_some_and(|m| self.outbox.push(Outbound::Message(m)).is_ok())
    }

    /// Tells the participant who the active speaker is.
    pub fn active_speaker(&self, participant_id: Option<ParticipantId>) -> bool {
        self.outbox
            .push(Outbound::Message(ServerMessage::ActiveSpeaker {
                participant_id,
            }))
            .is_ok()
    }

    /// Tells the participant that its media request failed, and why.
    pub fn error(&self, code: ErrorCode, message: impl Into<String>) -> bool {
        self.outbox
            .push(Outbound::Message(ServerMessage::error(code, message)))
            .is_ok()
    }

    /// Tells the participant why, then closes its signaling connection: it leaves the room as
    /// if it had gone (its MLS removal follows in the next commit).
    pub fn disconnect(&self, code: ErrorCode, message: impl Into<String>) {
        let _ = self
            .outbox
            .push(Outbound::Message(ServerMessage::error(code, message)));
        let _ = self.outbox.push(Outbound::Close);
    }
}

/// The media side of one room (the SFU's media room), driven by the room's task together with
/// its delivery service: one task, one membership. Calls must not block.
pub trait RoomMedia: Send + 'static {
    /// A participant entered the room; `sender` reaches it until [`RoomMedia::left`].
    fn joined(&mut self, participant: ParticipantId, may_publish: bool, sender: MediaSender);
    /// A participant sent an offer, an answer or a candidate.
    fn signal(&mut self, participant: ParticipantId, signal: MediaSignal);
    /// A participant's signaling connection is gone (left, closed, timed out, removed).
    fn left(&mut self, participant: ParticipantId);
    /// Takes in what arrived for the room's media (datagrams, timers) and acts on it: `Ready`
    /// if it did something (poll again), `Pending` (with `cx` registered) if nothing was due.
    fn poll(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()>;
}

/// A room's task (its delivery service and media), for [`MediaFactory::spawn_room`].
pub type RoomTask = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

/// How busy a server's media is, as a cluster weighs it when it places rooms.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MediaLoad {
    /// RTP packets forwarded a second, lately.
    pub packets_per_second: f64,
    /// The share of the machine's CPU the process uses, 0 to 1.
    pub cpu: f64,
}

/// Makes the media side of each room as the room begins.
pub trait MediaFactory: Send + Sync + 'static {
    /// Called inside the room's task, on the runtime [`MediaFactory::spawn_room`] chose.
    fn room(&self, name: &str) -> Box<dyn RoomMedia>;

    /// Runs a room's task: by default on the caller's runtime; a media server may keep rooms
    /// on threads of its own, next to their sockets.
    fn spawn_room(&self, task: RoomTask) {
        tokio::spawn(task);
    }

    /// How busy the media is now (by default: idle).
    fn load(&self) -> MediaLoad {
        MediaLoad::default()
    }
}
