//! Trust on first use, per identity: the device keys this device has seen each identity use,
//! which of them the user accepted (the first one seen, or a new one the user acknowledged),
//! and which a person verified by comparing fingerprints
//! ([`media_crypto::mls::Fingerprint`]) out of band. The server names people, but it cannot
//! make a new device look like a known one: a known identity with a key the user has not
//! accepted is a new device until the user says so, and a verified identity with any other key
//! is a loud warning until that key is verified too. Whatever the connection does: the verdict
//! comes from the store, not from when the key was first met.
//!
//! The store is plain data, one record per identity (the browser keeps each record in
//! IndexedDB and merges concurrent writers with [`merge_devices`], which never loses a
//! verification). It is bounded: at most [`MAX_IDENTITIES`] identities (the least recently
//! seen without a verified device go first) and [`MAX_DEVICES`] keys per identity.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One device key seen for an identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownDevice {
    /// The signature key, in hex.
    pub key: String,
    /// A person compared its fingerprint and marked it verified.
    pub verified: bool,
    /// The user accepted it as this identity's device: the first key seen for an identity is
    /// accepted on first use, a later one only when the user acknowledges it.
    #[serde(default = "yes")]
    pub acknowledged: bool,
    /// When it was first seen (milliseconds since the Unix epoch, as the caller counts).
    pub first_seen: u64,
    /// When it was last seen (at most an hour off: not every sighting is written).
    #[serde(default)]
    pub last_seen: u64,
}

fn yes() -> bool {
    true
}

/// What the store knows of a member's device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// This identity was first seen in this visit, on this key (accepted on first use).
    FirstSeen,
    /// A key accepted before for this identity.
    Known,
    /// A key seen before and verified.
    Verified,
    /// This identity was seen before with other keys, and the user has not accepted this one:
    /// a new device (or someone else).
    NewDevice,
    /// This identity was verified on another key: whoever this is, it is not the verified
    /// device (until this key is verified too).
    VerifiedKeyChanged,
}

/// Identities remembered at most.
pub const MAX_IDENTITIES: usize = 1000;

/// Devices remembered per identity at most (the oldest unverified go first).
pub const MAX_DEVICES: usize = 32;

/// How stale a device's `last_seen` may get before a sighting is written again.
const LAST_SEEN_STEP_MS: u64 = 3_600_000;

/// What changed in a store since the last [`TrustStore::take_changes`]: records to write
/// (each merged with what is stored, [`merge_devices`]) and identities to forget.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustChanges {
    pub put: BTreeMap<String, Vec<KnownDevice>>,
    pub delete: Vec<String>,
}

/// The devices seen per identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustStore {
    identities: BTreeMap<String, Vec<KnownDevice>>,
    /// Identities changed since the last [`TrustStore::take_changes`].
    #[serde(skip)]
    changed: BTreeSet<String>,
    /// Identities dropped to keep the store bounded, not yet handed out.
    #[serde(skip)]
    forgotten: BTreeSet<String>,
}

/// A store that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable trust store: {0}")]
pub struct TrustStoreError(String);

fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// One identity's devices from two writers (two tabs, or a tab and what it loaded) as one: every
/// key either knows, verified or acknowledged if either says so (nothing is lost), first seen
/// at the earlier, last seen at the later time; bounded as the store is.
pub fn merge_devices(a: &[KnownDevice], b: &[KnownDevice]) -> Vec<KnownDevice> {
    let mut out: Vec<KnownDevice> = a.to_vec();
    for d in b {
        match out.iter_mut().find(|o| o.key == d.key) {
            Some(o) => {
                o.verified |= d.verified;
                o.acknowledged |= d.acknowledged;
                o.first_seen = o.first_seen.min(d.first_seen);
                o.last_seen = o.last_seen.max(d.last_seen);
            }
            None => out.push(d.clone()),
        }
    }
    bound_devices(&mut out);
    out
}

/// At most [`MAX_DEVICES`]: the least recently seen unverified ones go.
fn bound_devices(devices: &mut Vec<KnownDevice>) {
    while devices.len() > MAX_DEVICES {
        let Some(i) = devices
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.verified)
            .min_by_key(|(_, d)| d.last_seen.max(d.first_seen))
            .map(|(i, _)| i)
        else {
            break;
        };
        devices.remove(i);
    }
}

impl TrustStore {
    /// An empty store.
    pub fn new() -> Self {
        TrustStore::default()
    }

    /// A store saved by [`TrustStore::to_json`].
    pub fn from_json(text: &str) -> Result<Self, TrustStoreError> {
        serde_json::from_str(text).map_err(|e| TrustStoreError(e.to_string()))
    }

    /// The store as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// A store of records (identity → devices, as [`TrustChanges::put`] hands them out).
    pub fn from_records(text: &str) -> Result<Self, TrustStoreError> {
        let identities: BTreeMap<String, Vec<KnownDevice>> =
            serde_json::from_str(text).map_err(|e| TrustStoreError(e.to_string()))?;
        let mut store = TrustStore::new();
        store.merge(identities);
        Ok(store)
    }

