//! Random cases in the exchange layout: every suite, plaintexts of 0 to 3000 bytes, KIDs and
//! CTRs of every encoded length (0 to 8 extra bytes, up to 2^64-1), and invalid cases made by
//! tampering with valid ones.

use std::path::Path;

use anyhow::Context;
use media_crypto::sframe::{CipherSuite, FrameKey};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const MAX_PLAINTEXT: usize = 3000;

/// A value whose encoding takes `len` bytes after the config byte (0: below 8).
fn value_of_len(rng: &mut StdRng, len: usize) -> u64 {
    match len {
        0 => rng.random_range(0..8),
        1 => rng.random_range(8..=0xff),
        8 => rng.random_range(1u64 << 56..=u64::MAX),
        n => rng.random_range(1u64 << (8 * (n - 1))..1u64 << (8 * n)),
    }
}

fn bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    rng.fill(v.as_mut_slice());
    v
}

struct Case {
    suite: CipherSuite,
    base_key: Vec<u8>,
    kid: u64,
    ctr: u64,
    metadata: Vec<u8>,
    plaintext: Vec<u8>,
    ciphertext: Vec<u8>,
    valid: bool,
}

impl Case {
    fn to_json(&self) -> Value {
        json!({
            "cipher_suite": self.suite.id(),
            "base_key": hex::encode(&self.base_key),
            "kid": self.kid,
            "ctr": self.ctr,
            "metadata": hex::encode(&self.metadata),
            "plaintext": hex::encode(&self.plaintext),
            "ciphertext": hex::encode(&self.ciphertext),
            "valid": self.valid,
        })
    }
}

fn valid_case(
    rng: &mut StdRng,
    suite: CipherSuite,
    kid: u64,
    ctr: u64,
    pt_len: usize,
) -> anyhow::Result<Case> {
    let base_key = bytes(rng, suite.key_len());
    let meta_len = rng.random_range(0..=32);
    let metadata = bytes(rng, meta_len);
    let plaintext = bytes(rng, pt_len);
    let key = FrameKey::derive(suite, kid, &base_key)?;
    let ciphertext = key.encrypt(ctr, &metadata, &plaintext);
    Ok(Case {
        suite,
        base_key,
        kid,
        ctr,
        metadata,
        plaintext,
        ciphertext,
        valid: true,
    })
}

/// Damages a valid case in one of the ways a relay or a bug could.
fn tamper(rng: &mut StdRng, mut case: Case, how: usize) -> Case {
    case.valid = false;
    let n = case.ciphertext.len();
    match how % 4 {
        0 => {
            let i = rng.random_range(0..n);
            case.ciphertext[i] ^= 1 << rng.random_range(0..8);
        }
        1 => case.metadata.push(rng.random()),
        2 => case.ciphertext.truncate(rng.random_range(0..n)),
        _ => case.base_key[0] ^= 0x80,
    }
    case
}

pub fn write_file(path: &Path, seed: u64) -> anyhow::Result<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cases = Vec::new();
    for suite in CipherSuite::ALL {
        for len in 0..=8 {
            // One case with a KID of each length, one with a CTR of each length.
            for (kid_len, ctr_len) in [
                (len, rng.random_range(0..=8)),
                (rng.random_range(0..=8), len),
            ] {
                let pt_len = match cases.len() % 7 {
                    0 => 0,
                    1 => MAX_PLAINTEXT,
                    _ => rng.random_range(0..=MAX_PLAINTEXT),
                };
                let (kid, ctr) = (
                    value_of_len(&mut rng, kid_len),
                    value_of_len(&mut rng, ctr_len),
                );
                cases.push(valid_case(&mut rng, suite, kid, ctr, pt_len)?);
            }
        }
        for how in 0..4 {
            let (kid, ctr) = (rng.random(), rng.random());
            let pt_len = rng.random_range(0..=MAX_PLAINTEXT);
            let case = valid_case(&mut rng, suite, kid, ctr, pt_len)?;
            cases.push(tamper(&mut rng, case, how));
        }
    }
    let doc = json!({
        "generator": format!("media-crypto {} sframe-vectors (seed {seed})", env!("CARGO_PKG_VERSION")),
        "cases": cases.iter().map(Case::to_json).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&doc)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(cases.len())
}
