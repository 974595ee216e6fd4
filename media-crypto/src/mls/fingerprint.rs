//! Member fingerprints: what two people compare out of band to know that the member on their
//! screens is the device they think it is. Where the safety number
//! ([`crate::mls::SafetyNumber`]) says everyone shares one group, a fingerprint names one
//! member's device key, the signature key in its MLS credential, which stays the same for as
//! long as the device keeps it:
//!
//! ```text
//! digest = SHA-512("e2ee-sfu member fingerprint v1" || identity_len (u16) || identity
//!                  || signature_key)
//! group i (0..6) = big-endian u40 of digest[5i .. 5i+5] mod 100000, as 5 digits
//! ```
//!
//! 30 decimal digits (about 99 bits) in six groups of five, as long as one party's half of a
//! Signal safety number; the identity is bound in, so the same key under another name gives
//! other digits.

use sha2::{Digest, Sha512};

const LABEL: &[u8] = b"e2ee-sfu member fingerprint v1";
/// Groups of five digits.
pub const FINGERPRINT_GROUPS: usize = 6;

/// One member's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    groups: [u32; FINGERPRINT_GROUPS],
}

impl Fingerprint {
    /// The fingerprint of `identity` (the name people know, not the per-visit participant id)
    /// holding `signature_key`.
    pub fn of(identity: &[u8], signature_key: &[u8]) -> Self {
        let len = u16::try_from(identity.len()).unwrap_or(u16::MAX);
        let digest = Sha512::new()
            .chain_update(LABEL)
            .chain_update(len.to_be_bytes())
            .chain_update(&identity[..usize::from(len)])
            .chain_update(signature_key)
            .finalize();
        let mut groups = [0u32; FINGERPRINT_GROUPS];
        for (i, g) in groups.iter_mut().enumerate() {
            let v = digest[5 * i..5 * i + 5]
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            *g = (v % 100_000) as u32;
        }
        Fingerprint { groups }
    }

    /// The groups of five digits.
    pub fn groups(&self) -> [String; FINGERPRINT_GROUPS] {
        self.groups.map(|g| format!("{g:05}"))
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.groups().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_digits_bound_to_name_and_key() {
        let f = Fingerprint::of(b"alice", &[1; 32]);
        assert_eq!(f.to_string().len(), 30 + 5);
        assert_eq!(f, Fingerprint::of(b"alice", &[1; 32]));
        assert_ne!(f, Fingerprint::of(b"alice", &[2; 32]));
        assert_ne!(f, Fingerprint::of(b"alicf", &[1; 32]));
        // The length prefix keeps "ab" + key "c.." apart from "abc" + key "..".
        assert_ne!(
            Fingerprint::of(b"ab", b"cdef"),
            Fingerprint::of(b"abc", b"def")
        );
    }
}
