//! The roster as the page shows it: each MLS member with what can be said of it: the
//! participant and identity its credential names, its device fingerprint, what this browser
//! knows of that device (trust on first use), whether the server announced it, and whether it
//! entered the group unexplained. Nothing here comes from the server's participant list but
//! the "announced" flag, which is its word and is labelled as such.

use media_crypto::mls::{Fingerprint, RosterEntry};
use serde::Serialize;
use signaling_participant::checks::same_names;
use signaling_participant::trust::{DeviceStatus, TrustChanges, TrustStore};
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
    /// The device's signature key (hex): what "Mark verified" and "I know who this is" name,
    /// so that they act on the device the user was shown, not on whatever holds the leaf now.
    pub key: String,
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

/// What this browser remembers of devices (the trust store), and when this visit began. The
/// verdict on a device comes from the store alone, so it is the same after any reconnect.
#[derive(Debug, Default)]
pub struct Devices {
    store: TrustStore,
    /// Wall-clock milliseconds when the page was loaded: an identity first seen since is
    /// "first seen now".
    since_ms: u64,
}

impl Devices {
    pub fn new(store: TrustStore, since_ms: u64) -> Self {
        Devices { store, since_ms }
    }

    fn status(&mut self, identity: &str, key: &[u8], now_ms: u64) -> DeviceStatus {
        self.store.observe(identity, key, now_ms, self.since_ms)
    }

    /// What is known of a device without remembering it: for a member nobody explained, whose
    /// key must not become an identity's "first" by being seen.
    fn judge(&self, identity: &str, key: &[u8]) -> DeviceStatus {
        self.store.assess(identity, key, self.since_ms)
    }

    /// Marks `identity` holding `key` verified.
    pub fn verify(&mut self, identity: &str, key: &[u8], now_ms: u64) {
        self.store.verify(identity, key, now_ms);
    }

    /// The user accepts `key` as a device of `identity`.
    pub fn acknowledge(&mut self, identity: &str, key: &[u8], now_ms: u64) {
        self.store.acknowledge(identity, key, now_ms);
    }

    /// Takes in records another tab wrote; true if anything changed.
    pub fn merge(&mut self, records: &str) -> Result<bool, serde_json::Error> {
        Ok(self.store.merge(serde_json::from_str(records)?))
    }

    /// The records to write, if any changed since the last call.
    pub fn take_changes(&mut self) -> Option<TrustChanges> {
        self.store.take_changes()
    }
}

pub use signaling_participant::checks::identity_of;

/// Why an action on a member the user was shown is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotShown {
    #[error("nobody is at leaf {0} any more")]
    Gone(u32),
    #[error(
        "the member at leaf {0} is not the device and name you looked at any more: compare its fingerprint again"
    )]
    AnotherDevice(u32),
}

/// The member at `leaf` of `roster`, if it still holds the device `key` (hex) under the
/// `identity` the user was shown (the two make the fingerprint): an action ("Mark verified",
/// "I know who this is") binds to what the user compared, not to whatever the server has put
/// at that leaf since.
pub fn shown(
    roster: &[RosterEntry],
    leaf: u32,
    key: &str,
    identity: &str,
) -> Result<RosterEntry, NotShown> {
    let entry = roster
        .iter()
        .find(|r| r.leaf == leaf)
        .ok_or(NotShown::Gone(leaf))?;
    if hex(&entry.signature_key) != key || identity_of(entry) != identity {
        return Err(NotShown::AnotherDevice(leaf));
    }
    Ok(entry.clone())
}

