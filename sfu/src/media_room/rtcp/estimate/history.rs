//! What left for a subscriber, by transport-wide sequence number: the session stamps each
//! packet it sends with the next number (the transport-cc header extension) and remembers when
//! it left and how large it was, so that the subscriber's feedback (which packets arrived,
//! when) can be read as reports. A ring indexed by the number: no hashing on the packet path.

use std::time::Instant;

use rtc::interceptor::{Acknowledgement, PacketReport};
use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

/// Packets remembered: about a second at 1,000 packets a second, several feedback intervals.
const RING: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Sent {
    seq: u16,
    ssrc: u32,
    rtp_seq: u16,
    size: u32,
    departure: Instant,
}

#[derive(Debug)]
pub struct History {
    ring: Vec<Option<Sent>>,
    next: u16,
}

impl Default for History {
    fn default() -> Self {
        History {
            ring: vec![None; RING],
            next: 0,
        }
    }
}

impl History {
    /// A packet of `size` bytes (its RTP size) of `ssrc` numbered `rtp_seq` leaves at `now`:
    /// its transport-wide sequence number.
    pub fn sent(&mut self, now: Instant, ssrc: u32, rtp_seq: u16, size: usize) -> u16 {
        let seq = self.next;
        self.next = seq.wrapping_add(1);
        self.ring[usize::from(seq) % RING] = Some(Sent {
            seq,
            ssrc,
            rtp_seq,
            size: size as u32,
            departure: now,
        });
        seq
    }

    /// The report of what feedback said of one packet (once: the entry is then forgotten);
    /// `None` for a number not sent, or sent too long ago.
    pub fn report(&mut self, ack: &Acknowledgement) -> Option<PacketReport> {
        let slot = &mut self.ring[usize::from(ack.sequence_number) % RING];
        let sent = slot.filter(|s| s.seq == ack.sequence_number)?;
        *slot = None;
        Some(PacketReport {
            ssrc: sent.ssrc,
            id: u64::from(sent.seq),
            rtp_sequence_number: sent.rtp_seq,
            is_twcc: true,
            twcc_sequence_number: sent.seq,
            size: sent.size as usize,
            arrived: ack.arrived,
            departure: sent.departure,
            arrival: ack.arrival,
            ecn: Ecn::NotEct,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn feedback_finds_what_left_once() {
        let t0 = Instant::now();
        let mut h = History::default();
        let a = h.sent(t0, 7, 100, 1200);
        let b = h.sent(t0 + Duration::from_millis(1), 7, 101, 300);
        assert_eq!((a, b), (0, 1));
        let r = h
            .report(&Acknowledgement::received(
                b,
                Some(Duration::from_millis(40)),
                Ecn::NotEct,
            ))
            .unwrap();
        assert_eq!((r.rtp_sequence_number, r.size, r.arrived), (101, 300, true));
        assert!(
            h.report(&Acknowledgement::lost(b)).is_none(),
            "reported once"
        );
        assert!(!h.report(&Acknowledgement::lost(a)).unwrap().arrived);
        assert!(h.report(&Acknowledgement::lost(5)).is_none(), "never sent");
    }

    #[test]
    fn a_number_from_a_lap_ago_is_not_taken_for_the_new_one() {
        let t0 = Instant::now();
        let mut h = History::default();
        for i in 0..(RING as u16 + 1) {
            h.sent(t0, 7, i, 100);
        }
        assert!(h.report(&Acknowledgement::lost(0)).is_none(), "overwritten");
        assert_eq!(
            h.report(&Acknowledgement::lost(RING as u16))
                .unwrap()
                .rtp_sequence_number,
            RING as u16
        );
    }
}
