//! A receiver's video sections (decision 0044): one per video it takes at a time (the tiles
//! it shows, within its last-N and its bandwidth), each carrying whichever video the room
//! assigns it, as one continuous RTP stream (its own SSRC and numbering; [`Rewriter::resume`]
//! at each change). A video the receiver takes finds a section that carries nothing it takes
//! now, and only when none is free does its connection get one more (one offer to the receiver
//! alone). A join or a leave elsewhere in the room renegotiates nobody who says what it shows
//! (one that does not takes every video, up to the room's most); a connection holds as many
//! video sections of a codec as its receiver has ever taken videos of it at once, and never
//! more than [`super::Policy::max_videos`].
//!
//! The sections' stream ids name no publisher (`video-<n>`,
//! [`signaling_protocol::media_stream::video_section`]): the receiver is told which stream each
//! carries (`video_sections`, [`super::video_map`]), a hint it checks against the keys that
//! open the frames. A section that takes another video starts it at a key picture.

use std::time::Instant;

use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RtpCodecKind};
use signaling_protocol::{ParticipantId, media_stream};

use super::codecs::same_codec;
use super::participant::Link;
use super::rewrite::{Rewriter, extension_map};
use super::{MediaKind, MediaRoom, TrackId, fresh_ssrc};

/// One video section of a receiver's connection.
#[derive(Debug)]
pub(super) struct VideoSection {
    pub sender: RTCRtpSenderId,
    ssrc: u32,
    codec: RTCRtpCodec,
    /// An offer of ours carried it.
    offered: bool,
    /// What the receiver's answer negotiated: the payload type, and its extension ids by URI.
    negotiated: Option<(u8, Vec<(String, u8)>)>,
    /// The video it carries now (it keeps it until another video needs the section).
    pub carries: Option<TrackId>,
    /// Its output numbering, once negotiated.
    pub rewriter: Option<Rewriter>,
    /// When it last sent a packet.
    pub last_out: Option<std::time::Instant>,
}

/// A receiver's video sections.
#[derive(Debug, Default)]
pub(super) struct VideoSections {
    sections: Vec<VideoSection>,
}

impl VideoSections {
    /// True if a section sends as `ssrc`.
    pub fn holds_ssrc(&self, ssrc: u32) -> bool {
        self.sections.iter().any(|s| s.ssrc == ssrc)
    }

    /// The video carried by the section that sends as `ssrc`.
    pub fn carried_as(&self, ssrc: u32) -> Option<TrackId> {
        self.sections
            .iter()
            .find(|s| s.ssrc == ssrc)
            .and_then(|s| s.carries)
    }

    /// The section carrying video `id`, if any.
    pub fn carrying(&mut self, id: TrackId) -> Option<&mut VideoSection> {
        self.sections.iter_mut().find(|s| s.carries == Some(id))
    }

    /// The videos carried now.
    pub fn carried(&self) -> impl Iterator<Item = TrackId> + '_ {
        self.sections.iter().filter_map(|s| s.carries)
    }

    /// The sections a negotiation gave an output stream, with what they carry.
    pub fn negotiated(&self) -> impl Iterator<Item = (RTCRtpSenderId, Option<TrackId>)> + '_ {
        self.sections
            .iter()
            .filter(|s| s.rewriter.is_some())
            .map(|s| (s.sender, s.carries))
    }

    /// Every section's numbering, to send padding on.
    pub fn rewriters(&mut self) -> impl Iterator<Item = &mut Rewriter> + '_ {
        self.sections.iter_mut().filter_map(|s| s.rewriter.as_mut())
    }

    /// An offer of ours went out: it carried every section.
    pub fn offered(&mut self) {
        for s in &mut self.sections {
            s.offered = true;
        }
    }

    /// Video `id` is gone: its section carries nothing.
    pub fn forget(&mut self, id: TrackId) {
        for s in self.sections.iter_mut().filter(|s| s.carries == Some(id)) {
            s.carries = None;
        }
    }
}

