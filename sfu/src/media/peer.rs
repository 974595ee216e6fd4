//! One participant's PeerConnection on the SFU side: how it is built (codecs, interceptors,
//! UDP address) and the offer/answer steps.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpHeaderExtensionCapability, RtpCodecKind};
use tokio::sync::watch;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCPeerConnectionState,
};

use super::MediaConfig;
use super::ports::{PortLease, PortsExhausted};
use super::room::RoomInput;
use super::udp_mux::MuxConnection;
use signaling_protocol::ParticipantId;

/// RFC 6464: the audio level of each packet, read in the clear for active-speaker detection.
pub(super) const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// How long an offer or answer may wait for ICE gathering to finish.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);

/// A media setup failure, reported to the participant as `invalid_sdp` or logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    #[error("cannot create the peer connection: {0}")]
    Create(#[source] webrtc::error::Error),
    #[error(transparent)]
    NoPort(#[from] PortsExhausted),
    #[error("the SDP cannot be applied: {0}")]
    Sdp(#[source] webrtc::error::Error),
    #[error("no usable codec: this SFU forwards Opus audio and VP9 video")]
    NoUsableCodec,
    #[error("negotiation failed: {0}")]
    Negotiation(#[source] webrtc::error::Error),
    #[error("negotiation left no local description")]
    NoLocalDescription,
}

/// Forwards the events of one participant's PeerConnection to its room task.
struct Events {
    participant: ParticipantId,
    room: tokio::sync::mpsc::UnboundedSender<RoomInput>,
    gathered: watch::Sender<bool>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if matches!(
            state,
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
        ) {
            let _ = self.room.send(RoomInput::PeerGone {
                participant: self.participant,
            });
        }
    }

    /// The room hears of the track with its first packet's payload type, which names the
    /// codec. (webrtc 0.21 resets a receiver's codec at every remote description until the
    /// next packet, and the `TrackRemote` keeps the reset one when a renegotiation lands
    /// between a track's first packet and this event, so `TrackRemote::codec` cannot be
    /// trusted.) The first packet itself is not forwarded: nobody is subscribed yet.
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let (participant, room) = (self.participant, self.room.clone());
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                match event {
                    TrackRemoteEvent::OnRtpPacket(packet) => {
                        let _ = room.send(RoomInput::Track {
                            participant,
                            track,
                            payload_type: packet.header.payload_type,
                        });
                        return;
                    }
                    TrackRemoteEvent::OnEnded => return,
                    _ => {}
                }
            }
        });
    }
}

/// A PeerConnection, the UDP port it holds (of the range, or its place on the shared port),
/// and the signal that its ICE gathering is done.
pub(super) struct SfuPeer {
    pub pc: Arc<dyn PeerConnection>,
    gathered: watch::Receiver<bool>,
    public_ip: Option<IpAddr>,
    udp: Udp,
}

/// Where a PeerConnection's media arrives; held for as long as the connection lives.
enum Udp {
    /// A port of the range, its own (released when dropped).
    Port { _lease: PortLease },
    /// Its place on the shared port (single-port mode).
    Shared(MuxConnection),
}

impl Udp {
    /// The port host candidates must announce instead of the one the connection bound.
    fn announced_port(&self) -> Option<u16> {
        match self {
            Udp::Port { .. } => None,
            Udp::Shared(connection) => Some(connection.port()),
        }
    }
}

