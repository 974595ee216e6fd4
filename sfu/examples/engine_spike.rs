//! The engine spike of issue 13 (decision 0021): what webrtc-rs's sans-IO `rtc` core costs per
//! RTP packet, with no sockets, no async runtime and a fake clock, next to the AES-GCM that
//! SRTP itself must pay.
//!
//! Two connected pairs of `RTCPeerConnection`s on an in-memory network: a publisher sending
//! VP9 to the SFU side (receive cost: SRTP datagram in, `handle_read` + `poll_read` to the RTP
//! packet), and the SFU side sending to a subscriber (send cost: `write_rtp` + `poll_write` to
//! the SRTP datagram). Each with no interceptors and with the defaults the sfu registers today
//! (NACK generator and responder, TWCC receiver, sender and receiver reports).
//!
//! ```sh
//! cargo run --release -p sfu --example engine_spike [packets]
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_VP9, MediaEngine};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

const PAYLOAD: usize = 1200;

fn vp9() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_VP9.to_owned(),
            clock_rate: 90000,
            channels: 0,
            sdp_fmtp_line: "profile-id=0".to_owned(),
            rtcp_feedback: vec![
                RTCPFeedback {
                    typ: "nack".into(),
                    parameter: String::new(),
                },
                RTCPFeedback {
                    typ: "nack".into(),
                    parameter: "pli".into(),
                },
            ],
        },
        payload_type: 98,
    }
}

fn peer(addr: SocketAddr, interceptors: bool, now: Instant) -> RTCPeerConnection {
    let mut engine = MediaEngine::default();
    engine.register_codec(vp9(), RtpCodecKind::Video).unwrap();
    let registry = if interceptors {
        register_default_interceptors(Registry::new(), &mut engine).unwrap()
    } else {
        Registry::new()
    };
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(SettingEngineBuilder::new().build())
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .build(now)
        .unwrap();
    pc.add_local_candidate(sfu::media_room::host_candidate(addr).unwrap())
        .unwrap();
    pc
}

/// A sender and a receiver, connected over an in-memory network on a fake clock.
struct Pair {
    tx: RTCPeerConnection,
    rx: RTCPeerConnection,
    tx_addr: SocketAddr,
    rx_addr: SocketAddr,
    sender: RTCRtpSenderId,
    ssrc: u32,
    now: Instant,
    seq: u16,
}

fn datagram(now: Instant, from: SocketAddr, to: SocketAddr, bytes: BytesMut) -> TaggedBytesMut {
    TaggedBytesMut {
        now,
        transport: TransportContext {
            local_addr: to,
            peer_addr: from,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        },
        message: bytes,
    }
}

impl Pair {
    fn connect(interceptors: bool) -> Pair {
        let now = Instant::now();
        let tx_addr: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let rx_addr: SocketAddr = "10.0.0.2:6000".parse().unwrap();
        let mut tx = peer(tx_addr, interceptors, now);
        let mut rx = peer(rx_addr, interceptors, now);
        let ssrc = 0x1234_5678;
        let track = MediaStreamTrack::new(
            "stream".into(),
            "video".into(),
            "video".into(),
            RtpCodecKind::Video,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: vp9().rtp_codec,
                ..Default::default()
            }],
        );
        let sender = tx.add_track(track).unwrap();
        let offer = tx.create_offer(None).unwrap();
        tx.set_local_description(now, offer.clone()).unwrap();
        rx.set_remote_description(now, offer).unwrap();
        let answer = rx.create_answer(None).unwrap();
        rx.set_local_description(now, answer.clone()).unwrap();
        tx.set_remote_description(now, answer).unwrap();
        let mut pair = Pair {
            tx,
            rx,
            tx_addr,
            rx_addr,
            sender,
            ssrc,
            now,
            seq: 0,
        };
        let (mut tx_up, mut rx_up) = (false, false);
        for _ in 0..20_000 {
            pair.shuttle();
            while let Some(e) = pair.tx.poll_event() {
                if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = e {
                    tx_up |= s == RTCPeerConnectionState::Connected;
                }
            }
            while let Some(e) = pair.rx.poll_event() {
                if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = e {
                    rx_up |= s == RTCPeerConnectionState::Connected;
                }
            }
            if tx_up && rx_up {
                return pair;
            }
            pair.now += Duration::from_millis(1);
            pair.tx.handle_timeout(pair.now).unwrap();
            pair.rx.handle_timeout(pair.now).unwrap();
        }
        panic!("the pair did not connect");
    }

    /// Delivers everything either side has to send.
    fn shuttle(&mut self) {
        let mut moved = true;
        while moved {
            moved = false;
            while let Some(d) = self.tx.poll_write() {
                moved = true;
                let d = datagram(self.now, self.tx_addr, self.rx_addr, d.message);
                self.rx.handle_read(d).unwrap();
            }
            while let Some(d) = self.rx.poll_write() {
                moved = true;
                let d = datagram(self.now, self.rx_addr, self.tx_addr, d.message);
                self.tx.handle_read(d).unwrap();
            }
            while self.rx.poll_read().is_some() {}
            while self.tx.poll_read().is_some() {}
        }
    }

    fn packet(&mut self, payload: &Bytes) -> rtc::rtp::packet::Packet {
        self.seq = self.seq.wrapping_add(1);
        rtc::rtp::packet::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: 98,
                sequence_number: self.seq,
                timestamp: u32::from(self.seq) * 3000,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: payload.clone(),
        }
    }

    /// `n` packets through the sender: ns per packet from `write_rtp` (or, `direct`, the
    /// connection's `handle_write`, which skips the sender's per-packet parameter checks) to
    /// the datagram.
    fn send_cost(&mut self, n: usize, direct: bool) -> f64 {
        let payload = Bytes::from(vec![0xA5u8; PAYLOAD]);
        let packets: Vec<_> = (0..n).map(|_| self.packet(&payload)).collect();
        let mut out = 0usize;
        let start = Instant::now();
        for (i, p) in packets.into_iter().enumerate() {
            let now = self.now + Duration::from_micros(i as u64 * 50);
            if direct {
                let message = RTCMessage::RtpPacket(String::new(), p);
                self.tx
                    .handle_write(TaggedRTCMessage { now, message })
                    .unwrap();
            } else {
                self.tx
                    .rtp_sender(self.sender)
                    .unwrap()
                    .write_rtp(now, p)
                    .unwrap();
            }
            while let Some(d) = self.tx.poll_write() {
                out += std::hint::black_box(d).message.len().min(1);
            }
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        assert!(out >= n, "every packet became a datagram");
        ns
    }

    /// `n` datagrams into the receiver: ns per packet from `handle_read` to the RTP packet.
    fn receive_cost(&mut self, n: usize) -> f64 {
        let payload = Bytes::from(vec![0x5Au8; PAYLOAD]);
        let mut wire = Vec::with_capacity(n);
        for i in 0..n {
            let p = self.packet(&payload);
            let now = self.now + Duration::from_micros(i as u64 * 50);
            self.tx
                .rtp_sender(self.sender)
                .unwrap()
                .write_rtp(now, p)
                .unwrap();
            while let Some(d) = self.tx.poll_write() {
                wire.push(datagram(now, self.tx_addr, self.rx_addr, d.message));
            }
        }
        let mut got = 0usize;
        let start = Instant::now();
        for d in wire {
            self.rx.handle_read(d).unwrap();
            while let Some(m) = self.rx.poll_read() {
                if let RTCMessage::RtpPacket(_, p) = m.message {
                    got += p.payload.len().min(1);
                }
            }
            while self.rx.poll_write().is_some() {}
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        assert!(got >= n * 9 / 10, "the packets arrived ({got} of {n})");
        ns
    }
}

/// The AES-128-GCM that SRTP (AEAD_AES_128_GCM, RFC 7714) itself costs per packet: the part
/// of each figure no engine can avoid.
fn aes_gcm_cost(n: usize) -> f64 {
    use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[7u8; 16]).unwrap());
    let header = [0x80u8; 12];
    let mut buf = vec![0xA5u8; PAYLOAD];
    let start = Instant::now();
    for i in 0..n {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&(i as u64).to_be_bytes());
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&header),
                &mut buf,
            )
            .unwrap();
        let _ = std::hint::black_box(tag);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// What a fast path past the pipeline would do per forwarded packet with rtc's own SRTP crate
