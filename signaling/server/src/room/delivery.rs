//! The MLS delivery service of a room: group creation, queued adds and removes, commit
//! requests, and accepting exactly one commit per epoch.

use std::time::Instant;

use openmls::prelude::ContentType;
use signaling_protocol::{
    CommitMessage, CommitRejection, ErrorCode, ParticipantId, PendingAdd, ServerMessage,
    credential_identity,
};

use super::{InFlight, Room};
use crate::mls_framing;

impl Room {
    /// With no group and no one asked to create it, asks the longest-present participant.
    pub(super) fn ensure_creator(&mut self) {
        if self.epoch.is_some() || self.creator.is_some() {
            return;
        }
        let Some(&pid) = self.occupants.keys().next() else {
            return;
        };
        self.creator = Some(pid);
        self.pending_adds.retain(|(p, _)| *p != pid);
        let group_id = self.group_id();
        self.send(
            pid,
            ServerMessage::CreateGroup {
                group_id: group_id.into(),
            },
        );
    }

    /// Every member left: the group is gone with them. The next group gets a new id; queued
    /// key packages stay (they are not tied to a group).
    pub(super) fn reset_group(&mut self) {
        tracing::info!(room = %self.name, "last member left; the next participant starts a new group");
        self.epoch = None;
        self.group_info = None;
        self.generation += 1;
        self.pending_removes.clear();
        self.request = None;
        self.creator = None;
        for o in self.occupants.values_mut() {
            o.member = false;
        }
    }

    pub(super) fn key_package(&mut self, from: ParticipantId, kp: Vec<u8>, now: Instant) {
        let Some(occupant) = self.occupants.get(&from) else {
            return;
        };
        if occupant.member || self.creator == Some(from) {
            return self.error(
                from,
                ErrorCode::InvalidState,
                "already in the group (or creating it)",
            );
        }
        let expected = credential_identity(from, &occupant.identity);
        match mls_framing::key_package_identity(&kp) {
            Err(e) => return self.error(from, ErrorCode::InvalidMls, e.to_string()),
            Ok(identity) if identity != expected.as_bytes() => {
                return self.error(
                    from,
                    ErrorCode::CredentialMismatch,
                    format!("the key package's credential must be {expected:?}"),
                );
            }
            Ok(_) => {}
        }
        self.pending_adds.retain(|(p, _)| *p != from);
        self.pending_adds.push((from, kp));
        self.maybe_request(now);
    }

    pub(super) fn group_created(&mut self, from: ParticipantId, group_info: Vec<u8>, now: Instant) {
        if self.creator != Some(from) || self.epoch.is_some() {
            return self.error(
                from,
                ErrorCode::InvalidState,
                "not asked to create the group",
            );
        }
        if let Err(e) = mls_framing::check_group_info(&group_info, &self.group_id(), 0) {
            return self.error(from, ErrorCode::InvalidMls, e.to_string());
        }
        self.creator = None;
        self.epoch = Some(0);
        self.group_info = Some(group_info);
        if let Some(o) = self.occupants.get_mut(&from) {
            o.member = true;
        }
        tracing::info!(room = %self.name, participant = from, "group created");
        self.maybe_request(now);
    }

    fn reject(&mut self, to: ParticipantId, epoch: u64, reason: CommitRejection) {
        self.send(to, ServerMessage::CommitRejected { epoch, reason });
    }

    pub(super) fn commit(&mut self, from: ParticipantId, c: CommitMessage, now: Instant) {
        let Some(current) = self.epoch else {
            return self.error(
                from,
                ErrorCode::InvalidState,
                "the group does not exist yet",
            );
        };
        if !self.occupants.get(&from).is_some_and(|o| o.member) {
            return self.reject(from, current, CommitRejection::NotAMember);
        }
        if c.epoch != current {
            return self.reject(from, current, CommitRejection::StaleEpoch);
        }
        let group_id = self.group_id();
        let framing = mls_framing::check_handshake(
            c.commit.as_slice(),
            &group_id,
            current,
            ContentType::Commit,
        )
        .and_then(|()| {
            mls_framing::check_group_info(c.group_info.as_slice(), &group_id, current + 1)
        })
        .and_then(|()| match (&c.welcome, c.added.is_empty()) {
            (Some(w), _) => mls_framing::check_welcome(w.as_slice()),
            (None, true) => Ok(()),
            (None, false) => Err(mls_framing::FramingError::WrongKind {
                expected: "a welcome for the added participants",
                got: "none",
            }),
        });
        if let Err(e) = framing {
            tracing::debug!(room = %self.name, participant = from, error = %e, "commit refused");
            return self.reject(from, current, CommitRejection::InvalidMls);
        }
        self.accept(from, c, now);
    }

