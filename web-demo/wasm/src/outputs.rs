//! The participant's outputs as JSON for the page: messages to send (already serialized) and
//! events, with each new epoch's SFrame keys derived for the media worker and the roster as
//! the page shows it ([`crate::roster`]).

use media_crypto::mls::{KeyringConfig, RosterEntry};
use serde::Serialize;
use signaling_participant::trust::TrustChanges;
use signaling_participant::{AppMessage, Event, Output, Participant};
use signaling_protocol::{ErrorCode, IceCandidate, ParticipantId, PausedVideo, VideoSection};

use crate::keys::{EpochKeys, epoch_keys};
use crate::roster::{Devices, Member, Warning, members};

/// One output, as the page sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JsOutput {
    /// Send `text` on the WebSocket.
    Send {
        text: String,
    },
    NewEpoch {
        epoch: u64,
        roster: Vec<Member>,
        /// 40 digits in eight groups of five.
        safety_number: Vec<String>,
        added: Vec<Member>,
        removed: Vec<Member>,
        keys: EpochKeys,
        /// Leaves that entered unexplained in this epoch.
        warnings: Vec<Warning>,
        /// False while an unexplained leaf is in the group and not acknowledged: send no media.
        may_send: bool,
    },
    /// The roster changed without a new epoch (a device verified, a leaf acknowledged).
    Roster {
        roster: Vec<Member>,
    },
    SendGate {
        may_send: bool,
        unexplained: Vec<Warning>,
    },
    AccountMismatch {
        epoch: u64,
        claimed_added: Vec<ParticipantId>,
        added: Vec<ParticipantId>,
        claimed_removed: Vec<ParticipantId>,
        removed: Vec<ParticipantId>,
    },
    RefusedAdd {
        participant_id: ParticipantId,
        reason: String,
    },
    RefusedProposal {
        from: ParticipantId,
        reason: String,
    },
    GroupReset {
        reason: String,
    },
    GroupLost {
        epoch: u64,
        reason: String,
    },
    Removed {
        epoch: u64,
    },
    ParticipantJoined {
        participant_id: ParticipantId,
        identity: String,
    },
    ParticipantLeft {
        participant_id: ParticipantId,
    },
    SdpOffer {
        sdp: String,
    },
    SdpAnswer {
        sdp: String,
    },
    IceCandidate {
        candidate: IceCandidate,
    },
    ActiveSpeaker {
        participant_id: Option<ParticipantId>,
    },
    SendLayers {
        source: String,
        spatial_layers: u8,
        height: u16,
    },
    /// Each paused video's stream id and why (`bandwidth`, `last_n`).
    PausedVideos {
        videos: Vec<PausedVideo>,
    },
    /// The videos published in the room now, by stream id.
    VideoStreams {
        streams: Vec<String>,
    },
    /// What each of our video sections (by mid) carries now.
    VideoSections {
        sections: Vec<VideoSection>,
    },
    ServerError {
        code: String,
        message: String,
    },
    Failure {
        message: String,
    },
    /// A member said something (chat, reaction, hand, its own state): `sender` is the member
    /// whose key signed it (the roster's), `claimed_from` the participant the server named.
    Said {
        epoch: u64,
        sender: Member,
        claimed_from: ParticipantId,
        /// The sender's number for it: chat is shown in each sender's order.
        seq: u64,
        message: AppMessage,
    },
    /// `missing` messages of `sender` did not arrive (dropped by the server, or lost).
    Gap {
        sender: Member,
        missing: u64,
    },
    /// Something of ours (`id`) waits to be sent: the group is changing, or someone
    /// unexplained is in it.
    Waiting {
        id: u64,
        reason: String,
    },
    /// A message not shown (or ours refused for good), and why.
    AppRefused {
        from: ParticipantId,
        reason: String,
    },
    /// The trust store changed: write these records (merging each with what is stored) and
    /// forget these identities, for the next visit and the page's other tabs.
    Trust {
        changes: TrustChanges,
    },
    /// The connection ends, with the server's `code` if it gave one; `final` when that says
    /// not to come back (removed, banned, the room closed).
    Stop {
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<ErrorCode>,
        #[serde(rename = "final")]
        for_good: bool,
    },
}

/// Turns outputs into what the page sees, with what it needs to judge the roster.
#[derive(Debug)]
pub struct Converter<'a> {
    pub participant: &'a Participant,
    pub devices: &'a mut Devices,
    pub keyring: &'a KeyringConfig,
    /// Milliseconds since the Unix epoch, for the trust store's "first seen".
    pub wall_ms: u64,
}

