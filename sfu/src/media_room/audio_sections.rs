//! A receiver's audio sections (decision 0044): the room forwards only its loudest few audio
//! streams ([`super::loudest`]), so a receiver takes them through as many sections as there are
//! places, each carrying whoever holds a place at the moment, as one continuous RTP stream
//! (its own SSRC and numbering; [`Rewriter::resume_after`] at each change of speaker). A join
//! or a leave changes no receiver's sections, and so renegotiates nobody for audio; a room of a
//! hundred costs each connection three audio sections, not ninety-nine.
//!
//! The sections' stream ids name no publisher (`audio-<n>`,
//! [`signaling_protocol::media_stream::audio_section`]): a frame plays as whoever's key opens it,
//! and the receiver learns who speaks from that key, never from the server.
//!
//! A stream that holds a place while none of a receiver's sections is free (streams without a
//! level, or a room without a limit) gets a new section, negotiated before its packets flow.

use std::time::Instant;

use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling_protocol::{ParticipantId, media_stream};

use super::codecs::{opus, same_codec};
use super::forward::send;
use super::participant::Link;
use super::rewrite::{Rewriter, extension_map};
use super::{MediaRoom, TrackId, fresh_ssrc};

/// Opus at 48 kHz: timestamp units per millisecond.
const OPUS_PER_MS: u128 = 48;

/// One audio section of a receiver's connection.
#[derive(Debug)]
pub(super) struct AudioSection {
    sender: RTCRtpSenderId,
    ssrc: u32,
    /// An offer of ours carried it.
    offered: bool,
    /// What the receiver's answer negotiated: the payload type, and its extension ids by URI.
    negotiated: Option<(u8, Vec<(String, u8)>)>,
    /// The stream it carries now (it keeps it while the stream holds a place).
    carries: Option<TrackId>,
    /// Its output numbering, once negotiated.
    rewriter: Option<Rewriter>,
    /// When it last sent a packet.
    last_out: Option<Instant>,
}

/// A receiver's audio sections.
#[derive(Debug, Default)]
pub(super) struct AudioSections {
    sections: Vec<AudioSection>,
    /// A stream found no free section: one more is due.
    short: bool,
}

impl AudioSections {
    /// True if a section sends as `ssrc`.
    pub fn holds_ssrc(&self, ssrc: u32) -> bool {
        self.sections.iter().any(|s| s.ssrc == ssrc)
    }

    /// The streams carried now.
    pub fn carried(&self) -> impl Iterator<Item = TrackId> + '_ {
        self.sections.iter().filter_map(|s| s.carries)
    }

    /// An offer of ours went out: it carried every section.
    pub fn offered(&mut self) {
        for s in &mut self.sections {
            s.offered = true;
        }
    }

    /// The section carrying `track`, or else a negotiated one whose stream no longer holds a
    /// place (`holds`), given to `track` from now on, the numbering continued. `None`: none is
    /// free (and one more is due).
    fn section_for(
        &mut self,
        track: TrackId,
        extensions: &[(String, u8)],
        holds: impl Fn(TrackId) -> bool,
        now: Instant,
    ) -> Option<&mut AudioSection> {
        if let Some(i) = self.sections.iter().position(|s| s.carries == Some(track)) {
            return Some(&mut self.sections[i]);
        }
        let free = self
            .sections
            .iter()
            .enumerate()
            .filter(|(_, s)| s.rewriter.is_some() && !s.carries.is_some_and(&holds))
            // The one quiet the longest.
            .min_by_key(|(_, s)| s.last_out)
            .map(|(i, _)| i);
        let Some(i) = free else {
            self.short = true;
            return None;
        };
        let s = &mut self.sections[i];
        let (pt, ids) = s.negotiated.clone()?;
        let map = extension_map(extensions, &ids);
        // The timestamp moves on by the time the section was quiet.
        let quiet = s
            .last_out
            .map_or(0, |t| now.saturating_duration_since(t).as_millis());
        let step = u32::try_from(quiet.max(20) * OPUS_PER_MS).unwrap_or(u32::MAX / 2);
        s.rewriter = s.rewriter.take().map(|r| r.resume_after(pt, map, step));
        s.carries = Some(track);
        Some(s)
    }
}

