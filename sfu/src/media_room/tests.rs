//! The room and real WebRTC clients (`rtc` peer connections, as the bots' engine) on an
//! emulated network with a fake clock: loss, delay and jitter (so reordering) from a seeded
//! generator, deterministic and fast.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp::header::{Extension, Header};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use signaling_protocol::{ErrorCode, ParticipantId};
use signaling_server::server::MediaSignal;

use super::*;

const AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// Loss, delay and jitter of every link.
#[derive(Debug, Clone, Copy)]
struct Conditions {
    loss: f64,
    delay: Duration,
    jitter: Duration,
}

const CLEAN: Conditions = Conditions {
    loss: 0.0,
    delay: Duration::from_millis(5),
    jitter: Duration::ZERO,
};

struct InFlight {
    at: Instant,
    order: u64,
    from: SocketAddr,
    to: SocketAddr,
    data: BytesMut,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    /// The earliest first (a max-heap reversed).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

/// What a client saw of one remote track.
#[derive(Debug, Default)]
struct Received {
    publisher: String,
    packets: usize,
    /// (publisher's original sequence number carried in the payload) seen.
    seen: std::collections::BTreeSet<u32>,
    corrupt: usize,
}

struct Client {
    pc: RTCPeerConnection,
    addr: SocketAddr,
    /// Our tracks: sender, SSRC, kind, next sequence number.
    senders: Vec<(RTCRtpSenderId, u32, RtpCodecKind, u16)>,
    /// Remote tracks by the connection's track id.
    received: HashMap<String, Received>,
    errors: Vec<(ErrorCode, String)>,
    keyframe_requests: usize,
    disconnected: bool,
    /// Audio level to send (0 loudest, 127 silence).
    level: u8,
    /// Not answering the network any more.
    vanished: bool,
    /// Offers from the room are held here instead of answered (to make offers cross).
    hold_offers: bool,
    held: Vec<String>,
}

struct World {
    now: Instant,
    room: MediaRoom,
    clients: BTreeMap<ParticipantId, Client>,
    /// The room's transport address per participant.
    transports: HashMap<SocketAddr, ParticipantId>,
    net: BinaryHeap<InFlight>,
    order: u64,
    rng: StdRng,
    conditions: Conditions,
    speaker: Option<ParticipantId>,
    closed_transports: Vec<ParticipantId>,
}

fn client_pc(addr: SocketAddr, now: Instant) -> RTCPeerConnection {
    let mut engine = MediaEngine::default();
    codecs::register(&mut engine).unwrap();
    engine
        .register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: AUDIO_LEVEL.into(),
            },
            RtpCodecKind::Audio,
            None,
        )
        .unwrap();
    let registry = register_default_interceptors(Registry::new(), &mut engine)
        .unwrap()
        .with(
            Slot::from(rtcp::pli::SLOT),
            rtcp::pli::KeyframeRequests::default(),
        );
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .build(now)
        .unwrap();
    pc.add_local_candidate(host_candidate(addr).unwrap())
        .unwrap();
    pc
}

/// A payload that says whose packet it is and which: publisher's SSRC and sequence number,
/// then filler derived from both, so a receiver can check every byte.
fn payload(ssrc: u32, seq: u16, len: usize) -> Bytes {
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&ssrc.to_be_bytes());
    b.extend_from_slice(&u32::from(seq).to_be_bytes());
    while b.len() < len {
        b.push((b.len() as u32 ^ ssrc ^ u32::from(seq)) as u8);
    }
    Bytes::from(b)
}

fn payload_ok(p: &[u8]) -> Option<u32> {
    if p.len() < 8 {
        return None;
    }
    let ssrc = u32::from_be_bytes(p[0..4].try_into().ok()?);
    let seq = u32::from_be_bytes(p[4..8].try_into().ok()?);
    let ok = p
        .iter()
        .enumerate()
        .skip(8)
        .all(|(i, &b)| b == (i as u32 ^ ssrc ^ seq) as u8);
    ok.then_some(seq)
}

