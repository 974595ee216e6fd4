//! Identity, key packages, and creating or joining a group (RFC 9420 §10, §11, §12.4.3.1).
//! A member joins only from a Welcome: external commits (§12.4.3.2) are not offered, and
//! [`super::processing`] refuses them.

use std::time::Duration;

use openmls::prelude::*;
use openmls_rust_crypto::OpenMlsRustCrypto;

use super::wire::{self, decode, encode, kind};
use super::{DeviceKey, MlsSession, SessionConfig};
use crate::mls::error::{Misuse, MlsError, PeerFault};
use crate::mls::keyring::Keyring;

impl MlsSession {
    /// A new member identity (a basic credential with a fresh signature key) and no group yet.
    pub fn new(identity: impl Into<Vec<u8>>, config: SessionConfig) -> Result<Self, MlsError> {
        Self::with_device_key(identity, DeviceKey::generate(config.ciphersuite)?, config)
    }

    /// A member identity whose credential carries this device's own signature key.
    pub fn with_device_key(
        identity: impl Into<Vec<u8>>,
        signer: DeviceKey,
        config: SessionConfig,
    ) -> Result<Self, MlsError> {
        let identity = identity.into();
        let provider = OpenMlsRustCrypto::default();
        signer
            .pair()
            .store(provider.storage())
            .map_err(|e| MlsError::Internal(format!("storing the signature key: {e:?}")))?;
        let credential = CredentialWithKey {
            credential: BasicCredential::new(identity.clone()).into(),
            signature_key: signer.public().to_vec().into(),
        };
        Ok(MlsSession {
            keyring: Keyring::new(config.keyring),
            config,
            provider,
            signer,
            credential,
            identity,
            group: None,
        })
    }

    fn create_config(&self) -> MlsGroupCreateConfig {
        MlsGroupCreateConfig::builder()
            .ciphersuite(self.config.ciphersuite)
            .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(true)
            .build()
    }

    pub(super) fn join_config(&self) -> MlsGroupJoinConfig {
        MlsGroupJoinConfig::builder()
            .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(true)
            .build()
    }

    /// A fresh key package (as an `MLSMessage`) that others use to add this member. Each one
    /// is good for one join.
    pub fn key_package(&mut self) -> Result<Vec<u8>, MlsError> {
        let bundle = KeyPackage::builder()
            .build(
                self.config.ciphersuite,
                &self.provider,
                &self.signer,
                self.credential.clone(),
            )
            .map_err(|e| MlsError::Internal(format!("key package: {e}")))?;
        encode(&MlsMessageOut::from(bundle.key_package().clone()))
    }

    /// Creates a group with this member alone in it, at epoch 0, and installs its keys.
    pub fn create_group(&mut self, group_id: &[u8], now: Duration) -> Result<(), MlsError> {
        if self.group.is_some() {
            return Err(MlsError::Misuse(Misuse::AlreadyInGroup));
        }
        let group = MlsGroup::new_with_group_id(
            &self.provider,
            &self.signer,
            &self.create_config(),
            GroupId::from_slice(group_id),
            self.credential.clone(),
        )
        .map_err(|e| MlsError::Internal(format!("creating the group: {e}")))?;
        self.group = Some(group);
        self.enter_epoch(Vec::new(), now)?;
        Ok(())
    }

    /// Joins from a Welcome that added one of this member's key packages.
    pub fn join_from_welcome(&mut self, welcome: &[u8], now: Duration) -> Result<(), MlsError> {
        if self.group.is_some() {
            return Err(MlsError::Misuse(Misuse::AlreadyInGroup));
        }
        let welcome = match decode(welcome, "welcome")? {
            MlsMessageBodyIn::Welcome(w) => w,
            other => {
                return Err(MlsError::Peer(PeerFault::UnexpectedMessage {
                    expected: "welcome",
                    got: kind(&other),
                }));
            }
        };
        let group =
            StagedWelcome::new_from_welcome(&self.provider, &self.join_config(), welcome, None)
                .and_then(|staged| staged.into_group(&self.provider))
                .map_err(|e| MlsError::Peer(PeerFault::Welcome(e.to_string())))?;
        self.group = Some(group);
        self.enter_epoch(Vec::new(), now)?;
        Ok(())
    }

    /// The group's current GroupInfo, with its ratchet tree: the delivery service builds its
    /// public copy of the tree from the creator's.
    pub fn group_info(&self) -> Result<Vec<u8>, MlsError> {
        let group = self
            .group
            .as_ref()
            .ok_or(MlsError::Misuse(Misuse::NotInGroup))?;
        let gi = group
            .export_group_info(self.provider.crypto(), &self.signer, true)
            .map_err(|e| MlsError::Internal(format!("group info: {e}")))?;
        encode(&gi)
    }

    /// Forgets the group (the delivery service re-created it, or this member could not follow
    /// it): the session can then join or create another. The keys held stay for their grace
    /// time, until a key of the next group replaces them.
    pub fn forget_group(&mut self, now: Duration) {
        if let Some(mut group) = self.group.take() {
            // Out of storage too: openmls refuses a Welcome into a group id it still holds.
            // (The in-memory storage does not fail.)
            let _ = group.delete(self.provider.storage());
        }
        self.keyring.retire(now);
    }

    /// The identity in a key package's credential (its validity is [`Self::validate_key_package`]'s
    /// to check).
    pub fn key_package_identity(&self, bytes: &[u8]) -> Result<Vec<u8>, MlsError> {
        let kp = wire::key_package(bytes, self.provider.crypto())?;
        BasicCredential::try_from(kp.leaf_node().credential().clone())
            .map(|c| c.identity().to_vec())
            .map_err(|e| MlsError::Peer(PeerFault::InvalidKeyPackage(format!("credential: {e}"))))
    }

    /// Checks that `bytes` are a valid key package; the delivery service's clients use this
    /// before queueing an add.
    pub fn validate_key_package(&self, bytes: &[u8]) -> Result<(), MlsError> {
        wire::key_package(bytes, self.provider.crypto()).map(|_| ())
    }
}
