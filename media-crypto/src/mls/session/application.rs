//! Application messages (RFC 9420 §6.3, PrivateMessage with content type application): what
//! members say to each other (chat, reactions, their own mute state), encrypted and signed
//! under the current epoch. The delivery service sees the group, the epoch and the length.

use openmls::prelude::*;

use super::MlsSession;
use super::processing::in_current_epoch;
use super::wire::{decode, encode, kind};
use crate::mls::error::{Misuse, MlsError, PeerFault};

/// An application message opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// The epoch it was sent in.
    pub epoch: u64,
    /// The sender's leaf: the member whose signature key signed it.
    pub sender: u32,
    /// What the sender wrote.
    pub plaintext: Vec<u8>,
}

impl MlsSession {
    /// Encrypts `plaintext` as an application message of the current epoch (an `MLSMessage`
    /// carrying a PrivateMessage), with the epoch. Fails while a proposal waits for the next
    /// commit (openmls's rule: the message would otherwise be in an epoch the proposal
    /// changes), or a commit of ours is pending: send it after the next epoch.
    pub fn seal_application(&mut self, plaintext: &[u8]) -> Result<(u64, Vec<u8>), MlsError> {
        self.ensure_settled()?;
        let group = self.group.as_mut().expect("a settled member has a group");
        if group.pending_proposals().next().is_some() {
            return Err(MlsError::Misuse(Misuse::ProposalPending));
        }
        let epoch = group.epoch().as_u64();
        let message = group
            .create_message(&self.provider, &self.signer, plaintext)
            .map_err(|e| MlsError::Internal(format!("sealing an application message: {e}")))?;
        Ok((epoch, encode(&message)?))
    }

    /// Decrypts an application message of the current epoch and checks its sender's
    /// signature. One of another group or epoch, a handshake message, or one that fails to
    /// decrypt or verify is an error and changes nothing but openmls's ratchet position.
    pub fn open_application(&mut self, message: &[u8]) -> Result<Application, MlsError> {
        let private = match decode(message, "application message")? {
            MlsMessageBodyIn::PrivateMessage(m) => m,
            other => {
                return Err(MlsError::Peer(PeerFault::UnexpectedMessage {
                    expected: "application message",
                    got: kind(&other),
                }));
            }
        };
        let protocol: ProtocolMessage = private.into();
        let group = self
            .group
            .as_mut()
            .ok_or(MlsError::Misuse(Misuse::NotInGroup))?;
        in_current_epoch(group, &protocol)?;
        let message_epoch = group.epoch().as_u64();
        if protocol.content_type() != ContentType::Application {
            return Err(MlsError::Peer(PeerFault::UnexpectedMessage {
                expected: "application message",
                got: "handshake message",
            }));
        }
        let processed = group
            .process_message(&self.provider, protocol)
            .map_err(|e| MlsError::Peer(PeerFault::Invalid(e.to_string())))?;
        let sender = match processed.sender() {
            Sender::Member(leaf) => leaf.u32(),
            _ => {
                return Err(MlsError::Peer(PeerFault::Invalid(
                    "not from a member".into(),
                )));
            }
        };
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(m) => Ok(Application {
                epoch: message_epoch,
                sender,
                plaintext: m.into_bytes(),
            }),
            _ => Err(MlsError::Peer(PeerFault::UnexpectedMessage {
                expected: "application message",
                got: "handshake message",
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::mls::SessionConfig;

    const T: Duration = Duration::from_secs(1);

    fn member(name: &str) -> MlsSession {
        MlsSession::new(name, SessionConfig::default()).expect("session")
    }

    /// Alice's group with `others` added in one commit, everyone in it.
    fn group(others: &mut [&mut MlsSession]) -> MlsSession {
        let mut alice = member("alice");
        alice.create_group(b"chat", T).expect("group");
        let packages: Vec<Vec<u8>> = others
            .iter_mut()
            .map(|o| o.key_package().expect("kp"))
            .collect();
        let commit = alice.commit(&packages, &[]).expect("commit");
        alice.confirm_pending_commit(T).expect("confirm");
        let welcome = commit.welcome.expect("welcome");
        for o in others.iter_mut() {
            o.join_from_welcome(&welcome, T).expect("join");
        }
        alice
    }

    #[test]
    fn members_read_each_others_messages_with_the_sender_from_the_signature() {
        let (mut bob, mut carol) = (member("bob"), member("carol"));
        let mut alice = group(&mut [&mut bob, &mut carol]);
        let (epoch, sealed) = alice.seal_application(b"hello").expect("seal");
        assert_eq!(epoch, 1);
        for m in [&mut bob, &mut carol] {
            let opened = m.open_application(&sealed).expect("open");
            assert_eq!(opened.plaintext, b"hello");
            assert_eq!(opened.sender, alice.own_leaf().expect("leaf"));
        }
        assert!(
            !sealed.windows(5).any(|w| w == b"hello"),
            "the text is not on the wire"
        );
    }

    #[test]
    fn a_removed_member_reads_nothing_after_its_removal_and_its_old_messages_are_refused() {
        let (mut bob, mut carol) = (member("bob"), member("carol"));
        let mut alice = group(&mut [&mut bob, &mut carol]);
        let (_, before_removal) = carol.seal_application(b"still here").expect("seal");
        let carol_leaf = carol.own_leaf().expect("leaf");
        let commit = alice.commit(&[], &[carol_leaf]).expect("remove carol");
        alice.confirm_pending_commit(T).expect("confirm");
        bob.process(&commit.commit, T).expect("bob follows");
        carol.process(&commit.commit, T).expect("carol learns");

        let (_, after) = alice.seal_application(b"carol is gone").expect("seal");
        assert_eq!(
            bob.open_application(&after).expect("bob").plaintext,
            b"carol is gone"
        );
        assert!(carol.open_application(&after).is_err(), "carol has no keys");
        // A server that replays carol's message of the old epoch gets nothing shown.
        assert!(matches!(
            bob.open_application(&before_removal),
            Err(MlsError::Peer(PeerFault::StaleEpoch { .. }))
        ));
    }

    #[test]
    fn tampering_handshakes_and_replays_are_refused() {
        let mut bob = member("bob");
        let mut alice = group(&mut [&mut bob]);
        let (_, sealed) = alice.seal_application(b"once").expect("seal");
        let mut bent = sealed.clone();
        *bent.last_mut().expect("bytes") ^= 1;
        assert!(bob.open_application(&bent).is_err(), "a flipped bit fails");
        assert_eq!(
            bob.open_application(&sealed).expect("open").plaintext,
            b"once"
        );
        assert!(bob.open_application(&sealed).is_err(), "a replay fails");
        assert!(bob.open_application(b"junk").is_err());
        let update = bob.commit(&[], &[]).expect("an empty update commit");
        assert!(
            alice.open_application(&update.commit).is_err(),
            "a handshake message is not an application message"
        );
    }

    #[test]
    fn nothing_is_sealed_while_a_proposal_or_our_commit_waits() {
        let mut bob = member("bob");
        let mut alice = group(&mut [&mut bob]);
        let _commit = alice.commit(&[], &[]).expect("commit");
        assert!(matches!(
            alice.seal_application(b"x"),
            Err(MlsError::Misuse(Misuse::CommitPending))
        ));
        let mut lone = member("lone");
        assert!(matches!(
            lone.seal_application(b"x"),
            Err(MlsError::Misuse(Misuse::NotInGroup))
        ));
    }
}
