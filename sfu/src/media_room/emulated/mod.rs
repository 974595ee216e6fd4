//! An emulated network with a fake clock for the room's tests and benchmarks: real WebRTC
//! clients (`rtc` peer connections, the bots' engine) and one [`MediaRoom`], with loss, delay
//! and jitter (so reordering) from a seeded generator; deterministic and fast, no sockets.
//! The links are `network`'s, the clients `client`'s; the world here moves datagrams
//! between them and the room on its clock.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use media_packet::vp9::Descriptor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp::header::{Extension, Header};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use signaling_protocol::{MediaSignal, ParticipantId, VideoWant};

use super::{
    Input, MediaRoom, Output, Policy, Transport, codecs, host_candidate, one_stream_track,
};
use rtc::rtp_transceiver::{
    RTCRtpTransceiverDirection, RTCRtpTransceiverId, RTCRtpTransceiverInit,
};

mod client;
mod network;

use client::{AUDIO_LEVEL, payload, payload_ok, payload_publisher};
pub use client::{Client, Received, VideoSource, client_pc};
use network::InFlight;
pub use network::{Bottleneck, CLEAN, Conditions, LOSSY};

pub struct World {
    pub now: Instant,
    pub room: MediaRoom,
    pub clients: BTreeMap<ParticipantId, Client>,
    /// The room's transport address per participant.
    transports: HashMap<SocketAddr, ParticipantId>,
    net: BinaryHeap<InFlight>,
    order: u64,
    rng: StdRng,
    pub conditions: Conditions,
    /// Links that carry only so much, by the address they lead to.
    pub bottlenecks: HashMap<SocketAddr, Bottleneck>,
    pub speaker: Option<ParticipantId>,
    pub closed_transports: Vec<ParticipantId>,
    /// CPU time spent inside the room's `handle_input` (the clients' work excluded).
    pub room_time: Duration,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("room", &self.room)
            .field("clients", &self.clients.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
impl World {
    /// A world whose room forwards every audio stream (the tests of forwarding as such).
    pub fn new(seed: u64, conditions: Conditions) -> Self {
        World::with_policy(
            seed,
            conditions,
            Policy {
                loudest_audio: 0,
                last_n: 0,
                ..Policy::default()
            },
        )
    }

    pub fn with_policy(seed: u64, conditions: Conditions, policy: Policy) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
        World {
            now: Instant::now(),
            room: MediaRoom::with_policy(seed, policy),
            clients: BTreeMap::new(),
            transports: HashMap::new(),
            net: BinaryHeap::new(),
            order: 0,
            rng: StdRng::seed_from_u64(seed),
            conditions,
            bottlenecks: HashMap::new(),
            speaker: None,
            closed_transports: Vec::new(),
            room_time: Duration::ZERO,
        }
    }

    /// One input to the room, timed.
    pub fn input(&mut self, input: Input) {
        self.inputs(std::iter::once(input));
    }

    /// Inputs to the room in one batch, timed.
    pub fn inputs(&mut self, inputs: impl IntoIterator<Item = Input>) {
        let start = Instant::now();
        self.room.handle_inputs(self.now, inputs);
        self.room_time += start.elapsed();
    }

    pub fn send(&mut self, from: SocketAddr, to: SocketAddr, data: BytesMut) {
        let c = self.conditions;
        if self.rng.random_bool(c.loss) {
            return;
        }
        let jitter = if c.jitter.is_zero() {
            Duration::ZERO
        } else {
            c.jitter.mul_f64(self.rng.random::<f64>())
        };
        let sent = match self.bottlenecks.get_mut(&to) {
            Some(b) => match b.pass(self.now, data.len()) {
                Some(at) => at,
                None => return,
            },
            None => self.now,
        };
        self.order += 1;
        self.net.push(InFlight {
            at: sent + c.delay + jitter,
            order: self.order,
            from,
            to,
            data,
        });
    }

    /// What reaches `pid` goes through a link of `bits_per_second` with 200 ms of queue
    /// (`None`: no limit any more).
    pub fn limit(&mut self, pid: ParticipantId, bits_per_second: Option<u64>) {
        let addr = self.clients[&pid].addr;
        match bits_per_second {
            Some(bps) => {
                self.bottlenecks
                    .insert(addr, Bottleneck::new(bps, Duration::from_millis(200)));
            }
            None => {
                self.bottlenecks.remove(&addr);
            }
        }
    }

    /// A participant joins and offers (to send audio and video if `sends`).
    pub fn join(&mut self, pid: ParticipantId, sends: bool) {
        self.join_with(pid, sends, true);
    }

    /// A participant joins and sends audio and three spatial and three temporal layers of
    /// video.
    pub fn join_svc(&mut self, pid: ParticipantId) {
        self.join_with(pid, true, true);
        self.clients.get_mut(&pid).unwrap().video.svc = true;
    }

    /// `pid` forgets what it received so far (but not the last sequence number of each track,
    /// so that a break across this moment still counts).
    pub fn forget_received(&mut self, pid: ParticipantId) {
        for r in self.clients.get_mut(&pid).unwrap().received.values_mut() {
            *r = Received {
                publisher: std::mem::take(&mut r.publisher),
                stream: std::mem::take(&mut r.stream),
                video: r.video,
                last_seq: r.last_seq,
                ..Received::default()
            };
        }
    }

    /// Audio packets `pid` received of `publisher` (0 if none).
    pub fn audio_from(&self, pid: ParticipantId, publisher: ParticipantId) -> usize {
        self.clients[&pid]
            .received
            .values()
            .filter(|r| !r.video && r.publisher == publisher.to_string())
            .map(|r| r.packets)
            .sum()
    }

    /// `pid` shows each of `streams` in a tile `height` pixels tall and takes at most `last_n`
    /// videos at a time.
    pub fn show(&mut self, pid: ParticipantId, streams: &[&str], height: u16, last_n: Option<u16>) {
        let videos = streams
            .iter()
            .map(|s| VideoWant {
                stream: (*s).into(),
                height,
            })
            .collect();
        self.input(Input::Signal {
            participant: pid,
            signal: MediaSignal::VideoWants { videos, last_n },
        });
    }

    /// What `pid` received of `publisher`'s video.
    pub fn video_from(&self, pid: ParticipantId, publisher: ParticipantId) -> &Received {
        self.clients[&pid]
            .received
            .values()
            .find(|r| r.video && r.publisher == publisher.to_string())
            .expect("a video track")
    }

    pub fn join_with(&mut self, pid: ParticipantId, sends: bool, may_publish: bool) {
        let addr: SocketAddr = format!("10.0.1.{pid}:5000").parse().unwrap();
        let mut pc = client_pc(addr, self.now);
        let mut senders = Vec::new();
        if sends {
            for (kind, codec) in [
                (RtpCodecKind::Audio, codecs::opus()),
                (RtpCodecKind::Video, codecs::vp9(0)),
            ] {
                let ssrc = 1000 * pid as u32 + kind as u32;
                let track = one_stream_track(
                    format!("stream-{pid}"),
                    format!("{pid}-{kind}"),
                    format!("{kind}"),
                    kind,
                    codec,
                    ssrc,
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
                video: VideoSource {
                    key_pending: true,
                    ..VideoSource::default()
                },
                received: HashMap::new(),
                errors: Vec::new(),
                keyframe_requests: 0,
                disconnected: false,
                level: 127,
                vanished: false,
                hold_offers: false,
                held: Vec::new(),
                paused: Vec::new(),
                streams: Vec::new(),
                sections: HashMap::new(),
                mids: HashMap::new(),
                last_named: HashMap::new(),
            },
        );
        self.input(Input::Joined {
            participant: pid,
            may_publish,
        });
        self.input(Input::Signal {
            participant: pid,
            signal: MediaSignal::Offer(offer.sdp),
        });
    }

    /// The participant offers again (with what changed since its last offer).
    pub fn reoffer(&mut self, pid: ParticipantId) {
        let c = self.clients.get_mut(&pid).unwrap();
        let offer = c.pc.create_offer(None).unwrap();
        c.pc.set_local_description(self.now, offer.clone()).unwrap();
        self.input(Input::Signal {
            participant: pid,
            signal: MediaSignal::Offer(offer.sdp),
        });
    }

    /// The participant's network comes back as another (`addr`) and it restarts ICE: new
    /// credentials and a new candidate, offered to the room.
    pub fn restart_ice_from(&mut self, pid: ParticipantId, addr: SocketAddr) {
        let c = self.clients.get_mut(&pid).unwrap();
        c.vanished = false;
        c.addr = addr;
        c.pc.restart_ice();
        c.pc.add_local_candidate(host_candidate(addr).unwrap())
            .unwrap();
        self.reoffer(pid);
    }

    /// The participant leaves (its signaling connection closes).
    pub fn leave(&mut self, pid: ParticipantId) {
        self.clients.remove(&pid);
        self.input(Input::Left { participant: pid });
    }

    /// Packets `pid` received so far from each publisher (by participant id).
    pub fn packets_from(&self, pid: ParticipantId) -> BTreeMap<String, usize> {
        self.received(pid)
            .into_iter()
            .map(|(publisher, tracks)| (publisher, tracks.iter().map(|t| t.0).sum()))
            .collect()
    }

    /// The participant stops its video track and offers again.
    pub fn stop_video(&mut self, pid: ParticipantId) {
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

    pub fn room_outputs(&mut self) {
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
                        locals: vec![local],
                        ice_ufrag: format!("sfu{participant}ufragxxxxxx"),
                        ice_pwd: format!("sfu{participant}passwordpasswordpasswordxx"),
                    };
                    self.input(Input::TransportOpened {
                        participant,
                        transport,
                    });
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
                        MediaSignal::SendLayers { spatial_layers, .. } => {
                            // A new set of layers starts at a key picture.
                            c.video.told.push(spatial_layers);
                            c.video.key_pending = true;
                        }
                        MediaSignal::PausedVideos(paused) => c.paused = paused,
                        MediaSignal::VideoStreams(streams) => c.streams = streams,
                        MediaSignal::VideoSections(sections) => c.map(sections),
                        MediaSignal::Offer(sdp) if c.hold_offers => c.held.push(sdp),
                        MediaSignal::Offer(sdp) => {
                            c.pc.set_remote_description(
                                now,
                                RTCSessionDescription::offer(sdp).unwrap(),
                            )
                            .unwrap();
                            let answer = c.pc.create_answer(None).unwrap();
                            c.pc.set_local_description(now, answer.clone()).unwrap();
                            self.input(Input::Signal {
                                participant,
                                signal: MediaSignal::Answer(answer.sdp),
                            });
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
    pub fn clients(&mut self) {
        let mut out = Vec::new();
        for c in self.clients.values_mut() {
            while let Some(d) = c.pc.poll_write() {
                if !c.vanished {
                    out.push((c.addr, d.transport.peer_addr, d.message));
                }
            }
            while let Some(e) = c.pc.poll_event() {
                if let RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) = e {
                    let video =
                        c.pc.rtp_receiver(init.receiver_id)
                            .is_some_and(|r| r.track().kind() == RtpCodecKind::Video);
                    let mid =
                        c.pc.rtp_transceiver(RTCRtpTransceiverId::from(init.receiver_id))
                            .and_then(|t| t.mid().clone());
                    if let Some(mid) = mid {
                        c.mids.insert(init.track_id.clone(), mid);
                    }
                    let r = c.received.entry(init.track_id.clone()).or_default();
                    r.video = video;
                    // Sections, not publishers' streams: "audio-<n>", "video-<n>".
                    r.stream = init.stream_ids.first().cloned().unwrap_or_default();
                }
            }
            while let Some(m) = c.pc.poll_read() {
                match m.message {
                    RTCMessage::RtpPacket(track, p) => {
                        // A section carries whoever the room puts in it: each packet counts
                        // for the publisher its payload names (as a browser names a frame by
                        // the key that opens it), under the section's track and that name.
                        let Some((stream, video)) =
                            c.received.get(&track).map(|r| (r.stream.clone(), r.video))
                        else {
                            continue;
                        };
                        let body = if video {
                            Descriptor::read(&p.payload)
                                .ok()
                                .map(|(_, at)| &p.payload[at..])
                        } else {
                            Some(&p.payload[..])
                        };
                        let named = body.and_then(payload_publisher);
                        let mislabelled = video && named.is_some_and(|n| !c.mapped_to(&track, n));
                        // Padding goes on with the numbers of the stream it follows.
                        let named = match named {
                            Some(n) => {
                                c.last_named.insert(track.clone(), n);
                                Some(n)
                            }
                            None => c.last_named.get(&track).copied(),
                        };
                        let key = match named {
                            Some(publisher) => format!("{track}/{publisher}"),
                            None => track,
                        };
                        let r = c.received.entry(key.clone()).or_default();
                        r.stream = stream;
                        r.video = video;
                        if named.is_some() {
                            r.publisher = key.rsplit('/').next().unwrap_or_default().to_owned();
                        }
                        r.mislabelled += usize::from(mislabelled);
                        if p.payload.is_empty() {
                            // Padding (a probe's): numbers without media.
                            r.padding += 1;
                            r.last_seq = Some(p.header.sequence_number);
                            continue;
                        }
                        r.packets += 1;
                        let mut payload = &p.payload[..];
                        if r.video {
                            match Descriptor::read(payload) {
                                Ok((d, at)) => {
                                    payload = &payload[at..];
                                    *r.layers.entry((d.spatial(), d.temporal())).or_default() += 1;
                                    if p.header.marker {
                                        *r.markers.entry(d.spatial()).or_default() += 1;
                                    }
                                }
                                Err(_) => payload = &[],
                            }
                            let seq = p.header.sequence_number;
                            if r.last_seq.is_some_and(|l| l.wrapping_add(1) != seq) {
                                r.sequence_breaks += 1;
                            }
                            r.last_seq = Some(seq);
                        }
                        match payload_ok(payload) {
                            Some(seq) => {
                                r.seen.insert(seq);
                            }
                            None => r.corrupt += 1,
                        }
                    }
                    RTCMessage::RtcpPacket(_, packets) => {
                        let asked = media_packet::keyframe::requested(&packets).len();
                        c.keyframe_requests += asked;
                        c.video.key_pending |= asked > 0;
                    }
                    _ => {}
                }
            }
        }
        for (from, to, data) in out {
            self.send(from, to, data);
        }
    }

    pub fn deliver(&mut self) {
        // The room takes what reached it this millisecond in one batch, as the driver hands
        // it a read's datagrams.
        let mut for_room = Vec::new();
        while self.net.peek().is_some_and(|d| d.at <= self.now) {
            let d = self.net.pop().unwrap();
            if let Some(&participant) = self.transports.get(&d.to) {
                for_room.push(Input::Datagram {
                    participant,
                    local: d.to,
                    remote: d.from,
                    data: d.data,
                });
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
        if !for_room.is_empty() {
            self.inputs(for_room);
        }
    }

    /// Each publishing client sends one audio packet per 20 ms and a video picture per 40 ms
    /// ([`VideoSource`]).
    pub fn media(&mut self, tick: u64) {
        let now = self.now;
        for c in self.clients.values_mut() {
            if c.vanished {
                continue;
            }
            let level = c.level;
            for (sender, ssrc, kind, seq) in c.senders.iter_mut() {
                let every = match kind {
                    RtpCodecKind::Audio => 20,
                    _ => 40,
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
                // (descriptor to put first, if video; the packet's payload length).
                let mut packets: Vec<(Option<Descriptor>, usize)> = Vec::new();
                if *kind == RtpCodecKind::Audio {
                    packets.push((None, 160));
                } else {
                    for (d, n, len) in c.video.next_picture() {
                        for i in 0..n {
                            let mut d = d.clone();
                            d.begins = i == 0;
                            d.ends = i + 1 == n;
                            if i > 0 {
                                d.scalability = None;
                            }
                            packets.push((Some(d), len));
                        }
                    }
                }
                let Some(last) = packets.len().checked_sub(1) else {
                    continue;
                };
                for (i, (descriptor, len)) in packets.into_iter().enumerate() {
                    let mut header = Header {
                        version: 2,
                        payload_type: pt,
                        sequence_number: *seq,
                        timestamp: (tick * 90) as u32,
                        ssrc: *ssrc,
                        marker: i == last,
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
                    let mut bytes = Vec::with_capacity(len + 16);
                    if let Some(d) = descriptor {
                        d.write(&mut bytes).unwrap();
                    }
                    bytes.extend_from_slice(&payload(*ssrc, *seq, len));
                    let packet = rtc::rtp::packet::Packet {
                        header,
                        payload: Bytes::from(bytes),
                    };
                    let _ = s.write_rtp(now, packet);
                    *seq = seq.wrapping_add(1);
                }
            }
        }
    }

    pub fn timers(&mut self) {
        if self.room.poll_timeout().is_some_and(|t| t <= self.now) {
            self.input(Input::Timeout);
        }
        let now = self.now;
        for c in self.clients.values_mut() {
            if c.pc.poll_timeout().is_some_and(|t| t <= now) {
                let _ = c.pc.handle_timeout(now);
            }
        }
    }

    /// Runs the world for `d`, in 1 ms steps, with media flowing if `media`.
    pub fn run(&mut self, d: Duration, media: bool) {
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
    pub fn received(&self, pid: ParticipantId) -> BTreeMap<String, Vec<(usize, usize, usize)>> {
        let mut by: BTreeMap<String, Vec<_>> = BTreeMap::new();
        // (An audio section's own entry names nobody: its packets count for their publishers.)
        for r in self.clients[&pid]
            .received
            .values()
            .filter(|r| !r.publisher.is_empty())
        {
            by.entry(r.publisher.clone())
                .or_default()
                .push((r.packets, r.seen.len(), r.corrupt));
        }
        by
    }
}
