//! The delivery service driven directly, with real MLS members (media-crypto) and a fake clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use media_crypto::mls::{MlsSession, SessionConfig};
use signaling_protocol::{
    ClientMessage, CommitMessage, CommitRejection, ErrorCode, ParticipantId, ServerMessage,
    credential_identity,
};

use super::{Effect, RESUME_GRACE, Record, Room, RoomConfig};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A commit request: epoch, participants to add, to remove, and the key packages.
type Request = (u64, Vec<ParticipantId>, Vec<ParticipantId>, Vec<Vec<u8>>);

struct Harness {
    room: Room,
    now: Instant,
    t0: Instant,
    sessions: HashMap<ParticipantId, MlsSession>,
    /// Messages each participant received, in order.
    inbox: HashMap<ParticipantId, Vec<ServerMessage>>,
    closed: Vec<ParticipantId>,
    /// What the room asked to be written to its log, in order.
    records: Vec<Record>,
}

impl Harness {
    fn new(max_participants: usize) -> Self {
        let now = Instant::now();
        Harness {
            room: Room::new(
                "r",
                RoomConfig {
                    max_participants,
                    commit_timeout: TIMEOUT,
                    ice_servers: Default::default(),
                },
                [7; 16],
            ),
            now,
            t0: now,
            sessions: HashMap::new(),
            inbox: HashMap::new(),
            closed: Vec::new(),
            records: Vec::new(),
        }
    }

    fn mls_now(&self) -> Duration {
        self.now - self.t0
    }

    fn collect(&mut self) {
        for e in self.room.take_effects() {
            match e {
                Effect::Send(to, m) => self.inbox.entry(to).or_default().push(m),
                Effect::Broadcast(to, m) => {
                    for pid in to {
                        self.inbox.entry(pid).or_default().push(m.clone());
                    }
                }
                Effect::Close(to) => self.closed.push(to),
                Effect::Record(r) => self.records.push(r),
            }
        }
    }

    fn take(&mut self, pid: ParticipantId) -> Vec<ServerMessage> {
        self.inbox.remove(&pid).unwrap_or_default()
    }

    fn join(&mut self, pid: ParticipantId) {
        let name = format!("p{pid}");
        self.room
            .join(pid, name.clone(), true, self.now)
            .expect("join");
        let session =
            MlsSession::new(credential_identity(pid, &name), SessionConfig::default()).expect("s");
        self.sessions.insert(pid, session);
        self.collect();
    }

    fn send(&mut self, from: ParticipantId, m: ClientMessage) {
        self.room.handle(from, m, self.now);
        self.collect();
    }

    fn key_package(&mut self, pid: ParticipantId) {
        let kp = self
            .sessions
            .get_mut(&pid)
            .expect("s")
            .key_package()
            .expect("kp");
        self.send(
            pid,
            ClientMessage::KeyPackage {
                key_package: kp.into(),
            },
        );
    }

    /// Creates the group when the room asks `pid` to.
    fn create(&mut self, pid: ParticipantId) {
        let msgs = self.take(pid);
        let Some(ServerMessage::CreateGroup { group_id }) = msgs
            .into_iter()
            .find(|m| matches!(m, ServerMessage::CreateGroup { .. }))
        else {
            panic!("p{pid} was not asked to create the group");
        };
        let now = self.mls_now();
        let s = self.sessions.get_mut(&pid).expect("s");
        s.create_group(group_id.as_slice(), now).expect("create");
        let gi = s.group_info().expect("gi");
        self.send(
            pid,
            ClientMessage::GroupCreated {
                group_info: gi.into(),
            },
        );
    }

    /// The commit request `pid` holds, if any.
    fn request(&mut self, pid: ParticipantId) -> Option<Request> {
        let msgs = self.inbox.get_mut(&pid)?;
        let i = msgs
            .iter()
            .rposition(|m| matches!(m, ServerMessage::CommitRequest { .. }))?;
        let ServerMessage::CommitRequest { epoch, add, remove } = msgs.remove(i) else {
            unreachable!()
        };
        let pids = add.iter().map(|a| a.participant_id).collect();
        let kps = add.into_iter().map(|a| a.key_package.into_vec()).collect();
        Some((epoch, pids, remove, kps))
    }

    /// `pid` makes the commit it was asked for (without sending it).
    fn make_commit(&mut self, pid: ParticipantId) -> CommitMessage {
        let (epoch, added, removed, kps) = self.request(pid).expect("a commit request");
        let s = self.sessions.get_mut(&pid).expect("s");
        let roster = s.roster();
        let leaves: Vec<u32> = removed
            .iter()
            .filter_map(|r| {
                roster
                    .iter()
                    .find(|e| e.name().starts_with(&format!("{r}:")))
                    .map(|e| e.leaf)
            })
            .collect();
        let out = s.commit(&kps, &leaves).expect("commit");
        CommitMessage {
            epoch,
            commit: out.commit.into(),
            welcome: out.welcome.map(Into::into),
            group_info: out.group_info.expect("group info").into(),
            added,
            removed: removed
                .into_iter()
                .filter(|r| {
                    roster
                        .iter()
                        .any(|e| e.name().starts_with(&format!("{r}:")))
                })
                .collect(),
        }
    }

