//! MLS sessions driving SFrame keyrings: members converge, leave and join with exactly the
//! keys they should have.

use std::time::Duration;

use media_crypto::mls::{Misuse, MlsError, MlsSession, PeerFault, Processed, SessionConfig};
use media_crypto::sframe::DecryptError;

const T0: Duration = Duration::ZERO;

fn member(name: &str) -> MlsSession {
    MlsSession::new(name, SessionConfig::default()).expect("session")
}

/// Plays the delivery service for one accepted commit: the committer confirms, the others
/// process it, a welcome (if any) goes to the joiners.
fn deliver(
    committer: &mut MlsSession,
    others: &mut [&mut MlsSession],
    joiners: &mut [&mut MlsSession],
    adds: &[Vec<u8>],
    removes: &[u32],
    now: Duration,
) {
    let out = committer.commit(adds, removes).expect("commit");
    committer.confirm_pending_commit(now).expect("confirm");
    for m in others.iter_mut() {
        m.process(&out.commit, now).expect("process commit");
    }
    if !joiners.is_empty() {
        let welcome = out.welcome.expect("welcome");
        for j in joiners.iter_mut() {
            j.join_from_welcome(&welcome, now).expect("join");
        }
    }
}

fn three() -> (MlsSession, MlsSession, MlsSession) {
    let (mut a, mut b, mut c) = (member("alice"), member("bob"), member("carol"));
    a.create_group(b"room", T0).expect("create");
    let kps = vec![b.key_package().expect("kp"), c.key_package().expect("kp")];
    deliver(&mut a, &mut [], &mut [&mut b, &mut c], &kps, &[], T0);
    (a, b, c)
}

fn assert_converged(members: &[&MlsSession]) {
    let first = members[0];
    for m in members {
        assert_eq!(m.epoch(), first.epoch());
        assert_eq!(m.safety_number(), first.safety_number());
        assert_eq!(
            *m.epoch_key().expect("key").base_key,
            *first.epoch_key().expect("key").base_key
        );
        assert_eq!(m.roster(), first.roster());
    }
}

#[test]
fn three_members_converge_on_epoch_exporter_and_safety_number() {
    let (a, b, c) = three();
    assert_eq!(a.epoch(), Some(1));
    assert_converged(&[&a, &b, &c]);
    let names: Vec<String> = a.roster().iter().map(|r| r.name()).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    assert!(a.safety_number().expect("number").digits().len() >= 30);
}

#[test]
fn every_member_decrypts_every_other_members_frames() {
    let (mut a, mut b, mut c) = three();
    let fa = a
        .keyring_mut()
        .encrypt(b"", b"from alice")
        .expect("encrypt");
    let fb = b.keyring_mut().encrypt(b"", b"from bob").expect("encrypt");
    let (r, pt) = c.keyring_mut().decrypt(b"", &fa, T0).expect("decrypt");
    assert_eq!((r.sender, pt.as_slice()), (0, &b"from alice"[..]));
    let (r, pt) = a.keyring_mut().decrypt(b"", &fb, T0).expect("decrypt");
    assert_eq!((r.sender, pt.as_slice()), (1, &b"from bob"[..]));
}

#[test]
fn a_removed_member_cannot_decrypt_the_next_epoch() {
    let (mut a, mut b, mut c) = three();
    let out = a.commit(&[], &[2]).expect("remove carol");
    a.confirm_pending_commit(T0).expect("confirm");
    b.process(&out.commit, T0).expect("bob");
    assert_eq!(
        c.process(&out.commit, T0),
        Ok(Processed::Removed { epoch: 2 })
    );
    assert!(!c.is_member());
    assert_eq!(a.roster().len(), 2);

    let frame = a.keyring_mut().encrypt(b"", b"secret").expect("encrypt");
    assert!(b.keyring_mut().decrypt(b"", &frame, T0).is_ok());
    let err = c
        .keyring_mut()
        .decrypt(b"", &frame, T0)
        .expect_err("carol must not read epoch 2");
    assert!(err.is_no_key_yet(), "{err}");
}

#[test]
fn a_joiner_cannot_decrypt_frames_from_before_it_joined() {
    let (mut a, mut b, _c) = three();
    let before = a
        .keyring_mut()
        .encrypt(b"", b"before dave")
        .expect("encrypt");
    let mut d = member("dave");
    let kp = d.key_package().expect("kp");
    deliver(&mut a, &mut [&mut b], &mut [&mut d], &[kp], &[], T0);
    assert_eq!(d.epoch(), Some(2));
    let err = d
        .keyring_mut()
        .decrypt(b"", &before, T0)
        .expect_err("dave must not read epoch 1");
    // Told apart from a key still to come: nothing to wait for.
    assert!(
        matches!(err, DecryptError::BeforeJoin { epoch: 1, .. }),
        "{err}"
    );
    let after = a.keyring_mut().encrypt(b"", b"hi dave").expect("encrypt");
    assert!(d.keyring_mut().decrypt(b"", &after, T0).is_ok());
}

