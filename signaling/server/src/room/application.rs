//! Application messages (MLS PrivateMessages: chat, reactions, a member's own state): relayed
//! to the other members in the room's one order, between the commits, so each is read in the
//! epoch it was sealed in. A message of an epoch the room has left is refused back to its
//! sender (who seals it again), never relayed late; only members send, only members receive.
//! A refusal names the epoch the sender said it sealed the message in: that is how the sender
//! knows which of its messages is meant. (Messages over the size cap, or beyond the sender's
//! rate, are refused by its connection before they reach the room.)

use signaling_protocol::{CommitRejection, ParticipantId, ServerMessage};

use super::{Membership, Room};
use crate::mls::framing;

impl Room {
    pub(super) fn application(
        &mut self,
        from: ParticipantId,
        id: u64,
        epoch: u64,
        message: Vec<u8>,
    ) {
        let member = self
            .occupants
            .get(&from)
            .is_some_and(|o| o.state == Membership::Member);
        let Some(current) = self.epoch() else {
            return self.refuse(from, id, epoch, CommitRejection::NotAMember);
        };
        let group_id = self.group_id();
        if !member {
            return self.refuse(from, id, epoch, CommitRejection::NotAMember);
        }
        if epoch != current {
            return self.refuse(from, id, epoch, CommitRejection::StaleEpoch);
        }
        if let Err(e) = framing::check_application(&message, &group_id, current) {
            tracing::debug!(room = %self.name, participant = from, error = %e, "application message refused");
            let reason = match e {
                framing::FramingError::WrongEpoch { .. } => CommitRejection::StaleEpoch,
                _ => CommitRejection::InvalidMls,
            };
            return self.refuse(from, id, epoch, reason);
        }
        let to = self.holders().into_iter().filter(|&m| m != from).collect();
        self.broadcast(
            to,
            ServerMessage::Application {
                from,
                epoch,
                message: message.into(),
            },
        );
    }

    fn refuse(&mut self, to: ParticipantId, id: u64, epoch: u64, reason: CommitRejection) {
        self.send(to, ServerMessage::ApplicationRejected { id, epoch, reason });
    }
}
