//! One participant's WebRTC session on the SFU side: an `rtc` `RTCPeerConnection` (decision
//! 0021) with the codecs and interceptors the SFU negotiates, its one host candidate (the
//! address the driver announces, public if configured), and no sockets, gathering or mDNS.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability,
    RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use signaling_protocol::IceCandidate;

use super::codecs;
use super::rewrite::END_TO_END_EXTENSIONS;
use super::rtcp::{nack, pli};

/// Where a session's media flows: the addresses its host candidates announce (datagrams are
/// tagged with the one they arrived at, and leave from the one the agent picked), and the ICE
/// credentials the driver demultiplexes by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    pub locals: Vec<SocketAddr>,
    pub ice_ufrag: String,
    pub ice_pwd: String,
}

/// A session failure; the participant is told the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error("cannot create the media session: {0}")]
    Create(#[source] rtc::shared::error::Error),
    #[error("the SDP cannot be applied: {0}")]
    Sdp(#[source] rtc::shared::error::Error),
    #[error("no usable codec: this SFU forwards Opus audio and VP9 video")]
    NoUsableCodec,
    #[error("negotiation failed: {0}")]
    Negotiation(#[source] rtc::shared::error::Error),
}

/// One participant's connection.
pub struct Session {
    pub pc: RTCPeerConnection,
    pub transport: Transport,
    /// Whether its DTLS handshake has finished (the engine said "connected" once): until then
    /// it has no SRTP keys, and nothing may be written to it.
    pub connected: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A connection on `transport`, not yet negotiated.
    pub fn new(transport: Transport, now: Instant) -> Result<Self, SessionError> {
        let mut engine = MediaEngine::default();
        codecs::register(&mut engine).map_err(SessionError::Create)?;
        for uri in END_TO_END_EXTENSIONS {
            let kind = if uri.contains("audio-level") {
                RtpCodecKind::Audio
            } else {
                RtpCodecKind::Video
            };
            engine
                .register_header_extension(
                    RTCRtpHeaderExtensionCapability {
                        uri: (*uri).to_owned(),
                    },
                    kind,
                    None,
                )
                .map_err(SessionError::Create)?;
        }
        // NACK generator and responder (with a shorter buffer than the default), TWCC
        // feedback, sender and receiver reports; PLI and FIR marked for the room, which relays
        // them.
        configure_simulcast_extension_headers(&mut engine).map_err(SessionError::Create)?;
        let registry = nack::register(Registry::new(), &mut engine);
        let registry =
            configure_twcc_receiver_only(registry, &mut engine).map_err(SessionError::Create)?;
        let registry = configure_rtcp_reports(registry)
            .with(Slot::from(pli::SLOT), pli::KeyframeRequests::default());
        let settings = SettingEngineBuilder::new()
            .with_ice_credentials(transport.ice_ufrag.clone(), transport.ice_pwd.clone())
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(settings)
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(SessionError::Create)?;
        for &local in &transport.locals {
            let init = host_candidate(local).map_err(SessionError::Create)?;
            pc.add_local_candidate(init).map_err(SessionError::Create)?;
        }
        // Gathering is complete: the host candidates are the only ones.
        pc.add_local_candidate(RTCIceCandidateInit::default())
            .map_err(SessionError::Create)?;
        Ok(Session {
            pc,
            transport,
            connected: false,
        })
    }

    /// Applies the participant's offer; our answer.
    pub fn answer(&mut self, now: Instant, offer: String) -> Result<String, SessionError> {
        let offer = RTCSessionDescription::offer(offer).map_err(SessionError::Sdp)?;
        self.pc
            .set_remote_description(now, offer)
            .map_err(SessionError::Sdp)?;
        let answer = self.pc.create_answer(None).map_err(SessionError::Sdp)?;
        if rejects_all_media(&answer.sdp) {
            return Err(SessionError::NoUsableCodec);
        }
        let sdp = answer.sdp.clone();
        self.pc
            .set_local_description(now, answer)
            .map_err(SessionError::Negotiation)?;
        Ok(sdp)
    }

    /// Our offer (after our tracks for the participant changed).
    pub fn offer(&mut self, now: Instant) -> Result<String, SessionError> {
        let offer = self
            .pc
            .create_offer(None)
            .map_err(SessionError::Negotiation)?;
        let sdp = offer.sdp.clone();
        self.pc
            .set_local_description(now, offer)
            .map_err(SessionError::Negotiation)?;
        Ok(sdp)
    }

    /// Withdraws our pending offer (the participant's offer crossed it).
    pub fn rollback(&mut self, now: Instant) -> Result<(), SessionError> {
        let rollback = RTCSessionDescription::rollback(None).map_err(SessionError::Negotiation)?;
        self.pc
            .set_local_description(now, rollback)
            .map_err(SessionError::Negotiation)
    }

    /// Applies the participant's answer to our offer.
    pub fn accept_answer(&mut self, now: Instant, answer: String) -> Result<(), SessionError> {
        let answer = RTCSessionDescription::answer(answer).map_err(SessionError::Sdp)?;
        self.pc
            .set_remote_description(now, answer)
            .map_err(SessionError::Sdp)
    }

    /// A trickled candidate of the participant's.
    pub fn add_candidate(&mut self, c: IceCandidate) -> Result<(), SessionError> {
        self.pc
            .add_remote_candidate(RTCIceCandidateInit {
                candidate: c.candidate,
                sdp_mid: c.sdp_mid,
                sdp_mline_index: c.sdp_m_line_index,
                username_fragment: c.username_fragment,
                ..Default::default()
            })
            .map_err(SessionError::Sdp)
    }

    /// A datagram from `remote` that arrived at `local`.
    pub fn receive(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, data: BytesMut) {
        let datagram = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: local,
                peer_addr: remote,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: data,
        };
        if let Err(e) = self.pc.handle_read(datagram) {
            tracing::debug!(error = %e, "datagram refused");
        }
    }
}

/// A track sent as one stream, `ssrc`, in `codec`.
pub fn one_stream_track(
    stream: String,
    id: String,
    label: String,
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
    ssrc: u32,
) -> MediaStreamTrack {
    MediaStreamTrack::new(
        stream,
        id,
        label,
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )
}

/// The ICE host candidate (RFC 8445 §5.1.1.1) of a UDP transport at `addr`.
pub fn host_candidate(addr: SocketAddr) -> Result<RTCIceCandidateInit, rtc::shared::error::Error> {
    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    RTCIceCandidate::from(&host).to_json()
}

/// True if every media section of `sdp` is rejected (port 0): nothing offered is something we
/// forward.
pub fn rejects_all_media(sdp: &str) -> bool {
    let ports: Vec<&str> = sdp
        .lines()
        .filter_map(|l| l.strip_prefix("m="))
        .filter_map(|m| m.split_whitespace().nth(1))
        .collect();
    !ports.is_empty() && ports.iter().all(|&p| p == "0")
}