impl MediaRoom {
    /// Gives each video `sub` takes now a section of its connection: the one it has, a free
    /// one (carrying nothing it takes), or a new one; then tells it what each carries.
    pub(super) fn assign_videos(&mut self, sub: ParticipantId) {
        let taken: Vec<(TrackId, RTCRtpCodec)> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.kind == MediaKind::Video && t.publisher != sub)
            .filter(|(_, t)| {
                t.downtracks
                    .iter()
                    .any(|d| d.subscriber == sub && d.takes())
            })
            .map(|(id, t)| (id, t.codec.clone()))
            .collect();
        let mut restarted = Vec::new();
        let mut added = false;
        {
            let Some(p) = self.participants.get_mut(&sub) else {
                return;
            };
            let Link::Open(s) = &mut p.link else { return };
            let takes = |id: &TrackId| taken.iter().any(|(t, _)| t == id);
            for (id, codec) in &taken {
                if p.video.sections.iter().any(|v| v.carries == Some(*id)) {
                    continue;
                }
                // A free section of its codec: one that carries nothing first.
                let free = p
                    .video
                    .sections
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| !v.carries.is_some_and(|c| takes(&c)))
                    .filter(|(_, v)| same_codec(&v.codec, codec))
                    .min_by_key(|(_, v)| v.carries.is_some())
                    .map(|(i, _)| i);
                let i = match free {
                    Some(i) => i,
                    // At the most: it waits for the allocation to leave it out (or for a
                    // section to come free).
                    None if p.video.sections.len() >= self.max_videos => continue,
                    None => {
                        let n = p.video.sections.len();
                        let ssrc = fresh_ssrc(&mut self.rng, &p.video, &p.audio);
                        let stream = media_stream::video_section(n);
                        let Some(sender) =
                            s.add_section(stream, RtpCodecKind::Video, codec.clone(), ssrc)
                        else {
                            continue;
                        };
                        p.video.sections.push(VideoSection {
                            sender,
                            ssrc,
                            codec: codec.clone(),
                            offered: false,
                            negotiated: None,
                            carries: None,
                            rewriter: None,
                            last_out: None,
                        });
                        added = true;
                        n
                    }
                };
                let v = &mut p.video.sections[i];
                v.carries = Some(*id);
                if let (Some(r), Some((pt, ids))) = (v.rewriter.take(), &v.negotiated) {
                    let extensions = self
                        .tracks
                        .get(*id)
                        .map(|t| extension_map(&t.extensions, ids))
                        .unwrap_or_default();
                    v.rewriter = Some(r.resume(*pt, extensions));
                    restarted.push(*id);
                }
            }
            if added {
                p.negotiation.want();
                self.renegotiate = true;
            }
        }
        for id in restarted {
            self.restart_downtrack(id, sub);
        }
        self.tell_sections(sub);
    }

    /// `sub`'s copy of `id` starts anew in its section: at the next key picture, asked for.
    fn restart_downtrack(&mut self, id: TrackId, sub: ParticipantId) {
        if let Some(d) = self
            .tracks
            .get_mut(id)
            .and_then(|t| t.downtracks.iter_mut().find(|d| d.subscriber == sub))
            && let Some(layers) = d.layers.as_mut()
        {
            layers.restart();
        }
    }

    /// After `sub`'s answer: each video section our answered offer carried learns its payload
    /// type and extension ids, and what it carries starts at a key picture.
    pub(super) fn learn_video_sections(&mut self, sub: ParticipantId, now: Instant) {
        let mut started = Vec::new();
        {
            let Some(p) = self.participants.get_mut(&sub) else {
                return;
            };
            let Link::Open(s) = &mut p.link else { return };
            for v in &mut p.video.sections {
                if !v.offered || v.negotiated.is_some() {
                    continue;
                }
                let Some(sent) = s.sent_track(v.sender, |c| same_codec(c, &v.codec)) else {
                    continue;
                };
                let Some(pt) = sent.payload_type else {
                    tracing::debug!(
                        subscriber = sub,
                        "the answer negotiated no codec of the section"
                    );
                    continue;
                };
                let extensions = v
                    .carries
                    .and_then(|id| self.tracks.get(id))
                    .map(|t| extension_map(&t.extensions, &sent.extensions))
                    .unwrap_or_default();
                v.rewriter = Some(Rewriter::new(v.ssrc, pt, extensions));
                v.negotiated = Some((pt, sent.extensions));
                // Before its DTLS handshake is done nothing reaches it: the key picture is
                // asked for when it connects (`pump`).
                if let Some(id) = v.carries.filter(|_| s.is_connected()) {
                    started.push(id);
                }
            }
        }
        for id in started {
            self.restart_downtrack(id, sub);
            self.request_keyframe(id, now);
        }
    }
}