    /// Every participant applies what it received (commits, welcomes), and joiners
    /// acknowledge their Welcome.
    fn apply_all(&mut self) {
        let pids: Vec<_> = self.inbox.keys().copied().collect();
        let now = self.mls_now();
        let mut acks = Vec::new();
        for pid in pids {
            let msgs = self.inbox.get(&pid).cloned().unwrap_or_default();
            let Some(s) = self.sessions.get_mut(&pid) else {
                continue;
            };
            for m in msgs {
                match m {
                    ServerMessage::Commit { commit, .. } => {
                        s.process(commit.as_slice(), now).expect("process");
                    }
                    ServerMessage::Welcome { welcome, epoch } => {
                        s.join_from_welcome(welcome.as_slice(), now)
                            .expect("welcome");
                        acks.push((pid, epoch));
                    }
                    _ => {}
                }
            }
            self.inbox.get_mut(&pid).expect("inbox").retain(|m| {
                !matches!(
                    m,
                    ServerMessage::Commit { .. } | ServerMessage::Welcome { .. }
                )
            });
        }
        for (pid, epoch) in acks {
            self.send(pid, ClientMessage::WelcomeAck { epoch });
        }
    }

    fn assert_converged(&self, members: &[ParticipantId]) {
        let first = &self.sessions[&members[0]];
        for pid in members {
            let s = &self.sessions[pid];
            assert_eq!(s.epoch(), self.room.epoch(), "p{pid} epoch");
            assert_eq!(s.safety_number(), first.safety_number(), "p{pid}");
            assert_eq!(s.roster().len(), members.len(), "p{pid} roster");
        }
        let mut in_room = self.room.members();
        in_room.sort();
        let mut expected = members.to_vec();
        expected.sort();
        assert_eq!(in_room, expected);
    }

    /// Room of `n` members, all in the group.
    fn with_members(n: u64) -> Self {
        let mut h = Harness::new(100);
        h.join(1);
        h.create(1);
        for pid in 2..=n {
            h.join(pid);
            h.key_package(pid);
            let c = h.make_commit(1);
            h.send(1, ClientMessage::Commit(c));
            h.apply_all();
        }
        h
    }
}

#[test]
fn the_first_participant_creates_the_group_and_later_ones_are_added() {
    let mut h = Harness::new(10);
    h.join(1);
    assert_eq!(h.room.epoch(), None);
    h.create(1);
    assert_eq!(h.room.epoch(), Some(0));
    h.join(2);
    assert!(matches!(h.take(1)[0], ServerMessage::ParticipantJoined(_)));
    h.key_package(2);
    let c = h.make_commit(1);
    assert_eq!(c.added, vec![2]);
    h.send(1, ClientMessage::Commit(c));
    assert_eq!(h.room.epoch(), Some(1));
    // The committer gets its commit back as the acceptance; the joiner its welcome.
    assert!(matches!(
        h.inbox[&1][..],
        [ServerMessage::Commit {
            epoch: 1,
            from: 1,
            ..
        }]
    ));
    assert!(matches!(
        h.inbox[&2].last(),
        Some(ServerMessage::Welcome { epoch: 1, .. })
    ));
    h.apply_all();
    h.assert_converged(&[1, 2]);
}

#[test]
fn joins_during_a_commit_in_flight_go_into_the_next_one() {
    let mut h = Harness::with_members(2);
    h.join(3);
    h.key_package(3);
    // Two more arrive while the commit adding 3 is being made.
    h.join(4);
    h.key_package(4);
    h.join(5);
    h.key_package(5);
    let first = h.make_commit(1);
    assert_eq!(first.added, vec![3]);
    h.send(1, ClientMessage::Commit(first));
    h.apply_all();
    let second = h.make_commit(1);
    assert_eq!(second.added, vec![4, 5], "batched into one commit");
    h.send(1, ClientMessage::Commit(second));
    h.apply_all();
    h.assert_converged(&[1, 2, 3, 4, 5]);
    assert_eq!(h.room.epoch(), Some(3));
}

#[test]
fn of_two_commits_for_one_epoch_the_first_wins_and_the_second_is_stale() {
    let mut h = Harness::with_members(3);
    let epoch = h.room.epoch().expect("epoch");
    let now = h.mls_now();
    let commit_of = |h: &mut Harness, pid: ParticipantId| {
        let s = h.sessions.get_mut(&pid).expect("s");
        let out = s.commit(&[], &[]).expect("commit");
        let _ = now;
        CommitMessage {
            epoch,
            commit: out.commit.into(),
            welcome: None,
            group_info: out.group_info.expect("gi").into(),
            added: vec![],
            removed: vec![],
        }
    };
    let from2 = commit_of(&mut h, 2);
    let from3 = commit_of(&mut h, 3);
    h.send(2, ClientMessage::Commit(from2));
    h.send(3, ClientMessage::Commit(from3));
    assert_eq!(h.room.epoch(), Some(epoch + 1));
    assert_eq!(
        h.inbox[&3].last(),
        Some(&ServerMessage::CommitRejected {
            epoch: epoch + 1,
            reason: CommitRejection::StaleEpoch
        })
    );
    h.apply_all();
    h.assert_converged(&[1, 2, 3]);
    assert!(
        !h.sessions[&3].has_pending_commit(),
        "the loser's commit was voided"
    );
}

