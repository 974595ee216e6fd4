//! The sending side of one KID: a frame key and a counter that never repeats (RFC 9605 §4.4.3
//! requires a (key, CTR) pair to be used at most once).

use super::error::EncryptError;
use super::key::FrameKey;

/// Encrypts frames under one key with counters 0, 1, 2, ... An exhausted counter is an error;
/// it never wraps.
#[derive(Debug)]
pub struct Sender {
    key: FrameKey,
    /// The next counter to use, or `None` once `u64::MAX` has been used.
    next_ctr: Option<u64>,
}

impl Sender {
    /// A sender starting at counter 0.
    pub fn new(key: FrameKey) -> Self {
        Self::starting_at(key, 0)
    }

    /// A sender whose next counter is `ctr` (to resume a key whose counters up to `ctr - 1`
    /// were spent elsewhere).
    pub fn starting_at(key: FrameKey, ctr: u64) -> Self {
        Sender {
            key,
            next_ctr: Some(ctr),
        }
    }

    /// The key.
    pub fn key(&self) -> &FrameKey {
        &self.key
    }

    /// The counter the next frame will use, if any is left.
    pub fn next_ctr(&self) -> Option<u64> {
        self.next_ctr
    }

    /// Spends the next counter for a frame sealed elsewhere (an AEAD outside this crate).
    pub(crate) fn spend_ctr(&mut self) -> Result<u64, EncryptError> {
        let ctr = self.next_ctr.ok_or(EncryptError::CounterExhausted {
            kid: self.key.kid(),
        })?;
        self.next_ctr = ctr.checked_add(1);
        Ok(ctr)
    }

    /// Encrypts the next frame into `out`; returns the bytes written. A counter is spent only
    /// when a frame is produced.
    pub fn encrypt_into(
        &mut self,
        metadata: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, EncryptError> {
        let ctr = self.next_ctr.ok_or(EncryptError::CounterExhausted {
            kid: self.key.kid(),
        })?;
        let n = self.key.encrypt_into(ctr, metadata, plaintext, out)?;
        self.next_ctr = ctr.checked_add(1);
        Ok(n)
    }

    /// Encrypts the next frame in place, with no copy (see [`FrameKey::encrypt_in_place`]);
    /// returns the range of `buf` that holds the frame.
    pub fn encrypt_in_place(
        &mut self,
        metadata: &[u8],
        buf: &mut [u8],
        plaintext_len: usize,
    ) -> Result<std::ops::Range<usize>, EncryptError> {
        let ctr = self.next_ctr.ok_or(EncryptError::CounterExhausted {
            kid: self.key.kid(),
        })?;
        let range = self
            .key
            .encrypt_in_place(ctr, metadata, buf, plaintext_len)?;
        self.next_ctr = ctr.checked_add(1);
        Ok(range)
    }

    /// Encrypts the next frame into a new vector.
    pub fn encrypt(&mut self, metadata: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, EncryptError> {
        let ctr = self.next_ctr.unwrap_or(u64::MAX);
        let mut out = vec![0; self.key.ciphertext_len(ctr, plaintext.len())];
        let n = self.encrypt_into(metadata, plaintext, &mut out)?;
        out.truncate(n);
        Ok(out)
    }
}
