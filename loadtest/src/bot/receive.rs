//! Receiving: every track the SFU sends is reassembled into frames (VP9 by its payload
//! descriptor, Opus one per packet), decrypted and checked. A frame whose key has not arrived
//! waits up to a second for it (as the browser does); a frame with a lost packet is counted
//! lost, not failed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use media_crypto::sframe::DecryptError;
use rtc::rtp::codec::vp9::Vp9Packet;
use rtc::rtp::packetizer::Depacketizer;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::Notify;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::BotState;

/// How long a frame may wait for its key.
pub const KEY_WAIT: Duration = Duration::from_secs(1);

/// What the receive tasks of one bot share.
#[derive(Clone)]
pub struct Receiving {
    pub state: Arc<Mutex<BotState>>,
    /// Signalled when a new epoch's key is installed.
    pub keys: Arc<Notify>,
}

impl Receiving {
    fn lock(&self) -> std::sync::MutexGuard<'_, BotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decrypts one frame of a track the server says `publisher` sends, or parks it when its
    /// key has not arrived.
    fn frame(
        &self,
        frame: Bytes,
        publisher: Option<u64>,
        arrived: Instant,
        pending: &mut Vec<(Bytes, Instant)>,
    ) {
        let mut s = self.lock();
        if let Err(DecryptError::NoKeyYet { .. }) = s.open(&frame, publisher) {
            pending.push((frame, arrived));
        }
    }

    /// Retries parked frames; those that waited too long count as "no key yet".
    fn retry(&self, publisher: Option<u64>, pending: &mut Vec<(Bytes, Instant)>) {
        if pending.is_empty() {
            return;
        }
        let mut s = self.lock();
        let now = Instant::now();
        pending.retain(|(frame, arrived)| match s.open(frame, publisher) {
            Err(DecryptError::NoKeyYet { .. }) if now.duration_since(*arrived) < KEY_WAIT => true,
            Err(DecryptError::NoKeyYet { .. }) => {
                s.stats.no_key_yet += 1;
                false
            }
            _ => false,
        });
    }
}

/// Reads one remote track until it ends.
pub async fn track(remote: Arc<dyn TrackRemote>, r: Receiving) {
    let video = remote.kind().await == RtpCodecKind::Video;
    // The SFU names each track's publisher by its stream id; the keys say who it really is.
    let publisher: Option<u64> = remote.stream_id().await.parse().ok();
    let mut vp9 = Vp9Packet::default();
    let mut assembling: Option<BytesMut> = None;
    let mut next_seq: Option<u16> = None;
    let mut pending: Vec<(Bytes, Instant)> = Vec::new();
    loop {
        let event = tokio::select! {
            e = remote.poll() => e,
            _ = r.keys.notified(), if !pending.is_empty() => {
                r.retry(publisher, &mut pending);
                continue;
            }
            _ = tokio::time::sleep(KEY_WAIT), if !pending.is_empty() => {
                r.retry(publisher, &mut pending);
                continue;
            }
        };
        let packet = match event {
            Some(TrackRemoteEvent::OnRtpPacket(p)) => p,
            Some(TrackRemoteEvent::OnEnded) | None => break,
            Some(_) => continue,
        };
        let now = Instant::now();
        r.retry(publisher, &mut pending);
        if !video {
            r.frame(packet.payload, publisher, now, &mut pending);
            continue;
        }
        // A gap in sequence numbers inside a frame spoils that frame.
        let seq = packet.header.sequence_number;
        if next_seq.is_some_and(|n| n != seq) {
            assembling = None;
        }
        next_seq = Some(seq.wrapping_add(1));
        let Ok(payload) = vp9.depacketize(&packet.payload) else {
            assembling = None;
            continue;
        };
        if vp9.b {
            assembling = Some(BytesMut::new());
        }
        if let Some(buf) = assembling.as_mut() {
            buf.extend_from_slice(&payload);
        }
        if (vp9.e || packet.header.marker)
            && let Some(buf) = assembling.take()
        {
            r.frame(buf.freeze(), publisher, now, &mut pending);
        }
    }
}
