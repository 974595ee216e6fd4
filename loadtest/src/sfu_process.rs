//! The SFU under test: a local `sfu` process started for the run (so its CPU time and memory
//! can be read from /proc), or a running one reached by URL. Plain HTTP GETs (ureq) for
//! tokens and metrics.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::LoadError;

/// Linux's USER_HZ: /proc CPU times are in these ticks.
const TICKS_PER_SECOND: f64 = 100.0;

/// A local sfu; killed when dropped.
#[derive(Debug)]
pub struct LocalSfu {
    child: Child,
    /// `host:port` of its HTTP listener.
    pub addr: String,
}

impl Drop for LocalSfu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `sfu` binary next to this one (`target/<profile>/sfu`).
pub fn default_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    // Tests run from target/<profile>/deps.
    [dir.join("sfu"), dir.parent()?.join("sfu")]
        .into_iter()
        .find(|p| p.is_file())
}

impl LocalSfu {
    /// Starts `bin` on a loopback port with this token secret, and `extra` flags (such as
    /// `--udp-port 0` for single-port mode).
    pub fn start(bin: &Path, token_secret: &str, extra: &[String]) -> Result<LocalSfu, LoadError> {
        let mut child = Command::new(bin)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--udp-port-min",
                "0",
                "--udp-port-max",
                "0",
                // Every bot connects from loopback: the per-address cap that guards a public
                // server would stop the load at 50.
                "--max-connections-per-ip",
                "1000000",
            ])
            .args(extra)
            .env("SFU_TOKEN_SECRET", token_secret)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| LoadError::Start {
                bin: bin.to_owned(),
                source,
            })?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out)
                .read_line(&mut line)
                .map_err(|source| LoadError::Start {
                    bin: bin.to_owned(),
                    source,
                })?;
        }
        let Some(addr) = line.trim().strip_prefix("sfu listening on http://") else {
            return Err(LoadError::Sfu(format!("it did not start: {line:?}")));
        };
        Ok(LocalSfu {
            addr: addr.to_owned(),
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User plus system CPU time so far.
    pub fn cpu_time(&self) -> Result<Duration, LoadError> {
        cpu_time(self.pid())
    }

    /// Peak resident memory (VmHWM), in MiB.
    pub fn peak_rss_mb(&self) -> Result<f64, LoadError> {
        self.status_mb("VmHWM:")
    }

    /// Resident memory now (VmRSS), in MiB.
    pub fn rss_mb(&self) -> Result<f64, LoadError> {
        self.status_mb("VmRSS:")
    }

    /// A kB field of /proc/<pid>/status, in MiB.
    fn status_mb(&self, field: &str) -> Result<f64, LoadError> {
        let path = format!("/proc/{}/status", self.pid());
        let status =
            std::fs::read_to_string(&path).map_err(|e| LoadError::Proc(format!("{path}: {e}")))?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| LoadError::Proc(format!("{path}: no {field}")))?;
        Ok(kb / 1024.0)
    }
}

/// User plus system CPU time of process `pid` so far (this one: `std::process::id()`).
pub fn cpu_time(pid: u32) -> Result<Duration, LoadError> {
    let path = format!("/proc/{pid}/stat");
    let stat =
        std::fs::read_to_string(&path).map_err(|e| LoadError::Proc(format!("{path}: {e}")))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let ticks = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect::<Vec<_>>())
        .and_then(|f| Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?))
        .ok_or_else(|| LoadError::Proc(format!("{path}: not the stat format")))?;
    Ok(Duration::from_secs_f64(ticks / TICKS_PER_SECOND))
}

/// `GET path` on `addr` (`host:port`, plain HTTP); the status and the body.
pub async fn http_get(addr: &str, path: &str) -> Result<(u16, String), LoadError> {
    let url = format!("http://{addr}{path}");
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent();
    let failed = |url: &str, source: ureq::Error| LoadError::Http {
        url: url.to_owned(),
        source: Box::new(source),
    };
    // ureq blocks; the runtime's blocking pool carries it.
    let fetch_url = url.clone();
    tokio::task::spawn_blocking(move || {
        let mut response = agent.get(&fetch_url).call()?;
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string()?;
        Ok((status, body))
    })
    .await
    .map_err(|e| failed(&url, ureq::Error::Io(std::io::Error::other(e))))?
    .map_err(|e| failed(&url, e))
}

/// A counter's value from the SFU's /metrics.
pub async fn metric(addr: &str, name: &str) -> Result<f64, LoadError> {
    let (_, body) = http_get(addr, "/metrics").await?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .ok_or_else(|| LoadError::Sfu(format!("no {name} in /metrics")))
}