impl SfuPeer {
    /// A PeerConnection for `participant` on a port of the configured range, or on the
    /// shared port.
    pub(super) async fn new(
        participant: ParticipantId,
        config: &MediaConfig,
        room: tokio::sync::mpsc::UnboundedSender<RoomInput>,
    ) -> Result<Self, PeerError> {
        let mut engine = MediaEngine::default();
        crate::media_room::codecs::register(&mut engine).map_err(PeerError::Create)?;
        engine
            .register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: AUDIO_LEVEL_URI.into(),
                },
                RtpCodecKind::Audio,
                None,
            )
            .map_err(PeerError::Create)?;
        let registry = register_default_interceptors(Registry::new(), &mut engine)
            .map_err(PeerError::Create)?
            .with(
                rtc::interceptor::Slot::from(crate::media_room::rtcp::pli::SLOT),
                crate::media_room::rtcp::pli::KeyframeRequests::default(),
            );
        let (gathered_tx, gathered) = watch::channel(false);
        let builder = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Events {
                participant,
                room,
                gathered: gathered_tx,
            }));
        let (builder, udp) = match &config.udp_mux {
            Some(shared) => {
                // Our ICE credentials, so the mux knows this connection's username fragment
                // before the first STUN request names it. mDNS off: it would open a socket
                // of its own, and the SFU never needs to resolve .local candidates (the
                // browser's checks reveal its address).
                let ufrag = random_ice_chars(16);
                let settings = SettingEngineBuilder::new()
                    .with_ice_credentials(ufrag.clone(), random_ice_chars(32))
                    .with_multicast_dns_mode(MulticastDnsMode::Disabled)
                    .build();
                let connection = shared.connect(&ufrag);
                let builder = builder
                    .with_setting_engine(settings)
                    .with_runtime(connection.runtime())
                    .with_udp_addrs(vec![SocketAddr::new(config.ip, 0)]);
                (builder, Udp::Shared(connection))
            }
            None => {
                let port = config.ports.lease()?;
                let builder = builder.with_udp_addrs(vec![SocketAddr::new(config.ip, port.port())]);
                (builder, Udp::Port { _lease: port })
            }
        };
        let pc = builder.build().await.map_err(PeerError::Create)?;
        Ok(SfuPeer {
            pc: Arc::new(pc),
            gathered,
            public_ip: config.public_ip,
            udp,
        })
    }

    /// The local description once ICE gathering has finished (no server-side trickle), with
    /// the public address announced when one is configured. (webrtc 0.21 stores a 1:1 NAT
    /// address, `with_nat_1to1_ips`, but its gatherer does not use it.)
    async fn gathered_local_sdp(&mut self) -> Result<String, PeerError> {
        let done = self.gathered.wait_for(|&g| g);
        let _ = tokio::time::timeout(GATHER_TIMEOUT, done).await;
        let sdp = self
            .pc
            .local_description()
            .await
            .map(|d| d.sdp)
            .ok_or(PeerError::NoLocalDescription)?;
        Ok(announce(&sdp, self.public_ip, self.udp.announced_port()))
    }

    /// Applies the participant's offer and returns our answer.
    pub(super) async fn answer(&mut self, offer_sdp: String) -> Result<String, PeerError> {
        let offer = RTCSessionDescription::offer(offer_sdp).map_err(PeerError::Sdp)?;
        self.pc
            .set_remote_description(offer)
            .await
            .map_err(PeerError::Sdp)?;
        let answer = self.pc.create_answer(None).await.map_err(PeerError::Sdp)?;
        self.pc
            .set_local_description(answer)
            .await
            .map_err(PeerError::Negotiation)?;
        let sdp = self.gathered_local_sdp().await?;
        if crate::media_room::rejects_all_media(&sdp) {
            return Err(PeerError::NoUsableCodec);
        }
        Ok(sdp)
    }

    /// Makes an offer (after tracks were added or removed).
    pub(super) async fn offer(&mut self) -> Result<String, PeerError> {
        let offer = self
            .pc
            .create_offer(None)
            .await
            .map_err(PeerError::Negotiation)?;
        self.pc
            .set_local_description(offer)
            .await
            .map_err(PeerError::Negotiation)?;
        self.gathered_local_sdp().await
    }

    /// Applies the participant's answer to our offer.
    pub(super) async fn accept_answer(&mut self, answer_sdp: String) -> Result<(), PeerError> {
        let answer = RTCSessionDescription::answer(answer_sdp).map_err(PeerError::Sdp)?;
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(PeerError::Sdp)
    }
}

/// What host candidates announce: with `public` (1:1 NAT), that address instead of the bound
/// one (the NAT maps public to private with the same port), and the connection lines follow;
/// with `shared_port` (single-port mode), that port for UDP instead of the one the
/// PeerConnection bound. Duplicates (one per interface when bound to a wildcard) are dropped.
fn announce(sdp: &str, public: Option<IpAddr>, shared_port: Option<u16>) -> String {
    if public.is_none() && shared_port.is_none() {
        return sdp.to_owned();
    }
    let public_text = public.map(|p| p.to_string());
    let port_text = shared_port.map(|p| p.to_string());
    let mut seen = std::collections::HashSet::new();
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        if let Some(candidate) = body.strip_prefix("a=candidate:") {
            let mut fields: Vec<&str> = candidate.split(' ').collect();
            if fields.len() >= 8 && fields[6] == "typ" && fields[7] == "host" {
                if let Some(p) = &public_text {
                    fields[4] = p;
                }
                if let Some(p) = &port_text
                    && fields[2].eq_ignore_ascii_case("udp")
                {
                    fields[5] = p;
                }
                // Foundation aside, the same component, protocol, address and port is the
                // same candidate.
                if !seen.insert((
                    fields[1].to_owned(),
                    fields[2].to_owned(),
                    fields[4].to_owned(),
                    fields[5].to_owned(),
                )) {
                    continue;
                }
                out.push_str("a=candidate:");
                out.push_str(&fields.join(" "));
                out.push_str(ending);
                continue;
            }
        }
        if let Some(public) = public
            && body.starts_with("c=IN ")
            && !body.ends_with(" 0.0.0.0")
        {
            let family = if public.is_ipv4() { "IP4" } else { "IP6" };
            out.push_str(&format!("c=IN {family} {public}{ending}"));
            continue;
        }
        if body.starts_with("a=end-of-candidates") || body.starts_with("m=") {
            seen.clear();
        }
        out.push_str(line);
    }
    out
}

