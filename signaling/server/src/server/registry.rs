//! Rooms by name, each run by its own task that owns the room state machine (the delivery
//! service) and the room's media side, if the server has one: one task, one membership. A room
//! is made on first join and ends when its last participant is gone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use signaling_protocol::{ClientMessage, ErrorCode, MediaSignal, ParticipantId, ServerMessage};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::connection::encode;
use super::media::{MediaFactory, MediaSender, RoomMedia};
use super::outbox::{Outbound, Outbox, PushError};
use crate::config::SignalingConfig;
use crate::room::{Effect, Occupancy, Room, RoomConfig};

pub(super) enum Command {
    Join {
        pid: ParticipantId,
        identity: String,
        may_publish: bool,
        outbox: Outbox,
        reply: oneshot::Sender<Result<(), ErrorCode>>,
    },
    Message {
        pid: ParticipantId,
        message: ClientMessage,
    },
    Disconnect {
        pid: ParticipantId,
    },
    /// Administration: who is here.
    Inspect {
        reply: oneshot::Sender<RoomInfo>,
    },
    /// Administration: remove one participant, or everyone (`None`).
    Remove {
        pid: Option<ParticipantId>,
        reason: String,
        code: ErrorCode,
        reply: oneshot::Sender<usize>,
    },
}

/// A room as an administrator sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoomInfo {
    pub name: String,
    /// The MLS epoch, or `None` before the group exists.
    pub epoch: Option<u64>,
    pub participants: Vec<Occupancy>,
}

/// A handle on a running room task.
#[derive(Clone)]
pub(super) struct RoomHandle {
    id: u64,
    tx: mpsc::UnboundedSender<Command>,
}

impl RoomHandle {
    pub(super) fn send(&self, command: Command) -> bool {
        self.tx.send(command).is_ok()
    }
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

/// Delivery-service counters shared by the room tasks.
#[derive(Debug, Default)]
struct Counters {
    epochs: AtomicU64,
    commits_rejected: AtomicU64,
}

struct RoomEntry {
    handle: RoomHandle,
    participants: Arc<AtomicU64>,
}

pub(super) struct Registry {
    rooms: Arc<Mutex<HashMap<String, RoomEntry>>>,
    counters: Arc<Counters>,
    next_room: AtomicU64,
    next_participant: AtomicU64,
    room_config: RoomConfig,
    media: Option<Arc<dyn MediaFactory>>,
}

impl Registry {
    pub(super) fn new(config: &SignalingConfig, media: Option<Arc<dyn MediaFactory>>) -> Self {
        Registry {
            rooms: Arc::new(Mutex::new(HashMap::new())),
            counters: Arc::default(),
            next_room: AtomicU64::new(1),
            next_participant: AtomicU64::new(1),
            room_config: RoomConfig {
                max_participants: config.max_participants_per_room,
                commit_timeout: config.commit_timeout,
                ice_servers: config.ice_servers.clone().into(),
            },
            media,
        }
    }

    pub(super) fn room_count(&self) -> usize {
        self.lock().len()
    }

    pub(super) fn stats(&self) -> RoomStats {
        let rooms = self.lock();
        RoomStats {
            rooms: rooms.len(),
            participants: rooms
                .values()
                .map(|r| r.participants.load(Ordering::Relaxed) as usize)
                .sum(),
            epochs: self.counters.epochs.load(Ordering::Relaxed),
            commits_rejected: self.counters.commits_rejected.load(Ordering::Relaxed),
            client_decrypt_failures: 0,
        }
    }

