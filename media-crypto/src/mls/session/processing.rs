//! Handshake messages from other members (RFC 9420 §12): proposals are kept for the next
//! commit, commits move the group to a new epoch.

use std::time::Duration;

use openmls::prelude::*;

use super::wire::{decode, kind};
use super::{EpochChange, MlsSession};
use crate::mls::error::{Misuse, MlsError, PeerFault};

/// What a processed message did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Processed {
    /// A proposal, kept for the next commit.
    Proposal,
    /// A commit: the group is in a new epoch, whose keys are installed.
    NewEpoch(EpochChange),
    /// A commit that removed this member: no keys for the new epoch. Frames of earlier epochs
    /// still decrypt for the grace time.
    Removed { epoch: u64 },
    /// A message this member sent itself, echoed back; nothing to do.
    OwnMessage,
}

impl MlsSession {
    /// Processes a handshake message (an `MLSMessage` carrying a proposal or a commit).
    /// A message that fails is an error and changes nothing.
    pub fn process(&mut self, message: &[u8], now: Duration) -> Result<Processed, MlsError> {
        let body = decode(message, "handshake message")?;
        let protocol: ProtocolMessage = match body {
            MlsMessageBodyIn::PublicMessage(m) => m.into(),
            MlsMessageBodyIn::PrivateMessage(m) => m.into(),
            other => {
                return Err(MlsError::Peer(PeerFault::UnexpectedMessage {
                    expected: "proposal or commit",
                    got: kind(&other),
                }));
            }
        };
        let before = self.roster();
        let group = self
            .group
            .as_mut()
            .ok_or(MlsError::Misuse(Misuse::NotInGroup))?;
        in_current_epoch(group, &protocol)?;
        if protocol.content_type() == ContentType::Application {
            return Err(MlsError::Peer(PeerFault::UnexpectedMessage {
                expected: "proposal or commit",
                got: "application message",
            }));
        }
        // An external commit (RFC 9420 §12.4.3.2) would let whoever holds a GroupInfo (the
        // server does) put a leaf in the group that no queue announced, and remove any leaf
        // with it (the check that it removes only the joiner's own old leaf is left to the
        // application): refused before openmls even stages it.
        if protocol.is_external() {
            return Err(MlsError::Peer(PeerFault::NotFromAMember));
        }
        let processed = group
            .process_message(&self.provider, protocol)
            .map_err(|e| MlsError::Peer(PeerFault::Invalid(e.to_string())))?;
        let sender = processed.sender().clone();
        match processed.into_content() {
            ProcessedMessageContent::ProposalMessage(p) => {
                allowed_standalone(group, &p)?;
                group
                    .store_pending_proposal(self.provider.storage(), *p)
                    .map_err(|e| MlsError::Internal(format!("storing a proposal: {e:?}")))?;
                Ok(Processed::Proposal)
            }
            ProcessedMessageContent::ExternalJoinProposalMessage(_) => {
                Err(MlsError::Peer(PeerFault::NotFromAMember))
            }
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                if let Some(p) = staged
                    .queued_proposals()
                    .find_map(|q| forbidden_in_commit(q.proposal()))
                {
                    return Err(MlsError::Peer(PeerFault::ForbiddenProposal(p)));
                }
                // The committer's own leaf, renewed by its update path, keeps its credential
                // and device key: a member cannot rename itself, or become another device,
                // under a leaf others have judged (only the server would check it otherwise).
                if let (Sender::Member(leaf), Some(renewed)) =
                    (&sender, staged.update_path_leaf_node())
                    && let Some(was) = group.member_at(*leaf)
                    && (was.credential != *renewed.credential()
                        || was.signature_key != renewed.signature_key().as_slice())
                {
                    return Err(MlsError::Peer(PeerFault::ForbiddenProposal(
                        "credential-changing commit",
                    )));
                }
                let removed = staged.self_removed();
                // Another member's commit won this epoch: ours, if any, is void.
                if group.pending_commit().is_some() {
                    group
                        .clear_pending_commit(self.provider.storage())
                        .map_err(|e| MlsError::Internal(format!("clearing our commit: {e:?}")))?;
                }
                group
                    .merge_staged_commit(&self.provider, *staged)
                    .map_err(|e| MlsError::Internal(format!("merging a commit: {e}")))?;
                if removed {
                    let epoch = group.epoch().as_u64();
                    self.group = None;
                    self.keyring.retire(now);
                    return Ok(Processed::Removed { epoch });
                }
                self.enter_epoch(before, now).map(Processed::NewEpoch)
            }
            // The delivery service echoed our own commit: it won the epoch.
            ProcessedMessageContent::OwnPendingCommit => self
                .confirm_pending_commit_from(before, now)
                .map(Processed::NewEpoch),
            ProcessedMessageContent::OwnPrivateMessage => Ok(Processed::OwnMessage),
            ProcessedMessageContent::ApplicationMessage(_) => {
                Err(MlsError::Peer(PeerFault::UnexpectedMessage {
                    expected: "proposal or commit",
                    got: "application message",
                }))
            }
        }
    }
}

