//! Receiving: every track the SFU sends is reassembled into frames (VP9 by its payload
//! descriptor, Opus one per packet) and handed to the bot's state, which decrypts, counts or
//! reads each as the run's mode says. A frame whose key has not arrived waits up to a second
//! for it (as the browser does); a frame with a lost packet is counted lost, not failed.
//!
//! Loss is read from each track's RTP sequence numbers, as a browser reads it: the SFU numbers
//! what it forwards without gaps, so a gap is a packet lost on the way, never a layer or a
//! quiet microphone the SFU left out (the senders' SFrame counters have those gaps by design).
//! An audio packet is a frame: each one missing counts, until it arrives late. A video gap
//! counts one frame, the one it spoiled (or the one it swallowed whole, between two frames).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use media_crypto::mls::KEY_WAIT;
use rtc::rtp::Packet;

use super::climb::{Climb, Top, Widened};
use super::state::{BotState, Check, Label, Opened};
use crate::stats::Failure;
use media_packet::vp9::Descriptor;
use signaling_protocol::{VideoSection, VideoWant, media_stream};

/// How far behind the next expected sequence number a video packet may be and still be taken
/// as late (a resend); further back is a jump of the numbering, taken as a restart.
const MAX_BEHIND: u16 = 1000;

/// The most audio packets counted missing at once.
const MAX_GAP: u64 = 500;

/// How long after the SFU moved another video into a section the last one's frames may still
/// arrive.
const RELABEL_GRACE: Duration = Duration::from_secs(1);

/// One track the SFU sends.
#[derive(Debug)]
struct Incoming {
    /// The participant the server names as the track's publisher: by its stream id, or for a
    /// video section by what the SFU says it carries.
    label: Label,
    /// When the SFU last said the section carries another video.
    relabelled: Option<Instant>,
    /// Its section's media id.
    mid: Option<String>,
    video: bool,
    check: Check,
    assembling: Option<BytesMut>,
    next_seq: Option<u16>,
    /// The highest sequence number seen, extended past wraps.
    highest: Option<u64>,
    /// Audio packets missing below it, recent ones, with the second of the run each was
    /// counted at (a late one is taken off the loss).
    missing: BTreeMap<u64, usize>,
    /// Frames waiting for their key, with when they arrived.
    pending: Vec<(Bytes, Instant)>,
    /// The spatial layer the last picture ended at (its marker), and when.
    top_layer: Option<u8>,
    last_picture: Option<Instant>,
}

/// Every track a bot receives.
#[derive(Debug)]
pub struct Tracks {
    tracks: HashMap<String, Incoming>,
    /// Whether frames are synthetic.
    synthetic: bool,
    /// Tracks still to be decrypted in full (None: every one).
    verify_left: Option<usize>,
    /// When the oldest held frame has waited long enough (none held: `None`).
    retry_at: Option<Instant>,
    /// The videos' stream ids, as they were first listed (the first ones get the tiles).
    videos: Vec<String>,
    /// What the SFU says each video section carries, by media id.
    sections: HashMap<String, Option<String>>,
    /// Its videos' layers through a squeeze of its downlink.
    climb: Climb,
}

impl Tracks {
    pub fn new(synthetic: bool, verify: Option<usize>) -> Self {
        Tracks {
            tracks: HashMap::new(),
            synthetic,
            verify_left: verify,
            retry_at: None,
            videos: Vec::new(),
            sections: HashMap::new(),
            climb: Climb::default(),
        }
    }

    /// A track opened in section `mid`: `stream` is the stream id the SFU gave it (a video
    /// section's stream is what the SFU says it carries). A track that opens again (a
    /// renegotiation) keeps how it is checked.
    pub fn opened(
        &mut self,
        track: String,
        stream: Option<&str>,
        video: bool,
        mid: Option<String>,
    ) {
        let mapped = mid.as_ref().and_then(|m| self.sections.get(m));
        let publisher = match mapped {
            Some(carries) => carries.as_deref().and_then(publisher_of),
            None => stream.and_then(publisher_of),
        };
        let label = Label {
            now: publisher,
            before: None,
        };
        if let Some(t) = self.tracks.get_mut(&track) {
            (t.label, t.video, t.mid) = (label, video, mid);
            return;
        }
        let check = if self.synthetic {
            Check::Synthetic
        } else {
            match self.verify_left.as_mut() {
                None => Check::Decrypt,
                Some(0) => Check::Count,
                Some(n) => {
                    *n -= 1;
                    Check::Decrypt
                }
            }
        };
        self.tracks.insert(
            track,
            Incoming {
                label,
                relabelled: None,
                mid,
                video,
                check,
                assembling: None,
                next_seq: None,
                highest: None,
                missing: BTreeMap::new(),
                pending: Vec::new(),
                top_layer: None,
                last_picture: None,
            },
        );
    }