#[test]
fn a_committer_that_disconnects_mid_commit_is_replaced_at_once() {
    let mut h = Harness::with_members(3);
    h.join(4);
    h.key_package(4);
    assert!(h.request(1).is_some());
    h.room.disconnect(1, h.now);
    h.collect();
    // Member 2 is asked now, to add 4 and remove 1 together.
    let c = h.make_commit(2);
    assert_eq!((c.added.clone(), c.removed.clone()), (vec![4], vec![1]));
    h.send(2, ClientMessage::Commit(c));
    h.apply_all();
    h.assert_converged(&[2, 3, 4]);
}

#[test]
fn a_silent_committer_is_replaced_after_the_timeout() {
    let mut h = Harness::with_members(2);
    h.join(3);
    h.key_package(3);
    assert!(h.request(1).is_some());
    h.now += TIMEOUT - Duration::from_millis(1);
    h.room.tick(h.now);
    h.collect();
    assert!(h.request(2).is_none(), "not before the timeout");
    h.now += Duration::from_millis(1);
    h.room.tick(h.now);
    h.collect();
    let c = h.make_commit(2);
    h.send(2, ClientMessage::Commit(c));
    h.apply_all();
    // Member 1 was only slow: it is still in the group, on the same epoch.
    h.assert_converged(&[1, 2, 3]);
}

#[test]
fn a_member_who_disconnects_is_removed_in_the_next_epoch() {
    let mut h = Harness::with_members(3);
    let epoch = h.room.epoch().expect("epoch");
    h.room.disconnect(3, h.now);
    h.collect();
    assert_eq!(h.room.pending().1, vec![3]);
    let c = h.make_commit(1);
    h.send(1, ClientMessage::Commit(c));
    h.sessions.remove(&3);
    h.inbox.remove(&3);
    h.apply_all();
    assert_eq!(h.room.epoch(), Some(epoch + 1));
    h.assert_converged(&[1, 2]);
}

#[test]
fn when_the_last_member_leaves_a_waiting_participant_starts_a_new_group() {
    let mut h = Harness::with_members(1);
    let old_group = h.room.group_id();
    h.join(2);
    h.key_package(2);
    h.room.disconnect(1, h.now);
    h.collect();
    assert_eq!(h.room.epoch(), None);
    assert_ne!(h.room.group_id(), old_group);
    assert_eq!(h.room.pending(), (vec![], vec![]));
    h.create(2);
    assert_eq!(h.room.epoch(), Some(0));
}

#[test]
fn bad_key_packages_and_commits_get_typed_errors_and_change_nothing() {
    let mut h = Harness::with_members(2);
    let epoch = h.room.epoch();
    h.join(3);
    h.take(1);
    h.take(2);
    h.send(
        3,
        ClientMessage::KeyPackage {
            key_package: vec![1, 2, 3].into(),
        },
    );
    assert!(matches!(
        h.take(3).last(),
        Some(ServerMessage::Error {
            code: ErrorCode::InvalidMls,
            ..
        })
    ));
    // Someone else's key package: its credential names participant 2, not 3.
    let kp = h
        .sessions
        .get_mut(&2)
        .expect("s")
        .key_package()
        .expect("kp");
    h.send(
        3,
        ClientMessage::KeyPackage {
            key_package: kp.into(),
        },
    );
    assert!(matches!(
        h.take(3).last(),
        Some(ServerMessage::Error {
            code: ErrorCode::CredentialMismatch,
            ..
        })
    ));
    let garbage = CommitMessage {
        epoch: epoch.expect("epoch"),
        commit: vec![0xff; 40].into(),
        welcome: None,
        group_info: vec![0; 4].into(),
        added: vec![],
        removed: vec![],
    };
    h.send(1, ClientMessage::Commit(garbage.clone()));
    assert!(matches!(
        h.take(1).last(),
        Some(ServerMessage::CommitRejected {
            reason: CommitRejection::InvalidMls,
            ..
        })
    ));
    h.send(3, ClientMessage::Commit(garbage));
    assert!(matches!(
        h.take(3).last(),
        Some(ServerMessage::CommitRejected {
            reason: CommitRejection::NotAMember,
            ..
        })
    ));
    assert_eq!(h.room.epoch(), epoch);
    assert_eq!(h.room.pending(), (vec![], vec![]));
    assert!(h.inbox.is_empty(), "nothing went to anyone else");
}

#[test]
fn a_full_room_refuses_the_next_participant() {
    let mut h = Harness::new(2);
    h.join(1);
    h.join(2);
    assert_eq!(
        h.room.join(3, "p3".into(), true, h.now),
        Err(ErrorCode::RoomFull)
    );
    assert_eq!(h.room.len(), 2);
}

#[test]
fn leaving_says_goodbye_closes_and_queues_the_removal() {
    let mut h = Harness::with_members(2);
    h.take(1);
    h.send(2, ClientMessage::Leave);
    assert!(matches!(
        h.take(2).last(),
        Some(ServerMessage::Goodbye { .. })
    ));
    assert_eq!(h.closed, vec![2]);
    assert!(matches!(
        h.inbox[&1][..],
        [
            ServerMessage::ParticipantLeft { participant_id: 2 },
            ServerMessage::CommitRequest { .. }
        ]
    ));
}

// ---- a hostile or broken member, and the delivery service's verification ----

/// Zeroes the signature of a commit `PublicMessage`: its tail is the signature (64 bytes),
/// the confirmation tag and the membership tag (32 bytes each), each behind a one-byte length.
fn zero_signature(commit: &mut [u8]) {
    let n = commit.len();
    assert_eq!(
        (commit[n - 131], commit[n - 66], commit[n - 33]),
        (64, 32, 32),
        "the commit's tail is signature, confirmation tag, membership tag"
    );
    commit[n - 130..n - 66].fill(0);
}

