//! Forwarding one published track: every RTP packet goes to each subscriber's local track with
//! the payload byte for byte (it is SFrame ciphertext) and the header rewritten to that
//! subscriber's negotiated SSRC and payload type. Header extensions are dropped: their ids are
//! per connection, and the sending side's interceptors add their own.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::events::{Events, MediaEvent};
use crate::routing::TrackId;

/// A downtrack's payload type before its subscriber's answer names one. RTP payload types are
/// 0 to 127 (0 is PCMU), so this is no payload type.
pub(super) const NOT_NEGOTIATED: u8 = u8::MAX;

/// One subscriber's copy of a published track.
pub(super) struct DownTrack {
    pub local: Arc<TrackLocalStaticRTP>,
    pub ssrc: u32,
    /// The payload type negotiated with the subscriber; [`NOT_NEGOTIATED`] until known.
    pub payload_type: AtomicU8,
}

/// The subscribers of one published track, shared with its forwarding task.
pub(super) type DownTracks = Arc<RwLock<Vec<Arc<DownTrack>>>>;

/// Counters for /metrics and benchmarks.
#[derive(Debug, Default)]
pub struct ForwardStats {
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// PLIs sent to publishers (for joiners and for subscribers' requests, after throttling).
    pub keyframe_requests_sent: AtomicU64,
    /// Audio levels and key-frame requests dropped because a room's task was behind.
    pub media_events_dropped: AtomicU64,
}

/// Where an audio track's RFC 6464 levels go: the room task's active-speaker detection.
pub(super) struct Levels {
    /// The header extension id the publisher negotiated for audio levels.
    pub extension_id: u8,
    pub track: TrackId,
    pub events: Events,
}

/// Reads the published track until it ends and writes each packet to every subscriber.
pub(super) async fn forward(
    remote: Arc<dyn TrackRemote>,
    downtracks: DownTracks,
    levels: Option<Levels>,
    stats: Arc<ForwardStats>,
) {
    while let Some(event) = remote.poll().await {
        let TrackRemoteEvent::OnRtpPacket(mut packet) = event else {
            continue;
        };
        stats.packets_in.fetch_add(1, Ordering::Relaxed);
        if let Some(l) = &levels
            && let Some(&byte) = packet
                .header
                .get_extension(l.extension_id)
                .as_deref()
                .and_then(|b| b.first())
        {
            l.events.send(MediaEvent::AudioLevel {
                track: l.track,
                level: byte & 0x7f,
            });
        }
        packet.header.extension = false;
        packet.header.extensions.clear();
        let targets: Vec<Arc<DownTrack>> = match downtracks.read() {
            Ok(list) => list.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        for d in targets {
            let payload_type = d.payload_type.load(Ordering::Relaxed);
            if payload_type == NOT_NEGOTIATED {
                continue;
            }
            let mut out = packet.clone();
            out.header.ssrc = d.ssrc;
            out.header.payload_type = payload_type;
            let len = out.payload.len() as u64;
            if d.local.write_rtp(out).await.is_ok() {
                stats.packets_out.fetch_add(1, Ordering::Relaxed);
                stats.bytes_out.fetch_add(len, Ordering::Relaxed);
            }
        }
    }
}
