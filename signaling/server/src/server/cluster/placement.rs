//! Rooms' home nodes. A room gets its home on its first join: the least loaded live node, written
//! with an atomic create in the rooms bucket, so two nodes never both own a room (the second
//! create fails and reads the first). The home refreshes its rooms' entries every heartbeat,
//! each with a compare-and-set on the revision it last wrote: an entry someone else rewrote is
//! a room this node lost. An entry not refreshed for three heartbeats expires, and the room is
//! free for another node.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};

use super::nodes::NodeInfo;
use super::watched::Watched;

/// A room's home, as the bucket says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Home {
    pub(crate) node: String,
    /// The entry's revision (what a compare-and-set names).
    pub(crate) revision: u64,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    home: String,
    room: String,
}

/// The key of `room` in the bucket (and in subjects): its UTF-8 bytes in hex, which any name
/// can be and which NATS accepts as one token.
pub(crate) fn room_key(room: &str) -> String {
    hex::encode(room.as_bytes())
}

/// The room whose key is `key`.
pub(crate) fn room_of_key(key: &str) -> Option<String> {
    String::from_utf8(hex::decode(key).ok()?).ok()
}

/// Why a placement step failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PlacementError {
    #[error("NATS JetStream: {0}")]
    JetStream(String),
    #[error("no live node takes rooms")]
    NoNode,
}

pub(crate) struct Placement {
    store: kv::Store,
    me: String,
    ttl: Duration,
    view: Watched,
    /// The rooms this node is home to, with the revision it last wrote for each.
    owned: Mutex<HashMap<String, u64>>,
}

impl Placement {
    pub(super) fn new(store: kv::Store, me: String, ttl: Duration) -> Self {
        let view = Watched::start(store.clone());
        Placement {
            store,
            me,
            ttl,
            view,
            owned: Mutex::default(),
        }
    }

