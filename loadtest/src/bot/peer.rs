//! A bot's WebRTC connection on webrtc-rs's sans-IO `rtc` engine (the one under the sfu), with
//! a UDP socket of its own: the default codecs (the SFU picks Opus and VP9 of them), the
//! default interceptors (NACK, RTCP reports, TWCC) and the RFC 6464 audio-level extension the
//! SFU reads. The bot's task feeds it datagrams and timeouts and sends what it writes; nothing
//! here blocks or spawns.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability,
    RTCRtpParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::net::UdpSocket;
use udp_batch::RecvBuffers;

use super::shaper::Shaper;
use crate::LoadError;

pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// Datagrams one `recvmmsg` takes at most, of at most an Ethernet MTU each.
const READ_BATCH: usize = 32;
const DATAGRAM_BYTES: usize = 1500;
/// `recvmmsg` calls per readiness before the task looks at its other inputs again.
const READ_CALLS: usize = 2;
/// The receive buffer a bot's socket asks for. Dozens of bots share a thread, so a bot's
/// socket must hold what arrives while the thread serves the others (a commit that every
/// member processes in turn stalls them all for tens of milliseconds): with Linux's default
/// (208 KiB, about a hundred small datagrams on loopback) bots' sockets overflowed at
/// meeting-100, losing handshakes and media to the tool rather than to the sfu.
const RECV_BUFFER: usize = 4 << 20;

/// A peer connection and its socket.
pub struct Peer {
    pub pc: RTCPeerConnection,
    socket: UdpSocket,
    local: SocketAddr,
    buffers: RecvBuffers,
    /// What the connection wrote, gathered for one `sendmmsg`.
    outbox: Vec<(SocketAddr, BytesMut)>,
    /// Datagrams the socket refused (a full send buffer): lost, as on a congested link.
    pub send_dropped: u64,
    /// The network is gone until then (`cut::Relay`): nothing goes out or comes in.
    pub offline_until: Option<Instant>,
    /// Its downlink is narrow for a while (`Peer::squeeze`).
    shaper: Option<Shaper>,
    /// The address last offered as a candidate.
    gathered: SocketAddr,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// A connection on a new loopback UDP port, with that port as its one ICE candidate.
    pub async fn bind(now: Instant) -> Result<Peer, LoadError> {
        let socket = bound().await?;
        let local = socket.local_addr()?;
        let (engine, registry) = engine()?;
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .build(now)?;
        pc.add_local_candidate(host_candidate(local)?)?;
        Ok(Peer {
            pc,
            socket,
            local,
            buffers: RecvBuffers::new(READ_BATCH, DATAGRAM_BYTES),
            outbox: Vec::new(),
            send_dropped: 0,
            offline_until: None,
            shaper: None,
            gathered: local,
        })
    }

    /// The media moves to another network: a new UDP port, the old one closed as an
    /// interface that went away (nothing is sent from its address any more). The new
    /// address becomes a candidate with the next ICE restart ([`Self::gather`]).
    pub async fn move_network(&mut self) -> Result<(), LoadError> {
        let socket = bound().await?;
        self.local = socket.local_addr()?;
        self.socket = socket;
        Ok(())
    }

    /// Offers the current address as a candidate (for an ICE restart), if it is new.
    pub fn gather(&mut self) -> Result<(), LoadError> {
        if self.gathered != self.local {
            self.pc.add_local_candidate(host_candidate(self.local)?)?;
            self.gathered = self.local;
        }
        Ok(())
    }

    /// Makes an offer and sets it as the local description; its SDP.
    pub fn offer(&mut self) -> Result<String, LoadError> {
        let offer = self.pc.create_offer(None)?;
        self.pc
            .set_local_description(Instant::now(), offer.clone())?;
        Ok(offer.sdp)
    }

    /// Adds a track of `kind` with one encoding of `mime` under `ssrc`, in media stream
    /// `stream` (tracks of one stream go together: the SFU names it in the stream id it
    /// forwards).
    pub fn add_track(
        &mut self,
        stream: &str,
        kind: RtpCodecKind,
        mime: &str,
        clock_rate: u32,
        channels: u16,
        ssrc: u32,
    ) -> Result<RTCRtpSenderId, LoadError> {
        let track = one_ssrc_track(stream, kind, mime, clock_rate, channels, ssrc);
        Ok(self.pc.add_track(track)?)
    }

    /// The negotiated payload type of a sender's first codec, and its audio-level extension
    /// id; `None` before the answer.
    pub fn negotiated(&mut self, sender: RTCRtpSenderId) -> Option<(u8, Option<u8>)> {
        let mut s = self.pc.rtp_sender(sender)?;
        negotiated_in(&s.get_parameters().rtp_parameters)
    }

    /// The socket, to wait until it has a datagram (`readable` is cancel-safe).
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// Hands the connection what the socket holds, up to a burst (through the narrow link
    /// while squeezed), many datagrams per system call.
    pub fn read(&mut self, now: Instant) {
        let offline = self.offline(now);
        for _ in 0..READ_CALLS {
            let (pc, shaper, local) = (&mut self.pc, &mut self.shaper, self.local);
            let got = udp_batch::try_recv_batch(&self.socket, &mut self.buffers, |data, from| {
                if offline {
                    return;
                }
                let message = BytesMut::from(data);
                match shaper.as_mut() {
                    Some(link) => link.offer(now, message, from),
                    None => deliver(pc, local, now, message, from),
                }
            });
            match got {
                // A full batch: there may be more.
                Ok(n) if n == self.buffers.len() => {}
                // The socket is empty (`WouldBlock`: tokio waits for it again), or an ICMP
                // error of an earlier send (the peer's port is gone): nothing more to read.
                _ => break,
            }
        }
        self.release(now);
    }

