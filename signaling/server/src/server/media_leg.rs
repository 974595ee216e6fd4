//! A room's media on a node that is not the room's home, in a cluster: the participants
//! connected here have their media here, while the room's delivery service runs on its home.
//! One task per room and node owns the room's [`RoomMedia`] for them, as a room's task does
//! on its home, and ends when the last of them has left.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use signaling_protocol::{MediaSignal, ParticipantId};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::media::{MediaFactory, MediaSender, RoomMedia};
use super::outbox::Outbox;

/// What a leg is told, in order.
pub(super) enum LegCommand {
    /// In the room (its home said `joined`): its media starts.
    Joined {
        pid: ParticipantId,
        may_publish: bool,
        outbox: Outbox,
    },
    Signal {
        pid: ParticipantId,
        signal: MediaSignal,
    },
    /// Gone from the room.
    Left { pid: ParticipantId },
}

struct Leg {
    id: u64,
    tx: mpsc::UnboundedSender<LegCommand>,
}

type Legs = Arc<Mutex<HashMap<String, Leg>>>;

/// This node's legs, by room.
pub(super) struct MediaLegs {
    factory: Arc<dyn MediaFactory>,
    legs: Legs,
    next_id: std::sync::atomic::AtomicU64,
}

fn lock(legs: &Legs) -> std::sync::MutexGuard<'_, HashMap<String, Leg>> {
    legs.lock().unwrap_or_else(|e| e.into_inner())
}

impl MediaLegs {
    pub(super) fn new(factory: Arc<dyn MediaFactory>) -> Self {
        MediaLegs {
            factory,
            legs: Arc::default(),
            next_id: Default::default(),
        }
    }

    /// Hands `room`'s leg `command`, starting the leg for a join if it has none. Sent under the
    /// map's lock, which a leg takes to end: a command never reaches a leg that has ended.
    pub(super) fn send(&self, room: &str, command: LegCommand) {
        let mut legs = lock(&self.legs);
        if let Some(leg) = legs.get(room) {
            // A leg removes itself from the map before it stops reading.
            let _ = leg.tx.send(command);
            return;
        }
        if !matches!(command, LegCommand::Joined { .. }) {
            return;
        }
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(command);
        legs.insert(room.to_owned(), Leg { id, tx });
        let (factory, map, name) = (self.factory.clone(), self.legs.clone(), room.to_owned());
        let span = tracing::info_span!("media leg", room = %room);
        self.factory.spawn_room(Box::pin(
            async move {
                let media = factory.room(&name);
                run_leg(media, rx, map, name, id).await;
            }
            .instrument(span),
        ));
    }
}

async fn run_leg(
    mut media: Box<dyn RoomMedia>,
    mut rx: mpsc::UnboundedReceiver<LegCommand>,
    legs: Legs,
    room: String,
    id: u64,
) {
    let mut members: HashSet<ParticipantId> = HashSet::new();
    loop {
        let command = tokio::select! {
            c = rx.recv() => c,
            () = std::future::poll_fn(|cx| media.poll(cx)) => continue,
        };
        let Some(command) = command else { break };
        match command {
            LegCommand::Joined {
                pid,
                may_publish,
                outbox,
            } => {
                if members.insert(pid) {
                    media.joined(pid, may_publish, MediaSender { outbox });
                }
            }
            LegCommand::Signal { pid, signal } => {
                if members.contains(&pid) {
                    media.signal(pid, signal);
                }
            }
            LegCommand::Left { pid } => {
                if members.remove(&pid) {
                    media.left(pid);
                }
            }
        }
        if members.is_empty() {
            let mut map = lock(&legs);
            // Whatever was sent before this lock is queued: the leg goes on for it.
            if rx.is_empty() {
                if map.get(&room).is_some_and(|l| l.id == id) {
                    map.remove(&room);
                }
                break;
            }
        }
    }
    tracing::debug!("media leg closed");
}