    /// Takes in records written by another writer (another tab); true if anything changed.
    /// What this store holds is kept: nothing is lost either way.
    pub fn merge(&mut self, records: BTreeMap<String, Vec<KnownDevice>>) -> bool {
        let mut changed = false;
        for (identity, devices) in records {
            let mine = self.identities.get(&identity).cloned().unwrap_or_default();
            let merged = merge_devices(&mine, &devices);
            if merged != mine {
                self.identities.insert(identity, merged);
                changed = true;
            }
        }
        self.bound(None);
        changed
    }

    /// What is known of `identity` holding `key`, without changing anything; `since_ms` is
    /// when this visit began (an identity first seen since is "first seen").
    pub fn assess(&self, identity: &str, key: &[u8], since_ms: u64) -> DeviceStatus {
        let Some(devices) = self.identities.get(identity).filter(|d| !d.is_empty()) else {
            return DeviceStatus::FirstSeen;
        };
        let key = hex(key);
        let verified_elsewhere = devices.iter().any(|d| d.verified && d.key != key);
        let identity_first_seen = devices.iter().map(|d| d.first_seen).min().unwrap_or(0);
        match devices.iter().find(|d| d.key == key) {
            Some(d) if d.verified => DeviceStatus::Verified,
            // This identity is verified on another key: it stays loud until this key is
            // verified too.
            _ if verified_elsewhere => DeviceStatus::VerifiedKeyChanged,
            Some(d) if !d.acknowledged => DeviceStatus::NewDevice,
            Some(_) if identity_first_seen >= since_ms => DeviceStatus::FirstSeen,
            Some(_) => DeviceStatus::Known,
            None => DeviceStatus::NewDevice,
        }
    }

    /// Assesses, then remembers the key as seen for the identity (accepted if it is the
    /// identity's first).
    pub fn observe(
        &mut self,
        identity: &str,
        key: &[u8],
        now_ms: u64,
        since_ms: u64,
    ) -> DeviceStatus {
        let hex_key = hex(key);
        let devices = self.identities.entry(identity.to_owned()).or_default();
        let first = devices.is_empty();
        match devices.iter_mut().find(|d| d.key == hex_key) {
            Some(d) if now_ms < d.last_seen.saturating_add(LAST_SEEN_STEP_MS) => {}
            Some(d) => {
                d.last_seen = now_ms;
                self.changed.insert(identity.to_owned());
            }
            None => {
                devices.push(KnownDevice {
                    key: hex_key,
                    verified: false,
                    acknowledged: first,
                    first_seen: now_ms,
                    last_seen: now_ms,
                });
                bound_devices(devices);
                self.changed.insert(identity.to_owned());
            }
        }
        self.bound(Some(identity));
        self.assess(identity, key, since_ms)
    }

    fn device_mut(&mut self, identity: &str, key: &[u8]) -> Option<&mut KnownDevice> {
        let key = hex(key);
        self.identities
            .get_mut(identity)
            .and_then(|ds| ds.iter_mut().find(|d| d.key == key))
    }

    /// A person compared the fingerprint of `identity` holding `key` and it matched.
    pub fn verify(&mut self, identity: &str, key: &[u8], now_ms: u64) {
        self.observe(identity, key, now_ms, 0);
        if let Some(d) = self.device_mut(identity, key) {
            d.verified = true;
            d.acknowledged = true;
        }
        self.changed.insert(identity.to_owned());
    }

    /// The user accepts `key` as a device of `identity` (it is no longer "new").
    pub fn acknowledge(&mut self, identity: &str, key: &[u8], now_ms: u64) {
        self.observe(identity, key, now_ms, 0);
        if let Some(d) = self.device_mut(identity, key) {
            d.acknowledged = true;
        }
        self.changed.insert(identity.to_owned());
    }

    /// The records changed since the last call, and the identities dropped; `None` if
    /// nothing changed.
    pub fn take_changes(&mut self) -> Option<TrustChanges> {
        if self.changed.is_empty() && self.forgotten.is_empty() {
            return None;
        }
        let put = std::mem::take(&mut self.changed)
            .into_iter()
            .filter_map(|i| self.identities.get(&i).map(|d| (i, d.clone())))
            .collect();
        Some(TrustChanges {
            put,
            delete: std::mem::take(&mut self.forgotten).into_iter().collect(),
        })
    }

    /// At most [`MAX_IDENTITIES`]: the least recently seen identities without a verified
    /// device go (never `keep`, the one being looked at).
    fn bound(&mut self, keep: Option<&str>) {
        while self.identities.len() > MAX_IDENTITIES {
            let oldest = self
                .identities
                .iter()
                .filter(|(i, ds)| Some(i.as_str()) != keep && !ds.iter().any(|d| d.verified))
                .min_by_key(|(_, ds)| ds.iter().map(|d| d.last_seen.max(d.first_seen)).max())
                .map(|(i, _)| i.clone());
            let Some(identity) = oldest else { break };
            self.identities.remove(&identity);
            self.changed.remove(&identity);
            self.forgotten.insert(identity);
        }
    }