impl MediaRoom {
    /// `sub` gets audio sections until it has `n`.
    pub(super) fn add_audio_sections(&mut self, sub: ParticipantId, n: usize) {
        let Some(p) = self.participants.get_mut(&sub) else {
            return;
        };
        let Link::Open(s) = &mut p.link else { return };
        while p.audio.sections.len() < n {
            let ssrc = fresh_ssrc(&mut self.rng, &p.video, &p.audio);
            let stream = media_stream::audio_section(p.audio.sections.len());
            let Some(sender) = s.add_section(stream, RtpCodecKind::Audio, opus(), ssrc) else {
                return;
            };
            p.audio.sections.push(AudioSection {
                sender,
                ssrc,
                offered: false,
                negotiated: None,
                carries: None,
                rewriter: None,
                last_out: None,
            });
            p.negotiation.want();
            self.renegotiate = true;
        }
    }

    /// After `sub`'s answer: each audio section our answered offer carried learns its payload
    /// type and extension ids, and may carry a stream from now on.
    pub(super) fn learn_audio_sections(&mut self, sub: ParticipantId) {
        let Some(p) = self.participants.get_mut(&sub) else {
            return;
        };
        let Link::Open(s) = &mut p.link else { return };
        let codec = opus();
        for a in &mut p.audio.sections {
            if !a.offered || a.negotiated.is_some() {
                continue;
            }
            let Some(sent) = s.sent_track(a.sender, |c| same_codec(c, &codec)) else {
                continue;
            };
            let Some(pt) = sent.payload_type else {
                tracing::debug!(subscriber = sub, "the answer negotiated no Opus");
                continue;
            };
            a.negotiated = Some((pt, sent.extensions));
            a.rewriter = Some(Rewriter::new(a.ssrc, pt, Vec::new()));
        }
    }

    /// One packet of audio track `id`, to every other participant if the stream holds a place
    /// (`forwarded`); if not, a section that carries it closes its numbers over the packet.
    pub(super) fn forward_audio(
        &mut self,
        id: TrackId,
        packet: &rtc::rtp::packet::Packet,
        forwarded: bool,
        now: Instant,
    ) {
        let Some(track) = self.tracks.get(id) else {
            return;
        };
        let audio = &self.audio;
        let holds = |t: TrackId| t != id && audio.holds_place(t);
        let mut short = false;
        for (&q, p) in self.participants.iter_mut() {
            if q == track.publisher || !p.negotiation.routed {
                continue;
            }
            let Link::Open(s) = &mut p.link else { continue };
            if !forwarded {
                if let Some(a) = p.audio.sections.iter_mut().find(|a| a.carries == Some(id))
                    && let Some(r) = a.rewriter.as_mut()
                {
                    r.skip(&packet.header);
                }
                continue;
            }
            let Some(a) = p.audio.section_for(id, &track.extensions, holds, now) else {
                short |= p.audio.short;
                continue;
            };
            // Not before its DTLS handshake is done (the engine could only drop it).
            if !s.is_connected() {
                continue;
            }
            let Some(header) = a
                .rewriter
                .as_mut()
                .and_then(|r| r.rewrite(&packet.header, packet.header.marker))
            else {
                continue;
            };
            a.last_out = Some(now);
            p.dirty |= send(s, &mut self.counters, q, header, packet, now);
        }
        if short {
            let due: Vec<(ParticipantId, usize)> = self
                .participants
                .iter_mut()
                .filter_map(|(&q, p)| {
                    std::mem::take(&mut p.audio.short).then_some((q, p.audio.sections.len() + 1))
                })
                .collect();
            for (q, n) in due {
                // Unless one is on its way already.
                let pending = self
                    .participants
                    .get(&q)
                    .is_some_and(|p| p.audio.sections.iter().any(|a| a.negotiated.is_none()));
                if !pending {
                    self.add_audio_sections(q, n);
                }
            }
        }
    }
}
