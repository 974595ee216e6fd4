//! A participant as the room holds it, and its lifecycle: it joins, its first offer opens a
//! transport and a session, what its connection says is drained into the room ([`MediaRoom::pump`]),
//! and it leaves with every track it published and received.

use std::collections::HashMap;
use std::time::Instant;

use rtc::rtp_transceiver::RTCRtpReceiverId;
use signaling_protocol::{ErrorCode, ParticipantId, PausedVideo, VideoSection, media_stream};

use super::audio_sections::AudioSections;
use super::bandwidth::probe::ProbeSchedule;
use super::negotiation::Negotiation;
use super::session::{Received, SessionEvent};
use super::video_sections::VideoSections;
use super::{ALLOCATION_TICK, MediaRoom, Output, SPEAKER_TICK, Session, TrackId, Transport, rtcp};

/// A participant's link to the room's media.
pub(super) enum Link {
    /// No offer yet.
    None,
    /// Its first offer waits for a transport.
    Opening {
        offer: String,
    },
    Open(Box<Session>),
}

pub(super) struct Participant {
    pub may_publish: bool,
    pub link: Link,
    pub negotiation: Negotiation,
    /// Tracks its connection opened that have not sent their first packet (which names the
    /// codec), by the connection's track id.
    pub opening: HashMap<String, OpeningTrack>,
    /// Its connection's next deadline, as last asked.
    pub deadline: Option<Instant>,
    /// Its connection may have datagrams to send.
    pub dirty: bool,
    /// The sections it takes the videos it shows through.
    pub video: VideoSections,
    /// The sections it hears the loudest streams through.
    pub audio: AudioSections,
    /// When the path to it is probed.
    pub probe: ProbeSchedule,
    /// The shown videos it was last told it gets nothing of (`paused_videos`).
    pub paused: Vec<PausedVideo>,
    /// What its video sections carry, as it was last told (`video_sections`).
    pub sections_said: Vec<VideoSection>,
}

#[derive(Debug, Clone)]
pub(super) struct OpeningTrack {
    pub receiver: RTCRtpReceiverId,
    pub ssrc: u32,
    /// The publisher's stream it belongs to (its msid), if one that may be forwarded.
    pub source: Option<String>,
    /// Refused (the participant was told): its packets are dropped.
    pub refused: bool,
}

impl Participant {
    fn new(may_publish: bool) -> Self {
        Participant {
            may_publish,
            link: Link::None,
            negotiation: Negotiation::default(),
            opening: HashMap::new(),
            video: VideoSections::default(),
            audio: AudioSections::default(),
            deadline: None,
            dirty: false,
            probe: ProbeSchedule::default(),
            paused: Vec::new(),
            sections_said: Vec::new(),
        }
    }

    pub fn session(&mut self) -> Option<&mut Session> {
        match &mut self.link {
            Link::Open(s) => Some(s),
            _ => None,
        }
    }
}

impl MediaRoom {
    pub(super) fn join(&mut self, pid: ParticipantId, may_publish: bool, now: Instant) {
        self.participants
            .entry(pid)
            .or_insert_with(|| Participant::new(may_publish));
        self.next_speaker_tick.get_or_insert(now + SPEAKER_TICK);
        self.next_allocation.get_or_insert(now + ALLOCATION_TICK);
        // A newcomer learns who speaks now a tick later (its join answered by then: the
        // room's task delivers it before it runs the media's timers), not only at the next
        // change.
        self.speaker_news.get_or_insert(now + SPEAKER_TICK);
    }

    pub(super) fn transport_opened(
        &mut self,
        pid: ParticipantId,
        transport: Transport,
        now: Instant,
    ) {
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

    pub(super) fn transport_refused(
        &mut self,
        pid: ParticipantId,
        code: ErrorCode,
        message: String,
    ) {
        if let Some(p) = self.participants.get_mut(&pid)
            && matches!(p.link, Link::Opening { .. })
        {
            p.link = Link::None;
            self.refuse(pid, code, message);
        }
    }

    /// Drains what `pid`'s connection has for the room: events, then packets.
    pub(super) fn pump(&mut self, pid: ParticipantId, now: Instant) {
        let mut gone = false;
        let mut connected = false;
        let mut received = Vec::new();
        {
            let Some(p) = self.participants.get_mut(&pid) else {
                return;
            };
            p.dirty = true;
            let Link::Open(s) = &mut p.link else { return };
            while let Some(event) = s.poll_event() {
                match event {
                    SessionEvent::TrackOpened {
                        track,
                        receiver,
                        ssrc,
                        streams,
                    } => {
                        // A track opens again after renegotiation; a refusal stands.
                        let refused = p.opening.get(&track).is_some_and(|t| t.refused);
                        let source = streams
                            .into_iter()
                            .next()
                            .filter(|s| media_stream::valid_source(s));
                        p.opening.insert(
                            track,
                            OpeningTrack {
                                receiver,
                                ssrc,
                                source,
                                refused,
                            },
                        );
                    }
                    SessionEvent::Connected => connected = true,
                    SessionEvent::Gone => gone = true,
                }
            }
            while let Some(r) = s.poll_received() {
                received.push(r);
            }
        }
        for r in received {
            match r {
                Received::Rtp { track, packet } => {
                    let id = match self.tracks.by_engine_track(pid, &track) {
                        Some(id) => id,
                        None => match self.publish(pid, &track, packet.header.payload_type) {
                            Some(id) => id,
                            None => continue,
                        },
                    };
                    self.forward(id, packet, now);
                }
                Received::Rtcp(packets) => {
                    for feedback in rtcp::feedback(&packets) {
                        match feedback {
                            rtcp::Feedback::KeyframeRequest { ssrc } => {
                                let carried = self
                                    .participants
                                    .get(&pid)
                                    .and_then(|p| p.video.carried_as(ssrc));
                                if let Some(id) = carried {
                                    self.request_keyframe(id, now);
                                }
                            }
                        }
                    }
                }
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

    /// The participant is gone: its tracks leave every subscriber, its connection closes.
    pub(super) fn remove(&mut self, pid: ParticipantId, now: Instant) {
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
        self.tell_streams();
        self.subscriptions.remove(&pid);
        if let Some(change) = self.speaker.forget(pid, now) {
            self.outputs.push_back(Output::ActiveSpeaker {
                participant: change,
            });
            // Its places in everyone's last-N go to the next speakers at once.
            self.reallocate_everyone(now);
        }
        self.renegotiate = true;
    }

    /// Closes `pid`'s connection (sending what its close says) and its transport.
    pub(super) fn close_session(&mut self, pid: ParticipantId) {
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        if let Link::Open(mut s) = std::mem::replace(&mut p.link, Link::None) {
            s.close();
            while let Some(t) = s.poll_transmit() {
                self.outputs.push_back(Output::transmit(pid, t));
            }
            self.outputs
                .push_back(Output::CloseTransport { participant: pid });
        }
        p.negotiation = Negotiation::default();
        p.opening.clear();
        p.video = VideoSections::default();
        p.audio = AudioSections::default();
        p.sections_said.clear();
        p.deadline = None;
    }
}
