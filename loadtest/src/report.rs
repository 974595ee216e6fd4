//! The results: a summary table for the terminal, a JSON report, and an HTML page with
//! latency histograms and time series.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use media_crypto::mls::KEY_WAIT;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::scenario::Scenario;
use crate::stats::{BotStats, Commits, histogram};

/// The SFU each second of the meeting.
#[derive(Debug, Clone, Serialize)]
pub struct SfuSample {
    pub second: f64,
    pub packets_per_second: f64,
    /// Of one core; `None` for a remote SFU.
    pub cpu_percent: Option<f64>,
    /// Resident memory (VmRSS) of a local SFU, MiB.
    pub rss_mb: Option<f64>,
}

/// How far around an epoch change a missed frame counts as missed at it: a frame sealed under
/// the new epoch waits this long for its key before it counts, and one more second for the
/// frames on the wire.
const EPOCH_CHANGE_MARGIN: Duration = KEY_WAIT.saturating_add(Duration::from_secs(1));

/// The part of a meeting that counts as warm-up for the memory slope: its first fifth.
const WARM_UP_SHARE: f64 = 0.2;

/// How fast the SFU's resident memory grows after warm-up, MiB per minute (least squares over
/// the samples after the first fifth); `None` without at least 3 such samples.
pub fn rss_slope_mb_per_min(samples: &[SfuSample]) -> Option<f64> {
    let end = samples.last()?.second;
    let points: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.second >= end * WARM_UP_SHARE)
        .filter_map(|s| Some((s.second / 60.0, s.rss_mb?)))
        .collect();
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Quantiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub count: u64,
}

