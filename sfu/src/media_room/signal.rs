//! The room's side of offer/answer with each participant ([`super::negotiation`] says whose
//! turn it is): its offers, answers and candidates applied, and the room's offers whenever the
//! tracks it sends a participant changed.

use std::time::Instant;

use signaling_protocol::{ErrorCode, MediaSignal, ParticipantId};

use super::negotiation::OnOffer;
use super::participant::Link;
use super::{MediaRoom, Output, TrackId, offer};

impl MediaRoom {
    pub(super) fn signal(&mut self, pid: ParticipantId, signal: MediaSignal, now: Instant) {
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
                self.learn_video_sections(pid, now);
                self.learn_audio_sections(pid);
                self.tell_sections(pid);
                self.pump(pid, now);
                self.renegotiate = true;
            }
            MediaSignal::VideoWants { videos, last_n } => {
                self.video_wants(pid, videos, last_n, now)
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

    pub(super) fn apply_offer(&mut self, pid: ParticipantId, sdp: String, now: Instant) {
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
            self.tell_streams_to(pid);
            // It hears the loudest through sections of its own.
            self.add_audio_sections(pid, self.audio.places());
            // It receives every track already published.
            let ids: Vec<TrackId> = self.tracks.iter().map(|(id, _)| id).collect();
            for id in ids {
                self.subscribe(pid, id);
            }
            // Which of them it takes now, before any publisher is told what is needed.
            self.reallocate(pid, now);
        }
        self.pump(pid, now);
        self.renegotiate = true;
    }

    /// Offers to every participant whose received tracks changed and who is not in the
    /// middle of an exchange.
    pub(super) fn settle(&mut self, now: Instant) {
        for (&pid, p) in self.participants.iter_mut() {
            let Link::Open(s) = &mut p.link else { continue };
            if !p.negotiation.take_offer_turn() {
                continue;
            }
            match s.offer(now) {
                Ok(sdp) => {
                    p.dirty = true;
                    p.audio.offered();
                    p.video.offered();
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
    }

    /// Tells `pid` its media request failed, and why.
    pub(super) fn refuse(
        &mut self,
        pid: ParticipantId,
        code: ErrorCode,
        message: impl Into<String>,
    ) {
        self.outputs.push_back(Output::Error {
            participant: pid,
            code,
            message: message.into(),
        });
    }
}