impl Converter<'_> {
    /// The current roster for the page.
    pub fn roster(&mut self) -> Vec<Member> {
        let roster = self.participant.session().roster();
        self.members(&roster)
    }

    fn members(&mut self, entries: &[RosterEntry]) -> Vec<Member> {
        members(
            entries,
            self.participant.session().own_leaf(),
            self.participant.presence(),
            &self.participant.unexplained(),
            self.devices,
            self.wall_ms,
        )
    }

    fn convert(&mut self, output: Output) -> Option<JsOutput> {
        Some(match output {
            Output::Send(message) => JsOutput::Send {
                text: serde_json::to_string(&message).ok()?,
            },
            Output::Stop { reason, code } => JsOutput::Stop {
                reason,
                code,
                for_good: code.is_some_and(ErrorCode::is_final),
            },
            Output::Event(event) => self.event(event)?,
            _ => return None,
        })
    }

    fn event(&mut self, event: Event) -> Option<JsOutput> {
        Some(match event {
            Event::NewEpoch {
                epoch,
                key,
                roster,
                safety_number,
                added,
                removed,
                warnings,
                may_send,
                ..
            } => JsOutput::NewEpoch {
                epoch,
                roster: self.members(&roster),
                safety_number: safety_number.groups().to_vec(),
                added: self.members(&added),
                removed: self.members(&removed),
                keys: epoch_keys(&key, self.keyring),
                warnings: warnings.iter().map(Warning::from).collect(),
                may_send,
            },
            Event::SendGate {
                may_send,
                unexplained,
            } => JsOutput::SendGate {
                may_send,
                unexplained: unexplained.iter().map(Warning::from).collect(),
            },
            Event::AccountMismatch {
                epoch,
                claimed_added,
                added,
                claimed_removed,
                removed,
            } => JsOutput::AccountMismatch {
                epoch,
                claimed_added,
                added,
                claimed_removed,
                removed,
            },
            Event::RefusedAdd {
                participant_id,
                reason,
            } => JsOutput::RefusedAdd {
                participant_id,
                reason,
            },
            Event::RefusedProposal { from, reason } => JsOutput::RefusedProposal { from, reason },
            Event::GroupReset { reason } => JsOutput::GroupReset { reason },
            Event::GroupLost { epoch, reason } => JsOutput::GroupLost { epoch, reason },
            Event::Removed { epoch } => JsOutput::Removed { epoch },
            Event::ParticipantJoined(p) => JsOutput::ParticipantJoined {
                participant_id: p.participant_id,
                identity: p.identity,
            },
            Event::ParticipantLeft(participant_id) => JsOutput::ParticipantLeft { participant_id },
            Event::SdpOffer(sdp) => JsOutput::SdpOffer { sdp },
            Event::SdpAnswer(sdp) => JsOutput::SdpAnswer { sdp },
            Event::IceCandidate(candidate) => JsOutput::IceCandidate { candidate },
            Event::ActiveSpeaker(participant_id) => JsOutput::ActiveSpeaker { participant_id },
            Event::SendLayers {
                source,
                spatial_layers,
                height,
            } => JsOutput::SendLayers {
                source,
                spatial_layers,
                height,
            },
            Event::PausedVideos(videos) => JsOutput::PausedVideos { videos },
            Event::VideoStreams(streams) => JsOutput::VideoStreams { streams },
            Event::VideoSections(sections) => JsOutput::VideoSections { sections },
            Event::ServerError { code, message } => JsOutput::ServerError {
                code: serde_json::to_value(code)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                message,
            },
            Event::Application {
                epoch,
                sender,
                claimed_from,
                seq,
                message,
            } => JsOutput::Said {
                epoch,
                sender: self.members(&[sender]).pop()?,
                claimed_from,
                seq,
                message,
            },
            Event::ApplicationGap { sender, missing } => JsOutput::Gap {
                sender: self.members(&[sender]).pop()?,
                missing,
            },
            Event::ApplicationWaiting { id, reason } => JsOutput::Waiting { id, reason },
            Event::ApplicationRefused { from, reason } => JsOutput::AppRefused { from, reason },
            Event::MlsFailure(message) => JsOutput::Failure { message },
            Event::Closed { reason } => JsOutput::Stop {
                reason,
                code: None,
                for_good: false,
            },
            _ => return None,
        })
    }

    /// The outputs for the page.
    pub fn to_list(&mut self, outputs: Vec<Output>) -> Vec<JsOutput> {
        outputs
            .into_iter()
            .filter_map(|o| self.convert(o))
            .collect()
    }

    /// `list` as a JSON array, with the trust store last if it changed.
    pub fn finish(&mut self, mut list: Vec<JsOutput>) -> String {
        if let Some(changes) = self.devices.take_changes() {
            list.push(JsOutput::Trust { changes });
        }
        serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
    }

    /// The outputs as a JSON array, with the trust store last if it changed.
    pub fn to_js(&mut self, outputs: Vec<Output>) -> String {
        let list = self.to_list(outputs);
        self.finish(list)
    }
}
