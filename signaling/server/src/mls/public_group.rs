//! The delivery service's public copy of a room's MLS group (RFC 9420 §12.4, as a "public
//! group"): the ratchet tree with every member's credential and signature key, and the
//! group context, but no secret. Each commit is verified against it before the room accepts
//! the commit: its framing, epoch and sender, the sender's signature, the tree and path it
//! makes, and what it adds and removes. The result says exactly who goes and who comes, so
//! the room compares it with what it queued rather than believing the committer.
//!
//! openmls's `PublicGroup` does the RFC's checks with [`VerifyOnlyCrypto`], which can hash
//! and verify and do nothing else: no frame key, or any other secret, can be derived here.

use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_memory_storage::MemoryStorage;
use thiserror::Error;

use super::framing::kind;
use super::verify_crypto::VerifyOnlyCrypto;

/// Why an MLS message was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The bytes do not parse as the MLS structure expected.
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    /// A well-formed message of another kind.
    #[error("expected {expected}, got {got}")]
    WrongKind {
        expected: &'static str,
        got: &'static str,
    },
    #[error("message is for another group")]
    WrongGroup,
    #[error("message is for epoch {got}, the group is at {expected}")]
    WrongEpoch { expected: u64, got: u64 },
    /// The cipher suite is not one the server can verify.
    #[error("cipher suite {0:?} is not supported here")]
    UnsupportedCiphersuite(Ciphersuite),
    /// The RFC's validation failed: a bad signature, tree, path, or proposal.
    #[error("invalid: {0}")]
    Invalid(String),
    /// Not sent by a member (external commits and proposals are not offered).
    #[error("the sender is not a member of the group")]
    NotFromAMember,
    /// A proposal this delivery service does not relay: adds go through its queue, and
    /// pre-shared keys, re-initialisation, external inits and extension changes are not used.
    #[error("{0} proposals are not accepted")]
    ForbiddenProposal(&'static str),
    /// A member may remove only itself by proposal.
    #[error("a member may propose only its own removal")]
    RemovesAnother,
    /// A leaf node that changes its owner's credential.
    #[error("leaf {0} would change its credential")]
    CredentialChanged(u32),
    /// A credential that is not a basic credential.
    #[error("leaf credential is not a basic credential")]
    NotABasicCredential,
    /// A Welcome that is not for exactly the key packages the commit adds.
    #[error("the welcome is not for the members the commit adds")]
    WelcomeMismatch,
    /// A GroupInfo that does not describe the epoch the commit made.
    #[error("the group info does not match the new epoch")]
    GroupInfoMismatch,
    /// The group created is not the one asked for: another id or epoch, or other members.
    #[error("the new group is not as asked: {0}")]
    UnexpectedGroup(String),
}

/// A leaf of the public tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicLeaf {
    pub index: u32,
    /// The identity in its basic credential.
    pub identity: Vec<u8>,
    pub signature_key: Vec<u8>,
}

/// A key package a commit adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedKeyPackage {
    /// Its reference (RFC 9420 §5.2), as a Welcome names it.
    pub reference: Vec<u8>,
    /// The identity in its credential.
    pub identity: Vec<u8>,
}

/// A commit that passed verification, with what it does, waiting to be applied.
#[derive(Debug)]
pub struct VerifiedCommit {
    /// The committer's leaf.
    pub sender: u32,
    pub adds: Vec<AddedKeyPackage>,
    /// The leaves it removes (by Remove or SelfRemove, by value or by reference).
    pub removes: Vec<u32>,
    staged: StagedCommit,
}

impl VerifiedCommit {
    /// Checks that `bytes` are a GroupInfo of the epoch this commit makes: the same group
    /// context (id, epoch, tree hash, transcript hash, extensions).
    pub fn check_group_info(&self, bytes: &[u8]) -> Result<(), VerifyError> {
        let info = match decode(bytes, "group info")? {
            MlsMessageBodyIn::GroupInfo(gi) => gi,
            other => {
                return Err(VerifyError::WrongKind {
                    expected: "group info",
                    got: kind(&other),
                });
            }
        };
        let ours = self.staged.group_context().tls_serialize_detached();
        let theirs = info.group_context().tls_serialize_detached();
        match (ours, theirs) {
            (Ok(a), Ok(b)) if a == b => Ok(()),
            _ => Err(VerifyError::GroupInfoMismatch),
        }
    }
}

