//! Encrypts or decrypts one frame size in a loop, for profilers and instruction counters:
//!
//! ```text
//! cargo build --release -p media-crypto --example frame-loop
//! valgrind --tool=callgrind target/release/examples/frame-loop sframe-decrypt 1200 10000
//! ```
//!
//! Modes: raw-encrypt, raw-decrypt (aes-gcm in place, the floor; decrypt restores the
//! ciphertext each time), sframe-encrypt, sframe-decrypt (the keyring path, suite 0x0004, into
//! a second buffer), sframe-encrypt-in-place, sframe-decrypt-in-place (no copy; decrypt
//! restores the frame each time, like raw-decrypt). Run with 0 iterations to count setup.

use std::hint::black_box;
use std::time::Duration;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use anyhow::{Context, anyhow, bail};
use media_crypto::mls::{EpochKey, Keyring, KeyringConfig};
use media_crypto::sframe::{CipherSuite, MAX_HEADER_LEN, MAX_OVERHEAD};

fn keyring(own_leaf: u32) -> anyhow::Result<Keyring> {
    let mut k = Keyring::new(KeyringConfig {
        suite: CipherSuite::AesGcm128Sha256,
        replay_window: 0,
        ..KeyringConfig::default()
    });
    k.install(
        EpochKey {
            group_id: Vec::new(),
            epoch: 1,
            base_key: vec![0x42; 16].into(),
            own_leaf: Some(own_leaf),
            members: vec![0, 1],
        },
        Duration::ZERO,
    )?;
    Ok(k)
}

fn gcm<T>(r: Result<T, aes_gcm::Error>) -> anyhow::Result<T> {
    r.map_err(|_| anyhow!("aes-gcm failed"))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, size, iterations] = args.as_slice() else {
        bail!("usage: frame-loop MODE SIZE ITERATIONS");
    };
    let size: usize = size.parse().context("SIZE")?;
    let iterations: u64 = iterations.parse().context("ITERATIONS")?;
    let plaintext = vec![0x5a; size];
    let mut out = vec![0; size + MAX_OVERHEAD];
    let raw = Aes128Gcm::new_from_slice(&[7; 16]).map_err(|_| anyhow!("key"))?;
    let nonce = *Nonce::from_slice(&[1; 12]);
    let (mut alice, mut bob) = (keyring(0)?, keyring(1)?);
    match mode.as_str() {
        "raw-encrypt" => {
            let mut buf = plaintext.clone();
            for _ in 0..iterations {
                black_box(gcm(raw.encrypt_in_place_detached(
                    &nonce,
                    b"",
                    black_box(&mut buf),
                ))?);
            }
        }
        "raw-decrypt" => {
            let mut buf = plaintext.clone();
            let tag = gcm(raw.encrypt_in_place_detached(&nonce, b"", &mut buf))?;
            let sealed = buf.clone();
            for _ in 0..iterations {
                buf.copy_from_slice(&sealed);
                gcm(raw.decrypt_in_place_detached(&nonce, b"", black_box(&mut buf), &tag))?;
            }
        }
        "sframe-encrypt" => {
            for _ in 0..iterations {
                black_box(alice.encrypt_into(b"", black_box(&plaintext), &mut out)?);
            }
        }
        "sframe-decrypt" => {
            let frame = alice.encrypt(b"", &plaintext)?;
            for _ in 0..iterations {
                black_box(bob.decrypt_into(b"", black_box(&frame), &mut out, Duration::ZERO)?);
            }
        }
        "sframe-encrypt-in-place" => {
            let mut buf = vec![0x5a; MAX_HEADER_LEN + size + 16];
            for _ in 0..iterations {
                black_box(alice.encrypt_in_place(b"", black_box(&mut buf), size)?);
            }
        }
        "sframe-decrypt-in-place" => {
            let frame = alice.encrypt(b"", &plaintext)?;
            let mut buf = frame.clone();
            for _ in 0..iterations {
                buf.copy_from_slice(&frame);
                black_box(bob.decrypt_in_place(b"", black_box(&mut buf), Duration::ZERO)?);
            }
        }
        other => bail!("unknown mode {other}"),
    }
    Ok(())
}
