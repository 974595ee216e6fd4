//! Prometheus metrics at `/metrics`, in the text exposition format.
//!
//! | name | type | meaning |
//! | --- | --- | --- |
//! | `sfu_rooms` | gauge | rooms with at least one participant |
//! | `sfu_participants` | gauge | connected participants |
//! | `sfu_forwarded_packets_total` | counter | RTP packets written to subscribers |
//! | `sfu_forwarded_bytes_total` | counter | RTP payload bytes written to subscribers |
//! | `sfu_received_packets_total` | counter | RTP packets received from publishers |
//! | `sfu_keyframe_requests_total` | counter | PLIs sent to publishers |
//! | `sfu_mls_epochs_total` | counter | MLS epochs begun (groups created, commits accepted) |
//! | `sfu_commits_rejected_total` | counter | MLS commits refused |
//! | `sfu_client_decrypt_failures_total` | counter | frames participants could not decrypt |
//! | `sfu_udp_dropped_datagrams_total` | counter | single-port mode: datagrams for no connection |
//! | `sfu_room_datagrams_dropped_total` | counter | datagrams dropped because a room's task was behind |
//! | `sfu_udp_datagrams_sent_total` | counter | media datagrams the rooms sent |
//! | `sfu_udp_send_calls_total` | counter | system calls that sent them (`sendmmsg`, with GSO runs) |
//! | `sfu_cluster_nodes` | gauge | live nodes of the cluster, as this node sees them (0: alone) |
//! | `sfu_cluster_node_rooms{node}` | gauge | rooms each node is home to |
//! | `sfu_cluster_node_participants{node}` | gauge | participants connected to each node |
//! | `sfu_cluster_node_packets_per_second{node}` | gauge | RTP packets each node forwards a second |

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use signaling_server::SignalingServer;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::media::MediaServer;

/// The registry and the values read at scrape time.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    rooms: Gauge,
    participants: Gauge,
    forwarded_packets: Counter<u64, AtomicU64>,
    forwarded_bytes: Counter<u64, AtomicU64>,
    received_packets: Counter<u64, AtomicU64>,
    keyframe_requests: Counter<u64, AtomicU64>,
    mls_epochs: Counter<u64, AtomicU64>,
    commits_rejected: Counter<u64, AtomicU64>,
    client_decrypt_failures: Counter<u64, AtomicU64>,
    udp_dropped: Counter<u64, AtomicU64>,
    room_datagrams_dropped: Counter<u64, AtomicU64>,
    udp_datagrams_sent: Counter<u64, AtomicU64>,
    udp_send_calls: Counter<u64, AtomicU64>,
    cluster_nodes: Gauge,
    node_rooms: Family<NodeLabel, Gauge>,
    node_participants: Family<NodeLabel, Gauge>,
    node_packets: Family<NodeLabel, Gauge<f64, AtomicU64>>,
    /// Held while a scrape brings the counters up to date.
    scrape: Arc<Mutex<()>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sfu");
        let rooms = Gauge::default();
        let participants = Gauge::default();
        registry.register(
            "rooms",
            "Rooms with at least one participant",
            rooms.clone(),
        );
        registry.register(
            "participants",
            "Connected participants",
            participants.clone(),
        );
        let mut counter = |name: &str, help: &str| {
            let c = Counter::<u64, AtomicU64>::default();
            registry.register(name, help, c.clone());
            c
        };
        let forwarded_packets = counter("forwarded_packets", "RTP packets written to subscribers");
        let forwarded_bytes = counter(
            "forwarded_bytes",
            "RTP payload bytes written to subscribers",
        );
        let received_packets = counter("received_packets", "RTP packets received from publishers");
        let keyframe_requests = counter("keyframe_requests", "PLIs sent to publishers");
        let mls_epochs = counter(
            "mls_epochs",
            "MLS epochs begun in all rooms (groups created, commits accepted)",
        );
        let commits_rejected = counter(
            "commits_rejected",
            "MLS commits refused (stale epoch, not a member, invalid)",
        );
        let client_decrypt_failures = counter(
            "client_decrypt_failures",
            "Frames participants reported they could not decrypt (counts only)",
        );
        let udp_dropped = counter(
            "udp_dropped_datagrams",
            "Single-port mode: datagrams on the shared UDP port for no connection, or beyond its full queue",
        );
        let room_datagrams_dropped = counter(
            "room_datagrams_dropped",
            "Datagrams dropped because a room's media task was behind (its queue was full)",
        );
        let udp_datagrams_sent = counter("udp_datagrams_sent", "Media datagrams the rooms sent");
        let udp_send_calls = counter(
            "udp_send_calls",
            "System calls that sent the rooms' media datagrams (sendmmsg, runs to one destination as one GSO send)",
        );
        let cluster_nodes = Gauge::default();
        registry.register(
            "cluster_nodes",
            "Live nodes of the cluster, as this node sees them (0: alone)",
            cluster_nodes.clone(),
        );
        let node_rooms = Family::<NodeLabel, Gauge>::default();
        registry.register(
            "cluster_node_rooms",
            "Rooms each node of the cluster is home to",
            node_rooms.clone(),
        );
        let node_participants = Family::<NodeLabel, Gauge>::default();
        registry.register(
            "cluster_node_participants",
            "Participants connected to each node of the cluster",
            node_participants.clone(),
        );
        let node_packets = Family::<NodeLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "cluster_node_packets_per_second",
            "RTP packets each node of the cluster forwards a second",
            node_packets.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            cluster_nodes,
            node_rooms,
            node_participants,
            node_packets,
            rooms,
            participants,
            forwarded_packets,
            forwarded_bytes,
            received_packets,
            keyframe_requests,
            mls_epochs,
            commits_rejected,
            client_decrypt_failures,
            udp_dropped,
            room_datagrams_dropped,
            udp_datagrams_sent,
            udp_send_calls,
            scrape: Arc::default(),
        }
    }
}

