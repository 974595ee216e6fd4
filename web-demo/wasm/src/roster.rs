//! The roster as the page shows it: each MLS member with what can be said of it: the
//! participant and identity its credential names, its device fingerprint, what this browser
//! knows of that device (trust on first use), whether the server announced it, and whether it
//! entered the group unexplained. Nothing here comes from the server's participant list but
//! the "announced" flag, which is its word and is labelled as such.

use std::collections::HashMap;

use media_crypto::mls::{Fingerprint, RosterEntry};
use serde::Serialize;
use signaling_participant::checks::same_names;
use signaling_participant::trust::{DeviceStatus, TrustStore};
use signaling_participant::{LeafWarning, Presence};
use signaling_protocol::names::reveal;
use signaling_protocol::{ParticipantId, parse_credential_identity};

/// One member for the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub leaf: u32,
    /// The participant id bound into the credential (`"<participant_id>:<identity>"`).
    pub participant_id: Option<ParticipantId>,
    pub identity: String,
    /// Six groups of five digits, to compare with the person out of band.
    pub fingerprint: Vec<String>,
    /// What this browser knows of the device: `this_device`, `first_seen`, `known`,
    /// `verified`, `new_device` or `verified_key_changed`.
    pub device: &'static str,
    /// Another member has the same identity, or one that looks alike (two devices, or
    /// someone posing).
    pub duplicate_identity: bool,
    /// The other members' identities that look like this one but are spelled otherwise
    /// ("аlice" with a Cyrillic а beside "alice"), and this one's spelling revealed
    /// ("<U+0430>lice") to tell them apart; empty and `None` when there are none.
    pub looks_like: Vec<String>,
    pub spelled: Option<String>,
    /// The server announced this participant and has not said it left.
    pub present: bool,
    /// Why this leaf is unexplained, if it is (and not acknowledged).
    pub problem: Option<String>,
}

/// A warning for the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub leaf: u32,
    pub participant_id: Option<ParticipantId>,
    pub identity: String,
    pub text: String,
}

impl From<&LeafWarning> for Warning {
    fn from(w: &LeafWarning) -> Self {
        Warning {
            leaf: w.leaf,
            participant_id: w.participant_id,
            identity: w.identity.clone(),
            text: w.to_string(),
        }
    }
}

fn status_name(s: DeviceStatus) -> &'static str {
    match s {
        DeviceStatus::FirstSeen => "first_seen",
        DeviceStatus::Known => "known",
        DeviceStatus::Verified => "verified",
        DeviceStatus::NewDevice => "new_device",
        DeviceStatus::VerifiedKeyChanged => "verified_key_changed",
    }
}

/// What this browser remembers of devices, and what it judged each one this visit.
#[derive(Debug, Default)]
pub struct Devices {
    store: TrustStore,
    /// The status of each identity and device key the first time they were seen together in
    /// this visit (a new device stays "new" for the whole meeting, although it is remembered
    /// from then on). Keyed by both: a key first seen under one name and later under another
    /// is judged again under the other.
    seen: HashMap<(String, Vec<u8>), DeviceStatus>,
    /// The store changed since it was last handed out to be saved.
    dirty: bool,
}

impl Devices {
    pub fn new(store: TrustStore) -> Self {
        Devices {
            store,
            seen: HashMap::new(),
            dirty: false,
        }
    }

    fn status(&mut self, identity: &str, key: &[u8], now_ms: u64) -> DeviceStatus {
        let seen_as = (identity.to_owned(), key.to_vec());
        if let Some(&s) = self.seen.get(&seen_as) {
            // Verified since: say so.
            return match (s, self.store.assess(identity, key)) {
                (_, DeviceStatus::Verified) => DeviceStatus::Verified,
                (s, _) => s,
            };
        }
        let s = self.store.observe(identity, key, now_ms);
        self.seen.insert(seen_as, s);
        self.dirty = true;
        s
    }

    /// Marks `identity` holding `key` verified.
    pub fn verify(&mut self, identity: &str, key: &[u8], now_ms: u64) {
        self.store.verify(identity, key, now_ms);
        self.dirty = true;
    }

    /// The store as JSON if it changed since the last call.
    pub fn take_changes(&mut self) -> Option<String> {
        std::mem::take(&mut self.dirty).then(|| self.store.to_json())
    }

    pub fn store(&self) -> &TrustStore {
        &self.store
    }
}