fn rejection(h: &mut Harness, pid: ParticipantId) -> Option<CommitRejection> {
    h.take(pid).into_iter().rev().find_map(|m| match m {
        ServerMessage::CommitRejected { reason, .. } => Some(reason),
        _ => None,
    })
}

#[test]
fn a_commit_with_a_zeroed_signature_is_refused_and_the_group_goes_on() {
    let mut h = Harness::with_members(2);
    let epoch = h.room.epoch();
    for _ in 0..3 {
        let mut c = {
            let s = h.sessions.get_mut(&1).expect("s");
            let out = s.commit(&[], &[]).expect("commit");
            s.discard_pending_commit().expect("discard");
            CommitMessage {
                epoch: epoch.expect("epoch"),
                commit: out.commit.into(),
                welcome: None,
                group_info: out.group_info.expect("gi").into(),
                added: vec![],
                removed: vec![],
            }
        };
        let mut bytes = c.commit.into_vec();
        zero_signature(&mut bytes);
        c.commit = bytes.into();
        h.send(1, ClientMessage::Commit(c));
        assert_eq!(rejection(&mut h, 1), Some(CommitRejection::InvalidMls));
    }
    assert_eq!(h.room.epoch(), epoch, "no forged commit moved the group");
    // Honest members still converge and a joiner still gets in.
    h.join(3);
    h.key_package(3);
    let c = h.make_commit(1);
    h.send(1, ClientMessage::Commit(c));
    h.apply_all();
    h.assert_converged(&[1, 2, 3]);
}

#[test]
fn a_commit_whose_lists_lie_is_refused() {
    let mut h = Harness::with_members(2);
    h.join(3);
    h.key_package(3);
    let honest = h.make_commit(1);
    // Says it adds someone who never sent a key package.
    let mut more = honest.clone();
    more.added.push(2);
    h.send(1, ClientMessage::Commit(more));
    assert_eq!(rejection(&mut h, 1), Some(CommitRejection::NotAsQueued));
    // Says it removes bob, without removing his leaf.
    let mut removes_bob = honest.clone();
    removes_bob.removed.push(2);
    h.send(1, ClientMessage::Commit(removes_bob));
    assert_eq!(rejection(&mut h, 1), Some(CommitRejection::NotAsQueued));
    // Hides the add it makes.
    let mut hides = honest.clone();
    hides.added.clear();
    h.send(1, ClientMessage::Commit(hides));
    assert_eq!(rejection(&mut h, 1), Some(CommitRejection::NotAsQueued));
    assert_eq!(h.room.members(), vec![1, 2], "nobody was made a member");
    // The honest version is still good.
    h.send(1, ClientMessage::Commit(honest));
    h.apply_all();
    h.assert_converged(&[1, 2, 3]);
}

#[test]
fn a_member_cannot_add_a_key_package_the_room_never_queued() {
    let mut h = Harness::with_members(2);
    let mut ghost =
        MlsSession::new(credential_identity(99, "ghost"), SessionConfig::default()).expect("s");
    let ghost_kp = ghost.key_package().expect("kp");
    let epoch = h.room.epoch().expect("epoch");
    let s = h.sessions.get_mut(&1).expect("s");
    let out = s
        .commit(std::slice::from_ref(&ghost_kp), &[])
        .expect("commit");
    s.discard_pending_commit().expect("discard");
    for added in [vec![], vec![99]] {
        let c = CommitMessage {
            epoch,
            commit: out.commit.clone().into(),
            welcome: out.welcome.clone().map(Into::into),
            group_info: out.group_info.clone().expect("gi").into(),
            added,
            removed: vec![],
        };
        h.send(1, ClientMessage::Commit(c));
        assert_eq!(rejection(&mut h, 1), Some(CommitRejection::NotAsQueued));
    }
    // Nor by an Add proposal: refused, and relayed to nobody.
    let proposal = h
        .sessions
        .get_mut(&2)
        .expect("s")
        .propose_add(&ghost_kp)
        .expect("proposal");
    h.take(1);
    h.send(
        2,
        ClientMessage::Proposal {
            epoch,
            proposal: proposal.into(),
        },
    );
    assert!(matches!(
        h.take(2).last(),
        Some(ServerMessage::Error {
            code: ErrorCode::ProposalRefused,
            ..
        })
    ));
    assert!(h.take(1).is_empty(), "member 1 saw nothing of it");
    assert_eq!(h.room.epoch(), Some(epoch));
}

#[test]
fn a_welcome_for_other_key_packages_is_refused() {
    let mut h = Harness::with_members(2);
    h.join(3);
    h.key_package(3);
    let mut c = h.make_commit(1);
    // A Welcome from another commit, for someone else's key package.
    let mut other =
        MlsSession::new(credential_identity(98, "other"), SessionConfig::default()).expect("s");
    let other_kp = other.key_package().expect("kp");
    let s = h.sessions.get_mut(&2).expect("s");
    let theirs = s.commit(&[other_kp], &[]).expect("commit");
    s.discard_pending_commit().expect("discard");
    c.welcome = theirs.welcome.map(Into::into);
    h.send(1, ClientMessage::Commit(c));
    assert_eq!(rejection(&mut h, 1), Some(CommitRejection::InvalidMls));
    assert!(
        h.take(3)
            .iter()
            .all(|m| !matches!(m, ServerMessage::Welcome { .. }))
    );
}

