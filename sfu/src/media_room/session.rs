//! One participant's WebRTC session on the SFU side: an `rtc` `RTCPeerConnection` (decision
//! 0021) with the codecs and interceptors the SFU negotiates, its one host candidate (the
//! address the driver announces, public if configured), and no sockets, gathering or mDNS.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::configure_simulcast_extension_headers;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability,
    RTCRtpHeaderExtensionParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{
    RTCRtpReceiverId, RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverId,
    RTCRtpTransceiverInit,
};
use rtc::sansio::Protocol;
use rtc::shared::marshal::MarshalSize;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use signaling_protocol::IceCandidate;

use super::codecs;
use super::rewrite::END_TO_END_EXTENSIONS;
use super::rtcp;
use super::rtcp::estimate::Bandwidth;

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

/// One participant's connection. The room reaches the engine only through its methods.
pub struct Session {
    pc: RTCPeerConnection,
    transport: Transport,
    /// Whether its DTLS handshake has finished (the engine said "connected" once): until then
    /// it has no SRTP keys, and nothing may be written to it.
    connected: bool,
    /// How fast it may be sent to, from its feedback.
    bandwidth: Bandwidth,
    /// The id of the transport-wide sequence number's header extension in what we send, once
    /// negotiated.
    transport_cc: Option<u8>,
}

/// What happened on a connection, for the room.
#[derive(Debug)]
pub enum SessionEvent {
    /// A section the participant sends on opened (again) a track.
    TrackOpened {
        /// The connection's id for the track.
        track: String,
        receiver: RTCRtpReceiverId,
        ssrc: u32,
        /// The stream ids (msid) the participant gave it.
        streams: Vec<String>,
    },
    /// The DTLS handshake finished: media may flow now (said once).
    Connected,
    /// The connection failed or closed.
    Gone,
}

/// What a connection received for the room.
#[derive(Debug)]
pub enum Received {
    /// An RTP packet of the connection's track `track`.
    Rtp {
        track: String,
        packet: rtc::rtp::packet::Packet,
    },
    /// RTCP delivered to the application (the feedback the room relays or acts on).
    Rtcp(Vec<Box<dyn rtc::rtcp::Packet>>),
}

/// A datagram a connection sends.
#[derive(Debug)]
pub struct Transmit {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub data: BytesMut,
}

/// What a section receiving a track negotiated: its kind, the codec of a payload type, the
/// header extensions.
#[derive(Debug)]
pub struct ReceivedTrack {
    pub kind: RtpCodecKind,
    pub codec: Option<RTCRtpCodec>,
    /// Header-extension ids by URI.
    pub extensions: Vec<(String, u8)>,
}

/// What a sending section negotiated: the payload type of a codec and the header extensions.
#[derive(Debug)]
pub struct SentTrack {
    pub payload_type: Option<u8>,
    pub extensions: Vec<(String, u8)>,
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
        configure_simulcast_extension_headers(&mut engine).map_err(SessionError::Create)?;
        let registry = rtcp::interceptors(&mut engine).map_err(SessionError::Create)?;
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
            bandwidth: Bandwidth::default(),
            transport_cc: None,
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
        self.transport_cc = transport_cc_id(&sdp);
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
        self.transport_cc = transport_cc_id(&sdp).or(self.transport_cc);
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

    /// How fast the participant may be sent to at `now`, in bits per second (`None`: it sent
    /// no transport-wide feedback to go by).
    pub fn estimate(&self, now: Instant) -> Option<u64> {
        self.bandwidth.bits_per_second(now)
    }

    /// Starts a probe of the path ([`rtcp::estimate::probe`]) at `factor` times the
    /// estimate; false if one is under way.
    pub fn start_probe(&mut self, now: Instant, factor: f64) -> bool {
        self.bandwidth.start_probe(now, factor)
    }

    /// How many padding packets the probe under way needs now.
    pub fn padding_due(&self, now: Instant) -> usize {
        self.bandwidth.padding_due(now)
    }

    /// Whether a probe is sending now.
    pub fn probing(&self, now: Instant) -> bool {
        self.bandwidth.probing(now)
    }

    /// Sends the padding packets of `headers`.
    pub fn write_padding(
        &mut self,
        now: Instant,
        headers: Vec<rtc::rtp::header::Header>,
    ) -> Result<(), rtc::shared::error::Error> {
        for header in headers {
            self.write_rtp(
                now,
                rtc::rtp::packet::Packet {
                    header,
                    payload: bytes::Bytes::new(),
                },
            )?;
        }
        Ok(())
    }

