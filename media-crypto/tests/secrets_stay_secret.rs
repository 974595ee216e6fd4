//! Debug output of every type that holds key material shows no key bytes.

use std::time::Duration;

use media_crypto::mls::{EpochKey, Keyring, KeyringConfig, MlsSession, SessionConfig};
use media_crypto::sframe::{CipherSuite, FrameKey, Receiver, Sender, derive_key_material};

/// The ways a byte string could show up in a Debug string: Rust's list form and hex.
fn leaks(debug: &str, secret: &[u8]) -> bool {
    let list = format!("{:?}", &secret[..6]);
    let list = list.trim_end_matches(']');
    debug.contains(list) || debug.contains(&hex::encode(&secret[..6]))
}

#[test]
fn debug_output_never_contains_key_bytes() {
    for suite in CipherSuite::ALL {
        let base = [0x42u8; 32];
        let m = derive_key_material(suite, 9, &base).expect("derive");
        let key = FrameKey::derive(suite, 9, &base).expect("derive");
        let mut receiver = Receiver::new(suite);
        receiver.add_key(9, &base).expect("key");
        let sender = Sender::new(key.clone());
        for debug in [
            format!("{key:?}"),
            format!("{m:?}"),
            format!("{receiver:?}"),
            format!("{sender:?}"),
        ] {
            for secret in [&m.key[..], &m.salt[..], &m.secret[..], &base[..]] {
                assert!(!leaks(&debug, secret), "{suite}: {debug}");
            }
        }
    }

    let epoch = EpochKey {
        group_id: Vec::new(),
        epoch: 3,
        base_key: vec![0x42; 16].into(),
        own_leaf: Some(1),
        members: vec![0, 1],
    };
    let mut keyring = Keyring::new(KeyringConfig::default());
    keyring
        .install(epoch.clone(), Duration::ZERO)
        .expect("install");
    for debug in [format!("{epoch:?}"), format!("{keyring:?}")] {
        assert!(!leaks(&debug, &[0x42; 16]), "{debug}");
    }

    let mut session = MlsSession::new("alice", SessionConfig::default()).expect("session");
    session
        .create_group(b"room", Duration::ZERO)
        .expect("group");
    let base = session.epoch_key().expect("key").base_key;
    let debug = format!("{session:?}");
    assert!(!leaks(&debug, &base), "{debug}");
    assert!(
        debug.contains("alice"),
        "Debug should still say whose session it is: {debug}"
    );
}
