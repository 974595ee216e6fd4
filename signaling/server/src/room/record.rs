//! What a room's delivery service decides that a successor needs to carry the room on: the
//! group's creation (its GroupInfo with the ratchet tree), each proposal it relayed and each
//! commit it accepted, in order, and the group's end. The driver writes each [`Record`] to
//! the room's log before the effects that follow it go out (in a cluster, a JetStream stream
//! written with an expected last sequence: of two homes, only one can write the next record),
//! and a room is rebuilt from its records ([`Room::restore`]) on the node that takes it over.
//! A record holds public MLS messages only: the same bytes every member received.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use signaling_protocol::{
    Base64Bytes, ErrorCode, Participant, ParticipantId, ServerMessage, parse_credential_identity,
};

use super::{Effect, Membership, Occupant, Room, RoomConfig};
use crate::mls::PublicTree;

/// How long a restored room waits for its members to come back (their nodes re-attach them)
/// before it takes those who did not for gone.
pub const RESUME_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// One decision of the delivery service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// A group began: its id (the room's base and this generation), its creator's credential
    /// identity, and the GroupInfo it created it with (epoch 0, with the ratchet tree).
    Created {
        group_id_base: Base64Bytes,
        generation: u64,
        creator: String,
        group_info: Base64Bytes,
    },
    /// A proposal relayed in `epoch` (a commit may name it by reference).
    Proposal { epoch: u64, proposal: Base64Bytes },
    /// A commit accepted in `epoch` (taking the group to `epoch + 1`), and the GroupInfo after.
    Commit {
        epoch: u64,
        commit: Base64Bytes,
        group_info: Base64Bytes,
    },
    /// The group was abandoned; the next one is generation `generation + 1`.
    Dropped { generation: u64 },
}

/// Why a room cannot be rebuilt from its records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("record {index}: {message}")]
    Invalid { index: usize, message: String },
}

/// The group of `room`, which a record of `what` in `epoch` must find at that epoch.
fn tree_at<'r>(room: &'r mut Room, epoch: u64, what: &str) -> Result<&'r mut PublicTree, String> {
    let tree = room
        .tree
        .as_mut()
        .ok_or_else(|| format!("{what}, but no group"))?;
    if tree.epoch() != epoch {
        return Err(format!("{what} of epoch {epoch} at {}", tree.epoch()));
    }
    Ok(tree)
}

impl Room {
    /// The room as its records leave it: the group at its latest epoch (verified again, commit
    /// by commit), nobody in it yet. Until `now` + [`RESUME_GRACE`], or until every member is
    /// back ([`Room::resume`]), it asks nobody to commit or to create a group: members whose
    /// nodes re-attach them keep their leaves; the leaves of those who do not come back go in
    /// the next commit. `base` is used if the records name no group.
    pub fn restore(
        name: impl Into<String>,
        config: RoomConfig,
        base: [u8; 16],
        records: &[Record],
        now: Instant,
    ) -> Result<Room, RestoreError> {
        let mut room = Room::new(name, config, base);
        for (index, record) in records.iter().enumerate() {
            let invalid = |message: String| RestoreError::Invalid { index, message };
            match record {
                Record::Created {
                    group_id_base,
                    generation,
                    creator,
                    group_info,
                } => {
                    room.group_id_base = group_id_base
                        .as_slice()
                        .try_into()
                        .map_err(|_| invalid("a group id base of the wrong length".into()))?;
                    room.generation = *generation;
                    let tree = PublicTree::from_group_info(
                        group_info.as_slice(),
                        &room.group_id(),
                        creator.as_bytes(),
                    )
                    .map_err(|e| invalid(e.to_string()))?;
                    room.tree = Some(tree);
                    room.group_info = Some(group_info.as_slice().to_vec());
                }
                Record::Proposal { epoch, proposal } => {
                    let tree = tree_at(&mut room, *epoch, "a proposal").map_err(invalid)?;
                    let verified = tree
                        .verify_proposal(proposal.as_slice())
                        .map_err(|e| invalid(e.to_string()))?;
                    let (leaf, self_remove) = (verified.sender, verified.self_remove);
                    tree.keep(verified).map_err(|e| invalid(e.to_string()))?;
                    // Its sender's participant, by the credential of its leaf.
                    let from = room
                        .leaves()
                        .into_iter()
                        .find(|(_, leaves)| leaves.contains(&leaf))
                        .map(|(pid, _)| pid);
                    if let Some(from) = from {
                        room.proposal_kept(from, self_remove);
                    }
                }
                Record::Commit {
                    epoch,
                    commit,
                    group_info,
                } => {
                    let tree = tree_at(&mut room, *epoch, "a commit").map_err(invalid)?;
                    let verified = tree
                        .verify_commit(commit.as_slice())
                        .map_err(|e| invalid(e.to_string()))?;
                    tree.apply(verified).map_err(|e| invalid(e.to_string()))?;
                    room.group_info = Some(group_info.as_slice().to_vec());
                    room.proposals_spent();
                }
                Record::Dropped { generation } => {
                    room.tree = None;
                    room.group_info = None;
                    room.generation = generation + 1;
                }
            }
        }
        if room.tree.is_some() {
            room.resuming = Some(now + RESUME_GRACE);
            room.awaited = room.leaves().into_keys().collect();
        }
        Ok(room)
    }

