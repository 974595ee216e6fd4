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
use signaling_protocol::names::skeleton;

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
    /// A person here acted on it (accepted or verified it), as opposed to first use. Records
    /// from before this field count as a person's.
    #[serde(default = "yes")]
    pub by_user: bool,
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
    /// The remembered identities by their confusable skeleton.
    #[serde(skip)]
    skeletons: BTreeMap<String, BTreeSet<String>>,
}

/// A store that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable trust store: {0}")]
pub struct TrustStoreError(String);

fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// One identity's devices from two writers (two tabs, or a tab and what it loaded) as one: every
/// key either knows, verified or accepted by a person if either says so (nothing is lost),
/// first seen at the earlier, last seen at the later time; bounded as the store is. Acceptance
/// on first use goes to one key only, the one seen first: two tabs that each met a different
/// "first" key of a new identity do not make both accepted.
pub fn merge_devices(a: &[KnownDevice], b: &[KnownDevice]) -> Vec<KnownDevice> {
    let mut out: Vec<KnownDevice> = a.to_vec();
    for d in b {
        match out.iter_mut().find(|o| o.key == d.key) {
            Some(o) => {
                o.verified |= d.verified;
                o.by_user |= d.by_user;
                o.acknowledged |= d.acknowledged;
                o.first_seen = o.first_seen.min(d.first_seen);
                o.last_seen = o.last_seen.max(d.last_seen);
            }
            None => out.push(d.clone()),
        }
    }
    let first_use = out
        .iter()
        .filter(|d| d.acknowledged && !d.by_user && !d.verified)
        .min_by(|x, y| (x.first_seen, &x.key).cmp(&(y.first_seen, &y.key)))
        .map(|d| d.key.clone());
    for d in &mut out {
        if d.acknowledged && !d.by_user && !d.verified && Some(&d.key) != first_use.as_ref() {
            d.acknowledged = false;
        }
    }
    bound_devices(&mut out);
    out
}