#[test]
fn a_frame_of_epoch_n_decrypts_on_n_plus_1_within_the_grace_time_only() {
    let (mut a, mut b, mut c) = three();
    let grace = SessionConfig::default().keyring.grace;
    let in_flight = b.keyring_mut().encrypt(b"", b"epoch 1").expect("encrypt");
    let late = b
        .keyring_mut()
        .encrypt(b"", b"epoch 1, late")
        .expect("encrypt");
    let t = Duration::from_secs(100);
    // Alice and carol move to epoch 2 at t; bob's frames were sent in epoch 1.
    let out = a.commit(&[], &[]).expect("key update");
    a.confirm_pending_commit(t).expect("confirm");
    c.process(&out.commit, t).expect("carol");
    b.process(&out.commit, t).expect("bob");
    assert_eq!(c.epoch(), Some(2));

    let within = t + grace - Duration::from_millis(1);
    assert!(c.keyring_mut().decrypt(b"", &in_flight, within).is_ok());
    let err = c
        .keyring_mut()
        .decrypt(b"", &late, t + grace)
        .expect_err("grace time over");
    assert!(
        matches!(err, DecryptError::StaleEpoch { epoch: 1, .. }),
        "{err}"
    );
}

#[test]
fn one_commit_adds_and_removes_several_members() {
    let (mut a, mut b, mut c) = three();
    let (mut d, mut e) = (member("dave"), member("erin"));
    let kps = vec![d.key_package().expect("kp"), e.key_package().expect("kp")];
    let out = a.commit(&kps, &[1, 2]).expect("commit");
    let change = a.confirm_pending_commit(T0).expect("confirm");
    let added: Vec<String> = change.added.iter().map(|r| r.name()).collect();
    let removed: Vec<String> = change.removed.iter().map(|r| r.name()).collect();
    assert_eq!((added.len(), removed.len()), (2, 2));
    assert!(added.contains(&"dave".into()) && added.contains(&"erin".into()));
    assert!(removed.contains(&"bob".into()) && removed.contains(&"carol".into()));
    for m in [&mut b, &mut c] {
        assert!(matches!(
            m.process(&out.commit, T0),
            Ok(Processed::Removed { .. })
        ));
    }
    let welcome = out.welcome.expect("welcome");
    d.join_from_welcome(&welcome, T0).expect("dave");
    e.join_from_welcome(&welcome, T0).expect("erin");
    assert_converged(&[&a, &d, &e]);
}

#[test]
fn a_leave_proposal_is_committed_by_another_member() {
    let (mut a, mut b, mut c) = three();
    let proposal = c.leave().expect("leave");
    assert_eq!(a.process(&proposal, T0), Ok(Processed::Proposal));
    assert_eq!(b.process(&proposal, T0), Ok(Processed::Proposal));
    let out = a.commit(&[], &[]).expect("commit pending proposals");
    a.confirm_pending_commit(T0).expect("confirm");
    b.process(&out.commit, T0).expect("bob");
    assert!(matches!(
        c.process(&out.commit, T0),
        Ok(Processed::Removed { .. })
    ));
    assert_eq!(a.roster().len(), 2);
    assert_converged(&[&a, &b]);
}

#[test]
fn in_a_commit_race_the_delivery_service_picks_one_and_nobody_forks() {
    let (mut a, mut b, mut c) = three();
    let from_a = a.commit(&[], &[]).expect("alice commits");
    let from_b = b.commit(&[], &[2]).expect("bob commits");
    // The delivery service takes alice's and echoes it to everyone, alice included.
    assert!(matches!(
        a.process(&from_a.commit, T0),
        Ok(Processed::NewEpoch(_))
    ));
    assert!(matches!(
        b.process(&from_a.commit, T0),
        Ok(Processed::NewEpoch(_))
    ));
    assert!(matches!(
        c.process(&from_a.commit, T0),
        Ok(Processed::NewEpoch(_))
    ));
    assert!(!b.has_pending_commit());
    // Bob's losing commit, delivered late, is refused as stale by everyone.
    assert_eq!(
        c.process(&from_b.commit, T0),
        Err(MlsError::Peer(PeerFault::StaleEpoch {
            message_epoch: 1,
            current: 2
        }))
    );
    assert_converged(&[&a, &b, &c]);
}

