//! The participant's outputs as JSON for the page: messages to send (already serialized) and
//! events, with each new epoch's SFrame keys derived for the media worker.

use media_crypto::mls::{KeyringConfig, RosterEntry};
use serde::Serialize;
use signaling_participant::{Event, Output};
use signaling_protocol::{IceCandidate, ParticipantId, parse_credential_identity};

use crate::keys::{EpochKeys, epoch_keys};

/// A group member as the MLS group states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub leaf: u32,
    /// The participant id bound into the credential (`"<participant_id>:<identity>"`).
    pub participant_id: Option<ParticipantId>,
    pub identity: String,
}

impl From<&RosterEntry> for Member {
    fn from(r: &RosterEntry) -> Self {
        let name = r.name();
        match parse_credential_identity(&name) {
            Some((pid, identity)) => Member {
                leaf: r.leaf,
                participant_id: Some(pid),
                identity: identity.to_owned(),
            },
            None => Member {
                leaf: r.leaf,
                participant_id: None,
                identity: name,
            },
        }
    }
}

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
    ServerError {
        code: String,
        message: String,
    },
    Failure {
        message: String,
    },
    Stop {
        reason: String,
    },
}

fn convert(output: Output, config: &KeyringConfig) -> Option<JsOutput> {
    Some(match output {
        Output::Send(message) => JsOutput::Send {
            text: serde_json::to_string(&message).ok()?,
        },
        Output::Stop(reason) => JsOutput::Stop { reason },
        Output::Event(event) => match event {
            Event::NewEpoch {
                epoch,
                key,
                roster,
                safety_number,
                added,
                removed,
            } => match epoch_keys(&key, config) {
                Ok(keys) => JsOutput::NewEpoch {
                    epoch,
                    roster: roster.iter().map(Member::from).collect(),
                    safety_number: safety_number.groups().to_vec(),
                    added: added.iter().map(Member::from).collect(),
                    removed: removed.iter().map(Member::from).collect(),
                    keys,
                },
                Err(message) => JsOutput::Failure { message },
            },
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
            Event::ServerError { code, message } => JsOutput::ServerError {
                code: serde_json::to_value(code)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                message,
            },
            Event::MlsFailure(message) => JsOutput::Failure { message },
            Event::Closed { reason } => JsOutput::Stop { reason },
            _ => return None,
        },
        _ => return None,
    })
}

/// The outputs as a JSON array.
pub fn to_js(outputs: Vec<Output>, config: &KeyringConfig) -> String {
    let list: Vec<JsOutput> = outputs
        .into_iter()
        .filter_map(|o| convert(o, config))
        .collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}
