//! Commits: one member at a time is asked to commit what is queued; each commit is verified
//! against the public tree and compared with what was queued before it is accepted; exactly
//! one commit wins each epoch; proposals are verified and relayed.

use std::collections::BTreeSet;
use std::time::Instant;

use signaling_protocol::{
    CommitMessage, CommitRejection, ErrorCode, ParticipantId, PendingAdd, ServerMessage,
    parse_credential_identity,
};

use super::{Effect, InFlight, LastCommit, Membership, PROPOSALS_PER_EPOCH_BASE, Record, Room};
use crate::mls::{VerifiedCommit, VerifyError, public_group};

/// What a verified commit does, in participants.
struct Effects {
    added: BTreeSet<ParticipantId>,
    removed: BTreeSet<ParticipantId>,
}

impl Room {
    fn reject(&mut self, to: ParticipantId, epoch: u64, reason: CommitRejection) {
        self.send(to, ServerMessage::CommitRejected { epoch, reason });
    }

    pub(super) fn commit(&mut self, from: ParticipantId, c: CommitMessage, now: Instant) {
        let Some(current) = self.epoch() else {
            return self.error(
                from,
                ErrorCode::InvalidState,
                "the group does not exist yet",
            );
        };
        if !self
            .occupants
            .get(&from)
            .is_some_and(|o| o.state == Membership::Member)
        {
            return self.reject(from, current, CommitRejection::NotAMember);
        }
        if c.epoch != current {
            return self.reject(from, current, CommitRejection::StaleEpoch);
        }
        let verified = match self.verify(from, &c) {
            Ok(v) => v,
            Err((reason, e)) => {
                tracing::info!(room = %self.name, participant = from, error = %e, ?reason, "commit refused");
                return self.reject(from, current, reason);
            }
        };
        self.accept(from, c, verified, now);
    }

    /// Verifies `c` against the public tree and the queue: signed by `from`'s leaf, adding
    /// only queued key packages and removing only leaves due to go, saying so truthfully in
    /// `added`/`removed`, with a Welcome for exactly those it adds and a GroupInfo of the
    /// epoch it makes.
    fn verify(
        &self,
        from: ParticipantId,
        c: &CommitMessage,
    ) -> Result<(VerifiedCommit, Effects), (CommitRejection, VerifyError)> {
        let invalid = |e| (CommitRejection::InvalidMls, e);
        let not_queued = |what: String| (CommitRejection::NotAsQueued, VerifyError::Invalid(what));
        let tree = self
            .tree
            .as_ref()
            .ok_or_else(|| invalid(VerifyError::Invalid("no group".into())))?;
        let v = tree.verify_commit(c.commit.as_slice()).map_err(invalid)?;
        let leaf_pid = |leaf: u32| {
            tree.leaves()
                .into_iter()
                .find(|l| l.index == leaf)
                .and_then(|l| {
                    parse_credential_identity(&String::from_utf8_lossy(&l.identity)).map(|(p, _)| p)
                })
        };
        if leaf_pid(v.sender) != Some(from) {
            return Err(invalid(VerifyError::Invalid(
                "signed by another member's leaf".into(),
            )));
        }
        let queued = self.queued_adds();
        let mut added = BTreeSet::new();
        for add in &v.adds {
            let Some((pid, _)) = queued.iter().find(|(_, kp)| kp.reference == add.reference) else {
                return Err(not_queued("adds a key package that was not queued".into()));
            };
            added.insert(*pid);
        }
        let due = self.needed_removals();
        let mut removed = BTreeSet::new();
        for &leaf in &v.removes {
            match leaf_pid(leaf) {
                Some(pid) if due.contains(&pid) => {
                    removed.insert(pid);
                }
                _ => {
                    return Err(not_queued(format!(
                        "removes leaf {leaf}, which is not due to go"
                    )));
                }
            }
        }
        // Nobody may end up with two leaves: an add of someone still in the tree must remove
        // every leaf it had.
        let leaves = self.leaves();
        for pid in &added {
            let kept = leaves
                .get(pid)
                .is_some_and(|ls| ls.iter().any(|l| !v.removes.contains(l)));
            if kept {
                return Err(not_queued(format!("adds participant {pid} a second leaf")));
            }
        }
        let claimed_added: BTreeSet<_> = c.added.iter().copied().collect();
        let claimed_removed: BTreeSet<_> = c.removed.iter().copied().collect();
        if claimed_added != added || claimed_removed != removed {
            return Err(not_queued(format!(
                "says it adds {claimed_added:?} and removes {claimed_removed:?}; it adds {added:?} and removes {removed:?}"
            )));
        }
        match (&c.welcome, v.adds.is_empty()) {
            (None, true) => {}
            (Some(w), false) => {
                let refs: Vec<Vec<u8>> = v.adds.iter().map(|a| a.reference.clone()).collect();
                public_group::check_welcome(w.as_slice(), &refs).map_err(invalid)?;
            }
            (None, false) => {
                return Err(invalid(VerifyError::Invalid(
                    "no welcome for the members it adds".into(),
                )));
            }
            (Some(_), true) => {
                return Err(invalid(VerifyError::Invalid(
                    "a welcome, but nobody is added".into(),
                )));
            }
        }
        v.check_group_info(c.group_info.as_slice())
            .map_err(invalid)?;
        Ok((v, Effects { added, removed }))
    }

