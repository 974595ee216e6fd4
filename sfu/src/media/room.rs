//! The media task of one room: it owns the routing table and every participant's
//! PeerConnection, applies the table's actions on webrtc-rs, and runs the offer/answer
//! exchanges (the participant offers first; the SFU offers again whenever a participant's set of
//! received tracks changes).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use signaling_protocol::{ErrorCode, ParticipantId};
use signaling_server::server::{MediaSender, MediaSignal};
use tokio::sync::mpsc;
use webrtc::media_stream::Track;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::rtp_transceiver::RtpSender;

use super::MediaConfig;
use super::events::{Events, MediaEvent};
use super::forward::{self, DownTrack, DownTracks, ForwardStats};
use super::peer::{AUDIO_LEVEL_URI, PeerError, SfuPeer};
use crate::routing::{
    Action, ActiveSpeaker, KeyframeThrottle, MediaKind, PublishedTrack, RoomRouter, TrackId,
};

/// What reaches a room's media task.
pub(crate) enum RoomInput {
    Joined {
        participant: ParticipantId,
        may_publish: bool,
        sender: MediaSender,
    },
    Signal {
        participant: ParticipantId,
        signal: MediaSignal,
    },
    Left {
        participant: ParticipantId,
    },
    /// A participant's PeerConnection failed or closed.
    PeerGone {
        participant: ParticipantId,
    },
    /// A participant started publishing a track; its first packet had this payload type.
    Track {
        participant: ParticipantId,
        track: Arc<dyn TrackRemote>,
        payload_type: u8,
    },
}

/// How often the active speaker is re-evaluated.
const SPEAKER_TICK: Duration = Duration::from_millis(250);

struct Participant {
    sender: MediaSender,
    may_publish: bool,
    peer: Option<SfuPeer>,
    /// In the routing table (its first offer was answered).
    routed: bool,
    /// An offer of ours awaits its answer.
    offering: bool,
    /// Another offer is needed once the current exchange ends.
    renegotiate: bool,
    receiving: HashMap<TrackId, Receiving>,
}

/// A track a participant receives: its copy, its sender, and the task relaying its RTCP.
struct Receiving {
    down: Arc<DownTrack>,
    rtp_sender: Arc<dyn RtpSender>,
    feedback: tokio::task::JoinHandle<()>,
}

struct Published {
    remote: Arc<dyn TrackRemote>,
    codec: RTCRtpCodec,
    media_ssrc: u32,
    publisher: ParticipantId,
    kind: MediaKind,
    downtracks: DownTracks,
}

pub(crate) struct RoomMedia {
    name: String,
    config: MediaConfig,
    router: RoomRouter,
    participants: HashMap<ParticipantId, Participant>,
    published: HashMap<TrackId, Published>,
    stats: Arc<ForwardStats>,
    input: mpsc::UnboundedSender<RoomInput>,
    events: Events,
}

impl RoomMedia {
    pub(crate) fn new(
        name: String,
        config: MediaConfig,
        stats: Arc<ForwardStats>,
        input: mpsc::UnboundedSender<RoomInput>,
        events: Events,
    ) -> Self {
        RoomMedia {
            name,
            config,
            router: RoomRouter::new(
                KeyframeThrottle::new(Duration::from_millis(500)),
                ActiveSpeaker::default(),
            ),
            participants: HashMap::new(),
            published: HashMap::new(),
            stats,
            input,
            events,
        }
    }