impl World {
    fn new(seed: u64, conditions: Conditions) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
        World {
            now: Instant::now(),
            room: MediaRoom::new(),
            clients: BTreeMap::new(),
            transports: HashMap::new(),
            net: BinaryHeap::new(),
            order: 0,
            rng: StdRng::seed_from_u64(seed),
            conditions,
            speaker: None,
            closed_transports: Vec::new(),
        }
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, data: BytesMut) {
        let c = self.conditions;
        if self.rng.random_bool(c.loss) {
            return;
        }
        let jitter = if c.jitter.is_zero() {
            Duration::ZERO
        } else {
            c.jitter.mul_f64(self.rng.random::<f64>())
        };
        self.order += 1;
        self.net.push(InFlight {
            at: self.now + c.delay + jitter,
            order: self.order,
            from,
            to,
            data,
        });
    }

    /// A participant joins and offers (to send audio and video if `sends`).
    fn join(&mut self, pid: ParticipantId, sends: bool) {
        self.join_with(pid, sends, true);
    }

    fn join_with(&mut self, pid: ParticipantId, sends: bool, may_publish: bool) {
        let addr: SocketAddr = format!("10.0.1.{pid}:5000").parse().unwrap();
        let mut pc = client_pc(addr, self.now);
        let mut senders = Vec::new();
        if sends {
            for (kind, codec) in [
                (RtpCodecKind::Audio, "audio/opus"),
                (RtpCodecKind::Video, "video/VP9"),
            ] {
                let ssrc = 1000 * pid as u32 + kind as u32;
                let codec = if codec == "audio/opus" {
                    rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
                        mime_type: codec.into(),
                        clock_rate: 48000,
                        channels: 2,
                        sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
                        rtcp_feedback: Vec::new(),
                    }
                } else {
                    rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
                        mime_type: codec.into(),
                        clock_rate: 90000,
                        channels: 0,
                        sdp_fmtp_line: "profile-id=0".into(),
                        rtcp_feedback: Vec::new(),
                    }
                };
                let track = MediaStreamTrack::new(
                    format!("stream-{pid}"),
                    format!("{pid}-{kind}"),
                    format!("{kind}"),
                    kind,
                    vec![RTCRtpEncodingParameters {
                        rtp_coding_parameters: RTCRtpCodingParameters {
                            ssrc: Some(ssrc),
                            ..Default::default()
                        },
                        codec,
                        ..Default::default()
                    }],
                );
                let sender = pc.add_track(track).unwrap();
                senders.push((sender, ssrc, kind, 1u16));
            }
        }
        if !sends {
            // A listener offers to receive, so the connection has media sections to set up.
            for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
                let init = RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    streams: Vec::new(),
                    send_encodings: Vec::new(),
                };
                pc.add_transceiver_from_kind(kind, Some(init)).unwrap();
            }
        }
        let offer = pc.create_offer(None).unwrap();
        pc.set_local_description(self.now, offer.clone()).unwrap();
        self.clients.insert(
            pid,
            Client {
                pc,
                addr,
                senders,
                received: HashMap::new(),
                errors: Vec::new(),
                keyframe_requests: 0,
                disconnected: false,
                level: 127,
                vanished: false,
                hold_offers: false,
                held: Vec::new(),
            },
        );
        self.room.handle_input(
            self.now,
            Input::Joined {
                participant: pid,
                may_publish,
            },
        );
        self.room.handle_input(
            self.now,
            Input::Signal {
                participant: pid,
                signal: MediaSignal::Offer(offer.sdp),
            },
        );
    }

    /// The participant offers again (with what changed since its last offer).
    fn reoffer(&mut self, pid: ParticipantId) {
        let c = self.clients.get_mut(&pid).unwrap();
        let offer = c.pc.create_offer(None).unwrap();
        c.pc.set_local_description(self.now, offer.clone()).unwrap();
        self.room.handle_input(
            self.now,
            Input::Signal {
                participant: pid,
                signal: MediaSignal::Offer(offer.sdp),
            },
        );
    }

    /// The participant stops its video track and offers again.
    fn stop_video(&mut self, pid: ParticipantId) {
        let c = self.clients.get_mut(&pid).unwrap();
        let i = c
            .senders
            .iter()
            .position(|s| s.2 == RtpCodecKind::Video)
            .unwrap();
        let (sender, ..) = c.senders.remove(i);
        c.pc.remove_track(sender).unwrap();
        self.reoffer(pid);
    }

    fn room_outputs(&mut self) {
        while let Some(out) = self.room.poll_output() {
            match out {
                Output::Transmit {
                    local,
                    remote,
                    data,
                    ..
                } => self.send(local, remote, data),
                Output::OpenTransport { participant } => {
                    let local: SocketAddr = format!("192.0.2.1:{}", 10_000 + participant)
                        .parse()
                        .unwrap();
                    self.transports.insert(local, participant);
                    let transport = Transport {
                        local,
                        ice_ufrag: format!("sfu{participant}ufragxxxxxx"),
                        ice_pwd: format!("sfu{participant}passwordpasswordpasswordxx"),
                    };
                    self.room.handle_input(
                        self.now,
                        Input::TransportOpened {
                            participant,
                            transport,
                        },
                    );
                }
                Output::CloseTransport { participant } => {
                    self.closed_transports.push(participant);
                    self.transports.retain(|_, p| *p != participant);
                }
                Output::Signal {
                    participant,
                    signal,
                } => {
                    let now = self.now;
                    let Some(c) = self.clients.get_mut(&participant) else {
                        continue;
                    };
                    match signal {
                        MediaSignal::Answer(sdp) => {
                            c.pc.set_remote_description(
                                now,
                                RTCSessionDescription::answer(sdp).unwrap(),
                            )
                            .unwrap()
                        }
                        MediaSignal::Offer(sdp) if c.hold_offers => c.held.push(sdp),
                        MediaSignal::Offer(sdp) => {
                            c.pc.set_remote_description(
                                now,
                                RTCSessionDescription::offer(sdp).unwrap(),
                            )
                            .unwrap();
                            let answer = c.pc.create_answer(None).unwrap();
                            c.pc.set_local_description(now, answer.clone()).unwrap();
                            self.room.handle_input(
                                now,
                                Input::Signal {
                                    participant,
                                    signal: MediaSignal::Answer(answer.sdp),
                                },
                            );
                        }
                        _ => {}
                    }
                }
                Output::Error {
                    participant,
                    code,
                    message,
                } => {
                    if let Some(c) = self.clients.get_mut(&participant) {
                        c.errors.push((code, message));
                    }
                }
                Output::Disconnect { participant, .. } => {
                    if let Some(c) = self.clients.get_mut(&participant) {
                        c.disconnected = true;
                    }
                }
                Output::ActiveSpeaker { participant } => self.speaker = participant,
            }
        }
    }

    /// Everything the clients have: datagrams out, events, packets in.
    fn clients(&mut self) {
        let mut out = Vec::new();
        for c in self.clients.values_mut() {
            while let Some(d) = c.pc.poll_write() {
                if !c.vanished {
                    out.push((c.addr, d.transport.peer_addr, d.message));
                }
            }
            while let Some(e) = c.pc.poll_event() {
                if let RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) = e {
                    let r = c.received.entry(init.track_id.clone()).or_default();
                    r.publisher = init.stream_ids.first().cloned().unwrap_or_default();
                }
            }
            while let Some(m) = c.pc.poll_read() {
                match m.message {
                    RTCMessage::RtpPacket(track, p) => {
                        let r = c.received.entry(track).or_default();
                        r.packets += 1;
                        match payload_ok(&p.payload) {
                            Some(seq) => {
                                r.seen.insert(seq);
                            }
                            None => r.corrupt += 1,
                        }
                    }
                    RTCMessage::RtcpPacket(_, packets) => {
                        c.keyframe_requests += rtcp::pli::keyframe_requests(&packets).len();
                    }
                    _ => {}
                }
            }
        }
        for (from, to, data) in out {
            self.send(from, to, data);
        }
    }

    fn deliver(&mut self) {
        while self.net.peek().is_some_and(|d| d.at <= self.now) {
            let d = self.net.pop().unwrap();
            if let Some(&participant) = self.transports.get(&d.to) {
                self.room.handle_input(
                    self.now,
                    Input::Datagram {
                        participant,
                        remote: d.from,
                        data: d.data,
                    },
                );
            } else if let Some(c) = self.clients.values_mut().find(|c| c.addr == d.to) {
                if c.vanished {
                    continue;
                }
                let _ = c.pc.handle_read(TaggedBytesMut {
                    now: self.now,
                    transport: TransportContext {
                        local_addr: d.to,
                        peer_addr: d.from,
                        ecn: None,
                        transport_protocol: TransportProtocol::UDP,
                    },
                    message: d.data,
                });
            }
        }
    }

    /// Each publishing client sends one audio packet per 20 ms and a 3-packet video frame per
    /// 40 ms.
    fn media(&mut self, tick: u64) {
        let now = self.now;
        for c in self.clients.values_mut() {
            if c.vanished {
                continue;
            }
            let level = c.level;
            for (sender, ssrc, kind, seq) in c.senders.iter_mut() {
                let (every, packets, len) = match kind {
                    RtpCodecKind::Audio => (20, 1, 160),
                    _ => (40, 3, 1100),
                };
                if !tick.is_multiple_of(every) {
                    continue;
                }
                let Some(mut s) = c.pc.rtp_sender(*sender) else {
                    continue;
                };
                let params = s.get_parameters().rtp_parameters.clone();
                let Some(pt) = params.codecs.first().map(|c| c.payload_type) else {
                    continue;
                };
                let level_id = params
                    .header_extensions
                    .iter()
                    .find(|h| h.uri == AUDIO_LEVEL)
                    .map(|h| h.id as u8);
                for i in 0..packets {
                    let mut header = Header {
                        version: 2,
                        payload_type: pt,
                        sequence_number: *seq,
                        timestamp: (tick * 90) as u32,
                        ssrc: *ssrc,
                        marker: i + 1 == packets,
                        ..Default::default()
                    };
                    if let (RtpCodecKind::Audio, Some(id)) = (*kind, level_id) {
                        header.extension = true;
                        header.extension_profile = 0xBEDE;
                        header.extensions = vec![Extension {
                            id,
                            payload: Bytes::copy_from_slice(&[level]),
                        }];
                    }
                    let packet = rtc::rtp::packet::Packet {
                        header,
                        payload: payload(*ssrc, *seq, len),
                    };
                    let _ = s.write_rtp(now, packet);
                    *seq = seq.wrapping_add(1);
                }
            }
        }
    }

    fn timers(&mut self) {
        if self.room.poll_timeout().is_some_and(|t| t <= self.now) {
            self.room.handle_input(self.now, Input::Timeout);
        }
        let now = self.now;
        for c in self.clients.values_mut() {
            if c.pc.poll_timeout().is_some_and(|t| t <= now) {
                let _ = c.pc.handle_timeout(now);
            }
        }
    }

    /// Runs the world for `d`, in 1 ms steps, with media flowing if `media`.
    fn run(&mut self, d: Duration, media: bool) {
        let steps = d.as_millis() as u64;
        for tick in 0..steps {
            self.room_outputs();
            self.clients();
            self.deliver();
            self.room_outputs();
            self.clients();
            if media {
                self.media(tick);
            }
            self.timers();
            self.now += Duration::from_millis(1);
        }
        self.room_outputs();
        self.clients();
    }

    /// Tracks `pid` receives, by publisher: (packets, distinct original packets, corrupt).
    fn received(&self, pid: ParticipantId) -> BTreeMap<String, Vec<(usize, usize, usize)>> {
        let mut by: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for r in self.clients[&pid].received.values() {
            by.entry(r.publisher.clone())
                .or_default()
                .push((r.packets, r.seen.len(), r.corrupt));
        }
        by
    }
}

