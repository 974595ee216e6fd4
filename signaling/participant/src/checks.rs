//! The checks every member makes of each leaf that enters its group (DESIGN.md, "Trust and
//! what the user sees"): the leaf's credential must name a participant, under an identity that
//! follows the rules for names ([`check_identity`]), that the server announced,
//! under the identity it announced and present now, no other leaf may name the same
//! participant, a participant keeps the device key it was first seen with in this meeting, and
//! the delivery service must have said it was adding it. A leaf that fails is someone in the group
//! that nobody was shown: it is reported by name, and this member sends no media until the
//! leaf is gone or the user acknowledges it.

use std::collections::BTreeMap;

use media_crypto::mls::RosterEntry;
use signaling_protocol::names::{NameError, check_identity, skeleton};
use signaling_protocol::{ParticipantId, parse_credential_identity};

use crate::presence::Presence;

/// What is wrong with a leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeafProblem {
    /// Its credential is not `"<participant id>:<identity>"`.
    UnreadableCredential,
    /// The identity breaks the rules for names people read (invisible or control
    /// characters, padding, length): it could pass for someone else's.
    BadIdentity(NameError),
    /// The server never announced this participant in the room.
    NotAnnounced,
    /// The server announced this participant, then said it left the room.
    Departed,
    /// The server announced this participant under another identity.
    IdentityMismatch { announced: String },
    /// Another leaf names the same participant.
    DuplicateParticipant { other_leaf: u32 },
    /// This participant held another device key earlier in this meeting (its leaf was removed
    /// and someone else's device came back under its participant id).
    AnotherDevice,
    /// The delivery service's account of the commit that added it did not list it.
    NotInServerAccount,
}

impl std::fmt::Display for LeafProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeafProblem::UnreadableCredential => f.write_str("its credential names no participant"),
            LeafProblem::BadIdentity(e) => write!(f, "its name breaks the rules for names: {e}"),
            LeafProblem::NotAnnounced => f.write_str("the server never announced it in the room"),
            LeafProblem::Departed => f.write_str("the server said it left the room"),
            LeafProblem::IdentityMismatch { announced } => {
                write!(f, "the server announced this participant as {announced:?}")
            }
            LeafProblem::DuplicateParticipant { other_leaf } => {
                write!(f, "leaf {other_leaf} names the same participant")
            }
            LeafProblem::AnotherDevice => {
                f.write_str("this participant was on another device earlier in this meeting")
            }
            LeafProblem::NotInServerAccount => {
                f.write_str("the server did not say the commit added it")
            }
        }
    }
}

/// A leaf that entered the group unexplained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafWarning {
    pub leaf: u32,
    /// The participant id its credential names, if it names one.
    pub participant_id: Option<ParticipantId>,
    /// The identity its credential names (or the whole credential, if unreadable).
    pub identity: String,
    /// Its signature key (the device).
    pub signature_key: Vec<u8>,
    pub problem: LeafProblem,
}

impl std::fmt::Display for LeafWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.participant_id {
            Some(pid) => write!(
                f,
                "{:?} (participant {pid}, leaf {}): {}",
                self.identity, self.leaf, self.problem
            ),
            None => write!(
                f,
                "{:?} (leaf {}): {}",
                self.identity, self.leaf, self.problem
            ),
        }
    }
}

/// Two or more members under one identity, or under identities that look alike (the same
/// Unicode TR39 skeleton: "alice" and "аlice" with a Cyrillic а): two devices of one person, or
/// someone posing as them. Not a reason to hold media back by itself (both were announced),
/// but shown: people compare fingerprints to tell which is which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SameName {
    /// The identities as spelled, each once (more than one: they only look alike).
    pub identities: Vec<String>,
    pub leaves: Vec<u32>,
}

impl SameName {
    /// The names differ, and only look alike.
    pub fn look_alike(&self) -> bool {
        self.identities.len() > 1
    }
}