    /// A video that fell in the last squeeze has not yet climbed back.
    pub fn climbing(&self) -> bool {
        matches!(self.climb, Climb::Climbing { .. })
    }

    /// Its downlink narrows: each video's top layer now is what it had.
    pub fn squeezed(&mut self) {
        let now = Instant::now();
        tracing::debug!(tops = ?tops(&self.tracks, now).collect::<Vec<_>>(), "downlink squeezed");
        self.climb.squeezed(tops(&self.tracks, now));
    }

    /// Its downlink widens at `now`: the climb back is timed, if any video fell.
    pub fn widened(&mut self, state: &mut BotState, now: Instant) {
        tracing::debug!(tops = ?tops(&self.tracks, now).collect::<Vec<_>>(), "downlink wide again");
        if self.climb.widened(now, tops(&self.tracks, now)) == Widened::KeptLayers {
            state.stats.squeezes_kept_layers += 1;
        }
    }

    /// The videos published now (the SFU's list, `video_streams`), of others than `me`: true
    /// if that changed which there are.
    pub fn listed(&mut self, streams: &[String], me: u64) -> bool {
        let before = self.videos.len();
        self.videos.retain(|v| streams.contains(v));
        let mut changed = self.videos.len() != before;
        for s in streams {
            let others = publisher_of(s).is_some_and(|p| p != me);
            if others && !self.videos.contains(s) {
                self.videos.push(s.clone());
                changed = true;
            }
        }
        changed
    }

    /// What each video section carries from now on (`video_sections`), at `now`.
    pub fn mapped(&mut self, sections: Vec<VideoSection>, now: Instant) {
        self.sections = sections.into_iter().map(|s| (s.mid, s.stream)).collect();
        for t in self.tracks.values_mut().filter(|t| t.video) {
            let Some(carries) = t.mid.as_ref().and_then(|m| self.sections.get(m)) else {
                continue;
            };
            let publisher = carries.as_deref().and_then(publisher_of);
            if publisher != t.label.now {
                t.label = Label {
                    now: publisher,
                    before: t.label.now,
                };
                t.relabelled = Some(now);
            }
        }
    }

    /// What a participant showing `tiles` videos `height` pixels tall shows: the first videos
    /// to arrive, and none of the others.
    pub fn video_wants(&self, tiles: usize, height: u16) -> Vec<VideoWant> {
        self.videos
            .iter()
            .enumerate()
            .map(|(i, stream)| VideoWant {
                stream: stream.clone(),
                height: if i < tiles { height } else { 0 },
            })
            .collect()
    }

    /// One RTP packet of `track`.
    pub fn packet(&mut self, state: &mut BotState, track: &str, packet: Packet, now: Instant) {
        state.stats.packets_received += 1;
        let Some(t) = self.tracks.get_mut(track) else {
            return;
        };
        t.retry(state, now);
        let second = state.since_start(now).as_secs() as usize;
        t.count_loss(state, packet.header.sequence_number, second);
        let frame = if t.video {
            let frame = t.reassemble(state, packet, second, now);
            // A picture ended with this packet (its marker): where it ended.
            if t.last_picture == Some(now)
                && let Some(top) = t.top_layer
                && let Some(took) = self.climb.picture(track, top, now)
            {
                crate::stats::record(&mut state.stats.layer_climb, took);
            }
            state.stats.video_frames_received += u64::from(frame.is_some());
            frame
        } else {
            Some(packet.payload)
        };
        if let Some(frame) = frame
            && t.frame(state, frame, now)
        {
            let due = now + KEY_WAIT;
            self.retry_at = Some(self.retry_at.map_or(due, |at| at.min(due)));
        }
    }

    /// Retries every held frame (a key arrived, or the oldest waited long enough).
    pub fn retry(&mut self, state: &mut BotState, now: Instant) {
        for t in self.tracks.values_mut() {
            t.retry(state, now);
        }
        self.retry_at = self
            .tracks
            .values()
            .flat_map(|t| t.pending.iter().map(|(_, arrived)| *arrived + KEY_WAIT))
            .min();
    }

    /// When held frames are to be retried next, if any are held.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }
}

/// A video without a picture for this long is taken as paused (a picture every 33-133 ms
/// even at the lowest temporal layer).
const PAUSED_AFTER: Duration = Duration::from_millis(500);

/// The top spatial layer each video's pictures end at now (`None`: paused).
fn tops(tracks: &HashMap<String, Incoming>, now: Instant) -> impl Iterator<Item = (&String, Top)> {
    tracks.iter().filter(|(_, t)| t.video).map(move |(id, t)| {
        let fresh = t
            .last_picture
            .is_some_and(|at| now.saturating_duration_since(at) < PAUSED_AFTER);
        (id, t.top_layer.filter(|_| fresh))
    })
}