/// A cluster node's name, as a label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

/// What the metrics must show, read from the servers at one scrape.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    rooms: i64,
    participants: i64,
    forwarded_packets: u64,
    forwarded_bytes: u64,
    received_packets: u64,
    keyframe_requests: u64,
    mls_epochs: u64,
    commits_rejected: u64,
    client_decrypt_failures: u64,
    udp_dropped: u64,
    room_datagrams_dropped: u64,
    udp_datagrams_sent: u64,
    udp_send_calls: u64,
}

impl Metrics {
    /// The exposition text, with values read from `signaling` and `media` now.
    pub fn render(&self, signaling: &SignalingServer, server: &MediaServer) -> String {
        let media = server.stats();
        let stats = signaling.stats();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        self.publish(&Totals {
            rooms: stats.rooms as i64,
            participants: stats.participants as i64,
            forwarded_packets: load(&media.packets_out),
            forwarded_bytes: load(&media.bytes_out),
            received_packets: load(&media.packets_in),
            keyframe_requests: load(&media.keyframe_requests_sent),
            mls_epochs: stats.epochs,
            commits_rejected: stats.commits_rejected,
            client_decrypt_failures: stats.client_decrypt_failures,
            udp_dropped: server.udp_dropped(),
            room_datagrams_dropped: load(&media.datagrams_dropped),
            udp_datagrams_sent: load(&media.datagrams_sent),
            udp_send_calls: load(&media.send_calls),
        });
        self.publish_cluster(signaling.cluster_nodes().unwrap_or_default());
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// The cluster's nodes as this node sees them now (nodes gone since the last scrape drop
    /// out).
    fn publish_cluster(&self, nodes: Vec<signaling_server::server::cluster::NodeInfo>) {
        let _turn = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.cluster_nodes.set(nodes.len() as i64);
        self.node_rooms.clear();
        self.node_participants.clear();
        self.node_packets.clear();
        for n in nodes {
            let label = NodeLabel { node: n.node_id };
            self.node_rooms
                .get_or_create(&label)
                .set(n.load.rooms as i64);
            self.node_participants
                .get_or_create(&label)
                .set(n.load.participants as i64);
            self.node_packets
                .get_or_create(&label)
                .set(n.load.packets_per_second);
        }
    }

    /// Brings every metric up to `t`. Counters only go up by the difference to what they show,
    /// so concurrent scrapes take turns here: two that read the same counter before either
    /// adds would both add the difference.
    fn publish(&self, t: &Totals) {
        let _turn = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.rooms.set(t.rooms);
        self.participants.set(t.participants);
        let catch_up = |c: &Counter<u64, AtomicU64>, total: u64| {
            c.inc_by(total.saturating_sub(c.get()));
        };
        catch_up(&self.forwarded_packets, t.forwarded_packets);
        catch_up(&self.forwarded_bytes, t.forwarded_bytes);
        catch_up(&self.received_packets, t.received_packets);
        catch_up(&self.keyframe_requests, t.keyframe_requests);
        catch_up(&self.mls_epochs, t.mls_epochs);
        catch_up(&self.commits_rejected, t.commits_rejected);
        catch_up(&self.client_decrypt_failures, t.client_decrypt_failures);
        catch_up(&self.udp_dropped, t.udp_dropped);
        catch_up(&self.room_datagrams_dropped, t.room_datagrams_dropped);
        catch_up(&self.udp_datagrams_sent, t.udp_datagrams_sent);
        catch_up(&self.udp_send_calls, t.udp_send_calls);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_scrapes_count_each_difference_once() {
        let metrics = Metrics::default();
        let totals = |n: u64| Totals {
            forwarded_packets: n,
            forwarded_bytes: 1200 * n,
            ..Totals::default()
        };
        for round in 1..=50u64 {
            std::thread::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|| metrics.publish(&totals(round * 1000)));
                }
            });
            assert_eq!(metrics.forwarded_packets.get(), round * 1000);
            assert_eq!(metrics.forwarded_bytes.get(), round * 1_200_000);
        }
    }
}