    /// Whether the DTLS handshake has finished (media may be written).
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The connection's next event.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        loop {
            match self.pc.poll_event()? {
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    return Some(SessionEvent::TrackOpened {
                        track: init.track_id,
                        receiver: init.receiver_id,
                        ssrc: init.ssrc,
                        streams: init.stream_ids,
                    });
                }
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                    RTCPeerConnectionState::Connected,
                ) if !self.connected => {
                    self.connected = true;
                    return Some(SessionEvent::Connected);
                }
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed,
                ) => return Some(SessionEvent::Gone),
                _ => {}
            }
        }
    }

    /// The next media or feedback the connection received (transport-wide feedback goes to
    /// its estimate).
    pub fn poll_received(&mut self) -> Option<Received> {
        loop {
            let m = self.pc.poll_read()?;
            match m.message {
                RTCMessage::RtpPacket(track, packet) => {
                    return Some(Received::Rtp { track, packet });
                }
                RTCMessage::RtcpPacket(_, packets) => {
                    for p in &packets {
                        if let Some(f) = p.as_any().downcast_ref::<TransportLayerCc>() {
                            self.bandwidth.feedback(m.now, f);
                        }
                    }
                    return Some(Received::Rtcp(packets));
                }
                _ => {}
            }
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.pc.poll_write().map(|d| Transmit {
            local: d.transport.local_addr,
            remote: d.transport.peer_addr,
            data: d.message,
        })
    }

    /// When the connection's timers next need [`Session::handle_timeout`].
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.pc.poll_timeout()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Err(e) = self.pc.handle_timeout(now) {
            tracing::debug!(error = %e, "timeout handling failed");
        }
    }

    /// Closes the connection (what the close says is then in [`Session::poll_transmit`]).
    pub fn close(&mut self) {
        let _ = self.pc.close();
    }

    /// The receivers of the sections the participant sends on now.
    pub fn receiving(&mut self) -> Vec<RTCRtpReceiverId> {
        let mut receiving = Vec::new();
        let ids: Vec<_> = self.pc.get_transceivers().collect();
        for id in ids {
            if let Some(t) = self.pc.rtp_transceiver(id)
                && t.current_direction().has_recv()
                && let Some(r) = t.receiver()
            {
                receiving.push(r);
            }
        }
        receiving
    }

    /// What `receiver`'s section negotiated, with the codec of `payload_type`.
    pub fn received_track(
        &mut self,
        receiver: RTCRtpReceiverId,
        payload_type: u8,
    ) -> Option<ReceivedTrack> {
        let mut receiver = self.pc.rtp_receiver(receiver)?;
        let kind = receiver.track().kind();
        let params = &receiver.get_parameters().rtp_parameters;
        Some(ReceivedTrack {
            kind,
            codec: params
                .codecs
                .iter()
                .find(|c| c.payload_type == payload_type)
                .map(|c| c.rtp_codec.clone()),
            extensions: extension_ids(&params.header_extensions),
        })
    }

    /// Sends `feedback` (RTCP about the stream `receiver` receives) to the participant: true if
    /// it could be queued.
    pub fn send_feedback(
        &mut self,
        now: Instant,
        receiver: RTCRtpReceiverId,
        feedback: Vec<Box<dyn rtc::rtcp::Packet>>,
    ) -> bool {
        self.pc
            .rtp_receiver(receiver)
            .is_some_and(|mut r| r.write_rtcp(now, feedback).is_ok())
    }

    /// Adds a send-only section for `track` (of `stream`), never one of the participant's own;
    /// its sender.
    pub fn add_sender(
        &mut self,
        track: MediaStreamTrack,
        stream: String,
    ) -> Option<RTCRtpSenderId> {
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            streams: vec![stream],
            send_encodings: Vec::new(),
        };
        match self.pc.add_transceiver_from_track(track, Some(init)) {
            Ok(t) => self.pc.rtp_transceiver(t).and_then(|t| t.sender()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot add a track");
                None
            }
        }
    }

    /// Adds a receiver's send-only section named `stream` (`audio-<n>`, `video-<n>`: it carries
    /// whichever publisher's media the room puts in it), sending as `ssrc` in `codec`; its
    /// sender.
    pub fn add_section(
        &mut self,
        stream: String,
        kind: RtpCodecKind,
        codec: RTCRtpCodec,
        ssrc: u32,
    ) -> Option<RTCRtpSenderId> {
        let label = match kind {
            RtpCodecKind::Audio => "audio",
            _ => "video",
        };
        let track = one_stream_track(
            stream.clone(),
            stream.clone(),
            label.to_owned(),
            kind,
            codec,
            ssrc,
        );
        self.add_sender(track, stream)
    }

    /// The media id of the section of `sender`, once an offer or answer gave it one.
    pub fn mid(&mut self, sender: RTCRtpSenderId) -> Option<String> {
        let t = self.pc.rtp_transceiver(RTCRtpTransceiverId::from(sender))?;
        t.mid().clone()
    }

    /// What the section of `sender` negotiated, with the payload type of the codec `fits`.
    pub fn sent_track(
        &mut self,
        sender: RTCRtpSenderId,
        fits: impl Fn(&RTCRtpCodec) -> bool,
    ) -> Option<SentTrack> {
        let mut sender = self.pc.rtp_sender(sender)?;
        let params = &sender.get_parameters().rtp_parameters;
        Some(SentTrack {
            payload_type: params
                .codecs
                .iter()
                .find(|c| fits(&c.rtp_codec))
                .map(|c| c.payload_type),
            extensions: extension_ids(&params.header_extensions),
        })
    }

    /// Sends `packet`, whose header already carries the SSRC, payload type and extension ids
    /// its section negotiated. Straight to the connection: the sender's `write_rtp` would check
    /// them again on every packet by rebuilding its parameters.
    pub fn write_rtp(
        &mut self,
        now: Instant,
        mut packet: rtc::rtp::packet::Packet,
    ) -> Result<(), rtc::shared::error::Error> {
        if let Some(id) = self.transport_cc {
            // With the extension, about four bytes more.
            let size = packet.header.marshal_size() + 4 + packet.payload.len();
            let seq =
                self.bandwidth
                    .sent(now, packet.header.ssrc, packet.header.sequence_number, size);
            if packet.header.extensions.is_empty() {
                packet.header.extension = true;
                packet.header.extension_profile = 0xBEDE;
            }
            packet.header.set_extension(id, sequence_bytes(seq))?;
        }
        self.pc.handle_write(TaggedRTCMessage {
            now,
            message: RTCMessage::RtpPacket(String::new(), packet),
        })
    }

    /// How many media sections the connection has.
    #[cfg(test)]
    pub fn sections(&self) -> usize {
        self.pc.get_transceivers().count()
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

/// Every 16-bit number big-endian, so that a packet's transport-wide sequence number is a
/// slice of static memory rather than an allocation per packet.
static SEQUENCE_NUMBERS: [u8; 2 << 16] = {
    let mut t = [0u8; 2 << 16];
    let mut i = 0;
    while i < 1 << 16 {
        t[2 * i] = (i >> 8) as u8;
        t[2 * i + 1] = i as u8;
        i += 1;
    }
    t
};

/// `seq` big-endian, as the transport-cc extension carries it.
fn sequence_bytes(seq: u16) -> bytes::Bytes {
    let at = 2 * usize::from(seq);
    bytes::Bytes::from_static(&SEQUENCE_NUMBERS[at..at + 2])
}

/// The id `sdp` gives the transport-wide sequence number's header extension (one id for the
/// whole bundle).
fn transport_cc_id(sdp: &str) -> Option<u8> {
    sdp.lines().find_map(|l| {
        let rest = l.strip_prefix("a=extmap:")?;
        let (id, uri) = rest.split_once(' ')?;
        (uri.trim() == rtc::sdp::extmap::TRANSPORT_CC_URI)
            .then(|| id.split('/').next()?.parse().ok())
            .flatten()
    })
}

/// Header-extension ids by URI (those that fit the one-byte or two-byte form).
fn extension_ids(extensions: &[RTCRtpHeaderExtensionParameters]) -> Vec<(String, u8)> {
    extensions
        .iter()
        .filter_map(|h| Some((h.uri.clone(), u8::try_from(h.id).ok()?)))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_are_big_endian() {
        for seq in [0u16, 1, 0x1234, u16::MAX] {
            assert_eq!(&sequence_bytes(seq)[..], &seq.to_be_bytes());
        }
    }

    #[test]
    fn the_transport_cc_id_is_read_from_the_sdp() {
        let sdp = "v=0\r\na=extmap:3 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
                   a=extmap:5 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n";
        assert_eq!(transport_cc_id(sdp), Some(5));
        assert_eq!(transport_cc_id("v=0\r\n"), None);
    }
}
