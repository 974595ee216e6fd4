//! What the bots measure. Each bot keeps its own counters and histograms (its tasks share one
//! lock, no bot waits on another); the run merges them at the end. Send times are kept per
//! sender so a receiver can tell a frame's end-to-end latency from its KID and counter.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Microsecond histogram up to a minute.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

/// Record a duration in µs, clamped to the histogram's range.
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).clamp(1, 60_000_000);
    h.record(us).expect("clamped into range");
}

/// One bot's measurements.
#[derive(Debug, Clone)]
pub struct BotStats {
    pub frames_sent: u64,
    pub frames_received: u64,
    /// Video frames reassembled from their packets (each then taken as `frames_received` is).
    pub video_frames_received: u64,
    /// Of those, by (spatial, temporal) layer.
    pub layer_frames: BTreeMap<(u8, u8), u64>,
    /// Video payload bytes received.
    pub video_bytes: u64,
    /// Times a received video's top spatial layer changed (the SFU switching it up or down).
    pub layer_switches: u64,
    /// Times its downlink was squeezed (`Bot::squeeze`), and of those, the ones after which
    /// no video it received was at a lower layer than before.
    pub squeezes: u64,
    pub squeezes_kept_layers: u64,
    /// Its downlink widened again to a video that had fallen getting a higher layer.
    pub layer_climb: Histogram<u64>,
    /// Key-frame requests (PLI, FIR) the SFU sent this bot's video, each answered with a key
    /// picture.
    pub keyframe_requests: u64,
    /// Of those, frames decrypted and checked (the rest were counted by their header).
    pub frames_verified: u64,
    /// RTP packets the bot's connection delivered (media only, retransmissions included).
    pub packets_received: u64,
    /// Frames lost on the way: gaps in the RTP sequence numbers of what the SFU forwarded
    /// (`bot::receive`).
    pub frames_lost: u64,
    /// Video packets that arrived behind the frame being assembled (a resend too late, or one
    /// overtaken on the way): dropped, their frame already counted lost.
    pub late_packets: u64,
    pub no_key_yet: u64,
    pub authentication_failed: u64,
    /// Frames older than the sender's replay window reaches (they came that late).
    pub too_old: u64,
    /// Frames under an epoch whose keys had expired (they came that late).
    pub stale_epoch: u64,
    pub other_failures: u64,
    /// Frames that arrived twice (a retransmission of a packet that was late, not lost): the
    /// replay check drops the copy; not a failure.
    pub duplicates: u64,
    /// Frames sealed before this bot joined (under an epoch it never held, as a publisher
    /// still sends until it takes the commit that adds the bot): not meant for it, not a
    /// failure.
    pub before_join: u64,
    pub latency: Histogram<u64>,
    /// Frames received per second of the run, and the worst latency in each (µs).
    pub per_second: Vec<(u64, u64)>,
    /// Frames lost or not decrypted (every kind of failure) per second of the run, each at the
    /// second it was found missing or failed.
    pub missed_per_second: Vec<u64>,
    /// Join request to the first frame from every publisher present at the join (of those it
    /// shows, when it shows a few tiles).
    pub join_time: Option<Duration>,
    /// Where that time went: the steps of the first join, each from the join request.
    pub join_steps: JoinSteps,
    pub late_joiner: bool,
    /// Frames not sent because an unexplained member was in the group.
    pub frames_withheld: u64,
    /// Members that entered the group unexplained (never announced, doubles, ...).
    pub unexplained_members: u64,
    /// Frames that decrypted under another member's key than the one the server named as
    /// the track's publisher (its stream id).
    pub mislabelled_frames: u64,
    /// Chat messages this bot sent, and received (from bots and browsers alike).
    pub chat_sent: u64,
    pub chat_received: u64,
    /// Send to receipt of bots' chat messages (the run's clock, one process).
    pub chat_latency: Histogram<u64>,
    /// Times the bot's client rejoined by itself after its connection dropped.
    pub reconnects: u64,
    /// Network back (the end of a drop) to the first frame received after the rejoin.
    pub reconnect_latency: Histogram<u64>,
    /// ICE restarts the bot offered (its media path broke while signaling stayed up).
    pub ice_restarts: u64,
    /// Its network changed (`Bot::change_network`) to the first frame received after.
    pub ice_restart_latency: Histogram<u64>,
}

