#![allow(dead_code)]
//! A NATS server with JetStream on loopback, on a free port, with its store in a temporary
//! folder; killed (and the folder removed) when dropped. Needs `nats-server` (Debian's
//! package; `.ci/run` installs it).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Nats {
    child: Child,
    pub url: String,
    pub port: u16,
    store: PathBuf,
}

/// The nats-server binary: `NATS_SERVER`, else Debian's.
fn binary() -> String {
    std::env::var("NATS_SERVER").unwrap_or_else(|_| {
        ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("nats-server")
            .to_owned()
    })
}

impl Nats {
    /// Starts one on any free port.
    pub fn start() -> Nats {
        Self::start_on(None, None)
    }

    /// Starts one on `port` (any free one if `None`), with its store in `store` (a fresh
    /// temporary folder if `None`).
    pub fn start_on(port: Option<u16>, store: Option<PathBuf>) -> Nats {
        let store = store.unwrap_or_else(|| {
            let dir = std::env::temp_dir().join(format!(
                "nats-test-{}-{}",
                std::process::id(),
                rand_suffix()
            ));
            std::fs::create_dir_all(&dir).expect("store folder");
            dir
        });
        let port_arg = port.map(|p| p.to_string()).unwrap_or_else(|| "-1".into());
        let mut child = Command::new(binary())
            .args(["-a", "127.0.0.1", "-p", &port_arg, "-js", "-sd"])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nats-server ({}): {e}", binary()));
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut found = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !found
                    && let Some(rest) = line.split("Listening for client connections on ").nth(1)
                    && let Some(port) = rest.trim().rsplit(':').next()
                    && let Ok(port) = port.parse::<u16>()
                {
                    found = true;
                    let _ = tx.send(port);
                }
                // Drain the rest, or the server blocks on a full pipe.
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("nats-server did not say its port");
        // JetStream is ready a moment after the port opens: wait for "Server is ready".
        std::thread::sleep(Duration::from_millis(100));
        Nats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            port,
            store,
        }
    }

    /// Kills it (as a crash would), keeping its store.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port with the same store.
    pub fn restart(&mut self) {
        self.kill();
        let again = Nats::start_on(Some(self.port), Some(self.store.clone()));
        let old = std::mem::replace(self, again);
        // The old one's store is the new one's: not removed.
        std::mem::forget(old);
    }
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// A TCP relay between one node and NATS, that a test can cut (a network partition: every
/// connection through it dropped, new ones refused) and mend.
pub struct Cut {
    pub url: String,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Cut {
    /// A relay to `nats` on a free loopback port.
    pub async fn to(nats: &Nats) -> Cut {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("nats://{}", listener.local_addr().expect("addr"));
        let upstream = format!("127.0.0.1:{}", nats.port);
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> =
            Default::default();
        let (flag, list) = (cut.clone(), tasks.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                list.lock().expect("lock").push(task.abort_handle());
            }
        });
        Cut { url, cut, tasks }
    }

    /// Drops every connection through it and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in self.tasks.lock().expect("lock").drain(..) {
            t.abort();
        }
    }

    /// Lets connections through again.
    pub fn mend(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}