/// A message is for this group and its current epoch: else it is refused as of another group,
/// a stale epoch or a future one.
pub(super) fn in_current_epoch(group: &MlsGroup, m: &ProtocolMessage) -> Result<(), MlsError> {
    if m.group_id() != group.group_id() {
        return Err(MlsError::Peer(PeerFault::WrongGroup));
    }
    let (message_epoch, current) = (m.epoch().as_u64(), group.epoch().as_u64());
    if message_epoch < current {
        return Err(MlsError::Peer(PeerFault::StaleEpoch {
            message_epoch,
            current,
        }));
    }
    if message_epoch > current {
        return Err(MlsError::Peer(PeerFault::FutureEpoch {
            message_epoch,
            current,
        }));
    }
    Ok(())
}

/// The name of a proposal kind no commit of ours may carry (RFC 9420 §12.1): only adds,
/// removes and updates are used.
fn forbidden_in_commit(p: &Proposal) -> Option<&'static str> {
    match p {
        Proposal::Add(_) | Proposal::Remove(_) | Proposal::Update(_) | Proposal::SelfRemove => None,
        Proposal::PreSharedKey(_) => Some("pre-shared key"),
        Proposal::ReInit(_) => Some("re-init"),
        Proposal::ExternalInit(_) => Some("external init"),
        Proposal::GroupContextExtensions(_) => Some("group context extensions"),
        #[allow(unreachable_patterns)]
        _ => Some("custom"),
    }
}

/// A proposal on its own is kept only if it is its sender's own removal, or an update of its
/// sender's own leaf that keeps its credential. An Add proposal would put someone in the group
/// whom the delivery service never queued (and nobody checked), so it is refused.
fn allowed_standalone(group: &MlsGroup, p: &QueuedProposal) -> Result<(), MlsError> {
    let sender = match p.sender() {
        Sender::Member(leaf) => *leaf,
        _ => return Err(MlsError::Peer(PeerFault::ForbiddenProposal("non-member"))),
    };
    match p.proposal() {
        Proposal::SelfRemove => Ok(()),
        Proposal::Remove(r) if r.removed() == sender => Ok(()),
        Proposal::Remove(_) => Err(MlsError::Peer(PeerFault::ForbiddenProposal(
            "remove of another member",
        ))),
        Proposal::Update(u) => {
            let before = group.member_at(sender).map(|m| m.credential);
            if before.as_ref() == Some(u.leaf_node().credential()) {
                Ok(())
            } else {
                Err(MlsError::Peer(PeerFault::ForbiddenProposal(
                    "credential-changing update",
                )))
            }
        }
        Proposal::Add(_) => Err(MlsError::Peer(PeerFault::ForbiddenProposal("add"))),
        other => Err(MlsError::Peer(PeerFault::ForbiddenProposal(
            forbidden_in_commit(other).unwrap_or("unknown"),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mls::SessionConfig;

    const T: Duration = Duration::from_secs(1);

    #[test]
    fn a_member_cannot_rename_itself_in_its_commit_s_update_path() {
        let mut alice = MlsSession::new("1:alice", SessionConfig::default()).expect("alice");
        let mut bob = MlsSession::new("2:bob", SessionConfig::default()).expect("bob");
        alice.create_group(b"g", T).expect("group");
        let c = alice
            .commit(&[bob.key_package().expect("kp")], &[])
            .expect("add");
        alice.confirm_pending_commit(T).expect("confirm");
        bob.join_from_welcome(&c.welcome.expect("welcome"), T)
            .expect("join");

        // Alice, in league with the server, renews her leaf under another name, same key.
        let renamed = CredentialWithKey {
            credential: BasicCredential::new(b"1:carol".to_vec()).into(),
            signature_key: alice.signer.public().to_vec().into(),
        };
        let group = alice.group.as_mut().expect("group");
        let bundle = group
            .commit_builder()
            .force_self_update(true)
            .leaf_node_parameters(
                LeafNodeParameters::builder()
                    .with_credential_with_key(renamed)
                    .build(),
            )
            .load_psks(alice.provider.storage())
            .expect("psks")
            .build(
                alice.provider.rand(),
                alice.provider.crypto(),
                &alice.signer,
                |_| true,
            )
            .expect("build")
            .stage_commit(&alice.provider)
            .expect("stage");
        let (commit, _, _) = bundle.into_messages();
        let bytes = commit.to_bytes().expect("bytes");
        assert!(matches!(
            bob.process(&bytes, T),
            Err(MlsError::Peer(PeerFault::ForbiddenProposal(
                "credential-changing commit"
            )))
        ));
        // Bob stays in the epoch; an honest renewal (same name, same key) goes through.
        let group = alice.group.as_mut().expect("group");
        group
            .clear_pending_commit(alice.provider.storage())
            .expect("clear");
        let honest = alice.commit(&[], &[]).expect("renewal");
        assert!(bob.process(&honest.commit, T).is_ok());
    }
}
