//! A room: who is in it, and the MLS delivery service for its group. IO-free: the driver feeds
//! it joins, messages, disconnects and clock ticks, and carries out the [`Effect`]s it returns.
//!
//! The delivery service (DESIGN.md, "Membership"): the first participant creates the group;
//! key packages of later joiners and the removals of leavers queue up; one member at a time is
//! asked to commit everything queued; the first valid commit for the current epoch wins and is
//! fanned out to every member (its author included, as its acceptance), its Welcome goes to the
//! joiners it adds, and competing commits get a typed "stale epoch" reply. What arrives while a
//! commit is in flight goes into the next one. A committer that goes silent or disconnects is
//! replaced. The room never holds an MLS private key or a frame key.

mod delivery;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signaling_protocol::{
    ClientMessage, ErrorCode, IceServer, Participant, ParticipantId, ServerMessage,
};

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send this message to this participant.
    Send(ParticipantId, ServerMessage),
    /// Close this participant's connection (after the messages sent to it so far).
    Close(ParticipantId),
}

/// A participant in a room, for administration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Occupancy {
    pub participant_id: ParticipantId,
    pub identity: String,
    pub may_publish: bool,
    /// In the MLS group, as far as the delivery service knows.
    pub member: bool,
}

/// Per-room limits and timings.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    pub max_participants: usize,
    pub commit_timeout: Duration,
    /// Handed to each participant in `joined`.
    pub ice_servers: Arc<[IceServer]>,
}

#[derive(Debug)]
struct Occupant {
    identity: String,
    may_publish: bool,
    /// In the MLS group (as far as the delivery service knows).
    member: bool,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    committer: ParticipantId,
    deadline: Instant,
}

/// One room's state.
#[derive(Debug)]
pub struct Room {
    name: String,
    config: RoomConfig,
    /// Random per room; the group id is this and the group's generation.
    group_id_base: [u8; 16],
    generation: u64,
    occupants: BTreeMap<ParticipantId, Occupant>,
    epoch: Option<u64>,
    group_info: Option<Vec<u8>>,
    creator: Option<ParticipantId>,
    pending_adds: Vec<(ParticipantId, Vec<u8>)>,
    pending_removes: BTreeSet<ParticipantId>,
    request: Option<InFlight>,
    effects: Vec<Effect>,
}

impl Room {
    /// An empty room. `group_id_base` must be random (it names the room's MLS groups).
    pub fn new(name: impl Into<String>, config: RoomConfig, group_id_base: [u8; 16]) -> Self {
        Room {
            name: name.into(),
            config,
            group_id_base,
            generation: 0,
            occupants: BTreeMap::new(),
            epoch: None,
            group_info: None,
            creator: None,
            pending_adds: Vec::new(),
            pending_removes: BTreeSet::new(),
            request: None,
            effects: Vec::new(),
        }
    }

    /// The room's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The MLS group's epoch, once the group exists.
    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    /// The latest GroupInfo.
    pub fn group_info(&self) -> Option<&[u8]> {
        self.group_info.as_deref()
    }

    /// The current group id.
    pub fn group_id(&self) -> Vec<u8> {
        [&self.group_id_base[..], &self.generation.to_be_bytes()].concat()
    }

    /// Connected participants.
    pub fn len(&self) -> usize {
        self.occupants.len()
    }

    /// No one is connected.
    pub fn is_empty(&self) -> bool {
        self.occupants.is_empty()
    }

    /// Connected participants that are group members.
    pub fn members(&self) -> Vec<ParticipantId> {
        self.occupants
            .iter()
            .filter(|(_, o)| o.member)
            .map(|(&p, _)| p)
            .collect()
    }

    /// Participants whose adds or removals wait for a commit.
    pub fn pending(&self) -> (Vec<ParticipantId>, Vec<ParticipantId>) {
        (
            self.pending_adds.iter().map(|(p, _)| *p).collect(),
            self.pending_removes.iter().copied().collect(),
        )
    }

    /// When [`Room::tick`] has something to do.
    pub fn deadline(&self) -> Option<Instant> {
        self.request.map(|r| r.deadline)
    }

