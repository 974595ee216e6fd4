//! A participant's side of the signaling protocol, without IO: it takes the server's messages,
//! drives the participant's MLS session (creating the group when asked, committing queued adds
//! and removes, joining from a Welcome, processing commits) and returns what to send and what
//! happened. The Rust client runs it on a WebSocket task; the browser runs it in wasm.

mod event;

use std::time::Duration;

use media_crypto::mls::{EpochChange, MlsError, MlsSession, Processed, SessionConfig};
use signaling_protocol::{
    ClientMessage, CommitMessage, ParticipantId, PendingAdd, ServerMessage, credential_identity,
    parse_credential_identity,
};

pub use event::Event;

/// What the participant wants done after a message.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Output {
    /// Send this to the server.
    Send(ClientMessage),
    /// Report this.
    Event(Event),
    /// The server said goodbye: the connection ends, for this reason.
    Stop(String),
}

/// One participant after `joined`: its MLS session and the protocol steps around it.
#[derive(Debug)]
pub struct Participant {
    participant_id: ParticipantId,
    session: MlsSession,
}

impl Participant {
    /// The participant `joined` announced. Its MLS credential binds the participant id to
    /// the identity (`"<participant_id>:<identity>"`), as the delivery service checks.
    pub fn new(
        participant_id: ParticipantId,
        identity: &str,
        config: SessionConfig,
    ) -> Result<Self, MlsError> {
        let session = MlsSession::new(credential_identity(participant_id, identity), config)?;
        Ok(Participant {
            participant_id,
            session,
        })
    }

    pub fn participant_id(&self) -> ParticipantId {
        self.participant_id
    }

    /// The MLS session (epoch, roster, safety number, keys).
    pub fn session(&self) -> &MlsSession {
        &self.session
    }

    /// The first step after `joined`: a room with others in it has a group (or will), so this
    /// participant asks to be added. The first participant is asked to create the group.
    pub fn start(&mut self, others_present: bool) -> Vec<Output> {
        let mut out = Vec::new();
        if others_present {
            self.send_key_package(&mut out);
        }
        out
    }

    /// Applies one server message at `now` (time since an origin the caller chooses).
    pub fn handle(&mut self, message: ServerMessage, now: Duration) -> Vec<Output> {
        let mut out = Vec::new();
        self.on_message(message, now, &mut out);
        out
    }

    fn send_key_package(&mut self, out: &mut Vec<Output>) {
        match self.session.key_package() {
            Ok(kp) => out.push(Output::Send(ClientMessage::KeyPackage {
                key_package: kp.into(),
            })),
            Err(e) => out.push(Output::Event(Event::MlsFailure(format!(
                "key package: {e}"
            )))),
        }
    }

