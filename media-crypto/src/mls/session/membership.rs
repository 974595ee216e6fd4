//! Commits that add and remove members (RFC 9420 §12.4), and the delivery service's verdict on
//! them: exactly one commit wins each epoch, so a commit stays pending until it is confirmed
//! (merged) or discarded.

use std::time::Duration;

use openmls::prelude::*;

use super::wire::{self, encode};
use super::{EpochChange, MlsSession};
use crate::mls::error::{Misuse, MlsError, PeerFault};

/// The messages of a commit.
#[derive(Clone, PartialEq, Eq)]
pub struct CommitOutput {
    /// The commit, for every member (and the delivery service).
    pub commit: Vec<u8>,
    /// The Welcome for the members it adds, if it adds any.
    pub welcome: Option<Vec<u8>>,
    /// The GroupInfo of the new epoch (with its ratchet tree), for the delivery service's
    /// public copy of the tree.
    pub group_info: Option<Vec<u8>>,
    /// The leaves it removes: those asked for and those of proposals it carries.
    pub removed: Vec<u32>,
}

impl std::fmt::Debug for CommitOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitOutput")
            .field("commit_len", &self.commit.len())
            .field("welcome", &self.welcome.is_some())
            .field("group_info", &self.group_info.is_some())
            .field("removed", &self.removed)
            .finish()
    }
}

impl CommitOutput {
    pub(super) fn new(
        commit: MlsMessageOut,
        welcome: Option<MlsMessageOut>,
        group_info: Option<MlsMessageOut>,
    ) -> Result<Self, MlsError> {
        Ok(CommitOutput {
            commit: encode(&commit)?,
            welcome: welcome.as_ref().map(encode).transpose()?,
            group_info: group_info.as_ref().map(encode).transpose()?,
            removed: Vec::new(),
        })
    }
}

impl MlsSession {
    /// This member is in a group and no commit of ours waits for the delivery service's
    /// verdict.
    pub(super) fn ensure_settled(&self) -> Result<(), MlsError> {
        let group = self
            .group
            .as_ref()
            .ok_or(MlsError::Misuse(Misuse::NotInGroup))?;
        if group.pending_commit().is_some() {
            return Err(MlsError::Misuse(Misuse::CommitPending));
        }
        Ok(())
    }

