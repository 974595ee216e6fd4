//! SFU CPU per forwarded packet and per forwarded Mbit/s, and memory per participant.
//!
//! cargo bench -p sfu --bench forwarding
//!
//! Runs the `sfu` binary (dev mode, loopback) as its own process, so its CPU time and memory
//! are its alone, and N in-process bots: real E2EE participants (MLS through signaling,
//! webrtc-rs peers) that each publish 100 SFrame-encrypted audio packets and 33 video packets a
//! second and decrypt everything they receive. After every bot receives every other, the SFU's
//! CPU time (/proc/PID/stat) and forwarded packets (/metrics) are sampled over 10 s.

#[path = "../tests/common/mod.rs"]
mod common;

#[path = "../tests/process/mod.rs"]
mod process;

use std::sync::Arc;
use std::time::{Duration, Instant};

use process::start_sfu;

const WINDOW: Duration = Duration::from_secs(10);

async fn http_get(addr: &str, path: &str) -> String {
    process::http_get(addr, path).await.1
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// User + system CPU seconds of a process.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!(
        "| participants | forwarded pkt/s | forwarded Mbit/s | SFU CPU | CPU µs/packet | CPU ms per Mbit | RSS | RSS per participant |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    // SFU_BENCH_SIZES="6" runs only those room sizes (for profiling one of them).
    let sizes: Vec<usize> = std::env::var("SFU_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![2, 4, 6]);
    for n in sizes {
        let sfu = start_sfu(&["--dev"]);
        let addr = sfu.addr.clone();
        let pid = sfu.pid();
        let rss_empty = rss_mib(pid);
        let ledger = Arc::new(common::Ledger::default());
        let mut bots = Vec::new();
        for i in 0..n {
            let name = format!("bot{i}");
            let body = http_get(&addr, &format!("/dev/token?room=bench&identity={name}")).await;
            let token: serde_json::Value = serde_json::from_str(&body).expect("token json");
            let token = token["token"].as_str().expect("token").to_owned();
            bots.push(
                common::Bot::join_with(
                    &format!("ws://{addr}/ws"),
                    "bench",
                    &name,
                    &token,
                    ledger.clone(),
                )
                .await,
            );
        }
        for bot in &bots {
            for other in bots
                .iter()
                .filter(|o| o.participant_id != bot.participant_id)
            {
                common::eventually("every bot receiving every other", || {
                    bot.count_from(other.participant_id, "video") >= 3
                })
                .await;
            }
        }
        let (cpu0, m0, t0) = (
            cpu_seconds(pid),
            http_get(&addr, "/metrics").await,
            Instant::now(),
        );
        tokio::time::sleep(WINDOW).await;
        let (cpu1, m1, elapsed) = (
            cpu_seconds(pid),
            http_get(&addr, "/metrics").await,
            t0.elapsed(),
        );
        let packets =
            metric(&m1, "sfu_forwarded_packets_total") - metric(&m0, "sfu_forwarded_packets_total");
        let bytes =
            metric(&m1, "sfu_forwarded_bytes_total") - metric(&m0, "sfu_forwarded_bytes_total");
        let secs = elapsed.as_secs_f64();
        let cpu = cpu1 - cpu0;
        let mbits = bytes * 8.0 / 1e6;
        let rss = rss_mib(pid);
        println!(
            "| {n} | {:.0} | {:.2} | {:.1}% | {:.1} | {:.0} | {:.1} MiB | {:.2} MiB |",
            packets / secs,
            mbits / secs,
            cpu / secs * 100.0,
            cpu * 1e6 / packets.max(1.0),
            cpu * 1e3 / mbits.max(1e-9),
            rss,
            (rss - rss_empty) / n as f64,
        );
        for bot in bots {
            bot.leave().await;
        }
        drop(sfu);
    }
}