    /// The effects produced since the last call.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    fn send(&mut self, to: ParticipantId, message: ServerMessage) {
        self.effects.push(Effect::Send(to, message));
    }

    fn error(&mut self, to: ParticipantId, code: ErrorCode, message: impl Into<String>) {
        self.send(to, ServerMessage::error(code, message));
    }

    fn others(&self, except: ParticipantId) -> Vec<ParticipantId> {
        self.occupants
            .keys()
            .copied()
            .filter(|&p| p != except)
            .collect()
    }

    /// Admits a participant whose token was verified. Refused with [`ErrorCode::RoomFull`].
    pub fn join(
        &mut self,
        pid: ParticipantId,
        identity: String,
        may_publish: bool,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        if self.occupants.len() >= self.config.max_participants {
            return Err(ErrorCode::RoomFull);
        }
        let participants = self
            .occupants
            .iter()
            .map(|(&participant_id, o)| Participant {
                participant_id,
                identity: o.identity.clone(),
                may_publish: o.may_publish,
            })
            .collect();
        let me = Participant {
            participant_id: pid,
            identity: identity.clone(),
            may_publish,
        };
        self.occupants.insert(
            pid,
            Occupant {
                identity: identity.clone(),
                may_publish,
                member: false,
            },
        );
        self.send(
            pid,
            ServerMessage::Joined {
                participant_id: pid,
                room: self.name.clone(),
                identity,
                may_publish,
                participants,
                epoch: self.epoch,
                ice_servers: self.config.ice_servers.to_vec(),
            },
        );
        for other in self.others(pid) {
            self.send(other, ServerMessage::ParticipantJoined(me.clone()));
        }
        self.ensure_creator();
        self.maybe_request(now);
        Ok(())
    }

    /// A message from a participant.
    pub fn handle(&mut self, from: ParticipantId, message: ClientMessage, now: Instant) {
        if !self.occupants.contains_key(&from) {
            return;
        }
        match message {
            ClientMessage::Join { .. } => self.error(from, ErrorCode::NotJoined, "already joined"),
            ClientMessage::KeyPackage { key_package } => {
                self.key_package(from, key_package.into_vec(), now)
            }
            ClientMessage::GroupCreated { group_info } => {
                self.group_created(from, group_info.into_vec(), now)
            }
            ClientMessage::Commit(commit) => self.commit(from, commit, now),
            ClientMessage::Proposal { epoch, proposal } => {
                self.proposal(from, epoch, proposal.into_vec())
            }
            ClientMessage::Leave => {
                self.send(
                    from,
                    ServerMessage::Goodbye {
                        reason: "left the room".into(),
                    },
                );
                self.effects.push(Effect::Close(from));
                self.disconnect(from, now);
            }
            // Counted by the connection; nothing for the room to do.
            ClientMessage::MediaStats { .. } => {}
            ClientMessage::SdpOffer { .. }
            | ClientMessage::SdpAnswer { .. }
            | ClientMessage::IceCandidate(_) => self.error(
                from,
                ErrorCode::MediaUnavailable,
                "this server does not negotiate media",
            ),
            _ => self.error(from, ErrorCode::UnknownMessageType, "unsupported message"),
        }
    }

    /// Who is in the room, as the delivery service knows them.
    pub fn occupants(&self) -> Vec<Occupancy> {
        self.occupants
            .iter()
            .map(|(&participant_id, o)| Occupancy {
                participant_id,
                identity: o.identity.clone(),
                may_publish: o.may_publish,
                member: o.member,
            })
            .collect()
    }

    /// Removes a participant (an administrator's decision): it is told `goodbye` with
    /// `reason`, its connection is closed, and its MLS removal follows in the next commit.
    /// False if it is not here.
    pub fn remove(&mut self, pid: ParticipantId, reason: &str, now: Instant) -> bool {
        if !self.occupants.contains_key(&pid) {
            return false;
        }
        self.send(
            pid,
            ServerMessage::Goodbye {
                reason: reason.to_owned(),
            },
        );
        self.effects.push(Effect::Close(pid));
        self.disconnect(pid, now);
        true
    }

    /// A participant's connection is gone (closed, failed, timed out, or left).
    pub fn disconnect(&mut self, pid: ParticipantId, now: Instant) {
        let Some(gone) = self.occupants.remove(&pid) else {
            return;
        };
        for other in self.others(pid) {
            self.send(
                other,
                ServerMessage::ParticipantLeft {
                    participant_id: pid,
                },
            );
        }
        if gone.member {
            self.pending_removes.insert(pid);
        }
        self.pending_adds.retain(|(p, _)| *p != pid);
        if self.creator == Some(pid) {
            self.creator = None;
        }
        if self.epoch.is_some() && self.members().is_empty() {
            self.reset_group();
        }
        self.ensure_creator();
        if self.request.is_some_and(|r| r.committer == pid) {
            self.reassign(now);
        }
        self.maybe_request(now);
    }

    /// Moves on from a committer that did not commit in time.
    pub fn tick(&mut self, now: Instant) {
        if self.request.is_some_and(|r| r.deadline <= now) {
            self.reassign(now);
        }
    }
}

#[cfg(test)]
mod tests;
