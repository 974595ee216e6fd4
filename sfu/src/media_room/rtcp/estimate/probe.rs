//! Probing: whether the path to a subscriber carries more than the room sends it. For
//! [`DURATION`] the room adds padding-only RTP packets (RFC 3550 §5.1) to what it sends, so that
//! the whole leaves at a target rate; the subscriber's transport-wide feedback then says whether
//! it all arrived at that rate without waiting in a queue. If it did, the path carries at least
//! the target; if not, it carried what arrived. (Timing a train sent at once would be quicker,
//! but a token bucket's burst lets a short train through at line rate: in a browser behind
//! `tbf` at 300 kbps such trains measured "no limit".) The receiver's depacketizer takes
//! padding as what it is, numbers without media.

use std::time::{Duration, Instant};

use rtc::interceptor::PacketReport;

/// How long a probe sends at its target rate.
pub const DURATION: Duration = Duration::from_millis(200);
/// A probe's reports that have not all come within this after it ended are read as they are.
const PATIENCE: Duration = Duration::from_secs(1);
/// A probe whose packets' one-way delay grew by more than this filled a queue on the way.
const QUEUE_GROWTH: Duration = Duration::from_millis(25);
/// What a packet costs on the wire beyond what the feedback counts (its RTP size): IPv4 and
/// UDP headers and SRTP's authentication tag.
pub const WIRE_OVERHEAD: usize = 20 + 8 + 10;
/// A padding packet on the wire: the RTP header with the transport-wide sequence number's
/// extension, four bytes of padding, [`WIRE_OVERHEAD`].
pub const PADDING_ON_WIRE: usize = 12 + 8 + 4 + WIRE_OVERHEAD;

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Everything arrived at the rate it left, in bits per second: the path carries at least
    /// that.
    Carried(f64),
    /// Less arrived, or it queued: the path carries about this.
    Limited(f64),
}

/// A probe under way, and what the feedback said of the packets that left during it.
#[derive(Debug, Clone)]
pub struct Probe {
    pub start: Instant,
    pub end: Instant,
    /// Bits per second to send at.
    pub target: f64,
    /// What the session had sent when it began (bytes on the wire).
    pub sent_before: u64,
    sent: usize,
    arrived: usize,
    first_arrival: Option<Duration>,
    last_arrival: Option<Duration>,
    /// One-way delays (arrival less departure since `start`, microseconds) of the first and
    /// the second half's packets: sum, count.
    early: (i128, i128),
    late: (i128, i128),
    /// A packet that left after it ended was reported: every report of it has come.
    past: bool,
}

impl Probe {
    pub fn new(start: Instant, target: f64, sent_before: u64) -> Self {
        Probe {
            start,
            end: start + DURATION,
            target,
            sent_before,
            sent: 0,
            arrived: 0,
            first_arrival: None,
            last_arrival: None,
            early: (0, 0),
            late: (0, 0),
            past: false,
        }
    }

    /// Bytes on the wire that should have left by `now` since it began.
    pub fn due(&self, now: Instant) -> u64 {
        let elapsed = now.min(self.end).saturating_duration_since(self.start);
        (self.target / 8.0 * elapsed.as_secs_f64()) as u64
    }

    /// Takes one packet's report.
    pub fn add(&mut self, r: &PacketReport) {
        if r.departure > self.end {
            self.past = true;
            return;
        }
        if r.departure < self.start {
            return;
        }
        let size = r.size + WIRE_OVERHEAD;
        self.sent += size;
        let (true, Some(at)) = (r.arrived, r.arrival) else {
            return;
        };
        self.arrived += size;
        self.first_arrival = Some(self.first_arrival.map_or(at, |f| f.min(at)));
        self.last_arrival = Some(self.last_arrival.map_or(at, |l| l.max(at)));
        let departed = r.departure.saturating_duration_since(self.start);
        let delay = at.as_micros() as i128 - departed.as_micros() as i128;
        let half = if departed < DURATION / 2 {
            &mut self.early
        } else {
            &mut self.late
        };
        half.0 += delay;
        half.1 += 1;
    }

