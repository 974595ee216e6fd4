//! A room's task: one task owns the room's state machine (the delivery service) and the
//! room's media side, if the server has one, and applies to them, in order, what the room's
//! connections send and the clock: one task, one membership. It ends when the room is empty.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use signaling_protocol::{ClientMessage, ErrorCode, MediaSignal, ParticipantId, ServerMessage};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tracing::Instrument;

use super::local_rooms::Returning;
use super::media::{MediaFactory, MediaSender, RoomMedia};
use super::outbox::{Outbound, Outbox, PushError, encode};
use super::room_log::{LogError, RoomLog};
use super::rooms::{RoomInfo, RoomLink};
use crate::room::{Effect, Room};

/// What a room's task is asked to do, in the order asked.
pub(super) enum Command {
    Join {
        pid: ParticipantId,
        identity: String,
        may_publish: bool,
        outbox: Outbox,
        /// Whether this room's media serves it (a participant connected to another node of
        /// a cluster has its media there).
        media: bool,
        /// Coming back after its room's home moved ([`Room::resume`]).
        resume: bool,
        reply: oneshot::Sender<Result<(), ErrorCode>>,
    },
    Message {
        pid: ParticipantId,
        message: ClientMessage,
    },
    Disconnect {
        pid: ParticipantId,
    },
    /// The room moves to another node (this one drains): everyone here is told goodbye
    /// (`shutting_down`) and closed, and the task ends, its log kept for the next home.
    HandOver {
        reply: oneshot::Sender<()>,
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

/// A handle on a running room task.
#[derive(Clone)]
pub(super) struct RoomHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl RoomHandle {
    /// Starts `room`'s task, with its media made by `media` (inside the task, on the runtime
    /// the factory chose), until the room is empty; then `vacate` runs, and no command
    /// reaches the task any more. `count` follows how many are in the room. With a `log`,
    /// the room is first rebuilt from its records, and each record is written before the
    /// effects after it go out.
    pub(super) fn start(
        room: Room,
        media: Option<Arc<dyn MediaFactory>>,
        log: Option<(Box<dyn RoomLog>, Option<Returning>)>,
        count: Arc<AtomicU64>,
        counters: Arc<Counters>,
        vacate: Box<dyn FnOnce() + Send>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let spawner = media.clone();
        // The span follows the task (entered across awaits, it would mark other tasks' logs).
        let span = tracing::info_span!("room", room = %room.name());
        let task = async move {
            let media = media.as_ref().map(|f| f.room(room.name()));
            run_room(room, media, log, rx, count, counters, vacate).await;
        }
        .instrument(span);
        match spawner {
            Some(f) => f.spawn_room(Box::pin(task)),
            None => {
                tokio::spawn(task);
            }
        }
        RoomHandle { tx }
    }

    /// False if the room has ended.
    pub(super) fn send(&self, command: Command) -> bool {
        self.tx.send(command).is_ok()
    }
}

impl RoomLink for RoomHandle {
    fn message(&self, pid: ParticipantId, message: ClientMessage) -> bool {
        self.send(Command::Message { pid, message })
    }

    fn leave(&self, pid: ParticipantId) {
        self.send(Command::Disconnect { pid });
    }
}

/// Delivery-service counters shared by the room tasks.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) epochs: AtomicU64,
    pub(super) commits_rejected: AtomicU64,
}

/// The room task: applies commands and timer ticks to the state machine and delivers its
/// effects, until the room is empty.
async fn run_room(
    mut room: Room,
    mut media: Option<Box<dyn RoomMedia>>,
    log: Option<(Box<dyn RoomLog>, Option<Returning>)>,
    mut rx: mpsc::UnboundedReceiver<Command>,
    count: Arc<AtomicU64>,
    counters: Arc<Counters>,
    vacate: Box<dyn FnOnce() + Send>,
) {
    let mut outboxes: HashMap<ParticipantId, Outbox> = HashMap::new();
    // Who the room's media has been told of.
    let mut m_members: HashSet<ParticipantId> = Default::default();
    let (mut log, returning) = match log {
        Some((l, r)) => (Some(l), r),
        None => (None, None),
    };
    if let Some(l) = &mut log {
        match l.load().await {
            Ok(records) if records.is_empty() => {}
            Ok(records) => match Room::restore(
                room.name(),
                room.config().clone(),
                rand::random(),
                &records,
                Instant::now().into_std(),
            ) {
                Ok(mut restored) => {
                    tracing::info!(records = records.len(), epoch = ?restored.epoch(), "room taken over from its log");
                    if let Some(returning) = &returning {
                        restored.give_up(|pid| !returning(pid), Instant::now().into_std());
                    }
                    room = restored;
                }
                Err(e) => {
                    tracing::error!(error = %e, "the room's log does not rebuild it: it starts afresh");
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the room's log: refusing its joins for now");
                vacate();
                rx.close();
                while let Some(command) = rx.recv().await {
                    if let Command::Join { reply, .. } = command {
                        let _ = reply.send(Err(ErrorCode::Unavailable));
                    }
                }
                return;
            }
        }
    }
    let outcome = loop {
        let deadline = room.deadline().map(Instant::from_std);
        let command = tokio::select! {
            c = rx.recv() => c,
            () = sleep_until(deadline) => {
                room.tick(Instant::now().into_std());
                if let Err(e) = deliver(&mut room, &mut outboxes, &counters, &mut log).await {
                    break Err(e);
                }
                media_follows(&mut media, &mut m_members, &outboxes);
                continue;
            }
            () = poll_media(&mut media) => continue,
        };
        let Some(command) = command else {
            break Ok(());
        };
        let now = Instant::now().into_std();
        let epoch_before = room.epoch();
        match command {
            Command::Join {
                pid,
                identity,
                may_publish,
                outbox,
                media: with_media,
                resume,
                reply,
            } => {
                let result = if resume {
                    room.resume(pid, identity, may_publish, now)
                } else {
                    room.join(pid, identity, may_publish, now)
                };
                if result.is_ok() {
                    if let Some(m) = media.as_mut().filter(|_| with_media) {
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
                    // Only from someone in the room's media (a connection whose join is still
                    // in flight is not yet; one whose media is on another node never is).
                    (Some(signal), Some(m)) => {
                        if m_members.contains(&pid) {
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
            Command::HandOver { reply } => {
                let _ = reply.send(());
                break Err(LogError::Lost);
            }
            Command::Inspect { reply } => {
                let _ = reply.send(RoomInfo {
                    name: room.name().to_owned(),
                    home: None,
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
        if let Err(e) = deliver(&mut room, &mut outboxes, &counters, &mut log).await {
            break Err(e);
        }
        media_follows(&mut media, &mut m_members, &outboxes);
        if room.epoch().is_some() && room.epoch() != epoch_before {
            counters.epochs.fetch_add(1, Ordering::Relaxed);
        }
        count.store(room.len() as u64, Ordering::Relaxed);
        if room.is_empty() {
            break Ok(());
        }
    };
    vacate();
    // No new command can reach this room now; joins already queued retry elsewhere.
    rx.close();
    match outcome {
        // Empty: the room ends, and its log with it.
        Ok(()) => {
            if let Some(l) = log {
                l.remove().await;
            }
        }
        Err(e) => {
            lost(&mut outboxes, &e);
            media_follows(&mut media, &mut m_members, &outboxes);
            count.store(0, Ordering::Relaxed);
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
    members: &mut HashSet<ParticipantId>,
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

/// The room is no longer this node's (its log was written by another, cannot be written, or
/// the node hands it over): every connection is told goodbye (`shutting_down`) and closed,
/// and reconnects to find the room's home.
fn lost(outboxes: &mut HashMap<ParticipantId, Outbox>, why: &LogError) {
    tracing::warn!(error = %why, participants = outboxes.len(), "the room cannot go on here: closing its connections");
    for (_, tx) in outboxes.drain() {
        let _ = tx.push(Outbound::Message(ServerMessage::Goodbye {
            reason: "the meeting moves to another server".into(),
            code: Some(ErrorCode::ShuttingDown),
        }));
        let _ = tx.push(Outbound::Close);
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
async fn deliver(
    room: &mut Room,
    outboxes: &mut HashMap<ParticipantId, Outbox>,
    counters: &Counters,
    log: &mut Option<Box<dyn RoomLog>>,
) -> Result<(), LogError> {
    loop {
        let effects = room.take_effects();
        if effects.is_empty() {
            return Ok(());
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
                // Written before anything after it goes out: a decision nobody could carry
                // on from is never announced.
                Effect::Record(record) => {
                    if let Some(l) = log {
                        l.append(&record).await?;
                    }
                }
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
