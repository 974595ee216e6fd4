//! Property tests of the SFrame codec: round trips, tamper rejection, replay rejection, and a
//! header parser that accepts exactly the canonical encodings.

use media_crypto::sframe::{
    CipherSuite, DecryptError, FrameKey, Header, MAX_HEADER_LEN, MAX_OVERHEAD, Receiver, Sender,
};
use proptest::prelude::*;

fn suite() -> impl Strategy<Value = CipherSuite> {
    prop::sample::select(CipherSuite::ALL.to_vec())
}

/// KIDs and CTRs spread over every encoded length.
fn value() -> impl Strategy<Value = u64> {
    (0u32..=64).prop_flat_map(|bits| {
        if bits == 0 {
            Just(0u64).boxed()
        } else {
            let lo = 1u64 << (bits - 1);
            let hi = if bits == 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            (lo..=hi).boxed()
        }
    })
}

fn frame_case() -> impl Strategy<Value = (CipherSuite, u64, u64, Vec<u8>, Vec<u8>, Vec<u8>)> {
    (
        suite(),
        value(),
        value(),
        prop::collection::vec(any::<u8>(), 1..48),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(any::<u8>(), 0..1500),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn header_round_trips((kid, ctr) in (value(), value())) {
        let h = Header::new(kid, ctr);
        let bytes = h.to_bytes();
        prop_assert_eq!(bytes.len(), h.len());
        prop_assert_eq!(Header::parse(&bytes), Ok((h, bytes.len())));
    }

    #[test]
    fn parsing_accepts_only_canonical_headers(data in prop::collection::vec(any::<u8>(), 0..20)) {
        if let Ok((h, len)) = Header::parse(&data) {
            prop_assert_eq!(h.to_bytes(), &data[..len]);
        }
    }

    #[test]
    fn frames_round_trip((suite, kid, ctr, base, meta, pt) in frame_case()) {
        let key = FrameKey::derive(suite, kid, &base).unwrap();
        let frame = key.encrypt(ctr, &meta, &pt);
        prop_assert!(frame.len() <= pt.len() + MAX_OVERHEAD);
        prop_assert_eq!(key.decrypt(&meta, &frame).unwrap(), pt);
    }

    #[test]
    fn in_place_and_copying_paths_give_the_same_bytes((suite, kid, ctr, base, meta, pt) in frame_case()) {
        let key = FrameKey::derive(suite, kid, &base).unwrap();
        let frame = key.encrypt(ctr, &meta, &pt);
        let mut buf = vec![0u8; MAX_HEADER_LEN + pt.len() + suite.tag_len()];
        buf[MAX_HEADER_LEN..MAX_HEADER_LEN + pt.len()].copy_from_slice(&pt);
        let range = key.encrypt_in_place(ctr, &meta, &mut buf, pt.len()).unwrap();
        prop_assert_eq!(&buf[range.clone()], frame.as_slice());
        let mut in_place = buf[range].to_vec();
        let (header, plain) = key.decrypt_in_place(&meta, &mut in_place).unwrap();
        prop_assert_eq!(header, Header::new(kid, ctr));
        prop_assert_eq!(&in_place[plain], pt.as_slice());
    }

    #[test]
    fn any_single_bit_flip_is_rejected(
        (suite, kid, ctr, base, meta, pt) in frame_case(),
        pick in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let key = FrameKey::derive(suite, kid, &base).unwrap();
        let frame = key.encrypt(ctr, &meta, &pt);
        // Flip one bit anywhere in frame || metadata.
        let i = pick.index(frame.len() + meta.len());
        let (mut f, mut m) = (frame.clone(), meta.clone());
        if i < f.len() { f[i] ^= 1 << bit } else { m[i - f.len()] ^= 1 << bit }
        let mut receiver = Receiver::new(suite);
        receiver.add_key(kid, &base).unwrap();
        prop_assert!(key.decrypt(&m, &f).is_err());
        let mut in_place = f.clone();
        prop_assert!(key.decrypt_in_place(&m, &mut in_place).is_err());
        prop_assert!(receiver.decrypt(&m, &f).is_err());
        // The untouched frame still decrypts: the failure changed nothing.
        prop_assert_eq!(receiver.decrypt(&meta, &frame).unwrap(), pt);
    }

    #[test]
    fn a_replayed_frame_is_rejected(
        (suite, kid, _ctr, base, meta, pt) in frame_case(),
        frames in 1usize..20,
        replay in any::<prop::sample::Index>(),
    ) {
        let mut sender = Sender::new(FrameKey::derive(suite, kid, &base).unwrap());
        let mut receiver = Receiver::new(suite);
        receiver.add_key(kid, &base).unwrap();
        let sent: Vec<Vec<u8>> = (0..frames).map(|_| sender.encrypt(&meta, &pt).unwrap()).collect();
        for f in &sent {
            prop_assert_eq!(receiver.decrypt(&meta, f).unwrap(), pt.clone());
        }
        let r = replay.index(frames) as u64;
        prop_assert_eq!(
            receiver.decrypt(&meta, &sent[r as usize]),
            Err(DecryptError::Replayed { kid, ctr: r })
        );
    }
}

#[test]
fn the_last_counter_is_used_once_then_the_sender_refuses() {
    let key = FrameKey::derive(CipherSuite::AesGcm128Sha256, 1, b"base").expect("key");
    let mut sender = Sender::starting_at(key, u64::MAX - 1);
    let mut receiver = Receiver::new(CipherSuite::AesGcm128Sha256);
    receiver.add_key(1, b"base").expect("key");
    for _ in 0..2 {
        let f = sender.encrypt(b"", b"x").expect("encrypt");
        assert!(receiver.decrypt(b"", &f).is_ok());
    }
    assert_eq!(
        sender.encrypt(b"", b"x"),
        Err(media_crypto::sframe::EncryptError::CounterExhausted { kid: 1 })
    );
    assert_eq!(sender.next_ctr(), None);
}

#[test]
fn a_short_output_buffer_is_an_error_and_spends_no_counter() {
    let key = FrameKey::derive(CipherSuite::AesGcm128Sha256, 1, b"base").expect("key");
    let mut sender = Sender::new(key);
    let mut small = [0u8; 8];
    assert_eq!(
        sender.encrypt_into(b"", b"hello", &mut small),
        Err(media_crypto::sframe::EncryptError::BufferTooSmall {
            needed: 1 + 5 + 16,
            available: 8
        })
    );
    assert_eq!(sender.next_ctr(), Some(0));
}

#[test]
fn wrong_key_short_frames_and_unknown_kids_are_distinct_errors() {
    let suite = CipherSuite::AesCtr128HmacSha256_80;
    let key = FrameKey::derive(suite, 3, b"right").expect("key");
    let frame = key.encrypt(9, b"", b"payload");
    let mut r = Receiver::new(suite);
    assert_eq!(
        r.decrypt(b"", &frame),
        Err(DecryptError::NoKeyYet { kid: 3 })
    );
    r.add_key(3, b"wrong").expect("key");
    assert_eq!(
        r.decrypt(b"", &frame),
        Err(DecryptError::AuthenticationFailed { kid: 3, ctr: 9 })
    );
    assert_eq!(
        r.decrypt(b"", &frame[..5]),
        Err(DecryptError::CiphertextTooShort {
            needed: 2 + 10,
            available: 5
        })
    );
}
