//! What members say to each other, end to end: chat, reactions, a raised hand and each
//! member's own microphone, camera and screen-share state, as MLS application messages that the
//! delivery service relays without reading. Who said it is the member whose key signed it (its
//! roster entry), never the server's `from`.
//!
//! Nothing goes out while the send gate is shut (an unexplained member would read it), or
//! while a proposal or a commit of ours waits (openmls seals only in a settled epoch): such
//! messages wait in the outbox for the next epoch or the gate. A message the delivery service
//! refuses as stale (a commit overtook it) is sealed again under the epoch that follows.

use std::collections::BTreeMap;

use media_crypto::mls::{Misuse, MlsError};
use serde::{Deserialize, Serialize};
use signaling_protocol::{ClientMessage, CommitRejection, ParticipantId, media_stream};

use crate::{Event, Output, Participant};

/// The longest chat message, in bytes.
pub const MAX_CHAT_BYTES: usize = 4000;
/// The longest reaction, in bytes (an emoji with its modifiers).
pub const MAX_REACTION_BYTES: usize = 32;

/// One application message's content (JSON inside the MLS ciphertext).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AppMessage {
    /// A chat message.
    Chat { text: String },
    /// An emoji reaction, shown for a moment.
    Reaction { emoji: String },
    /// A hand raised or lowered.
    Hand { raised: bool },
    /// The sender's own microphone, camera and screen share: what its tiles show of it.
    /// `screen` names the sender's stream that is its screen share (the source part of the
    /// SFU's stream id, `signaling_protocol::media_stream`), when it shares one.
    State {
        muted: bool,
        camera_off: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        screen: Option<String>,
    },
}

/// Why an application message is not what a member may say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppMessageError {
    #[error("a chat message is at most {MAX_CHAT_BYTES} bytes")]
    ChatTooLong,
    #[error("a chat message cannot be empty")]
    Empty,
    #[error("a reaction is at most {MAX_REACTION_BYTES} bytes, without spaces or controls")]
    BadReaction,
    #[error("control characters are not allowed (but line breaks in chat)")]
    Control,
    #[error("a screen share is named by a stream id of 1 to 64 letters, digits or -_.{{}}")]
    BadStream,
    #[error("not an application message of this meeting: {0}")]
    Malformed(String),
}

impl AppMessage {
    /// Whether this is something a member may send (and a receiver shows).
    pub fn check(&self) -> Result<(), AppMessageError> {
        match self {
            AppMessage::Chat { text } => {
                if text.trim().is_empty() {
                    return Err(AppMessageError::Empty);
                }
                if text.len() > MAX_CHAT_BYTES {
                    return Err(AppMessageError::ChatTooLong);
                }
                if text.chars().any(|c| c.is_control() && c != '\n') {
                    return Err(AppMessageError::Control);
                }
                Ok(())
            }
            AppMessage::Reaction { emoji } => {
                let bad = emoji.is_empty()
                    || emoji.len() > MAX_REACTION_BYTES
                    || emoji.chars().any(|c| c.is_control() || c.is_whitespace());
                if bad {
                    Err(AppMessageError::BadReaction)
                } else {
                    Ok(())
                }
            }
            AppMessage::State {
                screen: Some(stream),
                ..
            } if !media_stream::valid_source(stream) => Err(AppMessageError::BadStream),
            AppMessage::Hand { .. } | AppMessage::State { .. } => Ok(()),
        }
    }

    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an AppMessage serializes")
    }

    /// Reads and checks what a member sent.
    pub fn decode(bytes: &[u8]) -> Result<Self, AppMessageError> {
        let m: AppMessage =
            serde_json::from_slice(bytes).map_err(|e| AppMessageError::Malformed(e.to_string()))?;
        m.check()?;
        Ok(m)
    }
}

/// Application messages of ours: those waiting to be sealed, and those sent whose refusal may
/// still come back.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    next_id: u64,
    waiting: Vec<(u64, AppMessage)>,
    /// Sent, by id: the epoch sealed in and the message.
    sent: BTreeMap<u64, (u64, AppMessage)>,
}

/// How many sent messages are kept for a possible refusal.
const KEEP_SENT: usize = 256;

impl Participant {
    /// Says `message` to the other members; its id (named again by
    /// [`Event::ApplicationWaiting`] or a later refusal). It goes out at once if it can,
    /// else when the epoch settles or the send gate opens.
    pub fn send_app(&mut self, message: AppMessage) -> Result<(u64, Vec<Output>), AppMessageError> {
        message.check()?;
        let id = self.outbox.next_id;
        self.outbox.next_id += 1;
        let mut out = Vec::new();
        self.seal_or_wait(id, message, &mut out);
        Ok((id, out))
    }

