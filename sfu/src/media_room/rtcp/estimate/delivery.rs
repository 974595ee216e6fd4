//! What the path delivered over a window of feedback: the share lost, the rate that arrived,
//! and how long packets waited in a queue on the way (their one-way delay over the least
//! seen lately; the two clocks differ by a constant, which the difference cancels).

use std::time::{Duration, Instant};

use rtc::interceptor::PacketReport;

/// Loss and delivery are taken over windows this long.
pub const WINDOW: Duration = Duration::from_millis(500);
/// The least one-way delay is the least of the last one or two of these.
const BASE_WINDOW: Duration = Duration::from_secs(10);

/// One window's measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delivered {
    /// The share of packets lost.
    pub loss: f64,
    /// Bits per second that arrived.
    pub rate: f64,
    /// How long they waited on average beyond the least delay seen.
    pub queue: Duration,
}

#[derive(Debug, Default)]
pub struct Delivery {
    since: Option<Instant>,
    sent: usize,
    lost: usize,
    bytes: usize,
    first: Option<Duration>,
    last: Option<Duration>,
    /// Departures are counted from here.
    epoch: Option<Instant>,
    /// The window's one-way delays (arrival less departure, in microseconds, offset by the
    /// clocks' difference).
    delay_sum: i128,
    delays: usize,
    base: Base,
}

/// The least one-way delay over the last one or two [`BASE_WINDOW`]s.
#[derive(Debug, Default)]
struct Base {
    started: Option<Instant>,
    now: Option<i128>,
    before: Option<i128>,
}

impl Base {
    fn add(&mut self, at: Instant, delay: i128) {
        let started = *self.started.get_or_insert(at);
        if at.saturating_duration_since(started) >= BASE_WINDOW {
            self.before = self.now.take();
            self.started = Some(at);
        }
        self.now = Some(self.now.map_or(delay, |d| d.min(delay)));
    }

    fn least(&self) -> Option<i128> {
        match (self.now, self.before) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl Delivery {
    /// One packet's fate, learnt at `now`.
    pub fn add(&mut self, now: Instant, r: &PacketReport) {
        self.since.get_or_insert(now);
        self.sent += 1;
        match r.arrival {
            Some(at) if r.arrived => {
                self.bytes += r.size;
                self.first = Some(self.first.map_or(at, |f| f.min(at)));
                self.last = Some(self.last.map_or(at, |l| l.max(at)));
                let epoch = *self.epoch.get_or_insert(r.departure);
                let departed = r.departure.saturating_duration_since(epoch).as_micros() as i128;
                let delay = at.as_micros() as i128 - departed;
                self.delay_sum += delay;
                self.delays += 1;
                self.base.add(now, delay);
            }
            _ => self.lost += 1,
        }
    }

    /// At the end of a window (at least [`WINDOW`], ten packets): what it delivered; the next
    /// window starts.
    pub fn take(&mut self, now: Instant) -> Option<Delivered> {
        let since = self.since?;
        if now.saturating_duration_since(since) < WINDOW || self.sent < 10 {
            return None;
        }
        let span = self.last?.saturating_sub(self.first?).as_secs_f64();
        let least = self.base.least()?;
        let mean = self.delay_sum / self.delays.max(1) as i128;
        let d = Delivered {
            loss: self.lost as f64 / self.sent as f64,
            rate: if span > 0.0 {
                self.bytes as f64 * 8.0 / span
            } else {
                f64::INFINITY
            },
            queue: Duration::from_micros(u64::try_from(mean - least).unwrap_or(0)),
        };
        *self = Delivery {
            epoch: self.epoch,
            base: std::mem::take(&mut self.base),
            ..Delivery::default()
        };
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    fn report(departure: Instant, arrival_ms: Option<u64>) -> PacketReport {
        PacketReport {
            ssrc: 1,
            id: 0,
            rtp_sequence_number: 0,
            is_twcc: true,
            twcc_sequence_number: 0,
            size: 1000,
            arrived: arrival_ms.is_some(),
            departure,
            arrival: arrival_ms.map(Duration::from_millis),
            ecn: Ecn::default(),
        }
    }

    #[test]
    fn a_queue_that_builds_shows_as_delay_over_the_least() {
        let t0 = Instant::now();
        let mut d = Delivery::default();
        // 20 packets 10 ms apart over a path of 30 ms (the clocks differ by 5 s).
        for i in 0..20u64 {
            let sent = t0 + Duration::from_millis(i * 10);
            d.add(sent, &report(sent, Some(5000 + 30 + i * 10)));
        }
        let w = d.take(t0 + Duration::from_millis(600)).unwrap();
        assert_eq!(w.loss, 0.0);
        assert_eq!(w.queue, Duration::ZERO);
        assert!((w.rate - 8000.0 * 20.0 / 0.19).abs() < 1.0, "{}", w.rate);
        // Then each waits 200 ms in a queue, and one in ten is dropped.
        for i in 20..40u64 {
            let sent = t0 + Duration::from_millis(i * 10);
            let arrival = (i % 10 != 0).then_some(5000 + 230 + i * 10);
            d.add(sent, &report(sent, arrival));
        }
        let w = d.take(t0 + Duration::from_millis(1200)).unwrap();
        assert!((w.loss - 0.1).abs() < 1e-9);
        assert_eq!(w.queue, Duration::from_millis(200));
    }
}