    /// Runs until the room is empty with nothing more queued, then takes itself out of
    /// `rooms` and closes what is left.
    pub(crate) async fn run(
        mut self,
        mut inputs: mpsc::UnboundedReceiver<RoomInput>,
        mut events: mpsc::Receiver<MediaEvent>,
        rooms: super::Rooms,
    ) {
        let span = tracing::info_span!("media", room = %self.name);
        let _enter = span.enter();
        let mut speaker_tick = tokio::time::interval(SPEAKER_TICK);
        speaker_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let input = tokio::select! {
                input = inputs.recv() => match input {
                    Some(input) => input,
                    None => break,
                },
                Some(event) = events.recv() => {
                    self.event(event).await;
                    continue;
                }
                _ = speaker_tick.tick() => {
                    if let Some(action) = self.router.tick(Instant::now()) {
                        self.apply(vec![action]).await;
                    }
                    continue;
                }
            };
            self.handle(input).await;
            if self.participants.is_empty() {
                let mut map = rooms.lock().unwrap_or_else(|e| e.into_inner());
                if inputs.is_empty() {
                    if map
                        .get(&self.name)
                        .is_some_and(|tx| tx.same_channel(&self.input))
                    {
                        map.remove(&self.name);
                    }
                    break;
                }
            }
        }
        for p in self.participants.values() {
            if let Some(peer) = &p.peer {
                let _ = peer.pc.close().await;
            }
        }
    }

    async fn handle(&mut self, input: RoomInput) {
        match input {
            RoomInput::Joined {
                participant,
                may_publish,
                sender,
            } => {
                self.participants.insert(
                    participant,
                    Participant {
                        sender,
                        may_publish,
                        peer: None,
                        routed: false,
                        offering: false,
                        renegotiate: false,
                        receiving: HashMap::new(),
                    },
                );
            }
            RoomInput::Signal {
                participant,
                signal,
            } => self.signal(participant, signal).await,
            RoomInput::Left { participant } => self.remove(participant).await,
            RoomInput::PeerGone { participant } => {
                // The participant vanished (ICE failed or timed out) or closed its side: it
                // leaves the room, and the MLS group removes it in the next commit.
                tracing::info!(participant, "media connection failed or closed");
                if let Some(p) = self.participants.get(&participant) {
                    p.sender.disconnect(
                        ErrorCode::MediaUnavailable,
                        "the media connection failed or was closed",
                    );
                }
                self.remove(participant).await
            }
            RoomInput::Track {
                participant,
                track,
                payload_type,
            } => self.track(participant, track, payload_type).await,
        }
    }

    async fn event(&mut self, event: MediaEvent) {
        match event {
            MediaEvent::KeyframeRequest { track } => {
                if let Some(action) = self.router.keyframe_request(track, Instant::now()) {
                    self.apply(vec![action]).await;
                }
            }
            MediaEvent::AudioLevel { track, level } => {
                self.router.audio_level(track, level, Instant::now())
            }
        }
    }

    async fn signal(&mut self, pid: ParticipantId, signal: MediaSignal) {
        let config = self.config.clone();
        let input = self.input.clone();
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        match signal {
            MediaSignal::Offer(sdp) => {
                // An offer that does not parse, or asks for more than a participant may have,
                // takes nothing: no connection, no port.
                if let Err(e) = super::offer::check(&sdp) {
                    tracing::info!(participant = pid, error = %e, "offer refused before any port was taken");
                    p.sender.error(e.code(), e.to_string());
                    return;
                }
                let fresh = p.peer.is_none();
                if fresh {
                    match SfuPeer::new(pid, &config, input).await {
                        Ok(peer) => p.peer = Some(peer),
                        Err(e) => {
                            tracing::warn!(participant = pid, error = %e, "no media connection");
                            let code = match e {
                                PeerError::NoPort(_) => ErrorCode::MediaUnavailable,
                                _ => ErrorCode::Internal,
                            };
                            p.sender.error(code, e.to_string());
                            return;
                        }
                    }
                }
                let Some(peer) = p.peer.as_mut() else { return };
                match peer.answer(sdp).await {
                    Ok(answer) => {
                        p.sender.send(MediaSignal::Answer(answer));
                    }
                    Err(e) => {
                        tracing::info!(participant = pid, error = %e, "offer refused");
                        p.sender.error(ErrorCode::InvalidSdp, e.to_string());
                        // A connection made for this offer goes with it, and its port.
                        if fresh && let Some(peer) = p.peer.take() {
                            let _ = peer.pc.close().await;
                        }
                        return;
                    }
                }
                if !p.routed {
                    p.routed = true;
                    let actions = self.router.join(pid, p.may_publish, Instant::now());
                    self.apply(actions).await;
                }
                self.settle().await;
            }
            MediaSignal::Answer(sdp) => {
                let Some(peer) = p.peer.as_mut() else { return };
                if !p.offering {
                    p.sender
                        .error(ErrorCode::InvalidSdp, "an answer without an offer");
                    return;
                }
                p.offering = false;
                if let Err(e) = peer.accept_answer(sdp).await {
                    p.sender.error(ErrorCode::InvalidSdp, e.to_string());
                    return;
                }
                learn_payload_types(p).await;
                self.settle().await;
            }
            MediaSignal::Candidate(c) => {
                let Some(peer) = p.peer.as_ref() else { return };
                let init = rtc::peer_connection::transport::RTCIceCandidateInit {
                    candidate: c.candidate,
                    sdp_mid: c.sdp_mid,
                    sdp_mline_index: c.sdp_m_line_index,
                    username_fragment: c.username_fragment,
                    ..Default::default()
                };
                if let Err(e) = peer.pc.add_ice_candidate(init).await {
                    tracing::debug!(participant = pid, error = %e, "bad ICE candidate");
                }
            }
            _ => {}
        }
    }

    /// A participant published a track whose first packet carried `payload_type`.
    async fn track(&mut self, pid: ParticipantId, remote: Arc<dyn TrackRemote>, payload_type: u8) {
        let Some(&media_ssrc) = remote.ssrcs().await.first() else {
            return;
        };
        let Some(received) = self.receive_parameters(pid, &remote).await else {
            return;
        };
        let Some(codec) = received
            .codecs
            .iter()
            .find(|c| c.payload_type == payload_type)
            .map(|c| c.rtp_codec.clone())
        else {
            tracing::info!(
                participant = pid,
                payload_type,
                "a track in a codec not negotiated"
            );
            return;
        };
        let kind = match remote.kind().await {
            RtpCodecKind::Audio => MediaKind::Audio,
            RtpCodecKind::Video => MediaKind::Video,
            _ => return,
        };
        let (published, actions) = match self.router.publish(pid, kind) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(participant = pid, error = %e, "track refused");
                if let Some(p) = self.participants.get(&pid) {
                    p.sender.error(ErrorCode::PublishNotAllowed, e.to_string());
                }
                // Its packets are read and dropped, so they queue nowhere.
                tokio::spawn(async move { while remote.poll().await.is_some() {} });
                return;
            }
        };
        tracing::info!(participant = pid, track = published.id.0, ?kind, codec = %codec.mime_type, "publishing");
        let downtracks: DownTracks = Arc::new(RwLock::new(Vec::new()));
        let levels = match kind {
            MediaKind::Audio => received
                .header_extensions
                .iter()
                .find(|h| h.uri == AUDIO_LEVEL_URI)
                .and_then(|h| u8::try_from(h.id).ok())
                .map(|id| forward::Levels {
                    extension_id: id,
                    track: published.id,
                    events: self.events.clone(),
                }),
            MediaKind::Video => None,
        };
        if kind == MediaKind::Audio && levels.is_none() {
            tracing::info!(
                participant = pid,
                "no audio-level extension: no active-speaker data"
            );
        }
        tokio::spawn(forward::forward(
            remote.clone(),
            downtracks.clone(),
            levels,
            self.stats.clone(),
        ));
        self.published.insert(
            published.id,
            Published {
                remote,
                codec,
                media_ssrc,
                publisher: pid,
                kind,
                downtracks,
            },
        );
        self.apply(actions).await;
        self.settle().await;
    }

    /// What the publisher's receiver for `remote` negotiated: codecs and header extensions.
    async fn receive_parameters(
        &self,
        pid: ParticipantId,
        remote: &Arc<dyn TrackRemote>,
    ) -> Option<RTCRtpParameters> {
        let peer = self.participants.get(&pid)?.peer.as_ref()?;
        let track_id = remote.track_id().await;
        for receiver in peer.pc.get_receivers().await {
            if receiver.track().track_id().await == track_id {
                return receiver
                    .get_parameters()
                    .await
                    .ok()
                    .map(|p| p.rtp_parameters);
            }
        }
        None
    }

    async fn remove(&mut self, pid: ParticipantId) {
        let Some(p) = self.participants.remove(&pid) else {
            return;
        };
        let actions = self.router.leave(pid, Instant::now());
        self.apply(actions).await;
        self.published.retain(|_, t| t.publisher != pid);
        if let Some(peer) = p.peer {
            let _ = peer.pc.close().await;
        }
        self.settle().await;
    }

    async fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Subscribe { subscriber, track } => self.subscribe(subscriber, track).await,
                Action::Unsubscribe { subscriber, track } => {
                    self.unsubscribe(subscriber, track).await
                }
                Action::RequestKeyframe { track } => self.request_keyframe(track).await,
                Action::ActiveSpeaker { participant } => {
                    for p in self.participants.values() {
                        p.sender.active_speaker(participant);
                    }
                }
            }
        }
    }

    async fn subscribe(&mut self, subscriber: ParticipantId, track: PublishedTrack) {
        let Some(published) = self.published.get(&track.id) else {
            return;
        };
        let Some(p) = self.participants.get_mut(&subscriber) else {
            return;
        };
        let Some(peer) = p.peer.as_ref() else { return };
        let ssrc = loop {
            let s: u32 = rand::random();
            if s != 0 {
                break s;
            }
        };
        let kind = match published.kind {
            MediaKind::Audio => RtpCodecKind::Audio,
            MediaKind::Video => RtpCodecKind::Video,
        };
        // The stream id names the publisher, so a receiver can tell whose track it is.
        let local = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            published.publisher.to_string(),
            format!("{}-{}", published.publisher, track.id.0),
            format!("participant {}", published.publisher),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: published.codec.clone(),
                ..Default::default()
            }],
        )));
        // A transceiver of its own, send-only: never reuse one of the subscriber's own
        // (send-only) transceivers, which would not receive.
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            streams: vec![published.publisher.to_string()],
            send_encodings: Vec::new(),
        };
        let added = match peer
            .pc
            .add_transceiver_from_track(local.clone(), Some(init))
            .await
        {
            Ok(t) => t.sender().await,
            Err(e) => Err(e),
        };
        let rtp_sender = match added {
            Ok(Some(s)) => s,
            Ok(None) => {
                tracing::warn!(subscriber, "a new transceiver without a sender");
                return;
            }
            Err(e) => {
                tracing::warn!(subscriber, error = %e, "cannot add a track");
                return;
            }
        };
        let down = Arc::new(DownTrack {
            local,
            ssrc,
            payload_type: forward::NOT_NEGOTIATED.into(),
        });
        if let Ok(mut list) = published.downtracks.write() {
            list.push(down.clone());
        }
        // The subscriber's PLI/FIR for this copy go to the routing table (throttled there).
        let feedback = {
            let (local, events, id) = (down.local.clone(), self.events.clone(), track.id);
            tokio::spawn(async move {
                while let Some(TrackLocalEvent::OnRtcpPacket(packets)) = local.poll().await {
                    if packets
                        .iter()
                        .any(|p| crate::media_room::rtcp::pli::is_keyframe_request(p.as_ref()))
                        && !events.send(MediaEvent::KeyframeRequest { track: id })
                    {
                        break;
                    }
                }
            })
        };
        p.receiving.insert(
            track.id,
            Receiving {
                down,
                rtp_sender,
                feedback,
            },
        );
        p.renegotiate = true;
    }

    async fn unsubscribe(&mut self, subscriber: ParticipantId, track: TrackId) {
        let Some(p) = self.participants.get_mut(&subscriber) else {
            return;
        };
        let Some(Receiving {
            down,
            rtp_sender,
            feedback,
        }) = p.receiving.remove(&track)
        else {
            return;
        };
        feedback.abort();
        if let Some(published) = self.published.get(&track)
            && let Ok(mut list) = published.downtracks.write()
        {
            list.retain(|d| !Arc::ptr_eq(d, &down));
        }
        if let Some(peer) = p.peer.as_ref() {
            let _ = peer.pc.remove_track(&rtp_sender).await;
            p.renegotiate = true;
        }
    }

    async fn request_keyframe(&mut self, track: TrackId) {
        if let Some(published) = self.published.get(&track) {
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc: published.media_ssrc,
            };
            if published
                .remote
                .write_rtcp(vec![Box::new(pli)])
                .await
                .is_ok()
            {
                self.stats
                    .keyframe_requests_sent
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sends an offer to every participant whose received tracks changed and who is not in
    /// the middle of an exchange.
    async fn settle(&mut self) {
        for (&pid, p) in self.participants.iter_mut() {
            if !p.renegotiate || p.offering || !p.routed {
                continue;
            }
            let Some(peer) = p.peer.as_mut() else {
                continue;
            };
            p.renegotiate = false;
            match peer.offer().await {
                Ok(sdp) => {
                    p.offering = true;
                    p.sender.send(MediaSignal::Offer(sdp));
                }
                Err(e) => tracing::warn!(participant = pid, error = %e, "cannot renegotiate"),
            }
        }
    }
}

/// After an answer, each of a participant's new downtracks learns its negotiated payload
/// type, and forwarding to it starts.
async fn learn_payload_types(p: &mut Participant) {
    for Receiving {
        down, rtp_sender, ..
    } in p.receiving.values()
    {
        if down.payload_type.load(Ordering::Relaxed) != forward::NOT_NEGOTIATED {
            continue;
        }
        let Ok(params) = rtp_sender.get_parameters().await else {
            continue;
        };
        let Some(codec) = down.local.codec(down.ssrc).await.or_else(|| {
            params
                .rtp_parameters
                .codecs
                .first()
                .map(|c| c.rtp_codec.clone())
        }) else {
            continue;
        };
        if let Some(c) = params
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(&codec.mime_type))
        {
            down.payload_type.store(c.payload_type, Ordering::Relaxed);
        }
    }
}
