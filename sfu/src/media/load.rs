//! How busy this process is, for a cluster's placement: RTP packets forwarded a second and the
//! share of the machine's CPU it used, each since the last reading (the heartbeat reads it
//! once a second).

use std::sync::Mutex;
use std::time::Instant;

use signaling_server::server::MediaLoad;

/// Linux's clock ticks a second for process CPU times (`getconf CLK_TCK`: 100 on every
/// architecture Linux runs this on).
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug)]
pub(super) struct LoadMeter {
    last: Mutex<Option<Reading>>,
}

#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    packets: u64,
    cpu_ticks: Option<u64>,
}

impl LoadMeter {
    pub(super) fn new() -> Self {
        LoadMeter {
            last: Mutex::new(None),
        }
    }

    /// The load since the last call, with `packets` forwarded in all so far (nothing on the
    /// first call).
    pub(super) fn read(&self, packets: u64) -> MediaLoad {
        let now = Reading {
            at: Instant::now(),
            packets,
            cpu_ticks: cpu_ticks(),
        };
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let before = last.replace(now);
        let Some(before) = before else {
            return MediaLoad::default();
        };
        let seconds = now.at.duration_since(before.at).as_secs_f64();
        if seconds <= 0.0 {
            return MediaLoad::default();
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        MediaLoad {
            packets_per_second: now.packets.saturating_sub(before.packets) as f64 / seconds,
            cpu: match (before.cpu_ticks, now.cpu_ticks) {
                (Some(a), Some(b)) => {
                    (b.saturating_sub(a) as f64 / TICKS_PER_SECOND / seconds / cores).min(1.0)
                }
                _ => 0.0,
            },
        }
    }
}

/// This process's user and system CPU time so far, in clock ticks (`/proc/self/stat`).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: fields are counted after its ')'.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    // After ')': state is field 3, so utime (14) and stime (15) are the 12th and 13th.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_is_a_rate_since_the_last_reading() {
        let meter = LoadMeter::new();
        assert_eq!(
            meter.read(1_000),
            MediaLoad::default(),
            "nothing to compare yet"
        );
        // Busy for a while: some CPU time to measure.
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 200 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let load = meter.read(3_000);
        assert!(load.packets_per_second > 0.0 && load.packets_per_second < 2_000.0 / 0.2 + 1.0);
        assert!(load.cpu > 0.0 && load.cpu <= 1.0, "{load:?}");
        assert!(cpu_ticks().is_some(), "reads /proc/self/stat");
    }
}
