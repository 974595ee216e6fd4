//! What per-packet tasks tell a room's media task (an audio level, a subscriber's key-frame
//! request), over a bounded channel that drops new events when the room task is behind
//! instead of queueing them without end: both kinds come again with the next packets, and a
//! dropped one is counted (`sfu_media_events_dropped_total`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::forward::ForwardStats;
use crate::routing::TrackId;

/// Events a room queues before it drops new ones: about 5 s of audio levels from four
/// speakers at 50 packets per second.
pub(super) const QUEUED: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaEvent {
    /// A subscriber asked for a key frame of this track (PLI or FIR).
    KeyframeRequest { track: TrackId },
    /// An audio packet's RFC 6464 level (0 loudest, 127 silence).
    AudioLevel { track: TrackId, level: u8 },
}

/// The sending side, one clone per task.
#[derive(Debug, Clone)]
pub(crate) struct Events {
    tx: mpsc::Sender<MediaEvent>,
    stats: Arc<ForwardStats>,
}

/// A room's channel of events; drops are counted in `stats`.
pub(crate) fn channel(stats: Arc<ForwardStats>) -> (Events, mpsc::Receiver<MediaEvent>) {
    let (tx, rx) = mpsc::channel(QUEUED);
    (Events { tx, stats }, rx)
}

impl Events {
    /// Queues `event`, or drops it when the queue is full. Returns `false` once the room is
    /// gone (the task may end).
    pub(crate) fn send(&self, event: MediaEvent) -> bool {
        match self.tx.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats
                    .media_events_dropped
                    .fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_that_is_behind_loses_new_events_not_memory() {
        let stats = Arc::new(ForwardStats::default());
        let (events, mut rx) = channel(stats.clone());
        let level = |i: usize| MediaEvent::AudioLevel {
            track: TrackId(1),
            level: (i % 128) as u8,
        };
        for i in 0..QUEUED + 500 {
            assert!(events.send(level(i)));
        }
        assert_eq!(stats.media_events_dropped.load(Ordering::Relaxed), 500);
        // The queued ones are the oldest, in order; then the room takes new ones again.
        for i in 0..QUEUED {
            assert_eq!(rx.try_recv(), Ok(level(i)));
        }
        assert!(rx.try_recv().is_err());
        assert!(events.send(MediaEvent::KeyframeRequest { track: TrackId(2) }));
        assert_eq!(
            rx.try_recv(),
            Ok(MediaEvent::KeyframeRequest { track: TrackId(2) })
        );
        drop(rx);
        assert!(!events.send(level(0)), "a closed room stops its senders");
    }
}