    fn accept(
        &mut self,
        from: ParticipantId,
        c: CommitMessage,
        (verified, effects): (VerifiedCommit, Effects),
        now: Instant,
    ) {
        // Everyone who holds the group now processes it, the removed included (they learn
        // they are out).
        let recipients = self.holders();
        if let Some(tree) = &mut self.tree
            && let Err(e) = tree.apply(verified)
        {
            // A verified commit that does not merge is a bug of ours or openmls's: nobody gets
            // it, and the group stays where it was.
            tracing::error!(room = %self.name, error = %e, "cannot apply a verified commit");
            let epoch = tree.epoch();
            return self.reject(from, epoch, CommitRejection::InvalidMls);
        }
        self.effects.push(Effect::Record(Record::Commit {
            epoch: c.epoch,
            commit: c.commit.clone(),
            group_info: c.group_info.clone(),
        }));
        let epoch = c.epoch + 1;
        self.group_info = Some(c.group_info.into_vec());
        tracing::info!(
            room = %self.name, participant = from, epoch,
            added = effects.added.len(), removed = effects.removed.len(), "commit accepted"
        );
        let message = ServerMessage::Commit {
            epoch,
            from,
            commit: c.commit,
            added: effects.added.iter().copied().collect(),
            removed: effects.removed.iter().copied().collect(),
        };
        self.broadcast(recipients, message);
        for pid in &effects.removed {
            if let Some(o) = self.occupants.get_mut(pid)
                && !effects.added.contains(pid)
            {
                o.state = Membership::Outside;
            }
        }
        let deadline = now + self.config.commit_timeout;
        if let Some(welcome) = c.welcome {
            for &pid in &effects.added {
                if let Some(o) = self.occupants.get_mut(&pid) {
                    o.state = Membership::Welcomed { deadline };
                    o.key_package = None;
                    self.send(
                        pid,
                        ServerMessage::Welcome {
                            epoch,
                            welcome: welcome.clone(),
                        },
                    );
                }
                // Added but already gone: its leaf is due to go in a later commit.
            }
        }
        // A committer that left out what it was asked for is not asked first next time.
        self.avoid = match self.request.take() {
            Some(r)
                if r.committer == from
                    && (!r.add.is_subset(&effects.added)
                        || !r.remove.is_subset(&effects.removed)) =>
            {
                tracing::info!(room = %self.name, participant = from, "the commit left out part of the request");
                Some(from)
            }
            _ => None,
        };
        self.timed_out.clear();
        self.proposals_spent();
        self.last_commit = Some(LastCommit {
            epoch,
            author: from,
            failed: BTreeSet::new(),
        });
        self.settle(now);
    }