    /// Commits, in one commit, the adds of `key_packages`, the removal of the members at
    /// `remove_leaves`, and every valid proposal received since the last epoch. With nothing
    /// to add or remove it is a key update (a new epoch with fresh keys). The commit stays
    /// pending until [`Self::confirm_pending_commit`] or [`Self::discard_pending_commit`].
    pub fn commit(
        &mut self,
        key_packages: &[Vec<u8>],
        remove_leaves: &[u32],
    ) -> Result<CommitOutput, MlsError> {
        self.ensure_settled()?;
        let group = self.group.as_mut().expect("a settled member has a group");
        let adds = key_packages
            .iter()
            .map(|kp| wire::key_package(kp, self.provider.crypto()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut removes = Vec::with_capacity(remove_leaves.len());
        for &leaf in remove_leaves {
            let index = LeafNodeIndex::new(leaf);
            if group.member_at(index).is_none() {
                return Err(MlsError::Misuse(Misuse::NotAMember(leaf)));
            }
            removes.push(index);
        }
        let self_update = adds.is_empty() && removes.is_empty() && !group.has_pending_proposals();
        let bundle = group
            .commit_builder()
            .consume_proposal_store(true)
            .force_self_update(self_update)
            .propose_adds(adds)
            .propose_removals(removes)
            .load_psks(self.provider.storage())
            .map_err(|e| MlsError::Internal(format!("commit PSKs: {e:?}")))?
            .build(
                self.provider.rand(),
                self.provider.crypto(),
                &self.signer,
                |_| true,
            )
            // The key packages to add are peers' (one may clash with a member's leaf).
            .map_err(|e| MlsError::Peer(PeerFault::Invalid(format!("building the commit: {e}"))))?
            .stage_commit(&self.provider)
            .map_err(|e| MlsError::Internal(format!("staging the commit: {e}")))?;
        let (commit, welcome, group_info) = bundle.into_messages();
        let mut out = CommitOutput::new(commit, welcome, group_info)?;
        if let Some(staged) = group.pending_commit() {
            out.removed = staged
                .queued_proposals()
                .filter_map(|q| match (q.proposal(), q.sender()) {
                    (Proposal::Remove(r), _) => Some(r.removed().u32()),
                    (Proposal::SelfRemove, Sender::Member(leaf)) => Some(leaf.u32()),
                    _ => None,
                })
                .collect();
            out.removed.sort_unstable();
            out.removed.dedup();
        }
        Ok(out)
    }

    /// The delivery service accepted our pending commit: move to its epoch and install keys.
    pub fn confirm_pending_commit(&mut self, now: Duration) -> Result<EpochChange, MlsError> {
        let before = self.roster();
        self.confirm_pending_commit_from(before, now)
    }

    pub(super) fn confirm_pending_commit_from(
        &mut self,
        before: Vec<super::RosterEntry>,
        now: Duration,
    ) -> Result<EpochChange, MlsError> {
        let group = self
            .group
            .as_mut()
            .ok_or(MlsError::Misuse(Misuse::NotInGroup))?;
        if group.pending_commit().is_none() {
            return Err(MlsError::Misuse(Misuse::NoPendingCommit));
        }
        group
            .merge_pending_commit(&self.provider)
            .map_err(|e| MlsError::Internal(format!("merging our commit: {e}")))?;
        self.enter_epoch(before, now)
    }

    /// The delivery service refused our pending commit (another won the epoch): forget it.
    pub fn discard_pending_commit(&mut self) -> Result<(), MlsError> {
        let group = self
            .group
            .as_mut()
            .ok_or(MlsError::Misuse(Misuse::NotInGroup))?;
        if group.pending_commit().is_none() {
            return Err(MlsError::Misuse(Misuse::NoPendingCommit));
        }
        group
            .clear_pending_commit(self.provider.storage())
            .map_err(|e| MlsError::Internal(format!("clearing our commit: {e:?}")))
    }

    /// A proposal to remove this member, for another member to commit (leaving politely).
    pub fn leave(&mut self) -> Result<Vec<u8>, MlsError> {
        let group = self
            .group
            .as_mut()
            .ok_or(MlsError::Misuse(Misuse::NotInGroup))?;
        let proposal = group
            .leave_group(&self.provider, &self.signer)
            .map_err(|e| MlsError::Internal(format!("leaving: {e}")))?;
        encode(&proposal)
    }

    /// A proposal to add the member of `key_package`. MLS allows it; the members and the
    /// delivery service of this project refuse it (adds come only through the delivery
    /// service's queue), so this exists to play a misbehaving member in tests.
    pub fn propose_add(&mut self, key_package: &[u8]) -> Result<Vec<u8>, MlsError> {
        let kp = wire::key_package(key_package, self.provider.crypto())?;
        let group = self
            .group
            .as_mut()
            .ok_or(MlsError::Misuse(Misuse::NotInGroup))?;
        let (proposal, _) = group
            .propose_add_member(&self.provider, &self.signer, &kp)
            .map_err(|e| MlsError::Internal(format!("proposing an add: {e}")))?;
        encode(&proposal)
    }

    /// Bytes every following handshake message of ours carries in the clear, signed
    /// (`authenticated_data`, RFC 9420 §6.1). Nothing here uses it; a test plays with it to
    /// send large valid messages.
    pub fn set_authenticated_data(&mut self, aad: Vec<u8>) -> Result<(), MlsError> {
        let group = self
            .group
            .as_mut()
            .ok_or(MlsError::Misuse(Misuse::NotInGroup))?;
        group.set_aad(aad);
        Ok(())
    }

    /// Whether proposals received since the last epoch wait to be committed.
    pub fn has_pending_proposals(&self) -> bool {
        self.group
            .as_ref()
            .is_some_and(|g| g.has_pending_proposals())
    }

    /// True while a commit of ours waits for the delivery service.
    pub fn has_pending_commit(&self) -> bool {
        self.group
            .as_ref()
            .is_some_and(|g| g.pending_commit().is_some())
    }
}
