//! The connection task: WebSocket frames in and out, and the MLS session driven by them.

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use media_crypto::mls::{EpochChange, MlsError, MlsSession, Processed};
use signaling_protocol::{
    ClientMessage, CommitMessage, IceServer, PROTOCOL_VERSION, Participant, ParticipantId,
    PendingAdd, ServerMessage, credential_identity, decode_server, parse_credential_identity,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{Client, ClientConfig, ClientError, Event};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
    let (mut socket, _) = tokio_tungstenite::connect_async(config.url.as_str())
        .await
        .map_err(|e| ClientError::Connect {
            url: config.url.clone(),
            reason: e.to_string(),
        })?;
    let join = ClientMessage::Join {
        protocol: PROTOCOL_VERSION,
        room: config.room.clone(),
        token: config.token.clone(),
    };
    send(&mut socket, &join)
        .await
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    let Joined {
        participant_id,
        identity,
        others,
        ice_servers,
    } = tokio::time::timeout(config.join_timeout, await_joined(&mut socket))
        .await
        .map_err(|_| ClientError::Timeout(config.join_timeout))??;
    let session = MlsSession::new(
        credential_identity(participant_id, &identity),
        config.session,
    )?;
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (event_tx, events) = mpsc::unbounded_channel();
    let mut driver = Driver {
        socket,
        session,
        events: event_tx,
        start: Instant::now(),
    };
    // A room with others in it has a group (or will): ask to be added. The first participant
    // is asked to create the group instead.
    if !others.is_empty() {
        driver.send_key_package().await;
    }
    let span = tracing::info_span!("client", room = %config.room, participant = participant_id);
    tokio::spawn(tracing::Instrument::instrument(
        driver.run(command_rx),
        span,
    ));
    Ok(Client {
        participant_id,
        ice_servers,
        commands,
        events,
    })
}

async fn send(socket: &mut Socket, message: &ClientMessage) -> Result<(), String> {
    let text = serde_json::to_string(message).map_err(|e| e.to_string())?;
    socket
        .send(Message::text(text))
        .await
        .map_err(|e| e.to_string())
}

/// What `joined` told a new participant.
struct Joined {
    participant_id: ParticipantId,
    identity: String,
    others: Vec<Participant>,
    ice_servers: Vec<IceServer>,
}

async fn await_joined(socket: &mut Socket) -> Result<Joined, ClientError> {
    while let Some(frame) = socket.next().await {
        let frame = frame.map_err(|e| ClientError::Protocol(e.to_string()))?;
        let Message::Text(text) = frame else { continue };
        match decode_server(&text).map_err(|e| ClientError::Protocol(e.to_string()))? {
            ServerMessage::Joined {
                participant_id,
                identity,
                participants,
                ice_servers,
                ..
            } => {
                return Ok(Joined {
                    participant_id,
                    identity,
                    others: participants,
                    ice_servers,
                });
            }
            ServerMessage::Error { code, message } => {
                return Err(ClientError::Refused { code, message });
            }
            other => {
                return Err(ClientError::Protocol(format!(
                    "expected joined, got {other:?}"
                )));
            }
        }
    }
    Err(ClientError::Protocol("closed before joining".into()))
}

struct Driver {
    socket: Socket,
    session: MlsSession,
    events: mpsc::UnboundedSender<Event>,
    start: Instant,
}

impl Driver {
    fn now(&self) -> std::time::Duration {
        self.start.elapsed()
    }

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    async fn send(&mut self, message: &ClientMessage) {
        if let Err(e) = send(&mut self.socket, message).await {
            tracing::debug!(error = %e, "send failed");
        }
    }

