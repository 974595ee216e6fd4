//! A room: who is in it, and the MLS delivery service for its group. IO-free: the driver feeds
//! it joins, messages, disconnects and clock ticks, and carries out the [`Effect`]s it returns.
//!
//! The delivery service (DESIGN.md, "Membership"), split by what it does:
//! - [`group`]: the group's life: its creation by the first participant (with a deadline,
//!   after which the next is asked), key packages, Welcome acknowledgements, members that
//!   cannot follow a commit, and re-creating the group when it cannot go on.
//! - [`delivery`]: one member at a time is asked to commit what is queued; a commit is
//!   verified against the room's public copy of the ratchet tree ([`crate::mls`]) and compared
//!   with what was queued before it is accepted and fanned out; the first valid commit for an
//!   epoch wins; a silent committer is replaced.
//!
//! Who is in the group is read from the public tree, never kept apart: a participant's
//! [`Membership`] says only how far it has come (asked to create, welcomed, acknowledged).
//! The room never holds an MLS private key or a frame key.

mod application;
mod delivery;
mod group;
mod record;

pub use record::{RESUME_GRACE, Record, RestoreError};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signaling_protocol::{
    ClientMessage, ErrorCode, IceServer, Participant, ParticipantId, ServerMessage,
    parse_credential_identity,
};

use crate::mls::PublicTree;

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send this message to this participant.
    Send(ParticipantId, ServerMessage),
    /// Send this message to each of these participants (serialized once, shared).
    Broadcast(Vec<ParticipantId>, ServerMessage),
    /// Close this participant's connection (after the messages sent to it so far).
    Close(ParticipantId),
    /// Write this to the room's log before carrying out the effects after it ([`Record`]).
    Record(Record),
}

/// A participant in a room, for administration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Occupancy {
    pub participant_id: ParticipantId,
    pub identity: String,
    pub may_publish: bool,
    /// In the MLS group and acknowledged it (a Welcome, or creating the group).
    pub member: bool,
    /// How far it is: `outside`, `creating`, `welcomed` (added, not yet acknowledged) or
    /// `member`.
    pub state: String,
}

/// Per-room limits and timings.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    pub max_participants: usize,
    /// How long a member asked to commit, a participant asked to create the group, and a
    /// joiner sent its Welcome each have before the room moves on.
    pub commit_timeout: Duration,
    /// Handed to each participant in `joined`.
    pub ice_servers: Arc<[IceServer]>,
}

/// How far a participant has come into the group, as the delivery service has seen it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Membership {
    /// Not in the group (it may still hold an old leaf, which the next commit removes).
    Outside,
    /// Asked to create the group, until the deadline.
    Creating { deadline: Instant },
    /// Added by an accepted commit and sent its Welcome; must acknowledge by the deadline.
    Welcomed { deadline: Instant },
    /// In the group: it created it or acknowledged its Welcome.
    Member,
}

impl Membership {
    fn name(self) -> &'static str {
        match self {
            Membership::Outside => "outside",
            Membership::Creating { .. } => "creating",
            Membership::Welcomed { .. } => "welcomed",
            Membership::Member => "member",
        }
    }

    fn deadline(self) -> Option<Instant> {
        match self {
            Membership::Creating { deadline } | Membership::Welcomed { deadline } => Some(deadline),
            _ => None,
        }
    }
}

/// A key package waiting to be added.
#[derive(Debug, Clone)]
struct QueuedKeyPackage {
    bytes: Vec<u8>,
    /// Its reference (RFC 9420 §5.2), by which commits and Welcomes name it.
    reference: Vec<u8>,
    /// Its device's signature key.
    signature_key: Vec<u8>,
}

#[derive(Debug)]
struct Occupant {
    identity: String,
    may_publish: bool,
    state: Membership,
    key_package: Option<QueuedKeyPackage>,
    /// Times it had to be added again (a Welcome it could not use, a commit it could not
    /// process): each costs the room a commit, so there is a ceiling.
    rejoins: u32,
}

/// The commit request in flight.
#[derive(Debug, Clone)]
struct InFlight {
    committer: ParticipantId,
    deadline: Instant,
    add: BTreeSet<ParticipantId>,
    remove: BTreeSet<ParticipantId>,
}