    /// Its downlink carries `bits_per_second` from now until `until`.
    pub fn squeeze(&mut self, bits_per_second: u64, now: Instant, until: Instant) {
        self.shaper = Some(Shaper::new(bits_per_second, now, until));
    }

    /// Hands the connection what came through the narrow link by `now`.
    pub fn release(&mut self, now: Instant) {
        let Some(link) = self.shaper.as_mut() else {
            return;
        };
        while let Some((message, from)) = link.pop_due(now) {
            deliver(&mut self.pc, self.local, now, message, from);
        }
        if link.done(now) {
            self.shaper = None;
        }
    }

    /// When the narrow link next has a datagram through, while squeezed.
    pub fn link_due(&self) -> Option<Instant> {
        self.shaper.as_ref().and_then(Shaper::next_due)
    }

    fn offline(&self, now: Instant) -> bool {
        self.offline_until.is_some_and(|t| now < t)
    }

    /// Sends everything the connection wrote (nothing while offline), many datagrams per
    /// system call.
    pub fn write(&mut self) {
        let offline = self.offline(Instant::now());
        self.outbox.clear();
        while let Some(d) = self.pc.poll_write() {
            // Nothing from an address this bot no longer has (`move_network`).
            if offline || d.transport.local_addr != self.local {
                continue;
            }
            self.outbox.push((d.transport.peer_addr, d.message));
        }
        if self.outbox.is_empty() {
            return;
        }
        let datagrams: Vec<(SocketAddr, &[u8])> =
            self.outbox.iter().map(|(to, m)| (*to, &m[..])).collect();
        let sent = udp_batch::send_all(&self.socket, &datagrams, true);
        self.send_dropped += (datagrams.len() - sent.datagrams) as u64;
    }

    /// Runs the connection's timers that are due.
    pub fn timeout(&mut self, now: Instant) {
        if self.pc.poll_timeout().is_some_and(|t| t <= now) {
            let _ = self.pc.handle_timeout(now);
        }
    }
}

/// A new loopback UDP socket with a receive buffer of [`RECV_BUFFER`] (or as much of it as the
/// host allows).
async fn bound() -> Result<UdpSocket, LoadError> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    if let Err(e) = udp_batch::set_recv_buffer(&socket, RECV_BUFFER) {
        tracing::debug!(error = %e, "the default receive buffer stays");
    }
    Ok(socket)
}

/// A datagram from `from` to the connection, at `now`.
fn deliver(
    pc: &mut RTCPeerConnection,
    local: SocketAddr,
    now: Instant,
    message: BytesMut,
    from: SocketAddr,
) {
    let _ = pc.handle_read(TaggedBytesMut {
        now,
        transport: TransportContext {
            local_addr: local,
            peer_addr: from,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        },
        message,
    });
}

/// What a participant's connection offers (the bots', and the sfu tests' webrtc-rs ones): the
/// default codecs, the RFC 6464 audio-level extension, the default interceptors.
pub fn engine() -> Result<(MediaEngine, Registry), rtc::shared::error::Error> {
    let mut engine = MediaEngine::default();
    engine.register_default_codecs()?;
    engine.register_header_extension(
        RTCRtpHeaderExtensionCapability {
            uri: AUDIO_LEVEL_URI.into(),
        },
        RtpCodecKind::Audio,
        None,
    )?;
    let registry = register_default_interceptors(Registry::new(), &mut engine)?.with(
        Slot::from(super::keyframes::SLOT),
        super::keyframes::KeyframeRequests::default(),
    );
    Ok((engine, registry))
}

/// A local track of `kind` with one encoding of `mime` under `ssrc`.
pub fn one_ssrc_track(
    stream: &str,
    kind: RtpCodecKind,
    mime: &str,
    clock_rate: u32,
    channels: u16,
    ssrc: u32,
) -> MediaStreamTrack {
    MediaStreamTrack::new(
        stream.into(),
        format!("{kind}-{ssrc}"),
        format!("{kind}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: RTCRtpCodec {
                mime_type: mime.into(),
                clock_rate,
                channels,
                ..Default::default()
            },
            ..Default::default()
        }],
    )
}

/// The payload type of a sender's first negotiated codec, and its audio-level extension id.
pub fn negotiated_in(p: &RTCRtpParameters) -> Option<(u8, Option<u8>)> {
    let pt = p.codecs.first()?.payload_type;
    let level = p
        .header_extensions
        .iter()
        .find(|h| h.uri == AUDIO_LEVEL_URI)
        .and_then(|h| u8::try_from(h.id).ok());
    Some((pt, level))
}

/// The ICE host candidate (RFC 8445 §5.1.1.1) of the UDP socket at `addr`.
fn host_candidate(addr: SocketAddr) -> Result<RTCIceCandidateInit, LoadError> {
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
    Ok(RTCIceCandidate::from(&host).to_json()?)
}