    async fn send_key_package(&mut self) {
        match self.session.key_package() {
            Ok(kp) => {
                self.send(&ClientMessage::KeyPackage {
                    key_package: kp.into(),
                })
                .await
            }
            Err(e) => self.emit(Event::MlsFailure(format!("key package: {e}"))),
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<ClientMessage>) {
        let reason = loop {
            tokio::select! {
                frame = self.socket.next() => match frame {
                    Some(Ok(Message::Text(text))) => match decode_server(&text) {
                        Ok(message) => {
                            if let Some(reason) = self.on_message(message).await {
                                break reason;
                            }
                        }
                        Err(e) => self.emit(Event::MlsFailure(format!("undecodable frame: {e}"))),
                    },
                    Some(Ok(Message::Close(_))) | None => break "closed by the server".to_owned(),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break format!("connection lost: {e}"),
                },
                command = commands.recv() => match command {
                    Some(message) => self.send(&message).await,
                    // The Client was dropped: leave.
                    None => {
                        self.send(&ClientMessage::Leave).await;
                        break "client dropped".to_owned();
                    }
                },
            }
        };
        let _ = self.socket.close(None).await;
        self.emit(Event::Closed { reason });
    }

    /// Applies one server message; returns a reason to stop.
    async fn on_message(&mut self, message: ServerMessage) -> Option<String> {
        match message {
            ServerMessage::CreateGroup { group_id } => {
                let now = self.now();
                match self.session.create_group(group_id.as_slice(), now) {
                    Ok(()) => {
                        match self.session.group_info() {
                            Ok(gi) => {
                                self.send(&ClientMessage::GroupCreated {
                                    group_info: gi.into(),
                                })
                                .await
                            }
                            Err(e) => self.emit(Event::MlsFailure(e.to_string())),
                        }
                        self.new_epoch(EpochChange {
                            epoch: 0,
                            added: self.session.roster(),
                            removed: Vec::new(),
                        });
                    }
                    Err(e) => self.emit(Event::MlsFailure(format!("creating the group: {e}"))),
                }
            }
            ServerMessage::CommitRequest { epoch, add, remove } => {
                self.commit(epoch, add, remove).await
            }
            ServerMessage::Commit { commit, .. } => {
                let now = self.now();
                match self.session.process(commit.as_slice(), now) {
                    Ok(Processed::NewEpoch(change)) => self.new_epoch(change),
                    Ok(Processed::Removed { epoch }) => self.emit(Event::Removed { epoch }),
                    Ok(_) => {}
                    Err(e) => self.emit(Event::MlsFailure(format!("processing a commit: {e}"))),
                }
            }
            ServerMessage::CommitRejected { epoch, reason } => {
                tracing::debug!(epoch, ?reason, "our commit was refused");
                if self.session.has_pending_commit()
                    && let Err(e) = self.session.discard_pending_commit()
                {
                    self.emit(Event::MlsFailure(e.to_string()));
                }
            }
            ServerMessage::Welcome { welcome, .. } => {
                let now = self.now();
                match self.session.join_from_welcome(welcome.as_slice(), now) {
                    Ok(()) => self.new_epoch(EpochChange {
                        epoch: self.session.epoch().unwrap_or_default(),
                        added: Vec::new(),
                        removed: Vec::new(),
                    }),
                    Err(e) => self.emit(Event::MlsFailure(format!("joining: {e}"))),
                }
            }
            ServerMessage::Proposal { proposal, .. } => {
                let now = self.now();
                if let Err(e) = self.session.process(proposal.as_slice(), now) {
                    self.emit(Event::MlsFailure(format!("processing a proposal: {e}")));
                }
            }
            ServerMessage::ParticipantJoined(p) => self.emit(Event::ParticipantJoined(p)),
            ServerMessage::ParticipantLeft { participant_id } => {
                self.emit(Event::ParticipantLeft(participant_id))
            }
            ServerMessage::SdpOffer { sdp } => self.emit(Event::SdpOffer(sdp)),
            ServerMessage::SdpAnswer { sdp } => self.emit(Event::SdpAnswer(sdp)),
            ServerMessage::IceCandidate(c) => self.emit(Event::IceCandidate(c)),
            ServerMessage::ActiveSpeaker { participant_id } => {
                self.emit(Event::ActiveSpeaker(participant_id))
            }
            ServerMessage::Error { code, message } => {
                self.emit(Event::ServerError { code, message })
            }
            ServerMessage::Goodbye { reason } => return Some(reason),
            ServerMessage::Joined { .. } => {}
            _ => {}
        }
        None
    }

    /// Commits what the delivery service asks for, if this member is at that epoch and has
    /// no commit in flight.
    async fn commit(&mut self, epoch: u64, add: Vec<PendingAdd>, remove: Vec<ParticipantId>) {
        if !self.session.is_member()
            || self.session.epoch() != Some(epoch)
            || self.session.has_pending_commit()
        {
            return;
        }
        let mut added = Vec::new();
        let mut key_packages = Vec::new();
        for a in add {
            if self
                .session
                .validate_key_package(a.key_package.as_slice())
                .is_ok()
            {
                added.push(a.participant_id);
                key_packages.push(a.key_package.into_vec());
            } else {
                tracing::warn!(
                    participant = a.participant_id,
                    "skipping an invalid key package"
                );
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
            Ok(out) => {
                let message = ClientMessage::Commit(CommitMessage {
                    epoch,
                    commit: out.commit.into(),
                    welcome: out.welcome.map(Into::into),
                    group_info: out.group_info.unwrap_or_default().into(),
                    added,
                    removed: remove,
                });
                self.send(&message).await;
            }
            Err(MlsError::CommitPending) => {}
            Err(e) => self.emit(Event::MlsFailure(format!("committing: {e}"))),
        }
    }

    fn new_epoch(&self, change: EpochChange) {
        let (Ok(key), Some(safety_number)) =
            (self.session.epoch_key(), self.session.safety_number())
        else {
            return;
        };
        self.emit(Event::NewEpoch {
            epoch: change.epoch,
            key,
            roster: self.session.roster(),
            safety_number,
            added: change.added,
            removed: change.removed,
        });
    }
}
