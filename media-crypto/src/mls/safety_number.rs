//! Safety numbers: what members compare out of band to know they share one group, with no
//! member added behind their backs.
//!
//! The number is derived from the MLS epoch authenticator (RFC 9420 §8.7), which every member
//! of an epoch holds and nobody else can compute:
//!
//! ```text
//! digest = SHA-512("e2ee-sfu safety number v1" || epoch_authenticator)
//! group i (0..8) = big-endian u40 of digest[5i .. 5i+5] mod 100000, as 5 digits
//! ```
//!
//! 40 decimal digits (about 132 bits) in eight groups of five.

use sha2::{Digest, Sha512};

const LABEL: &[u8] = b"e2ee-sfu safety number v1";
/// Groups of five digits.
pub const SAFETY_NUMBER_GROUPS: usize = 8;

/// A safety number: identical on every member of one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SafetyNumber {
    groups: [u32; SAFETY_NUMBER_GROUPS],
}

impl SafetyNumber {
    /// Derives the number from an epoch authenticator.
    pub fn from_epoch_authenticator(authenticator: &[u8]) -> Self {
        let digest = Sha512::new()
            .chain_update(LABEL)
            .chain_update(authenticator)
            .finalize();
        let mut groups = [0u32; SAFETY_NUMBER_GROUPS];
        for (i, g) in groups.iter_mut().enumerate() {
            let v = digest[5 * i..5 * i + 5]
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            *g = (v % 100_000) as u32;
        }
        SafetyNumber { groups }
    }

    /// The digits without spaces (40 of them).
    pub fn digits(&self) -> String {
        self.groups.iter().map(|g| format!("{g:05}")).collect()
    }

    /// The groups of five digits.
    pub fn groups(&self) -> [String; SAFETY_NUMBER_GROUPS] {
        self.groups.map(|g| format!("{g:05}"))
    }
}

impl std::fmt::Display for SafetyNumber {
    /// Five-digit groups separated by spaces, for reading aloud.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.groups().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forty_digits_in_groups_of_five() {
        let n = SafetyNumber::from_epoch_authenticator(&[1; 32]);
        assert_eq!(n.digits().len(), 40);
        assert!(n.digits().bytes().all(|b| b.is_ascii_digit()));
        let shown = n.to_string();
        assert_eq!(shown.split(' ').count(), 8);
        assert_eq!(shown.replace(' ', ""), n.digits());
    }

    #[test]
    fn depends_on_every_authenticator() {
        let a = SafetyNumber::from_epoch_authenticator(&[1; 32]);
        let mut other = [1u8; 32];
        other[31] ^= 0x80;
        assert_ne!(a, SafetyNumber::from_epoch_authenticator(&other));
        assert_eq!(a, SafetyNumber::from_epoch_authenticator(&[1; 32]));
    }
}
