//! The emulated network: every link's loss, delay and jitter, links that carry only so much,
//! and the datagrams in flight, in order of arrival.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;

/// Loss, delay and jitter of every link.
#[derive(Debug, Clone, Copy)]
pub struct Conditions {
    pub loss: f64,
    pub delay: Duration,
    pub jitter: Duration,
}

pub const CLEAN: Conditions = Conditions {
    loss: 0.0,
    delay: Duration::from_millis(5),
    jitter: Duration::ZERO,
};

/// 3% loss on every link, 20 ms of delay and up to 15 ms of jitter (so reordering).
pub const LOSSY: Conditions = Conditions {
    loss: 0.03,
    delay: Duration::from_millis(20),
    jitter: Duration::from_millis(15),
};

/// A link that carries at most `bits_per_second` and queues at most `queue` of sending time,
/// dropping what does not fit (a token-bucket filter's shape, `tc tbf`).
#[derive(Debug, Clone, Copy)]
pub struct Bottleneck {
    pub bits_per_second: u64,
    pub queue: Duration,
    /// When what is queued now has been sent.
    free_at: Option<Instant>,
}

impl Bottleneck {
    pub fn new(bits_per_second: u64, queue: Duration) -> Self {
        Bottleneck {
            bits_per_second,
            queue,
            free_at: None,
        }
    }

    /// When a datagram of `bytes` handed over at `now` has been sent (with its IPv4 and UDP
    /// headers, as a link carries it); `None`: dropped.
    pub(super) fn pass(&mut self, now: Instant, bytes: usize) -> Option<Instant> {
        let start = self.free_at.map_or(now, |f| f.max(now));
        if start.saturating_duration_since(now) > self.queue {
            return None;
        }
        let bits = (bytes as u64 + 28) * 8;
        let sending = Duration::from_nanos(bits * 1_000_000_000 / self.bits_per_second);
        self.free_at = Some(start + sending);
        self.free_at
    }
}

pub(super) struct InFlight {
    pub(super) at: Instant,
    pub(super) order: u64,
    pub(super) from: SocketAddr,
    pub(super) to: SocketAddr,
    pub(super) data: BytesMut,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    /// The earliest first (a max-heap reversed).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}
