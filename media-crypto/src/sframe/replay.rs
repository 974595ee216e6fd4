//! A sliding replay window over frame counters (RFC 9605 §7.5 asks receivers to reject replays).
//!
//! The window remembers which of the last `size` counters below the highest one seen were
//! accepted. A counter above the highest is new; one older than the window is refused.

use super::error::DecryptError;

/// The default window: 1024 counters, room for a second or more of audio and video of one
/// sender arriving out of order.
pub const DEFAULT_REPLAY_WINDOW: usize = 1024;

#[derive(Debug, Clone)]
pub(crate) struct ReplayWindow {
    /// Window size in counters, a multiple of 64; 0 turns replay protection off.
    size: u64,
    /// The highest counter accepted so far.
    top: Option<u64>,
    /// Bit `c % size` is set when counter `c` (within the window) was accepted.
    bits: Vec<u64>,
}

impl ReplayWindow {
    /// A window of at least `size` counters (rounded up to a multiple of 64); 0 disables it.
    pub(crate) fn new(size: usize) -> Self {
        let words = size.div_ceil(64);
        ReplayWindow {
            size: words as u64 * 64,
            top: None,
            bits: vec![0; words],
        }
    }

    fn bit(&self, ctr: u64) -> (usize, u64) {
        let i = ctr % self.size;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    /// Refuses a counter that was seen or is too old; changes nothing.
    pub(crate) fn check(&self, kid: u64, ctr: u64) -> Result<(), DecryptError> {
        let Some(top) = self.top else { return Ok(()) };
        if self.size == 0 || ctr > top {
            return Ok(());
        }
        if top - ctr >= self.size {
            return Err(DecryptError::TooOld {
                kid,
                ctr,
                oldest: top - (self.size - 1),
            });
        }
        let (w, m) = self.bit(ctr);
        if self.bits[w] & m != 0 {
            return Err(DecryptError::Replayed { kid, ctr });
        }
        Ok(())
    }

    /// Records an authenticated counter that passed [`Self::check`].
    pub(crate) fn accept(&mut self, ctr: u64) {
        if self.size == 0 {
            return;
        }
        match self.top {
            Some(top) if ctr <= top => {}
            Some(top) if ctr - top < self.size => {
                for c in top + 1..ctr {
                    let (w, m) = self.bit(c);
                    self.bits[w] &= !m;
                }
                self.top = Some(ctr);
            }
            _ => {
                self.bits.fill(0);
                self.top = Some(ctr);
            }
        }
        let (w, m) = self.bit(ctr);
        self.bits[w] |= m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(w: &mut ReplayWindow, ctr: u64) -> Result<(), DecryptError> {
        w.check(7, ctr)?;
        w.accept(ctr);
        Ok(())
    }

    #[test]
    fn accepts_each_counter_once_in_any_order_within_the_window() {
        let mut w = ReplayWindow::new(64);
        for c in [5, 3, 9, 4, 70] {
            assert_eq!(take(&mut w, c), Ok(()));
        }
        assert_eq!(
            take(&mut w, 9),
            Err(DecryptError::Replayed { kid: 7, ctr: 9 })
        );
        assert_eq!(
            take(&mut w, 70),
            Err(DecryptError::Replayed { kid: 7, ctr: 70 })
        );
        // 9 is still inside [7, 70]; 5 is not.
        assert_eq!(
            take(&mut w, 5),
            Err(DecryptError::TooOld {
                kid: 7,
                ctr: 5,
                oldest: 7
            })
        );
        assert_eq!(take(&mut w, 8), Ok(()));
    }

    #[test]
    fn a_slot_reused_after_the_window_moves_is_free_again() {
        let mut w = ReplayWindow::new(64);
        assert_eq!(take(&mut w, 1), Ok(()));
        assert_eq!(take(&mut w, 66), Ok(()));
        // 65 shares slot 1's bit (65 % 64 == 1) and was never seen.
        assert_eq!(take(&mut w, 65), Ok(()));
    }

    #[test]
    fn a_large_jump_clears_the_window() {
        let mut w = ReplayWindow::new(128);
        assert_eq!(take(&mut w, 10), Ok(()));
        assert_eq!(take(&mut w, 1_000_000), Ok(()));
        assert_eq!(take(&mut w, 999_999), Ok(()));
        assert_eq!(
            take(&mut w, 1_000_000),
            Err(DecryptError::Replayed {
                kid: 7,
                ctr: 1_000_000
            })
        );
    }

    #[test]
    fn the_highest_counter_is_handled() {
        let mut w = ReplayWindow::new(64);
        assert_eq!(take(&mut w, u64::MAX), Ok(()));
        assert_eq!(
            take(&mut w, u64::MAX),
            Err(DecryptError::Replayed {
                kid: 7,
                ctr: u64::MAX
            })
        );
        assert_eq!(take(&mut w, u64::MAX - 1), Ok(()));
    }

    #[test]
    fn size_zero_turns_protection_off() {
        let mut w = ReplayWindow::new(0);
        assert_eq!(take(&mut w, 3), Ok(()));
        assert_eq!(take(&mut w, 3), Ok(()));
    }
}
