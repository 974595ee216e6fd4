//! A jsonwebtoken crypto provider for HS256 only, on RustCrypto's `hmac` and `sha2`.
//!
//! jsonwebtoken's bundled `rust_crypto` provider brings every algorithm, and with the
//! elliptic-curve ones the `hkdf` crate, which the server must not link (DESIGN.md: the sfu
//! binary links no frame-key code). Tokens here are HS256 only, so this is all it needs.

use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

struct Hs256(HmacSha256);

impl Hs256 {
    fn new(algorithm: &Algorithm, key: &[u8]) -> Result<Self> {
        if *algorithm != Algorithm::HS256 {
            return Err(ErrorKind::InvalidAlgorithm.into());
        }
        HmacSha256::new_from_slice(key)
            .map(Hs256)
            .map_err(|_| ErrorKind::InvalidKeyFormat.into())
    }
}

impl Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let mut mac = self.0.clone();
        mac.update(msg);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, msg: &[u8], tag: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let mut mac = self.0.clone();
        mac.update(msg);
        // Constant-time comparison of the whole tag.
        mac.verify_slice(tag).map_err(signature::Error::from_source)
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: |algorithm: &Algorithm, key: &EncodingKey| {
        Ok(Box::new(Hs256::new(algorithm, key.as_bytes())?) as Box<dyn JwtSigner>)
    },
    verifier_factory: |algorithm: &Algorithm, key: &DecodingKey| {
        Ok(Box::new(Hs256::new(algorithm, key.try_get_as_bytes()?)?) as Box<dyn JwtVerifier>)
    },
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes this the process's jsonwebtoken provider (once; later calls do nothing).
pub(super) fn install() {
    let _ = PROVIDER.install_default();
}
