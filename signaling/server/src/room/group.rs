//! The group's life as the delivery service sees it: who creates it, key packages queued to
//! join it, Welcomes acknowledged, members that cannot follow it, and re-creating it when it
//! cannot go on (never staying frozen).

use std::collections::BTreeSet;
use std::time::Instant;

use signaling_protocol::{
    ErrorCode, ParticipantId, ServerMessage, credential_identity, parse_credential_identity,
};

use super::{Effect, Membership, QueuedKeyPackage, Record, Room};
use crate::mls::{PublicTree, framing, public_group};

impl Room {
    /// Participants that hold the group's state: acknowledged members and welcomed joiners
    /// (with a leaf in the tree). They receive its commits and proposals.
    pub(super) fn holders(&self) -> Vec<ParticipantId> {
        let leaves = self.leaves();
        self.occupants
            .iter()
            .filter(|(p, o)| {
                matches!(o.state, Membership::Member | Membership::Welcomed { .. })
                    && leaves.contains_key(p)
            })
            .map(|(&p, _)| p)
            .collect()
    }

    /// Key packages waiting to be added, by participant. One whose device still holds a leaf
    /// that is not due to go waits (a reloaded page whose old connection the server has not
    /// yet seen close): a group may not hold one signature key twice.
    pub(super) fn queued_adds(&self) -> Vec<(ParticipantId, QueuedKeyPackage)> {
        let due = self.needed_removals();
        let held: Vec<Vec<u8>> = self
            .tree
            .iter()
            .flat_map(PublicTree::leaves)
            .filter(|l| {
                parse_credential_identity(&String::from_utf8_lossy(&l.identity))
                    .is_none_or(|(p, _)| !due.contains(&p))
            })
            .map(|l| l.signature_key)
            .collect();
        self.occupants
            .iter()
            .filter(|(_, o)| o.state == Membership::Outside)
            .filter_map(|(&p, o)| o.key_package.clone().map(|kp| (p, kp)))
            .filter(|(_, kp)| !held.contains(&kp.signature_key))
            .collect()
    }

    /// Participants whose leaves must go: gone from the room, or no longer following the
    /// group (they will be added again with a fresh key package), or leaving by proposal.
    pub(super) fn needed_removals(&self) -> BTreeSet<ParticipantId> {
        self.leaves()
            .into_keys()
            .filter(|p| {
                self.occupants
                    .get(p)
                    .is_none_or(|o| o.state == Membership::Outside)
                    || self.self_removals.contains(p)
            })
            .collect()
    }

    /// With no group and no one asked to create it, asks the longest-present participant
    /// (after a creator that let its deadline pass, the next one in turn).
    pub(super) fn ensure_creator(&mut self, now: Instant) {
        if self.tree.is_some()
            || self
                .occupants
                .values()
                .any(|o| matches!(o.state, Membership::Creating { .. }))
        {
            return;
        }
        let after = self.creator_after;
        let Some(pid) = self
            .preferred_creator
            .take()
            .filter(|p| self.occupants.contains_key(p))
            .or_else(|| {
                self.occupants
                    .keys()
                    .copied()
                    .find(|&p| after.is_none_or(|a| p > a))
            })
            .or_else(|| self.occupants.keys().next().copied())
        else {
            return;
        };
        let deadline = now + self.config.commit_timeout;
        if let Some(o) = self.occupants.get_mut(&pid) {
            o.state = Membership::Creating { deadline };
            o.key_package = None;
        }
        let group_id = self.group_id();
        self.send(
            pid,
            ServerMessage::CreateGroup {
                group_id: group_id.into(),
            },
        );
    }

    /// Every holder of the group is gone: the group is gone with them. The next group gets a
    /// new id; queued key packages stay (they are not tied to a group).
    pub(super) fn drop_group_if_unheld(&mut self, now: Instant) {
        if self.tree.is_some() && self.holders().is_empty() {
            tracing::info!(room = %self.name, "nobody holds the group any more; the next participant starts a new one");
            self.new_group("nobody holds the group any more", &[], now);
        }
    }

