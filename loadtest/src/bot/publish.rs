//! Publishing: the test media in a loop, each frame SFrame-encrypted under the group's current
//! key, packetized (Opus: one packet; VP9: RFC draft payload descriptor, 1200-byte packets)
//! and written with the negotiated payload type.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use media_crypto::sframe::Header;
use rtc::rtp::codec::vp9::Vp9Payloader;
use rtc::rtp::header::Header as RtpHeader;
use rtc::rtp::packetizer::Payloader;
use tokio::sync::watch;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::rtp_transceiver::RtpSender;

use super::BotState;
use super::peer::negotiated;
use crate::media::TestMedia;
use crate::stats::SendLog;

const MTU: usize = 1200;

/// One outgoing track.
pub struct Outgoing {
    pub track: Arc<TrackLocalStaticRTP>,
    pub sender: Arc<dyn RtpSender>,
    pub ssrc: u32,
}

/// What every publishing loop shares.
#[derive(Clone)]
pub struct Shared {
    pub log: Arc<SendLog>,
    pub state: Arc<Mutex<BotState>>,
    pub media: Arc<TestMedia>,
    /// Becomes true once the SFU answered (payload types are known).
    pub answered: watch::Receiver<bool>,
}

impl Shared {
    /// Encrypts a frame and notes when; `None` before the bot holds a sending key.
    fn seal(&self, frame: &[u8]) -> Option<Vec<u8>> {
        let sealed = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if !state.may_send {
                // Someone unexplained is in the group: nothing goes out.
                state.stats.frames_withheld += 1;
                return None;
            }
            let sealed = state.keyring.encrypt(b"", frame).ok()?;
            state.stats.frames_sent += 1;
            sealed
        };
        if let Ok((h, _)) = Header::parse(&sealed) {
            self.log.sent(h.kid, h.ctr, Instant::now());
        }
        Some(sealed)
    }
}

/// Sends Opus frames every 20 ms with an RFC 6464 level of `level` (-dBov, voice flagged).
pub async fn audio(out: Outgoing, shared: Shared, level: u8) {
    let mut answered = shared.answered.clone();
    let _ = answered.wait_for(|&a| a).await;
    let Some((pt, level_id)) = negotiated(&out.sender).await else {
        return;
    };
    let mut tick = tokio::time::interval(shared.media.audio_interval);
    let (mut seq, mut ts) = (rand::random::<u16>(), rand::random::<u32>());
    for i in 0usize.. {
        tick.tick().await;
        let frame = &shared.media.audio[i % shared.media.audio.len()];
        let Some(sealed) = shared.seal(frame) else {
            continue;
        };
        let mut header = RtpHeader {
            version: 2,
            marker: i == 0,
            payload_type: pt,
            sequence_number: seq,
            timestamp: ts,
            ssrc: out.ssrc,
            ..Default::default()
        };
        if let Some(id) = level_id {
            let _ = header.set_extension(id, Bytes::from(vec![0x80 | level.min(127)]));
        }
        let packet = rtc::rtp::Packet {
            header,
            payload: Bytes::from(sealed),
        };
        if out.track.write_rtp(packet).await.is_err() {
            return;
        }
        seq = seq.wrapping_add(1);
        ts = ts.wrapping_add(960);
    }
}

/// Sends VP9 frames at the media's frame rate.
pub async fn video(out: Outgoing, shared: Shared) {
    let mut answered = shared.answered.clone();
    let _ = answered.wait_for(|&a| a).await;
    let Some((pt, _)) = negotiated(&out.sender).await else {
        return;
    };
    let mut tick = tokio::time::interval(shared.media.video_interval);
    let mut payloader = Vp9Payloader::default();
    let (mut seq, mut ts) = (rand::random::<u16>(), rand::random::<u32>());
    for i in 0usize.. {
        tick.tick().await;
        let frame = &shared.media.video[i % shared.media.video.len()];
        let Some(sealed) = shared.seal(&frame.data) else {
            continue;
        };
        let Ok(payloads) = payloader.payload(MTU, &Bytes::from(sealed)) else {
            continue;
        };
        let last = payloads.len().saturating_sub(1);
        for (n, payload) in payloads.into_iter().enumerate() {
            let packet = rtc::rtp::Packet {
                header: RtpHeader {
                    version: 2,
                    marker: n == last,
                    payload_type: pt,
                    sequence_number: seq,
                    timestamp: ts,
                    ssrc: out.ssrc,
                    ..Default::default()
                },
                payload,
            };
            if out.track.write_rtp(packet).await.is_err() {
                return;
            }
            seq = seq.wrapping_add(1);
        }
        ts = ts.wrapping_add(3000);
    }
}
