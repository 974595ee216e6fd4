//! The proxy's own members: real participants of the room (tokens minted with the operator's
//! secret, connected straight to the sfu) whose MLS session does whatever the proxy wants. An
//! accomplice commits everything it is asked to, checks nothing, and can sign proposals that
//! honest members must refuse.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use media_crypto::mls::{DeviceKey, MlsSession, SessionConfig};
use signaling_protocol::{
    ClientMessage, CommitMessage, CommitRejection, PROTOCOL_VERSION, ParticipantId, ServerMessage,
    credential_identity, decode_server,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::ZERO;

/// A member run by the proxy.
#[derive(Clone)]
pub struct Accomplice {
    pub participant_id: ParticipantId,
    pub identity: String,
    session: Arc<Mutex<MlsSession>>,
    outgoing: mpsc::UnboundedSender<ClientMessage>,
    /// The delivery service's refusals of this member's commits, in order.
    refusals: Arc<Mutex<Vec<CommitRejection>>>,
}

impl std::fmt::Debug for Accomplice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accomplice")
            .field("participant_id", &self.participant_id)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

fn text(m: &ClientMessage) -> Message {
    Message::text(serde_json::to_string(m).unwrap_or_default())
}

impl Accomplice {
    /// Its device key (to put another member on the same device).
    pub fn device_key(&self) -> anyhow::Result<DeviceKey> {
        let session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let config = SessionConfig::default();
        Ok(DeviceKey::from_bytes(
            &session.device_key().to_bytes(),
            config.ciphersuite,
        )?)
    }

    /// Joins `room` at the sfu's signaling `url` with `token` (on `device`, a key of its own
    /// or another's: `None`, a fresh one), and keeps following the group in a task of its own.
    pub async fn join(
        url: &str,
        room: &str,
        token: &str,
        device: Option<DeviceKey>,
    ) -> anyhow::Result<Accomplice> {
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        ws.send(text(&ClientMessage::Join {
            protocol: PROTOCOL_VERSION,
            room: room.into(),
            token: token.into(),
        }))
        .await?;
        let (participant_id, identity, alone) = loop {
            let Some(frame) = ws.next().await else {
                anyhow::bail!("closed before joining");
            };
            if let Message::Text(t) = frame? {
                match decode_server(&t)? {
                    ServerMessage::Joined {
                        participant_id,
                        identity,
                        participants,
                        ..
                    } => break (participant_id, identity, participants.is_empty()),
                    ServerMessage::Error { code, message } => {
                        anyhow::bail!("refused: {code:?}: {message}")
                    }
                    _ => {}
                }
            }
        };
        let config = SessionConfig::default();
        let device = match device {
            Some(d) => d,
            None => DeviceKey::generate(config.ciphersuite)?,
        };
        let mut session = MlsSession::with_device_key(
            credential_identity(participant_id, &identity),
            device,
            config,
        )?;
        if !alone {
            ws.send(text(&ClientMessage::KeyPackage {
                key_package: session.key_package()?.into(),
            }))
            .await?;
        }
        let session = Arc::new(Mutex::new(session));
        let (outgoing, mut queue) = mpsc::unbounded_channel();
        let me = Accomplice {
            participant_id,
            identity,
            session: session.clone(),
            outgoing,
            refusals: Arc::default(),
        };
        let follower = me.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    frame = ws.next() => {
                        let Some(Ok(frame)) = frame else { break };
                        let Message::Text(t) = frame else { continue };
                        let Ok(message) = decode_server(&t) else { continue };
                        for reply in follower.follow(message) {
                            if ws.send(text(&reply)).await.is_err() {
                                return;
                            }
                        }
                    }
                    out = queue.recv() => {
                        let Some(out) = out else { break };
                        if ws.send(text(&out)).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Ok(me)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MlsSession> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the accomplice answers to a server message: it does what it is told.
    fn follow(&self, message: ServerMessage) -> Vec<ClientMessage> {
        let mut s = self.lock();
        match message {
            ServerMessage::CreateGroup { group_id } => {
                if s.group_id().is_some() {
                    s.forget_group(T);
                }
                let _ = s.create_group(group_id.as_slice(), T);
                s.group_info()
                    .map(|gi| {
                        vec![ClientMessage::GroupCreated {
                            group_info: gi.into(),
                        }]
                    })
                    .unwrap_or_default()
            }
            ServerMessage::Welcome { welcome, epoch } => {
                match s.join_from_welcome(welcome.as_slice(), T) {
                    Ok(()) => vec![ClientMessage::WelcomeAck { epoch }],
                    Err(e) => {
                        tracing::warn!(error = %e, "accomplice cannot join");
                        Vec::new()
                    }
                }
            }
            ServerMessage::CommitRequest { epoch, add, remove } => {
                let roster = s.roster();
                let leaves: Vec<u32> = roster
                    .iter()
                    .filter(|r| {
                        remove
                            .iter()
                            .any(|p| r.name().starts_with(&format!("{p}:")))
                    })
                    .map(|r| r.leaf)
                    .collect();
                let kps: Vec<Vec<u8>> = add
                    .iter()
                    .map(|a| a.key_package.as_slice().to_vec())
                    .collect();
                match s.commit(&kps, &leaves) {
                    Ok(out) => {
                        let removed = roster
                            .iter()
                            .filter(|r| out.removed.contains(&r.leaf))
                            .filter_map(|r| r.name().split(':').next()?.parse().ok())
                            .collect();
                        vec![ClientMessage::Commit(CommitMessage {
                            epoch,
                            commit: out.commit.into(),
                            welcome: out.welcome.map(Into::into),
                            group_info: out.group_info.unwrap_or_default().into(),
                            added: add.iter().map(|a| a.participant_id).collect(),
                            removed,
                        })]
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accomplice cannot commit");
                        Vec::new()
                    }
                }
            }
            ServerMessage::Commit { commit, .. } => {
                let _ = s.process(commit.as_slice(), T);
                Vec::new()
            }
            ServerMessage::CommitRejected { reason, .. } => {
                self.refusals
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(reason);
                let _ = s.discard_pending_commit();
                Vec::new()
            }
            ServerMessage::Rejoin { .. } => {
                s.forget_group(T);
                s.key_package()
                    .map(|kp| {
                        vec![ClientMessage::KeyPackage {
                            key_package: kp.into(),
                        }]
                    })
                    .unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }

    /// The group's epoch as this accomplice holds it.
    pub fn epoch(&self) -> Option<u64> {
        self.lock().epoch()
    }

    /// An Add proposal, signed by this member, for a fresh key package of `identity` as
    /// participant `participant_id`: a member trying to bring someone in past the queue.
    pub fn propose_add(
        &self,
        participant_id: ParticipantId,
        identity: &str,
    ) -> anyhow::Result<Vec<u8>> {
        let mut ghost = MlsSession::new(
            credential_identity(participant_id, identity),
            SessionConfig::default(),
        )?;
        let kp = ghost.key_package()?;
        Ok(self.lock().propose_add(&kp)?)
    }

    /// The group's GroupInfo now, with its ratchet tree (what a server holds).
    pub fn group_info(&self) -> anyhow::Result<Vec<u8>> {
        Ok(self.lock().group_info()?)
    }

    /// A commit, signed by this member, that removes `victim`'s leaf and adds a fresh device
    /// under `victim`'s participant id and identity in the same epoch: a leaf swap. It stays
    /// pending in this member's session until the delivery service refuses it.
    pub fn swap(&self, victim: ParticipantId, identity: &str) -> anyhow::Result<(u64, Vec<u8>)> {
        let mut impostor = MlsSession::new(
            credential_identity(victim, identity),
            SessionConfig::default(),
        )?;
        let kp = impostor.key_package()?;
        let mut s = self.lock();
        let prefix = format!("{victim}:");
        let leaf = s
            .roster()
            .iter()
            .find(|r| r.name().starts_with(&prefix))
            .map(|r| r.leaf)
            .context("the victim has no leaf")?;
        let epoch = s.epoch().context("not in the group")?;
        let out = s.commit(&[kp], &[leaf])?;
        Ok((epoch, out.commit))
    }

    /// How the delivery service answered this member's commits it refused, so far.
    pub fn refusals(&self) -> Vec<CommitRejection> {
        self.refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sends `message` to the server as this member.
    pub fn send(&self, message: ClientMessage) {
        let _ = self.outgoing.send(message);
    }
}
