//! Each sender's application messages in order, exactly once: every message a member sends in
//! a group carries the next number of that sender in that group, inside the signed content
//! (`app::Sealed`). A receiver keeps, per sender device, the highest number seen and which of
//! the 64 below it arrived, in the manner of SRTP's replay window (RFC 3711 §3.3.2):
//!
//! - a number seen before is a duplicate, and one below the window too old to tell: dropped,
//!   whoever sent it again (a replay by the server, or our own resend it made us do);
//! - a number that skips ahead leaves the ones between missing; one that still comes within
//!   [`GAP_WAIT`] (a message resealed after a commit overtook it) fills its place, and one that
//!   does not is reported as a gap, once;
//! - a sender's state ([`crate::AppMessage::State`], its whole current state) is taken only if
//!   it is newer than the last one taken, so the newest wins whatever order they come in.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// How long a missing number may still arrive before it counts as lost.
pub const GAP_WAIT: Duration = Duration::from_secs(5);

/// Numbers below the highest that are still told apart (seen or not).
const WINDOW: u64 = 64;

/// A sender device in a group: its leaf and its signature key.
pub type SenderKey = (u32, Vec<u8>);

/// What to do with an arriving number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// New: show it.
    New,
    /// Seen before: drop it.
    Duplicate,
    /// Below the window: it cannot be told from a replay, so it is dropped.
    TooOld,
}

#[derive(Debug, Default)]
struct Window {
    /// The highest number seen.
    top: u64,
    /// Bit i: number `top - i` arrived.
    seen: u64,
    /// Numbers skipped, with when they went missing.
    missing: BTreeMap<u64, Duration>,
    /// Numbers skipped beyond the window, not reported yet.
    lost: u64,
    /// The number of the last state taken.
    state: Option<u64>,
}

/// The windows of every sender in one group.
#[derive(Debug, Default)]
pub struct Inbox {
    group: Vec<u8>,
    senders: HashMap<SenderKey, Window>,
}

impl Inbox {
    /// Messages from now on are of `group`: another group than before numbers from the start,
    /// so every sender is forgotten.
    pub fn enter_group(&mut self, group: &[u8]) {
        if self.group != group {
            self.group = group.to_vec();
            self.senders.clear();
        }
    }

    /// Number `seq` from `sender` arrives at `now`. The first number heard from a sender is
    /// where its window starts (what it said before this member joined is not ours to read).
    pub fn arrive(&mut self, sender: &SenderKey, seq: u64, now: Duration) -> Arrival {
        let Some(w) = self.senders.get_mut(sender) else {
            self.senders.insert(
                sender.clone(),
                Window {
                    top: seq,
                    seen: 1,
                    ..Window::default()
                },
            );
            return Arrival::New;
        };
        if seq > w.top {
            let skipped = seq - w.top - 1;
            // Those still inside the window may come late; the others are lost at once.
            let tracked = skipped.min(WINDOW - 1);
            for n in seq - tracked..seq {
                w.missing.insert(n, now);
            }
            w.lost += skipped - tracked;
            w.seen = if seq - w.top >= WINDOW {
                0
            } else {
                w.seen << (seq - w.top)
            } | 1;
            w.top = seq;
            return Arrival::New;
        }
        let back = w.top - seq;
        if back >= WINDOW {
            return Arrival::TooOld;
        }
        if w.seen & (1 << back) != 0 {
            return Arrival::Duplicate;
        }
        w.seen |= 1 << back;
        w.missing.remove(&seq);
        Arrival::New
    }

    /// Whether a state numbered `seq` from `sender` is newer than the last one taken (and
    /// takes it if so).
    pub fn newer_state(&mut self, sender: &SenderKey, seq: u64) -> bool {
        let w = self.senders.entry(sender.clone()).or_default();
        if w.state.is_some_and(|s| s >= seq) {
            return false;
        }
        w.state = Some(seq);
        true
    }

    /// The senders with numbers missing for [`GAP_WAIT`] or more at `now` (or fallen out of
    /// the window), and how many each: reported once, then forgotten.
    pub fn gaps(&mut self, now: Duration) -> Vec<(SenderKey, u64)> {
        let mut out = Vec::new();
        for (sender, w) in &mut self.senders {
            let floor = w.top.saturating_sub(WINDOW - 1);
            let before = w.missing.len();
            w.missing
                .retain(|&n, since| n >= floor && now.saturating_sub(*since) < GAP_WAIT);
            let lost = (before - w.missing.len()) as u64 + std::mem::take(&mut w.lost);
            if lost > 0 {
                out.push((sender.clone(), lost));
            }
        }
        out.sort();
        out
    }

    /// When the next gap could be due, if any number is missing.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.senders
            .values()
            .flat_map(|w| w.missing.values())
            .min()
            .map(|&since| since + GAP_WAIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(100);

    fn alice() -> SenderKey {
        (1, vec![7; 32])
    }

    #[test]
    fn duplicates_and_replays_are_dropped_and_late_ones_fill_their_place() {
        let mut i = Inbox::default();
        let a = alice();
        assert_eq!(i.arrive(&a, 10, T), Arrival::New);
        assert_eq!(i.arrive(&a, 10, T), Arrival::Duplicate);
        assert_eq!(i.arrive(&a, 12, T), Arrival::New);
        // 11 was overtaken; it comes, resealed, a moment later.
        assert_eq!(i.arrive(&a, 11, T), Arrival::New);
        assert_eq!(i.arrive(&a, 11, T), Arrival::Duplicate);
        assert!(i.gaps(T + GAP_WAIT).is_empty(), "nothing is missing");
        assert_eq!(i.arrive(&a, 200, T), Arrival::New);
        assert_eq!(i.arrive(&a, 12, T), Arrival::TooOld);
        // Another device under the same leaf is another sender.
        assert_eq!(i.arrive(&(1, vec![8; 32]), 12, T), Arrival::New);
    }

    #[test]
    fn a_number_that_never_comes_is_a_gap_reported_once() {
        let mut i = Inbox::default();
        let a = alice();
        i.arrive(&a, 0, T);
        i.arrive(&a, 3, T);
        assert_eq!(i.next_deadline(), Some(T + GAP_WAIT));
        assert!(i.gaps(T + GAP_WAIT - Duration::from_millis(1)).is_empty());
        assert_eq!(i.gaps(T + GAP_WAIT), vec![(a.clone(), 2)]);
        assert!(i.gaps(T + GAP_WAIT * 2).is_empty(), "once");
        assert_eq!(i.next_deadline(), None);
        // A jump past the window: the ones it skips are lost at once.
        i.arrive(&a, 1000, T);
        assert_eq!(i.gaps(T), vec![(a.clone(), 996 - 63)]);
        assert_eq!(i.gaps(T + GAP_WAIT), vec![(a, 63)]);
    }

    #[test]
    fn the_newest_state_wins_whatever_the_order() {
        let mut i = Inbox::default();
        i.enter_group(b"g");
        let a = alice();
        assert!(i.newer_state(&a, 5));
        assert!(!i.newer_state(&a, 4), "an older state is not taken");
        assert!(!i.newer_state(&a, 5));
        assert!(i.newer_state(&a, 6));
        i.enter_group(b"g");
        assert!(!i.newer_state(&a, 6), "the same group");
        i.enter_group(b"h");
        assert!(i.newer_state(&a, 0), "a new group numbers from the start");
    }
}
