//! Errors of the SFrame codec: one enum per concern, each variant naming the exact violation.

use thiserror::Error;

/// A header that cannot be parsed or written (RFC 9605 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The data ends inside the header.
    #[error("truncated SFrame header: needs {needed} bytes, got {available}")]
    Truncated { needed: usize, available: usize },
    /// The KID uses more bytes than its value needs (or extra bytes for a value below 8).
    #[error("non-minimal KID encoding ({encoded_len} bytes)")]
    NonMinimalKid { encoded_len: usize },
    /// The CTR uses more bytes than its value needs (or extra bytes for a value below 8).
    #[error("non-minimal CTR encoding ({encoded_len} bytes)")]
    NonMinimalCtr { encoded_len: usize },
    /// The output buffer cannot hold the header.
    #[error("buffer too small for the SFrame header: needs {needed} bytes, has {available}")]
    BufferTooSmall { needed: usize, available: usize },
}

/// A cipher suite value this implementation does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SuiteError {
    #[error("unknown SFrame cipher suite 0x{0:04x}")]
    Unknown(u16),
}

/// Key derivation failed (RFC 9605 §4.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The base key is empty.
    #[error("the SFrame base key is empty")]
    EmptyBaseKey,
    /// An AEAD key of the wrong length for its suite.
    #[error("AEAD key of {got} bytes; the suite needs {expected}")]
    WrongKeyLength { expected: usize, got: usize },
}

/// A frame could not be encrypted. Nothing was sent and no counter was spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// Every counter value of this key has been used; a new key (epoch) is needed.
    #[error("frame counter exhausted for KID {kid}: rekey before sending more")]
    CounterExhausted { kid: u64 },
    /// The output buffer cannot hold the header, ciphertext and tag.
    #[error("output buffer too small: needs {needed} bytes, has {available}")]
    BufferTooSmall { needed: usize, available: usize },
    /// No key to send with (no epoch yet, or the sender has left the group).
    #[error("no sending key: not a member of an epoch yet")]
    NoSendingKey,
}

/// A frame could not be decrypted. The receiver's state is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The header is malformed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// There is no key for this KID yet: the frame may be retried once keys arrive.
    #[error("no key yet for KID {kid}")]
    NoKeyYet { kid: u64 },
    /// The KID names an epoch before the first this receiver held, within the grace time
    /// after its join: the frame was sealed before it joined, under keys it never had (a
    /// joiner learns no earlier epoch's secrets, RFC 9420 §8), so waiting for its key is
    /// pointless. After that grace time such a frame is [`DecryptError::StaleEpoch`].
    #[error("KID {kid} belongs to epoch {epoch}, before this member joined")]
    BeforeJoin { kid: u64, epoch: u64 },
    /// The KID names an epoch whose keys were dropped after their grace time.
    #[error("KID {kid} belongs to epoch {epoch}, whose keys have expired")]
    StaleEpoch { kid: u64, epoch: u64 },
    /// The KID belongs to a key this receiver does not hold (a fixed-key receiver, or a
    /// sender index outside the group).
    #[error("KID {kid} does not match this key")]
    WrongKid { kid: u64 },
    /// The KID names no member of the epoch it belongs to.
    #[error("KID {kid} names no sender of its epoch")]
    UnknownSender { kid: u64 },
    /// Shorter than header plus tag.
    #[error("SFrame ciphertext too short: needs at least {needed} bytes, got {available}")]
    CiphertextTooShort { needed: usize, available: usize },
    /// The tag does not verify: wrong key, or the header, ciphertext or metadata was altered.
    #[error("authentication failed for KID {kid}, CTR {ctr}")]
    AuthenticationFailed { kid: u64, ctr: u64 },
    /// This (KID, CTR) was already accepted.
    #[error("replayed frame: KID {kid}, CTR {ctr}")]
    Replayed { kid: u64, ctr: u64 },
    /// The counter is older than the replay window reaches.
    #[error("frame too old for the replay window: KID {kid}, CTR {ctr}, window starts at {oldest}")]
    TooOld { kid: u64, ctr: u64, oldest: u64 },
    /// The output buffer cannot hold the plaintext.
    #[error("output buffer too small: needs {needed} bytes, has {available}")]
    BufferTooSmall { needed: usize, available: usize },
}

impl DecryptError {
    /// True when the frame failed only because its key has not arrived: worth holding briefly.
    pub fn is_no_key_yet(&self) -> bool {
        matches!(self, DecryptError::NoKeyYet { .. })
    }

    /// True when the frame is forged, corrupted or under the wrong key.
    pub fn is_authentication_failure(&self) -> bool {
        matches!(self, DecryptError::AuthenticationFailed { .. })
    }
}
