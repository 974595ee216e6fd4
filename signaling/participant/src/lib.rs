//! A participant's side of the signaling protocol, without IO: it takes the server's messages,
//! drives the participant's MLS session (creating the group when asked, committing queued adds
//! and removes, joining from a Welcome, processing commits) and returns what to send and what
//! happened. The Rust client runs it on a WebSocket task; the browser runs it in wasm.
//!
//! It trusts the server for nothing it can check: every leaf that enters the group is checked
//! against the server's own announcements ([`checks`]); as committer it adds only key packages
//! of participants it was told are present, once each; it keeps no proposal but a member's own
//! removal or update; and it reports a commit it cannot process instead of going silent.

pub mod app;
pub mod checks;
mod event;
pub mod inbox;
pub mod media_path;
pub mod presence;
pub mod reconnect;
pub mod trust;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use media_crypto::mls::{
    DeviceKey, EpochChange, Misuse, MlsError, MlsSession, PeerFault, Processed, RosterEntry,
    SessionConfig,
};
use signaling_protocol::{
    ClientMessage, CommitMessage, ErrorCode, ParticipantId, PendingAdd, ServerMessage,
    credential_identity, parse_credential_identity,
};

pub use app::{AppMessage, AppMessageError, Sealed};
pub use checks::{LeafProblem, LeafWarning, SameName};
pub use event::Event;
pub use presence::Presence;

/// What the participant wants done after a message.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Output {
    /// Send this to the server.
    Send(ClientMessage),
    /// Report this.
    Event(Event),
    /// The server said goodbye: the connection ends, for this reason, and with this code; a
    /// final one ([`ErrorCode::is_final`]: removed, banned, the room closed) means do not
    /// reconnect.
    Stop {
        reason: String,
        code: Option<ErrorCode>,
    },
}

/// Why an acknowledgement of an unexplained leaf is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcknowledgeError {
    #[error("leaf {leaf} is not an unexplained member (any more)")]
    NotUnexplained { leaf: u32 },
    #[error("leaf {leaf} holds another device than the one shown: look at it again")]
    AnotherDevice { leaf: u32 },
}

/// A leaf that entered unexplained, and whether the user acknowledged it.
#[derive(Debug, Clone)]
struct Unexplained {
    warning: LeafWarning,
    acknowledged: bool,
}

/// One participant after `joined`: its MLS session and the protocol steps around it.
#[derive(Debug)]
pub struct Participant {
    participant_id: ParticipantId,
    session: MlsSession,
    presence: Presence,
    /// The device key each participant id was first seen with in this meeting: one that
    /// comes back on another key is flagged ([`LeafProblem::AnotherDevice`]).
    first_keys: BTreeMap<ParticipantId, Vec<u8>>,
    unexplained: Vec<Unexplained>,
    outbox: app::Outbox,
    inbox: inbox::Inbox,
}

fn participant_of(entry: &RosterEntry) -> Option<ParticipantId> {
    parse_credential_identity(&entry.name()).map(|(p, _)| p)
}

impl Participant {
    /// The participant `joined` announced, with a fresh device key. Its MLS credential binds
    /// the participant id to the identity (`"<participant_id>:<identity>"`), as the delivery
    /// service checks; `others` are the participants `joined` listed.
    pub fn new(
        participant_id: ParticipantId,
        identity: &str,
        others: &[signaling_protocol::Participant],
        config: SessionConfig,
    ) -> Result<Self, MlsError> {
        Self::with_device_key(
            participant_id,
            identity,
            others,
            DeviceKey::generate(config.ciphersuite)?,
            config,
        )
    }

    /// As [`Participant::new`], signing with this device's own key (kept across visits, so
    /// others recognise the device).
    pub fn with_device_key(
        participant_id: ParticipantId,
        identity: &str,
        others: &[signaling_protocol::Participant],
        device: DeviceKey,
        config: SessionConfig,
    ) -> Result<Self, MlsError> {
        let session = MlsSession::with_device_key(
            credential_identity(participant_id, identity),
            device,
            config,
        )?;
        Ok(Participant {
            participant_id,
            session,
            presence: Presence::new(participant_id, identity, others),
            first_keys: BTreeMap::new(),
            unexplained: Vec::new(),
            outbox: app::Outbox::default(),
            inbox: inbox::Inbox::default(),
        })
    }