#[test]
fn participants_receive_every_track_of_the_others_byte_for_byte() {
    let mut w = World::new(1, CLEAN);
    w.join(1, true);
    w.join(2, true);
    w.run(Duration::from_millis(1500), false);
    w.join(3, true);
    w.run(Duration::from_secs(3), true);
    for pid in 1..=3u64 {
        let got = w.received(pid);
        let others: Vec<String> = (1..=3u64)
            .filter(|&q| q != pid)
            .map(|q| q.to_string())
            .collect();
        assert_eq!(
            got.keys().cloned().collect::<Vec<_>>(),
            others,
            "participant {pid}: {got:?}"
        );
        for (publisher, tracks) in &got {
            assert_eq!(tracks.len(), 2, "{pid} gets audio and video of {publisher}");
            for &(packets, distinct, corrupt) in tracks {
                assert_eq!(corrupt, 0, "every byte as sent");
                assert!(packets > 50, "{pid} from {publisher}: {packets} packets");
                assert_eq!(packets, distinct, "no duplicates on a clean network");
            }
        }
        assert!(
            w.clients[&pid].errors.is_empty(),
            "{:?}",
            w.clients[&pid].errors
        );
    }
    let c = w.room.counters();
    assert!(c.packets_out >= 2 * c.packets_in - 200, "{c:?}");
}

