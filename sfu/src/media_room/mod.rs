//! The media room: one IO-free state machine per room (in the shape of str0m's `Rtc` and
//! quinn-proto). It owns every participant's WebRTC session, the one track table, the
//! forwarding (header rewriting and continuity), key-frame relay, the active speaker and
//! negotiation; it reads no clock and touches no socket.
//!
//! The driver feeds it [`Input`]s with the time ([`MediaRoom::handle_input`]) and carries out
//! its [`Output`]s ([`MediaRoom::poll_output`]): datagrams to send, signaling for a
//! participant, transports to open and close. [`MediaRoom::poll_timeout`] says when to call
//! again with [`Input::Timeout`]. A packet is forwarded within the call that delivers it; no
//! call waits on the network.

pub mod codecs;
pub mod emulated;
mod idle;
mod negotiation;
pub mod offer;
pub mod rewrite;
pub mod rtcp;
mod session;
pub mod speaker;
mod tracks;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RtpCodecKind};
use rtc::rtp_transceiver::{
    RTCRtpReceiverId, RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverId,
    RTCRtpTransceiverInit,
};
use rtc::sansio::Protocol;
use signaling_protocol::{ErrorCode, MediaSignal, ParticipantId, media_stream};

use idle::{IdleSection, IdleSections};
use negotiation::{Negotiation, OnOffer};
use rewrite::{END_TO_END_EXTENSIONS, Rewriter};
use rtcp::pli::KeyframeThrottle;
pub use session::{
    Session, SessionError, Transport, host_candidate, one_stream_track, rejects_all_media,
};
use speaker::ActiveSpeaker;
use tracks::{Downtrack, Published, TrackTable};
pub use tracks::{MAX_TRACKS_PER_PUBLISHER, MediaKind, TrackId};

/// How often the active speaker is re-evaluated.
const SPEAKER_TICK: Duration = Duration::from_millis(250);
/// At most one key-frame request per track per this interval reaches its publisher.
const KEYFRAME_INTERVAL: Duration = Duration::from_millis(500);

/// What the room is told.
#[derive(Debug)]
pub enum Input {
    /// A participant entered the room (through signaling).
    Joined {
        participant: ParticipantId,
        may_publish: bool,
    },
    /// A participant's signaling connection is gone.
    Left { participant: ParticipantId },
    /// An offer, answer or candidate from a participant.
    Signal {
        participant: ParticipantId,
        signal: MediaSignal,
    },
    /// The transport asked for with [`Output::OpenTransport`] is ready.
    TransportOpened {
        participant: ParticipantId,
        transport: Transport,
    },
    /// The transport could not be opened (no port free, ...).
    TransportRefused {
        participant: ParticipantId,
        code: ErrorCode,
        message: String,
    },
    /// A datagram the driver attributed to `participant`'s transport: it came from `remote`
    /// to `local` (one of the transport's addresses).
    Datagram {
        participant: ParticipantId,
        local: SocketAddr,
        remote: SocketAddr,
        data: BytesMut,
    },
    /// The time given by [`MediaRoom::poll_timeout`] has come.
    Timeout,
}

/// What the room asks of its driver.
#[derive(Debug)]
pub enum Output {
    /// Send `data` from `local` (the participant's transport) to `remote`.
    Transmit {
        participant: ParticipantId,
        local: SocketAddr,
        remote: SocketAddr,
        data: BytesMut,
    },
    /// Open a transport for the participant, answered with [`Input::TransportOpened`] or
    /// [`Input::TransportRefused`].
    OpenTransport { participant: ParticipantId },
    /// The participant's transport is no longer used.
    CloseTransport { participant: ParticipantId },
    /// Send the participant an offer or answer.
    Signal {
        participant: ParticipantId,
        signal: MediaSignal,
    },
    /// Tell the participant its media request failed.
    Error {
        participant: ParticipantId,
        code: ErrorCode,
        message: String,
    },
    /// The participant's media connection failed or closed: tell it why and end its
    /// signaling connection (it leaves; MLS removes it in the next commit).
    Disconnect {
        participant: ParticipantId,
        code: ErrorCode,
        message: String,
    },
    /// Tell everyone who the active speaker is now (`None`: nobody).
    ActiveSpeaker { participant: Option<ParticipantId> },
}

/// Counters since the room began, for /metrics and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// RTP packets received on published tracks.
    pub packets_in: u64,
    /// RTP packets handed to subscribers' connections.
    pub packets_out: u64,
    /// Their payload bytes.
    pub bytes_out: u64,
    /// PLIs sent to publishers (for new subscribers and subscribers' requests, throttled).
    pub keyframe_requests_sent: u64,
}