    /// Abandons the group and starts the next one (a new group id): everyone who held it is
    /// told to rejoin, and `prefer` (if present) is asked to create it.
    pub(super) fn new_group(&mut self, reason: &str, prefer: &[ParticipantId], now: Instant) {
        if self.tree.is_some() {
            self.effects.push(Effect::Record(Record::Dropped {
                generation: self.generation,
            }));
        }
        self.tree = None;
        self.group_info = None;
        self.generation += 1;
        self.request = None;
        self.timed_out.clear();
        self.avoid = None;
        self.last_commit = None;
        self.self_removals.clear();
        self.proposals_this_epoch = 0;
        let mut told = Vec::new();
        for (&pid, o) in &mut self.occupants {
            match o.state {
                // Held the group: its state is void; it sends a fresh key package.
                Membership::Member | Membership::Welcomed { .. } => {
                    told.push(pid);
                    o.state = Membership::Outside;
                    o.key_package = None;
                }
                // It may have made a group of its own by now: that one is void too.
                Membership::Creating { .. } => {
                    told.push(pid);
                    o.state = Membership::Outside;
                }
                // Waiting to join: its key package is for no group in particular; it stays.
                Membership::Outside => {}
            }
        }
        self.preferred_creator = prefer
            .iter()
            .copied()
            .find(|p| self.occupants.contains_key(p));
        self.ensure_creator(now);
        for pid in told {
            if !matches!(
                self.occupants.get(&pid).map(|o| o.state),
                Some(Membership::Creating { .. })
            ) {
                self.send(
                    pid,
                    ServerMessage::Rejoin {
                        reason: reason.to_owned(),
                    },
                );
            }
        }
    }

    pub(super) fn key_package(&mut self, from: ParticipantId, kp: Vec<u8>, now: Instant) {
        let Some(occupant) = self.occupants.get(&from) else {
            return;
        };
        match occupant.state {
            Membership::Member => {
                return self.error(
                    from,
                    ErrorCode::InvalidState,
                    "already in the group (send commit_failed first to be added again)",
                );
            }
            Membership::Creating { .. } => {
                return self.error(from, ErrorCode::InvalidState, "asked to create the group");
            }
            // Its Welcome did not work: its leaf goes and it is added again.
            Membership::Welcomed { .. } => {
                tracing::info!(room = %self.name, participant = from, "a joiner could not use its welcome; it is added again");
                if !self.count_rejoin(from, now) {
                    return;
                }
            }
            Membership::Outside => {}
        }
        if let Some(queued) = self.check_key_package(from, kp)
            && let Some(o) = self.occupants.get_mut(&from)
        {
            o.state = Membership::Outside;
            o.key_package = Some(queued);
        }
        self.settle(now);
    }

    /// A key package whose credential is `from`'s (`"<participant id>:<identity>"`) and whose
    /// signature verifies; otherwise `from` is told why and nothing is queued.
    fn check_key_package(&mut self, from: ParticipantId, kp: Vec<u8>) -> Option<QueuedKeyPackage> {
        let expected = credential_identity(from, &self.occupants.get(&from)?.identity);
        match framing::key_package_identity(&kp) {
            Err(e) => {
                self.error(from, ErrorCode::InvalidMls, e.to_string());
                return None;
            }
            Ok(identity) if identity != expected.as_bytes() => {
                self.error(
                    from,
                    ErrorCode::CredentialMismatch,
                    format!("the key package's credential must be {expected:?}"),
                );
                return None;
            }
            Ok(_) => {}
        }
        match public_group::key_package_facts(&kp) {
            Ok(facts) => Some(QueuedKeyPackage {
                bytes: kp,
                reference: facts.reference,
                signature_key: facts.signature_key,
            }),
            Err(e) => {
                self.error(from, ErrorCode::InvalidMls, e.to_string());
                None
            }
        }
    }

    pub(super) fn group_created(&mut self, from: ParticipantId, group_info: Vec<u8>, now: Instant) {
        let Some(o) = self.occupants.get(&from) else {
            return;
        };
        if self.tree.is_some() || !matches!(o.state, Membership::Creating { .. }) {
            return self.error(
                from,
                ErrorCode::InvalidState,
                "not asked to create the group",
            );
        }
        let creator = credential_identity(from, &o.identity);
        let tree =
            match PublicTree::from_group_info(&group_info, &self.group_id(), creator.as_bytes()) {
                Ok(tree) => tree,
                Err(e) => return self.error(from, ErrorCode::InvalidMls, e.to_string()),
            };
        self.effects.push(Effect::Record(Record::Created {
            group_id_base: self.group_id_base.to_vec().into(),
            generation: self.generation,
            creator,
            group_info: group_info.clone().into(),
        }));
        self.tree = Some(tree);
        self.group_info = Some(group_info);
        self.creator_after = None;
        if let Some(o) = self.occupants.get_mut(&from) {
            o.state = Membership::Member;
        }
        tracing::info!(room = %self.name, participant = from, "group created");
        self.settle(now);
    }