impl Quantiles {
    /// From a µs histogram, in ms.
    fn of(h: &Histogram<u64>) -> Quantiles {
        let ms = |v: u64| v as f64 / 1000.0;
        if h.is_empty() {
            return Quantiles {
                p50: 0.0,
                p95: 0.0,
                p99: 0.0,
                max: 0.0,
                count: 0,
            };
        }
        Quantiles {
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
            count: h.len(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DecryptFailures {
    pub no_key_yet: u64,
    pub authentication_failed: u64,
    /// Came later than the sender's replay window, or its epoch's keys, reach.
    pub too_old: u64,
    pub stale_epoch: u64,
    pub other: u64,
}

/// What one receiving bot got.
#[derive(Debug, Clone, Serialize)]
pub struct Subscriber {
    pub video_kbps: f64,
    pub layers: BTreeMap<String, u64>,
}

/// Histogram buckets for the HTML page: (upper bound in ms, count).
#[derive(Debug, Clone, Serialize)]
pub struct Bucket(pub f64, pub u64);

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub participants_joined: usize,
    pub frames_sent: u64,
    pub frames_received: u64,
    /// Of those, video frames (all of a frame's packets arrived).
    pub video_frames_received: u64,
    /// Video frames received by layer ("S0T0", ...), all bots together.
    pub received_layers: BTreeMap<String, u64>,
    /// Video each receiving bot got, kbit/s: its bytes (from its join on) over the meeting's
    /// duration (mean and the largest).
    pub video_kbps_received: f64,
    pub video_kbps_received_max: f64,
    /// Times a received video's top spatial layer changed, over all bots.
    pub layer_switches: u64,
    /// Downlinks squeezed (`squeezes` in the scenario), those after which no received video
    /// was at a lower layer, and the widening to a fallen video's higher layer.
    pub squeezes: u64,
    pub squeezes_kept_layers: u64,
    pub layer_climb_ms: Quantiles,
    /// Each receiving bot's video, in the order they joined: kbit/s and frames by layer.
    pub subscribers: Vec<Subscriber>,
    /// Key-frame requests the SFU sent the publishing bots (each answered at once).
    pub key_frames_requested: u64,
    /// Of those, frames decrypted and checked in full (the rest counted by header, or
    /// synthetic).
    pub frames_verified: u64,
    pub frames_lost: u64,
    pub loss_percent: f64,
    /// All decrypt failures; by kind in `decrypt_failure_kinds`.
    pub decrypt_failures: u64,
    pub decrypt_failure_kinds: DecryptFailures,
    /// Frames whose key names another sender than the server said (a stream id, or what the
    /// SFU said a video section carries, or carried up to a second before).
    pub mislabelled_frames: u64,
    /// Frames received twice and dropped by the replay check (not failures).
    pub duplicates: u64,
    /// Video packets that came behind the frame being assembled, too late for theirs (a
    /// resend; dropped as a jitter buffer drops them, their frame counted lost).
    pub late_packets: u64,
    /// Frames sealed before their receiver joined, under keys it never had (not failures).
    pub frames_before_join: u64,
    pub join_ms: Quantiles,
    pub late_join_ms: Quantiles,
    /// Where the joins of `join_ms` spent their time: each step's time from the join request.
    pub join_steps_ms: JoinStepsMs,
    pub latency_ms: Quantiles,
    pub commit_ms: Quantiles,
    /// Epoch changes that reached every member of their room (joins, leaves, updates).
    pub epoch_changes: usize,
    /// Frames lost or not decrypted within a few seconds of an epoch change (from its first
    /// member's arrival to its last's, and the key wait on each side), any room's: a member's
    /// media must not glitch when someone joins or leaves.
    pub frames_missed_at_epoch_changes: u64,
    /// Chat messages the bots sent and received, and the bots' messages' delivery latency.
    pub chat_sent: u64,
    pub chat_received: u64,
    pub chat_ms: Quantiles,
    pub churned: usize,
    /// Network drops made, the bots' rejoins, and network back to media again after a drop.
    pub drops: usize,
    pub reconnects: u64,
    pub reconnect_ms: Quantiles,
    /// Network changes made (media to another address, signaling up), the ICE restarts the
    /// bots offered, and the change to media again.
    pub network_changes: usize,
    pub ice_restarts: u64,
    pub ice_restart_ms: Quantiles,
    pub sfu_forwarded_packets_per_second: f64,
    /// RTP packets the SFU received from publishers, per second of the meeting (with layers
    /// and quiet microphones, more than it forwards of them).
    pub sfu_received_packets_per_second: f64,
    /// CPU time of the local SFU per forwarded packet over the meeting.
    pub sfu_cpu_us_per_packet: Option<f64>,
    pub sfu_peak_rss_mb: Option<f64>,
    /// Growth of the local SFU's resident memory after warm-up ([`rss_slope_mb_per_min`]).
    pub sfu_rss_slope_mb_per_min: Option<f64>,
    /// What the bots themselves cost.
    pub loadtest: OwnCost,
    pub video_kbps: f64,
    pub latency_histogram: Vec<Bucket>,
    /// Frames decrypted per second of the run, and the worst latency in each (ms).
    pub received_per_second: Vec<(u64, f64)>,
    pub sfu_samples: Vec<SfuSample>,
}

/// The steps of the joins (not the late joiner's), each from the join request.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JoinStepsMs {
    /// The Welcome processed: in the group, holding the epoch's key.
    pub in_group: Quantiles,
    /// The media connection up (ICE and DTLS).
    pub media_connected: Quantiles,
    /// The first frame decrypted, from anyone.
    pub first_frame: Quantiles,
}

/// The load tool's own cost over the meeting: all bots, one process.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct OwnCost {
    /// RTP packets the bots received, per second.
    pub packets_per_second: f64,
    /// CPU time of this process per RTP packet the bots received.
    pub cpu_us_per_packet: Option<f64>,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        scenario: &Scenario,
        bots: &[BotStats],
        commits: &Commits,
        start: Instant,
        churned: usize,
        drops: usize,
        network_changes: usize,
        forwarded_per_second: f64,
        received_per_second: f64,
        sfu_cpu_us_per_packet: Option<f64>,
        sfu_peak_rss_mb: Option<f64>,
        loadtest: OwnCost,
        sfu_samples: Vec<SfuSample>,
        video_kbps: f64,
    ) -> Report {
        let (mut latency, mut join, mut late) = (histogram(), histogram(), histogram());
        let mut chat = histogram();
        let mut climb = histogram();
        let mut steps = [histogram(), histogram(), histogram()];
        let (mut reconnect, mut ice_restart) = (histogram(), histogram());
        let mut per_second: Vec<(u64, f64)> = Vec::new();
        for b in bots {
            latency.add(&b.latency).expect("same bounds");
            chat.add(&b.chat_latency).expect("same bounds");
            climb.add(&b.layer_climb).expect("same bounds");
            reconnect.add(&b.reconnect_latency).expect("same bounds");
            ice_restart
                .add(&b.ice_restart_latency)
                .expect("same bounds");
            if let Some(t) = b.join_time {
                let h = if b.late_joiner { &mut late } else { &mut join };
                crate::stats::record(h, t);
            }
            if !b.late_joiner {
                let s = &b.join_steps;
                for (h, t) in steps
                    .iter_mut()
                    .zip([s.in_group, s.media_connected, s.first_frame])
                {
                    if let Some(t) = t {
                        crate::stats::record(h, t);
                    }
                }
            }
            for (i, &(n, worst)) in b.per_second.iter().enumerate() {
                if per_second.len() <= i {
                    per_second.resize(i + 1, (0, 0.0));
                }
                per_second[i].0 += n;
                per_second[i].1 = per_second[i].1.max(worst as f64 / 1000.0);
            }
        }
        let sum = |f: fn(&BotStats) -> u64| bots.iter().map(f).sum::<u64>();
        let near_changes = commits.seconds_near_changes(start, EPOCH_CHANGE_MARGIN);
        let frames_missed_at_epoch_changes = bots
            .iter()
            .flat_map(|b| {
                near_changes
                    .iter()
                    .filter_map(|&s| b.missed_per_second.get(s))
            })
            .sum();
        let frames_received = sum(|b| b.frames_received);
        let frames_lost = sum(|b| b.frames_lost);
        let kinds = DecryptFailures {
            no_key_yet: sum(|b| b.no_key_yet),
            authentication_failed: sum(|b| b.authentication_failed),
            too_old: sum(|b| b.too_old),
            stale_epoch: sum(|b| b.stale_epoch),
            other: sum(|b| b.other_failures),
        };
        let seconds = scenario.duration.as_secs_f64().max(1.0);
        let subscribers: Vec<Subscriber> = bots
            .iter()
            .filter(|b| b.video_bytes > 0)
            .map(|b| Subscriber {
                video_kbps: b.video_bytes as f64 * 8.0 / seconds / 1000.0,
                layers: b
                    .layer_frames
                    .iter()
                    .map(|(&(sl, tl), &n)| (format!("S{sl}T{tl}"), n))
                    .collect(),
            })
            .collect();
        let kbps: Vec<f64> = subscribers.iter().map(|s| s.video_kbps).collect();
        let mut received_layers = BTreeMap::new();
        for (layer, &n) in subscribers.iter().flat_map(|s| &s.layers) {
            *received_layers.entry(layer.clone()).or_default() += n;
        }
        Report {
            scenario: scenario.clone(),
            received_layers,
            video_kbps_received: if kbps.is_empty() {
                0.0
            } else {
                kbps.iter().sum::<f64>() / kbps.len() as f64
            },
            video_kbps_received_max: kbps.iter().copied().fold(0.0, f64::max),
            layer_switches: sum(|b| b.layer_switches),
            squeezes: sum(|b| b.squeezes),
            squeezes_kept_layers: sum(|b| b.squeezes_kept_layers),
            layer_climb_ms: Quantiles::of(&climb),
            subscribers,
            key_frames_requested: sum(|b| b.keyframe_requests),
            participants_joined: bots.len(),
            frames_sent: sum(|b| b.frames_sent),
            frames_received,
            video_frames_received: sum(|b| b.video_frames_received),
            frames_verified: sum(|b| b.frames_verified),
            frames_lost,
            loss_percent: if frames_received + frames_lost == 0 {
                0.0
            } else {
                100.0 * frames_lost as f64 / (frames_received + frames_lost) as f64
            },
            decrypt_failures: kinds.no_key_yet
                + kinds.authentication_failed
                + kinds.too_old
                + kinds.stale_epoch
                + kinds.other,
            decrypt_failure_kinds: kinds,
            mislabelled_frames: sum(|b| b.mislabelled_frames),
            duplicates: sum(|b| b.duplicates),
            late_packets: sum(|b| b.late_packets),
            frames_before_join: sum(|b| b.before_join),
            join_ms: Quantiles::of(&join),
            late_join_ms: Quantiles::of(&late),
            join_steps_ms: JoinStepsMs {
                in_group: Quantiles::of(&steps[0]),
                media_connected: Quantiles::of(&steps[1]),
                first_frame: Quantiles::of(&steps[2]),
            },
            latency_ms: Quantiles::of(&latency),
            commit_ms: Quantiles::of(&commits.histogram()),
            epoch_changes: commits.changes(),
            frames_missed_at_epoch_changes,
            chat_sent: sum(|b| b.chat_sent),
            chat_received: sum(|b| b.chat_received),
            chat_ms: Quantiles::of(&chat),
            churned,
            drops,
            reconnects: sum(|b| b.reconnects),
            reconnect_ms: Quantiles::of(&reconnect),
            network_changes,
            ice_restarts: sum(|b| b.ice_restarts),
            ice_restart_ms: Quantiles::of(&ice_restart),
            sfu_forwarded_packets_per_second: forwarded_per_second,
            sfu_received_packets_per_second: received_per_second,
            sfu_cpu_us_per_packet,
            sfu_peak_rss_mb,
            sfu_rss_slope_mb_per_min: rss_slope_mb_per_min(&sfu_samples),
            loadtest,
            video_kbps,
            latency_histogram: buckets(&latency),
            received_per_second: per_second,
            sfu_samples,
        }
    }

