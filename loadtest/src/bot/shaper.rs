//! A narrow link into a bot, in user space (this kernel has no `netem`, and the bots share
//! one loopback): what the SFU sends the bot waits in a queue that drains at the link's rate,
//! as a router's queue before a slow line does, and what would wait longer than the queue
//! holds is dropped at its tail. The delay grows before anything is lost, so the SFU's
//! delay-based estimate sees the link fill as it would a real one.
//!
//! Once the squeeze ends the link is wide: what waits goes at once, in order, and so does
//! everything after it; the shaper goes when nothing waits.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;

/// The most a datagram waits in the queue (a router's buffer at this rate).
pub const QUEUE_LIMIT: Duration = Duration::from_millis(250);

/// One bot's downlink while it is squeezed.
#[derive(Debug)]
pub struct Shaper {
    bits_per_second: u64,
    /// The link is wide again from then.
    until: Instant,
    /// When the link has sent everything queued so far.
    free_at: Instant,
    queue: VecDeque<(Instant, BytesMut, SocketAddr)>,
    /// Datagrams dropped at the queue's tail.
    pub dropped: u64,
}

impl Shaper {
    /// A link of `bits_per_second` from `now` until `until`.
    pub fn new(bits_per_second: u64, now: Instant, until: Instant) -> Self {
        Shaper {
            bits_per_second: bits_per_second.max(1),
            until,
            free_at: now,
            queue: VecDeque::new(),
            dropped: 0,
        }
    }

    /// A datagram arrives at the link's far end at `now`: queued (or dropped if it would wait
    /// longer than the queue holds).
    pub fn offer(&mut self, now: Instant, datagram: BytesMut, from: SocketAddr) {
        if now >= self.until {
            // Wide again: it goes with (or right after) whatever still waits.
            self.queue.push_back((now, datagram, from));
            return;
        }
        let start = self.free_at.max(now);
        if start.saturating_duration_since(now) > QUEUE_LIMIT {
            self.dropped += 1;
            return;
        }
        let bits = datagram.len() as u64 * 8;
        let done = start + Duration::from_micros(bits * 1_000_000 / self.bits_per_second);
        self.free_at = done;
        self.queue.push_back((done, datagram, from));
    }

    /// The next datagram through the link by `now`, if any (once the squeeze is over, every
    /// one still waiting).
    pub fn pop_due(&mut self, now: Instant) -> Option<(BytesMut, SocketAddr)> {
        match self.queue.front() {
            Some((at, _, _)) if *at <= now || now >= self.until => {
                self.queue.pop_front().map(|(_, d, f)| (d, f))
            }
            _ => None,
        }
    }

    /// When the next datagram is through (at the latest when the squeeze ends).
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(at, _, _)| (*at).min(self.until))
    }

    /// The squeeze is over and nothing waits: the link needs no shaper.
    pub fn done(&self, now: Instant) -> bool {
        now >= self.until && self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    #[test]
    fn datagrams_leave_at_the_rate_and_in_order() {
        let t = Instant::now();
        // 80 kbit/s: 1000 bytes every 100 ms.
        let mut s = Shaper::new(80_000, t, t + Duration::from_secs(10));
        s.offer(t, BytesMut::from(&[1u8; 1000][..]), from());
        s.offer(t, BytesMut::from(&[2u8; 1000][..]), from());
        assert_eq!(s.pop_due(t), None, "the first is still on the line");
        assert_eq!(s.next_due(), Some(t + Duration::from_millis(100)));
        let first = s.pop_due(t + Duration::from_millis(100)).unwrap();
        assert_eq!(first.0[0], 1);
        assert_eq!(s.pop_due(t + Duration::from_millis(150)), None);
        let second = s.pop_due(t + Duration::from_millis(200)).unwrap();
        assert_eq!(second.0[0], 2);
        assert_eq!(s.dropped, 0);
    }

    #[test]
    fn what_would_wait_longer_than_the_queue_holds_is_dropped() {
        let t = Instant::now();
        let mut s = Shaper::new(80_000, t, t + Duration::from_secs(10));
        // 100 ms each: the third waits 200 ms, the fourth would wait 300 ms.
        for _ in 0..4 {
            s.offer(t, BytesMut::from(&[0u8; 1000][..]), from());
        }
        assert_eq!(s.dropped, 1);
        // Later, once the queue drained, there is room again.
        let later = t + Duration::from_millis(300);
        while s.pop_due(later).is_some() {}
        s.offer(later, BytesMut::from(&[0u8; 1000][..]), from());
        assert_eq!(s.dropped, 1);
    }

    #[test]
    fn when_the_squeeze_ends_what_waits_goes_at_once_in_order() {
        let t = Instant::now();
        let end = t + Duration::from_millis(50);
        let mut s = Shaper::new(80_000, t, end);
        s.offer(t, BytesMut::from(&[1u8; 1000][..]), from());
        assert_eq!(s.next_due(), Some(end), "the wide link takes it at the end");
        // Arrives after the end, behind the one that waited: leaves with it, after it.
        s.offer(end, BytesMut::from(&[2u8; 1000][..]), from());
        assert_eq!(s.pop_due(end).unwrap().0[0], 1);
        assert_eq!(s.pop_due(end).unwrap().0[0], 2);
        assert!(s.done(end));
    }

    #[test]
    fn a_datagram_longer_than_the_queue_at_a_low_rate_still_passes_an_empty_queue() {
        let t = Instant::now();
        // 8 kbit/s: a 1000-byte datagram takes a second on the line, longer than the queue.
        let mut s = Shaper::new(8_000, t, t + Duration::from_secs(10));
        s.offer(t, BytesMut::from(&[0u8; 1000][..]), from());
        assert_eq!(s.dropped, 0);
        assert_eq!(s.next_due(), Some(t + Duration::from_secs(1)));
    }
}
