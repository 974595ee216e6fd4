//! How fast the room may send to one subscriber: send-side bandwidth estimation from the
//! subscriber's transport-wide feedback (TWCC, draft-holmer-rmcat-transport-wide-cc-extensions),
//! read by the room's allocation ([`crate::media_room::bandwidth`]).
//!
//! The session stamps each packet it sends with a transport-wide sequence number and keeps
//! when it left ([`history`]); the subscriber's feedback says which arrived when. Three parts
//! read it. The delay half of the engine's Google Congestion Control (`gcc`) follows the rate
//! while it changes slowly. A window that loses more than [`LOSS_LIMIT`] while packets wait in
//! a queue ([`STANDING_QUEUE`]) caps the estimate at what the path delivered ([`delivery`]):
//! GCC's own loss half waits for 10%, and a link whose queue stays full builds no more delay,
//! so it could lose 5% for ever under GCC alone. And probes ([`probe`]) find whether the path
//! carries more when the room would send more than the estimate allows: GCC climbs by 8% a
//! second, which would keep a subscriber whose link came back on its low layers for half a
//! minute.
//!
//! The engine has all of this as interceptors (a transport-wide sequence stamper and a
//! congestion controller with its send history); they cost the room about 1.5 µs per forwarded
//! packet (hashing three maps per packet, two more stages that move every packet), half again
//! its whole cost, so the session does it in the write it makes anyway. No pacer: the room
//! keeps what it sends under the estimate by choosing layers, and a pacer holding forwarded
//! packets back would add their queueing delay to every frame (decision 0040).

pub mod delivery;
pub mod history;
pub mod probe;

use std::time::{Duration, Instant};

use rtc::interceptor::{BandwidthEstimator, Gcc, PacketReport, convert_twcc};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;

use delivery::Delivery;
use history::History;
use probe::{Outcome, Probe};

/// Where GCC starts; the room sends what the subscriber wants until the path shows a limit.
pub const INITIAL_BITS_PER_SECOND: f64 = 1_000_000.0;
/// The least it goes down to.
pub const MIN_BITS_PER_SECOND: f64 = 50_000.0;
/// The most it goes up to.
pub const MAX_BITS_PER_SECOND: f64 = 50_000_000.0;
/// Feedback older than this says nothing: a subscriber that stopped answering (gone, or not
/// reading) is sent the least.
pub const STALE: Duration = Duration::from_secs(2);
/// A window of feedback that lost more than this share caps the estimate at what it delivered.
pub const LOSS_LIMIT: f64 = 0.03;
/// A queue this long (one-way delay over the least seen lately) is one the room filled.
pub const STANDING_QUEUE: Duration = Duration::from_millis(60);
/// How late a packet may arrive after one sent after it and not be taken for lost.
const REORDERING: Duration = Duration::from_millis(50);

/// One subscriber's estimate: what left, what its feedback said, and the rate that follows.
pub struct Bandwidth {
    history: History,
    gcc: Gcc,
    /// GCC's last rate.
    last: f64,
    /// When the last feedback came; `None`: never (the subscriber may not send any).
    heard: Option<Instant>,
    /// Whether the path has shown a limit (delay building up, or loss at a queue): until then
    /// the estimate is no limit.
    bounded: bool,
    delivery: Delivery,
    /// The most the path is taken to carry: what it delivered while it lost, or what a probe
    /// measured.
    ceiling: Option<f64>,
    /// Bytes on the wire sent so far.
    sent_bytes: u64,
    /// The probe under way or not yet read.
    probe: Option<Probe>,
}

impl Default for Bandwidth {
    fn default() -> Self {
        Bandwidth {
            history: History::default(),
            gcc: gcc(INITIAL_BITS_PER_SECOND),
            last: INITIAL_BITS_PER_SECOND,
            heard: None,
            bounded: false,
            delivery: Delivery::default(),
            ceiling: None,
            sent_bytes: 0,
            probe: None,
        }
    }
}

impl std::fmt::Debug for Bandwidth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bandwidth")
            .field("rate", &self.rate())
            .field("bounded", &self.bounded)
            .field("ceiling", &self.ceiling)
            .finish_non_exhaustive()
    }
}

fn gcc(initial: f64) -> Gcc {
    Gcc::new(initial, MIN_BITS_PER_SECOND, MAX_BITS_PER_SECOND)
}

