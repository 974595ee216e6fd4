//! Key derivation (RFC 9605 §4.4.2) and the per-frame encryption (§4.4.3) and decryption
//! (§4.4.4) under one derived key.

use std::ops::Range;

use hkdf::Hkdf;
use sha2::{Sha256, Sha512};
use zeroize::Zeroizing;

use super::aead::{AeadKey, NONCE_LEN};
use super::error::{DecryptError, EncryptError, KeyError};
use super::header::{Header, MAX_HEADER_LEN};
use super::suite::{CipherSuite, KdfHash};

/// The key and salt that §4.4.2 derives from a base key for one KID.
pub struct KeyMaterial {
    /// `sframe_secret = HKDF-Extract("", base_key)`.
    pub secret: Zeroizing<Vec<u8>>,
    /// `sframe_key`, Nk bytes.
    pub key: Zeroizing<Vec<u8>>,
    /// `sframe_salt`, Nn bytes.
    pub salt: Zeroizing<[u8; NONCE_LEN]>,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyMaterial { .. }")
    }
}

fn label(prefix: &[u8], kid: u64, suite: CipherSuite) -> Vec<u8> {
    [prefix, &kid.to_be_bytes(), &suite.id().to_be_bytes()].concat()
}

/// RFC 9605 §4.4.2:
///
/// ```text
/// sframe_secret = HKDF-Extract("", base_key)
/// sframe_key    = HKDF-Expand(sframe_secret, "SFrame 1.0 Secret key "  || KID || suite, Nk)
/// sframe_salt   = HKDF-Expand(sframe_secret, "SFrame 1.0 Secret salt " || KID || suite, Nn)
/// ```
pub fn derive_key_material(
    suite: CipherSuite,
    kid: u64,
    base_key: &[u8],
) -> Result<KeyMaterial, KeyError> {
    if base_key.is_empty() {
        return Err(KeyError::EmptyBaseKey);
    }
    let key_label = label(b"SFrame 1.0 Secret key ", kid, suite);
    let salt_label = label(b"SFrame 1.0 Secret salt ", kid, suite);
    let mut key = Zeroizing::new(vec![0u8; suite.key_len()]);
    let mut salt = Zeroizing::new([0u8; NONCE_LEN]);
    // Output lengths are far below 255 * HashLen, so expand cannot fail.
    let secret = match suite.kdf_hash() {
        KdfHash::Sha256 => {
            let (prk, hk) = Hkdf::<Sha256>::extract(Some(&[]), base_key);
            hk.expand(&key_label, &mut key)
                .expect("Nk is a valid length");
            hk.expand(&salt_label, salt.as_mut())
                .expect("Nn is a valid length");
            prk.to_vec()
        }
        KdfHash::Sha512 => {
            let (prk, hk) = Hkdf::<Sha512>::extract(Some(&[]), base_key);
            hk.expand(&key_label, &mut key)
                .expect("Nk is a valid length");
            hk.expand(&salt_label, salt.as_mut())
                .expect("Nn is a valid length");
            prk.to_vec()
        }
    };
    Ok(KeyMaterial {
        secret: Zeroizing::new(secret),
        key,
        salt,
    })
}

/// The key of one KID, expanded and ready for frames. Stateless: the counter is the caller's
/// (see [`super::Sender`]), so this type alone cannot stop a counter from repeating.
#[derive(Clone)]
pub struct FrameKey {
    suite: CipherSuite,
    kid: u64,
    salt: Zeroizing<[u8; NONCE_LEN]>,
    aead: AeadKey,
}