    pub(super) fn welcome_ack(&mut self, from: ParticipantId, epoch: u64, now: Instant) {
        let current = self.epoch();
        let Some(o) = self.occupants.get_mut(&from) else {
            return;
        };
        match (o.state, current) {
            (Membership::Welcomed { .. }, Some(current)) if epoch <= current => {
                o.state = Membership::Member;
                self.settle(now);
            }
            _ => self.error(from, ErrorCode::InvalidState, "no welcome to acknowledge"),
        }
    }

    /// A holder could not process an accepted commit. It is out of the group from now on (it
    /// will send a fresh key package and be added again). If nobody but the commit's author
    /// could process it, the author cannot be relied on to add the others back: the group is
    /// re-created, by one of those who reported.
    pub(super) fn commit_failed(
        &mut self,
        from: ParticipantId,
        epoch: u64,
        reason: &str,
        key_package: Vec<u8>,
        now: Instant,
    ) {
        let Some(o) = self.occupants.get(&from) else {
            return;
        };
        if !matches!(o.state, Membership::Member | Membership::Welcomed { .. }) {
            return self.error(from, ErrorCode::InvalidState, "not in the group");
        }
        if !self.count_rejoin(from, now) {
            return;
        }
        let queued = self.check_key_package(from, key_package);
        if queued.is_none() {
            // Out of the group, and nothing to add it back with: it must send another.
            self.send(
                from,
                ServerMessage::Rejoin {
                    reason: "your key package was refused: send another".into(),
                },
            );
        }
        if let Some(o) = self.occupants.get_mut(&from) {
            o.state = Membership::Outside;
            o.key_package = queued;
        }
        tracing::warn!(room = %self.name, participant = from, epoch, reason, "a member could not process a commit");
        if self.request.as_ref().is_some_and(|r| r.committer == from) {
            self.request = None;
        }
        let current = self.epoch();
        if let Some(last) = &mut self.last_commit
            && last.epoch == epoch
            && Some(epoch) == current
        {
            last.failed.insert(from);
            let author = last.author;
            let only_author_left = self.members().iter().all(|&m| m == author);
            if only_author_left {
                let mut prefer: Vec<ParticipantId> = self
                    .last_commit
                    .as_ref()
                    .map(|l| l.failed.iter().copied().collect())
                    .unwrap_or_default();
                prefer.retain(|&p| p != author);
                tracing::warn!(room = %self.name, epoch, author, "nobody but its author could process a commit: the group is re-created");
                self.new_group(
                    &format!("nobody but its author could process the commit of epoch {epoch}"),
                    &prefer,
                    now,
                );
            }
        }
        self.settle(now);
    }

    /// Counts one more time `pid` has to be added again; past [`super::MAX_REJOINS`] it is sent
    /// away instead (false).
    fn count_rejoin(&mut self, pid: ParticipantId, now: Instant) -> bool {
        let Some(o) = self.occupants.get_mut(&pid) else {
            return false;
        };
        o.rejoins += 1;
        if o.rejoins <= super::MAX_REJOINS {
            return true;
        }
        tracing::warn!(room = %self.name, participant = pid, "could not follow the group, again and again: sent away");
        self.remove(
            pid,
            "you could not follow the group; reconnect to try again",
            None,
            now,
        );
        false
    }

    /// Deadlines that passed: a creator that did not create, a joiner that did not confirm
    /// its Welcome, a committer that did not commit.
    pub(super) fn expire(&mut self, now: Instant) {
        let mut late_creator = None;
        let mut late_joiners = Vec::new();
        for (&pid, o) in &mut self.occupants {
            match o.state {
                Membership::Creating { deadline } if deadline <= now => {
                    o.state = Membership::Outside;
                    late_creator = Some(pid);
                }
                Membership::Welcomed { deadline } if deadline <= now => {
                    o.state = Membership::Outside;
                    late_joiners.push(pid);
                }
                _ => {}
            }
        }
        if let Some(pid) = late_creator {
            tracing::info!(room = %self.name, participant = pid, "did not create the group in time; the next participant is asked");
            self.creator_after = Some(pid);
            // Whatever group it made late is nobody's: it drops it and asks to be added.
            self.send(
                pid,
                ServerMessage::Rejoin {
                    reason: "the group was not created in time".into(),
                },
            );
        }
        for pid in late_joiners {
            tracing::info!(room = %self.name, participant = pid, "did not confirm its welcome in time");
            self.send(
                pid,
                ServerMessage::Rejoin {
                    reason: "the welcome was not confirmed in time".into(),
                },
            );
        }
        if self.request.as_ref().is_some_and(|r| r.deadline <= now) {
            self.reassign(now);
        }
    }
}