    /// The summary table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let q = |q: &Quantiles| {
            format!(
                "p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}",
                q.p50, q.p95, q.p99, q.max
            )
        };
        let opt = |v: Option<f64>, unit: &str| {
            v.map_or("n/a (remote SFU)".into(), |v| format!("{v:.2} {unit}"))
        };
        let rows = [
            ("participants joined", self.participants_joined.to_string()),
            (
                "frames sent / received",
                format!(
                    "{} / {} ({} video)",
                    self.frames_sent, self.frames_received, self.video_frames_received
                ),
            ),
            (
                "video received per bot, kbit/s",
                format!(
                    "mean {:.0}  max {:.0}  (frames by layer: {})",
                    self.video_kbps_received,
                    self.video_kbps_received_max,
                    self.received_layers
                        .iter()
                        .map(|(l, n)| format!("{l} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            (
                "layer switches / key frames requested",
                format!("{} / {}", self.layer_switches, self.key_frames_requested),
            ),
            (
                "downlinks squeezed (kept their layers, climbed back) / climb, ms",
                format!(
                    "{} ({}, {}) / {}",
                    self.squeezes,
                    self.squeezes_kept_layers,
                    self.layer_climb_ms.count,
                    q(&self.layer_climb_ms)
                ),
            ),
            (
                "frames decrypted and checked",
                if self.scenario.synthetic {
                    "none (synthetic media)".into()
                } else {
                    self.frames_verified.to_string()
                },
            ),
            (
                "frames lost",
                format!("{} ({:.3}%)", self.frames_lost, self.loss_percent),
            ),
            (
                "decrypt failures",
                format!(
                    "{} (no key yet {}, authentication failed {}, too old {}, stale epoch {}, other {})",
                    self.decrypt_failures,
                    self.decrypt_failure_kinds.no_key_yet,
                    self.decrypt_failure_kinds.authentication_failed,
                    self.decrypt_failure_kinds.too_old,
                    self.decrypt_failure_kinds.stale_epoch,
                    self.decrypt_failure_kinds.other
                ),
            ),
            (
                "frames whose key names another sender than the server said",
                self.mislabelled_frames.to_string(),
            ),
            (
                "duplicate frames / late video packets dropped",
                format!("{} / {}", self.duplicates, self.late_packets),
            ),
            (
                "frames sealed before their receiver joined",
                self.frames_before_join.to_string(),
            ),
            ("join to first frames, ms", q(&self.join_ms)),
            ("join steps: in the group / media up / first frame, ms", {
                let j = &self.join_steps_ms;
                let [g, m, f] = [&j.in_group, &j.media_connected, &j.first_frame];
                format!(
                    "p50 {:.0} / {:.0} / {:.0}  p99 {:.0} / {:.0} / {:.0}",
                    g.p50, m.p50, f.p50, g.p99, m.p99, f.p99
                )
            }),
            ("late joiner, ms", q(&self.late_join_ms)),
            ("frame latency, ms", q(&self.latency_ms)),
            ("commit to all members, ms", q(&self.commit_ms)),
            (
                "epoch changes / frames missed near them",
                format!(
                    "{} / {}",
                    self.epoch_changes, self.frames_missed_at_epoch_changes
                ),
            ),
            (
                "chat messages sent / received",
                format!("{} / {}", self.chat_sent, self.chat_received),
            ),
            ("chat delivery, ms", q(&self.chat_ms)),
            (
                "network drops / rejoins",
                format!("{} / {}", self.drops, self.reconnects),
            ),
            ("network back to media again, ms", q(&self.reconnect_ms)),
            (
                "network changes / ICE restarts offered",
                format!("{} / {}", self.network_changes, self.ice_restarts),
            ),
            ("network change to media again, ms", q(&self.ice_restart_ms)),
            (
                "SFU received / forwarded packets/s",
                format!(
                    "{:.0} / {:.0}",
                    self.sfu_received_packets_per_second, self.sfu_forwarded_packets_per_second
                ),
            ),
            ("SFU CPU per packet", opt(self.sfu_cpu_us_per_packet, "µs")),
            ("SFU peak RSS", opt(self.sfu_peak_rss_mb, "MiB")),
            (
                "SFU RSS growth after warm-up",
                opt(self.sfu_rss_slope_mb_per_min, "MiB/min"),
            ),
            (
                "bots: packets/s received",
                format!("{:.0}", self.loadtest.packets_per_second),
            ),
            (
                "bots: CPU per packet",
                self.loadtest
                    .cpu_us_per_packet
                    .map_or("n/a".into(), |v| format!("{v:.2} µs")),
            ),
        ];
        for (k, v) in rows {
            let _ = writeln!(t, "{k:<28} {v}");
        }
        t
    }

    /// A self-contained HTML page: the summary, the latency histogram, and time series
    /// (`report.html`, with the table and the report's JSON put in).
    pub fn html(&self) -> String {
        // Inside <script>, "</" could end the element: JSON allows "<\/" for it.
        let json = serde_json::to_string(self)
            .unwrap_or_default()
            .replace("</", "<\\/");
        HTML_TEMPLATE
            .replace("{{TABLE}}", &html_escape(&self.table()))
            .replace("{{REPORT_JSON}}", &json)
    }
}

const HTML_TEMPLATE: &str = include_str!("report.html");

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Latency buckets: 1 ms wide up to 20 ms, then 10 ms up to 200 ms, then one for the rest.
fn buckets(h: &Histogram<u64>) -> Vec<Bucket> {
    let mut bounds: Vec<u64> = (1..=20).map(|ms| ms * 1000).collect();
    bounds.extend((3..=20).map(|t| t * 10_000));
    bounds.push(60_000_000);
    let mut out = Vec::new();
    let mut below = 0;
    for b in bounds {
        let upto = h.count_between(0, b);
        out.push(Bucket(b as f64 / 1000.0, upto - below));
        below = upto;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_holds_the_table_and_the_report() {
        let scenario = Scenario::default();
        let samples = vec![SfuSample {
            second: 1.0,
            packets_per_second: 500.0,
            cpu_percent: Some(12.5),
            rss_mb: Some(20.0),
        }];
        let report = Report::build(
            &scenario,
            &[],
            &Commits::default(),
            Instant::now(),
            0,
            0,
            0,
            1.0,
            1.0,
            None,
            None,
            OwnCost {
                packets_per_second: 0.0,
                cpu_us_per_packet: None,
            },
            samples,
            0.0,
        );
        let html = report.html();
        assert!(!html.contains("{{"), "every placeholder is filled");
        assert!(html.contains("participants joined"));
        let json = html
            .split("const report = ")
            .nth(1)
            .and_then(|rest| rest.split(";\n").next())
            .expect("the report in the page");
        let parsed: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
        assert_eq!(parsed["sfu_samples"][0]["cpu_percent"], 12.5);
    }

    #[test]
    fn the_memory_slope_leaves_out_the_warm_up() {
        // Fast growth in the first fifth, then 0.5 MiB per minute.
        let samples: Vec<SfuSample> = (0..=100)
            .map(|s| {
                let second = f64::from(s) * 6.0;
                let rss = if s < 20 {
                    10.0 + f64::from(s)
                } else {
                    30.0 + second / 120.0
                };
                SfuSample {
                    second,
                    packets_per_second: 0.0,
                    cpu_percent: None,
                    rss_mb: Some(rss),
                }
            })
            .collect();
        let slope = rss_slope_mb_per_min(&samples).expect("enough samples");
        assert!((slope - 0.5).abs() < 1e-9, "{slope}");
        assert_eq!(rss_slope_mb_per_min(&samples[..2]), None);
    }
}