    /// What it found, once its reports are in (or have had their time); `None` until then.
    pub fn outcome(&self, now: Instant) -> Option<Outcome> {
        if !self.past && now < self.end + PATIENCE {
            return None;
        }
        let sent_rate = self.sent as f64 * 8.0 / DURATION.as_secs_f64();
        let span = match (self.first_arrival, self.last_arrival) {
            (Some(f), Some(l)) => l.saturating_sub(f).as_secs_f64(),
            _ => return Some(Outcome::Limited(0.0)),
        };
        // Over the span the packets arrived in (at least the probe's time: a burst passed at
        // once says nothing faster).
        let arrived_rate = self.arrived as f64 * 8.0 / span.max(DURATION.as_secs_f64() * 0.9);
        let mean = |(sum, n): (i128, i128)| (n > 0).then(|| sum / n);
        let growth = match (mean(self.early), mean(self.late)) {
            (Some(e), Some(l)) => Duration::from_micros(u64::try_from(l - e).unwrap_or(0)),
            _ => Duration::ZERO,
        };
        let all_arrived = self.arrived as f64 >= self.sent as f64 * 0.98;
        Some(
            if all_arrived && growth <= QUEUE_GROWTH && arrived_rate >= sent_rate * 0.9 {
                Outcome::Carried(sent_rate)
            } else {
                Outcome::Limited(arrived_rate.min(sent_rate))
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    fn report(departure: Instant, arrival: Option<Duration>) -> PacketReport {
        PacketReport {
            ssrc: 7,
            id: 0,
            rtp_sequence_number: 0,
            is_twcc: true,
            twcc_sequence_number: 0,
            size: 1000 - WIRE_OVERHEAD,
            arrived: arrival.is_some(),
            departure,
            arrival,
            ecn: Ecn::default(),
        }
    }

    /// 1000-byte packets every 8 ms (1 Mbps) through a link of `link` bits per second
    /// with 30 ms of delay.
    fn through(link: f64) -> Probe {
        let t0 = Instant::now();
        let mut p = Probe::new(t0, 1_000_000.0, 0);
        let mut free = Duration::ZERO;
        for i in 0..25u64 {
            let left = Duration::from_millis(i * 8);
            free = free.max(left) + Duration::from_secs_f64(8000.0 / link);
            p.add(&report(
                t0 + left,
                Some(Duration::from_secs(5) + free + Duration::from_millis(30)),
            ));
        }
        p.add(&report(t0 + Duration::from_millis(210), None));
        p
    }

    #[test]
    fn a_path_that_keeps_up_carried_the_target() {
        let p = through(10_000_000.0);
        assert_eq!(p.outcome(p.start), Some(Outcome::Carried(1_000_000.0)));
    }

    #[test]
    fn a_path_that_queues_carried_what_arrived() {
        let p = through(500_000.0);
        let Some(Outcome::Limited(rate)) = p.outcome(p.start) else {
            panic!("{:?}", p.outcome(p.start));
        };
        assert!((rate - 500_000.0).abs() < 25_000.0, "{rate}");
    }

    #[test]
    fn it_waits_for_its_reports_and_paces_its_bytes() {
        let t0 = Instant::now();
        let p = Probe::new(t0, 800_000.0, 0);
        assert_eq!(p.outcome(t0 + DURATION), None);
        assert_eq!(p.due(t0 + Duration::from_millis(100)), 10_000);
        assert_eq!(
            p.due(t0 + Duration::from_secs(1)),
            20_000,
            "not beyond its end"
        );
        assert_eq!(
            p.outcome(t0 + DURATION + PATIENCE),
            Some(Outcome::Limited(0.0))
        );
    }
}
