//! Each epoch's SFrame keys for the media worker: per member, its KID (RFC 9605 §5.2: leaf and
//! epoch bits) and the key and salt of §4.4.2.

use media_crypto::mls::{EpochKey, KeyringConfig};
use media_crypto::sframe::{CipherSuite, derive_key_material};
use serde::Serialize;

/// One sender's key in one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SenderKey {
    pub leaf: u32,
    pub kid: u64,
    pub key: Vec<u8>,
    pub salt: Vec<u8>,
}

/// An epoch's keys: ours to send with, and every member's to receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EpochKeys {
    pub suite: u16,
    /// The MLS group (hex): epochs count from 0 in each group, so keys of another group
    /// replace all others at once.
    pub group: String,
    pub epoch: u64,
    /// The KID this participant sends under.
    pub own_kid: Option<u64>,
    pub senders: Vec<SenderKey>,
}

/// §4.4.2 for one KID under `suite`.
pub fn sframe_key(suite: u16, kid: u64, base_key: &[u8]) -> Result<SenderKey, String> {
    let suite = CipherSuite::from_id(suite).map_err(|e| e.to_string())?;
    let material = derive_key_material(suite, kid, base_key).map_err(|e| e.to_string())?;
    Ok(SenderKey {
        leaf: 0,
        kid,
        key: material.key.to_vec(),
        salt: material.salt.to_vec(),
    })
}

/// The keys of every member of `key`'s epoch.
pub fn epoch_keys(key: &EpochKey, config: &KeyringConfig) -> Result<EpochKeys, String> {
    let layout = config.kid_layout;
    let mut senders = Vec::with_capacity(key.members.len());
    for &leaf in &key.members {
        let kid = layout.kid(leaf, key.epoch);
        let mut sender = sframe_key(config.suite.id(), kid, &key.base_key)?;
        sender.leaf = leaf;
        senders.push(sender);
    }
    Ok(EpochKeys {
        suite: config.suite.id(),
        group: key.group_id.iter().map(|b| format!("{b:02x}")).collect(),
        epoch: key.epoch,
        own_kid: key.own_leaf.map(|leaf| layout.kid(leaf, key.epoch)),
        senders,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use media_crypto::mls::Keyring;

    #[test]
    fn the_keys_handed_to_the_worker_open_what_the_keyring_seals() {
        let config = KeyringConfig::default();
        let key = EpochKey {
            group_id: Vec::new(),
            epoch: 3,
            base_key: vec![7u8; 16].into(),
            own_leaf: Some(1),
            members: vec![0, 1, 4],
        };
        let mut keyring = Keyring::new(config);
        keyring
            .install(key.clone(), std::time::Duration::ZERO)
            .expect("install");
        let frame = keyring.encrypt(b"", b"hello").expect("encrypt");
        let keys = epoch_keys(&key, &config).expect("keys");
        assert_eq!(keys.own_kid, Some(config.kid_layout.kid(1, 3)));
        assert_eq!(keys.senders.len(), 3);
        let ours = keys
            .senders
            .iter()
            .find(|s| Some(s.kid) == keys.own_kid)
            .expect("own key");
        let suite = CipherSuite::from_id(keys.suite).expect("suite");
        let fk =
            media_crypto::sframe::FrameKey::derive(suite, ours.kid, &key.base_key).expect("derive");
        assert_eq!(fk.decrypt(b"", &frame).expect("opens"), b"hello");
        let m = derive_key_material(suite, ours.kid, &key.base_key).expect("material");
        assert_eq!(m.key.to_vec(), ours.key);
        assert_eq!(m.salt.to_vec(), ours.salt);
    }
}
