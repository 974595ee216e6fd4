//! A device's signature key (RFC 9420 §5.1.2): the key in the member's credential, kept across
//! sessions so that others can recognise the device (trust on first use) and compare its
//! fingerprint ([`crate::mls::Fingerprint`]) out of band.

use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::signatures::{Signer, SignerError};
use zeroize::Zeroizing;

use crate::mls::error::{MlsError, PeerFault};

/// The storage format: a version byte, the scheme (u16, big-endian), then the private and
/// public key each behind a u16 length.
const FORMAT: u8 = 1;

/// A device's signature key pair.
pub struct DeviceKey {
    pair: SignatureKeyPair,
    /// The private half again, for storing (openmls's pair does not hand it out).
    private: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey")
            .field("scheme", &self.pair.signature_scheme())
            .field("public", &self.pair.public())
            .finish_non_exhaustive()
    }
}

impl DeviceKey {
    /// A fresh key for `ciphersuite`'s signature scheme.
    pub fn generate(ciphersuite: Ciphersuite) -> Result<Self, MlsError> {
        let scheme = ciphersuite.signature_algorithm();
        let (private, public) = openmls_rust_crypto::RustCrypto::default()
            .signature_key_gen(scheme)
            .map_err(|e| MlsError::Internal(format!("signature key: {e:?}")))?;
        let private = Zeroizing::new(private);
        Ok(DeviceKey {
            pair: SignatureKeyPair::from_raw(scheme, private.to_vec(), public),
            private,
        })
    }

    /// The public key (as it appears in the credential and the roster).
    pub fn public(&self) -> &[u8] {
        self.pair.public()
    }

    /// The signature scheme.
    pub fn scheme(&self) -> SignatureScheme {
        self.pair.signature_scheme()
    }

    /// The whole key pair, to store on the device (it is secret: keep it where only this
    /// device's own code can read it).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let (private, public) = (self.private.as_slice(), self.pair.public());
        let mut out = Zeroizing::new(Vec::with_capacity(7 + private.len() + public.len()));
        out.push(FORMAT);
        out.extend_from_slice(&(self.scheme() as u16).to_be_bytes());
        for part in [private, public] {
            out.extend_from_slice(&(part.len() as u16).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    /// A key stored by [`DeviceKey::to_bytes`]. It must be a key of `ciphersuite`'s scheme.
    pub fn from_bytes(bytes: &[u8], ciphersuite: Ciphersuite) -> Result<Self, MlsError> {
        let bad = |reason: &str| {
            MlsError::Peer(PeerFault::Malformed {
                what: "device key",
                reason: reason.to_owned(),
            })
        };
        let (&format, rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
        if format != FORMAT {
            return Err(bad("unknown format"));
        }
        let (scheme, mut rest) = rest.split_at_checked(2).ok_or_else(|| bad("truncated"))?;
        let scheme = u16::from_be_bytes([scheme[0], scheme[1]]);
        if scheme != ciphersuite.signature_algorithm() as u16 {
            return Err(bad("a key of another signature scheme"));
        }
        let mut parts = Vec::with_capacity(2);
        for _ in 0..2 {
            let (len, tail) = rest.split_at_checked(2).ok_or_else(|| bad("truncated"))?;
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            let (part, tail) = tail.split_at_checked(len).ok_or_else(|| bad("truncated"))?;
            parts.push(part.to_vec());
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        let public = parts.pop().unwrap_or_default();
        let private = Zeroizing::new(parts.pop().unwrap_or_default());
        let key = DeviceKey {
            pair: SignatureKeyPair::from_raw(
                ciphersuite.signature_algorithm(),
                private.to_vec(),
                public,
            ),
            private,
        };
        // A pair whose halves do not belong together would sign what nobody can verify.
        let probe = key
            .sign(b"device key check")
            .map_err(|_| bad("the private key does not sign"))?;
        openmls_rust_crypto::RustCrypto::default()
            .verify_signature(key.scheme(), b"device key check", key.public(), &probe)
            .map_err(|_| bad("the public key does not match the private key"))?;
        Ok(key)
    }

    pub(super) fn pair(&self) -> &SignatureKeyPair {
        &self.pair
    }
}

impl Signer for DeviceKey {
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.pair.sign(payload)
    }

    fn signature_scheme(&self) -> SignatureScheme {
        self.pair.signature_scheme()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

    #[test]
    fn a_stored_key_comes_back_the_same() {
        let key = DeviceKey::generate(SUITE).expect("key");
        let again = DeviceKey::from_bytes(&key.to_bytes(), SUITE).expect("restore");
        assert_eq!(again.public(), key.public());
        assert!(!format!("{key:?}").contains(&format!("{:?}", key.private.as_slice())));
    }

    #[test]
    fn damaged_or_mismatched_keys_are_refused() {
        let key = DeviceKey::generate(SUITE).expect("key");
        let other = DeviceKey::generate(SUITE).expect("key");
        let bytes = key.to_bytes();
        assert!(DeviceKey::from_bytes(&bytes[..bytes.len() - 1], SUITE).is_err());
        assert!(DeviceKey::from_bytes(&[], SUITE).is_err());
        // Its private half with another key's public half.
        let mut mixed = bytes.to_vec();
        let n = mixed.len();
        mixed[n - 32..].copy_from_slice(other.public());
        assert!(DeviceKey::from_bytes(&mixed, SUITE).is_err());
        let p256 = Ciphersuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256;
        assert!(DeviceKey::from_bytes(&bytes, p256).is_err());
    }
}