#[test]
fn a_new_subscriber_makes_the_publisher_send_a_key_frame() {
    let mut w = World::new(2, CLEAN);
    w.join(1, true);
    w.run(Duration::from_millis(500), true);
    assert_eq!(w.clients[&1].keyframe_requests, 0, "nobody to send to yet");
    w.join(2, false);
    w.run(Duration::from_secs(2), true);
    assert!(w.clients[&1].keyframe_requests >= 1);
    assert!(w.room.counters().keyframe_requests_sent >= 1);
}

#[test]
fn a_stopped_track_leaves_every_subscriber_at_once() {
    let mut w = World::new(3, CLEAN);
    w.join(1, true);
    w.join(2, false);
    w.join(3, false);
    w.run(Duration::from_secs(2), true);
    let kinds = |w: &World| -> Vec<(MediaKind, usize)> {
        w.room
            .published()
            .into_iter()
            .map(|(_, k, subs)| (k, subs.len()))
            .collect()
    };
    assert_eq!(
        kinds(&w),
        vec![(MediaKind::Audio, 2), (MediaKind::Video, 2)]
    );
    w.stop_video(1);
    w.run(Duration::from_millis(200), true);
    assert_eq!(
        kinds(&w),
        vec![(MediaKind::Audio, 2)],
        "the video is gone for both"
    );
    let before: Vec<usize> = [2u64, 3]
        .iter()
        .map(|&p| w.received(p)["1"].iter().map(|t| t.0).sum())
        .collect();
    w.run(Duration::from_secs(1), true);
    let after: Vec<usize> = [2u64, 3]
        .iter()
        .map(|&p| w.received(p)["1"].iter().map(|t| t.0).sum())
        .collect();
    for (b, a) in before.iter().zip(&after) {
        assert!(
            (45..=55).contains(&(a - b)),
            "only audio flows on: {b} -> {a}"
        );
    }
}