/// The roster for the page.
pub fn members(
    roster: &[RosterEntry],
    own_leaf: Option<u32>,
    presence: &Presence,
    unexplained: &[LeafWarning],
    devices: &mut Devices,
    now_ms: u64,
) -> Vec<Member> {
    let parsed: Vec<(Option<ParticipantId>, String)> = roster
        .iter()
        .map(|r| {
            let name = r.name();
            match parse_credential_identity(&name) {
                Some((pid, identity)) => (Some(pid), identity.to_owned()),
                None => (None, name),
            }
        })
        .collect();
    let same = same_names(roster);
    let alike_of = |leaf: u32, identity: &str| -> Vec<String> {
        same.iter()
            .filter(|s| s.leaves.contains(&leaf))
            .flat_map(|s| s.identities.iter().filter(|i| *i != identity).cloned())
            .collect()
    };
    roster
        .iter()
        .zip(&parsed)
        .map(|(r, (pid, identity))| {
            let device = if Some(r.leaf) == own_leaf {
                // Remembered too, so a later visit knows this device.
                devices.status(identity, &r.signature_key, now_ms);
                "this_device"
            } else {
                status_name(devices.status(identity, &r.signature_key, now_ms))
            };
            let looks_like = alike_of(r.leaf, identity);
            Member {
                spelled: (!looks_like.is_empty()).then(|| reveal(identity)),
                looks_like,
                leaf: r.leaf,
                participant_id: *pid,
                identity: identity.clone(),
                fingerprint: Fingerprint::of(identity.as_bytes(), &r.signature_key)
                    .groups()
                    .to_vec(),
                device,
                duplicate_identity: same.iter().any(|s| s.leaves.contains(&r.leaf)),
                present: pid.is_some_and(|p| presence.is_present_as(p, identity)),
                problem: unexplained
                    .iter()
                    .find(|w| w.leaf == r.leaf && w.signature_key == r.signature_key)
                    .map(|w| w.problem.to_string()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use signaling_protocol::{Participant, credential_identity};

    fn entry(leaf: u32, pid: ParticipantId, name: &str, key: u8) -> RosterEntry {
        RosterEntry {
            leaf,
            identity: credential_identity(pid, name).into_bytes(),
            signature_key: vec![key; 32],
        }
    }

    #[test]
    fn a_second_alice_on_another_device_is_flagged_twice() {
        let presence = Presence::new(
            1,
            "bob",
            &[Participant {
                participant_id: 2,
                identity: "alice".into(),
                may_publish: true,
            }],
        );
        // Last visit: alice on device 7.
        let mut store = TrustStore::new();
        store.observe("alice", &[7; 32], 0);
        let mut devices = Devices::new(store);
        let roster = [
            entry(0, 1, "bob", 1),
            entry(1, 2, "alice", 7),
            entry(2, 3, "alice", 8),
        ];
        let m = members(&roster, Some(0), &presence, &[], &mut devices, 1);
        assert_eq!(m[0].device, "this_device");
        assert_eq!(m[1].device, "known");
        assert_eq!(m[2].device, "new_device");
        assert!(m[1].duplicate_identity && m[2].duplicate_identity);
        assert!(
            m[1].looks_like.is_empty() && m[1].spelled.is_none(),
            "the same name"
        );
        assert!(m[1].present && !m[2].present, "3 was never announced");
        assert_eq!(m[2].fingerprint.len(), 6);
        // It stays "new" for the rest of the meeting.
        let again = members(&roster, Some(0), &presence, &[], &mut devices, 2);
        assert_eq!(again[2].device, "new_device");
        assert!(devices.take_changes().is_some());
        assert!(devices.take_changes().is_none());
    }

    #[test]
    fn names_that_only_look_alike_are_flagged_and_spelled_out() {
        let presence = Presence::new(1, "bob", &[]);
        let mut devices = Devices::new(TrustStore::new());
        let roster = [
            entry(0, 1, "bob", 1),
            entry(1, 2, "alice", 7),
            entry(2, 3, "\u{430}lice", 8),
            entry(3, 4, "alice\u{200B}", 9),
        ];
        let m = members(&roster, Some(0), &presence, &[], &mut devices, 1);
        assert!(!m[0].duplicate_identity);
        assert!(m[1..].iter().all(|m| m.duplicate_identity));
        assert_eq!(m[1].looks_like, ["\u{430}lice", "alice\u{200B}"]);
        assert_eq!(m[1].spelled.as_deref(), Some("alice"));
        assert_eq!(m[2].spelled.as_deref(), Some("<U+0430>lice"));
        assert_eq!(m[3].spelled.as_deref(), Some("alice<U+200B>"));
    }

    #[test]
    fn a_key_seen_under_one_name_is_judged_again_under_another() {
        let presence = Presence::new(1, "bob", &[]);
        // Alice is verified on device 7; mallory shows up on device 9.
        let mut store = TrustStore::new();
        store.verify("alice", &[7; 32], 0);
        let mut devices = Devices::new(store);
        let mallory = [entry(0, 1, "bob", 1), entry(1, 5, "mallory", 9)];
        let m = members(&mallory, Some(0), &presence, &[], &mut devices, 1);
        assert_eq!(m[1].device, "first_seen");
        // The same key comes back under alice's name: not "first seen", not alice's device.
        let posing = [entry(0, 1, "bob", 1), entry(1, 6, "alice", 9)];
        let m = members(&posing, Some(0), &presence, &[], &mut devices, 2);
        assert_eq!(m[1].device, "verified_key_changed");
    }
}