    /// How many identities are remembered.
    pub fn len(&self) -> usize {
        self.identities.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VISIT: u64 = 1_000;

    #[test]
    fn first_sight_then_known_then_a_new_device_until_acknowledged() {
        let mut t = TrustStore::new();
        assert_eq!(
            t.observe("alice", &[1; 32], VISIT, VISIT),
            DeviceStatus::FirstSeen
        );
        // Still "first seen" for the rest of this visit, "known" on the next.
        assert_eq!(t.assess("alice", &[1; 32], VISIT), DeviceStatus::FirstSeen);
        assert_eq!(t.assess("alice", &[1; 32], VISIT + 1), DeviceStatus::Known);
        // Another key: new, however often it is seen, until the user accepts it.
        assert_eq!(
            t.observe("alice", &[2; 32], VISIT, VISIT),
            DeviceStatus::NewDevice
        );
        assert_eq!(
            t.observe("alice", &[2; 32], VISIT + 5, VISIT),
            DeviceStatus::NewDevice
        );
        assert_eq!(
            t.assess("alice", &[2; 32], VISIT + 9),
            DeviceStatus::NewDevice
        );
        t.acknowledge("alice", &[2; 32], VISIT + 6);
        assert_eq!(t.assess("alice", &[2; 32], VISIT + 9), DeviceStatus::Known);
        assert_eq!(t.assess("bob", &[1; 32], VISIT), DeviceStatus::FirstSeen);
    }

    #[test]
    fn a_verified_identity_on_another_key_is_a_loud_warning_and_it_survives_a_save() {
        let mut t = TrustStore::new();
        t.verify("alice", &[1; 32], 1);
        let mut t = TrustStore::from_json(&t.to_json()).expect("parse");
        assert_eq!(t.assess("alice", &[1; 32], VISIT), DeviceStatus::Verified);
        assert_eq!(
            t.observe("alice", &[9; 32], VISIT, VISIT),
            DeviceStatus::VerifiedKeyChanged
        );
        // Acknowledging it does not quiet it: only verifying does.
        t.acknowledge("alice", &[9; 32], VISIT);
        assert_eq!(
            t.assess("alice", &[9; 32], VISIT),
            DeviceStatus::VerifiedKeyChanged
        );
        assert!(TrustStore::from_json("not json").is_err());
    }

    #[test]
    fn changes_are_handed_out_per_identity_and_two_writers_merge_without_losing_a_verification() {
        let mut tab1 = TrustStore::new();
        let mut tab2 = TrustStore::new();
        tab1.observe("alice", &[1; 32], 10, 10);
        tab2.observe("alice", &[1; 32], 20, 20);
        tab1.verify("alice", &[1; 32], 30);
        tab2.observe("alice", &[2; 32], 40, 20);
        let c1 = tab1.take_changes().expect("changes");
        let c2 = tab2.take_changes().expect("changes");
        assert_eq!(c1.put.keys().collect::<Vec<_>>(), ["alice"]);
        assert!(tab1.take_changes().is_none(), "taken");
        // The second tab writes last; what is stored is both, merged.
        let stored = merge_devices(&c1.put["alice"], &c2.put["alice"]);
        let mut reloaded = TrustStore::from_records(
            &serde_json::to_string(&BTreeMap::from([("alice", stored)])).expect("json"),
        )
        .expect("records");
        assert_eq!(
            reloaded.assess("alice", &[1; 32], 99),
            DeviceStatus::Verified
        );
        assert_eq!(
            reloaded.assess("alice", &[2; 32], 99),
            DeviceStatus::VerifiedKeyChanged
        );
        // A tab told of the other's records takes them in.
        assert!(tab2.merge(c1.put.clone()));
        assert!(!tab2.merge(c1.put), "nothing new the second time");
        assert_eq!(tab2.assess("alice", &[1; 32], 99), DeviceStatus::Verified);
        assert!(reloaded.take_changes().is_none(), "loading writes nothing");
    }

    #[test]
    fn the_store_stays_small_and_keeps_what_was_verified() {
        let mut t = TrustStore::new();
        t.verify("alice", &[0; 32], 0);
        for i in 1..100u8 {
            t.observe("alice", &[i; 32], u64::from(i), 0);
        }
        assert_eq!(t.identities["alice"].len(), MAX_DEVICES);
        assert_eq!(t.assess("alice", &[0; 32], 0), DeviceStatus::Verified);

        // A server that invents identities cannot grow it without bound, nor push out a
        // verified one.
        for i in 0..(MAX_IDENTITIES as u64 + 50) {
            t.observe(&format!("ghost {i}"), &[1; 32], 1_000 + i, 0);
        }
        assert_eq!(t.len(), MAX_IDENTITIES);
        assert_eq!(t.assess("alice", &[0; 32], 0), DeviceStatus::Verified);
        let changes = t.take_changes().expect("changes");
        assert_eq!(changes.delete.len(), 51, "the oldest ghosts are forgotten");
        assert!(changes.delete.contains(&"ghost 0".to_owned()));
        assert!(!changes.put.contains_key("ghost 0"));
    }
}
