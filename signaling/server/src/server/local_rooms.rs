//! This process's rooms, by name: a room is made on its first join, runs as its own task
//! ([`super::room_task`]), and leaves the map when its last participant is gone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use signaling_protocol::{ErrorCode, ParticipantId};
use tokio::sync::oneshot;

use super::media::MediaFactory;
use super::room_log::RoomLogs;
use super::room_task::{Command, Counters, RoomHandle};
use super::rooms::{Joiner, RoomInfo, RoomLink, RoomStats, Rooms};
use crate::config::SignalingConfig;
use crate::room::{Room, RoomConfig};

struct RoomEntry {
    /// Which room of this name (a room that ended and one made after it differ).
    id: u64,
    handle: RoomHandle,
    participants: Arc<AtomicU64>,
}

type Map = Arc<Mutex<HashMap<String, RoomEntry>>>;

pub(super) struct LocalRooms {
    rooms: Map,
    counters: Arc<Counters>,
    next_room: AtomicU64,
    next_participant: AtomicU64,
    room_config: RoomConfig,
    media: Option<Arc<dyn MediaFactory>>,
    /// Told the name of each room that ends.
    on_end: Option<OnEnd>,
    /// Where rooms' records are kept (in a cluster).
    logs: Option<Arc<dyn RoomLogs>>,
    returning: Option<Returning>,
}

/// What is told of a room that ended.
pub(super) type OnEnd = Arc<dyn Fn(&str) + Send + Sync>;

/// Whether a participant can still come back to a room rebuilt from its log (its node lives).
pub(super) type Returning = Arc<dyn Fn(ParticipantId) -> bool + Send + Sync>;

fn lock(rooms: &Map) -> std::sync::MutexGuard<'_, HashMap<String, RoomEntry>> {
    // A panic while holding this lock cannot leave the map half-changed.
    rooms.lock().unwrap_or_else(|e| e.into_inner())
}

impl LocalRooms {
    pub(super) fn new(config: &SignalingConfig, media: Option<Arc<dyn MediaFactory>>) -> Self {
        Self::starting_at(config, media, 1, None, None, None)
    }

    /// Rooms whose participant ids start at `first_id`; `on_end` is told each room that ends;
    /// with `logs`, each room keeps its records there and starts from them, waiting for the
    /// members `returning` says can come back.
    pub(super) fn starting_at(
        config: &SignalingConfig,
        media: Option<Arc<dyn MediaFactory>>,
        first_id: ParticipantId,
        on_end: Option<OnEnd>,
        logs: Option<Arc<dyn RoomLogs>>,
        returning: Option<Returning>,
    ) -> Self {
        LocalRooms {
            rooms: Arc::new(Mutex::new(HashMap::new())),
            counters: Arc::default(),
            next_room: AtomicU64::new(1),
            next_participant: AtomicU64::new(first_id),
            room_config: RoomConfig {
                max_participants: config.max_participants_per_room,
                commit_timeout: config.commit_timeout,
                ice_servers: config.ice_servers.clone().into(),
            },
            media,
            on_end,
            logs,
            returning,
        }
    }

    /// The running room of this name, if there is one.
    pub(super) fn handle(&self, room: &str) -> Option<RoomHandle> {
        lock(&self.rooms).get(room).map(|e| e.handle.clone())
    }

    /// The running room of this name, started if there is none.
    fn room(&self, name: &str) -> RoomHandle {
        let mut rooms = lock(&self.rooms);
        if let Some(entry) = rooms.get(name) {
            return entry.handle.clone();
        }
        let id = self.next_room.fetch_add(1, Ordering::Relaxed);
        let participants = Arc::new(AtomicU64::new(0));
        let (map, key, on_end) = (self.rooms.clone(), name.to_owned(), self.on_end.clone());
        let vacate = Box::new(move || {
            let ended = {
                let mut map = lock(&map);
                let ours = map.get(&key).is_some_and(|e| e.id == id);
                if ours {
                    map.remove(&key);
                }
                ours
            };
            if let (true, Some(on_end)) = (ended, on_end) {
                on_end(&key);
            }
        });
        let room = Room::new(name, self.room_config.clone(), rand::random());
        let log = self
            .logs
            .as_ref()
            .map(|l| (l.open(name), self.returning.clone()));
        let handle = RoomHandle::start(
            room,
            self.media.clone(),
            log,
            participants.clone(),
            self.counters.clone(),
            vacate,
        );
        rooms.insert(
            name.to_owned(),
            RoomEntry {
                id,
                handle: handle.clone(),
                participants,
            },
        );
        handle
    }
}

impl Rooms for LocalRooms {
    fn next_id(&self) -> ParticipantId {
        self.next_participant.fetch_add(1, Ordering::Relaxed)
    }

    fn join<'a>(
        &'a self,
        room: &'a str,
        joiner: Joiner,
    ) -> BoxFuture<'a, Result<Box<dyn RoomLink>, ErrorCode>> {
        async move {
            loop {
                let handle = self.room(room);
                let (reply, answer) = oneshot::channel();
                let sent = handle.send(Command::Join {
                    pid: joiner.pid,
                    identity: joiner.identity.clone(),
                    may_publish: joiner.may_publish,
                    outbox: joiner.outbox.clone(),
                    media: joiner.media,
                    resume: joiner.resume,
                    reply,
                });
                if sent && let Ok(result) = answer.await {
                    return result.map(|()| Box::new(handle) as Box<dyn RoomLink>);
                }
                // The room ended between lookup and join: take the next one.
                tokio::task::yield_now().await;
            }
        }
        .boxed()
    }

    fn rooms(&self) -> BoxFuture<'_, Vec<RoomInfo>> {
        let handles: Vec<RoomHandle> = lock(&self.rooms)
            .values()
            .map(|e| e.handle.clone())
            .collect();
        async move {
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
        .boxed()
    }

    fn remove<'a>(
        &'a self,
        room: &'a str,
        pid: Option<ParticipantId>,
        reason: &'a str,
        code: ErrorCode,
    ) -> BoxFuture<'a, usize> {
        let handle = self.handle(room);
        async move {
            let Some(handle) = handle else { return 0 };
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
        .boxed()
    }

    fn stats(&self) -> RoomStats {
        let rooms = lock(&self.rooms);
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
}
