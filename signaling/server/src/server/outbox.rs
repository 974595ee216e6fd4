//! A connection's outgoing queue, bounded by messages and by bytes. Messages for many
//! participants (commits, proposals) are serialized once and shared, so a large one costs its
//! size once however many it goes to; a participant that does not read fills its own budget
//! and is dropped, and nobody else's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use signaling_protocol::ServerMessage;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// What a connection task receives from its room or the media side.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A message for this participant alone.
    Message(ServerMessage),
    /// A message serialized once and shared by every recipient.
    Frame(Utf8Bytes),
    /// Close the connection (after what was queued before).
    Close,
}

impl Outbound {
    /// About how many bytes this holds: what the queue's byte budget counts.
    pub(crate) fn size(&self) -> usize {
        const OVERHEAD: usize = 128;
        OVERHEAD
            + match self {
                Outbound::Frame(text) => text.len(),
                Outbound::Close => 0,
                Outbound::Message(m) => match m {
                    ServerMessage::SdpOffer { sdp } | ServerMessage::SdpAnswer { sdp } => sdp.len(),
                    ServerMessage::IceCandidate(c) => c.candidate.len(),
                    ServerMessage::Welcome { welcome, .. } => welcome.as_slice().len() * 4 / 3,
                    ServerMessage::Commit { commit, .. } => commit.as_slice().len() * 4 / 3,
                    ServerMessage::Proposal { proposal, .. } => proposal.as_slice().len() * 4 / 3,
                    ServerMessage::CommitRequest { add, .. } => add
                        .iter()
                        .map(|a| a.key_package.as_slice().len() * 4 / 3 + 32)
                        .sum(),
                    ServerMessage::Joined { participants, .. } => participants.len() * 96,
                    ServerMessage::Error { message, .. } => message.len(),
                    _ => 64,
                },
            }
    }
}

/// Why a message could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The connection has too much waiting: it does not read.
    Full,
    /// The connection is gone.
    Closed,
}

/// The sending side of a connection's queue.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Outbound>,
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The receiving side, for the connection task.
#[derive(Debug)]
pub(crate) struct Inbox {
    rx: mpsc::Receiver<Outbound>,
    queued: Arc<AtomicUsize>,
}

/// A queue of at most `messages` messages and about `max_bytes` bytes.
pub(crate) fn outbox(messages: usize, max_bytes: usize) -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::channel(messages.max(1));
    let queued = Arc::new(AtomicUsize::new(0));
    (
        Outbox {
            tx,
            queued: queued.clone(),
            max_bytes,
        },
        Inbox { rx, queued },
    )
}

/// A message as JSON text: what a WebSocket frame carries.
pub(crate) fn encode(message: &ServerMessage) -> String {
    serde_json::to_string(message).unwrap_or_else(|e| {
        format!(r#"{{"type":"error","code":"internal","message":"encoding: {e}"}}"#)
    })
}

impl Outbox {
    /// Queues `out`, unless the connection is gone or would hold more than its budget.
    pub(crate) fn push(&self, out: Outbound) -> Result<(), PushError> {
        let size = out.size();
        let before = self.queued.fetch_add(size, Ordering::Relaxed);
        if before + size > self.max_bytes && !matches!(out, Outbound::Close) {
            self.queued.fetch_sub(size, Ordering::Relaxed);
            return Err(PushError::Full);
        }
        self.tx.try_send(out).map_err(|e| {
            self.queued.fetch_sub(size, Ordering::Relaxed);
            match e {
                mpsc::error::TrySendError::Full(_) => PushError::Full,
                mpsc::error::TrySendError::Closed(_) => PushError::Closed,
            }
        })
    }
}

impl Inbox {
    /// The next message; `None` once every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<Outbound> {
        let out = self.rx.recv().await?;
        self.queued.fetch_sub(out.size(), Ordering::Relaxed);
        Some(out)
    }

    /// The next message already queued, without waiting.
    pub(crate) fn try_recv(&mut self) -> Option<Outbound> {
        let out = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(out.size(), Ordering::Relaxed);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Outbound {
        Outbound::Frame(Utf8Bytes::from("x".repeat(n)))
    }

    #[tokio::test]
    async fn a_queue_holds_its_byte_budget_and_no_more_until_read() {
        let (tx, mut rx) = outbox(1000, 10_000);
        assert_eq!(tx.push(frame(4000)), Ok(()));
        assert_eq!(tx.push(frame(4000)), Ok(()));
        assert_eq!(tx.push(frame(4000)), Err(PushError::Full));
        // Closing always fits.
        assert_eq!(tx.push(Outbound::Close), Ok(()));
        assert!(matches!(rx.recv().await, Some(Outbound::Frame(_))));
        assert_eq!(tx.push(frame(4000)), Ok(()));
        drop(rx);
        assert_eq!(tx.push(frame(1)), Err(PushError::Closed));
    }

    #[tokio::test]
    async fn a_shared_frame_is_one_allocation_for_every_queue() {
        let text = Utf8Bytes::from("y".repeat(1 << 20));
        let queues: Vec<_> = (0..5).map(|_| outbox(10, 2 << 20)).collect();
        for (tx, _) in &queues {
            tx.push(Outbound::Frame(text.clone())).expect("push");
        }
        let mut rxs: Vec<_> = queues.into_iter().map(|(_, rx)| rx).collect();
        for rx in &mut rxs {
            let Some(Outbound::Frame(got)) = rx.recv().await else {
                panic!("frame");
            };
            assert_eq!(
                got.as_str().as_ptr(),
                text.as_str().as_ptr(),
                "the same bytes"
            );
        }
    }
}
