//! What members say to each other, end to end: chat, reactions, a raised hand and each
//! member's own microphone, camera and screen-share state, as MLS application messages that the
//! delivery service relays without reading. Who said it is the member whose key signed it (its
//! roster entry), never the server's `from`.
//!
//! Each message carries its sender's next number in the group, inside the signed content
//! ([`Sealed`]): receivers take each number once and in its place ([`crate::inbox`]), so a
//! server can drop a message (a gap is shown) but cannot show one twice, replay an old one, or
//! make an older state win over a newer one.
//!
//! Nothing goes out while the send gate is shut (an unexplained member would read it), or
//! while a proposal or a commit of ours waits (openmls seals only in a settled epoch): such
//! messages wait in the outbox for the next epoch or the gate. A message the delivery service
//! refuses as stale (a commit overtook it) is sealed again, once, under its own number, when
//! the refusal names the epoch it was sealed in and that is the epoch just before this
//! member's (or this member's, which it is about to leave).

use std::collections::BTreeMap;
use std::time::Duration;

use media_crypto::mls::{Misuse, MlsError};
use serde::{Deserialize, Serialize};
use signaling_protocol::{ClientMessage, CommitRejection, ParticipantId, media_stream};

use crate::inbox::Arrival;
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
    /// The sender's whole own state: microphone, camera, raised hand and screen share, what
    /// its tiles show of it (the newest wins). `screen` names the sender's stream that is its
    /// screen share (the source part of the SFU's stream id, `signaling_protocol::media_stream`),
    /// when it shares one.
    State {
        muted: bool,
        camera_off: bool,
        #[serde(default)]
        hand: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        screen: Option<String>,
    },
}

/// What goes inside the MLS ciphertext: a message and its sender's number for it in this
/// group (from 0, one more for each message; a resend after a refusal keeps its number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    pub seq: u64,
    pub message: AppMessage,
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
            AppMessage::State { .. } => Ok(()),
        }
    }
}

impl Sealed {
    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a Sealed serializes")
    }

    /// Reads and checks what a member sent.
    pub fn decode(bytes: &[u8]) -> Result<Self, AppMessageError> {
        let s: Sealed =
            serde_json::from_slice(bytes).map_err(|e| AppMessageError::Malformed(e.to_string()))?;
        s.message.check()?;
        Ok(s)
    }
}

/// One message of ours.
#[derive(Debug, Clone)]
struct Ours {
    message: AppMessage,
    /// Its number, once sealed: in this group.
    seq: Option<(Vec<u8>, u64)>,
    /// Sent again after a refusal already (a message is resent once at most).
    resent: bool,
}

/// Application messages of ours: those waiting to be sealed, and those sent whose refusal may
/// still come back.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    next_id: u64,
    /// The group our numbers count in, and the next number.
    numbering: Option<(Vec<u8>, u64)>,
    waiting: Vec<(u64, Ours)>,
    /// Sent, by id: the epoch sealed in and the message.
    sent: BTreeMap<u64, (u64, Ours)>,
}

/// How many sent messages are kept for a possible refusal.
const KEEP_SENT: usize = 256;

impl Outbox {
    /// The number `ours` goes under in `group`: its own there, else the next one (taken by
    /// [`Outbox::sealed`]).
    fn number(&self, group: &[u8], ours: &Ours) -> u64 {
        match (&ours.seq, &self.numbering) {
            (Some((g, seq)), _) if g == group => *seq,
            (_, Some((g, next))) if g == group => *next,
            _ => 0,
        }
    }

    /// `ours` went out under `seq` in `group`: the number is taken.
    fn sealed(&mut self, group: &[u8], ours: &mut Ours, seq: u64) {
        if !matches!(&self.numbering, Some((g, next)) if g == group && *next > seq) {
            self.numbering = Some((group.to_vec(), seq + 1));
        }
        ours.seq = Some((group.to_vec(), seq));
    }
}

impl Participant {
    /// Says `message` to the other members; its id (named again by
    /// [`Event::ApplicationWaiting`] or a later refusal). It goes out at once if it can,
    /// else when the epoch settles or the send gate opens.
    pub fn send_app(&mut self, message: AppMessage) -> Result<(u64, Vec<Output>), AppMessageError> {
        message.check()?;
        let id = self.outbox.next_id;
        self.outbox.next_id += 1;
        let mut out = Vec::new();
        let ours = Ours {
            message,
            seq: None,
            resent: false,
        };
        self.seal_or_wait(id, ours, &mut out);
        Ok((id, out))
    }

    fn seal_or_wait(&mut self, id: u64, mut ours: Ours, out: &mut Vec<Output>) {
        if !self.may_send() {
            return self.wait(id, ours, "someone unexplained is in the group", out);
        }
        let Some(group) = self.session.group_id().map(<[u8]>::to_vec) else {
            return self.wait(id, ours, "the group is changing", out);
        };
        let seq = self.outbox.number(&group, &ours);
        let plaintext = Sealed {
            seq,
            message: ours.message.clone(),
        }
        .encode();
        match self.session.seal_application(&plaintext) {
            Ok((epoch, sealed)) => {
                self.outbox.sealed(&group, &mut ours, seq);
                out.push(Output::Send(ClientMessage::Application {
                    id,
                    epoch,
                    message: sealed.into(),
                }));
                self.outbox.sent.insert(id, (epoch, ours));
                while self.outbox.sent.len() > KEEP_SENT {
                    self.outbox.sent.pop_first();
                }
            }
            Err(MlsError::Misuse(
                Misuse::ProposalPending | Misuse::CommitPending | Misuse::NotInGroup,
            )) => self.wait(id, ours, "the group is changing", out),
            Err(e) => out.push(Output::Event(Event::MlsFailure(format!(
                "sealing message {id}: {e}"
            )))),
        }
    }