#[test]
fn a_lost_commit_can_be_discarded_and_retried() {
    let (mut a, mut b, _c) = three();
    let out = a.commit(&[], &[]).expect("commit");
    assert_eq!(
        a.commit(&[], &[]).map(|_| ()),
        Err(MlsError::Misuse(Misuse::CommitPending))
    );
    a.discard_pending_commit().expect("discard");
    assert_eq!(a.epoch(), Some(1));
    // The discarded commit never happened; bob may still take it.
    let _ = out;
    let again = a.commit(&[], &[]).expect("commit again");
    a.confirm_pending_commit(T0).expect("confirm");
    b.process(&again.commit, T0).expect("bob");
    assert_converged(&[&a, &b]);
}

#[test]
fn garbage_and_misdirected_messages_are_typed_errors_that_change_nothing() {
    let (mut a, mut b, _c) = three();
    let epoch = a.epoch();
    let number = a.safety_number();
    for garbage in [&b""[..], b"\x00\x01", &[0xff; 64]] {
        assert!(matches!(
            a.process(garbage, T0),
            Err(MlsError::Peer(PeerFault::Malformed { .. }))
        ));
        assert!(matches!(
            a.join_from_welcome(garbage, T0),
            Err(MlsError::Misuse(Misuse::AlreadyInGroup))
        ));
        assert!(matches!(
            member("x").join_from_welcome(garbage, T0),
            Err(MlsError::Peer(PeerFault::Malformed { .. }))
        ));
        assert!(matches!(
            a.commit(&[garbage.to_vec()], &[]),
            Err(MlsError::Peer(PeerFault::Malformed { .. }))
        ));
    }
    // A key package where a commit is expected.
    let kp = member("y").key_package().expect("kp");
    assert_eq!(
        a.process(&kp, T0),
        Err(MlsError::Peer(PeerFault::UnexpectedMessage {
            expected: "proposal or commit",
            got: "key package"
        }))
    );
    // A commit with one byte flipped inside fails validation.
    let out = b.commit(&[], &[]).expect("commit");
    let mut tampered = out.commit.clone();
    let i = tampered.len() - 10;
    tampered[i] ^= 1;
    assert!(a.process(&tampered, T0).is_err());
    // A commit for another group.
    let mut other = member("z");
    other.create_group(b"elsewhere", T0).expect("create");
    let foreign = other.commit(&[], &[]).expect("commit");
    assert_eq!(
        a.process(&foreign.commit, T0),
        Err(MlsError::Peer(PeerFault::WrongGroup))
    );
    // Removing a leaf that is nobody.
    assert_eq!(
        a.commit(&[], &[42]).map(|_| ()),
        Err(MlsError::Misuse(Misuse::NotAMember(42)))
    );
    assert_eq!((a.epoch(), a.safety_number()), (epoch, number));
    // And the untampered commit still works afterwards.
    assert!(matches!(
        a.process(&out.commit, T0),
        Ok(Processed::NewEpoch(_))
    ));
}

#[test]
fn a_device_that_comes_back_replaces_its_old_leaf_in_one_commit() {
    use media_crypto::mls::DeviceKey;
    let (mut a, mut b, c) = three();
    let suite = SessionConfig::default().ciphersuite;
    let device = c.device_key().to_bytes();
    drop(c);
    // Carol reloads her page: a new session on the same device key, while her old leaf is
    // still in the group (it goes in the same commit that adds her again).
    let mut again = MlsSession::with_device_key(
        "carol",
        DeviceKey::from_bytes(&device, suite).expect("device"),
        SessionConfig::default(),
    )
    .expect("session");
    let old_leaf = a
        .roster()
        .iter()
        .find(|r| r.name() == "carol")
        .expect("carol")
        .leaf;
    let out = a
        .commit(&[again.key_package().expect("kp")], &[old_leaf])
        .expect("remove and add in one commit");
    a.confirm_pending_commit(T0).expect("confirm");
    b.process(&out.commit, T0).expect("process");
    again
        .join_from_welcome(&out.welcome.expect("welcome"), T0)
        .expect("join");
    assert_converged(&[&a, &b, &again]);
    let carol = a
        .roster()
        .into_iter()
        .find(|r| r.name() == "carol")
        .expect("carol");
    assert_eq!(carol.signature_key, again.device_key().public());
}

#[test]
fn a_member_that_forgets_its_group_can_be_welcomed_into_it_again() {
    let (mut a, mut b, mut c) = three();
    c.forget_group(T0);
    assert_eq!(c.epoch(), None);
    let leaf = a
        .roster()
        .iter()
        .find(|r| r.name() == "carol")
        .expect("carol")
        .leaf;
    let kp = c.key_package().expect("kp");
    let out = a.commit(&[kp], &[leaf]).expect("commit");
    a.confirm_pending_commit(T0).expect("confirm");
    b.process(&out.commit, T0).expect("process");
    c.join_from_welcome(&out.welcome.expect("welcome"), T0)
        .expect("the same group id again");
    assert_converged(&[&a, &b, &c]);
}