/// Whether a person here ever acted on this identity, or it holds a key nobody has accepted
/// yet: what bounding the store must never forget.
fn worth_keeping(devices: &[KnownDevice]) -> bool {
    devices
        .iter()
        .any(|d| d.verified || d.by_user || !d.acknowledged)
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
        let saved: TrustStore =
            serde_json::from_str(text).map_err(|e| TrustStoreError(e.to_string()))?;
        let mut store = TrustStore::new();
        store.merge(saved.identities);
        Ok(store)
    }

    /// The store as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// A store of records (identity → devices, as [`TrustChanges::put`] hands them out). A
    /// record that does not parse is left out (and left alone where it is stored); the text as
    /// a whole must be a JSON object.
    pub fn from_records(text: &str) -> Result<Self, TrustStoreError> {
        let records: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| TrustStoreError(e.to_string()))?;
        let identities = records
            .into_iter()
            .filter_map(|(i, v)| Some((i, serde_json::from_value(v).ok()?)))
            .collect();
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
                self.index(&identity);
                self.identities.insert(identity, merged);
                changed = true;
            }
        }
        self.bound(None, u64::MAX);
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
        self.index(identity);
        let devices = self.identities.entry(identity.to_owned()).or_default();
        let first = devices.is_empty();
        match devices.iter_mut().find(|d| d.key == hex_key) {
            // Seen now (what bounding the store goes by), written only now and then.
            Some(d) => {
                let step = now_ms >= d.last_seen.saturating_add(LAST_SEEN_STEP_MS);
                d.last_seen = d.last_seen.max(now_ms);
                if step {
                    self.changed.insert(identity.to_owned());
                }
            }
            None => {
                devices.push(KnownDevice {
                    key: hex_key,
                    verified: false,
                    acknowledged: first,
                    by_user: false,
                    first_seen: now_ms,
                    last_seen: now_ms,
                });
                bound_devices(devices);
                self.changed.insert(identity.to_owned());
            }
        }
        self.bound(Some(identity), since_ms);
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
            d.by_user = true;
        }
        self.changed.insert(identity.to_owned());
    }

    /// The user accepts `key` as a device of `identity` (it is no longer "new").
    pub fn acknowledge(&mut self, identity: &str, key: &[u8], now_ms: u64) {
        self.observe(identity, key, now_ms, 0);
        if let Some(d) = self.device_mut(identity, key) {
            d.acknowledged = true;
            d.by_user = true;
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

    /// At most [`MAX_IDENTITIES`]. Never forgotten: what a person acted on, a key nobody has
    /// accepted yet, and `keep` (the one being looked at). Of the rest, identities first met
    /// in this visit (since `since_ms`: a server inventing names fills the store with those)
    /// go before older acquaintances, the least recently seen first.
    fn bound(&mut self, keep: Option<&str>, since_ms: u64) {
        while self.identities.len() > MAX_IDENTITIES {
            let victim = self
                .identities
                .iter()
                .filter(|(i, ds)| Some(i.as_str()) != keep && !worth_keeping(ds))
                .min_by_key(|(_, ds)| {
                    let met = ds.iter().map(|d| d.first_seen).min().unwrap_or(0);
                    let seen = ds.iter().map(|d| d.last_seen.max(d.first_seen)).max();
                    (met < since_ms, seen)
                })
                .map(|(i, _)| i.clone());
            let Some(identity) = victim else { break };
            self.identities.remove(&identity);
            self.unindex(&identity);
            self.changed.remove(&identity);
            self.forgotten.insert(identity);
        }
    }

    fn index(&mut self, identity: &str) {
        if !self.identities.contains_key(identity) {
            self.skeletons
                .entry(skeleton(identity))
                .or_default()
                .insert(identity.to_owned());
        }
    }

    fn unindex(&mut self, identity: &str) {
        let look = skeleton(identity);
        if let Some(set) = self.skeletons.get_mut(&look) {
            set.remove(identity);
            if set.is_empty() {
                self.skeletons.remove(&look);
            }
        }
    }

    /// The identities remembered here whose names look like `identity` but differ (the same
    /// Unicode TR39 skeleton): "аlice" (Cyrillic а) met while the alice this browser knows is
    /// not in the room.
    pub fn lookalikes(&self, identity: &str) -> Vec<String> {
        self.skeletons
            .get(&skeleton(identity))
            .into_iter()
            .flatten()
            .filter(|i| *i != identity)
            .cloned()
            .collect()
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
    fn a_flood_of_invented_names_cannot_push_out_what_matters() {
        let mut t = TrustStore::new();
        // Before this visit: bob on first use; carol with a new device nobody accepted;
        // dave accepted by the user.
        t.observe("bob", &[1; 32], 10, 10);
        t.observe("carol", &[1; 32], 10, 10);
        t.observe("carol", &[2; 32], 20, 10);
        t.observe("dave", &[1; 32], 10, 10);
        t.observe("dave", &[2; 32], 20, 10);
        t.acknowledge("dave", &[2; 32], 30);
        let visit = 1_000;
        for i in 0..(MAX_IDENTITIES as u64 + 10) {
            t.observe(&format!("ghost {i}"), &[3; 32], visit + i, visit);
        }
        assert_eq!(t.len(), MAX_IDENTITIES);
        assert_eq!(t.assess("bob", &[1; 32], visit), DeviceStatus::Known);
        assert_eq!(t.assess("carol", &[2; 32], visit), DeviceStatus::NewDevice);
        assert_eq!(t.assess("dave", &[2; 32], visit), DeviceStatus::Known);
        let gone = t.take_changes().expect("changes").delete;
        assert!(gone.iter().all(|i| i.starts_with("ghost")), "{gone:?}");
    }

    #[test]
    fn two_tabs_meeting_different_first_keys_do_not_both_accept_them() {
        let mut tab1 = TrustStore::new();
        let mut tab2 = TrustStore::new();
        tab1.observe("eve", &[1; 32], 10, 0);
        tab2.observe("eve", &[2; 32], 20, 0);
        let one = tab1
            .take_changes()
            .expect("c")
            .put
            .remove("eve")
            .expect("eve");
        let two = tab2
            .take_changes()
            .expect("c")
            .put
            .remove("eve")
            .expect("eve");
        let merged = merge_devices(&one, &two);
        assert_eq!(merged.iter().filter(|d| d.acknowledged).count(), 1);
        let mut t = TrustStore::new();
        t.merge(BTreeMap::from([("eve".to_owned(), merged)]));
        assert_eq!(t.assess("eve", &[1; 32], 99), DeviceStatus::Known);
        assert_eq!(t.assess("eve", &[2; 32], 99), DeviceStatus::NewDevice);
    }

    #[test]
    fn names_that_look_like_one_remembered_are_found_and_a_bad_record_is_left_out() {
        let records = r#"{"alice": [{"key": "01", "verified": true, "first_seen": 1}],
                          "bob": "not a record"}"#;
        let t = TrustStore::from_records(records).expect("records");
        assert_eq!(t.len(), 1, "bob's damaged record is left out");
        assert_eq!(t.lookalikes("\u{0430}lice"), ["alice"]);
        assert!(t.lookalikes("alice").is_empty());
        assert!(t.lookalikes("bob").is_empty());
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