    fn on_message(&mut self, message: ServerMessage, now: Duration, out: &mut Vec<Output>) {
        let fail = |out: &mut Vec<Output>, m: String| out.push(Output::Event(Event::MlsFailure(m)));
        match message {
            ServerMessage::CreateGroup { group_id } => {
                match self.session.create_group(group_id.as_slice(), now) {
                    Ok(()) => {
                        match self.session.group_info() {
                            Ok(gi) => out.push(Output::Send(ClientMessage::GroupCreated {
                                group_info: gi.into(),
                            })),
                            Err(e) => fail(out, e.to_string()),
                        }
                        self.new_epoch(
                            EpochChange {
                                epoch: 0,
                                added: self.session.roster(),
                                removed: Vec::new(),
                            },
                            out,
                        );
                    }
                    Err(e) => fail(out, format!("creating the group: {e}")),
                }
            }
            ServerMessage::CommitRequest { epoch, add, remove } => {
                self.commit(epoch, add, remove, out)
            }
            ServerMessage::Commit { commit, .. } => {
                match self.session.process(commit.as_slice(), now) {
                    Ok(Processed::NewEpoch(change)) => self.new_epoch(change, out),
                    Ok(Processed::Removed { epoch }) => {
                        out.push(Output::Event(Event::Removed { epoch }))
                    }
                    Ok(_) => {}
                    Err(e) => fail(out, format!("processing a commit: {e}")),
                }
            }
            ServerMessage::CommitRejected { .. } => {
                if self.session.has_pending_commit()
                    && let Err(e) = self.session.discard_pending_commit()
                {
                    fail(out, e.to_string());
                }
            }
            ServerMessage::Welcome { welcome, .. } => {
                match self.session.join_from_welcome(welcome.as_slice(), now) {
                    Ok(()) => self.new_epoch(
                        EpochChange {
                            epoch: self.session.epoch().unwrap_or_default(),
                            added: Vec::new(),
                            removed: Vec::new(),
                        },
                        out,
                    ),
                    Err(e) => fail(out, format!("joining: {e}")),
                }
            }
            ServerMessage::Proposal { proposal, .. } => {
                if let Err(e) = self.session.process(proposal.as_slice(), now) {
                    fail(out, format!("processing a proposal: {e}"));
                }
            }
            ServerMessage::ParticipantJoined(p) => {
                out.push(Output::Event(Event::ParticipantJoined(p)))
            }
            ServerMessage::ParticipantLeft { participant_id } => {
                out.push(Output::Event(Event::ParticipantLeft(participant_id)))
            }
            ServerMessage::SdpOffer { sdp } => out.push(Output::Event(Event::SdpOffer(sdp))),
            ServerMessage::SdpAnswer { sdp } => out.push(Output::Event(Event::SdpAnswer(sdp))),
            ServerMessage::IceCandidate(c) => out.push(Output::Event(Event::IceCandidate(c))),
            ServerMessage::ActiveSpeaker { participant_id } => {
                out.push(Output::Event(Event::ActiveSpeaker(participant_id)))
            }
            ServerMessage::Error { code, message } => {
                out.push(Output::Event(Event::ServerError { code, message }))
            }
            ServerMessage::Goodbye { reason } => out.push(Output::Stop(reason)),
            _ => {}
        }
    }

    /// Commits what the delivery service asks for, if this member is at that epoch and has
    /// no commit in flight.
    fn commit(
        &mut self,
        epoch: u64,
        add: Vec<PendingAdd>,
        remove: Vec<ParticipantId>,
        out: &mut Vec<Output>,
    ) {
        if !self.session.is_member()
            || self.session.epoch() != Some(epoch)
            || self.session.has_pending_commit()
        {
            return;
        }
        let mut added = Vec::new();
        let mut key_packages = Vec::new();
        for a in add {
            // An invalid key package is skipped; the others are still added.
            if self
                .session
                .validate_key_package(a.key_package.as_slice())
                .is_ok()
            {
                added.push(a.participant_id);
                key_packages.push(a.key_package.into_vec());
            }
        }
        let roster = self.session.roster();
        let leaves: Vec<u32> = remove
            .iter()
            .filter_map(|pid| {
                roster.iter().find_map(|r| {
                    let name = r.name();
                    let (id, _) = parse_credential_identity(&name)?;
                    (id == *pid).then_some(r.leaf)
                })
            })
            .collect();
        match self.session.commit(&key_packages, &leaves) {
            Ok(commit) => out.push(Output::Send(ClientMessage::Commit(CommitMessage {
                epoch,
                commit: commit.commit.into(),
                welcome: commit.welcome.map(Into::into),
                group_info: commit.group_info.unwrap_or_default().into(),
                added,
                removed: remove,
            }))),
            Err(MlsError::CommitPending) => {}
            Err(e) => out.push(Output::Event(Event::MlsFailure(format!("committing: {e}")))),
        }
    }

    fn new_epoch(&self, change: EpochChange, out: &mut Vec<Output>) {
        let (Ok(key), Some(safety_number)) =
            (self.session.epoch_key(), self.session.safety_number())
        else {
            return;
        };
        out.push(Output::Event(Event::NewEpoch {
            epoch: change.epoch,
            key,
            roster: self.session.roster(),
            safety_number,
            added: change.added,
            removed: change.removed,
        }));
    }
}