/// A proposal that passed verification: the sender's own removal or update.
#[derive(Debug)]
pub struct VerifiedProposal {
    pub sender: u32,
    /// It removes its sender (a polite leave).
    pub self_remove: bool,
    queued: QueuedProposal,
}

/// The public group state of one MLS group.
pub struct PublicTree {
    group: PublicGroup,
    storage: MemoryStorage,
}

impl std::fmt::Debug for PublicTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicTree")
            .field("epoch", &self.epoch())
            .field("members", &self.group.members().count())
            .finish()
    }
}

fn decode(bytes: &[u8], what: &'static str) -> Result<MlsMessageBodyIn, VerifyError> {
    super::framing::parse(bytes).map_err(|e| VerifyError::Malformed {
        what,
        reason: e.to_string(),
    })
}

fn identity_of(credential: &Credential) -> Result<Vec<u8>, VerifyError> {
    BasicCredential::try_from(credential.clone())
        .map(|c| c.identity().to_vec())
        .map_err(|_| VerifyError::NotABasicCredential)
}

fn proposal_kind(p: &Proposal) -> &'static str {
    match p {
        Proposal::Add(_) => "add",
        Proposal::Update(_) => "update",
        Proposal::Remove(_) => "remove",
        Proposal::PreSharedKey(_) => "pre-shared key",
        Proposal::ReInit(_) => "re-init",
        Proposal::ExternalInit(_) => "external init",
        Proposal::GroupContextExtensions(_) => "group context extensions",
        Proposal::SelfRemove => "self remove",
        #[allow(unreachable_patterns)]
        _ => "custom",
    }
}

/// A key package's reference (RFC 9420 §5.2, how a Welcome names the member it is for) and
/// its signature key (the device), once its signature verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPackageFacts {
    pub reference: Vec<u8>,
    pub signature_key: Vec<u8>,
}

/// The facts of a key package sent as an `MLSMessage`.
pub fn key_package_facts(bytes: &[u8]) -> Result<KeyPackageFacts, VerifyError> {
    match decode(bytes, "key package")? {
        MlsMessageBodyIn::KeyPackage(kp) => {
            let kp = kp
                .validate(&VerifyOnlyCrypto, ProtocolVersion::Mls10)
                .map_err(|e| VerifyError::Invalid(e.to_string()))?;
            Ok(KeyPackageFacts {
                reference: kp
                    .hash_ref(&VerifyOnlyCrypto)
                    .map(|r| r.as_slice().to_vec())
                    .map_err(|e| VerifyError::Invalid(e.to_string()))?,
                signature_key: kp.leaf_node().signature_key().as_slice().to_vec(),
            })
        }
        other => Err(VerifyError::WrongKind {
            expected: "key package",
            got: kind(&other),
        }),
    }
}

/// Checks that `bytes` are a Welcome for exactly the key packages `references` name.
pub fn check_welcome(bytes: &[u8], references: &[Vec<u8>]) -> Result<(), VerifyError> {
    let MlsMessageBodyIn::Welcome(welcome) = decode(bytes, "welcome")? else {
        return Err(VerifyError::WrongKind {
            expected: "welcome",
            got: "another message",
        });
    };
    let mut named: Vec<Vec<u8>> = welcome
        .secrets()
        .iter()
        .map(|s| s.new_member().as_slice().to_vec())
        .collect();
    let mut expected = references.to_vec();
    named.sort();
    expected.sort();
    if named != expected {
        return Err(VerifyError::WelcomeMismatch);
    }
    Ok(())
}

