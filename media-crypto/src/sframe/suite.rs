//! Cipher suites, RFC 9605 §4.5 and §8.1 (0x0001-0x0005), and the AES-256 CTR+HMAC suites of
//! draft-barnes-sframe-iana-256 (0x0006-0x0008).

use super::error::SuiteError;

/// The hash that feeds the SFrame key derivation (§4.4.2) and, for the CTR suites, the HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KdfHash {
    Sha256,
    Sha512,
}

/// An SFrame cipher suite, by its IANA value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CipherSuite {
    /// 0x0001 AES_128_CTR_HMAC_SHA256_80
    AesCtr128HmacSha256_80,
    /// 0x0002 AES_128_CTR_HMAC_SHA256_64
    AesCtr128HmacSha256_64,
    /// 0x0003 AES_128_CTR_HMAC_SHA256_32
    AesCtr128HmacSha256_32,
    /// 0x0004 AES_128_GCM_SHA256_128
    AesGcm128Sha256,
    /// 0x0005 AES_256_GCM_SHA512_128
    AesGcm256Sha512,
    /// 0x0006 AES_256_CTR_HMAC_SHA512_80
    AesCtr256HmacSha512_80,
    /// 0x0007 AES_256_CTR_HMAC_SHA512_64
    AesCtr256HmacSha512_64,
    /// 0x0008 AES_256_CTR_HMAC_SHA512_32
    AesCtr256HmacSha512_32,
}

impl CipherSuite {
    /// Every suite this crate implements, in IANA order.
    pub const ALL: [CipherSuite; 8] = [
        CipherSuite::AesCtr128HmacSha256_80,
        CipherSuite::AesCtr128HmacSha256_64,
        CipherSuite::AesCtr128HmacSha256_32,
        CipherSuite::AesGcm128Sha256,
        CipherSuite::AesGcm256Sha512,
        CipherSuite::AesCtr256HmacSha512_80,
        CipherSuite::AesCtr256HmacSha512_64,
        CipherSuite::AesCtr256HmacSha512_32,
    ];

    /// The IANA value.
    pub const fn id(self) -> u16 {
        match self {
            CipherSuite::AesCtr128HmacSha256_80 => 0x0001,
            CipherSuite::AesCtr128HmacSha256_64 => 0x0002,
            CipherSuite::AesCtr128HmacSha256_32 => 0x0003,
            CipherSuite::AesGcm128Sha256 => 0x0004,
            CipherSuite::AesGcm256Sha512 => 0x0005,
            CipherSuite::AesCtr256HmacSha512_80 => 0x0006,
            CipherSuite::AesCtr256HmacSha512_64 => 0x0007,
            CipherSuite::AesCtr256HmacSha512_32 => 0x0008,
        }
    }

    /// The suite with this IANA value.
    pub fn from_id(id: u16) -> Result<Self, SuiteError> {
        Self::ALL
            .into_iter()
            .find(|s| s.id() == id)
            .ok_or(SuiteError::Unknown(id))
    }

    /// Nk: the length of the AEAD key (for CTR suites, encryption key and HMAC key together).
    pub const fn key_len(self) -> usize {
        match self {
            CipherSuite::AesCtr128HmacSha256_80
            | CipherSuite::AesCtr128HmacSha256_64
            | CipherSuite::AesCtr128HmacSha256_32 => 48,
            CipherSuite::AesGcm128Sha256 => 16,
            CipherSuite::AesGcm256Sha512 => 32,
            CipherSuite::AesCtr256HmacSha512_80
            | CipherSuite::AesCtr256HmacSha512_64
            | CipherSuite::AesCtr256HmacSha512_32 => 96,
        }
    }

    /// Nka: for the CTR suites, the length of the AES key inside the AEAD key.
    pub(crate) const fn aes_key_len(self) -> usize {
        match self {
            CipherSuite::AesCtr128HmacSha256_80
            | CipherSuite::AesCtr128HmacSha256_64
            | CipherSuite::AesCtr128HmacSha256_32
            | CipherSuite::AesGcm128Sha256 => 16,
            _ => 32,
        }
    }

    /// Nn: the nonce length.
    pub const fn nonce_len(self) -> usize {
        12
    }

    /// Nt: the authentication tag length.
    pub const fn tag_len(self) -> usize {
        match self {
            CipherSuite::AesCtr128HmacSha256_80 | CipherSuite::AesCtr256HmacSha512_80 => 10,
            CipherSuite::AesCtr128HmacSha256_64 | CipherSuite::AesCtr256HmacSha512_64 => 8,
            CipherSuite::AesCtr128HmacSha256_32 | CipherSuite::AesCtr256HmacSha512_32 => 4,
            CipherSuite::AesGcm128Sha256 | CipherSuite::AesGcm256Sha512 => 16,
        }
    }

    /// True for the AES-CTR + HMAC constructions (RFC 9605 §4.5.1).
    pub const fn is_ctr_hmac(self) -> bool {
        !matches!(
            self,
            CipherSuite::AesGcm128Sha256 | CipherSuite::AesGcm256Sha512
        )
    }

    pub(crate) const fn kdf_hash(self) -> KdfHash {
        match self {
            CipherSuite::AesCtr128HmacSha256_80
            | CipherSuite::AesCtr128HmacSha256_64
            | CipherSuite::AesCtr128HmacSha256_32
            | CipherSuite::AesGcm128Sha256 => KdfHash::Sha256,
            _ => KdfHash::Sha512,
        }
    }
}

impl Default for CipherSuite {
    /// AES_128_GCM_SHA256_128: full-length tags, and the suite browsers run in WebCrypto.
    fn default() -> Self {
        CipherSuite::AesGcm128Sha256
    }
}

impl std::fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?} (0x{:04x})", self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_unknown_ids_are_refused() {
        for s in CipherSuite::ALL {
            assert_eq!(CipherSuite::from_id(s.id()), Ok(s));
        }
        assert_eq!(CipherSuite::from_id(0), Err(SuiteError::Unknown(0)));
        assert_eq!(CipherSuite::from_id(9), Err(SuiteError::Unknown(9)));
    }

    #[test]
    fn ctr_suites_split_their_key_into_aes_and_hmac_parts() {
        for s in CipherSuite::ALL.into_iter().filter(|s| s.is_ctr_hmac()) {
            let hmac_len = s.key_len() - s.aes_key_len();
            let expected = match s.kdf_hash() {
                KdfHash::Sha256 => 32,
                KdfHash::Sha512 => 64,
            };
            assert_eq!(hmac_len, expected, "{s}");
        }
    }
}
