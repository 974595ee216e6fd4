//! Any frame and metadata into a receiver and a keyring that hold real keys: no panic, and
//! nothing decrypts that was not encrypted under those keys (the chance of a forgery passing a
//! 16-byte tag is nil, so any success is a bug). The path for an outside cipher (the browser
//! worker's) reads the same bytes: no panic, and a plan only with a key the keyring holds.
#![no_main]

use std::sync::Mutex;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use media_crypto::mls::{EpochKey, Keyring, KeyringConfig};
use media_crypto::sframe::{CipherSuite, Receiver};

static STATE: Mutex<Option<(Receiver, Keyring)>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut guard = STATE.lock().expect("lock");
    let (receiver, keyring) = guard.get_or_insert_with(|| {
        let mut r = Receiver::new(CipherSuite::AesGcm128Sha256);
        for kid in 0..16 {
            r.add_key(kid, b"fuzz base key").expect("key");
        }
        let mut k = Keyring::new(KeyringConfig::default());
        k.install(
            EpochKey {
                group_id: Vec::new(),
                epoch: 1,
                base_key: vec![7; 16].into(),
                own_leaf: Some(0),
                members: (0..8).collect(),
            },
            Duration::ZERO,
        )
        .expect("install");
        (r, k)
    });
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (metadata, frame) = data.split_at(split);
    let mut out = vec![0; frame.len()];
    assert!(receiver.decrypt_into(metadata, frame, &mut out).is_err());
    assert!(keyring
        .decrypt_into(metadata, frame, &mut out, Duration::ZERO)
        .is_err());
    if let Ok(plan) = keyring.plan_open(frame, frame.len(), Duration::ZERO) {
        assert!(keyring.aead_key(plan.epoch, plan.header.kid).is_some());
        assert!(plan.header_len + 16 <= frame.len());
    }
});
