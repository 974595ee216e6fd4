//! One member's MLS session (RFC 9420, through openmls), driving its SFrame keyring.
//!
//! Split by operation, as openmls splits `MlsGroup`: [`creation`] (identity, key packages,
//! creating and joining), [`membership`] (commits that add and remove, and their verdict from
//! the delivery service), [`processing`] (messages from others). Every new epoch installs its
//! base key, `MLS-Exporter("SFrame 1.0 Base Key", "", Nk)`, in the keyring.
//!
//! Handshake messages go out as MLS `PublicMessage`s, so the delivery service can read their
//! group, epoch and content type to order commits (see docs/decisions). Frame keys never leave
//! the members.

mod application;
mod creation;
mod device_key;
mod membership;
mod processing;
mod wire;

use std::time::Duration;

use openmls::prelude::*;
use openmls_rust_crypto::OpenMlsRustCrypto;
use zeroize::Zeroizing;

use super::error::{Misuse, MlsError};
use super::keyring::{EpochKey, Keyring, KeyringConfig};
use super::safety_number::SafetyNumber;

pub use application::Application;
pub use device_key::DeviceKey;
pub use membership::CommitOutput;
pub use openmls::prelude::Ciphersuite as MlsCiphersuite;
pub use processing::Processed;

/// The MLS exporter label of RFC 9605 §5.2.
pub const SFRAME_EXPORTER_LABEL: &str = "SFrame 1.0 Base Key";

/// How a session runs its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// The MLS cipher suite; the default is MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519.
    pub ciphersuite: MlsCiphersuite,
    /// The SFrame keyring.
    pub keyring: KeyringConfig,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            ciphersuite: Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
            keyring: KeyringConfig::default(),
        }
    }
}

/// A group member as the group itself states it: from the credentials in the ratchet tree,
/// not from anything a server says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    /// The member's leaf index (its SFrame sender index).
    pub leaf: u32,
    /// The identity in its credential.
    pub identity: Vec<u8>,
    /// Its signature public key.
    pub signature_key: Vec<u8>,
}

impl RosterEntry {
    /// The identity as text (invalid UTF-8 replaced).
    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.identity).into_owned()
    }
}

/// What an epoch change did to the roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochChange {
    /// The new epoch.
    pub epoch: u64,
    /// Members who joined in it.
    pub added: Vec<RosterEntry>,
    /// Members who left in it.
    pub removed: Vec<RosterEntry>,
}

/// One member's MLS state and SFrame keys.
pub struct MlsSession {
    config: SessionConfig,
    provider: OpenMlsRustCrypto,
    signer: DeviceKey,
    credential: CredentialWithKey,
    identity: Vec<u8>,
    group: Option<MlsGroup>,
    keyring: Keyring,
}

impl std::fmt::Debug for MlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlsSession")
            .field("identity", &String::from_utf8_lossy(&self.identity))
            .field("epoch", &self.epoch())
            .field("own_leaf", &self.own_leaf())
            .field("keyring", &self.keyring)
            .finish_non_exhaustive()
    }
}

impl MlsSession {
    /// The session's configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The identity in this member's credential.
    pub fn identity(&self) -> &[u8] {
        &self.identity
    }

    /// This device's signature key, which its credential carries (keep it to stay the same
    /// device across sessions).
    pub fn device_key(&self) -> &DeviceKey {
        &self.signer
    }

    /// True while this session is a member of a group.
    pub fn is_member(&self) -> bool {
        self.group
            .as_ref()
            .is_some_and(|g| g.is_active() && self.keyring.current_epoch().is_some())
    }

    /// The group ID.
    pub fn group_id(&self) -> Option<&[u8]> {
        self.group.as_ref().map(|g| g.group_id().as_slice())
    }

    /// The current epoch.
    pub fn epoch(&self) -> Option<u64> {
        self.group.as_ref().map(|g| g.epoch().as_u64())
    }

    /// This member's leaf index.
    pub fn own_leaf(&self) -> Option<u32> {
        self.group.as_ref().map(|g| g.own_leaf_index().u32())
    }

    /// The roster of the current epoch, by leaf index.
    pub fn roster(&self) -> Vec<RosterEntry> {
        self.group.as_ref().map(roster_of).unwrap_or_default()
    }

    /// The safety number of the current epoch: the same on every member's screen.
    pub fn safety_number(&self) -> Option<SafetyNumber> {
        self.group
            .as_ref()
            .map(|g| SafetyNumber::from_epoch_authenticator(g.epoch_authenticator().as_slice()))
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The keyring, to encrypt and decrypt frames.
    pub fn keyring_mut(&mut self) -> &mut Keyring {
        &mut self.keyring
    }

    /// The current epoch's key material, to hand to another keyring (a media worker).
    pub fn epoch_key(&self) -> Result<EpochKey, MlsError> {
        let group = self
            .group
            .as_ref()
            .ok_or(MlsError::Misuse(Misuse::NotInGroup))?;
        epoch_key_of(group, &self.provider, &self.config)
    }

    /// Installs the current epoch's keys in the keyring and reports the roster change.
    fn enter_epoch(
        &mut self,
        before: Vec<RosterEntry>,
        now: Duration,
    ) -> Result<EpochChange, MlsError> {
        let key = self.epoch_key()?;
        let epoch = key.epoch;
        self.keyring.install(key, now)?;
        let after = self.roster();
        Ok(EpochChange {
            epoch,
            added: after
                .iter()
                .filter(|a| !before.contains(a))
                .cloned()
                .collect(),
            removed: before.into_iter().filter(|b| !after.contains(b)).collect(),
        })
    }
}

fn roster_of(group: &MlsGroup) -> Vec<RosterEntry> {
    group
        .members()
        .map(|m| RosterEntry {
            leaf: m.index.u32(),
            identity: BasicCredential::try_from(m.credential.clone())
                .map(|c| c.identity().to_vec())
                .unwrap_or_else(|_| m.credential.serialized_content().to_vec()),
            signature_key: m.signature_key,
        })
        .collect()
}

fn epoch_key_of(
    group: &MlsGroup,
    provider: &OpenMlsRustCrypto,
    config: &SessionConfig,
) -> Result<EpochKey, MlsError> {
    let base_key = group
        .export_secret(
            provider.crypto(),
            SFRAME_EXPORTER_LABEL,
            b"",
            config.keyring.suite.key_len(),
        )
        .map_err(|e| match e {
            ExportSecretError::GroupStateError(_) => MlsError::Misuse(Misuse::NotInGroup),
            e => MlsError::Internal(e.to_string()),
        })?;
    Ok(EpochKey {
        group_id: group.group_id().as_slice().to_vec(),
        epoch: group.epoch().as_u64(),
        base_key: Zeroizing::new(base_key),
        own_leaf: Some(group.own_leaf_index().u32()),
        members: group.members().map(|m| m.index.u32()).collect(),
    })
}
