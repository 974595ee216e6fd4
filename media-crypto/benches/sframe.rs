//! SFrame encrypt and decrypt against raw AES-GCM on the same sizes (the target: GCM SFrame
//! within 10% of raw AES-GCM throughput for frames of 1.2 KB and more).
//!
//! cargo bench -p media-crypto --bench sframe

use std::hint::black_box;
use std::time::Duration;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use media_crypto::mls::{EpochKey, Keyring, KeyringConfig};
use media_crypto::sframe::{CipherSuite, MAX_HEADER_LEN, MAX_OVERHEAD};

const SIZES: [usize; 4] = [160, 1200, 10_000, 50_000];
const SUITES: [CipherSuite; 2] = [
    CipherSuite::AesCtr128HmacSha256_80,
    CipherSuite::AesGcm128Sha256,
];

/// A keyring of one epoch with members 0 and 1: the path frames take in the product. The replay
/// window is off so that one frame can be decrypted again and again.
fn keyring(suite: CipherSuite, own_leaf: u32) -> Keyring {
    let mut k = Keyring::new(KeyringConfig {
        suite,
        replay_window: 0,
        ..KeyringConfig::default()
    });
    let key = EpochKey {
        group_id: Vec::new(),
        epoch: 1,
        base_key: vec![0x42; suite.key_len()].into(),
        own_leaf: Some(own_leaf),
        members: vec![0, 1],
    };
    k.install(key, Duration::ZERO).expect("install");
    k
}

fn frame_crypto(c: &mut Criterion) {
    let mut g = c.benchmark_group("sframe");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let plaintext = vec![0x5a; size];
        let mut out = vec![0; size + MAX_OVERHEAD];

        // Raw AES-GCM, in place, one key schedule: the floor SFrame is measured against.
        let raw = Aes128Gcm::new_from_slice(&[7; 16]).expect("key");
        let nonce = *Nonce::from_slice(&[1; 12]);
        let mut buf = plaintext.clone();
        g.bench_function(BenchmarkId::new("raw-aes128gcm/encrypt", size), |b| {
            b.iter(|| {
                raw.encrypt_in_place_detached(&nonce, b"", black_box(&mut buf))
                    .expect("encrypt")
            })
        });
        let mut sealed = plaintext.clone();
        let tag = raw
            .encrypt_in_place_detached(&nonce, b"", &mut sealed)
            .expect("encrypt");
        g.bench_function(BenchmarkId::new("raw-aes128gcm/decrypt", size), |b| {
            b.iter_batched_ref(
                || sealed.clone(),
                |ct| {
                    raw.decrypt_in_place_detached(&nonce, b"", black_box(ct), &tag)
                        .expect("decrypt")
                },
                BatchSize::SmallInput,
            )
        });

        for suite in SUITES {
            let name = format!("0x{:04x}", suite.id());
            let (mut alice, mut bob) = (keyring(suite, 0), keyring(suite, 1));
            g.bench_function(BenchmarkId::new(format!("{name}/encrypt"), size), |b| {
                b.iter(|| {
                    alice
                        .encrypt_into(b"", black_box(&plaintext), &mut out)
                        .expect("encrypt")
                })
            });
            // Header parse, sender lookup, authentication, decryption.
            let frame = alice.encrypt(b"", &plaintext).expect("encrypt");
            g.bench_function(BenchmarkId::new(format!("{name}/decrypt"), size), |b| {
                b.iter(|| {
                    bob.decrypt_into(b"", black_box(&frame), &mut out, Duration::ZERO)
                        .expect("decrypt")
                })
            });
            if suite != CipherSuite::AesGcm128Sha256 {
                continue;
            }
            // The no-copy variants: the plaintext is already where the frame will be.
            let mut buf = vec![0x5a; MAX_HEADER_LEN + size + suite.tag_len()];
            g.bench_function(
                BenchmarkId::new(format!("{name}/encrypt-in-place"), size),
                |b| {
                    b.iter(|| {
                        alice
                            .encrypt_in_place(b"", black_box(&mut buf), size)
                            .expect("encrypt")
                    })
                },
            );
            g.bench_function(
                BenchmarkId::new(format!("{name}/decrypt-in-place"), size),
                |b| {
                    b.iter_batched_ref(
                        || frame.clone(),
                        |f| {
                            bob.decrypt_in_place(b"", black_box(f), Duration::ZERO)
                                .expect("decrypt")
                        },
                        BatchSize::SmallInput,
                    )
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, frame_crypto);
criterion_main!(benches);