impl PublicTree {
    /// The group as its creator describes it in a GroupInfo with the ratchet tree extension.
    /// The signature, tree and leaves are verified; the group must have `group_id`, be at
    /// epoch 0 and hold one member whose identity is `creator`.
    pub fn from_group_info(
        bytes: &[u8],
        group_id: &[u8],
        creator: &[u8],
    ) -> Result<Self, VerifyError> {
        let info = match decode(bytes, "group info")? {
            MlsMessageBodyIn::GroupInfo(gi) => gi,
            other => {
                return Err(VerifyError::WrongKind {
                    expected: "group info",
                    got: kind(&other),
                });
            }
        };
        if info.group_id().as_slice() != group_id {
            return Err(VerifyError::WrongGroup);
        }
        if info.epoch().as_u64() != 0 {
            return Err(VerifyError::WrongEpoch {
                expected: 0,
                got: info.epoch().as_u64(),
            });
        }
        let ciphersuite = info.ciphersuite();
        if !super::verify_crypto::SUPPORTED.contains(&ciphersuite) {
            return Err(VerifyError::UnsupportedCiphersuite(ciphersuite));
        }
        let tree = info
            .extensions()
            .ratchet_tree()
            .ok_or_else(|| {
                VerifyError::UnexpectedGroup("no ratchet tree in the group info".into())
            })?
            .ratchet_tree()
            .clone();
        let storage = MemoryStorage::default();
        let (group, _) = PublicGroup::from_external(
            &VerifyOnlyCrypto,
            &storage,
            tree,
            info,
            ProposalStore::new(),
        )
        .map_err(|e| VerifyError::Invalid(e.to_string()))?;
        let tree = PublicTree { group, storage };
        let leaves = tree.leaves();
        if leaves.len() != 1 || leaves[0].identity != creator {
            return Err(VerifyError::UnexpectedGroup(format!(
                "{} members, expected only the creator",
                leaves.len()
            )));
        }
        Ok(tree)
    }

    /// The epoch.
    pub fn epoch(&self) -> u64 {
        self.group.group_context().epoch().as_u64()
    }

    /// The group id.
    pub fn group_id(&self) -> &[u8] {
        self.group.group_id().as_slice()
    }

    /// Every member's leaf.
    pub fn leaves(&self) -> Vec<PublicLeaf> {
        self.group
            .members()
            .map(|m| PublicLeaf {
                index: m.index.u32(),
                identity: identity_of(&m.credential)
                    .unwrap_or_else(|_| m.credential.serialized_content().to_vec()),
                signature_key: m.signature_key,
            })
            .collect()
    }

    fn protocol_message(&self, bytes: &[u8]) -> Result<ProtocolMessage, VerifyError> {
        let message: ProtocolMessage = match decode(bytes, "handshake message")? {
            MlsMessageBodyIn::PublicMessage(m) => m.into(),
            MlsMessageBodyIn::PrivateMessage(_) => {
                return Err(VerifyError::WrongKind {
                    expected: "public message",
                    got: "private message",
                });
            }
            other => {
                return Err(VerifyError::WrongKind {
                    expected: "public message",
                    got: kind(&other),
                });
            }
        };
        if message.group_id() != self.group.group_id() {
            return Err(VerifyError::WrongGroup);
        }
        if message.epoch().as_u64() != self.epoch() {
            return Err(VerifyError::WrongEpoch {
                expected: self.epoch(),
                got: message.epoch().as_u64(),
            });
        }
        Ok(message)
    }

    fn sender_leaf(sender: &Sender) -> Result<u32, VerifyError> {
        match sender {
            Sender::Member(leaf) => Ok(leaf.u32()),
            _ => Err(VerifyError::NotFromAMember),
        }
    }

    /// The credential identity of the member at `leaf` now.
    fn identity_at(&self, leaf: u32) -> Option<Vec<u8>> {
        self.group
            .leaf(LeafNodeIndex::new(leaf))
            .and_then(|l| identity_of(l.credential()).ok())
    }

    fn check_same_credential(&self, leaf: u32, node: &LeafNode) -> Result<(), VerifyError> {
        match (self.identity_at(leaf), identity_of(node.credential())) {
            (Some(before), Ok(after)) if before == after => Ok(()),
            _ => Err(VerifyError::CredentialChanged(leaf)),
        }
    }

