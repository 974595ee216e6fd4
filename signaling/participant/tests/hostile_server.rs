//! A participant against a server that lies, driven by hand with no network: the "server" here
//! announces whom it likes, asks for whatever commit it likes, and relays commits made by a
//! member in league with it (a bare MLS session that checks nothing). Every lie that would put
//! someone unseen in the group is caught by the participant.

use std::time::Duration;

use media_crypto::mls::{MlsSession, SessionConfig};
use signaling_participant::{Event, LeafProblem, Output, Participant};
use signaling_protocol::{
    ClientMessage, Participant as Announced, ParticipantId, PendingAdd, ServerMessage,
    credential_identity,
};

const T: Duration = Duration::ZERO;
const GROUP: &[u8] = b"group";

fn announced(pid: ParticipantId, identity: &str) -> Announced {
    Announced {
        participant_id: pid,
        identity: identity.into(),
        may_publish: true,
    }
}

fn session(pid: ParticipantId, identity: &str) -> MlsSession {
    MlsSession::new(credential_identity(pid, identity), SessionConfig::default()).expect("session")
}

fn events(out: &[Output]) -> Vec<&Event> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn sent(out: &[Output]) -> Vec<&ClientMessage> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn key_package_of(out: &[Output]) -> Vec<u8> {
    sent(out)
        .into_iter()
        .find_map(|m| match m {
            ClientMessage::KeyPackage { key_package } => Some(key_package.clone().into_vec()),
            _ => None,
        })
        .expect("a key package was sent")
}

/// The epoch event in `out`: (warnings' problems by leaf, may_send).
fn epoch_event(out: &[Output]) -> (Vec<(u32, LeafProblem)>, bool) {
    events(out)
        .into_iter()
        .find_map(|e| match e {
            Event::NewEpoch {
                warnings, may_send, ..
            } => Some((
                warnings
                    .iter()
                    .map(|w| (w.leaf, w.problem.clone()))
                    .collect(),
                *may_send,
            )),
            _ => None,
        })
        .expect("a new epoch")
}

/// Alice (a bare session, in league with the server) made the group; Bob (participant 2, the
/// one under test) joined it through her commit.
struct Scene {
    alice: MlsSession,
    bob: Participant,
}

impl Scene {
    fn new() -> Scene {
        let mut alice = session(1, "alice");
        alice.create_group(GROUP, T).expect("create");
        let mut bob =
            Participant::new(2, "bob", &[announced(1, "alice")], SessionConfig::default())
                .expect("bob");
        let kp = key_package_of(&bob.start());
        let mut scene = Scene { alice, bob };
        let out = scene.alice_commits(&[kp], &[], &[2]);
        let (warnings, may_send) = epoch_event(&out);
        assert!(warnings.is_empty() && may_send);
        scene
    }

    /// Alice commits these adds and removes, and the server relays the commit to Bob (or the
    /// Welcome, if the commit adds him) with `claimed` as its account of who was added.
    fn alice_commits(
        &mut self,
        kps: &[Vec<u8>],
        remove: &[u32],
        claimed: &[ParticipantId],
    ) -> Vec<Output> {
        let epoch = self.alice.epoch().expect("epoch");
        let c = self.alice.commit(kps, remove).expect("commit");
        self.alice.confirm_pending_commit(T).expect("confirm");
        if self.bob.session().epoch().is_none() {
            self.bob.handle(
                ServerMessage::Welcome {
                    epoch: epoch + 1,
                    welcome: c.welcome.expect("welcome").into(),
                },
                T,
            )
        } else {
            self.bob.handle(
                ServerMessage::Commit {
                    epoch: epoch + 1,
                    from: 1,
                    commit: c.commit.into(),
                    added: claimed.to_vec(),
                    removed: Vec::new(),
                },
                T,
            )
        }
    }

    fn leaf_of(&self, pid: ParticipantId) -> u32 {
        self.alice
            .roster()
            .iter()
            .rev()
            .find(|r| r.name().starts_with(&format!("{pid}:")))
            .expect("leaf")
            .leaf
    }
}

#[test]
fn a_joiner_acknowledges_its_welcome_and_finds_nobody_unexplained() {
    let mut alice = session(1, "alice");
    alice.create_group(GROUP, T).expect("create");
    let mut bob = Participant::new(2, "bob", &[announced(1, "alice")], SessionConfig::default())
        .expect("bob");
    let kp = key_package_of(&bob.start());
    let c = alice.commit(&[kp], &[]).expect("commit");
    let out = bob.handle(
        ServerMessage::Welcome {
            epoch: 1,
            welcome: c.welcome.expect("welcome").into(),
        },
        T,
    );
    assert!(
        sent(&out)
            .iter()
            .any(|m| matches!(m, ClientMessage::WelcomeAck { epoch: 1 }))
    );
    assert_eq!(epoch_event(&out), (vec![], true));
}

