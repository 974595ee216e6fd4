//! Subscribing: every published track goes to every other participant in a send-only section
//! of its connection (a recycled idle one when it can), and is forwarded once the
//! subscriber's answer has negotiated its payload type and header extensions.

use std::time::Instant;

use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RtpCodecKind};
use signaling_protocol::{ParticipantId, media_stream};

use super::codecs::same_codec;
use super::layers::{Layer, LayerSelector};
use super::participant::Link;
use super::rewrite::{END_TO_END_EXTENSIONS, Rewriter};
use super::tracks::Downtrack;
use super::{MediaKind, MediaRoom, TrackId, fresh_ssrc, one_stream_track};

impl MediaRoom {
    /// Starts sending video track `id` to `sub`: in one of its idle sections of that codec, or
    /// else a send-only section of its own (offered next). (Audio takes turns in the
    /// receiver's audio sections: [`super::audio_sections`].)
    pub(super) fn subscribe(&mut self, sub: ParticipantId, id: TrackId) {
        let Some(track) = self.tracks.get(id).filter(|t| t.kind == MediaKind::Video) else {
            return;
        };
        let (publisher, kind, codec) = (track.publisher, track.kind, track.codec.clone());
        let layers = track.layered.then(LayerSelector::default);
        // Under a last-N, a new copy waits for the allocation to take it in: until then it is
        // not forwarded, nor counted as needed by its publisher.
        let beyond_last_n = layers.is_some() && self.last_n(sub).is_some();
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
            .and_then(|idle| {
                s.reuse_section(idle.sender, track(idle.ssrc))
                    .then_some(idle)
            });
        let (sender, ssrc, resumes) = match reused {
            Some(idle) => (idle.sender, idle.ssrc, idle.rewriter),
            None => {
                let ssrc = fresh_ssrc(&mut self.rng, &self.tracks, sub, &p.idle, &p.audio);
                let Some(sender) = s.add_sender(track(ssrc), stream.clone()) else {
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
                layers,
                wanted: Some(Layer::ALL),
                beyond_last_n,
            },
        );
        // What its tile needs; its bandwidth's share comes with the next allocation.
        self.rewant(id, Some(sub));
        if let Some(d) = self
            .tracks
            .get_mut(id)
            .and_then(|t| t.downtracks.iter_mut().find(|d| d.subscriber == sub))
        {
            let needed = d.needed();
            if let Some(layers) = d.layers.as_mut() {
                layers.set_target(needed);
            }
        }
    }

    /// After `sub`'s answer: each copy our answered offer carried learns its payload type and
    /// extension ids, and forwarding to it starts with a key frame.
    pub(super) fn learn_downtracks(&mut self, sub: ParticipantId, now: Instant) {
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
            let Some(sent) = s.sent_track(d.sender, |c| same_codec(c, &track.codec)) else {
                continue;
            };
            let Some(pt) = sent.payload_type else {
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
                    let (_, to) = sent.extensions.iter().find(|(u, _)| u == uri)?;
                    Some((*from, *to))
                })
                .collect();
            d.rewriter = Some(match d.resumes.take() {
                Some(r) => r.resume(pt, extensions),
                None => Rewriter::new(d.ssrc, pt, extensions),
            });
            // Before its DTLS handshake is done nothing reaches it: the key frame is asked
            // for when it connects (`pump`).
            if track.kind == MediaKind::Video && s.is_connected() {
                keyframes.push(id);
            }
        }
        for id in keyframes {
            self.request_keyframe(id, now);
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