    fn accept(&mut self, from: ParticipantId, c: CommitMessage, now: Instant) {
        let epoch = c.epoch + 1;
        self.epoch = Some(epoch);
        self.group_info = Some(c.group_info.into_vec());
        tracing::info!(
            room = %self.name, participant = from, epoch,
            added = c.added.len(), removed = c.removed.len(), "commit accepted"
        );
        let commit = ServerMessage::Commit {
            epoch,
            from,
            commit: c.commit,
        };
        for member in self.members() {
            self.send(member, commit.clone());
        }
        for &pid in &c.removed {
            self.pending_removes.remove(&pid);
            if let Some(o) = self.occupants.get_mut(&pid) {
                o.member = false;
            }
        }
        for &pid in &c.added {
            self.pending_adds.retain(|(p, _)| *p != pid);
            match (self.occupants.get_mut(&pid), &c.welcome) {
                (Some(o), Some(welcome)) => {
                    o.member = true;
                    let welcome = welcome.clone();
                    self.send(pid, ServerMessage::Welcome { epoch, welcome });
                }
                // Added but already gone: its leaf must go in a later commit.
                _ => {
                    self.pending_removes.insert(pid);
                }
            }
        }
        self.request = None;
        self.maybe_request(now);
    }

    pub(super) fn proposal(&mut self, from: ParticipantId, epoch: u64, proposal: Vec<u8>) {
        let Some(current) = self.epoch else {
            return self.error(
                from,
                ErrorCode::InvalidState,
                "the group does not exist yet",
            );
        };
        if !self.occupants.get(&from).is_some_and(|o| o.member) {
            return self.error(from, ErrorCode::NotAMember, "only members may propose");
        }
        if epoch != current {
            return self.error(
                from,
                ErrorCode::StaleEpoch,
                format!("the group is at epoch {current}"),
            );
        }
        if let Err(e) = mls_framing::check_handshake(
            &proposal,
            &self.group_id(),
            current,
            ContentType::Proposal,
        ) {
            return self.error(from, ErrorCode::InvalidMls, e.to_string());
        }
        let message = ServerMessage::Proposal {
            from,
            proposal: proposal.into(),
        };
        for member in self.members().into_iter().filter(|&m| m != from) {
            self.send(member, message.clone());
        }
    }

    /// Asks a member to commit what is queued, unless a commit is already in flight.
    pub(super) fn maybe_request(&mut self, now: Instant) {
        if self.request.is_some() || self.epoch.is_none() {
            return;
        }
        if self.pending_adds.is_empty() && self.pending_removes.is_empty() {
            return;
        }
        if let Some(&committer) = self.members().first() {
            self.request_from(committer, now);
        }
    }

    /// The committer did not commit in time or is gone: ask the next member in turn.
    pub(super) fn reassign(&mut self, now: Instant) {
        let Some(previous) = self.request.take() else {
            return;
        };
        let members = self.members();
        let next = members
            .iter()
            .find(|&&m| m > previous.committer)
            .or_else(|| members.first());
        if let Some(&committer) = next {
            tracing::info!(
                room = %self.name, previous = previous.committer, next = committer,
                "commit request moves to another member"
            );
            self.request_from(committer, now);
        }
    }

    fn request_from(&mut self, committer: ParticipantId, now: Instant) {
        let Some(epoch) = self.epoch else { return };
        let add = self
            .pending_adds
            .iter()
            .map(|(pid, kp)| PendingAdd {
                participant_id: *pid,
                key_package: kp.clone().into(),
            })
            .collect();
        let remove = self.pending_removes.iter().copied().collect();
        self.request = Some(InFlight {
            committer,
            deadline: now + self.config.commit_timeout,
        });
        self.send(
            committer,
            ServerMessage::CommitRequest { epoch, add, remove },
        );
    }
}