/// The steps of a join, each the time from the join request to it (`None`: not reached).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JoinSteps {
    /// The Welcome processed: the bot is in the group and holds the epoch's key.
    pub in_group: Option<Duration>,
    /// Its media connection is up (ICE and DTLS).
    pub media_connected: Option<Duration>,
    /// Its first frame decrypted, from anyone.
    pub first_frame: Option<Duration>,
}

impl Default for BotStats {
    fn default() -> Self {
        BotStats {
            frames_sent: 0,
            frames_received: 0,
            video_frames_received: 0,
            layer_frames: BTreeMap::new(),
            video_bytes: 0,
            layer_switches: 0,
            squeezes: 0,
            squeezes_kept_layers: 0,
            layer_climb: histogram(),
            keyframe_requests: 0,
            frames_verified: 0,
            packets_received: 0,
            frames_lost: 0,
            late_packets: 0,
            no_key_yet: 0,
            authentication_failed: 0,
            too_old: 0,
            stale_epoch: 0,
            other_failures: 0,
            duplicates: 0,
            before_join: 0,
            latency: histogram(),
            per_second: Vec::new(),
            missed_per_second: Vec::new(),
            join_time: None,
            join_steps: JoinSteps::default(),
            late_joiner: false,
            frames_withheld: 0,
            unexplained_members: 0,
            mislabelled_frames: 0,
            chat_sent: 0,
            chat_received: 0,
            chat_latency: histogram(),
            reconnects: 0,
            reconnect_latency: histogram(),
            ice_restarts: 0,
            ice_restart_latency: histogram(),
        }
    }
}

/// Why a received frame could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Its epoch's key did not arrive in time.
    NoKeyYet,
    AuthenticationFailed,
    TooOld,
    StaleEpoch,
    Other,
}

impl BotStats {
    /// A frame that failed to decrypt, `since` the run started.
    pub fn failed(&mut self, failure: Failure, since: Duration) {
        *match failure {
            Failure::NoKeyYet => &mut self.no_key_yet,
            Failure::AuthenticationFailed => &mut self.authentication_failed,
            Failure::TooOld => &mut self.too_old,
            Failure::StaleEpoch => &mut self.stale_epoch,
            Failure::Other => &mut self.other_failures,
        } += 1;
        self.missed(since.as_secs() as usize);
    }

    /// A frame found lost, or that failed to decrypt, at `second` of the run.
    pub fn missed(&mut self, second: usize) {
        if self.missed_per_second.len() <= second {
            self.missed_per_second.resize(second + 1, 0);
        }
        self.missed_per_second[second] += 1;
    }

    /// A frame counted missed at `second` arrived after all (a late audio packet).
    pub fn found(&mut self, second: usize) {
        if let Some(n) = self.missed_per_second.get_mut(second) {
            *n = n.saturating_sub(1);
        }
    }

    /// A frame received at `second` of the run with this latency.
    pub fn received(&mut self, second: usize, latency: Option<Duration>) {
        self.frames_received += 1;
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, (0, 0));
        }
        let slot = &mut self.per_second[second];
        slot.0 += 1;
        if let Some(l) = latency {
            record(&mut self.latency, l);
            slot.1 = slot.1.max(l.as_micros() as u64);
        }
    }
}

const RING: usize = 8192;

/// When each of one sender's recent frames was encrypted, by counter.
#[derive(Debug)]
struct SenderRing {
    slots: Mutex<Vec<(u64, Option<Instant>)>>,
}

/// Send times of every bot's frames, by KID and counter.
#[derive(Debug, Default)]
pub struct SendLog {
    senders: RwLock<HashMap<u64, Arc<SenderRing>>>,
}