impl Bandwidth {
    /// The most the room may send at `now`, in bits per second: `None` while the path has
    /// shown no limit (or the subscriber sends no feedback to go by), the least if its
    /// feedback stopped.
    pub fn bits_per_second(&self, now: Instant) -> Option<u64> {
        let heard = self.heard?;
        if now.saturating_duration_since(heard) > STALE {
            return Some(MIN_BITS_PER_SECOND as u64);
        }
        self.bounded.then_some(self.rate() as u64)
    }

    fn rate(&self) -> f64 {
        let gcc = self.gcc.target_bitrate();
        self.ceiling.map_or(gcc, |c| c.min(gcc))
    }

    /// A packet of `size` bytes of `ssrc` numbered `rtp_seq` leaves at `now`: its
    /// transport-wide sequence number.
    pub fn sent(&mut self, now: Instant, ssrc: u32, rtp_seq: u16, size: usize) -> u16 {
        self.sent_bytes += (size + probe::WIRE_OVERHEAD) as u64;
        self.history.sent(now, ssrc, rtp_seq, size)
    }

    /// Starts a probe at `now`: for its duration, what leaves should leave at `factor` times
    /// the estimate. False if one is under way.
    pub fn start_probe(&mut self, now: Instant, factor: f64) -> bool {
        if self.probe.is_some() {
            return false;
        }
        let target = (self.rate() * factor).min(MAX_BITS_PER_SECOND);
        self.probe = Some(Probe::new(now, target, self.sent_bytes));
        true
    }

    /// How many padding packets a probe under way needs at `now` to keep to its rate (0 if
    /// none is, or media alone keeps to it).
    pub fn padding_due(&self, now: Instant) -> usize {
        let Some(p) = self.probe.as_ref().filter(|p| now <= p.end) else {
            return 0;
        };
        let sent = self.sent_bytes - p.sent_before;
        let missing = p.due(now).saturating_sub(sent);
        (missing as usize).div_ceil(probe::PADDING_ON_WIRE)
    }

    /// Whether a probe is sending now.
    pub fn probing(&self, now: Instant) -> bool {
        self.probe.as_ref().is_some_and(|p| now <= p.end)
    }

    /// The subscriber's transport-wide feedback, received at `now`.
    pub fn feedback(&mut self, now: Instant, feedback: &TransportLayerCc) {
        let reports: Vec<PacketReport> = convert_twcc(feedback)
            .iter()
            .filter_map(|ack| self.history.report(ack))
            .collect();
        self.on_reports(now, &reports);
    }

    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        // GCC hears only of packets that arrived: its delay half is what it is for. Its loss
        // half would take every packet reported missing as lost, and a packet that arrives
        // after a later one (a few milliseconds of jitter), or whose feedback was lost, is
        // reported missing: with 3% loss and some jitter it counted 10-28% and cut the rate
        // again and again. Loss is read here instead ([`delivery`]), where a packet counts as
        // lost only if one sent well after it arrived, and matters only with a queue.
        let Some(latest) = reports
            .iter()
            .filter(|r| r.arrived)
            .map(|r| r.departure)
            .max()
        else {
            return;
        };
        let arrived: Vec<PacketReport> = reports.iter().filter(|r| r.arrived).cloned().collect();
        self.gcc.on_reports(now, &arrived);
        for r in reports
            .iter()
            .filter(|r| r.arrived || r.departure + REORDERING <= latest)
        {
            self.delivery.add(now, r);
        }
        if self.gcc.target_bitrate() < self.last * 0.99 {
            self.bounded = true;
        }
        if let Some(d) = self.delivery.take(now)
            && d.loss > LOSS_LIMIT
            && d.queue > STANDING_QUEUE
        {
            // Lost at a full queue: the path carries what it delivered. (Loss without a queue
            // is the link's, not the rate's: NACK repairs it.)
            tracing::debug!(loss = d.loss, queue = ?d.queue, rate = d.rate, "the path is full");
            self.ceiling = Some(d.rate);
            self.bounded = true;
        }
        if let Some(p) = self.probe.as_mut() {
            for r in reports {
                p.add(r);
            }
            if let Some(outcome) = p.outcome(now) {
                self.probe = None;
                tracing::debug!(?outcome, "probe read");
                match outcome {
                    Outcome::Carried(rate) => {
                        if rate > self.rate() {
                            self.ceiling = Some(rate);
                            if rate > self.gcc.target_bitrate() {
                                self.gcc = gcc(rate);
                            }
                        }
                    }
                    Outcome::Limited(rate) => {
                        if rate < self.rate() && rate > 0.0 {
                            self.ceiling = Some(rate);
                        }
                    }
                }
            }
        }
        self.last = self.gcc.target_bitrate();
        self.heard = Some(now);
    }
}
