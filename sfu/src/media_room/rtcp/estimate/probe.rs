//! Probing: how much the path to a subscriber carries, measured by sending a train of
//! padding-only RTP packets (RFC 3550 §5.1) back to back in one of its video streams and timing
//! their arrivals from the subscriber's transport-wide feedback. They leave at once, so they
//! arrive spread by the narrowest link on the way: the train's bytes over its arrival spread
//! is that link's rate (packet-train dispersion). The receiver's depacketizer takes padding as
//! what it is, numbers without media. A train is about [`TRAIN_TIME`] of the estimate's worth
//! of bytes: long enough to time, short enough not to fill a queue.

use std::time::{Duration, Instant};

use rtc::interceptor::PacketReport;

/// A train carries about this long of the estimate's bytes...
pub const TRAIN_TIME: Duration = Duration::from_millis(20);
/// ...in this many packets at least and at most.
pub const MIN_PACKETS: usize = 4;
pub const MAX_PACKETS: usize = 100;
/// What a packet costs on the wire beyond what the feedback counts (its RTP size): IPv4 and
/// UDP headers and SRTP's authentication tag.
pub const WIRE_OVERHEAD: usize = 20 + 8 + 10;
/// A padding packet's size on the wire: the RTP header with the transport-wide sequence
/// number's extension, four bytes of padding, and [`WIRE_OVERHEAD`].
pub const PADDING_ON_WIRE: usize = 12 + 8 + 4 + WIRE_OVERHEAD;
/// A probe whose reports have not all come within this has lost some; it is read as it is.
const PATIENCE: Duration = Duration::from_secs(1);

/// How many packets a train has at an estimate of `bits_per_second`.
pub fn packets(bits_per_second: f64) -> usize {
    let bytes = bits_per_second / 8.0 * TRAIN_TIME.as_secs_f64();
    ((bytes / PADDING_ON_WIRE as f64).ceil() as usize).clamp(MIN_PACKETS, MAX_PACKETS)
}

/// A train sent, and what the feedback said of it so far.
#[derive(Debug, Clone)]
pub struct Train {
    /// When it left (every packet of it).
    pub at: Instant,
    /// The stream it went in and its first sequence number.
    pub ssrc: u32,
    pub seq: u16,
    /// How many packets it has.
    pub packets: usize,
    /// (bytes on the wire, arrival) of each packet reported arrived; how many were reported.
    arrived: Vec<(usize, Duration)>,
    reported: usize,
}

impl Train {
    pub fn new(at: Instant, ssrc: u32, seq: u16, packets: usize) -> Self {
        Train {
            at,
            ssrc,
            seq,
            packets,
            arrived: Vec::new(),
            reported: 0,
        }
    }

    /// Takes the reports of the train's packets.
    pub fn add(&mut self, reports: &[PacketReport]) {
        for r in reports {
            let offset = usize::from(r.rtp_sequence_number.wrapping_sub(self.seq));
            if r.ssrc != self.ssrc || offset >= self.packets || r.departure != self.at {
                continue;
            }
            self.reported += 1;
            if let (true, Some(at)) = (r.arrived, r.arrival) {
                self.arrived.push((r.size + WIRE_OVERHEAD, at));
            }
        }
    }

    /// What the path carries, in bits per second, once the train is all reported (or has
    /// waited long enough): `None` until then, `Some(None)` if too little of it arrived to
    /// say, `Some(Some(f64::INFINITY))` if it arrived all at once (no narrow link).
    pub fn rate(&self, now: Instant) -> Option<Option<f64>> {
        let done =
            self.reported >= self.packets || now.saturating_duration_since(self.at) > PATIENCE;
        if !done {
            return None;
        }
        if self.arrived.len() < 3 {
            return Some(None);
        }
        let first = self.arrived.iter().map(|a| a.1).min()?;
        let last = self.arrived.iter().map(|a| a.1).max()?;
        // The first packet's own bytes were through before the spread began.
        let bytes: usize = self.arrived.iter().map(|a| a.0).sum::<usize>() - self.arrived[0].0;
        let span = last.saturating_sub(first).as_secs_f64();
        Some(Some(if span > 0.0 {
            bytes as f64 * 8.0 / span
        } else {
            f64::INFINITY
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    fn report(at: Instant, seq: u16, arrival_us: Option<u64>) -> PacketReport {
        PacketReport {
            ssrc: 7,
            id: 0,
            rtp_sequence_number: seq,
            is_twcc: true,
            twcc_sequence_number: 0,
            size: 1000 - WIRE_OVERHEAD,
            arrived: arrival_us.is_some(),
            departure: at,
            arrival: arrival_us.map(Duration::from_micros),
            ecn: Ecn::default(),
        }
    }

    #[test]
    fn a_train_spread_by_a_1_mbps_link_measures_1_mbps() {
        let t0 = Instant::now();
        let mut train = Train::new(t0, 7, 40, 10);
        // 8 ms apart: 1000 bytes on the wire per 8 ms.
        let reports: Vec<_> = (0..10u64)
            .map(|i| report(t0, 40 + i as u16, Some(i * 8000)))
            .collect();
        train.add(&reports[..4]);
        assert_eq!(train.rate(t0), None, "not all reported yet");
        // Packets of the stream before and after it are not part of it.
        train.add(&[report(t0 - Duration::from_millis(5), 39, Some(0))]);
        train.add(&[report(t0, 50, Some(90_000))]);
        train.add(&reports[4..]);
        let rate = train.rate(t0).unwrap().unwrap();
        assert!((rate - 1_000_000.0).abs() < 1.0, "{rate}");
    }

    #[test]
    fn a_train_is_20_ms_of_the_estimate() {
        assert_eq!(packets(2_000_000.0), 5000_usize.div_ceil(PADDING_ON_WIRE));
        assert_eq!(packets(50_000.0), MIN_PACKETS);
        assert_eq!(packets(100_000_000.0), MAX_PACKETS);
    }

    #[test]
    fn a_train_that_arrives_at_once_met_no_narrow_link() {
        let t0 = Instant::now();
        let mut train = Train::new(t0, 7, 40, 10);
        let reports: Vec<_> = (0..10).map(|i| report(t0, 40 + i, Some(5000))).collect();
        train.add(&reports);
        assert_eq!(train.rate(t0), Some(Some(f64::INFINITY)));
    }

    #[test]
    fn a_train_mostly_lost_says_nothing_once_its_time_is_up() {
        let t0 = Instant::now();
        let mut train = Train::new(t0, 7, 40, 10);
        train.add(&[report(t0, 40, Some(0)), report(t0, 41, None)]);
        assert_eq!(train.rate(t0), None);
        assert_eq!(train.rate(t0 + Duration::from_secs(2)), Some(None));
    }
}
