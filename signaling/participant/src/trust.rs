//! Trust on first use, per identity: the device keys this device has seen each identity use,
//! and which of them a person verified by comparing fingerprints
//! ([`media_crypto::mls::Fingerprint`]) out of band. The server names people, but it cannot
//! make a new device look like a known one: a known identity with an unknown key is a new
//! device, and a verified identity with an unknown key is a loud warning.
//!
//! The store is plain data (JSON), kept by the device (the browser keeps it in IndexedDB).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One device key seen for an identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownDevice {
    /// The signature key, in hex.
    pub key: String,
    /// A person compared its fingerprint and marked it verified.
    pub verified: bool,
    /// When it was first seen (milliseconds since the Unix epoch, as the caller counts).
    pub first_seen: u64,
}

/// What the store knows of a member's device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// This identity was never seen before: its key is remembered from now on.
    FirstSeen,
    /// A key seen before for this identity.
    Known,
    /// A key seen before and verified.
    Verified,
    /// This identity was seen before with other keys: a new device (or someone else).
    NewDevice,
    /// This identity was verified on another key: whoever this is, it is not the verified
    /// device (until this key is verified too).
    VerifiedKeyChanged,
}

/// The devices seen per identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustStore {
    identities: BTreeMap<String, Vec<KnownDevice>>,
}

/// A store that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable trust store: {0}")]
pub struct TrustStoreError(String);

fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// Devices remembered per identity at most (the oldest unverified go first).
const MAX_DEVICES: usize = 32;

impl TrustStore {
    /// An empty store.
    pub fn new() -> Self {
        TrustStore::default()
    }

    /// A store saved by [`TrustStore::to_json`].
    pub fn from_json(text: &str) -> Result<Self, TrustStoreError> {
        serde_json::from_str(text).map_err(|e| TrustStoreError(e.to_string()))
    }

    /// The store as JSON, to keep.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// What is known of `identity` holding `key`, without changing anything.
    pub fn assess(&self, identity: &str, key: &[u8]) -> DeviceStatus {
        let Some(devices) = self.identities.get(identity) else {
            return DeviceStatus::FirstSeen;
        };
        let key = hex(key);
        let verified_elsewhere = devices.iter().any(|d| d.verified && d.key != key);
        match devices.iter().find(|d| d.key == key) {
            Some(d) if d.verified => DeviceStatus::Verified,
            // Seen before, but this identity is verified on another key: it stays loud until
            // this key is verified too.
            _ if verified_elsewhere => DeviceStatus::VerifiedKeyChanged,
            Some(_) => DeviceStatus::Known,
            None => DeviceStatus::NewDevice,
        }
    }

    /// Assesses, then remembers the key as seen for the identity.
    pub fn observe(&mut self, identity: &str, key: &[u8], now_ms: u64) -> DeviceStatus {
        let status = self.assess(identity, key);
        let devices = self.identities.entry(identity.to_owned()).or_default();
        let key = hex(key);
        if !devices.iter().any(|d| d.key == key) {
            devices.push(KnownDevice {
                key,
                verified: false,
                first_seen: now_ms,
            });
            if devices.len() > MAX_DEVICES
                && let Some(i) = devices.iter().position(|d| !d.verified)
            {
                devices.remove(i);
            }
        }
        status
    }

    /// A person compared the fingerprint of `identity` holding `key` and it matched.
    pub fn verify(&mut self, identity: &str, key: &[u8], now_ms: u64) {
        self.observe(identity, key, now_ms);
        let key = hex(key);
        if let Some(d) = self
            .identities
            .get_mut(identity)
            .and_then(|ds| ds.iter_mut().find(|d| d.key == key))
        {
            d.verified = true;
        }
    }

    /// Forgets that `identity` holding `key` was verified.
    pub fn unverify(&mut self, identity: &str, key: &[u8]) {
        let key = hex(key);
        if let Some(d) = self
            .identities
            .get_mut(identity)
            .and_then(|ds| ds.iter_mut().find(|d| d.key == key))
        {
            d.verified = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sight_then_known_then_a_new_device() {
        let mut t = TrustStore::new();
        assert_eq!(t.observe("alice", &[1; 32], 1), DeviceStatus::FirstSeen);
        assert_eq!(t.observe("alice", &[1; 32], 2), DeviceStatus::Known);
        assert_eq!(t.assess("alice", &[2; 32]), DeviceStatus::NewDevice);
        assert_eq!(t.assess("bob", &[1; 32]), DeviceStatus::FirstSeen);
    }

    #[test]
    fn a_verified_identity_on_another_key_is_a_loud_warning_and_it_survives_a_save() {
        let mut t = TrustStore::new();
        t.verify("alice", &[1; 32], 1);
        let t = TrustStore::from_json(&t.to_json()).expect("parse");
        assert_eq!(t.assess("alice", &[1; 32]), DeviceStatus::Verified);
        assert_eq!(
            t.assess("alice", &[9; 32]),
            DeviceStatus::VerifiedKeyChanged
        );
        assert!(TrustStore::from_json("not json").is_err());
    }

    #[test]
    fn the_store_stays_small() {
        let mut t = TrustStore::new();
        t.verify("alice", &[0; 32], 0);
        for i in 1..100u8 {
            t.observe("alice", &[i; 32], u64::from(i));
        }
        assert_eq!(t.identities["alice"].len(), MAX_DEVICES);
        assert_eq!(t.assess("alice", &[0; 32]), DeviceStatus::Verified);
    }
}
