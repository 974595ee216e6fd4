//! Errors of the MLS key schedule and session. Like openmls, they keep apart what a peer sent
//! wrong, what the caller asked wrongly, and what is this crate's (or openmls's) own fault.

use thiserror::Error;

/// The keyring refused a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// Epochs only move forward; reinstalling one would restart its counters.
    #[error("epoch {offered} is not newer than the current epoch {current}")]
    EpochNotNewer { current: u64, offered: u64 },
    /// The base key is empty.
    #[error("empty base key")]
    EmptyBaseKey,
    /// A leaf index beyond any real group ([`super::keyring::MAX_LEAVES`]).
    #[error("leaf index {leaf} is out of range")]
    LeafOutOfRange { leaf: u32 },
}

/// An MLS operation failed: by whose fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MlsError {
    /// A peer (another member, or the delivery service) sent something wrong: log it, tell the
    /// server if the protocol says so, and go on.
    #[error(transparent)]
    Peer(#[from] PeerFault),
    /// The caller asked for something this session cannot do in its state: a bug of the
    /// caller's.
    #[error(transparent)]
    Misuse(#[from] Misuse),
    /// The keyring refused the new epoch.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// openmls or this crate failed in a way no input should cause: a bug.
    #[error("internal MLS error: {0}")]
    Internal(String),
}

/// What a peer sent wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PeerFault {
    /// Bytes from the network are not the MLS structure expected.
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    /// A well-formed message of the wrong kind.
    #[error("expected {expected}, got {got}")]
    UnexpectedMessage {
        expected: &'static str,
        got: &'static str,
    },
    /// A message for another group.
    #[error("message is for another group")]
    WrongGroup,
    /// A handshake message from an epoch this member has left behind.
    #[error("message from epoch {message_epoch}, but the group is at epoch {current}")]
    StaleEpoch { message_epoch: u64, current: u64 },
    /// A handshake message from an epoch this member has not reached.
    #[error("message from future epoch {message_epoch}; the group is at epoch {current}")]
    FutureEpoch { message_epoch: u64, current: u64 },
    /// A handshake message not sent by a member: an external commit or an external proposal
    /// (RFC 9420 §12.4.3.2, §12.1.8). Members join only from a Welcome, through the delivery
    /// service's queue.
    #[error("refused a handshake message from outside the group (an external commit or proposal)")]
    NotFromAMember,
    /// A peer's message failed MLS validation (signature, membership tag, tree, ...).
    #[error("invalid MLS message: {0}")]
    Invalid(String),
    /// A proposal this member does not keep or follow: adds come only through the delivery
    /// service's queue (in a commit), a member may propose only its own removal or update,
    /// and pre-shared keys, re-initialisation, external inits and extension changes are not
    /// used.
    #[error("refused a {0} proposal")]
    ForbiddenProposal(&'static str),
    /// A key package that failed validation.
    #[error("invalid key package: {0}")]
    InvalidKeyPackage(String),
    /// A Welcome that does not add this member (no key package of ours matches).
    #[error("welcome cannot be joined: {0}")]
    Welcome(String),
}

/// What the caller asked wrongly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Misuse {
    /// The operation needs a group and this session has none (or was removed).
    #[error("not a member of a group")]
    NotInGroup,
    /// The session already has a group.
    #[error("already a member of a group")]
    AlreadyInGroup,
    /// A commit of ours is waiting for the delivery service's verdict.
    #[error("a commit of ours is pending; confirm or discard it first")]
    CommitPending,
    /// A proposal waits for the next commit: no application message until that epoch.
    #[error("a proposal waits for the next commit")]
    ProposalPending,
    /// Confirm or discard with no pending commit.
    #[error("no pending commit")]
    NoPendingCommit,
    /// A commit with nothing in it.
    #[error("nothing to commit")]
    EmptyCommit,
    /// A leaf index that names no member.
    #[error("leaf {0} is not a member")]
    NotAMember(u32),
}