/// A participant's link to the room's media.
enum Link {
    /// No offer yet.
    None,
    /// Its first offer waits for a transport.
    Opening {
        offer: String,
    },
    Open(Box<Session>),
}

struct Participant {
    may_publish: bool,
    link: Link,
    negotiation: Negotiation,
    /// Tracks its connection opened that have not sent their first packet (which names the
    /// codec), by the connection's track id.
    opening: HashMap<String, OpeningTrack>,
    /// Its connection's next deadline, as last asked.
    deadline: Option<Instant>,
    /// Its connection may have datagrams to send.
    dirty: bool,
    /// Sections of its connection that sent a track now gone, for the next tracks it gets.
    idle: IdleSections,
}

#[derive(Debug, Clone)]
struct OpeningTrack {
    receiver: RTCRtpReceiverId,
    ssrc: u32,
    /// The publisher's stream it belongs to (its msid), if one that may be forwarded.
    source: Option<String>,
    /// Refused (the participant was told): its packets are dropped.
    refused: bool,
}

impl Participant {
    fn session(&mut self) -> Option<&mut Session> {
        match &mut self.link {
            Link::Open(s) => Some(s),
            _ => None,
        }
    }
}

/// One room's media.
pub struct MediaRoom {
    participants: BTreeMap<ParticipantId, Participant>,
    tracks: TrackTable,
    keyframes: KeyframeThrottle,
    speaker: ActiveSpeaker,
    next_speaker_tick: Option<Instant>,
    /// Someone joined since the active speaker was last said: say it again from then.
    speaker_news: Option<Instant>,
    outputs: VecDeque<Output>,
    counters: Counters,
    /// Someone's received tracks changed: offers may be due.
    renegotiate: bool,
}

