//! How often the room resends one packet to a subscriber. The engine's NACK responder resends
//! whatever a NACK names, as often as it is named, and the engine's own NACK generator (the
//! bots', and any client built on it) asks for a missing packet every 100 ms until it leaves
//! its window: behind a link that is already full, the resends fill it further and the
//! subscriber asks again for what they pushed out, for ever. A subscriber could also ask on
//! purpose: a NACK of 16 bytes names 17 packets of up to 1,200 bytes each.
//!
//! So each packet is resent at most [`MAX_RESENDS`] times, at least [`MIN_GAP`] apart (a resend
//! sooner than a round trip cannot have been missed yet); the rest of a NACK is struck before
//! the responder reads it ([`super::inbound`]).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};

/// Resends of one packet, at most.
pub const MAX_RESENDS: u8 = 3;
/// Between two resends of one packet, at least.
pub const MIN_GAP: Duration = Duration::from_millis(50);
/// Packets remembered per connection (older ones may be resent again, but by then the
/// responder no longer holds them).
const REMEMBERED: usize = 4096;

/// Strikes from each NACK the packets resent often enough or too recently.
#[derive(Default)]
pub struct ResendLimit {
    /// (media SSRC, sequence number): resends so far, and the last.
    resent: HashMap<(u32, u16), (u8, Instant)>,
    order: VecDeque<(u32, u16)>,
}

impl std::fmt::Debug for ResendLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResendLimit")
            .field("remembered", &self.resent.len())
            .finish_non_exhaustive()
    }
}

impl ResendLimit {
    /// True (and counted) if packet `seq` of `ssrc` may be resent at `now`.
    fn allow(&mut self, now: Instant, ssrc: u32, seq: u16) -> bool {
        let key = (ssrc, seq);
        match self.resent.get_mut(&key) {
            Some((n, at)) => {
                if *n >= MAX_RESENDS || now.saturating_duration_since(*at) < MIN_GAP {
                    return false;
                }
                *n += 1;
                *at = now;
            }
            None => {
                if self.order.len() == REMEMBERED
                    && let Some(old) = self.order.pop_front()
                {
                    self.resent.remove(&old);
                }
                self.order.push_back(key);
                self.resent.insert(key, (1, now));
            }
        }
        true
    }

    /// `nack` with only what may be resent now; `None` if nothing may.
    pub fn limit(&mut self, now: Instant, nack: &TransportLayerNack) -> Option<TransportLayerNack> {
        let ssrc = nack.media_ssrc;
        let mut allowed: Vec<u16> = Vec::new();
        for pair in &nack.nacks {
            for seq in pair.packet_list() {
                if self.allow(now, ssrc, seq) {
                    allowed.push(seq);
                }
            }
        }
        (!allowed.is_empty()).then(|| TransportLayerNack {
            sender_ssrc: nack.sender_ssrc,
            media_ssrc: ssrc,
            nacks: nack_pairs_from_sequence_numbers(&allowed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nack(seqs: &[u16]) -> TransportLayerNack {
        TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: 2,
            nacks: nack_pairs_from_sequence_numbers(seqs),
        }
    }

    fn asked(n: Option<TransportLayerNack>) -> Vec<u16> {
        n.map(|n| n.nacks.iter().flat_map(|p| p.packet_list()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_packet_is_resent_at_most_three_times_and_not_twice_within_50_ms() {
        let t0 = Instant::now();
        let mut l = ResendLimit::default();
        assert_eq!(asked(l.limit(t0, &nack(&[10, 11]))), vec![10, 11]);
        let soon = t0 + Duration::from_millis(20);
        assert_eq!(asked(l.limit(soon, &nack(&[10, 11, 12]))), vec![12]);
        let mut at = t0;
        for _ in 0..2 {
            at += MIN_GAP;
            assert_eq!(asked(l.limit(at, &nack(&[10]))), vec![10]);
        }
        at += MIN_GAP;
        assert!(
            l.limit(at, &nack(&[10])).is_none(),
            "three resends are enough"
        );
        assert_eq!(asked(l.limit(at, &nack(&[11]))), vec![11]);
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let mut l = ResendLimit::default();
        for seq in 0..=u16::MAX {
            l.limit(t0, &nack(&[seq]));
        }
        assert_eq!(l.resent.len(), REMEMBERED);
    }
}