#[test]
fn a_leaf_the_server_never_announced_is_named_and_stops_our_media_until_acknowledged() {
    let mut s = Scene::new();
    let ghost = session(99, "mallory").key_package().expect("kp");
    let out = s.alice_commits(&[ghost], &[], &[99]);
    let leaf = s.leaf_of(99);
    assert_eq!(
        epoch_event(&out),
        (vec![(leaf, LeafProblem::NotAnnounced)], false)
    );
    assert!(!s.bob.may_send());
    assert!(s.bob.unexplained()[0].to_string().contains("mallory"));
    // The user says they know who this is, naming another device than the leaf holds: refused.
    let ghost_key = s.bob.unexplained()[0].signature_key.clone();
    assert!(matches!(
        s.bob.acknowledge(leaf, &[0; 32]),
        Err(signaling_participant::AcknowledgeError::AnotherDevice { .. })
    ));
    assert!(!s.bob.may_send());
    // Naming the device shown: media may go.
    let out = s.bob.acknowledge(leaf, &ghost_key).expect("acknowledged");
    assert!(matches!(
        events(&out)[..],
        [Event::SendGate { may_send: true, .. }]
    ));
    // A second ghost stops it again; when both are gone, it flows.
    let ghost2 = session(98, "eve").key_package().expect("kp");
    let (_, may_send) = epoch_event(&s.alice_commits(&[ghost2], &[], &[98]));
    assert!(!may_send);
    let out = s.alice_commits(&[], &[leaf, s.leaf_of(98)], &[]);
    assert_eq!(epoch_event(&out), (vec![], true));
    assert!(s.bob.unexplained().is_empty());
}

#[test]
fn an_impostor_a_double_and_an_unlisted_add_are_each_caught() {
    let mut s = Scene::new();
    // Announced as carol, but the credential says mallory.
    s.bob
        .handle(ServerMessage::ParticipantJoined(announced(3, "carol")), T);
    let impostor = session(3, "mallory").key_package().expect("kp");
    let out = s.alice_commits(&[impostor], &[], &[3]);
    assert_eq!(
        epoch_event(&out).0,
        vec![(
            s.leaf_of(3),
            LeafProblem::IdentityMismatch {
                announced: "carol".into()
            }
        )]
    );
    // A second leaf for alice's own participant id.
    let double = session(1, "alice").key_package().expect("kp");
    let out = s.alice_commits(&[double], &[], &[1]);
    assert!(matches!(
        epoch_event(&out).0[..],
        [(_, LeafProblem::DuplicateParticipant { other_leaf: 0 })]
    ));
    // Announced, but the server's account of the commit leaves it out.
    s.bob
        .handle(ServerMessage::ParticipantJoined(announced(4, "dave")), T);
    let dave = session(4, "dave").key_package().expect("kp");
    let out = s.alice_commits(&[dave], &[], &[]);
    assert_eq!(
        epoch_event(&out).0,
        vec![(s.leaf_of(4), LeafProblem::NotInServerAccount)]
    );
    assert!(
        events(&out)
            .iter()
            .any(|e| matches!(e, Event::AccountMismatch { .. }))
    );
}

#[test]
fn names_that_hide_or_look_like_another_are_flagged_even_when_the_server_announces_them() {
    let mut s = Scene::new();
    // A server that skips the rules for names announces "alice" with a zero-width space and
    // adds a leaf under that very name: announced, listed, and still flagged.
    let hidden = "alice\u{200B}";
    s.bob
        .handle(ServerMessage::ParticipantJoined(announced(3, hidden)), T);
    let kp = session(3, hidden).key_package().expect("kp");
    let out = s.alice_commits(&[kp], &[], &[3]);
    let leaf = s.leaf_of(3);
    assert_eq!(
        epoch_event(&out),
        (
            vec![(
                leaf,
                LeafProblem::BadIdentity(signaling_protocol::names::NameError::Invisible)
            )],
            false
        ),
        "flagged, and our media stops"
    );
    // "аlice" with a Cyrillic а passes the rules, and is announced: it is not unexplained,
    // but it shares alice's look, and so does the hidden one.
    let cyrillic = "\u{0430}lice";
    s.bob
        .handle(ServerMessage::ParticipantJoined(announced(4, cyrillic)), T);
    let kp = session(4, cyrillic).key_package().expect("kp");
    let out = s.alice_commits(&[kp], &[], &[4]);
    let same = events(&out)
        .into_iter()
        .find_map(|e| match e {
            Event::NewEpoch {
                warnings,
                same_names,
                ..
            } => {
                assert!(warnings.is_empty(), "{warnings:?}");
                Some(same_names.clone())
            }
            _ => None,
        })
        .expect("an epoch");
    assert_eq!(same.len(), 1);
    assert!(same[0].look_alike());
    assert_eq!(same[0].identities, ["alice", hidden, cyrillic]);
}