impl Incoming {
    /// Audio: packets missing from the sequence count as lost frames until they arrive.
    fn count_loss(&mut self, state: &mut BotState, seq: u16, second: usize) {
        let ext = match self.highest {
            None => u64::from(seq),
            Some(h) => {
                let step = i64::from(seq.wrapping_sub(h as u16) as i16);
                h.saturating_add_signed(step)
            }
        };
        match self.highest {
            Some(h) if ext > h => {
                if !self.video {
                    // A gap of more than a few seconds is a restart, not loss.
                    let gap = (ext - h - 1).min(MAX_GAP);
                    state.stats.frames_lost += gap;
                    for missing in ext - gap..ext {
                        state.stats.missed(second);
                        self.missing.insert(missing, second);
                    }
                    while self.missing.len() > MAX_GAP as usize {
                        self.missing.pop_first();
                    }
                }
                self.highest = Some(ext);
            }
            Some(_) => {
                if let Some(counted_at) = self.missing.remove(&ext) {
                    state.stats.frames_lost -= 1;
                    state.stats.found(counted_at);
                }
            }
            None => self.highest = Some(ext),
        }
    }

    /// Adds a packet to the frame being assembled; the frame once its last packet is in.
    fn reassemble(
        &mut self,
        state: &mut BotState,
        packet: Packet,
        second: usize,
        now: Instant,
    ) -> Option<Bytes> {
        // A gap in sequence numbers spoils the frame it falls in (or one between frames).
        let seq = packet.header.sequence_number;
        if let Some(next) = self.next_seq
            && (1..=MAX_BEHIND).contains(&next.wrapping_sub(seq))
        {
            // Behind what was assembled (a resend, or one overtaken on the way): too late for
            // the frame it belonged to, counted lost at its gap; a receiver's jitter buffer
            // drops it too.
            state.stats.late_packets += 1;
            return None;
        }
        if self.next_seq.is_some_and(|n| n != seq) {
            state.stats.frames_lost += 1;
            state.stats.missed(second);
            self.assembling = None;
        }
        self.next_seq = Some(seq.wrapping_add(1));
        if packet.payload.is_empty() {
            // Padding (the SFU probing the path, between frames): a number without media.
            return None;
        }
        let Ok((d, payload_start)) = Descriptor::read(&packet.payload) else {
            self.assembling = None;
            return None;
        };
        if d.begins {
            self.assembling = Some(BytesMut::new());
        }
        if let Some(buf) = self.assembling.as_mut() {
            buf.extend_from_slice(&packet.payload[payload_start..]);
        }
        state.stats.video_bytes += packet.payload.len() as u64;
        if packet.header.marker {
            // The picture ends here: at the top layer the SFU forwards.
            let top = d.spatial();
            if self.top_layer.is_some_and(|t| t != top) {
                state.stats.layer_switches += 1;
            }
            self.top_layer = Some(top);
            self.last_picture = Some(now);
        }
        if d.ends || packet.header.marker {
            let frame = self.assembling.take().map(BytesMut::freeze);
            if frame.is_some() {
                *state
                    .stats
                    .layer_frames
                    .entry((d.spatial(), d.temporal()))
                    .or_default() += 1;
            }
            return frame;
        }
        None
    }

    /// Who the server says sends its frames arriving at `now`.
    fn label(&self, now: Instant) -> Label {
        let recent = self
            .relabelled
            .is_some_and(|at| now.saturating_duration_since(at) < RELABEL_GRACE);
        Label {
            now: self.label.now,
            before: self.label.before.filter(|_| recent),
        }
    }

    /// Hands a frame to the state; true if it is held for its key.
    fn frame(&mut self, state: &mut BotState, frame: Bytes, arrived: Instant) -> bool {
        let held = state.open(&frame, self.label(arrived), self.check) == Opened::NoKeyYet;
        if held {
            self.pending.push((frame, arrived));
        }
        held
    }

    /// Retries held frames; those that waited too long count as "no key yet".
    fn retry(&mut self, state: &mut BotState, now: Instant) {
        if self.pending.is_empty() {
            return;
        }
        let check = self.check;
        let labels: Vec<Label> = self.pending.iter().map(|(_, at)| self.label(*at)).collect();
        let mut labels = labels.into_iter();
        self.pending.retain(|(frame, arrived)| {
            match state.open(frame, labels.next().unwrap_or_default(), check) {
                Opened::NoKeyYet if now.duration_since(*arrived) < KEY_WAIT => true,
                Opened::NoKeyYet => {
                    state
                        .stats
                        .failed(Failure::NoKeyYet, state.since_start(now));
                    false
                }
                Opened::Done => false,
            }
        });
    }
}

/// The publisher a stream id names.
fn publisher_of(stream: &str) -> Option<u64> {
    media_stream::parse_stream_id(stream).map(|(p, _)| p)
}