#[test]
fn a_participant_whose_token_forbids_publishing_is_told_and_its_tracks_go_nowhere() {
    let mut w = World::new(4, CLEAN);
    w.join(1, true);
    // Its token says listener, yet it offers and sends audio and video.
    w.join_with(2, true, false);
    w.run(Duration::from_secs(2), true);
    let errors = &w.clients[&2].errors;
    assert_eq!(
        errors.len(),
        2,
        "once per track, not per packet: {errors:?}"
    );
    assert!(
        errors
            .iter()
            .all(|(c, _)| *c == ErrorCode::PublishNotAllowed)
    );
    assert!(w.received(1).is_empty(), "nothing of 2 reaches 1");
    assert_eq!(w.received(2).len(), 1, "2 still receives 1");
    assert!(w.room.published().iter().all(|(p, ..)| *p == 1));
}

#[test]
fn loss_reordering_and_jitter_on_every_link_are_repaired_by_nack_on_both_hops() {
    let lossy = Conditions {
        loss: 0.03,
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(15),
    };
    let mut w = World::new(6, lossy);
    w.join(1, true);
    w.join(2, false);
    w.run(Duration::from_secs(2), false);
    w.run(Duration::from_secs(6), true);
    let video = w.received(2)["1"]
        .iter()
        .map(|&(_, distinct, corrupt)| (distinct, corrupt))
        .max()
        .unwrap();
    let sent = w.clients[&1]
        .senders
        .iter()
        .find(|s| s.2 == RtpCodecKind::Video)
        .map(|s| usize::from(s.3) - 1)
        .unwrap();
    assert_eq!(video.1, 0);
    // The first packets went out before the subscriber was there; of the rest nearly all
    // arrive though each hop loses 3% (~6% end to end without repair).
    assert!(
        video.0 as f64 >= 0.97 * (sent as f64 - 30.0),
        "{} of {sent} video packets",
        video.0
    );
}