    fn wait(&mut self, id: u64, ours: Ours, why: &str, out: &mut Vec<Output>) {
        self.outbox.waiting.push((id, ours));
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

    /// The delivery service refused message `id`, sealed in `epoch` (as it says).
    pub(crate) fn app_rejected(
        &mut self,
        id: u64,
        epoch: u64,
        reason: CommitRejection,
        out: &mut Vec<Output>,
    ) {
        let Some((sealed_in, ours)) = self.outbox.sent.get(&id) else {
            return;
        };
        // A refusal about another epoch is not about this message.
        if *sealed_in != epoch {
            return;
        }
        match reason {
            // A commit overtook it: sealed again, once and under its own number (a receiver
            // that has it already drops it). The delivery service refuses a stale message as
            // it arrives, so the refusal follows the commit that overtook it: this member is
            // at that epoch or the one after. A refusal of anything older is not the delivery
            // service's, and changes nothing.
            CommitRejection::StaleEpoch => {
                let same_group = ours
                    .seq
                    .as_ref()
                    .is_some_and(|(group, _)| self.session.group_id() == Some(group.as_slice()));
                let current = self.session.epoch();
                if ours.resent || !same_group || current.is_none_or(|e| e > epoch + 1) {
                    return;
                }
                let (_, mut ours) = self.outbox.sent.remove(&id).expect("found above");
                ours.resent = true;
                if current == Some(epoch + 1) {
                    self.seal_or_wait(id, ours, out);
                } else {
                    self.wait(id, ours, "the group is changing", out);
                }
            }
            other => {
                self.outbox.sent.remove(&id);
                out.push(Output::Event(Event::ApplicationRefused {
                    from: self.participant_id,
                    reason: format!("the server refused our message {id}: {other:?}"),
                }))
            }
        }
    }

    /// An application message the delivery service relayed from `from` (its claim only).
    pub(crate) fn app_received(
        &mut self,
        from: ParticipantId,
        message: &[u8],
        now: Duration,
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
        let sealed = match Sealed::decode(&opened.plaintext) {
            Ok(s) => s,
            Err(e) => return out.push(refused(e.to_string())),
        };
        let key = (sender.leaf, sender.signature_key.clone());
        if let Some(group) = self.session.group_id() {
            self.inbox.enter_group(group);
        }
        match self.inbox.arrive(&key, sealed.seq, now) {
            Arrival::New => {}
            Arrival::Duplicate => {
                return out.push(refused(format!(
                    "message {} of {} again: a duplicate",
                    sealed.seq,
                    sender.name()
                )));
            }
            Arrival::TooOld => {
                return out.push(refused(format!(
                    "message {} of {} is too old to tell from a replay",
                    sealed.seq,
                    sender.name()
                )));
            }
        }
        if matches!(sealed.message, AppMessage::State { .. })
            && !self.inbox.newer_state(&key, sealed.seq)
        {
            // A newer state of theirs was taken already.
            return;
        }
        out.push(Output::Event(Event::Application {
            epoch: opened.epoch,
            sender,
            claimed_from: from,
            seq: sealed.seq,
            message: sealed.message,
        }));
    }

    /// Reports each sender whose missing messages did not come in time (see [`crate::inbox`]).
    pub(crate) fn report_gaps(&mut self, now: Duration, out: &mut Vec<Output>) {
        let gaps = self.inbox.gaps(now);
        if gaps.is_empty() {
            return;
        }
        let roster = self.session.roster();
        for ((leaf, key), missing) in gaps {
            if let Some(sender) = roster
                .iter()
                .find(|r| r.leaf == leaf && r.signature_key == key)
            {
                out.push(Output::Event(Event::ApplicationGap {
                    sender: sender.clone(),
                    missing,
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(message: AppMessage) -> Vec<u8> {
        Sealed { seq: 3, message }.encode()
    }

    #[test]
    fn what_a_member_may_say_is_checked_both_ways() {
        let ok = AppMessage::Chat {
            text: "hi\nthere".into(),
        };
        assert_eq!(
            Sealed::decode(&sealed(ok.clone())),
            Ok(Sealed {
                seq: 3,
                message: ok
            })
        );
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
                hand: false,
                screen: Some("a b\r\na=x".into()),
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
            assert!(Sealed::decode(&sealed(bad)).is_err());
        }
        let decode = |json: &str| Sealed::decode(json.as_bytes()).map(|s| s.message);
        assert!(
            decode(r#"{"seq":1,"message":{"kind":"chat","text":"a","from":"admin"}}"#).is_err()
        );
        assert!(decode(r#"{"seq":1,"message":{"kind":"chat","text":"a"},"x":1}"#).is_err());
        assert!(
            decode(r#"{"kind":"chat","text":"a"}"#).is_err(),
            "no number"
        );
        assert!(decode("not json").is_err());
        assert_eq!(
            decode(r#"{"seq":0,"message":{"kind":"state","muted":true,"camera_off":false}}"#),
            Ok(AppMessage::State {
                muted: true,
                camera_off: false,
                hand: false,
                screen: None,
            })
        );
        let sharing = r#"{"seq":9,"message":{"kind":"state","muted":false,"camera_off":true,"hand":true,"screen":"{9a-3}"}}"#;
        assert_eq!(
            decode(sharing),
            Ok(AppMessage::State {
                muted: false,
                camera_off: true,
                hand: true,
                screen: Some("{9a-3}".into()),
            })
        );
    }
}