impl SendLog {
    pub fn sent(&self, kid: u64, ctr: u64, at: Instant) {
        let ring = {
            let read = self.senders.read().unwrap_or_else(|e| e.into_inner());
            read.get(&kid).cloned()
        };
        let ring = match ring {
            Some(r) => r,
            None => {
                let mut write = self.senders.write().unwrap_or_else(|e| e.into_inner());
                write
                    .entry(kid)
                    .or_insert_with(|| {
                        Arc::new(SenderRing {
                            slots: Mutex::new(vec![(0, None); RING]),
                        })
                    })
                    .clone()
            }
        };
        let mut slots = ring.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots[(ctr as usize) % RING] = (ctr, Some(at));
    }

    /// When (kid, ctr) was sent, if it is recent enough to be remembered.
    pub fn sent_at(&self, kid: u64, ctr: u64) -> Option<Instant> {
        let read = self.senders.read().unwrap_or_else(|e| e.into_inner());
        let ring = read.get(&kid)?;
        let slots = ring.slots.lock().unwrap_or_else(|e| e.into_inner());
        match slots[(ctr as usize) % RING] {
            (c, Some(at)) if c == ctr => Some(at),
            _ => None,
        }
    }
}

/// Epoch changes across a room: when the first and the last member reached each epoch.
#[derive(Debug, Default)]
pub struct Commits {
    arrivals: Mutex<HashMap<(String, u64), (Instant, usize)>>,
    /// Each epoch change that reached all of its room's members: first and last arrival.
    changes: Mutex<Vec<(Instant, Instant)>>,
}

impl Commits {
    /// `room` reached `epoch` at one more member of the `members` it has.
    pub fn arrived(&self, room: &str, epoch: u64, members: usize, at: Instant) {
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|e| e.into_inner());
        let entry = arrivals.entry((room.to_owned(), epoch)).or_insert((at, 0));
        entry.1 += 1;
        if entry.1 == members && epoch > 0 {
            let mut changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
            changes.push((entry.0, at));
        }
    }

    /// The seconds of a run started at `start` that fall within `margin` of an epoch change
    /// (from its first member's arrival to its last's), in order.
    pub fn seconds_near_changes(&self, start: Instant, margin: Duration) -> Vec<usize> {
        let changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        let mut seconds = std::collections::BTreeSet::new();
        for &(first, last) in changes.iter() {
            let from = first
                .saturating_duration_since(start)
                .saturating_sub(margin);
            let to = last.saturating_duration_since(start) + margin;
            // Every second [s, s + 1) that overlaps [from, to].
            seconds.extend(from.as_secs() as usize..=to.as_secs() as usize);
        }
        seconds.into_iter().collect()
    }

    /// Epoch changes that reached every member of their room.
    pub fn changes(&self) -> usize {
        self.changes.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Each change's first to last member's arrival.
    pub fn histogram(&self) -> Histogram<u64> {
        let changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        let mut h = histogram();
        for &(first, last) in changes.iter() {
            record(&mut h, last.duration_since(first));
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_log_remembers_recent_frames_only() {
        let log = SendLog::default();
        let t = Instant::now();
        log.sent(7, 1, t);
        assert_eq!(log.sent_at(7, 1), Some(t));
        log.sent(7, 1 + RING as u64, t);
        assert_eq!(log.sent_at(7, 1), None, "overwritten");
        assert_eq!(log.sent_at(8, 1), None);
    }

    #[test]
    fn commit_latency_is_first_to_last_member() {
        let c = Commits::default();
        let t = Instant::now();
        c.arrived("r", 1, 3, t);
        c.arrived("r", 1, 3, t + Duration::from_millis(5));
        c.arrived("r", 1, 3, t + Duration::from_millis(20));
        let h = c.histogram();
        assert_eq!(h.len(), 1);
        assert!((19_900..=20_100).contains(&h.max()));
    }

    #[test]
    fn seconds_near_an_epoch_change_span_it_and_the_margin() {
        let c = Commits::default();
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        c.arrived("r", 1, 2, at(5_200));
        c.arrived("r", 1, 2, at(5_900));
        c.arrived("r", 0, 1, at(100)); // the first member's own group: no change
        c.arrived("q", 2, 1, at(9_500));
        assert_eq!(c.changes(), 2);
        let margin = Duration::from_millis(500);
        assert_eq!(c.seconds_near_changes(start, margin), vec![4, 5, 6, 9, 10]);
    }
}
