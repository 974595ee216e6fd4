//! A test participant's PeerConnection on webrtc-rs 0.21 (the async API, another driver of
//! the engine than the sfu's): default codecs (Opus, VP9 among them), the default interceptors
//! (NACK, RTCP reports), and the RFC 6464 audio-level extension the SFU reads: the bots'
//! engine setup and tracks (`loadtest::bot::peer`), on another driver.

use std::sync::Arc;

use loadtest::bot::peer as bot;
use rtc::peer_connection::configuration::RTCConfiguration;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCPeerConnectionState,
};
use webrtc::rtp_transceiver::RtpSender;

struct Handler {
    gathered: watch::Sender<bool>,
    tracks: mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
    failed: watch::Sender<bool>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
        }
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Failed {
            let _ = self.failed.send(true);
        }
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(track);
    }
}

/// A PeerConnection with what its events report.
#[allow(missing_debug_implementations)]
pub struct BotPeer {
    pub pc: Arc<dyn PeerConnection>,
    pub gathered: watch::Receiver<bool>,
    pub failed: watch::Receiver<bool>,
    pub tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
}

/// The same with a configuration of the caller's (ICE servers, relay-only policy).
pub async fn build_with(configuration: RTCConfiguration) -> Result<BotPeer, webrtc::error::Error> {
    let (engine, registry) = bot::engine()?;
    let (gathered_tx, gathered) = watch::channel(false);
    let (failed_tx, failed) = watch::channel(false);
    let (tracks_tx, tracks) = mpsc::unbounded_channel();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(configuration)
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Handler {
            gathered: gathered_tx,
            tracks: tracks_tx,
            failed: failed_tx,
        }))
        .with_udp_addrs(vec!["127.0.0.1:0".to_string()])
        .build()
        .await?;
    Ok(BotPeer {
        pc: Arc::new(pc),
        gathered,
        failed,
        tracks,
    })
}

/// The negotiated payload type of a sender's first codec, and its audio-level extension id.
pub async fn negotiated(sender: &Arc<dyn RtpSender>) -> Option<(u8, Option<u8>)> {
    bot::negotiated_in(&sender.get_parameters().await.ok()?.rtp_parameters)
}

/// A local track with one encoding of `mime` under `ssrc`.
pub fn local_track(
    kind: RtpCodecKind,
    mime: &str,
    clock: u32,
    channels: u16,
    ssrc: u32,
) -> Arc<TrackLocalStaticRTP> {
    Arc::new(TrackLocalStaticRTP::new(bot::one_ssrc_track(
        "bot", kind, mime, clock, channels, ssrc,
    )))
}