    /// Runs openmls's public processing on a handshake message of `content` type for the
    /// current epoch; its sender's leaf and what it holds.
    fn process(
        &self,
        bytes: &[u8],
        content: ContentType,
        expected: &'static str,
    ) -> Result<(u32, ProcessedMessageContent), VerifyError> {
        let message = self.protocol_message(bytes)?;
        if message.content_type() != content {
            return Err(VerifyError::WrongKind {
                expected,
                got: "another handshake message",
            });
        }
        let processed = self
            .group
            .process_message(&VerifyOnlyCrypto, message)
            .map_err(|e| VerifyError::Invalid(e.to_string()))?;
        let sender = Self::sender_leaf(processed.sender())?;
        Ok((sender, processed.into_content()))
    }

    /// Verifies a commit for the current epoch from a member. Nothing changes until
    /// [`PublicTree::apply`].
    pub fn verify_commit(&self, bytes: &[u8]) -> Result<VerifiedCommit, VerifyError> {
        let (sender, content) = self.process(bytes, ContentType::Commit, "commit")?;
        let ProcessedMessageContent::StagedCommitMessage(staged) = content else {
            return Err(VerifyError::WrongKind {
                expected: "commit",
                got: "another handshake message",
            });
        };
        let mut removes = Vec::new();
        let mut adds = Vec::new();
        for queued in staged.queued_proposals() {
            match queued.proposal() {
                Proposal::Add(add) => {
                    let kp = add.key_package();
                    adds.push(AddedKeyPackage {
                        reference: kp
                            .hash_ref(&VerifyOnlyCrypto)
                            .map_err(|e| VerifyError::Invalid(e.to_string()))?
                            .as_slice()
                            .to_vec(),
                        identity: identity_of(kp.leaf_node().credential())?,
                    });
                }
                Proposal::Remove(r) => removes.push(r.removed().u32()),
                Proposal::SelfRemove => removes.push(Self::sender_leaf(queued.sender())?),
                Proposal::Update(u) => {
                    let owner = Self::sender_leaf(queued.sender())?;
                    self.check_same_credential(owner, u.leaf_node())?;
                }
                other => return Err(VerifyError::ForbiddenProposal(proposal_kind(other))),
            }
        }
        if let Some(node) = staged.update_path_leaf_node() {
            self.check_same_credential(sender, node)?;
        }
        removes.sort_unstable();
        removes.dedup();
        Ok(VerifiedCommit {
            sender,
            adds,
            removes,
            staged: *staged,
        })
    }

    /// Moves to the epoch a verified commit makes.
    pub fn apply(&mut self, commit: VerifiedCommit) -> Result<(), VerifyError> {
        self.group
            .merge_commit(&self.storage, commit.staged)
            .map_err(|e| VerifyError::Invalid(format!("merging: {e:?}")))
    }

    /// Verifies a proposal from a member: only its own removal or an update of its own leaf
    /// that keeps its credential. Kept (see [`PublicTree::keep`]) so that commits may refer
    /// to it.
    pub fn verify_proposal(&self, bytes: &[u8]) -> Result<VerifiedProposal, VerifyError> {
        let (sender, content) = self.process(bytes, ContentType::Proposal, "proposal")?;
        let ProcessedMessageContent::ProposalMessage(queued) = content else {
            return Err(VerifyError::NotFromAMember);
        };
        let self_remove = match queued.proposal() {
            Proposal::SelfRemove => true,
            Proposal::Remove(r) if r.removed().u32() == sender => true,
            Proposal::Remove(_) => return Err(VerifyError::RemovesAnother),
            Proposal::Update(u) => {
                self.check_same_credential(sender, u.leaf_node())?;
                false
            }
            other => return Err(VerifyError::ForbiddenProposal(proposal_kind(other))),
        };
        Ok(VerifiedProposal {
            sender,
            self_remove,
            queued: *queued,
        })
    }

    /// Keeps a verified proposal until the next commit.
    pub fn keep(&mut self, proposal: VerifiedProposal) -> Result<(), VerifyError> {
        self.group
            .add_proposal(&self.storage, proposal.queued)
            .map_err(|e| VerifyError::Invalid(format!("storing: {e:?}")))
    }
}
