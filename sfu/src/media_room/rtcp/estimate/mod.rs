//! How fast the room may send to one subscriber: send-side bandwidth estimation from the
//! subscriber's transport-wide feedback (TWCC), read by the room's allocation
//! ([`crate::media_room::bandwidth`]).
//!
//! Three parts, each on the same feedback. The delay half of the engine's Google Congestion
//! Control (`gcc`) follows the rate while it changes slowly. A window that loses more
//! than [`LOSS_LIMIT`] while packets wait in a queue ([`STANDING_QUEUE`]) caps the estimate at
//! what the path delivered ([`delivery`]): GCC's own loss half waits for 10%, and a link whose
//! queue stays full builds no more delay, so it could lose 5% for ever under GCC alone. And probes ([`probe`]) measure how much more the path
//! carries when the room would send more than the estimate allows: GCC climbs by 8% a second,
//! which would keep a subscriber whose link came back on its low layers for half a minute.
//!
//! The engine's congestion-control interceptor owns the estimator; the estimator here leaves
//! its rate, and when it last heard, where the room can read it ([`Estimate`]), and reads the
//! probes the room sends from there. No pacer: the room keeps what it sends under the estimate
//! by choosing layers, and a pacer holding forwarded packets back would add their queueing
//! delay to every frame (decision 0040).

pub mod delivery;
pub mod probe;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::interceptor::{
    BandwidthEstimator, CongestionControlBuilder, EstimatorStats, Gcc, PacketReport, Registry, Slot,
};
use rtc::peer_connection::configuration::interceptor_registry::configure_twcc;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::shared::error::Error;

use delivery::Delivery;
use probe::Train;

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
/// What a probe measured is taken at this share (the rest absorbs its error).
pub const PROBE_SHARE: f64 = 0.85;
/// How late a packet may arrive after one sent after it and not be taken for lost.
const REORDERING: Duration = Duration::from_millis(50);

/// The subscriber's estimate as the room reads it, and the probe it sent: shared with the
/// session's estimator.
#[derive(Debug, Clone, Default)]
pub struct Estimate(Arc<Mutex<Shared>>);

#[derive(Debug, Default)]
struct Shared {
    bits_per_second: f64,
    /// When the last feedback came; `None`: never (the subscriber may not send any).
    heard: Option<Instant>,
    /// Whether the path has shown a limit (delay building up, or loss): until then the
    /// estimate is no limit.
    bounded: bool,
    /// The probe sent and not yet read.
    train: Option<Train>,
}

impl Estimate {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most the room may send at `now`, in bits per second: `None` while the path has
    /// shown no limit (or the subscriber sends no feedback to go by), the least if its
    /// feedback stopped.
    pub fn bits_per_second(&self, now: Instant) -> Option<u64> {
        let s = self.lock();
        let heard = s.heard?;
        if now.saturating_duration_since(heard) > STALE {
            return Some(MIN_BITS_PER_SECOND as u64);
        }
        s.bounded.then_some(s.bits_per_second as u64)
    }

    /// Whether a probe is out and not yet read.
    pub fn probing(&self) -> bool {
        self.lock().train.is_some()
    }

    /// How many padding packets a probe sends now.
    pub fn train_packets(&self) -> usize {
        let s = self.lock();
        let rate = if s.bounded {
            s.bits_per_second
        } else {
            INITIAL_BITS_PER_SECOND
        };
        probe::packets(rate)
    }

    /// A probe left at `at`: `packets` padding packets numbered from `seq` in the stream sent
    /// as `ssrc`.
    pub fn probe_sent(&self, at: Instant, ssrc: u32, seq: u16, packets: usize) {
        self.lock().train = Some(Train::new(at, ssrc, seq, packets));
    }
}

/// The estimator the engine runs, leaving its rate in an [`Estimate`].
struct Estimator {
    gcc: Gcc,
    estimate: Estimate,
    /// GCC's last rate.
    last: f64,
    bounded: bool,
    delivery: Delivery,
    /// The most the path is taken to carry: what it delivered while it lost, or what a probe
    /// measured.
    ceiling: Option<f64>,
}

impl Estimator {
    fn new(estimate: Estimate) -> Self {
        Estimator {
            gcc: gcc(INITIAL_BITS_PER_SECOND),
            estimate,
            last: INITIAL_BITS_PER_SECOND,
            bounded: false,
            delivery: Delivery::default(),
            ceiling: None,
        }
    }

    fn rate(&self) -> f64 {
        let gcc = self.gcc.target_bitrate();
        self.ceiling.map_or(gcc, |c| c.min(gcc))
    }
}

fn gcc(initial: f64) -> Gcc {
    Gcc::new(initial, MIN_BITS_PER_SECOND, MAX_BITS_PER_SECOND)
}

impl BandwidthEstimator for Estimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        // GCC hears only of packets that arrived: its delay half is what it is for. Its loss
        // half would take the engine's feedback history at its word, which reports a packet
        // that arrives after a later one (a few milliseconds of jitter), or whose feedback was
        // lost, as lost: with 3% loss and some jitter it counted 10-28% and cut the rate again
        // and again. Loss is read here instead ([`delivery`]), where a packet counts as lost
        // only if one sent well after it arrived, and matters only with a queue.
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
        let taken = self.delivery.take(now);
        if let Some(d) = taken
            && d.loss > LOSS_LIMIT
            && d.queue > STANDING_QUEUE
        {
            // Lost at a full queue: the path carries what it delivered. (Loss without a queue
            // is the link's, not the rate's: NACK repairs it.)
            tracing::debug!(loss = d.loss, queue = ?d.queue, rate = d.rate, "the path is full");
            self.ceiling = Some(d.rate);
            self.bounded = true;
        }
        let mut shared = self.estimate.lock();
        if let Some(train) = shared.train.as_mut() {
            train.add(reports);
            if let Some(measured) = train.rate(now) {
                tracing::debug!(?measured, "probe read");
                shared.train = None;
                // What the path carries, up or down.
                if let Some(carries) = measured.map(|m| m.min(MAX_BITS_PER_SECOND) * PROBE_SHARE) {
                    self.ceiling = Some(carries);
                    if carries > self.gcc.target_bitrate() {
                        self.gcc = gcc(carries);
                    }
                }
            }
        }
        self.last = self.gcc.target_bitrate();
        shared.bits_per_second = self.rate();
        shared.heard = Some(now);
        shared.bounded = self.bounded;
    }

    fn target_bitrate(&self) -> f64 {
        self.rate()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.gcc.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.gcc.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.gcc.stats()
    }
}

/// Registers transport-wide feedback both ways on `engine` (the subscriber reports what it
/// receives; we report what we receive, for the publisher's own estimate) and the
/// congestion control that reads it; the estimate the room reads.
pub fn register(
    registry: Registry,
    engine: &mut MediaEngine,
) -> Result<(Registry, Estimate), Error> {
    let estimate = Estimate::default();
    let registry = configure_twcc(registry, engine)?.with(
        Slot::CongestionControl,
        CongestionControlBuilder::new(Estimator::new(estimate.clone())).build(),
    );
    Ok((registry, estimate))
}
