//! Prometheus metrics at `/metrics`, in the text exposition format.
//!
//! | name | type | meaning |
//! | --- | --- | --- |
//! | `sfu_rooms` | gauge | rooms with at least one participant |
//! | `sfu_participants` | gauge | connected participants |

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use signaling_server::SignalingServer;

/// The registry and the values read at scrape time.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    rooms: Gauge,
    participants: Gauge,
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
        Metrics {
            registry: Arc::new(registry),
            rooms,
            participants,
        }
    }
}

impl Metrics {
    /// The exposition text, with the room gauges read from `signaling` now.
    pub fn render(&self, signaling: &SignalingServer) -> String {
        let stats = signaling.stats();
        self.rooms.set(stats.rooms as i64);
        self.participants.set(stats.participants as i64);
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
