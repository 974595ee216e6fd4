//! KIDs for MLS-keyed SFrame, RFC 9605 §5.2:
//!
//! ```text
//! KID = (sender_leaf_index << E) | (epoch mod 2^E)
//! ```
//!
//! E, the number of epoch bits, bounds how many epochs a receiver can tell apart at once: an
//! epoch is dropped when a new one with the same low E bits arrives.

/// The default E: 8 bits, so 256 consecutive epochs are distinct. KIDs of the first 256 leaves
/// then fit in two header bytes.
pub const DEFAULT_EPOCH_BITS: u8 = 8;

/// How KIDs split into sender leaf index and epoch bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KidLayout {
    epoch_bits: u8,
}

impl Default for KidLayout {
    fn default() -> Self {
        KidLayout {
            epoch_bits: DEFAULT_EPOCH_BITS,
        }
    }
}

impl KidLayout {
    /// A layout with `epoch_bits` bits of epoch (1 to 32; values outside are clamped, so that
    /// a 32-bit leaf index always fits).
    pub fn new(epoch_bits: u8) -> Self {
        KidLayout {
            epoch_bits: epoch_bits.clamp(1, 32),
        }
    }

    /// E.
    pub fn epoch_bits(&self) -> u8 {
        self.epoch_bits
    }

    fn mask(&self) -> u64 {
        (1u64 << self.epoch_bits) - 1
    }

    /// The low E bits of an epoch.
    pub fn epoch_low_bits(&self, epoch: u64) -> u64 {
        epoch & self.mask()
    }

    /// The KID of `leaf` sending in `epoch`.
    pub fn kid(&self, leaf: u32, epoch: u64) -> u64 {
        (u64::from(leaf) << self.epoch_bits) | self.epoch_low_bits(epoch)
    }

    /// Splits a KID into (sender leaf index, epoch low bits); `None` if the leaf index does not
    /// fit 32 bits (no MLS tree has such a leaf).
    pub fn split(&self, kid: u64) -> Option<(u32, u64)> {
        let leaf = u32::try_from(kid >> self.epoch_bits).ok()?;
        Some((leaf, kid & self.mask()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_joins_leaf_and_epoch_bits() {
        let l = KidLayout::new(4);
        assert_eq!(l.kid(3, 0x12), 0x32);
        assert_eq!(l.split(0x32), Some((3, 2)));
        let l = KidLayout::default();
        assert_eq!(l.kid(1, 257), 0x101);
        assert_eq!(l.split(u64::MAX), None);
        assert_eq!(l.split(l.kid(u32::MAX, 7)), Some((u32::MAX, 7)));
    }
}