    /// Takes back a participant that was in this room before its home moved (its node
    /// re-attaches it, its connection open all along): a member of the group is a member
    /// again, with nothing said to anyone. One that was not yet a member cannot pick up where
    /// it was (its key package or Welcome went with the old home): it is sent away to join
    /// afresh (its client reconnects).
    pub fn resume(
        &mut self,
        pid: ParticipantId,
        identity: String,
        may_publish: bool,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        if self.occupants.len() >= self.config.max_participants {
            return Err(ErrorCode::RoomFull);
        }
        if !self.leaves().contains_key(&pid) {
            self.effects.push(Effect::Close(pid));
            return Ok(());
        }
        // Who joined while the room waited is news to it.
        for fresh in self.fresh.clone() {
            if let Some(o) = self.occupants.get(&fresh) {
                let news = ServerMessage::ParticipantJoined(Participant {
                    participant_id: fresh,
                    identity: o.identity.clone(),
                    may_publish: o.may_publish,
                });
                self.send(pid, news);
            }
        }
        self.occupants.insert(
            pid,
            Occupant {
                identity,
                may_publish,
                state: Membership::Member,
                key_package: None,
                rejoins: 0,
            },
        );
        self.awaited.remove(&pid);
        if self.awaited.is_empty() {
            self.finish_resume(now);
        }
        Ok(())
    }

    /// Stops waiting for the members `gone` says will not come back (their nodes are gone or
    /// stopping): once nobody else is awaited, the room goes on at once.
    pub fn give_up(&mut self, gone: impl Fn(ParticipantId) -> bool, now: Instant) {
        if self.resuming.is_none() {
            return;
        }
        self.awaited.retain(|&p| !gone(p));
        if self.awaited.is_empty() {
            self.finish_resume(now);
        }
    }

    /// A restored room's grace is over: the members that did not come back are gone (everyone
    /// is told), and the room goes on.
    pub(super) fn end_resume(&mut self, now: Instant) {
        if self.resuming.is_none_or(|d| d > now) {
            return;
        }
        self.finish_resume(now);
    }

    /// The members that did not come back are gone (everyone is told), and the room goes on.
    fn finish_resume(&mut self, now: Instant) {
        self.resuming = None;
        self.awaited.clear();
        self.fresh.clear();
        let absent: Vec<ParticipantId> = self
            .leaves()
            .into_keys()
            .filter(|p| !self.occupants.contains_key(p))
            .collect();
        for pid in absent {
            let others: Vec<ParticipantId> = self.occupants.keys().copied().collect();
            for other in others {
                self.send(
                    other,
                    ServerMessage::ParticipantLeft {
                        participant_id: pid,
                    },
                );
            }
        }
        self.settle(now);
    }

    /// The members a restored room waits for that are not back yet, as a joiner is told of
    /// them (their credentials name them; whether they may publish is not known until they
    /// are back: taken as yes).
    pub(super) fn awaited_members(&self) -> Vec<Participant> {
        let mut named: BTreeMap<ParticipantId, String> = BTreeMap::new();
        for leaf in self.tree.iter().flat_map(PublicTree::leaves) {
            if let Some((p, identity)) =
                parse_credential_identity(&String::from_utf8_lossy(&leaf.identity))
                && self.awaited.contains(&p)
                && !self.occupants.contains_key(&p)
            {
                named.insert(p, identity.to_owned());
            }
        }
        named
            .into_iter()
            .map(|(participant_id, identity)| Participant {
                participant_id,
                identity,
                may_publish: true,
            })
            .collect()
    }

    /// Whether the room waits for its members to come back after a restore.
    pub fn resuming(&self) -> bool {
        self.resuming.is_some()
    }
}