impl std::fmt::Debug for FrameKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameKey")
            .field("suite", &self.suite)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl FrameKey {
    /// Derives the key of `kid` from `base_key` (§4.4.2).
    pub fn derive(suite: CipherSuite, kid: u64, base_key: &[u8]) -> Result<Self, KeyError> {
        let m = derive_key_material(suite, kid, base_key)?;
        Ok(FrameKey {
            suite,
            kid,
            salt: m.salt,
            aead: AeadKey::new(suite, &m.key),
        })
    }

    /// The suite.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// The KID this key belongs to.
    pub fn kid(&self) -> u64 {
        self.kid
    }

    /// Header, ciphertext and tag length for a plaintext of `plaintext_len` bytes at `ctr`.
    pub fn ciphertext_len(&self, ctr: u64, plaintext_len: usize) -> usize {
        Header::new(self.kid, ctr).len() + plaintext_len + self.suite.tag_len()
    }

    /// `nonce = sframe_salt XOR CTR` (CTR big-endian, right-aligned), for this crate's AEAD or
    /// one outside it.
    pub fn nonce(&self, ctr: u64) -> [u8; NONCE_LEN] {
        let mut nonce = *self.salt;
        for (n, c) in nonce[NONCE_LEN - 8..].iter_mut().zip(ctr.to_be_bytes()) {
            *n ^= c;
        }
        nonce
    }

    /// Encrypts one frame with counter `ctr` into `out` (§4.4.3) and returns the bytes written:
    /// `header || ciphertext || tag`. The metadata is authenticated, not carried.
    pub fn encrypt_into(
        &self,
        ctr: u64,
        metadata: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, EncryptError> {
        let header = Header::new(self.kid, ctr);
        let total = header.len() + plaintext.len() + self.suite.tag_len();
        if out.len() < total {
            return Err(EncryptError::BufferTooSmall {
                needed: total,
                available: out.len(),
            });
        }
        let hlen = header
            .encode_into(out)
            .map_err(|_| EncryptError::BufferTooSmall {
                needed: total,
                available: out.len(),
            })?;
        let (head, rest) = out[..total].split_at_mut(hlen);
        let (body, tag) = rest.split_at_mut(plaintext.len());
        body.copy_from_slice(plaintext);
        self.aead.seal(&self.nonce(ctr), head, metadata, body, tag);
        Ok(total)
    }

    /// Encrypts one frame into a new vector.
    pub fn encrypt(&self, ctr: u64, metadata: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut out = vec![0; self.ciphertext_len(ctr, plaintext.len())];
        // The buffer has exactly the length needed.
        let _ = self.encrypt_into(ctr, metadata, plaintext, &mut out);
        out
    }

    /// Decrypts a frame whose header names this key's KID (§4.4.4); returns the header and
    /// the plaintext length written to `out`.
    pub fn decrypt_into(
        &self,
        metadata: &[u8],
        frame: &[u8],
        out: &mut [u8],
    ) -> Result<(Header, usize), DecryptError> {
        let (header, hlen) = Header::parse(frame)?;
        if header.kid != self.kid {
            return Err(DecryptError::WrongKid { kid: header.kid });
        }
        let len = self.open(header, hlen, metadata, FrameBuf::Into { frame, out })?;
        Ok((header, len))
    }

    /// Decrypts a frame into a new vector.
    pub fn decrypt(&self, metadata: &[u8], frame: &[u8]) -> Result<Vec<u8>, DecryptError> {
        let mut out = vec![0; frame.len()];
        let (_, len) = self.decrypt_into(metadata, frame, &mut out)?;
        out.truncate(len);
        Ok(out)
    }

    /// Authenticates and decrypts the body of a frame whose header is already parsed; returns
    /// the plaintext length. The plaintext goes to `out` or, in place, over the ciphertext.
    pub(crate) fn open(
        &self,
        header: Header,
        hlen: usize,
        metadata: &[u8],
        buf: FrameBuf<'_>,
    ) -> Result<usize, DecryptError> {
        let nt = self.suite.tag_len();
        let frame_len = buf.frame().len();
        let ct_len = frame_len
            .checked_sub(hlen + nt)
            .ok_or(DecryptError::CiphertextTooShort {
                needed: hlen + nt,
                available: frame_len,
            })?;
        let (head, body, tag): (&[u8], &mut [u8], &[u8]) = match buf {
            FrameBuf::Into { frame, out } => {
                let out_len = out.len();
                let body = out.get_mut(..ct_len).ok_or(DecryptError::BufferTooSmall {
                    needed: ct_len,
                    available: out_len,
                })?;
                body.copy_from_slice(&frame[hlen..hlen + ct_len]);
                (&frame[..hlen], body, &frame[hlen + ct_len..])
            }
            FrameBuf::InPlace(frame) => {
                let (head, rest) = frame.split_at_mut(hlen);
                let (body, tag) = rest.split_at_mut(ct_len);
                (head, body, tag)
            }
        };
        if self
            .aead
            .open(&self.nonce(header.ctr), head, metadata, body, tag)
            .is_err()
        {
            // Hand back no unauthenticated bytes.
            body.fill(0);
            return Err(DecryptError::AuthenticationFailed {
                kid: header.kid,
                ctr: header.ctr,
            });
        }
        Ok(ct_len)
    }

    /// Encrypts in place, with no copy: `buf[MAX_HEADER_LEN..][..plaintext_len]` holds the
    /// plaintext and `buf` has room for the tag after it. The header is written just before
    /// the ciphertext; returns the range of `buf` that holds the frame.
    pub fn encrypt_in_place(
        &self,
        ctr: u64,
        metadata: &[u8],
        buf: &mut [u8],
        plaintext_len: usize,
    ) -> Result<Range<usize>, EncryptError> {
        let header = Header::new(self.kid, ctr);
        let end = MAX_HEADER_LEN + plaintext_len + self.suite.tag_len();
        let start = MAX_HEADER_LEN - header.len();
        if buf.len() < end {
            return Err(EncryptError::BufferTooSmall {
                needed: end,
                available: buf.len(),
            });
        }
        let frame = &mut buf[start..end];
        let hlen = header
            .encode_into(frame)
            .map_err(|_| EncryptError::BufferTooSmall {
                needed: end,
                available: end,
            })?;
        let (head, rest) = frame.split_at_mut(hlen);
        let (body, tag) = rest.split_at_mut(plaintext_len);
        self.aead.seal(&self.nonce(ctr), head, metadata, body, tag);
        Ok(start..end)
    }

    /// Decrypts a frame in place, with no copy; returns the header and the range of `frame`
    /// that now holds the plaintext.
    pub fn decrypt_in_place(
        &self,
        metadata: &[u8],
        frame: &mut [u8],
    ) -> Result<(Header, Range<usize>), DecryptError> {
        let (header, hlen) = Header::parse(frame)?;
        if header.kid != self.kid {
            return Err(DecryptError::WrongKid { kid: header.kid });
        }
        let len = self.open(header, hlen, metadata, FrameBuf::InPlace(frame))?;
        Ok((header, hlen..hlen + len))
    }
}

/// Where a decrypted frame's plaintext goes.
#[derive(Debug)]
pub(crate) enum FrameBuf<'a> {
    /// Into a separate buffer; the frame is left as it was.
    Into { frame: &'a [u8], out: &'a mut [u8] },
    /// Over the ciphertext, inside the frame.
    InPlace(&'a mut [u8]),
}

impl FrameBuf<'_> {
    pub(crate) fn frame(&self) -> &[u8] {
        match self {
            FrameBuf::Into { frame, .. } => frame,
            FrameBuf::InPlace(frame) => frame,
        }
    }
}