/// The last accepted commit, to judge reports that it could not be processed.
#[derive(Debug, Clone)]
struct LastCommit {
    epoch: u64,
    author: ParticipantId,
    failed: BTreeSet<ParticipantId>,
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
    /// The public copy of the group, once it exists.
    tree: Option<PublicTree>,
    group_info: Option<Vec<u8>>,
    request: Option<InFlight>,
    /// Members whose commit request timed out since the group last moved on.
    timed_out: BTreeSet<ParticipantId>,
    /// A member not to ask first next time: its commit left out what it was asked for.
    avoid: Option<ParticipantId>,
    last_commit: Option<LastCommit>,
    /// Members who proposed their own removal in this epoch.
    self_removals: BTreeSet<ParticipantId>,
    proposals_this_epoch: usize,
    /// The participant after whom the next creator is looked for (after a silent one).
    creator_after: Option<ParticipantId>,
    /// Who should create the next group (one who reported a commit nobody else followed).
    preferred_creator: Option<ParticipantId>,
    /// Restored from its records: until then, members may come back ([`Room::resume`]) and
    /// nobody is asked to commit.
    resuming: Option<Instant>,
    /// Members a restored room still waits for.
    awaited: BTreeSet<ParticipantId>,
    /// Who joined a restored room while it waited: those coming back are told of them.
    fresh: BTreeSet<ParticipantId>,
    effects: Vec<Effect>,
}

/// How many times a participant may be added again in one visit before it is sent away (it
/// can reconnect): a client that never manages to follow the group must not make the room
/// commit for ever.
const MAX_REJOINS: u32 = 8;

/// Proposals relayed per epoch at most: enough for every member to leave or update itself,
/// never a flood (each one is fanned out to every member).
const PROPOSALS_PER_EPOCH_BASE: usize = 8;

impl Room {
    /// An empty room. `group_id_base` must be random (it names the room's MLS groups).
    pub fn new(name: impl Into<String>, config: RoomConfig, group_id_base: [u8; 16]) -> Self {
        Room {
            name: name.into(),
            config,
            group_id_base,
            generation: 0,
            occupants: BTreeMap::new(),
            tree: None,
            group_info: None,
            request: None,
            timed_out: BTreeSet::new(),
            avoid: None,
            last_commit: None,
            self_removals: BTreeSet::new(),
            proposals_this_epoch: 0,
            creator_after: None,
            preferred_creator: None,
            resuming: None,
            awaited: BTreeSet::new(),
            fresh: BTreeSet::new(),
            effects: Vec::new(),
        }
    }

    /// The room's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its limits and timings.
    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    /// The MLS group's epoch, once the group exists.
    pub fn epoch(&self) -> Option<u64> {
        self.tree.as_ref().map(PublicTree::epoch)
    }

    /// The latest GroupInfo (verified to describe the current epoch).
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

    /// Connected participants that are acknowledged group members (those who may commit).
    pub fn members(&self) -> Vec<ParticipantId> {
        self.occupants
            .iter()
            .filter(|(_, o)| o.state == Membership::Member)
            .map(|(&p, _)| p)
            .collect()
    }

    /// The participant ids in the group's tree, with their leaves, read from the credentials
    /// (`"<participant id>:<identity>"`).
    pub fn leaves(&self) -> BTreeMap<ParticipantId, Vec<u32>> {
        let mut out: BTreeMap<ParticipantId, Vec<u32>> = BTreeMap::new();
        for leaf in self.tree.iter().flat_map(PublicTree::leaves) {
            if let Some((pid, _)) =
                parse_credential_identity(&String::from_utf8_lossy(&leaf.identity))
            {
                out.entry(pid).or_default().push(leaf.index);
            }
        }
        out
    }

    /// Participants whose adds or removals wait for a commit.
    pub fn pending(&self) -> (Vec<ParticipantId>, Vec<ParticipantId>) {
        (
            self.queued_adds().into_iter().map(|(p, _)| p).collect(),
            self.needed_removals().into_iter().collect(),
        )
    }

    /// When [`Room::tick`] has something to do.
    pub fn deadline(&self) -> Option<Instant> {
        self.occupants
            .values()
            .filter_map(|o| o.state.deadline())
            .chain(self.request.as_ref().map(|r| r.deadline))
            .chain(self.resuming)
            .min()
    }