    /// Every room, with who is in it.
    pub(super) async fn rooms(&self) -> Vec<RoomInfo> {
        let handles: Vec<RoomHandle> = self.lock().values().map(|e| e.handle.clone()).collect();
        let mut out = Vec::new();
        for h in handles {
            let (reply, answer) = oneshot::channel();
            if h.send(Command::Inspect { reply })
                && let Ok(info) = answer.await
            {
                out.push(info);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Removes one participant of `room` (or all, `None`); how many were removed.
    pub(super) async fn remove(
        &self,
        room: &str,
        pid: Option<ParticipantId>,
        reason: &str,
        code: ErrorCode,
    ) -> usize {
        let Some(handle) = self.lock().get(room).map(|e| e.handle.clone()) else {
            return 0;
        };
        let (reply, answer) = oneshot::channel();
        if !handle.send(Command::Remove {
            pid,
            reason: reason.to_owned(),
            code,
            reply,
        }) {
            return 0;
        }
        answer.await.unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, RoomEntry>> {
        // A panic while holding this lock cannot leave the map half-changed.
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh participant id, for a join.
    pub(super) fn next_id(&self) -> ParticipantId {
        self.next_participant.fetch_add(1, Ordering::Relaxed)
    }

    /// Joins `room` (making it if needed) as `pid` ([`Registry::next_id`]). Returns the room.
    pub(super) async fn join(
        &self,
        room: &str,
        pid: ParticipantId,
        identity: String,
        may_publish: bool,
        outbox: Outbox,
    ) -> Result<RoomHandle, ErrorCode> {
        loop {
            let handle = self.room(room);
            let (reply, answer) = oneshot::channel();
            let sent = handle.send(Command::Join {
                pid,
                identity: identity.clone(),
                may_publish,
                outbox: outbox.clone(),
                reply,
            });
            if sent && let Ok(result) = answer.await {
                return result.map(|()| handle);
            }
            // The room ended between lookup and join: take the next one.
            tokio::task::yield_now().await;
        }
    }

    fn room(&self, name: &str) -> RoomHandle {
        let mut rooms = self.lock();
        if let Some(entry) = rooms.get(name) {
            return entry.handle.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = RoomHandle {
            id: self.next_room.fetch_add(1, Ordering::Relaxed),
            tx,
        };
        let participants = Arc::new(AtomicU64::new(0));
        rooms.insert(
            name.to_owned(),
            RoomEntry {
                handle: handle.clone(),
                participants: participants.clone(),
            },
        );
        let room = Room::new(name, self.room_config.clone(), rand::random());
        let (factory, id, rooms) = (self.media.clone(), handle.id, self.rooms.clone());
        let counters = self.counters.clone();
        let task = async move {
            // Made inside the task, on the runtime it runs on (its sockets and timers too).
            let media = factory.as_ref().map(|f| f.room(room.name()));
            run_room(room, media, id, rx, rooms, participants, counters).await;
        };
        match &self.media {
            Some(f) => f.spawn_room(Box::pin(task)),
            None => {
                tokio::spawn(task);
            }
        }
        handle
    }
}

/// The room task: applies commands and timer ticks to the state machine and delivers its
/// effects, until the room is empty.
async fn run_room(
    mut room: Room,
    mut media: Option<Box<dyn RoomMedia>>,
    id: u64,
    mut rx: mpsc::UnboundedReceiver<Command>,
    rooms: Arc<Mutex<HashMap<String, RoomEntry>>>,
    count: Arc<AtomicU64>,
    counters: Arc<Counters>,
) {
    let span = tracing::info_span!("room", room = %room.name());
    let _enter = span.enter();
    let mut outboxes: HashMap<ParticipantId, Outbox> = HashMap::new();
    // Who the room's media has been told of.
    let mut m_members: std::collections::HashSet<ParticipantId> = Default::default();
    loop {
        let deadline = room.deadline().map(Instant::from_std);
        let command = tokio::select! {
            c = rx.recv() => c,
            () = sleep_until(deadline) => {
                room.tick(Instant::now().into_std());
                deliver(&mut room, &mut outboxes, &counters);
                media_follows(&mut media, &mut m_members, &outboxes);
                continue;
            }
            () = poll_media(&mut media) => continue,
        };
        let Some(command) = command else { break };
        let now = Instant::now().into_std();
        let epoch_before = room.epoch();
        match command {
            Command::Join {
                pid,
                identity,
                may_publish,
                outbox,
                reply,
            } => {
                let result = room.join(pid, identity, may_publish, now);
                if result.is_ok() {
                    if let Some(m) = &mut media {
                        m_members.insert(pid);
                        m.joined(
                            pid,
                            may_publish,
                            MediaSender {
                                outbox: outbox.clone(),
                            },
                        );
                    }
                    outboxes.insert(pid, outbox);
                }
                if reply.send(result).is_err() && result.is_ok() {
                    // The connection gave up waiting.
                    room.disconnect(pid, now);
                    outboxes.remove(&pid);
                }
            }
            Command::Message { pid, message } => {
                match (MediaSignal::from_client(&message), &mut media) {
                    // Only from someone in the room (a connection whose join is still in flight
                    // has no outbox here yet).
                    (Some(signal), Some(m)) => {
                        if outboxes.contains_key(&pid) {
                            m.signal(pid, signal);
                        }
                    }
                    _ => room.handle(pid, message, now),
                }
            }
            Command::Disconnect { pid } => {
                room.disconnect(pid, now);
                outboxes.remove(&pid);
            }
            Command::Inspect { reply } => {
                let _ = reply.send(RoomInfo {
                    name: room.name().to_owned(),
                    epoch: room.epoch(),
                    participants: room.occupants(),
                });
            }
            Command::Remove {
                pid,
                reason,
                code,
                reply,
            } => {
                let targets = match pid {
                    Some(pid) => vec![pid],
                    None => room.occupants().iter().map(|o| o.participant_id).collect(),
                };
                let removed = targets
                    .into_iter()
                    .filter(|&p| room.remove(p, &reason, Some(code), now))
                    .count();
                let _ = reply.send(removed);
            }
        }
        deliver(&mut room, &mut outboxes, &counters);
        media_follows(&mut media, &mut m_members, &outboxes);
        if room.epoch().is_some() && room.epoch() != epoch_before {
            counters.epochs.fetch_add(1, Ordering::Relaxed);
        }
        count.store(room.len() as u64, Ordering::Relaxed);
        if room.is_empty() {
            let mut map = rooms.lock().unwrap_or_else(|e| e.into_inner());
            if map.get(room.name()).is_some_and(|e| e.handle.id == id) {
                map.remove(room.name());
            }
            // No new command can reach this room now; joins already queued retry elsewhere.
            rx.close();
            break;
        }
    }
    tracing::debug!("room closed");
}

/// The media negotiation messages, which go to the room's media rather than its delivery
/// service.
/// One membership: whoever the room no longer reaches (left, closed, removed, stuck) leaves its
/// media too.
fn media_follows(
    media: &mut Option<Box<dyn RoomMedia>>,
    members: &mut std::collections::HashSet<ParticipantId>,
    outboxes: &HashMap<ParticipantId, Outbox>,
) {
    let Some(m) = media else { return };
    let gone: Vec<ParticipantId> = members
        .iter()
        .copied()
        .filter(|p| !outboxes.contains_key(p))
        .collect();
    for p in gone {
        members.remove(&p);
        m.left(p);
    }
}

/// Drives the room's media until it has nothing to do now; never, without media.
async fn poll_media(media: &mut Option<Box<dyn RoomMedia>>) {
    match media {
        Some(m) => std::future::poll_fn(|cx| m.poll(cx)).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Hands the room's effects to the connections. A message for many is serialized once and
/// shared. A connection whose queue is full is stuck: it is dropped like a disconnect; one
/// whose task has ended is simply gone.
fn deliver(room: &mut Room, outboxes: &mut HashMap<ParticipantId, Outbox>, counters: &Counters) {
    loop {
        let effects = room.take_effects();
        if effects.is_empty() {
            return;
        }
        let mut stuck = Vec::new();
        let push = |pid: ParticipantId, out: Outbound, stuck: &mut Vec<_>| {
            if let Some(tx) = outboxes.get(&pid) {
                match tx.push(out) {
                    Ok(()) => {}
                    Err(PushError::Full) => stuck.push((pid, true)),
                    Err(PushError::Closed) => stuck.push((pid, false)),
                }
            }
        };
        let mut closing = Vec::new();
        for effect in effects {
            match effect {
                Effect::Send(pid, message) => {
                    if matches!(message, ServerMessage::CommitRejected { .. }) {
                        counters.commits_rejected.fetch_add(1, Ordering::Relaxed);
                    }
                    push(pid, Outbound::Message(message), &mut stuck);
                }
                Effect::Broadcast(pids, message) => {
                    let text = Utf8Bytes::from(encode(&message));
                    for pid in pids {
                        push(pid, Outbound::Frame(text.clone()), &mut stuck);
                    }
                }
                Effect::Close(pid) => closing.push(pid),
            }
        }
        for pid in closing {
            if let Some(tx) = outboxes.remove(&pid) {
                let _ = tx.push(Outbound::Close);
            }
        }
        let now = Instant::now().into_std();
        for (pid, full) in stuck {
            if outboxes.remove(&pid).is_some() {
                if full {
                    tracing::warn!(participant = pid, "outbox full: dropping the connection");
                }
                room.disconnect(pid, now);
            }
        }
    }
}