/// Random ICE characters (RFC 8445 ice-char: ALPHA / DIGIT; "+" and "/" left out).
fn random_ice_chars(n: usize) -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::announce;
    use crate::media_room::rejects_all_media;

    #[test]
    fn host_candidates_announce_the_public_address_once() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 10.0.0.5\r\n\
            a=candidate:1 1 udp 2130706431 10.0.0.5 50001 typ host\r\n\
            a=candidate:2 1 udp 2130706431 172.17.0.1 50001 typ host\r\n\
            a=candidate:3 1 udp 1694498815 198.51.100.1 61000 typ srflx raddr 10.0.0.5 rport 50001\r\n\
            a=end-of-candidates\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 98\r\nc=IN IP4 0.0.0.0\r\n\
            a=candidate:1 1 udp 2130706431 10.0.0.5 50001 typ host\r\n";
        let out = announce(sdp, Some("203.0.113.9".parse().expect("ip")), None);
        assert_eq!(
            out,
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 203.0.113.9\r\n\
            a=candidate:1 1 udp 2130706431 203.0.113.9 50001 typ host\r\n\
            a=candidate:3 1 udp 1694498815 198.51.100.1 61000 typ srflx raddr 10.0.0.5 rport 50001\r\n\
            a=end-of-candidates\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 98\r\nc=IN IP4 0.0.0.0\r\n\
            a=candidate:1 1 udp 2130706431 203.0.113.9 50001 typ host\r\n"
        );
    }

    #[test]
    fn single_port_mode_announces_the_shared_port_for_udp_host_candidates_only() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 10.0.0.5\r\n\
            a=candidate:1 1 udp 2130706431 10.0.0.5 41234 typ host\r\n\
            a=candidate:2 1 udp 2130706431 10.0.0.6 41999 typ host\r\n\
            a=candidate:3 1 tcp 1671430143 10.0.0.5 9000 typ host tcptype passive\r\n\
            a=candidate:4 1 udp 1694498815 198.51.100.1 61000 typ srflx raddr 10.0.0.5 rport 41234\r\n";
        assert_eq!(
            announce(sdp, None, Some(3478)),
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 10.0.0.5\r\n\
            a=candidate:1 1 udp 2130706431 10.0.0.5 3478 typ host\r\n\
            a=candidate:2 1 udp 2130706431 10.0.0.6 3478 typ host\r\n\
            a=candidate:3 1 tcp 1671430143 10.0.0.5 9000 typ host tcptype passive\r\n\
            a=candidate:4 1 udp 1694498815 198.51.100.1 61000 typ srflx raddr 10.0.0.5 rport 41234\r\n"
        );
        // Behind a 1:1 NAT too: both interfaces become one public candidate.
        let both = announce(sdp, Some("203.0.113.9".parse().expect("ip")), Some(3478));
        assert_eq!(
            both.matches("203.0.113.9 3478 typ host").count(),
            1,
            "{both}"
        );
        assert_eq!(announce(sdp, None, None), sdp);
    }

    #[test]
    fn an_answer_that_rejects_every_section_is_recognised() {
        let rejected = "v=0\r\nm=audio 0 UDP/TLS/RTP/SAVPF 0\r\nm=video 0 UDP/TLS/RTP/SAVPF 0\r\n";
        let accepted =
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nm=video 0 UDP/TLS/RTP/SAVPF 0\r\n";
        assert!(rejects_all_media(rejected));
        assert!(!rejects_all_media(accepted));
        assert!(
            !rejects_all_media("v=0\r\n"),
            "no media at all is not a codec problem"
        );
    }
}