/// (`rtc::srtp`, keyed as the DTLS handshake would key it): the rewritten header marshalled
/// with the payload, then protected under `profile`. Its own allocation included.
fn srtp_alone_cost(n: usize, profile: rtc::srtp::protection_profile::ProtectionProfile) -> f64 {
    use rtc::crypto::RTCCryptoProvider;
    use rtc::shared::marshal::Marshal;
    let provider = rtc::crypto::providers::RingProvider::new();
    let key = vec![7u8; profile.key_len()];
    let salt = vec![9u8; profile.salt_len()];
    let mut ctx =
        rtc::srtp::context::Context::new(&key, &salt, profile, None, None, provider.crypto())
            .unwrap();
    let payload = Bytes::from(vec![0xA5u8; PAYLOAD]);
    let mut header = rtc::rtp::header::Header {
        version: 2,
        payload_type: 98,
        ssrc: 0x1234_5678,
        ..Default::default()
    };
    let mut out = 0usize;
    let start = Instant::now();
    for i in 0..n {
        header.sequence_number = i as u16;
        header.timestamp = (i as u32).wrapping_mul(3000);
        let packet = rtc::rtp::packet::Packet {
            header: header.clone(),
            payload: payload.clone(),
        };
        let plain = packet.marshal().unwrap();
        let sealed = ctx.encrypt_rtp_with_header(&plain, &packet.header).unwrap();
        out += std::hint::black_box(sealed).len().min(1);
    }
    assert_eq!(out, n);
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |a| a.parse().expect("packets: a number"));
    println!("rtc 0.21.1, {PAYLOAD}-byte payloads, {n} packets per figure, ns per packet");
    let _ = aes_gcm_cost(n / 10);
    println!("{:>22}: {:>5.0}", "AES-128-GCM alone", aes_gcm_cost(n));
    {
        use rtc::srtp::protection_profile::ProtectionProfile;
        for (label, profile) in [
            ("SRTP AEAD_AES_128_GCM", ProtectionProfile::AeadAes128Gcm),
            (
                "SRTP AES_CM_HMAC_SHA1_80",
                ProtectionProfile::Aes128CmHmacSha1_80,
            ),
        ] {
            let _ = srtp_alone_cost(n / 10, profile);
            let ns = srtp_alone_cost(n, profile);
            println!("{label:>22}: {ns:>5.0} (marshal + protect, the fast path's share)");
        }
    }
    for interceptors in [false, true] {
        let mut pair = Pair::connect(interceptors);
        let _ = pair.send_cost(n / 10, false);
        let send = pair.send_cost(n, false);
        let direct = pair.send_cost(n, true);
        let mut pair = Pair::connect(interceptors);
        let _ = pair.receive_cost(n / 10);
        let receive = pair.receive_cost(n);
        let label = if interceptors {
            "default interceptors"
        } else {
            "no interceptors"
        };
        println!("{label:>22}: send {send:>5.0} (direct {direct:>5.0})  receive {receive:>5.0}");
    }
}