#[test]
fn a_joiner_is_a_member_only_once_it_acknowledges_and_one_that_cannot_is_added_again() {
    let mut h = Harness::with_members(2);
    h.join(3);
    h.key_package(3);
    let c = h.make_commit(1);
    h.send(1, ClientMessage::Commit(c));
    assert_eq!(h.room.members(), vec![1, 2], "welcomed, not yet a member");
    assert!(
        h.take(3)
            .iter()
            .any(|m| matches!(m, ServerMessage::Welcome { .. }))
    );
    // Its Welcome did not work: it sends a fresh key package instead of an acknowledgement.
    h.sessions.insert(
        3,
        MlsSession::new(credential_identity(3, "p3"), SessionConfig::default()).expect("s"),
    );
    h.apply_all();
    h.key_package(3);
    let (_, add, remove, _) = h.request(1).expect("request");
    assert_eq!(
        (add, remove),
        (vec![3], vec![3]),
        "old leaf out, new one in"
    );
    h.inbox.get_mut(&1).expect("inbox").clear();
    h.room.tick(h.now + TIMEOUT);
    h.collect();
    // (member 1 was slow; member 2 is asked and does it)
    let c = h.make_commit(2);
    h.send(2, ClientMessage::Commit(c));
    h.apply_all();
    h.assert_converged(&[1, 2, 3]);
}

#[test]
fn a_joiner_that_never_acknowledges_is_told_to_rejoin_and_its_leaf_goes() {
    let mut h = Harness::with_members(2);
    h.join(3);
    h.key_package(3);
    let c = h.make_commit(1);
    h.send(1, ClientMessage::Commit(c));
    h.inbox.remove(&3);
    h.apply_all();
    h.now += TIMEOUT;
    h.room.tick(h.now);
    h.collect();
    assert!(
        h.take(3)
            .iter()
            .any(|m| matches!(m, ServerMessage::Rejoin { .. }))
    );
    assert_eq!(h.room.pending().1, vec![3]);
}

#[test]
fn a_creator_that_never_creates_is_passed_over() {
    let mut h = Harness::new(10);
    h.join(1);
    h.join(2);
    assert!(
        h.take(2)
            .iter()
            .all(|m| !matches!(m, ServerMessage::CreateGroup { .. }))
    );
    h.now += TIMEOUT;
    h.room.tick(h.now);
    h.collect();
    h.create(2);
    assert_eq!(h.room.epoch(), Some(0));
    // The silent one can still join the group it did not make.
    h.key_package(1);
    let c = h.make_commit(2);
    h.send(2, ClientMessage::Commit(c));
    h.apply_all();
    h.assert_converged(&[1, 2]);
}

#[test]
fn a_member_that_cannot_process_a_commit_is_added_again() {
    let mut h = Harness::with_members(3);
    let epoch = h.room.epoch().expect("epoch");
    let mut fresh =
        MlsSession::new(credential_identity(3, "p3"), SessionConfig::default()).expect("s");
    let key_package = fresh.key_package().expect("kp").into();
    h.sessions.insert(3, fresh);
    h.send(
        3,
        ClientMessage::CommitFailed {
            epoch,
            reason: "test".into(),
            key_package,
        },
    );
    assert_eq!(h.room.members(), vec![1, 2]);
    let c = h.make_commit(1);
    assert_eq!((c.added.clone(), c.removed.clone()), (vec![3], vec![3]));
    h.send(1, ClientMessage::Commit(c));
    h.apply_all();
    h.assert_converged(&[1, 2, 3]);
}

#[test]
fn when_only_its_author_could_process_a_commit_the_group_is_made_again_by_another() {
    let mut h = Harness::with_members(3);
    let epoch = h.room.epoch().expect("epoch");
    // Member 1 commits (a key update); 2 and 3 say they cannot process it.
    let s = h.sessions.get_mut(&1).expect("s");
    let out = s.commit(&[], &[]).expect("commit");
    h.send(
        1,
        ClientMessage::Commit(CommitMessage {
            epoch,
            commit: out.commit.into(),
            welcome: None,
            group_info: out.group_info.expect("gi").into(),
            added: vec![],
            removed: vec![],
        }),
    );
    let old_group = h.room.group_id();
    let mut fresh = HashMap::new();
    for pid in [1, 2, 3] {
        fresh.insert(
            pid,
            MlsSession::new(
                credential_identity(pid, &format!("p{pid}")),
                SessionConfig::default(),
            )
            .expect("s"),
        );
    }
    for pid in [2, 3] {
        let key_package = fresh.get_mut(&pid).expect("s").key_package().expect("kp");
        h.send(
            pid,
            ClientMessage::CommitFailed {
                epoch: epoch + 1,
                reason: "test".into(),
                key_package: key_package.into(),
            },
        );
    }
    assert_ne!(h.room.group_id(), old_group, "a new group");
    assert!(
        h.take(1)
            .iter()
            .any(|m| matches!(m, ServerMessage::Rejoin { .. })),
        "the author is told to rejoin"
    );
    // Member 2, the first to report, makes the new group; the others join it (3's key
    // package from its report is still queued: it is for no group in particular).
    h.sessions = fresh;
    h.take(1);
    h.take(3);
    h.key_package(1);
    h.create(2);
    let c = h.make_commit(2);
    h.send(2, ClientMessage::Commit(c));
    h.apply_all();
    h.assert_converged(&[1, 2, 3]);
}

