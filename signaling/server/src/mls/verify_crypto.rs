//! A crypto provider for openmls that can only hash and verify signatures: what a delivery
//! service needs to check a commit against the public ratchet tree (RFC 9420 §6.1 signatures,
//! §7.8 tree hashes, §7.9 parent hashes, §8.2 transcript hashes) and nothing that opens or
//! derives a secret. Every other operation is refused, and the crates that implement them
//! (aes-gcm, hkdf, HPKE) are not linked: `scripts/check-no-key-code` checks it.
//!
//! Ed25519 is verified with ed25519-dalek's `verify_strict`, exactly as the members'
//! openmls_rust_crypto does, so the server and the members agree on every signature; ECDSA
//! P-256 with ring (already linked for DTLS and TLS), which avoids `elliptic-curve` and its
//! hkdf.

use openmls::prelude::tls_codec::SecretVLBytes;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::{
    AeadType, Ciphersuite, CryptoError, ExporterSecret, HashType, HpkeCiphertext, HpkeConfig,
    HpkeKeyPair, KemOutput, SignatureScheme,
};
use sha2::Digest;

/// The cipher suites whose signatures and hashes this provider checks.
pub const SUPPORTED: [Ciphersuite; 3] = [
    Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
    Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
    Ciphersuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
];

/// Hashing and signature verification only.
#[derive(Debug, Default, Clone, Copy)]
pub struct VerifyOnlyCrypto;

impl OpenMlsCrypto for VerifyOnlyCrypto {
    fn supports(&self, ciphersuite: Ciphersuite) -> Result<(), CryptoError> {
        if SUPPORTED.contains(&ciphersuite) {
            Ok(())
        } else {
            Err(CryptoError::UnsupportedCiphersuite)
        }
    }

    fn supported_ciphersuites(&self) -> Vec<Ciphersuite> {
        SUPPORTED.to_vec()
    }

    fn hkdf_extract(&self, _: HashType, _: &[u8], _: &[u8]) -> Result<SecretVLBytes, CryptoError> {
        Err(CryptoError::UnsupportedKdf)
    }

    fn hmac(&self, _: HashType, _: &[u8], _: &[u8]) -> Result<SecretVLBytes, CryptoError> {
        Err(CryptoError::UnsupportedKdf)
    }

    fn hkdf_expand(
        &self,
        _: HashType,
        _: &[u8],
        _: &[u8],
        _: usize,
    ) -> Result<SecretVLBytes, CryptoError> {
        Err(CryptoError::UnsupportedKdf)
    }

    fn hash(&self, hash_type: HashType, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(match hash_type {
            HashType::Sha2_256 => sha2::Sha256::digest(data).to_vec(),
            HashType::Sha2_384 => sha2::Sha384::digest(data).to_vec(),
            HashType::Sha2_512 => sha2::Sha512::digest(data).to_vec(),
        })
    }

    fn aead_encrypt(
        &self,
        _: AeadType,
        _: &[u8],
        _: &[u8],
        _: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError::UnsupportedAeadAlgorithm)
    }

    fn aead_decrypt(
        &self,
        _: AeadType,
        _: &[u8],
        _: &[u8],
        _: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError::UnsupportedAeadAlgorithm)
    }

    fn signature_key_gen(&self, _: SignatureScheme) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        Err(CryptoError::UnsupportedSignatureScheme)
    }

    fn verify_signature(
        &self,
        alg: SignatureScheme,
        data: &[u8],
        pk: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        match alg {
            SignatureScheme::ED25519 => {
                let key = ed25519_dalek::VerifyingKey::try_from(pk)
                    .map_err(|_| CryptoError::InvalidPublicKey)?;
                let signature = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| CryptoError::SignatureDecodingError)?;
                key.verify_strict(data, &signature)
                    .map_err(|_| CryptoError::InvalidSignature)
            }
            SignatureScheme::ECDSA_SECP256R1_SHA256 => ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_ASN1,
                pk,
            )
            .verify(data, signature)
            .map_err(|_| CryptoError::InvalidSignature),
            _ => Err(CryptoError::UnsupportedSignatureScheme),
        }
    }

    fn sign(&self, _: SignatureScheme, _: &[u8], _: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError::UnsupportedSignatureScheme)
    }

    fn hpke_seal(
        &self,
        _: HpkeConfig,
        _: &[u8],
        _: &[u8],
        _: &[u8],
        _: &[u8],
    ) -> Result<HpkeCiphertext, CryptoError> {
        Err(CryptoError::HpkeEncryptionError)
    }

    fn hpke_open(
        &self,
        _: HpkeConfig,
        _: &HpkeCiphertext,
        _: &[u8],
        _: &[u8],
        _: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError::HpkeDecryptionError)
    }

    fn hpke_setup_sender_and_export(
        &self,
        _: HpkeConfig,
        _: &[u8],
        _: &[u8],
        _: &[u8],
        _: usize,
    ) -> Result<(KemOutput, ExporterSecret), CryptoError> {
        Err(CryptoError::SenderSetupError)
    }

    fn hpke_setup_receiver_and_export(
        &self,
        _: HpkeConfig,
        _: &[u8],
        _: &[u8],
        _: &[u8],
        _: &[u8],
        _: usize,
    ) -> Result<ExporterSecret, CryptoError> {
        Err(CryptoError::ReceiverSetupError)
    }

    fn derive_hpke_keypair(&self, _: HpkeConfig, _: &[u8]) -> Result<HpkeKeyPair, CryptoError> {
        Err(CryptoError::UnsupportedKdf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_the_standard_vectors() {
        let c = VerifyOnlyCrypto;
        assert_eq!(
            hex(&c.hash(HashType::Sha2_256, b"abc").expect("hash")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(c.hash(HashType::Sha2_512, b"").expect("hash").len(), 64);
    }

    #[test]
    fn ed25519_verifies_and_tampering_fails() {
        // RFC 8032 §7.1, TEST 2.
        let pk = unhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
        let sig = unhex(
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        );
        let c = VerifyOnlyCrypto;
        assert_eq!(
            c.verify_signature(SignatureScheme::ED25519, &[0x72], &pk, &sig),
            Ok(())
        );
        assert_eq!(
            c.verify_signature(SignatureScheme::ED25519, &[0x73], &pk, &sig),
            Err(CryptoError::InvalidSignature)
        );
        assert_eq!(
            c.verify_signature(SignatureScheme::ED25519, &[0x72], &pk, &[0u8; 64]),
            Err(CryptoError::InvalidSignature)
        );
    }

    #[test]
    fn nothing_secret_can_be_computed() {
        let c = VerifyOnlyCrypto;
        assert!(c.hkdf_extract(HashType::Sha2_256, b"", b"k").is_err());
        assert!(c.hmac(HashType::Sha2_256, b"k", b"m").is_err());
        assert!(c.sign(SignatureScheme::ED25519, b"m", &[0; 32]).is_err());
        assert!(
            c.aead_decrypt(AeadType::Aes128Gcm, &[0; 16], &[0; 32], &[0; 12], b"")
                .is_err()
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }
}