/// A key as hex, as the page carries it.
pub fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
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
            let problem = unexplained
                .iter()
                .find(|w| w.leaf == r.leaf && w.signature_key == r.signature_key);
            let device = if Some(r.leaf) == own_leaf {
                // Remembered too, so a later visit knows this device.
                devices.status(identity, &r.signature_key, now_ms);
                "this_device"
            } else if problem.is_some() {
                status_name(devices.judge(identity, &r.signature_key))
            } else {
                status_name(devices.status(identity, &r.signature_key, now_ms))
            };
            // Members here whose names look alike, and people this browser knows by a name
            // this one looks like ("аlice" while the alice met before is away).
            let mut looks_like = alike_of(r.leaf, identity);
            for known in devices.store.lookalikes(identity) {
                if !looks_like.contains(&known) {
                    looks_like.push(known);
                }
            }
            Member {
                spelled: (!looks_like.is_empty()).then(|| reveal(identity)),
                looks_like,
                leaf: r.leaf,
                participant_id: *pid,
                identity: identity.clone(),
                fingerprint: Fingerprint::of(identity.as_bytes(), &r.signature_key)
                    .groups()
                    .to_vec(),
                key: hex(&r.signature_key),
                device,
                duplicate_identity: same.iter().any(|s| s.leaves.contains(&r.leaf)),
                present: pid.is_some_and(|p| presence.is_present_as(p, identity)),
                problem: problem.map(|w| w.problem.to_string()),
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
        store.observe("alice", &[7; 32], 0, 0);
        let mut devices = Devices::new(store, 1);
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
        // It stays "new", however often the roster is judged, until the user accepts it.
        let again = members(&roster, Some(0), &presence, &[], &mut devices, 2);
        assert_eq!(again[2].device, "new_device");
        assert!(devices.take_changes().is_some());
        assert!(devices.take_changes().is_none());
        devices.acknowledge("alice", &[8; 32], 3);
        let accepted = members(&roster, Some(0), &presence, &[], &mut devices, 4);
        assert_eq!(accepted[2].device, "known");
        assert_eq!(accepted[2].key, "08".repeat(32));
    }

    #[test]
    fn a_member_nobody_explained_does_not_become_an_identity_s_first_device() {
        let presence = Presence::new(1, "bob", &[]);
        let mut devices = Devices::new(TrustStore::new(), 0);
        // An unannounced "alice" on mallory's key.
        let ghost = [entry(0, 1, "bob", 1), entry(1, 9, "alice", 66)];
        let warning = LeafWarning {
            leaf: 1,
            participant_id: Some(9),
            identity: "alice".into(),
            signature_key: vec![66; 32],
            problem: signaling_participant::LeafProblem::NotAnnounced,
        };
        let m = members(&ghost, Some(0), &presence, &[warning], &mut devices, 1);
        assert!(m[1].problem.is_some());
        assert_eq!(m[1].device, "first_seen", "judged, not remembered");
        // The real alice comes later: her key is the first one, not a "new device".
        let real = [entry(0, 1, "bob", 1), entry(1, 2, "alice", 7)];
        let m = members(&real, Some(0), &presence, &[], &mut devices, 2);
        assert_eq!(m[1].device, "first_seen");
        // And mallory's key under alice's name, announced this time, is new.
        let later = [entry(0, 1, "bob", 1), entry(1, 3, "alice", 66)];
        let m = members(&later, Some(0), &presence, &[], &mut devices, 3);
        assert_eq!(m[1].device, "new_device");
    }

    #[test]
    fn a_name_like_one_this_browser_knows_is_flagged_even_when_they_are_away() {
        let presence = Presence::new(1, "bob", &[]);
        let mut store = TrustStore::new();
        store.verify("alice", &[7; 32], 0);
        let mut devices = Devices::new(store, 1);
        let roster = [entry(0, 1, "bob", 1), entry(1, 2, "\u{430}lice", 9)];
        let m = members(&roster, Some(0), &presence, &[], &mut devices, 2);
        assert_eq!(m[1].looks_like, ["alice"]);
        assert_eq!(m[1].spelled.as_deref(), Some("<U+0430>lice"));
    }

    #[test]
    fn an_action_binds_to_the_device_shown_not_to_the_leaf() {
        let roster = [entry(0, 1, "bob", 1), entry(1, 2, "alice", 7)];
        let alice = "07".repeat(32);
        assert_eq!(shown(&roster, 1, &alice, "alice").map(|e| e.leaf), Ok(1));
        // The server refilled leaf 1 with another device since the user looked.
        let refilled = [entry(0, 1, "bob", 1), entry(1, 2, "alice", 9)];
        assert_eq!(
            shown(&refilled, 1, &alice, "alice"),
            Err(NotShown::AnotherDevice(1))
        );
        // Or the same key under another name.
        let renamed = [entry(0, 1, "bob", 1), entry(1, 2, "carol", 7)];
        assert_eq!(
            shown(&renamed, 1, &alice, "alice"),
            Err(NotShown::AnotherDevice(1))
        );
        assert_eq!(
            shown(&roster[..1], 1, &alice, "alice"),
            Err(NotShown::Gone(1))
        );
        assert_eq!(identity_of(&roster[1]), "alice");
    }

    #[test]
    fn names_that_only_look_alike_are_flagged_and_spelled_out() {
        let presence = Presence::new(1, "bob", &[]);
        let mut devices = Devices::new(TrustStore::new(), 0);
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
        let mut devices = Devices::new(store, 1);
        let mallory = [entry(0, 1, "bob", 1), entry(1, 5, "mallory", 9)];
        let m = members(&mallory, Some(0), &presence, &[], &mut devices, 1);
        assert_eq!(m[1].device, "first_seen");
        // The same key comes back under alice's name: not "first seen", not alice's device.
        let posing = [entry(0, 1, "bob", 1), entry(1, 6, "alice", 9)];
        let m = members(&posing, Some(0), &presence, &[], &mut devices, 2);
        assert_eq!(m[1].device, "verified_key_changed");
    }
}