#[test]
fn when_no_member_commits_in_time_the_group_is_made_again() {
    let mut h = Harness::with_members(2);
    h.join(3);
    h.key_package(3);
    let old_group = h.room.group_id();
    for _ in 0..2 {
        h.now += TIMEOUT;
        h.room.tick(h.now);
        h.collect();
    }
    assert_ne!(h.room.group_id(), old_group);
    assert_eq!(h.room.epoch(), None);
    let asked: Vec<_> = [1, 2, 3]
        .into_iter()
        .filter(|&p| {
            h.inbox.get(&p).is_some_and(|ms| {
                ms.iter()
                    .any(|m| matches!(m, ServerMessage::CreateGroup { .. }))
            })
        })
        .collect();
    assert_eq!(asked.len(), 1, "one participant is asked to create it");
}

#[test]
fn a_member_leaving_by_proposal_is_removed_and_proposals_are_capped() {
    let mut h = Harness::with_members(3);
    let epoch = h.room.epoch().expect("epoch");
    let leave = h.sessions.get_mut(&3).expect("s").leave().expect("leave");
    h.take(1);
    h.send(
        3,
        ClientMessage::Proposal {
            epoch,
            proposal: leave.clone().into(),
        },
    );
    assert!(
        h.inbox[&1]
            .iter()
            .any(|m| matches!(m, ServerMessage::Proposal { from: 3, .. }))
    );
    let now = h.mls_now();
    for pid in [1, 2] {
        let s = h.sessions.get_mut(&pid).expect("s");
        s.process(&leave, now).expect("proposal");
    }
    // Resent again and again: the room relays only so many in an epoch.
    let mut refused = 0;
    for _ in 0..40 {
        h.send(
            3,
            ClientMessage::Proposal {
                epoch,
                proposal: leave.clone().into(),
            },
        );
        if h.take(3).iter().any(|m| {
            matches!(
                m,
                ServerMessage::Error {
                    code: ErrorCode::RateLimited,
                    ..
                }
            )
        }) {
            refused += 1;
        }
    }
    assert!(refused > 20, "refused {refused}");
    let (_, _, remove, _) = h.request(1).expect("request");
    assert_eq!(remove, vec![3]);
}

#[test]
fn a_device_that_rejoins_before_its_old_connection_is_gone_waits_for_it() {
    use media_crypto::mls::DeviceKey;
    let mut h = Harness::with_members(3);
    let suite = SessionConfig::default().ciphersuite;
    let device = h.sessions[&3].device_key().to_bytes();
    // The page reloads: participant 4 is the same device as 3, whose connection lingers.
    h.join(4);
    h.sessions.insert(
        4,
        MlsSession::with_device_key(
            credential_identity(4, "p4"),
            DeviceKey::from_bytes(&device, suite).expect("device"),
            SessionConfig::default(),
        )
        .expect("session"),
    );
    h.key_package(4);
    assert!(
        h.request(1).is_none(),
        "no commit while the key is in the group"
    );
    // The old connection is noticed gone: one commit removes it and adds the new one.
    h.room.disconnect(3, h.now);
    h.collect();
    h.sessions.remove(&3);
    h.inbox.remove(&3);
    let c = h.make_commit(1);
    assert_eq!((c.added.clone(), c.removed.clone()), (vec![4], vec![3]));
    h.send(1, ClientMessage::Commit(c));
    h.apply_all();
    h.assert_converged(&[1, 2, 4]);
}

/// `pid` seals `text` as an application message of its current epoch.
fn seal(h: &mut Harness, pid: ParticipantId, text: &str) -> (u64, Vec<u8>) {
    let s = h.sessions.get_mut(&pid).expect("s");
    s.seal_application(text.as_bytes()).expect("seal")
}

fn application_rejection(h: &mut Harness, pid: ParticipantId) -> Option<(u64, CommitRejection)> {
    h.take(pid).into_iter().rev().find_map(|m| match m {
        ServerMessage::ApplicationRejected { id, reason, .. } => Some((id, reason)),
        _ => None,
    })
}

#[test]
fn application_messages_reach_the_other_members_only_and_only_in_their_epoch() {
    let mut h = Harness::with_members(3);
    h.join(4); // in the room, not yet in the group
    for p in 1..=4 {
        h.take(p);
    }
    let (epoch, sealed) = seal(&mut h, 1, "hello");
    h.send(
        1,
        ClientMessage::Application {
            id: 7,
            epoch,
            message: sealed.clone().into(),
        },
    );
    assert!(h.take(1).is_empty(), "not echoed to its sender");
    assert!(h.take(4).is_empty(), "not to someone outside the group");
    for p in [2, 3] {
        let got = h.take(p);
        let [
            ServerMessage::Application {
                from: 1,
                epoch: e,
                message,
            },
        ] = got.as_slice()
        else {
            panic!("p{p} got {got:?}");
        };
        assert_eq!(*e, epoch);
        let s = h.sessions.get_mut(&p).expect("s");
        assert_eq!(
            s.open_application(message.as_slice())
                .expect("open")
                .plaintext,
            b"hello"
        );
    }

    // After the next commit the old epoch's messages are refused back, never relayed.
    let (old_epoch, stale) = seal(&mut h, 2, "late");
    h.key_package(4);
    let c = h.make_commit(1);
    h.send(1, ClientMessage::Commit(c));
    h.apply_all();
    for p in 1..=4 {
        h.take(p);
    }
    h.send(
        2,
        ClientMessage::Application {
            id: 8,
            epoch: old_epoch,
            message: stale.clone().into(),
        },
    );
    assert_eq!(
        application_rejection(&mut h, 2),
        Some((8, CommitRejection::StaleEpoch))
    );
    // Nor does naming the new epoch smuggle the old message through.
    h.send(
        2,
        ClientMessage::Application {
            id: 9,
            epoch: old_epoch + 1,
            message: stale.into(),
        },
    );
    assert_eq!(
        application_rejection(&mut h, 2),
        Some((9, CommitRejection::StaleEpoch))
    );
    assert!(
        [1, 3, 4].iter().all(|&p| h.take(p).is_empty()),
        "nothing relayed"
    );
}