    fn seal_or_wait(&mut self, id: u64, message: AppMessage, out: &mut Vec<Output>) {
        if !self.may_send() {
            return self.wait(id, message, "someone unexplained is in the group", out);
        }
        match self.session.seal_application(&message.encode()) {
            Ok((epoch, sealed)) => {
                out.push(Output::Send(ClientMessage::Application {
                    id,
                    epoch,
                    message: sealed.into(),
                }));
                self.outbox.sent.insert(id, (epoch, message));
                while self.outbox.sent.len() > KEEP_SENT {
                    self.outbox.sent.pop_first();
                }
            }
            Err(MlsError::Misuse(
                Misuse::ProposalPending | Misuse::CommitPending | Misuse::NotInGroup,
            )) => self.wait(id, message, "the group is changing", out),
            Err(e) => out.push(Output::Event(Event::MlsFailure(format!(
                "sealing message {id}: {e}"
            )))),
        }
    }

    fn wait(&mut self, id: u64, message: AppMessage, why: &str, out: &mut Vec<Output>) {
        self.outbox.waiting.push((id, message));
        out.push(Output::Event(Event::ApplicationWaiting {
            id,
            reason: why.to_owned(),
        }));
    }

    /// Seals what waits, now that the epoch settled or the gate opened.
    pub(crate) fn flush_outbox(&mut self, out: &mut Vec<Output>) {
        for (id, message) in std::mem::take(&mut self.outbox.waiting) {
            self.seal_or_wait(id, message, out);
        }
    }

    /// The delivery service refused message `id`; the room is at `epoch`.
    pub(crate) fn app_rejected(
        &mut self,
        id: u64,
        epoch: u64,
        reason: CommitRejection,
        out: &mut Vec<Output>,
    ) {
        let Some((sealed_in, message)) = self.outbox.sent.remove(&id) else {
            return;
        };
        match reason {
            // A commit overtook it, or this member was between groups: sealed again once this
            // member is in the room's epoch (now, if it is; once only per epoch, so a server
            // that refuses everything cannot make it loop).
            CommitRejection::StaleEpoch | CommitRejection::NotAMember => {
                if self.session.epoch() == Some(epoch) && epoch != sealed_in {
                    self.seal_or_wait(id, message, out);
                } else {
                    self.wait(id, message, "the group is changing", out);
                }
            }
            other => out.push(Output::Event(Event::ApplicationRefused {
                from: self.participant_id,
                reason: format!("the server refused our message {id}: {other:?}"),
            })),
        }
    }

    /// An application message the delivery service relayed from `from` (its claim only).
    pub(crate) fn app_received(
        &mut self,
        from: ParticipantId,
        message: &[u8],
        out: &mut Vec<Output>,
    ) {
        let refused = |reason: String| Output::Event(Event::ApplicationRefused { from, reason });
        let opened = match self.session.open_application(message) {
            Ok(o) => o,
            Err(e) => return out.push(refused(e.to_string())),
        };
        let Some(sender) = self
            .session
            .roster()
            .into_iter()
            .find(|r| r.leaf == opened.sender)
        else {
            return out.push(refused(format!(
                "leaf {} is not in the group",
                opened.sender
            )));
        };
        // Someone nobody explained says nothing until the user says they know who it is.
        if let Some(w) = self
            .unexplained
            .iter()
            .find(|u| !u.acknowledged && u.warning.leaf == sender.leaf)
        {
            return out.push(refused(format!(
                "from an unexplained member: {}",
                w.warning
            )));
        }
        match AppMessage::decode(&opened.plaintext) {
            Ok(m) => out.push(Output::Event(Event::Application {
                epoch: opened.epoch,
                sender,
                claimed_from: from,
                message: m,
            })),
            Err(e) => out.push(refused(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_member_may_say_is_checked_both_ways() {
        let ok = AppMessage::Chat {
            text: "hi\nthere".into(),
        };
        assert_eq!(AppMessage::decode(&ok.encode()), Ok(ok));
        for bad in [
            AppMessage::Chat { text: " ".into() },
            AppMessage::Chat {
                text: "x".repeat(MAX_CHAT_BYTES + 1),
            },
            AppMessage::Chat {
                text: "bell\u{7}".into(),
            },
            AppMessage::Reaction { emoji: "".into() },
            AppMessage::Reaction {
                emoji: "👍 👍".into(),
            },
            AppMessage::State {
                muted: false,
                camera_off: false,
                screen: Some("a b\r\na=x".into()),
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
            assert!(AppMessage::decode(&bad.encode()).is_err());
        }
        assert!(AppMessage::decode(br#"{"kind":"chat","text":"a","from":"admin"}"#).is_err());
        assert!(AppMessage::decode(b"not json").is_err());
        assert_eq!(
            AppMessage::decode(br#"{"kind":"state","muted":true,"camera_off":false}"#),
            Ok(AppMessage::State {
                muted: true,
                camera_off: false,
                screen: None,
            })
        );
        let sharing = br#"{"kind":"state","muted":false,"camera_off":true,"screen":"{9a-3}"}"#;
        assert_eq!(
            AppMessage::decode(sharing),
            Ok(AppMessage::State {
                muted: false,
                camera_off: true,
                screen: Some("{9a-3}".into()),
            })
        );
    }
}
