//! A bot's signaling events: epochs and their keys, the roster, the SFU's answers and
//! candidates, what it asks of the bot's video, and leaving.

use std::time::{Duration, Instant};

use rtc::peer_connection::sdp::RTCSessionDescription;
use signaling_client::{AppMessage, Event};

use super::{SCREEN_STREAM, Task};

impl Task {
    /// The group's keys go: sealing stops at once.
    pub(super) fn group_gone(&mut self) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .group_gone(Instant::now());
    }

    /// A signaling event; false when the bot is out of the room.
    pub(super) fn signal(&mut self, event: Event) -> bool {
        match event {
            Event::NewEpoch {
                epoch,
                key,
                roster,
                warnings,
                may_send,
                added,
                ..
            } => {
                {
                    let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    let now = Instant::now();
                    let since = s.since_start(now);
                    if let Err(e) = s.keyring.install(key, since) {
                        tracing::warn!(error = %e, "cannot install an epoch key");
                    }
                    s.may_send = may_send;
                    s.stats.unexplained_members += warnings.len() as u64;
                    s.leaf_participants = roster
                        .iter()
                        .filter_map(|r| {
                            signaling_protocol::parse_credential_identity(&r.name())
                                .map(|(p, _)| (r.leaf, p))
                        })
                        .collect();
                    self.tracks.retry(&mut s, now);
                    s.join_step(now, |j| &mut j.in_group);
                }
                // Those already here (at our join) and newcomers learn from us which stream
                // is our screen.
                if self.spec.screen && (!self.in_group || !added.is_empty()) {
                    let _ = self.client.send_app(AppMessage::State {
                        muted: !self.spec.audio,
                        camera_off: !self.spec.video,
                        hand: false,
                        screen: Some(SCREEN_STREAM.into()),
                    });
                }
                self.in_group = true;
                for w in &warnings {
                    tracing::warn!(warning = %w, "a member entered the group unexplained; sending stops");
                }
                self.ctx
                    .commits
                    .arrived(&self.spec.room, epoch, roster.len(), Instant::now());
            }
            Event::Reconnecting { attempt, reason } => {
                tracing::debug!(attempt, %reason, "reconnecting");
                self.group_gone();
            }
            Event::GroupReset { reason } => {
                tracing::info!(%reason, "the group is being made again");
                self.group_gone();
            }
            Event::GroupLost { epoch, reason } => {
                tracing::warn!(epoch, %reason, "lost the group");
                self.group_gone();
            }
            Event::Reconnected { participant_id } => {
                tracing::debug!(participant_id, "rejoined");
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                s.rejoined();
                self.rebuild = true;
            }
            Event::SdpAnswer(sdp) => {
                self.path.answered();
                let applied = RTCSessionDescription::answer(sdp)
                    .and_then(|a| self.peer.pc.set_remote_description(Instant::now(), a));
                if let Err(e) = applied {
                    tracing::warn!(error = %e, "cannot apply the SFU's answer");
                }
            }
            // If our ICE restart offer crossed it, it is set aside: the SFU (the polite side)
            // withdraws its offer, answers ours and offers again.
            Event::SdpOffer(sdp) => {
                let ours_out = self.peer.pc.pending_local_description().is_some();
                if let Some(sdp) = self.path.sfu_offer(sdp, ours_out) {
                    self.answer(sdp);
                }
            }
            Event::VideoStreams(streams) => {
                let me = self.client.participant_id();
                self.wants_changed |= self.tracks.listed(&streams, me);
                self.tell_wants();
            }
            Event::VideoSections(sections) => self.tracks.mapped(sections, Instant::now()),
            Event::ServerError { code, message } => {
                tracing::warn!(?code, %message, "server error")
            }
            Event::SendLayers {
                source,
                spatial_layers,
                ..
            } => {
                for o in self
                    .outgoing
                    .iter_mut()
                    .filter(|o| o.video && o.stream == source)
                {
                    // A new set of layers starts at a key picture.
                    o.key_wanted |= o.spatial_layers != Some(spatial_layers);
                    o.spatial_layers = Some(spatial_layers);
                }
            }
            Event::SendGate { may_send, .. } => {
                self.state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .may_send = may_send;
            }
            Event::Application {
                message: AppMessage::Chat { text },
                ..
            } => {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                s.stats.chat_received += 1;
                // A bot's message says when it was sent; a person's does not.
                let sent = text
                    .strip_prefix("load chat ")
                    .and_then(|t| t.split(" sent at ").nth(1))
                    .and_then(|t| t.strip_suffix(" us"))
                    .and_then(|t| t.parse::<u64>().ok());
                if let Some(sent) = sent {
                    let now = s.since_start(Instant::now());
                    let latency = now.saturating_sub(Duration::from_micros(sent));
                    crate::stats::record(&mut s.stats.chat_latency, latency);
                }
            }
            Event::ApplicationRefused { from, reason } => {
                tracing::warn!(from, %reason, "an application message was refused")
            }
            Event::ApplicationGap { sender, missing } => {
                tracing::warn!(sender = %sender.name(), missing, "messages did not arrive")
            }
            Event::MlsFailure(m) => tracing::warn!(%m, "MLS failure"),
            Event::Removed { .. } | Event::Closed { .. } => return false,
            _ => {}
        }
        true
    }
}