#[test]
fn handshakes_junk_and_non_members_are_not_relayed_as_application_messages() {
    let mut h = Harness::with_members(2);
    h.join(3);
    for p in 1..=3 {
        h.take(p);
    }
    let epoch = h.room.epoch().expect("epoch");
    let update = h
        .sessions
        .get_mut(&1)
        .expect("s")
        .commit(&[], &[])
        .expect("commit");
    for (id, bytes) in [(1, update.commit), (2, b"junk".to_vec())] {
        h.send(
            1,
            ClientMessage::Application {
                id,
                epoch,
                message: bytes.into(),
            },
        );
        assert_eq!(
            application_rejection(&mut h, 1),
            Some((id, CommitRejection::InvalidMls))
        );
    }
    // p3 is in the room but not in the group: whatever it sends goes nowhere.
    let (_, sealed) = seal(&mut h, 2, "hi");
    h.send(
        3,
        ClientMessage::Application {
            id: 3,
            epoch,
            message: sealed.into(),
        },
    );
    assert_eq!(
        application_rejection(&mut h, 3),
        Some((3, CommitRejection::NotAMember))
    );
    assert!(h.take(2).is_empty() && h.take(1).is_empty());
}

/// The room rebuilt from its records, as a node taking it over does, with every member's
/// session carried over (their connections stay open through the move).
fn taken_over(h: &Harness) -> Harness {
    let room =
        Room::restore("r", h.room.config().clone(), [9; 16], &h.records, h.now).expect("restore");
    Harness {
        room,
        now: h.now,
        t0: h.t0,
        sessions: HashMap::new(),
        inbox: HashMap::new(),
        closed: Vec::new(),
        records: Vec::new(),
    }
}

#[test]
fn a_room_rebuilt_from_its_records_is_the_same_group_and_goes_on() {
    let mut h = Harness::with_members(3);
    // Member 2 leaves itself by proposal: a later commit names that proposal by reference.
    let epoch = h.room.epoch().expect("epoch");
    let leave = h
        .sessions
        .get_mut(&2)
        .expect("s")
        .leave()
        .expect("proposal");
    h.send(
        2,
        ClientMessage::Proposal {
            epoch,
            proposal: leave.clone().into(),
        },
    );
    let now = h.mls_now();
    for pid in [1, 3] {
        let s = h.sessions.get_mut(&pid).expect("s");
        s.process(&leave, now).expect("proposal");
    }
    assert!(
        matches!(h.records.last(), Some(Record::Proposal { .. })),
        "{:?}",
        h.records.last()
    );
    let mut t = taken_over(&h);
    assert_eq!(t.room.epoch(), h.room.epoch());
    assert_eq!(
        t.room.group_id(),
        h.room.group_id(),
        "the same group, not a new one"
    );
    assert_eq!(t.room.leaves(), h.room.leaves());
    assert_eq!(t.room.group_info(), h.room.group_info());
    t.sessions = std::mem::take(&mut h.sessions);
    // Members come back: nothing is said, nothing asked until all are back.
    for pid in [1, 2] {
        t.room
            .resume(pid, format!("p{pid}"), true, t.now)
            .expect("resume");
        t.collect();
    }
    assert!(t.inbox.is_empty(), "{:?}", t.inbox);
    assert!(t.room.resuming());
    t.room.resume(3, "p3".into(), true, t.now).expect("resume");
    t.collect();
    assert!(!t.room.resuming(), "everyone is back");
    // The queued self-removal is committed at the new home, and everyone follows it.
    let committer = t.asked_to_commit(&[1, 3]);
    let c = t.make_commit(committer);
    assert_eq!(c.removed, vec![2]);
    t.send(committer, ClientMessage::Commit(c));
    t.apply_all();
    assert_eq!(t.room.epoch(), Some(epoch + 1));
    t.room.disconnect(2, t.now);
    t.collect();
    t.assert_converged(&[1, 3]);
}