    fn owned(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.owned.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `room`'s home now, if it has one.
    pub(crate) async fn home(&self, room: &str) -> Result<Option<Home>, PlacementError> {
        let entry = self
            .store
            .entry(room_key(room))
            .await
            .map_err(|e| PlacementError::JetStream(e.to_string()))?;
        Ok(entry.and_then(|e| {
            let value: Entry = serde_json::from_slice(&e.value).ok()?;
            (e.operation == kv::Operation::Put).then_some(Home {
                node: value.home,
                revision: e.revision,
            })
        }))
    }

    /// Gives `room` a home among `nodes` (the live ones) unless it has one: the cheapest node
    /// that is not draining, counting the rooms each is home to now. Returns the home, which
    /// is another's if another node placed the room first.
    pub(crate) async fn place(
        &self,
        room: &str,
        nodes: &[NodeInfo],
    ) -> Result<Home, PlacementError> {
        loop {
            if let Some(home) = self.home(room).await? {
                return Ok(home);
            }
            let node = self.choose(nodes).ok_or(PlacementError::NoNode)?;
            if let Some(home) = self.create(room, &node).await? {
                return Ok(home);
            }
        }
    }

    /// Writes `node` as `room`'s home if the room has none; `None` if it had one meanwhile.
    async fn create(&self, room: &str, node: &str) -> Result<Option<Home>, PlacementError> {
        let value = serde_json::to_vec(&Entry {
            home: node.to_owned(),
            room: room.to_owned(),
        })
        .map_err(|e| PlacementError::JetStream(e.to_string()))?;
        match self.store.create(room_key(room), value.into()).await {
            Ok(revision) => {
                if node == self.me {
                    self.owned().insert(room.to_owned(), revision);
                }
                Ok(Some(Home {
                    node: node.to_owned(),
                    revision,
                }))
            }
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(PlacementError::JetStream(e.to_string())),
        }
    }

    /// The node a new room goes to: of the live ones not draining, the one with the lowest
    /// [`NodeInfo::cost`], counting as its rooms those the bucket says it is home to now (a
    /// room placed a moment ago counts at once, not at the node's next heartbeat).
    fn choose(&self, nodes: &[NodeInfo]) -> Option<String> {
        let mut homes: HashMap<String, usize> = HashMap::new();
        for (_, value) in self.view.recent(self.ttl) {
            if let Ok(entry) = serde_json::from_slice::<Entry>(&value) {
                *homes.entry(entry.home).or_default() += 1;
            }
        }
        nodes
            .iter()
            .filter(|n| !n.draining)
            .map(|n| {
                let mut n = n.clone();
                n.load.rooms = homes.get(&n.node_id).copied().unwrap_or(0);
                n
            })
            .min_by(|a, b| {
                a.cost()
                    .total_cmp(&b.cost())
                    .then_with(|| a.node_id.cmp(&b.node_id))
            })
            .map(|n| n.node_id)
    }

    /// Takes `room` over from `stale`, a home that is gone: its entry is replaced only if it is
    /// still the one seen (another node taking over first wins), and this node becomes home
    /// if the room is free then. Returns the room's home after.
    pub(crate) async fn take_over(
        &self,
        room: &str,
        stale: &Home,
        nodes: &[NodeInfo],
    ) -> Result<Home, PlacementError> {
        match self
            .store
            .delete_expect_revision(room_key(room), Some(stale.revision))
            .await
        {
            Ok(()) => {}
            // Someone else changed it first: theirs stands.
            Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => {}
            Err(e) => return Err(PlacementError::JetStream(e.to_string())),
        }
        self.place(room, nodes).await
    }

    /// Takes on `room` if its entry names this node (another node placed it here, or this node
    /// before a restart): true if this node is its home now.
    pub(crate) async fn adopt(&self, room: &str) -> Result<bool, PlacementError> {
        if self.owns(room) {
            return Ok(true);
        }
        match self.home(room).await? {
            Some(home) if home.node == self.me => {
                self.owned().entry(room.to_owned()).or_insert(home.revision);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Removes `room`'s entry if it names this node (which will not be its home).
    pub(crate) async fn disown(&self, room: &str) {
        self.owned().remove(room);
        if let Ok(Some(home)) = self.home(room).await
            && home.node == self.me
        {
            let _ = self
                .store
                .delete_expect_revision(room_key(room), Some(home.revision))
                .await;
        }
    }

    /// Stops holding `room` (handed over): its entry is left to expire, or to whoever takes the
    /// room over.
    pub(crate) fn forget(&self, room: &str) {
        self.owned().remove(room);
    }

    /// Whether this node is `room`'s home, as far as it knows.
    pub(crate) fn owns(&self, room: &str) -> bool {
        self.owned().contains_key(room)
    }

    /// The rooms this node is home to.
    pub(crate) fn owned_rooms(&self) -> Vec<String> {
        self.owned().keys().cloned().collect()
    }

    /// Refreshes every room this node is home to; returns those it lost (rewritten by
    /// another node: they are no longer this node's). An entry that expired (NATS was away
    /// longer than the TTL) is claimed again. Rooms it cannot refresh for a reason of NATS's
    /// stay owned until their entries expire.
    pub(crate) async fn refresh(&self) -> Vec<String> {
        let rooms: Vec<(String, u64)> = self.owned().iter().map(|(r, v)| (r.clone(), *v)).collect();
        let mut lost = Vec::new();
        for (room, revision) in rooms {
            let value = match serde_json::to_vec(&Entry {
                home: self.me.clone(),
                room: room.clone(),
            }) {
                Ok(v) => v,
                Err(_) => continue,
            };
            match self
                .store
                .update(room_key(&room), value.into(), revision)
                .await
            {
                Ok(next) => {
                    if let Some(r) = self.owned().get_mut(&room) {
                        *r = next;
                    }
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    // Expired while NATS was away (its entry is gone): claimed again, unless
                    // another node took the room meanwhile.
                    let value = serde_json::to_vec(&Entry {
                        home: self.me.clone(),
                        room: room.clone(),
                    })
                    .unwrap_or_default();
                    match self.store.create(room_key(&room), value.into()).await {
                        Ok(next) => {
                            if let Some(r) = self.owned().get_mut(&room) {
                                *r = next;
                            }
                        }
                        Err(_) => {
                            self.owned().remove(&room);
                            lost.push(room);
                        }
                    }
                }
                Err(e) => tracing::debug!(room, error = %e, "cannot refresh a room's home"),
            }
        }
        lost
    }

    /// `room` has ended here: its entry is removed (if it is still this node's).
    pub(crate) async fn release(&self, room: &str) {
        let Some(revision) = self.owned().remove(room) else {
            return;
        };
        let _ = self
            .store
            .delete_expect_revision(room_key(room), Some(revision))
            .await;
    }
}
