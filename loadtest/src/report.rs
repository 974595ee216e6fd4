//! The results: a summary table for the terminal, a JSON report, and an HTML page with
//! latency histograms and time series.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::scenario::Scenario;
use crate::stats::{BotStats, histogram};

/// The SFU each second of the meeting.
#[derive(Debug, Clone, Serialize)]
pub struct SfuSample {
    pub second: f64,
    pub packets_per_second: f64,
    /// Of one core; `None` for a remote SFU.
    pub cpu_percent: Option<f64>,
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
    pub other: u64,
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
    pub frames_lost: u64,
    pub loss_percent: f64,
    /// All decrypt failures; by kind in `decrypt_failure_kinds`.
    pub decrypt_failures: u64,
    pub decrypt_failure_kinds: DecryptFailures,
    /// Frames received twice and dropped by the replay check (not failures).
    pub duplicates: u64,
    pub join_ms: Quantiles,
    pub late_join_ms: Quantiles,
    pub latency_ms: Quantiles,
    pub commit_ms: Quantiles,
    pub churned: usize,
    pub sfu_forwarded_packets_per_second: f64,
    /// CPU time of the local SFU per forwarded packet over the meeting.
    pub sfu_cpu_us_per_packet: Option<f64>,
    pub sfu_peak_rss_mb: Option<f64>,
    pub video_kbps: f64,
    pub latency_histogram: Vec<Bucket>,
    /// Frames decrypted per second of the run, and the worst latency in each (ms).
    pub received_per_second: Vec<(u64, f64)>,
    pub sfu_samples: Vec<SfuSample>,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        scenario: &Scenario,
        bots: &[BotStats],
        commits: &Histogram<u64>,
        churned: usize,
        forwarded_per_second: f64,
        sfu_cpu_us_per_packet: Option<f64>,
        sfu_peak_rss_mb: Option<f64>,
        sfu_samples: Vec<SfuSample>,
        video_kbps: f64,
    ) -> Report {
        let (mut latency, mut join, mut late) = (histogram(), histogram(), histogram());
        let mut per_second: Vec<(u64, f64)> = Vec::new();
        for b in bots {
            latency.add(&b.latency).expect("same bounds");
            if let Some(t) = b.join_time {
                let h = if b.late_joiner { &mut late } else { &mut join };
                crate::stats::record(h, t);
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
        let frames_received = sum(|b| b.frames_received);
        let frames_lost = sum(|b| b.frames_lost);
        let kinds = DecryptFailures {
            no_key_yet: sum(|b| b.no_key_yet),
            authentication_failed: sum(|b| b.authentication_failed),
            other: sum(|b| b.other_failures),
        };
        Report {
            scenario: scenario.clone(),
            participants_joined: bots.len(),
            frames_sent: sum(|b| b.frames_sent),
            frames_received,
            frames_lost,
            loss_percent: if frames_received + frames_lost == 0 {
                0.0
            } else {
                100.0 * frames_lost as f64 / (frames_received + frames_lost) as f64
            },
            decrypt_failures: kinds.no_key_yet + kinds.authentication_failed + kinds.other,
            decrypt_failure_kinds: kinds,
            duplicates: sum(|b| b.duplicates),
            join_ms: Quantiles::of(&join),
            late_join_ms: Quantiles::of(&late),
            latency_ms: Quantiles::of(&latency),
            commit_ms: Quantiles::of(commits),
            churned,
            sfu_forwarded_packets_per_second: forwarded_per_second,
            sfu_cpu_us_per_packet,
            sfu_peak_rss_mb,
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
                format!("{} / {}", self.frames_sent, self.frames_received),
            ),
            (
                "frames lost",
                format!("{} ({:.3}%)", self.frames_lost, self.loss_percent),
            ),
            (
                "decrypt failures",
                format!(
                    "{} (no key yet {}, authentication failed {}, other {})",
                    self.decrypt_failures,
                    self.decrypt_failure_kinds.no_key_yet,
                    self.decrypt_failure_kinds.authentication_failed,
                    self.decrypt_failure_kinds.other
                ),
            ),
            ("duplicate frames dropped", self.duplicates.to_string()),
            ("join to first frames, ms", q(&self.join_ms)),
            ("late joiner, ms", q(&self.late_join_ms)),
            ("frame latency, ms", q(&self.latency_ms)),
            ("commit to all members, ms", q(&self.commit_ms)),
            (
                "SFU forwarded packets/s",
                format!("{:.0}", self.sfu_forwarded_packets_per_second),
            ),
            ("SFU CPU per packet", opt(self.sfu_cpu_us_per_packet, "µs")),
            ("SFU peak RSS", opt(self.sfu_peak_rss_mb, "MiB")),
        ];
        for (k, v) in rows {
            let _ = writeln!(t, "{k:<28} {v}");
        }
        t
    }

    /// A self-contained HTML page: the summary, the latency histogram, and time series.
    pub fn html(&self) -> String {
        let json = serde_json::to_string(self)
            .unwrap_or_default()
            .replace("</", "<\\/");
        format!(
            r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>E2EE load test</title>
<style>body{{font:14px system-ui,sans-serif;margin:2rem;max-width:70rem}}pre{{background:#f4f4f4;padding:1rem}}
svg{{background:#fafafa;border:1px solid #ddd;margin:.5rem 0}}</style></head><body>
<h1>E2EE load test</h1><pre id="table">{table}</pre>
<h2>Frame latency (encrypt at the sender to decrypt at the receiver)</h2><svg id="hist" width="900" height="260"></svg>
<h2>Frames decrypted per second, and the worst latency in each second</h2><svg id="recv" width="900" height="260"></svg>
<h2>SFU: forwarded packets per second and CPU</h2><svg id="sfu" width="900" height="260"></svg>
<script>const r={json};
function chart(id,xs,series,xl){{const s=document.getElementById(id),W=900,H=260,P=45;
const X=Math.max(...xs,1);let out='';
series.forEach(([ys,color,label,bars],k)=>{{const Y=Math.max(...ys,1e-9);
ys.forEach((y,i)=>{{const x=P+(W-2*P)*(bars?i/ys.length:xs[i]/X),h=(H-2*P)*y/Y;
out+=bars?`<rect x="${{x}}" y="${{H-P-h}}" width="${{(W-2*P)/ys.length-1}}" height="${{h}}" fill="${{color}}"/>`
:(i?`<line x1="${{P+(W-2*P)*xs[i-1]/X}}" y1="${{H-P-(H-2*P)*ys[i-1]/Y}}" x2="${{x}}" y2="${{H-P-h}}" stroke="${{color}}" stroke-width="2"/>`:'');}});
out+=`<text x="${{P+k*260}}" y="15" fill="${{color}}">${{label}} (max ${{Y.toFixed(1)}})</text>`;}});
out+=`<text x="${{W/2}}" y="${{H-8}}">${{xl}}</text>`;s.innerHTML=out;}}
chart('hist',r.latency_histogram.map(b=>b[0]),[[r.latency_histogram.map(b=>b[1]),'#1a73e8','frames',true]],'latency bucket, ms (upper bound)');
chart('recv',r.received_per_second.map((_,i)=>i),[[r.received_per_second.map(v=>v[0]),'#188038','frames/s'],[r.received_per_second.map(v=>v[1]),'#d93025','worst latency ms']],'second of the run');
chart('sfu',r.sfu_samples.map(s=>s.second),[[r.sfu_samples.map(s=>s.packets_per_second),'#1a73e8','packets/s'],[r.sfu_samples.map(s=>s.cpu_percent??0),'#e37400','CPU %']],'second of the meeting');
</script></body></html>"#,
            table = html_escape(&self.table()),
        )
    }
}

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