    /// The effects produced since the last call.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    fn send(&mut self, to: ParticipantId, message: ServerMessage) {
        self.effects.push(Effect::Send(to, message));
    }

    fn broadcast(&mut self, to: Vec<ParticipantId>, message: ServerMessage) {
        if !to.is_empty() {
            self.effects.push(Effect::Broadcast(to, message));
        }
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
        let mut participants: Vec<Participant> = self
            .occupants
            .iter()
            .map(|(&participant_id, o)| Participant {
                participant_id,
                identity: o.identity.clone(),
                may_publish: o.may_publish,
            })
            .collect();
        // A restored room's members on their way back are present as far as anyone knows
        // (those who do not come back are said to have left when the room stops waiting).
        participants.extend(self.awaited_members());
        if self.resuming.is_some() {
            self.fresh.insert(pid);
        }
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
                state: Membership::Outside,
                key_package: None,
                rejoins: 0,
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
                epoch: self.epoch(),
                ice_servers: self.config.ice_servers.to_vec(),
            },
        );
        for other in self.others(pid) {
            self.send(other, ServerMessage::ParticipantJoined(me.clone()));
        }
        self.ensure_creator(now);
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
                self.proposal(from, epoch, proposal.into_vec(), now)
            }
            ClientMessage::Application { id, epoch, message } => {
                self.application(from, id, epoch, message.into_vec())
            }
            ClientMessage::WelcomeAck { epoch } => self.welcome_ack(from, epoch, now),
            ClientMessage::CommitFailed {
                epoch,
                reason,
                key_package,
            } => self.commit_failed(from, epoch, &reason, key_package.into_vec(), now),
            ClientMessage::Leave => {
                self.send(
                    from,
                    ServerMessage::Goodbye {
                        reason: "left the room".into(),
                        code: None,
                    },
                );
                self.effects.push(Effect::Close(from));
                self.disconnect(from, now);
            }
            // Counted by the connection; nothing for the room to do.
            ClientMessage::MediaStats { .. } => {}
            ClientMessage::SdpOffer { .. }
            | ClientMessage::SdpAnswer { .. }
            | ClientMessage::IceCandidate(_)
            | ClientMessage::VideoWants { .. } => self.error(
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
                member: o.state == Membership::Member,
                state: o.state.name().to_owned(),
            })
            .collect()
    }

    /// Removes a participant (an administrator's decision, or one that cannot follow the
    /// group): it is told `goodbye` with `reason` and `code` (a final one: it must not come
    /// back), its connection is closed, and its MLS removal follows in the next commit. False
    /// if it is not here.
    pub fn remove(
        &mut self,
        pid: ParticipantId,
        reason: &str,
        code: Option<ErrorCode>,
        now: Instant,
    ) -> bool {
        if !self.occupants.contains_key(&pid) {
            return false;
        }
        self.send(
            pid,
            ServerMessage::Goodbye {
                reason: reason.to_owned(),
                code,
            },
        );
        self.effects.push(Effect::Close(pid));
        self.disconnect(pid, now);
        true
    }

    /// A participant's connection is gone (closed, failed, timed out, or left). Its leaf, if
    /// it has one, is removed by the next commit.
    pub fn disconnect(&mut self, pid: ParticipantId, now: Instant) {
        if self.occupants.remove(&pid).is_none() {
            return;
        }
        for other in self.others(pid) {
            self.send(
                other,
                ServerMessage::ParticipantLeft {
                    participant_id: pid,
                },
            );
        }
        self.timed_out.remove(&pid);
        self.self_removals.remove(&pid);
        if self.request.as_ref().is_some_and(|r| r.committer == pid) {
            self.request = None;
        }
        self.settle(now);
    }

    /// Moves on from whoever let a deadline pass: a silent committer, a creator that did not
    /// create, a joiner that did not acknowledge its Welcome.
    pub fn tick(&mut self, now: Instant) {
        self.end_resume(now);
        self.expire(now);
        self.settle(now);
    }

    /// After any change: a group nobody holds is gone, the group needs a creator, and what is
    /// queued needs a committer.
    fn settle(&mut self, now: Instant) {
        // A restored room waits for its members before it changes anything.
        if self.resuming.is_some() {
            return;
        }
        self.drop_group_if_unheld(now);
        self.ensure_creator(now);
        self.maybe_request(now);
    }
}

#[cfg(test)]
mod tests;