#[test]
fn members_that_do_not_come_back_to_a_rebuilt_room_are_removed_after_the_grace() {
    let mut h = Harness::with_members(3);
    let epoch = h.room.epoch().expect("epoch");
    let mut t = taken_over(&h);
    t.sessions = std::mem::take(&mut h.sessions);
    t.room.resume(1, "p1".into(), true, t.now).expect("resume");
    t.room.resume(2, "p2".into(), true, t.now).expect("resume");
    t.collect();
    // Member 3's node is gone with it. Before the grace is over, nothing happens.
    assert_eq!(t.room.deadline(), Some(t.now + RESUME_GRACE));
    t.room.tick(t.now + RESUME_GRACE / 2);
    t.collect();
    assert!(t.inbox.is_empty(), "{:?}", t.inbox);
    t.now += RESUME_GRACE;
    t.room.tick(t.now);
    t.collect();
    // Then everyone is told it left, and the next commit removes its leaf.
    for pid in [1, 2] {
        assert!(
            t.inbox[&pid]
                .iter()
                .any(|m| matches!(m, ServerMessage::ParticipantLeft { participant_id: 3 })),
            "p{pid}: {:?}",
            t.inbox[&pid]
        );
    }
    let committer = t.asked_to_commit(&[1, 2]);
    let c = t.make_commit(committer);
    assert_eq!(c.removed, vec![3]);
    t.send(committer, ClientMessage::Commit(c));
    t.apply_all();
    assert_eq!(t.room.epoch(), Some(epoch + 1));
    t.assert_converged(&[1, 2]);
}

#[test]
fn a_participant_that_was_not_yet_a_member_is_sent_away_to_join_afresh() {
    let mut h = Harness::with_members(2);
    h.join(3);
    h.key_package(3);
    let mut t = taken_over(&h);
    t.room.resume(3, "p3".into(), true, t.now).expect("resume");
    t.collect();
    assert_eq!(t.closed, vec![3]);
    assert_eq!(t.room.len(), 0);
}

#[test]
fn a_room_that_never_had_a_group_or_dropped_it_restores_without_one() {
    let h = Harness::new(10);
    let t = taken_over(&h);
    assert_eq!(t.room.epoch(), None);
    assert!(!t.room.resuming());
    let mut h = Harness::with_members(1);
    h.room.disconnect(1, h.now);
    h.collect();
    assert!(matches!(h.records.last(), Some(Record::Dropped { .. })));
    let t = taken_over(&h);
    assert_eq!(t.room.epoch(), None);
    assert_ne!(
        t.room.group_id(),
        h.records_group_id(),
        "the next group gets a new id"
    );
}

impl Harness {
    /// Which of `among` holds a commit request.
    fn asked_to_commit(&self, among: &[ParticipantId]) -> ParticipantId {
        among
            .iter()
            .copied()
            .find(|p| {
                self.inbox.get(p).is_some_and(|m| {
                    m.iter()
                        .any(|m| matches!(m, ServerMessage::CommitRequest { .. }))
                })
            })
            .expect("someone is asked to commit")
    }

    /// The id of the group the records created first.
    fn records_group_id(&self) -> Vec<u8> {
        match &self.records[0] {
            Record::Created {
                group_id_base,
                generation,
                ..
            } => [group_id_base.as_slice(), &generation.to_be_bytes()].concat(),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn records_that_do_not_replay_are_refused_not_half_applied() {
    let h = Harness::with_members(2);
    let mut records = h.records.clone();
    // A commit out of order: the second commit before the first.
    let commit = records
        .iter()
        .position(|r| matches!(r, Record::Commit { .. }))
        .expect("a commit");
    records.remove(commit);
    records.push(h.records[commit].clone());
    records.swap(0, 1);
    assert!(Room::restore("r", h.room.config().clone(), [9; 16], &records, h.now).is_err());
}

#[test]
fn a_rebuilt_room_does_not_wait_for_members_whose_nodes_are_gone() {
    let mut h = Harness::with_members(3);
    let epoch = h.room.epoch().expect("epoch");
    let mut t = taken_over(&h);
    t.sessions = std::mem::take(&mut h.sessions);
    // Member 3's node died: the cluster says so, and the room waits only for 1 and 2.
    t.room.give_up(|p| p == 3, t.now);
    assert!(t.room.resuming(), "1 and 2 may still come back");
    t.room.resume(1, "p1".into(), true, t.now).expect("resume");
    t.room.resume(2, "p2".into(), true, t.now).expect("resume");
    t.collect();
    assert!(!t.room.resuming(), "nobody else to wait for: no grace");
    assert!(
        t.inbox[&1]
            .iter()
            .any(|m| matches!(m, ServerMessage::ParticipantLeft { participant_id: 3 }))
    );
    let committer = t.asked_to_commit(&[1, 2]);
    let c = t.make_commit(committer);
    assert_eq!(c.removed, vec![3]);
    t.send(committer, ClientMessage::Commit(c));
    t.apply_all();
    assert_eq!(t.room.epoch(), Some(epoch + 1));
}

#[test]
fn a_joiner_while_a_rebuilt_room_waits_sees_the_members_and_they_see_it() {
    let mut h = Harness::with_members(2);
    let mut t = taken_over(&h);
    t.sessions = std::mem::take(&mut h.sessions);
    // A newcomer arrives before the members are back: they are present as far as it knows,
    // so it sends its key package at once.
    t.room.join(9, "p9".into(), true, t.now).expect("join");
    t.collect();
    let Some(ServerMessage::Joined { participants, .. }) = t.take(9).into_iter().next() else {
        panic!("joined");
    };
    let mut named: Vec<_> = participants
        .iter()
        .map(|p| (p.participant_id, p.identity.as_str()))
        .collect();
    named.sort();
    assert_eq!(named, vec![(1, "p1"), (2, "p2")]);
    // The members coming back are told of it (it joined while they were away).
    t.room.resume(1, "p1".into(), true, t.now).expect("resume");
    t.collect();
    assert!(
        t.take(1)
            .iter()
            .any(|m| matches!(m, ServerMessage::ParticipantJoined(p) if p.participant_id == 9))
    );
}
