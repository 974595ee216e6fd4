//! Any bytes as an MLS handshake message, Welcome or key package: typed errors, no
//! panic, and the member's epoch and safety number unchanged.
#![no_main]

use std::sync::Mutex;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use media_crypto::mls::{MlsSession, SessionConfig};

static MEMBER: Mutex<Option<MlsSession>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut guard = MEMBER.lock().expect("lock");
    let member = guard.get_or_insert_with(|| {
        let mut m = MlsSession::new("fuzz", SessionConfig::default()).expect("session");
        m.create_group(b"fuzz", Duration::ZERO).expect("group");
        m
    });
    let (epoch, number) = (member.epoch(), member.safety_number());
    let _ = member.process(data, Duration::ZERO);
    let _ = member.commit(&[data.to_vec()], &[]);
    assert_eq!((member.epoch(), member.safety_number()), (epoch, number));
    let mut outsider = MlsSession::new("outsider", SessionConfig::default()).expect("session");
    assert!(outsider.join_from_welcome(data, Duration::ZERO).is_err());
});