    pub fn participant_id(&self) -> ParticipantId {
        self.participant_id
    }

    /// The MLS session (epoch, roster, safety number, keys).
    pub fn session(&self) -> &MlsSession {
        &self.session
    }

    /// Who the server announced in the room.
    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// Whether this member may send media: every unexplained leaf in its group is gone or
    /// acknowledged.
    pub fn may_send(&self) -> bool {
        self.unexplained.iter().all(|u| u.acknowledged)
    }

    /// The unexplained leaves in the group that the user has not acknowledged.
    pub fn unexplained(&self) -> Vec<LeafWarning> {
        self.unexplained
            .iter()
            .filter(|u| !u.acknowledged)
            .map(|u| u.warning.clone())
            .collect()
    }

    /// The user knows who is at `leaf` on the device `signature_key` (the one they were
    /// shown: they compared its fingerprint, say): media may go out although the server never
    /// explained it. Lasts while that device holds that leaf. Refused if that leaf is not
    /// unexplained, or holds another device now (the server refilled it meanwhile).
    pub fn acknowledge(
        &mut self,
        leaf: u32,
        signature_key: &[u8],
    ) -> Result<Vec<Output>, AcknowledgeError> {
        let before = self.may_send();
        // Every entry of that leaf on that device (the same device can be flagged again in a
        // later epoch at the same leaf).
        let mut at_leaf = self
            .unexplained
            .iter_mut()
            .filter(|u| u.warning.leaf == leaf)
            .peekable();
        if at_leaf.peek().is_none() {
            return Err(AcknowledgeError::NotUnexplained { leaf });
        }
        let mut matched = false;
        for u in at_leaf {
            if u.warning.signature_key == signature_key {
                u.acknowledged = true;
                matched = true;
            }
        }
        if !matched {
            return Err(AcknowledgeError::AnotherDevice { leaf });
        }
        if before == self.may_send() {
            return Ok(Vec::new());
        }
        let mut out = vec![Output::Event(Event::SendGate {
            may_send: self.may_send(),
            unexplained: self.unexplained(),
        })];
        self.flush_outbox(&mut out);
        Ok(out)
    }

    /// The first step after `joined`: a room with others in it has a group (or will), so this
    /// participant asks to be added. The first participant is asked to create the group.
    pub fn start(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        if self
            .presence
            .present()
            .any(|(p, _)| p != self.participant_id)
        {
            self.send_key_package(&mut out);
        }
        out
    }

    /// Applies one server message at `now` (time since an origin the caller chooses).
    pub fn handle(&mut self, message: ServerMessage, now: Duration) -> Vec<Output> {
        let mut out = Vec::new();
        self.on_message(message, now, &mut out);
        self.report_gaps(now, &mut out);
        out
    }

    /// Time passed: what is due at `now` (messages that did not arrive in time).
    pub fn handle_timeout(&mut self, now: Duration) -> Vec<Output> {
        let mut out = Vec::new();
        self.report_gaps(now, &mut out);
        out
    }

