//! Forwarding: each packet of a published video goes, with its header rewritten, to every
//! subscriber whose video section carries it (negotiated, its connection up) and whose layers
//! include it ([`super::audio_sections`] forwards audio); key frames are asked of the publisher
//! for new subscribers and for subscribers' requests, throttled per track.

use std::time::Instant;

use media_packet::vp9::Descriptor;
use signaling_protocol::ParticipantId;

use super::layers::Verdict;
use super::participant::Link;
use super::{MediaKind, MediaRoom, TrackId, rtcp};

/// VP9's RTP clock: 90 kHz.
const VIDEO_CLOCK_KHZ: u32 = 90;

impl MediaRoom {
    /// One packet of a published track to each of its subscribers: of a layered track, to
    /// those whose selection includes its layers.
    pub(super) fn forward(&mut self, id: TrackId, packet: rtc::rtp::packet::Packet, now: Instant) {
        let Some(track) = self.tracks.get_mut(id) else {
            return;
        };
        self.counters.packets_in += 1;
        let level = track
            .audio_level
            .and_then(|ext| packet.header.get_extension(ext))
            .and_then(|l| l.first().map(|&b| b & 0x7f));
        if let Some(level) = level {
            self.speaker.observe(track.publisher, level, now);
        }
        if track.kind == MediaKind::Audio {
            track.rates.add(0, 0, packet.payload.len());
            // To everyone, if among the loudest.
            let forwarded = self.audio.observe(id, level, now);
            self.forward_audio(id, &packet, forwarded, now);
            return;
        }
        let descriptor = if track.layered {
            match Descriptor::read(&packet.payload) {
                Ok((d, _)) => Some(d),
                Err(e) => {
                    // Nobody could depacketize it either.
                    tracing::trace!(track = id.0, error = %e, "a VP9 packet dropped");
                    return;
                }
            }
        } else {
            None
        };
        let next = track
            .order
            .next(packet.header.ssrc, packet.header.sequence_number);
        if next && track.kind == MediaKind::Video {
            let (s, t) = descriptor
                .as_ref()
                .map_or((0, 0), |d| (d.spatial(), d.temporal()));
            track.rates.add(s, t, packet.payload.len());
        }
        // Told to send fewer layers, the publisher's key pictures say fewer: its ladder stays.
        let ladder = track.resolutions.as_ref().map_or(0, Vec::len);
        let resized = descriptor
            .as_ref()
            .and_then(|d| d.scalability.as_ref()?.resolutions.as_ref())
            .filter(|&sizes| track.resolutions.as_ref() != Some(sizes))
            .filter(|sizes| track.told.is_none() || sizes.len() >= ladder)
            .cloned();
        if let Some(sizes) = resized {
            // The publisher's layers changed size: every subscriber's tile maps anew, before
            // this packet (a key picture's first) is decided.
            track.resolutions = Some(sizes);
            self.resized(id, now);
        }
        let Some(track) = self.tracks.get_mut(id) else {
            return;
        };
        let mut keyframe = false;
        for d in &mut track.downtracks {
            let Some(p) = self.participants.get_mut(&d.subscriber) else {
                continue;
            };
            // Only in the section that carries it, once negotiated.
            let Some(section) = p.video.carrying(id) else {
                continue;
            };
            let Some(rewriter) = section.rewriter.as_mut() else {
                continue;
            };
            // Not before its DTLS handshake is done: without SRTP keys the engine could only
            // drop the packet (and warn).
            let Link::Open(s) = &mut p.link else { continue };
            if !s.is_connected() {
                continue;
            }
            // A section that takes another video after a quiet while: its timestamps move on
            // by the time it was quiet (else the receiver takes the new frames for late ones),
            // from the new video's first packet, forwarded or not.
            if let Some(last) = section.last_out {
                rewriter.time_switch(now.saturating_duration_since(last), VIDEO_CLOCK_KHZ);
            }
            let marker = packet.header.marker;
            let verdict = match (d.layers.as_mut(), &descriptor) {
                (Some(layers), Some(desc)) if next => {
                    let v = layers.next(desc, marker);
                    keyframe |= layers.take_keyframe_wish();
                    v
                }
                (Some(layers), Some(desc)) => layers.late(desc, marker),
                _ => Verdict::Forward { marker },
            };
            let Verdict::Forward { marker } = verdict else {
                rewriter.skip(&packet.header);
                continue;
            };
            let Some(header) = rewriter.rewrite(&packet.header, marker) else {
                continue;
            };
            section.last_out = Some(now);
            p.dirty |= send(s, &mut self.counters, d.subscriber, header, &packet, now);
        }
        if keyframe {
            self.request_keyframe(id, now);
        }
    }

    /// `sub` has just connected: each video its sections carry starts with a key frame.
    pub(super) fn connected(&mut self, sub: ParticipantId, now: Instant) {
        let video: Vec<TrackId> = self
            .participants
            .get(&sub)
            .map(|p| p.video.negotiated().filter_map(|(_, c)| c).collect())
            .unwrap_or_default();
        for id in video {
            self.request_keyframe(id, now);
        }
    }

    /// Asks the publisher of `id` for a key frame, at most once per interval.
    pub(super) fn request_keyframe(&mut self, id: TrackId, now: Instant) {
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
        if !s.is_connected() || !self.keyframes.allow(id, now) {
            return;
        }
        if s.send_feedback(now, receiver, vec![rtcp::pli::picture_loss(ssrc)]) {
            self.counters.keyframe_requests_sent += 1;
            p.dirty = true;
        }
    }
}

/// Sends `packet`'s payload under its rewritten `header` on `sub`'s connection, counted: true
/// if it went out (the connection then has datagrams to send).
pub(super) fn send(
    s: &mut super::Session,
    counters: &mut super::Counters,
    sub: ParticipantId,
    header: rtc::rtp::header::Header,
    packet: &rtc::rtp::packet::Packet,
    now: Instant,
) -> bool {
    let out = rtc::rtp::packet::Packet {
        header,
        payload: packet.payload.clone(),
    };
    match s.write_rtp(now, out) {
        Ok(()) => {
            counters.packets_out += 1;
            counters.bytes_out += packet.payload.len() as u64;
            true
        }
        Err(e) => {
            tracing::trace!(subscriber = sub, error = %e, "not sent");
            false
        }
    }
}
