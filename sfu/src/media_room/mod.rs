//! The media room: one IO-free state machine per room (in the shape of str0m's `Rtc` and
//! quinn-proto). It owns every participant's WebRTC session, the one track table, the
//! forwarding (header rewriting and continuity), key-frame relay, the active speaker and
//! negotiation; it reads no clock, touches no socket, and draws its randomness from the seed
//! it was made with.
//!
//! One job per file, each an `impl MediaRoom` of its own: [`participant`] (joining, leaving,
//! draining a connection), [`signal`] (offer/answer), [`publish`], [`subscribe`], [`forward`]
//! (with key-frame requests); [`session`] is the only file that reaches the WebRTC engine, and
//! [`rtcp`] says which feedback it runs and which reaches the room.
//!
//! The driver feeds it [`Input`]s with the time ([`MediaRoom::handle_input`]) and carries out
//! its [`Output`]s ([`MediaRoom::poll_output`]): datagrams to send, signaling for a
//! participant, transports to open and close. [`MediaRoom::poll_timeout`] says when to call
//! again with [`Input::Timeout`]. A packet is forwarded within the call that delivers it; no
//! call waits on the network.

mod audio_sections;
pub mod bandwidth;
pub mod codecs;
pub mod emulated;
mod forward;
pub mod layers;
pub mod loudest;
mod negotiation;
pub mod offer;
mod participant;
mod publish;
pub mod rewrite;
pub mod rtcp;
mod send_layers;
mod session;
mod signal;
pub mod speaker;
mod subscribe;
mod subscription;
mod tracks;
mod video_map;
mod video_sections;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand::SeedableRng;
use rand::rngs::StdRng;
use signaling_protocol::{ErrorCode, MediaSignal, ParticipantId};

pub use layers::Layer;
use loudest::LoudestAudio;
use participant::{Link, Participant};
use rtcp::pli::KeyframeThrottle;
pub use session::{
    Session, SessionError, Transport, host_candidate, one_stream_track, rejects_all_media,
};
use speaker::ActiveSpeaker;
use tracks::TrackTable;
pub use tracks::{MAX_TRACKS_PER_PUBLISHER, MediaKind, TrackId};

/// How often the active speaker is re-evaluated.
const SPEAKER_TICK: Duration = Duration::from_millis(250);
/// How often each subscriber's videos are shared out anew within its bandwidth.
const ALLOCATION_TICK: Duration = Duration::from_millis(500);
/// At most one key-frame request per track per this interval reaches its publisher. A joiner
/// waits for a key picture of each video it shows, and one who asks just after another joiner
/// waits out the interval: at 500 ms a meeting-50 join spent ~700 ms (p50) to its shown
/// videos, at 250 ms ~530 ms, for 65% more requests (docs/benchmarks.md, "Key-frame requests").
const KEYFRAME_INTERVAL: Duration = Duration::from_millis(250);

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

impl Output {
    fn transmit(participant: ParticipantId, t: session::Transmit) -> Self {
        Output::Transmit {
            participant,
            local: t.local,
            remote: t.remote,
            data: t.data,
        }
    }
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

/// One room's media.
pub struct MediaRoom {
    participants: BTreeMap<ParticipantId, Participant>,
    tracks: TrackTable,
    keyframes: KeyframeThrottle,
    speaker: ActiveSpeaker,
    next_speaker_tick: Option<Instant>,
    next_allocation: Option<Instant>,
    /// Someone joined since the active speaker was last said: say it again from then.
    speaker_news: Option<Instant>,
    outputs: VecDeque<Output>,
    counters: Counters,
    /// Someone's received tracks changed: offers may be due.
    renegotiate: bool,
    /// The room's randomness (the SSRCs it sends as), from the seed it was made with.
    rng: StdRng,
    /// What each subscriber last asked to see.
    subscriptions: HashMap<ParticipantId, subscription::Wants>,
    /// The most videos anyone receives at a time (0: no limit).
    last_n: usize,
    /// The most video sections a receiver gets, whatever its last-N.
    max_videos: usize,
    /// The audio streams forwarded now.
    audio: LoudestAudio,
    /// The videos published, as the routed participants were last told.
    streams_said: Vec<String>,
}

/// How a room forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How many audio streams (the loudest) each participant receives at a time; 0: all.
    pub loudest_audio: usize,
    /// How many videos each participant receives at a time, at most (of those it shows: the
    /// largest tiles, then the most recent speakers'); 0: no limit but what it shows.
    pub last_n: usize,
    /// The most videos anyone receives at a time, whatever its last-N: the most video
    /// sections a receiver's connection gets (decision 0044), so that a connection has a
    /// bounded size in a room of any size.
    pub max_videos: usize,
}

/// [`Policy::max_videos`] by default: a grid of 7 × 7.
pub const MAX_VIDEOS: usize = 49;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            loudest_audio: 3,
            last_n: 0,
            max_videos: MAX_VIDEOS,
        }
    }
}