#[test]
fn a_joiner_checks_everyone_already_in_the_group() {
    let mut alice = session(1, "alice");
    alice.create_group(GROUP, T).expect("create");
    let ghost = session(99, "mallory").key_package().expect("kp");
    alice.commit(&[ghost], &[]).expect("commit");
    alice.confirm_pending_commit(T).expect("confirm");
    let mut bob = Participant::new(2, "bob", &[announced(1, "alice")], SessionConfig::default())
        .expect("bob");
    let kp = key_package_of(&bob.start());
    let c = alice.commit(&[kp], &[]).expect("commit");
    let out = bob.handle(
        ServerMessage::Welcome {
            epoch: 2,
            welcome: c.welcome.expect("welcome").into(),
        },
        T,
    );
    assert_eq!(
        epoch_event(&out),
        (vec![(1, LeafProblem::NotAnnounced)], false)
    );
}

#[test]
fn as_committer_it_adds_only_announced_participants_once_each() {
    let mut bob = Participant::new(2, "bob", &[], SessionConfig::default()).expect("bob");
    bob.handle(
        ServerMessage::CreateGroup {
            group_id: GROUP.to_vec().into(),
        },
        T,
    );
    bob.handle(ServerMessage::ParticipantJoined(announced(3, "carol")), T);
    let pending = |pid, kp: Vec<u8>| PendingAdd {
        participant_id: pid,
        key_package: kp.into(),
    };
    let carol = session(3, "carol").key_package().expect("kp");
    let carol_again = session(3, "carol").key_package().expect("kp");
    let ghost = session(99, "mallory").key_package().expect("kp");
    let misfiled = session(3, "carol").key_package().expect("kp");
    let out = bob.handle(
        ServerMessage::CommitRequest {
            epoch: 0,
            add: vec![
                pending(99, ghost.clone()),
                pending(3, carol),
                pending(3, carol_again),
                pending(5, misfiled),
            ],
            remove: vec![],
        },
        T,
    );
    let refused: Vec<ParticipantId> = events(&out)
        .iter()
        .filter_map(|e| match e {
            Event::RefusedAdd { participant_id, .. } => Some(*participant_id),
            _ => None,
        })
        .collect();
    assert_eq!(refused, vec![99, 3, 5]);
    let Some(ClientMessage::Commit(c)) = sent(&out).into_iter().next() else {
        panic!("a commit");
    };
    assert_eq!(c.added, vec![3]);
    bob.handle(
        ServerMessage::CommitRejected {
            epoch: 0,
            reason: signaling_protocol::CommitRejection::StaleEpoch,
        },
        T,
    );
    // Asked to add only the ghost: it commits nothing at all.
    let out = bob.handle(
        ServerMessage::CommitRequest {
            epoch: 0,
            add: vec![pending(99, ghost)],
            remove: vec![],
        },
        T,
    );
    assert!(sent(&out).is_empty());
}

#[test]
fn an_add_proposal_from_a_member_is_refused_and_never_committed() {
    let mut s = Scene::new();
    let ghost = session(99, "mallory").key_package().expect("kp");
    let proposal = s.alice.propose_add(&ghost).expect("proposal");
    let out = s.bob.handle(
        ServerMessage::Proposal {
            from: 1,
            proposal: proposal.into(),
        },
        T,
    );
    assert!(matches!(
        events(&out)[..],
        [Event::RefusedProposal { from: 1, .. }]
    ));
    // Bob's next commit carries nothing of it.
    let epoch = s.bob.session().epoch().expect("epoch");
    let out = s.bob.handle(
        ServerMessage::CommitRequest {
            epoch,
            add: vec![],
            remove: vec![1],
        },
        T,
    );
    let Some(ClientMessage::Commit(c)) = sent(&out).into_iter().next() else {
        panic!("a commit");
    };
    assert!(c.added.is_empty());
    let out = s.bob.handle(
        ServerMessage::Commit {
            epoch: epoch + 1,
            from: 2,
            commit: c.commit.clone(),
            added: vec![],
            removed: vec![1],
        },
        T,
    );
    assert_eq!(epoch_event(&out), (vec![], true));
    assert_eq!(s.bob.session().roster().len(), 1, "only bob: no ghost");
}

#[test]
fn a_commit_it_cannot_process_is_reported_with_a_fresh_key_package() {
    let mut s = Scene::new();
    let epoch = s.bob.session().epoch().expect("epoch");
    let mut c = s.alice.commit(&[], &[]).expect("commit").commit;
    let n = c.len();
    c[n - 130..n - 66].fill(0); // the signature
    let out = s.bob.handle(
        ServerMessage::Commit {
            epoch: epoch + 1,
            from: 1,
            commit: c.into(),
            added: vec![],
            removed: vec![],
        },
        T,
    );
    assert!(sent(&out).iter().any(|m| matches!(
        m,
        ClientMessage::CommitFailed { epoch: e, .. } if *e == epoch + 1
    )));
    assert!(
        events(&out)
            .iter()
            .any(|e| matches!(e, Event::GroupLost { .. }))
    );
    assert_eq!(s.bob.session().epoch(), None, "the group is dropped");
    // Told to rejoin instead, it drops the group and sends a key package.
    let mut s = Scene::new();
    let out = s.bob.handle(
        ServerMessage::Rejoin {
            reason: "re-created".into(),
        },
        T,
    );
    key_package_of(&out);
    assert_eq!(s.bob.session().epoch(), None);
}
