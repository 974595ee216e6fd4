//! Any bytes as the MLS messages the delivery service reads: its framing parser, key package
//! facts, Welcome recipients, a GroupInfo to build a public tree from, and a commit or proposal
//! to verify against a real group's public tree. Typed errors, no panic, and verifying never
//! moves the tree.
#![no_main]

use std::sync::Mutex;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use media_crypto::mls::{MlsSession, SessionConfig};
use signaling_server::mls::{PublicTree, framing, public_group};

static TREE: Mutex<Option<PublicTree>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let _ = framing::key_package_identity(data);
    let _ = framing::check_welcome(data);
    let _ = framing::check_group_info(data, b"fuzz", 0);
    let _ = public_group::key_package_facts(data);
    let _ = public_group::check_welcome(data, &[data.to_vec()]);
    let _ = PublicTree::from_group_info(data, b"fuzz", b"1:creator");
    let mut guard = TREE.lock().expect("lock");
    let tree = guard.get_or_insert_with(|| {
        let mut creator =
            MlsSession::new("1:creator", SessionConfig::default()).expect("session");
        creator.create_group(b"fuzz", Duration::ZERO).expect("group");
        let mut bob = MlsSession::new("2:bob", SessionConfig::default()).expect("session");
        let gi = creator.group_info().expect("gi");
        let mut tree = PublicTree::from_group_info(&gi, b"fuzz", b"1:creator").expect("tree");
        let out = creator
            .commit(&[bob.key_package().expect("kp")], &[])
            .expect("commit");
        let verified = tree.verify_commit(&out.commit).expect("verifies");
        tree.apply(verified).expect("apply");
        tree
    });
    let (epoch, leaves) = (tree.epoch(), tree.leaves());
    let _ = tree.verify_commit(data);
    let _ = tree.verify_proposal(data);
    assert_eq!((tree.epoch(), tree.leaves()), (epoch, leaves));
});