impl std::fmt::Debug for MediaRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaRoom")
            .field("participants", &self.participants.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Default for MediaRoom {
    fn default() -> Self {
        MediaRoom::new()
    }
}

impl MediaRoom {
    pub fn new() -> Self {
        MediaRoom {
            participants: BTreeMap::new(),
            tracks: TrackTable::default(),
            keyframes: KeyframeThrottle::new(KEYFRAME_INTERVAL),
            speaker: ActiveSpeaker::default(),
            next_speaker_tick: None,
            speaker_news: None,
            outputs: VecDeque::new(),
            counters: Counters::default(),
            renegotiate: false,
        }
    }

    /// True when nobody is in the room.
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The tracks published now: (publisher, kind, subscribers receiving it).
    pub fn published(&self) -> Vec<(ParticipantId, MediaKind, Vec<ParticipantId>)> {
        self.tracks
            .iter()
            .map(|(_, t)| {
                let subs = t.downtracks.iter().map(|d| d.subscriber).collect();
                (t.publisher, t.kind, subs)
            })
            .collect()
    }

    /// How many media sections `pid`'s connection has.
    #[cfg(test)]
    fn sections(&mut self, pid: ParticipantId) -> Option<usize> {
        let s = self.participants.get_mut(&pid)?.session()?;
        Some(s.pc.get_transceivers().count())
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to call [`MediaRoom::handle_input`] with [`Input::Timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.participants
            .values()
            .filter_map(|p| p.deadline)
            .chain(self.next_speaker_tick)
            .min()
    }

    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.apply(now, input);
        self.finish(now);
    }

    /// Several inputs at `now`, such as the datagrams of one read: what they ask of each
    /// connection is flushed once, after the last, so a connection's datagrams come out
    /// together (and its pipeline is swept once, not once per input).
    pub fn handle_inputs(&mut self, now: Instant, inputs: impl IntoIterator<Item = Input>) {
        for input in inputs {
            self.apply(now, input);
        }
        self.finish(now);
    }

    fn apply(&mut self, now: Instant, input: Input) {
        match input {
            Input::Joined {
                participant,
                may_publish,
            } => {
                self.participants.entry(participant).or_insert(Participant {
                    may_publish,
                    link: Link::None,
                    negotiation: Negotiation::default(),
                    opening: HashMap::new(),
                    idle: IdleSections::default(),
                    deadline: None,
                    dirty: false,
                });
                self.next_speaker_tick.get_or_insert(now + SPEAKER_TICK);
                // A newcomer learns who speaks now a tick later (its join answered by then:
                // the room's task delivers it before it runs the media's timers), not only at
                // the next change.
                self.speaker_news.get_or_insert(now + SPEAKER_TICK);
            }
            Input::Left { participant } => self.remove(participant, now),
            Input::Signal {
                participant,
                signal,
            } => self.signal(participant, signal, now),
            Input::TransportOpened {
                participant,
                transport,
            } => self.transport_opened(participant, transport, now),
            Input::TransportRefused {
                participant,
                code,
                message,
            } => {
                if let Some(p) = self.participants.get_mut(&participant)
                    && matches!(p.link, Link::Opening { .. })
                {
                    p.link = Link::None;
                    self.refuse(participant, code, message);
                }
            }
            Input::Datagram {
                participant,
                local,
                remote,
                data,
            } => {
                if let Some(p) = self.participants.get_mut(&participant)
                    && let Some(s) = p.session()
                {
                    s.receive(now, local, remote, data);
                    self.pump(participant, now);
                }
            }
            Input::Timeout => self.timeout(now),
        }
    }

    /// What the inputs left to do: offers due, then every touched connection's datagrams.
    fn finish(&mut self, now: Instant) {
        if std::mem::take(&mut self.renegotiate) {
            self.settle(now);
        }
        self.flush(now);
    }

    fn timeout(&mut self, now: Instant) {
        let due: Vec<ParticipantId> = self
            .participants
            .iter()
            .filter(|(_, p)| p.deadline.is_some_and(|d| d <= now))
            .map(|(&pid, _)| pid)
            .collect();
        for pid in due {
            if let Some(p) = self.participants.get_mut(&pid)
                && let Some(s) = p.session()
            {
                if let Err(e) = s.pc.handle_timeout(now) {
                    tracing::debug!(participant = pid, error = %e, "timeout handling failed");
                }
                self.pump(pid, now);
            }
        }
        if self.next_speaker_tick.is_some_and(|t| t <= now) {
            self.next_speaker_tick = (!self.participants.is_empty()).then_some(now + SPEAKER_TICK);
            if let Some(change) = self.speaker.update(now) {
                self.outputs.push_back(Output::ActiveSpeaker {
                    participant: change,
                });
            } else if self.speaker_news.is_some_and(|t| t <= now)
                && let Some(speaker) = self.speaker_news.take().and(self.speaker.current())
            {
                // Said again to everyone: the others already know it.
                self.outputs.push_back(Output::ActiveSpeaker {
                    participant: Some(speaker),
                });
            }
        }
    }

    fn signal(&mut self, pid: ParticipantId, signal: MediaSignal, now: Instant) {
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        match signal {
            MediaSignal::Offer(sdp) => {
                // An offer that does not parse, or asks for more than a participant may have,
                // takes nothing: no connection, no transport.
                if let Err(e) = offer::check(&sdp) {
                    tracing::info!(participant = pid, error = %e, "offer refused");
                    self.refuse(pid, e.code(), e.to_string());
                    return;
                }
                match &mut p.link {
                    Link::None => {
                        p.link = Link::Opening { offer: sdp };
                        self.outputs
                            .push_back(Output::OpenTransport { participant: pid });
                    }
                    // A newer offer before the transport: that one is answered.
                    Link::Opening { offer } => *offer = sdp,
                    Link::Open(_) => self.apply_offer(pid, sdp, now),
                }
            }
            MediaSignal::Answer(sdp) => {
                let Link::Open(session) = &mut p.link else {
                    return;
                };
                if !p.negotiation.answer_received() {
                    self.refuse(pid, ErrorCode::InvalidSdp, "an answer without an offer");
                    return;
                }
                if let Err(e) = session.accept_answer(now, sdp) {
                    self.refuse(pid, ErrorCode::InvalidSdp, e.to_string());
                    return;
                }
                self.learn_downtracks(pid, now);
                self.pump(pid, now);
                self.renegotiate = true;
            }
            MediaSignal::Candidate(c) => {
                if let Some(s) = p.session()
                    && let Err(e) = s.add_candidate(c)
                {
                    tracing::debug!(participant = pid, error = %e, "bad ICE candidate");
                }
            }
            _ => {}
        }
    }

    fn transport_opened(&mut self, pid: ParticipantId, transport: Transport, now: Instant) {
        let Some(p) = self.participants.get_mut(&pid) else {
            self.outputs
                .push_back(Output::CloseTransport { participant: pid });
            return;
        };
        let Link::Opening { offer } = std::mem::replace(&mut p.link, Link::None) else {
            self.outputs
                .push_back(Output::CloseTransport { participant: pid });
            return;
        };
        match Session::new(transport, now) {
            Ok(s) => {
                p.link = Link::Open(Box::new(s));
                self.apply_offer(pid, offer, now);
            }
            Err(e) => {
                tracing::warn!(participant = pid, error = %e, "no media session");
                self.refuse(pid, ErrorCode::Internal, e.to_string());
                self.outputs
                    .push_back(Output::CloseTransport { participant: pid });
            }
        }
    }

    fn apply_offer(&mut self, pid: ParticipantId, sdp: String, now: Instant) {
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        let first = !p.negotiation.routed;
        let on_offer = p.negotiation.offer_received();
        let Link::Open(session) = &mut p.link else {
            return;
        };
        if on_offer == OnOffer::RollbackThenApply
            && let Err(e) = session.rollback(now)
        {
            tracing::warn!(participant = pid, error = %e, "cannot withdraw our offer");
        }
        match session.answer(now, sdp) {
            Ok(answer) => {
                p.negotiation.answered();
                p.dirty = true;
                self.outputs.push_back(Output::Signal {
                    participant: pid,
                    signal: MediaSignal::Answer(answer),
                });
            }
            Err(e) => {
                tracing::info!(participant = pid, error = %e, "offer refused");
                self.refuse(pid, ErrorCode::InvalidSdp, e.to_string());
                if first {
                    // The connection made for this offer goes with it, and its transport.
                    self.close_session(pid);
                }
                return;
            }
        }
        self.unpublish_stopped(pid);
        if first {
            // It receives every track already published.
            let ids: Vec<TrackId> = self.tracks.iter().map(|(id, _)| id).collect();
            for id in ids {
                self.subscribe(pid, id);
            }
        }
        self.pump(pid, now);
        self.renegotiate = true;
    }

    /// Tracks whose section the participant's latest offer no longer sends on end at once for
    /// every subscriber.
    fn unpublish_stopped(&mut self, pid: ParticipantId) {
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        let Some(s) = p.session() else { return };
        let mut receiving = Vec::new();
        let ids: Vec<_> = s.pc.get_transceivers().collect();
        for id in ids {
            if let Some(t) = s.pc.rtp_transceiver(id)
                && t.current_direction().has_recv()
                && let Some(r) = t.receiver()
            {
                receiving.push(r);
            }
        }
        let stopped: Vec<TrackId> = self
            .tracks
            .of(pid)
            .into_iter()
            .filter(|&id| {
                self.tracks
                    .get(id)
                    .is_some_and(|t| !receiving.contains(&t.receiver))
            })
            .collect();
        // A stopped section may open again with a new track: its first packet publishes it.
        p.opening.retain(|_, t| receiving.contains(&t.receiver));
        for id in stopped {
            tracing::info!(participant = pid, track = id.0, "track stopped");
            self.unpublish(id);
        }
    }

    /// Drains what `pid`'s connection has for the room: events, then packets.
    fn pump(&mut self, pid: ParticipantId, now: Instant) {
        let mut gone = false;
        let mut connected = false;
        let mut packets = Vec::new();
        {
            let Some(p) = self.participants.get_mut(&pid) else {
                return;
            };
            p.dirty = true;
            let Link::Open(s) = &mut p.link else { return };
            while let Some(event) = s.pc.poll_event() {
                match event {
                    RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                        // A track opens again after renegotiation; a refusal stands.
                        let refused = p.opening.get(&init.track_id).is_some_and(|t| t.refused);
                        p.opening.insert(
                            init.track_id,
                            OpeningTrack {
                                receiver: init.receiver_id,
                                ssrc: init.ssrc,
                                source: init
                                    .stream_ids
                                    .first()
                                    .filter(|s| media_stream::valid_source(s))
                                    .cloned(),
                                refused,
                            },
                        );
                    }
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                        RTCPeerConnectionState::Connected,
                    ) => {
                        connected |= !s.connected;
                        s.connected = true;
                    }
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed,
                    ) => gone = true,
                    _ => {}
                }
            }
            while let Some(m) = s.pc.poll_read() {
                packets.push(m.message);
            }
        }
        for m in packets {
            match m {
                RTCMessage::RtpPacket(engine_track, packet) => {
                    let id = match self.tracks.by_engine_track(pid, &engine_track) {
                        Some(id) => id,
                        None => {
                            match self.publish(pid, &engine_track, packet.header.payload_type) {
                                Some(id) => id,
                                None => continue,
                            }
                        }
                    };
                    self.forward(id, packet, now);
                }
                RTCMessage::RtcpPacket(_, packets) => {
                    for ssrc in rtcp::pli::keyframe_requests(&packets) {
                        if let Some(id) = self.tracks.by_downtrack_ssrc(pid, ssrc) {
                            self.request_keyframe(id, now);
                        }
                    }
                }
                _ => {}
            }
        }
        if connected {
            self.connected(pid, now);
        }
        if gone {
            tracing::info!(participant = pid, "media connection failed or closed");
            self.outputs.push_back(Output::Disconnect {
                participant: pid,
                code: ErrorCode::MediaUnavailable,
                message: "the media connection failed or was closed".into(),
            });
            self.remove(pid, now);
        }
    }

    /// A track's first packet arrived with `payload_type`: it is published, if it may be.
    fn publish(
        &mut self,
        pid: ParticipantId,
        engine_track: &str,
        payload_type: u8,
    ) -> Option<TrackId> {
        let count = self.tracks.of(pid).len();
        let p = self.participants.get_mut(&pid)?;
        let opening = p.opening.get(engine_track)?.clone();
        if opening.refused {
            return None;
        }
        let refusal = if !p.may_publish {
            Some(format!("participant {pid} may not publish"))
        } else if count >= MAX_TRACKS_PER_PUBLISHER {
            Some(format!(
                "participant {pid} already publishes {MAX_TRACKS_PER_PUBLISHER} tracks, the most one may"
            ))
        } else {
            None
        };
        if let Some(message) = refusal {
            tracing::info!(participant = pid, %message, "track refused");
            if let Some(t) = p.opening.get_mut(engine_track) {
                t.refused = true;
            }
            self.refuse(pid, ErrorCode::PublishNotAllowed, message);
            return None;
        }
        let Link::Open(s) = &mut p.link else {
            return None;
        };
        let mut receiver = s.pc.rtp_receiver(opening.receiver)?;
        let kind = match receiver.track().kind() {
            RtpCodecKind::Audio => Some(MediaKind::Audio),
            RtpCodecKind::Video => Some(MediaKind::Video),
            _ => None,
        };
        let params = receiver.get_parameters().rtp_parameters.clone();
        let codec = params
            .codecs
            .iter()
            .find(|c| c.payload_type == payload_type)
            .map(|c| c.rtp_codec.clone());
        let (Some(kind), Some(codec)) = (kind, codec) else {
            // Its packets are dropped from now on, without looking again.
            tracing::info!(
                participant = pid,
                payload_type,
                "a track in a codec not negotiated"
            );
            if let Some(t) = p.opening.get_mut(engine_track) {
                t.refused = true;
            }
            return None;
        };
        let extensions: Vec<(String, u8)> = params
            .header_extensions
            .iter()
            .filter_map(|h| Some((h.uri.clone(), u8::try_from(h.id).ok()?)))
            .collect();
        let audio_level = (kind == MediaKind::Audio)
            .then(|| {
                extensions
                    .iter()
                    .find(|(uri, _)| uri == END_TO_END_EXTENSIONS[0])
                    .map(|&(_, id)| id)
            })
            .flatten();
        p.opening.remove(engine_track);
        let id = self.tracks.insert(Published {
            publisher: pid,
            kind,
            receiver: opening.receiver,
            engine_track: engine_track.to_owned(),
            media_ssrc: opening.ssrc,
            source: opening.source,
            codec,
            extensions,
            audio_level,
            downtracks: Vec::new(),
        });
        tracing::info!(participant = pid, track = id.0, ?kind, "publishing");
        let subscribers: Vec<ParticipantId> = self
            .participants
            .iter()
            .filter(|&(&q, p)| q != pid && p.negotiation.routed)
            .map(|(&q, _)| q)
            .collect();
        for sub in subscribers {
            self.subscribe(sub, id);
        }
        Some(id)
    }

    /// One packet of a published track to each of its subscribers.
    fn forward(&mut self, id: TrackId, packet: rtc::rtp::packet::Packet, now: Instant) {
        let Some(track) = self.tracks.get_mut(id) else {
            return;
        };
        self.counters.packets_in += 1;
        if let Some(ext) = track.audio_level
            && let Some(level) = packet.header.get_extension(ext)
            && let Some(&byte) = level.first()
        {
            self.speaker.observe(track.publisher, byte & 0x7f, now);
        }
        for d in &mut track.downtracks {
            let Some(rewriter) = d.rewriter.as_mut() else {
                continue;
            };
            let Some(p) = self.participants.get_mut(&d.subscriber) else {
                continue;
            };
            // Not before its DTLS handshake is done: without SRTP keys the engine could only
            // drop the packet (and warn).
            let Link::Open(s) = &mut p.link else { continue };
            if !s.connected {
                continue;
            }
            let out = rtc::rtp::packet::Packet {
                header: rewriter.rewrite(&packet.header),
                payload: packet.payload.clone(),
            };
            // Straight to the connection: the rewriter already gives the SSRC, payload type
            // and extension ids this sender negotiated, which the sender's `write_rtp` would
            // otherwise check again on every packet by rebuilding its parameters.
            let message = TaggedRTCMessage {
                now,
                message: RTCMessage::RtpPacket(String::new(), out),
            };
            match s.pc.handle_write(message) {
                Ok(()) => {
                    self.counters.packets_out += 1;
                    self.counters.bytes_out += packet.payload.len() as u64;
                    p.dirty = true;
                }
                Err(e) => tracing::trace!(subscriber = d.subscriber, error = %e, "not sent"),
            }
        }
    }

    /// Starts sending track `id` to `sub`: in one of its idle sections of that kind and codec,
    /// or else a send-only section of its own (offered next).
    fn subscribe(&mut self, sub: ParticipantId, id: TrackId) {
        let Some(track) = self.tracks.get(id) else {
            return;
        };
        let (publisher, kind, codec) = (track.publisher, track.kind, track.codec.clone());
        let stream = media_stream::stream_id(publisher, track.source.as_deref());
        if publisher == sub {
            return;
        }
        let Some(p) = self.participants.get_mut(&sub) else {
            return;
        };
        let Link::Open(s) = &mut p.link else { return };
        let track =
            |ssrc| downtrack_track(stream.clone(), publisher, id, kind, codec.clone(), ssrc);
        let reused = p
            .idle
            .take(kind, |c| same_codec(c, &codec))
            .and_then(|idle| reuse_section(s, idle.sender, track(idle.ssrc)).then_some(idle));
        let (sender, ssrc, resumes) = match reused {
            Some(idle) => (idle.sender, idle.ssrc, idle.rewriter),
            None => {
                let ssrc = loop {
                    let n: u32 = rand::random();
                    if self.tracks.ssrc_free(sub, n) && !p.idle.holds_ssrc(n) {
                        break n;
                    }
                };
                let Some(sender) = add_sender(s, track(ssrc), stream.clone()) else {
                    return;
                };
                (sender, ssrc, None)
            }
        };
        p.negotiation.want();
        self.renegotiate = true;
        self.tracks.add_downtrack(
            id,
            Downtrack {
                subscriber: sub,
                sender,
                ssrc,
                offered: false,
                rewriter: None,
                resumes,
            },
        );
    }

    /// Ends track `id` for every subscriber and forgets it.
    fn unpublish(&mut self, id: TrackId) {
        let Some(track) = self.tracks.remove(id) else {
            return;
        };
        self.keyframes.forget(id);
        for d in track.downtracks {
            if let Some(p) = self.participants.get_mut(&d.subscriber)
                && let Link::Open(s) = &mut p.link
            {
                // Its section goes quiet and waits for the subscriber's next track.
                if let Some(mut t) = s.pc.rtp_transceiver(RTCRtpTransceiverId::from(d.sender)) {
                    t.set_direction(RTCRtpTransceiverDirection::Inactive);
                }
                p.idle.put(IdleSection {
                    sender: d.sender,
                    ssrc: d.ssrc,
                    kind: track.kind,
                    codec: track.codec.clone(),
                    rewriter: d.rewriter.or(d.resumes),
                });
                p.negotiation.want();
                self.renegotiate = true;
            }
        }
    }

    /// After `sub`'s answer: each copy our answered offer carried learns its payload type and
    /// extension ids, and forwarding to it starts with a key frame.
    fn learn_downtracks(&mut self, sub: ParticipantId, now: Instant) {
        let ids: Vec<TrackId> = self.tracks.iter().map(|(id, _)| id).collect();
        let mut keyframes = Vec::new();
        for id in ids {
            let Some(track) = self.tracks.get_mut(id) else {
                continue;
            };
            let Some(d) = track
                .downtracks
                .iter_mut()
                .find(|d| d.subscriber == sub && d.offered && d.rewriter.is_none())
            else {
                continue;
            };
            let Some(p) = self.participants.get_mut(&sub) else {
                return;
            };
            let Link::Open(s) = &mut p.link else { return };
            let Some(mut sender) = s.pc.rtp_sender(d.sender) else {
                continue;
            };
            let params = &sender.get_parameters().rtp_parameters;
            let Some(pt) = params
                .codecs
                .iter()
                .find(|c| same_codec(&c.rtp_codec, &track.codec))
                .map(|c| c.payload_type)
            else {
                tracing::debug!(
                    subscriber = sub,
                    track = id.0,
                    "the answer negotiated no codec of the track"
                );
                continue;
            };
            let extensions = track
                .extensions
                .iter()
                .filter(|(uri, _)| END_TO_END_EXTENSIONS.contains(&uri.as_str()))
                .filter_map(|(uri, from)| {
                    let to = params.header_extensions.iter().find(|h| &h.uri == uri)?;
                    Some((*from, u8::try_from(to.id).ok()?))
                })
                .collect();
            d.rewriter = Some(match d.resumes.take() {
                Some(r) => r.resume(pt, extensions),
                None => Rewriter::new(d.ssrc, pt, extensions),
            });
            // Before its DTLS handshake is done nothing reaches it: the key frame is asked
            // for when it connects (`pump`).
            if track.kind == MediaKind::Video && s.connected {
                keyframes.push(id);
            }
        }
        for id in keyframes {
            self.request_keyframe(id, now);
        }
    }

    /// `sub` has just connected: each video track forwarded to it starts with a key frame.
    fn connected(&mut self, sub: ParticipantId, now: Instant) {
        let video: Vec<TrackId> = self
            .tracks
            .iter()
            .filter(|(_, t)| {
                t.kind == MediaKind::Video
                    && t.downtracks
                        .iter()
                        .any(|d| d.subscriber == sub && d.rewriter.is_some())
            })
            .map(|(id, _)| id)
            .collect();
        for id in video {
            self.request_keyframe(id, now);
        }
    }

    /// Asks the publisher of `id` for a key frame, at most once per interval.
    fn request_keyframe(&mut self, id: TrackId, now: Instant) {
        let Some(track) = self.tracks.get(id) else {
            return;
        };
        if track.kind != MediaKind::Video {
            return;
        }
        let (publisher, receiver, ssrc) = (track.publisher, track.receiver, track.media_ssrc);
        let Some(p) = self.participants.get_mut(&publisher) else {
            return;
        };
        let Link::Open(s) = &mut p.link else { return };
        // Counted against the interval only when it can go out.
        if !s.connected || !self.keyframes.allow(id, now) {
            return;
        }
        if let Some(mut r) = s.pc.rtp_receiver(receiver)
            && r.write_rtcp(now, vec![rtcp::pli::picture_loss(ssrc)])
                .is_ok()
        {
            self.counters.keyframe_requests_sent += 1;
            p.dirty = true;
        }
    }

    /// Tells `pid` its media request failed, and why.
    fn refuse(&mut self, pid: ParticipantId, code: ErrorCode, message: impl Into<String>) {
        self.outputs.push_back(Output::Error {
            participant: pid,
            code,
            message: message.into(),
        });
    }

    /// Offers to every participant whose received tracks changed and who is not in the
    /// middle of an exchange.
    fn settle(&mut self, now: Instant) {
        let mut offered = Vec::new();
        for (&pid, p) in self.participants.iter_mut() {
            let Link::Open(s) = &mut p.link else { continue };
            if !p.negotiation.take_offer_turn() {
                continue;
            }
            match s.offer(now) {
                Ok(sdp) => {
                    p.dirty = true;
                    offered.push(pid);
                    self.outputs.push_back(Output::Signal {
                        participant: pid,
                        signal: MediaSignal::Offer(sdp),
                    });
                }
                Err(e) => {
                    p.negotiation.offer_failed();
                    tracing::warn!(participant = pid, error = %e, "cannot renegotiate");
                }
            }
        }
        for pid in offered {
            self.tracks.offered_to(pid);
        }
    }

    /// The participant is gone: its tracks leave every subscriber, its connection closes.
    fn remove(&mut self, pid: ParticipantId, now: Instant) {
        if !self.participants.contains_key(&pid) {
            return;
        }
        for id in self.tracks.of(pid) {
            self.unpublish(id);
        }
        let received: Vec<TrackId> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.downtracks.iter().any(|d| d.subscriber == pid))
            .map(|(id, _)| id)
            .collect();
        for id in received {
            self.tracks.remove_downtrack(id, pid);
        }
        self.close_session(pid);
        self.participants.remove(&pid);
        if let Some(change) = self.speaker.forget(pid, now) {
            self.outputs.push_back(Output::ActiveSpeaker {
                participant: change,
            });
        }
        self.renegotiate = true;
    }

    /// Closes `pid`'s connection (sending what its close says) and its transport.
    fn close_session(&mut self, pid: ParticipantId) {
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        if let Link::Open(mut s) = std::mem::replace(&mut p.link, Link::None) {
            let _ = s.pc.close();
            while let Some(d) = s.pc.poll_write() {
                self.outputs.push_back(Output::Transmit {
                    participant: pid,
                    local: d.transport.local_addr,
                    remote: d.transport.peer_addr,
                    data: d.message,
                });
            }
            self.outputs
                .push_back(Output::CloseTransport { participant: pid });
        }
        p.negotiation = Negotiation::default();
        p.opening.clear();
        p.idle = IdleSections::default();
        p.deadline = None;
    }

    /// Datagrams of every connection touched, and their next deadlines (never before the next
    /// millisecond: a connection that keeps naming a past instant does not spin the driver).
    fn flush(&mut self, now: Instant) {
        for (&pid, p) in self.participants.iter_mut() {
            if !std::mem::take(&mut p.dirty) {
                continue;
            }
            let Link::Open(s) = &mut p.link else { continue };
            while let Some(d) = s.pc.poll_write() {
                self.outputs.push_back(Output::Transmit {
                    participant: pid,
                    local: d.transport.local_addr,
                    remote: d.transport.peer_addr,
                    data: d.message,
                });
            }
            p.deadline =
                s.pc.poll_timeout()
                    .map(|d| d.max(now + Duration::from_millis(1)));
        }
    }
}

/// The track a subscriber's section sends for track `id` of `publisher`, as `ssrc`.
fn downtrack_track(
    stream: String,
    publisher: ParticipantId,
    id: TrackId,
    kind: MediaKind,
    codec: RTCRtpCodec,
    ssrc: u32,
) -> MediaStreamTrack {
    let kind = match kind {
        MediaKind::Audio => RtpCodecKind::Audio,
        MediaKind::Video => RtpCodecKind::Video,
    };
    // The stream id names the publisher and its stream, so a receiver can tell whose track it
    // is and which of the publisher's tracks go together.
    one_stream_track(
        stream,
        format!("{publisher}-{}", id.0),
        format!("participant {publisher}"),
        kind,
        codec,
        ssrc,
    )
}

/// Adds a send-only transceiver for `track` (of `stream`) to `s`; its sender.
fn add_sender(s: &mut Session, track: MediaStreamTrack, stream: String) -> Option<RTCRtpSenderId> {
    // A transceiver of its own, send-only: never one of the participant's own sections.
    let init = RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Sendonly,
        streams: vec![stream],
        send_encodings: Vec::new(),
    };
    match s.pc.add_transceiver_from_track(track, Some(init)) {
        Ok(t) => s.pc.rtp_transceiver(t).and_then(|t| t.sender()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot add a track");
            None
        }
    }
}

/// Sends `track` (with the section's own SSRC) in the idle section of `sender`: true if done.
/// Its stream id becomes the track's.
fn reuse_section(s: &mut Session, sender: RTCRtpSenderId, track: MediaStreamTrack) -> bool {
    let Some(mut t) = s.pc.rtp_transceiver(RTCRtpTransceiverId::from(sender)) else {
        return false;
    };
    t.set_direction(RTCRtpTransceiverDirection::Sendonly);
    let replaced =
        s.pc.rtp_sender(sender)
            .is_some_and(|mut r| r.replace_track(track).is_ok());
    if !replaced {
        tracing::warn!("cannot reuse an idle section");
        if let Some(mut t) = s.pc.rtp_transceiver(RTCRtpTransceiverId::from(sender)) {
            t.set_direction(RTCRtpTransceiverDirection::Inactive);
        }
    }
    replaced
}

/// The same codec: MIME type, clock rate and (VP9) profile.
fn same_codec(a: &RTCRtpCodec, b: &RTCRtpCodec) -> bool {
    let profile = |c: &RTCRtpCodec| {
        c.sdp_fmtp_line
            .split(';')
            .find_map(|kv| kv.trim().strip_prefix("profile-id="))
            .unwrap_or("0")
            .to_owned()
    };
    a.mime_type.eq_ignore_ascii_case(&b.mime_type)
        && a.clock_rate == b.clock_rate
        && (!a.mime_type.eq_ignore_ascii_case("video/vp9") || profile(a) == profile(b))
}

#[cfg(test)]
mod tests;
