//! What the delivery service reads of MLS (RFC 9420), all of it public: the framing of
//! messages ([`framing`]), and a public copy of each group's ratchet tree against which
//! commits are verified ([`public_group`]) with a provider that can only hash and verify
//! signatures ([`verify_crypto`]). Nothing here can derive a secret.

pub mod framing;
pub mod public_group;
pub mod verify_crypto;

pub use public_group::{PublicLeaf, PublicTree, VerifiedCommit, VerifiedProposal, VerifyError};