    pub(super) fn proposal(
        &mut self,
        from: ParticipantId,
        epoch: u64,
        proposal: Vec<u8>,
        now: Instant,
    ) {
        let Some(current) = self.epoch() else {
            return self.error(
                from,
                ErrorCode::InvalidState,
                "the group does not exist yet",
            );
        };
        if !self
            .occupants
            .get(&from)
            .is_some_and(|o| o.state == Membership::Member)
        {
            return self.error(from, ErrorCode::NotAMember, "only members may propose");
        }
        if epoch != current {
            return self.error(
                from,
                ErrorCode::StaleEpoch,
                format!("the group is at epoch {current}"),
            );
        }
        let holders = self.holders();
        let limit = PROPOSALS_PER_EPOCH_BASE + 2 * holders.len();
        if self.proposals_this_epoch >= limit {
            return self.error(
                from,
                ErrorCode::RateLimited,
                format!("at most {limit} proposals an epoch in this room"),
            );
        }
        let Some(tree) = self.tree.as_mut() else {
            return;
        };
        let verified = match tree.verify_proposal(&proposal) {
            Ok(v) => v,
            Err(e @ (VerifyError::ForbiddenProposal(_) | VerifyError::RemovesAnother)) => {
                return self.error(from, ErrorCode::ProposalRefused, e.to_string());
            }
            Err(e) => return self.error(from, ErrorCode::InvalidMls, e.to_string()),
        };
        let self_remove = verified.self_remove;
        if let Err(e) = tree.keep(verified) {
            return self.error(from, ErrorCode::Internal, e.to_string());
        }
        self.effects.push(Effect::Record(Record::Proposal {
            epoch,
            proposal: proposal.clone().into(),
        }));
        self.proposal_kept(from, self_remove);
        let message = ServerMessage::Proposal {
            from,
            proposal: proposal.into(),
        };
        self.broadcast(
            holders.into_iter().filter(|&m| m != from).collect(),
            message,
        );
        self.settle(now);
    }

    /// A proposal from `from` is kept for the next commit: counted against the epoch's cap,
    /// and a member's own leave is due from then on.
    pub(super) fn proposal_kept(&mut self, from: ParticipantId, self_remove: bool) {
        self.proposals_this_epoch += 1;
        if self_remove {
            self.self_removals.insert(from);
        }
    }

    /// The group moved to its next epoch: the proposals of the last one are spent.
    pub(super) fn proposals_spent(&mut self) {
        self.self_removals.clear();
        self.proposals_this_epoch = 0;
    }

    /// Asks a member to commit what is queued, unless a commit is already in flight.
    pub(super) fn maybe_request(&mut self, now: Instant) {
        if self.request.is_some() || self.tree.is_none() {
            return;
        }
        if self.queued_adds().is_empty() && self.needed_removals().is_empty() {
            return;
        }
        let candidates: Vec<ParticipantId> = self
            .members()
            .into_iter()
            .filter(|m| !self.timed_out.contains(m))
            .collect();
        let committer = candidates
            .iter()
            .find(|&&m| Some(m) != self.avoid)
            .or(candidates.first())
            .copied();
        match committer {
            Some(c) => self.request_from(c, now),
            None if !self.members().is_empty() => {
                // Every member was asked and none committed: the group cannot move on with
                // them, so it starts again among everyone present.
                tracing::warn!(room = %self.name, "no member commits: the group is re-created");
                self.new_group("no member committed in time", &[], now);
            }
            // Only joiners that have not acknowledged their Welcome hold the group: wait.
            None => {}
        }
    }

    /// The committer did not commit in time: ask the next member.
    pub(super) fn reassign(&mut self, now: Instant) {
        let Some(previous) = self.request.take() else {
            return;
        };
        tracing::info!(room = %self.name, previous = previous.committer, "the commit request moves to another member");
        self.timed_out.insert(previous.committer);
        self.maybe_request(now);
    }

    fn request_from(&mut self, committer: ParticipantId, now: Instant) {
        let Some(epoch) = self.epoch() else { return };
        let adds = self.queued_adds();
        let remove = self.needed_removals();
        self.request = Some(InFlight {
            committer,
            deadline: now + self.config.commit_timeout,
            add: adds.iter().map(|(p, _)| *p).collect(),
            remove: remove.clone(),
        });
        let add = adds
            .into_iter()
            .map(|(participant_id, kp)| PendingAdd {
                participant_id,
                key_package: kp.bytes.into(),
            })
            .collect();
        self.send(
            committer,
            ServerMessage::CommitRequest {
                epoch,
                add,
                remove: remove.into_iter().collect(),
            },
        );
    }
}