/// The identity a roster entry's credential names (all of it, if it names no participant).
pub fn identity_of(entry: &RosterEntry) -> String {
    let name = entry.name();
    parse_credential_identity(&name)
        .map(|(_, i)| i.to_owned())
        .unwrap_or(name)
}

/// The identities (as they look) more than one member of `roster` holds.
pub fn same_names(roster: &[RosterEntry]) -> Vec<SameName> {
    let mut by_look: BTreeMap<String, SameName> = BTreeMap::new();
    for r in roster {
        let identity = identity_of(r);
        let same = by_look.entry(skeleton(&identity)).or_insert(SameName {
            identities: Vec::new(),
            leaves: Vec::new(),
        });
        if !same.identities.contains(&identity) {
            same.identities.push(identity);
        }
        same.leaves.push(r.leaf);
    }
    by_look
        .into_values()
        .filter(|same| same.leaves.len() > 1)
        .collect()
}

/// Checks each of `entering` (leaves of `roster`, the group after they entered) against what
/// the server announced, against the device key each participant was first seen with in this
/// meeting (`first_keys`), and, for a commit, against the delivery service's account of it
/// (`server_added`). At most one warning per leaf, the first problem found.
pub fn check_leaves(
    entering: &[RosterEntry],
    roster: &[RosterEntry],
    presence: &Presence,
    first_keys: &BTreeMap<ParticipantId, Vec<u8>>,
    server_added: Option<&[ParticipantId]>,
) -> Vec<LeafWarning> {
    let mut out = Vec::new();
    for e in entering {
        let name = e.name();
        let warn = |participant_id, identity: &str, problem| LeafWarning {
            leaf: e.leaf,
            participant_id,
            identity: identity.to_owned(),
            signature_key: e.signature_key.clone(),
            problem,
        };
        let Some((pid, identity)) = parse_credential_identity(&name) else {
            out.push(warn(None, &name, LeafProblem::UnreadableCredential));
            continue;
        };
        if let Err(e) = check_identity(identity) {
            out.push(warn(Some(pid), identity, LeafProblem::BadIdentity(e)));
            continue;
        }
        let problem = match presence.get(pid) {
            None => Some(LeafProblem::NotAnnounced),
            Some(a) if a.identity != identity => Some(LeafProblem::IdentityMismatch {
                announced: a.identity.clone(),
            }),
            Some(a) if !a.present => Some(LeafProblem::Departed),
            Some(_) => None,
        }
        .or_else(|| {
            roster
                .iter()
                .find(|r| {
                    r.leaf != e.leaf
                        && parse_credential_identity(&r.name()).is_some_and(|(p, _)| p == pid)
                })
                .map(|r| LeafProblem::DuplicateParticipant { other_leaf: r.leaf })
        })
        .or_else(|| {
            first_keys
                .get(&pid)
                .is_some_and(|k| *k != e.signature_key)
                .then_some(LeafProblem::AnotherDevice)
        })
        .or_else(|| {
            server_added
                .is_some_and(|added| !added.contains(&pid))
                .then_some(LeafProblem::NotInServerAccount)
        });
        if let Some(problem) = problem {
            out.push(warn(Some(pid), identity, problem));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use signaling_protocol::{Participant, credential_identity};

    fn entry(leaf: u32, pid: ParticipantId, name: &str) -> RosterEntry {
        RosterEntry {
            leaf,
            identity: credential_identity(pid, name).into_bytes(),
            signature_key: vec![leaf as u8; 32],
        }
    }

    fn presence() -> Presence {
        let bob = Participant {
            participant_id: 2,
            identity: "bob".into(),
            may_publish: true,
        };
        Presence::new(1, "alice", &[bob])
    }

    #[test]
    fn an_announced_participant_passes() {
        let roster = [entry(0, 1, "alice"), entry(1, 2, "bob")];
        let none = BTreeMap::new();
        assert!(check_leaves(&roster[1..], &roster, &presence(), &none, Some(&[2])).is_empty());
    }

    #[test]
    fn ghosts_impostors_and_doubles_are_named() {
        let p = presence();
        let roster = [
            entry(0, 1, "alice"),
            entry(1, 2, "bob"),
            entry(2, 9, "mallory"),
            entry(3, 2, "mallory"),
            entry(4, 1, "alice"),
        ];
        let none = BTreeMap::new();
        let found = check_leaves(&roster[2..], &roster, &p, &none, Some(&[9, 2, 1]));
        let problems: Vec<_> = found.iter().map(|w| (w.leaf, w.problem.clone())).collect();
        assert_eq!(
            problems,
            vec![
                (2, LeafProblem::NotAnnounced),
                (
                    3,
                    LeafProblem::IdentityMismatch {
                        announced: "bob".into()
                    }
                ),
                (4, LeafProblem::DuplicateParticipant { other_leaf: 0 }),
            ]
        );
        assert!(found[0].to_string().contains("mallory"));
        let unlisted = check_leaves(&roster[1..2], &roster[..2], &p, &none, Some(&[]));
        assert_eq!(unlisted[0].problem, LeafProblem::NotInServerAccount);
        let unreadable = RosterEntry {
            leaf: 5,
            identity: b"no id here".to_vec(),
            signature_key: vec![],
        };
        assert_eq!(
            check_leaves(std::slice::from_ref(&unreadable), &roster, &p, &none, None)[0].problem,
            LeafProblem::UnreadableCredential
        );
    }

    #[test]
    fn two_members_under_one_name_are_found() {
        let roster = [
            entry(0, 1, "alice"),
            entry(1, 2, "bob"),
            entry(2, 3, "alice"),
        ];
        assert_eq!(
            same_names(&roster),
            vec![SameName {
                identities: vec!["alice".into()],
                leaves: vec![0, 2]
            }]
        );
        assert!(!same_names(&roster)[0].look_alike());
        assert!(same_names(&roster[..2]).is_empty());
    }

    #[test]
    fn names_that_only_look_alike_are_found_and_told_apart() {
        let roster = [
            entry(0, 1, "alice"),
            entry(1, 2, "bob"),
            entry(2, 3, "\u{0430}lice"),
            entry(3, 4, "alice\u{200B}"),
        ];
        let same = same_names(&roster);
        assert_eq!(same.len(), 1);
        assert_eq!(same[0].leaves, vec![0, 2, 3]);
        assert!(same[0].look_alike());
        assert_eq!(same[0].identities.len(), 3);
    }

    #[test]
    fn an_identity_that_breaks_the_rules_for_names_is_named_before_anything_else() {
        let bob = |name: &str| Participant {
            participant_id: 2,
            identity: name.into(),
            may_publish: true,
        };
        // Even announced by the server under that very name.
        for name in ["alice\u{200B}", "\u{202E}ecila", " alice"] {
            let p = Presence::new(1, "alice", &[bob(name)]);
            let roster = [entry(0, 1, "alice"), entry(1, 2, name)];
            let found = check_leaves(&roster[1..], &roster, &p, &BTreeMap::new(), Some(&[2]));
            assert!(
                matches!(found[0].problem, LeafProblem::BadIdentity(_)),
                "{name:?}: {found:?}"
            );
        }
    }

    #[test]
    fn one_who_left_or_comes_back_on_another_device_is_named() {
        let mut p = presence();
        let roster = [entry(0, 1, "alice"), entry(1, 2, "bob")];
        let bob_before: BTreeMap<_, _> = [(2, vec![9; 32])].into();
        assert_eq!(
            check_leaves(&roster[1..], &roster, &p, &bob_before, None)[0].problem,
            LeafProblem::AnotherDevice
        );
        let bob_same: BTreeMap<_, _> = [(2, vec![1; 32])].into();
        assert!(check_leaves(&roster[1..], &roster, &p, &bob_same, None).is_empty());
        p.left(2);
        assert_eq!(
            check_leaves(&roster[1..], &roster, &p, &bob_same, None)[0].problem,
            LeafProblem::Departed
        );
    }
}