#[test]
fn the_loudest_participant_becomes_the_active_speaker() {
    let mut w = World::new(7, CLEAN);
    w.join(1, true);
    w.join(2, true);
    w.run(Duration::from_secs(1), true);
    assert_eq!(w.speaker, None);
    w.clients.get_mut(&2).unwrap().level = 20;
    w.run(Duration::from_secs(2), true);
    assert_eq!(w.speaker, Some(2));
}

#[test]
fn a_participant_whose_network_vanishes_is_disconnected_and_its_tracks_end() {
    let mut w = World::new(8, CLEAN);
    w.join(1, true);
    w.join(2, true);
    w.run(Duration::from_secs(2), true);
    w.clients.get_mut(&1).unwrap().vanished = true;
    w.run(Duration::from_secs(40), true);
    assert!(w.clients[&1].disconnected, "told, and its signaling ends");
    assert!(w.closed_transports.contains(&1));
    assert!(w.room.published().iter().all(|(p, ..)| *p == 2));
}

#[test]
fn an_offer_that_cannot_be_answered_takes_no_transport() {
    let mut w = World::new(9, CLEAN);
    w.room.handle_input(
        w.now,
        Input::Joined {
            participant: 1,
            may_publish: true,
        },
    );
    w.room.handle_input(
        w.now,
        Input::Signal {
            participant: 1,
            signal: MediaSignal::Offer("v=0\r\nnot sdp".into()),
        },
    );
    let outs: Vec<Output> = std::iter::from_fn(|| w.room.poll_output()).collect();
    assert!(
        matches!(
            &outs[..],
            [Output::Error {
                code: ErrorCode::InvalidSdp,
                ..
            }]
        ),
        "{outs:?}"
    );
}

#[test]
fn an_answer_without_an_offer_is_refused() {
    let mut w = World::new(10, CLEAN);
    w.join(1, true);
    w.run(Duration::from_millis(300), false);
    w.room.handle_input(
        w.now,
        Input::Signal {
            participant: 1,
            signal: MediaSignal::Answer("v=0".into()),
        },
    );
    w.run(Duration::from_millis(10), false);
    assert!(
        w.clients[&1]
            .errors
            .iter()
            .any(|(c, m)| *c == ErrorCode::InvalidSdp && m.contains("without an offer"))
    );
}

#[test]
fn an_offer_that_crosses_the_rooms_offer_is_answered_and_the_room_offers_again() {
    let mut w = World::new(11, CLEAN);
    w.join(2, false);
    w.run(Duration::from_millis(500), false);
    w.clients.get_mut(&2).unwrap().hold_offers = true;
    w.join(1, true);
    w.run(Duration::from_millis(500), true);
    assert_eq!(w.clients[&2].held.len(), 1, "the room offered 1's tracks");
    // 2 ignores that offer and sends one of its own: the offers cross.
    w.clients.get_mut(&2).unwrap().hold_offers = false;
    w.reoffer(2);
    w.run(Duration::from_secs(2), true);
    assert!(
        w.clients[&2].errors.is_empty(),
        "{:?}",
        w.clients[&2].errors
    );
    let got = w.received(2);
    assert_eq!(got["1"].len(), 2, "audio and video of 1 arrive: {got:?}");
    assert!(got["1"].iter().all(|t| t.0 > 20));
}