impl std::fmt::Debug for MediaRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaRoom")
            .field("participants", &self.participants.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl MediaRoom {
    /// An empty room with the default [`Policy`] whose randomness comes from `seed` (the
    /// driver gives a random one; a test, a fixed one, to run the same way every time).
    pub fn new(seed: u64) -> Self {
        MediaRoom::with_policy(seed, Policy::default())
    }

    /// An empty room that forwards by `policy`.
    pub fn with_policy(seed: u64, policy: Policy) -> Self {
        MediaRoom {
            participants: BTreeMap::new(),
            tracks: TrackTable::default(),
            keyframes: KeyframeThrottle::new(KEYFRAME_INTERVAL),
            speaker: ActiveSpeaker::default(),
            next_speaker_tick: None,
            next_allocation: None,
            speaker_news: None,
            outputs: VecDeque::new(),
            counters: Counters::default(),
            renegotiate: false,
            rng: StdRng::seed_from_u64(seed),
            subscriptions: HashMap::new(),
            last_n: policy.last_n,
            max_videos: policy.max_videos.max(1),
            audio: LoudestAudio::new(policy.loudest_audio),
            streams_said: Vec::new(),
        }
    }

    /// True when nobody is in the room.
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The tracks published now: (publisher, kind, subscribers receiving it: those whose
    /// sections carry it now).
    pub fn published(&self) -> Vec<(ParticipantId, MediaKind, Vec<ParticipantId>)> {
        self.tracks
            .iter()
            .map(|(id, t)| {
                let subs = self
                    .participants
                    .iter()
                    .filter(|(_, p)| match t.kind {
                        MediaKind::Video => p.video.carried().any(|c| c == id),
                        MediaKind::Audio => p.audio.carried().any(|c| c == id),
                    })
                    .map(|(&q, _)| q)
                    .collect();
                (t.publisher, t.kind, subs)
            })
            .collect()
    }

    /// The track `publisher` publishes of `kind` (its first, if more).
    pub fn track_of(&self, publisher: ParticipantId, kind: MediaKind) -> Option<TrackId> {
        self.tracks
            .iter()
            .find(|(_, t)| t.publisher == publisher && t.kind == kind)
            .map(|(id, _)| id)
    }

    /// The most of layered track `track` that `subscriber` gets from now on (`None`:
    /// nothing), as if its tile asked for it; a track without layers is not affected.
    pub fn set_layers(&mut self, subscriber: ParticipantId, track: TrackId, target: Option<Layer>) {
        if let Some(t) = self.tracks.get_mut(track)
            && let Some(d) = t.downtracks.iter_mut().find(|d| d.subscriber == subscriber)
            && let Some(layers) = d.layers.as_mut()
        {
            d.wanted = target;
            layers.set_target(target);
        }
    }

    /// How many media sections `pid`'s connection has.
    #[cfg(test)]
    fn sections(&mut self, pid: ParticipantId) -> Option<usize> {
        Some(self.participants.get_mut(&pid)?.session()?.sections())
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to call [`MediaRoom::handle_input`] with [`Input::Timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.participants
            .values()
            .flat_map(|p| [p.deadline, p.probe.pace_at])
            .flatten()
            .chain(self.next_speaker_tick)
            .chain(self.next_allocation)
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
            } => self.join(participant, may_publish, now),
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
            } => self.transport_refused(participant, code, message),
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
                s.handle_timeout(now);
                self.pump(pid, now);
            }
        }
        let pacing: Vec<ParticipantId> = self
            .participants
            .iter()
            .filter(|(_, p)| p.probe.pace_at.is_some_and(|t| t <= now))
            .map(|(&pid, _)| pid)
            .collect();
        for pid in pacing {
            self.pace_probe(pid, now);
        }
        if self.next_allocation.is_some_and(|t| t <= now) {
            self.next_allocation = (!self.participants.is_empty()).then_some(now + ALLOCATION_TICK);
            self.reallocate_all(now);
        }
        if self.next_speaker_tick.is_some_and(|t| t <= now) {
            self.next_speaker_tick = (!self.participants.is_empty()).then_some(now + SPEAKER_TICK);
            if let Some(change) = self.speaker.update(now) {
                self.outputs.push_back(Output::ActiveSpeaker {
                    participant: change,
                });
                self.reallocate_everyone(now);
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

    /// Datagrams of every connection touched, and their next deadlines (never before the next
    /// millisecond: a connection that keeps naming a past instant does not spin the driver).
    fn flush(&mut self, now: Instant) {
        for (&pid, p) in self.participants.iter_mut() {
            if !std::mem::take(&mut p.dirty) {
                continue;
            }
            let Link::Open(s) = &mut p.link else { continue };
            while let Some(t) = s.poll_transmit() {
                self.outputs.push_back(Output::transmit(pid, t));
            }
            p.deadline = s
                .poll_timeout()
                .map(|d| d.max(now + Duration::from_millis(1)));
        }
    }
}

/// An SSRC a receiver's connection does not send as yet: none of its video or audio
/// sections'.
fn fresh_ssrc(
    rng: &mut StdRng,
    video: &video_sections::VideoSections,
    audio: &audio_sections::AudioSections,
) -> u32 {
    loop {
        let n: u32 = rand::Rng::random(rng);
        if n != 0 && !video.holds_ssrc(n) && !audio.holds_ssrc(n) {
            return n;
        }
    }
}

#[cfg(test)]
mod tests;
