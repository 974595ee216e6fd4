//! A UDP relay between one participant and the SFU that drops every n-th RTP packet in each
//! direction (STUN, DTLS and RTCP pass), to show that lost packets are recovered.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

use super::SdpRewrite;

/// The relay's counters.
#[derive(Debug, Default)]
pub struct LossStats {
    pub relayed: AtomicU64,
    pub dropped: AtomicU64,
}

pub struct LossyRelay {
    /// The address the participant is told the SFU has.
    pub front: SocketAddr,
    pub stats: Arc<LossStats>,
    /// The SFU's media address, learnt from its first SDP.
    sfu: Arc<Mutex<Option<SocketAddr>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// RTP, not RTCP (RFC 5761: RTCP packet types 192-223 share the second byte's range).
fn is_rtp(datagram: &[u8]) -> bool {
    datagram.len() >= 12
        && (128..192).contains(&datagram[0])
        && !(64..96).contains(&(datagram[1] & 0x7f))
}

impl LossyRelay {
    /// A relay on localhost dropping every `nth` RTP packet each way.
    pub async fn start(nth: u64) -> LossyRelay {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let stats = Arc::new(LossStats::default());
        let sfu: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let participant: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let relay = |from: Arc<UdpSocket>,
                     to: Arc<UdpSocket>,
                     learn: Arc<Mutex<Option<SocketAddr>>>,
                     target: Arc<Mutex<Option<SocketAddr>>>,
                     stats: Arc<LossStats>| {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                let mut rtp = 0u64;
                while let Ok((n, addr)) = from.recv_from(&mut buf).await {
                    *learn.lock().expect("lock") = Some(addr);
                    let Some(dest) = *target.lock().expect("lock") else {
                        continue;
                    };
                    if is_rtp(&buf[..n]) {
                        rtp += 1;
                        if rtp.is_multiple_of(nth) {
                            stats.dropped.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                    stats.relayed.fetch_add(1, Ordering::Relaxed);
                    let _ = to.send_to(&buf[..n], dest).await;
                }
            })
        };
        let up = relay(
            front.clone(),
            back.clone(),
            participant.clone(),
            sfu.clone(),
            stats.clone(),
        );
        let down = relay(
            back,
            front.clone(),
            Arc::new(Mutex::new(None)),
            participant,
            stats.clone(),
        );
        LossyRelay {
            front: front.local_addr().expect("addr"),
            stats,
            sfu,
            tasks: vec![up, down],
        }
    }

    /// Rewrites the SFU's SDP so the participant sends to the relay, and learns where the SFU
    /// listens.
    pub fn rewrite(&self) -> SdpRewrite {
        let (front, sfu) = (self.front, self.sfu.clone());
        Arc::new(move |sdp: String| {
            let mut out = String::with_capacity(sdp.len());
            for line in sdp.split_inclusive('\n') {
                let body = line.trim_end_matches(['\r', '\n']);
                let fields: Vec<&str> = body.split(' ').collect();
                if body.starts_with("a=candidate:") && fields.len() >= 8 && fields[2] == "udp" {
                    if let Ok(addr) = format!("{}:{}", fields[4], fields[5]).parse() {
                        *sfu.lock().expect("lock") = Some(addr);
                    }
                    let mut fields = fields.clone();
                    let (ip, port) = (front.ip().to_string(), front.port().to_string());
                    fields[4] = &ip;
                    fields[5] = &port;
                    out.push_str(&fields.join(" "));
                    out.push_str(&line[body.len()..]);
                } else {
                    out.push_str(line);
                }
            }
            out
        })
    }
}