    /// When [`Participant::handle_timeout`] has something to do, if ever.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.inbox.next_deadline()
    }

    fn fresh_key_package(&mut self, out: &mut Vec<Output>) -> Option<Vec<u8>> {
        match self.session.key_package() {
            Ok(kp) => Some(kp),
            Err(e) => {
                out.push(Output::Event(Event::MlsFailure(format!(
                    "key package: {e}"
                ))));
                None
            }
        }
    }

    fn send_key_package(&mut self, out: &mut Vec<Output>) {
        if let Some(kp) = self.fresh_key_package(out) {
            out.push(Output::Send(ClientMessage::KeyPackage {
                key_package: kp.into(),
            }));
        }
    }

    fn on_message(&mut self, message: ServerMessage, now: Duration, out: &mut Vec<Output>) {
        let fail = |out: &mut Vec<Output>, m: String| out.push(Output::Event(Event::MlsFailure(m)));
        match message {
            ServerMessage::CreateGroup { group_id } => {
                if self.session.group_id().is_some() {
                    self.session.forget_group(now);
                }
                self.unexplained.clear();
                match self.session.create_group(group_id.as_slice(), now) {
                    Ok(()) => {
                        match self.session.group_info() {
                            Ok(gi) => out.push(Output::Send(ClientMessage::GroupCreated {
                                group_info: gi.into(),
                            })),
                            Err(e) => fail(out, e.to_string()),
                        }
                        let change = EpochChange {
                            epoch: 0,
                            added: self.session.roster(),
                            removed: Vec::new(),
                        };
                        self.new_epoch(change, Vec::new(), out);
                    }
                    Err(e) => fail(out, format!("creating the group: {e}")),
                }
            }
            ServerMessage::CommitRequest { epoch, add, remove } => {
                self.commit(epoch, add, remove, out)
            }
            ServerMessage::Commit {
                epoch,
                commit,
                added,
                removed,
                ..
            } => self.on_commit(epoch, commit.as_slice(), &added, &removed, now, out),
            ServerMessage::CommitRejected { .. } => {
                if self.session.has_pending_commit()
                    && let Err(e) = self.session.discard_pending_commit()
                {
                    fail(out, e.to_string());
                }
            }
            ServerMessage::Welcome { welcome, .. } => self.on_welcome(welcome.as_slice(), now, out),
            ServerMessage::Rejoin { reason } => {
                self.session.forget_group(now);
                self.unexplained.clear();
                out.push(Output::Event(Event::GroupReset { reason }));
                self.send_key_package(out);
            }
            ServerMessage::Proposal { from, proposal } => {
                match self.session.process(proposal.as_slice(), now) {
                    Ok(_) => {}
                    Err(e @ MlsError::Peer(PeerFault::ForbiddenProposal(_))) => {
                        out.push(Output::Event(Event::RefusedProposal {
                            from,
                            reason: e.to_string(),
                        }))
                    }
                    Err(e) => fail(out, format!("processing a proposal: {e}")),
                }
            }
            ServerMessage::ParticipantJoined(p) => {
                self.presence.joined(p.participant_id, &p.identity);
                out.push(Output::Event(Event::ParticipantJoined(p)))
            }
            ServerMessage::ParticipantLeft { participant_id } => {
                self.presence.left(participant_id);
                out.push(Output::Event(Event::ParticipantLeft(participant_id)))
            }
            ServerMessage::SdpOffer { sdp } => out.push(Output::Event(Event::SdpOffer(sdp))),
            ServerMessage::SdpAnswer { sdp } => out.push(Output::Event(Event::SdpAnswer(sdp))),
            ServerMessage::IceCandidate(c) => out.push(Output::Event(Event::IceCandidate(c))),
            ServerMessage::ActiveSpeaker { participant_id } => {
                out.push(Output::Event(Event::ActiveSpeaker(participant_id)))
            }
            ServerMessage::SendLayers {
                source,
                spatial_layers,
                height,
            } => out.push(Output::Event(Event::SendLayers {
                source,
                spatial_layers,
                height,
            })),
            ServerMessage::PausedVideos { videos } => {
                out.push(Output::Event(Event::PausedVideos(videos)))
            }
            ServerMessage::VideoStreams { streams } => {
                out.push(Output::Event(Event::VideoStreams(streams)))
            }
            ServerMessage::VideoSections { sections } => {
                out.push(Output::Event(Event::VideoSections(sections)))
            }
            ServerMessage::Error { code, message } => {
                out.push(Output::Event(Event::ServerError { code, message }))
            }
            ServerMessage::Application { from, message, .. } => {
                self.app_received(from, message.as_slice(), now, out)
            }
            ServerMessage::ApplicationRejected { id, epoch, reason } => {
                self.app_rejected(id, epoch, reason, out)
            }
            ServerMessage::Goodbye { reason, code } => out.push(Output::Stop { reason, code }),
            _ => {}
        }
    }

    fn on_welcome(&mut self, welcome: &[u8], now: Duration, out: &mut Vec<Output>) {
        if self.session.group_id().is_some() {
            return out.push(Output::Event(Event::MlsFailure(
                "a welcome while already in a group".into(),
            )));
        }
        match self.session.join_from_welcome(welcome, now) {
            Ok(()) => {
                let epoch = self.session.epoch().unwrap_or_default();
                out.push(Output::Send(ClientMessage::WelcomeAck { epoch }));
                // Everyone already in the group enters it, as far as this member is
                // concerned: each is checked.
                let own = self.session.own_leaf();
                let others: Vec<RosterEntry> = self
                    .session
                    .roster()
                    .into_iter()
                    .filter(|r| Some(r.leaf) != own)
                    .collect();
                let warnings = checks::check_leaves(
                    &others,
                    &self.session.roster(),
                    &self.presence,
                    &self.first_keys,
                    None,
                );
                let change = EpochChange {
                    epoch,
                    added: Vec::new(),
                    removed: Vec::new(),
                };
                self.new_epoch(change, warnings, out);
            }
            Err(e) => {
                // The delivery service takes a fresh key package from a welcomed joiner as
                // "my Welcome did not work" and adds it again.
                out.push(Output::Event(Event::MlsFailure(format!("joining: {e}"))));
                self.send_key_package(out);
            }
        }
    }

    fn on_commit(
        &mut self,
        epoch: u64,
        commit: &[u8],
        claimed_added: &[ParticipantId],
        claimed_removed: &[ParticipantId],
        now: Duration,
        out: &mut Vec<Output>,
    ) {
        if self.session.group_id().is_none() {
            // Not holding the group (it was forgotten): nothing to follow.
            return;
        }
        match self.session.process(commit, now) {
            Ok(Processed::NewEpoch(change)) => {
                let roster = self.session.roster();
                let warnings = checks::check_leaves(
                    &change.added,
                    &roster,
                    &self.presence,
                    &self.first_keys,
                    Some(claimed_added),
                );
                let added: BTreeSet<_> = change.added.iter().filter_map(participant_of).collect();
                let removed: BTreeSet<_> =
                    change.removed.iter().filter_map(participant_of).collect();
                let claimed_a: BTreeSet<_> = claimed_added.iter().copied().collect();
                let claimed_r: BTreeSet<_> = claimed_removed.iter().copied().collect();
                if added != claimed_a || removed != claimed_r {
                    out.push(Output::Event(Event::AccountMismatch {
                        epoch,
                        claimed_added: claimed_added.to_vec(),
                        added: added.into_iter().collect(),
                        claimed_removed: claimed_removed.to_vec(),
                        removed: removed.into_iter().collect(),
                    }));
                }
                self.new_epoch(change, warnings, out);
            }
            Ok(Processed::Removed { epoch }) => {
                self.unexplained.clear();
                out.push(Output::Event(Event::Removed { epoch }))
            }
            Ok(_) => {}
            Err(e) => {
                // This member cannot follow the group any more. Staying silent would leave it
                // holding old keys; it tells the delivery service, drops the group and asks to
                // be added again.
                let reason = e.to_string();
                self.session.forget_group(now);
                self.unexplained.clear();
                if let Some(kp) = self.fresh_key_package(out) {
                    out.push(Output::Send(ClientMessage::CommitFailed {
                        epoch,
                        reason: reason.clone(),
                        key_package: kp.into(),
                    }));
                }
                out.push(Output::Event(Event::GroupLost { epoch, reason }));
            }
        }
    }

    /// Checks one key package the delivery service asks to add: it must be valid, name the
    /// participant it is queued for, be of someone announced present under that identity,
    /// and give nobody a second leaf.
    fn check_add(
        &self,
        add: &PendingAdd,
        roster: &[RosterEntry],
        remove: &[ParticipantId],
        taken: &BTreeSet<ParticipantId>,
    ) -> Result<(), String> {
        self.session
            .validate_key_package(add.key_package.as_slice())
            .map_err(|e| e.to_string())?;
        let credential = self
            .session
            .key_package_identity(add.key_package.as_slice())
            .map_err(|e| e.to_string())?;
        let credential = String::from_utf8_lossy(&credential).into_owned();
        let Some((pid, identity)) = parse_credential_identity(&credential) else {
            return Err(format!(
                "its credential {credential:?} names no participant"
            ));
        };
        if pid != add.participant_id {
            return Err(format!("its credential names participant {pid}"));
        }
        if !self.presence.is_present_as(pid, identity) {
            return Err(format!(
                "{identity:?} (participant {pid}) was never announced present in the room"
            ));
        }
        let in_group = roster.iter().any(|r| participant_of(r) == Some(pid));
        if (in_group && !remove.contains(&pid)) || taken.contains(&pid) {
            return Err(format!("participant {pid} would have two leaves"));
        }
        Ok(())
    }

    /// Commits what the delivery service asks for, if this member is at that epoch and has
    /// no commit in flight; every add is checked first ([`Participant::check_add`]).
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
        let roster = self.session.roster();
        let mut added = Vec::new();
        let mut taken = BTreeSet::new();
        let mut key_packages = Vec::new();
        for a in add {
            match self.check_add(&a, &roster, &remove, &taken) {
                Ok(()) => {
                    taken.insert(a.participant_id);
                    added.push(a.participant_id);
                    key_packages.push(a.key_package.into_vec());
                }
                Err(reason) => out.push(Output::Event(Event::RefusedAdd {
                    participant_id: a.participant_id,
                    reason,
                })),
            }
        }
        let leaves: Vec<u32> = roster
            .iter()
            .filter(|r| participant_of(r).is_some_and(|p| remove.contains(&p)))
            .map(|r| r.leaf)
            .collect();
        if key_packages.is_empty() && leaves.is_empty() && !self.session.has_pending_proposals() {
            // Everything asked for was refused: a commit would only move the epoch.
            return;
        }
        match self.session.commit(&key_packages, &leaves) {
            Ok(commit) => {
                let removed: BTreeSet<ParticipantId> = roster
                    .iter()
                    .filter(|r| commit.removed.contains(&r.leaf))
                    .filter_map(participant_of)
                    .collect();
                out.push(Output::Send(ClientMessage::Commit(CommitMessage {
                    epoch,
                    commit: commit.commit.into(),
                    welcome: commit.welcome.map(Into::into),
                    group_info: commit.group_info.unwrap_or_default().into(),
                    added,
                    removed: removed.into_iter().collect(),
                })))
            }
            Err(MlsError::Misuse(Misuse::CommitPending)) => {}
            Err(e) => out.push(Output::Event(Event::MlsFailure(format!("committing: {e}")))),
        }
    }

    fn new_epoch(
        &mut self,
        change: EpochChange,
        warnings: Vec<LeafWarning>,
        out: &mut Vec<Output>,
    ) {
        let roster = self.session.roster();
        // A leaf that is gone (or now another device) is no longer a reason to hold back.
        self.unexplained.retain(|u| {
            roster
                .iter()
                .any(|r| r.leaf == u.warning.leaf && r.signature_key == u.warning.signature_key)
        });
        for w in &warnings {
            self.unexplained.push(Unexplained {
                warning: w.clone(),
                acknowledged: false,
            });
        }
        for r in &roster {
            if let Some(pid) = participant_of(r) {
                self.first_keys
                    .entry(pid)
                    .or_insert_with(|| r.signature_key.clone());
            }
        }
        let (Ok(key), Some(safety_number)) =
            (self.session.epoch_key(), self.session.safety_number())
        else {
            return;
        };
        out.push(Output::Event(Event::NewEpoch {
            epoch: change.epoch,
            key,
            same_names: checks::same_names(&roster),
            roster,
            safety_number,
            added: change.added,
            removed: change.removed,
            warnings,
            may_send: self.may_send(),
        }));
        self.flush_outbox(out);
    }
}
