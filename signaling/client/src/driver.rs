//! The connection task: WebSocket frames in and out, and the MLS session driven by them; with
//! reconnecting on, it joins again by itself when the connection drops.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use media_crypto::mls::DeviceKey;
use signaling_participant::{Output, Participant};
use signaling_protocol::{
    ClientMessage, ErrorCode, IceServer, PROTOCOL_VERSION, ParticipantId, ServerMessage,
    decode_server,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use zeroize::Zeroizing;

use crate::{Client, ClientConfig, ClientError, Event};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
    // One device key for every connection of this client: a reconnect is the same device.
    let device_key = match &config.device_key {
        Some(bytes) => bytes.clone(),
        None => DeviceKey::generate(config.session.ciphersuite)?.to_bytes(),
    };
    let (connection, first) = Connection::open(&config, &config.url, &device_key).await?;
    let participant_id = Arc::new(AtomicU64::new(connection.participant_id));
    let ice_servers = connection.ice_servers.clone();
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (event_tx, events) = mpsc::unbounded_channel();
    let mut driver = Driver {
        connection,
        events: event_tx,
        start: Instant::now(),
        config,
        device_key,
        participant_id: participant_id.clone(),
        url: 0,
    };
    let span = tracing::info_span!("client", room = %driver.config.room);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            let stopped = driver.apply(first).await;
            driver.run(command_rx, stopped).await
        },
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

/// One joined connection: its socket and the MLS participant it drives.
struct Connection {
    socket: Socket,
    participant: Participant,
    participant_id: ParticipantId,
    ice_servers: Vec<IceServer>,
}

impl Connection {
    /// Connects, joins, and makes the participant; with the outputs of its start.
    async fn open(
        config: &ClientConfig,
        url: &str,
        device_key: &[u8],
    ) -> Result<(Connection, Vec<Output>), ClientError> {
        let (mut socket, _) =
            tokio_tungstenite::connect_async(url)
                .await
                .map_err(|e| ClientError::Connect {
                    url: url.to_owned(),
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
        let device = DeviceKey::from_bytes(device_key, config.session.ciphersuite)?;
        let mut participant = Participant::with_device_key(
            participant_id,
            &identity,
            &others,
            device,
            config.session,
        )?;
        let first = participant.start();
        Ok((
            Connection {
                socket,
                participant,
                participant_id,
                ice_servers,
            },
            first,
        ))
    }
}

/// What `joined` told a new participant.
struct Joined {
    participant_id: ParticipantId,
    identity: String,
    others: Vec<signaling_protocol::Participant>,
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

/// What the [`Client`] asks its connection task to do.
#[derive(Debug)]
pub(crate) enum Command {
    Send(ClientMessage),
    Acknowledge(u32, Vec<u8>),
    App(signaling_participant::AppMessage),
    Leave,
}

/// Why a connection ended.
enum Ended {
    /// For good: the client left or was dropped, or the group removed this member.
    Final(String),
    /// The connection dropped or the server said goodbye: a reconnect may bring it back.
    Dropped(String),
}

/// Refusals of a join that a retry cannot change.
fn refused_for_good(error: &ClientError) -> bool {
    match error {
        ClientError::Refused { code, .. } => code.is_final(),
        ClientError::Mls(_) => true,
        _ => false,
    }
}

struct Driver {
    connection: Connection,
    events: mpsc::UnboundedSender<Event>,
    start: Instant,
    config: ClientConfig,
    device_key: Zeroizing<Vec<u8>>,
    participant_id: Arc<AtomicU64>,
    /// Which of `url` (0) and `other_urls` (1 on) it is connected to.
    url: usize,
}

impl Driver {
    async fn send(&mut self, message: &ClientMessage) {
        if let Err(e) = send(&mut self.connection.socket, message).await {
            tracing::debug!(error = %e, "send failed");
        }
    }

    /// Sends and reports what the participant asked for; how the connection ended, if it
    /// did.
    async fn apply(&mut self, outputs: Vec<Output>) -> Option<Ended> {
        let mut removed = false;
        for output in outputs {
            match output {
                Output::Send(message) => self.send(&message).await,
                Output::Event(event) => {
                    removed |= matches!(event, Event::Removed { .. });
                    let _ = self.events.send(event);
                }
                Output::Stop { reason, code } if code.is_some_and(ErrorCode::is_final) => {
                    return Some(Ended::Final(reason));
                }
                Output::Stop { reason, .. } => return Some(Ended::Dropped(reason)),
                _ => {}
            }
        }
        removed.then(|| Ended::Final("removed from the group".into()))
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>, first: Option<Ended>) {
        let mut ended = first;
        let reason = loop {
            let why = match ended.take() {
                Some(e) => e,
                None => self.serve(&mut commands).await,
            };
            let _ = self.connection.socket.close(None).await;
            match why {
                Ended::Dropped(reason) if self.config.reconnect.is_some() => {
                    match self.rejoin(&mut commands, &reason).await {
                        Ok(outputs) => ended = self.apply(outputs).await,
                        Err(reason) => break reason,
                    }
                }
                Ended::Dropped(reason) | Ended::Final(reason) => break reason,
            }
        };
        let _ = self.events.send(Event::Closed { reason });
    }

    /// Drives the connection until it ends.
    async fn serve(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>) -> Ended {
        loop {
            let due = self.connection.participant.poll_timeout();
            let start = self.start;
            let timer = async move {
                match due {
                    Some(t) => tokio::time::sleep_until((start + t).into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = timer => {
                    let now = self.start.elapsed();
                    let outputs = self.connection.participant.handle_timeout(now);
                    if let Some(ended) = self.apply(outputs).await {
                        return ended;
                    }
                }
                frame = self.connection.socket.next() => match frame {
                    Some(Ok(Message::Text(text))) => match decode_server(&text) {
                        Ok(message) => {
                            let now = self.start.elapsed();
                            let outputs = self.connection.participant.handle(message, now);
                            if let Some(ended) = self.apply(outputs).await {
                                return ended;
                            }
                        }
                        Err(e) => {
                            let _ = self
                                .events
                                .send(Event::MlsFailure(format!("undecodable frame: {e}")));
                        }
                    },
                    Some(Ok(Message::Close(_))) | None => {
                        return Ended::Dropped("closed by the server".to_owned());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Ended::Dropped(format!("connection lost: {e}")),
                },
                command = commands.recv() => match command {
                    Some(Command::Send(message)) => self.send(&message).await,
                    Some(Command::Acknowledge(leaf, key)) => {
                        match self.connection.participant.acknowledge(leaf, &key) {
                            Ok(outputs) => {
                                if let Some(ended) = self.apply(outputs).await {
                                    return ended;
                                }
                            }
                            Err(e) => tracing::info!(error = %e, "not acknowledged"),
                        }
                    }
                    Some(Command::App(message)) => {
                        match self.connection.participant.send_app(message) {
                            Ok((_, outputs)) => {
                                if let Some(ended) = self.apply(outputs).await {
                                    return ended;
                                }
                            }
                            Err(e) => tracing::debug!(error = %e, "not sent"),
                        }
                    }
                    Some(Command::Leave) => {
                        self.send(&ClientMessage::Leave).await;
                        return Ended::Final("left".to_owned());
                    }
                    // The Client was dropped: leave.
                    None => {
                        self.send(&ClientMessage::Leave).await;
                        return Ended::Final("client dropped".to_owned());
                    }
                },
            }
        }
    }

    /// Joins again with backoff after the connection dropped for `reason`; the new
    /// connection's first outputs, or why it gave up. What the client asks meanwhile belongs
    /// to the dead connection and is dropped, but a leave ends the attempts.
    async fn rejoin(
        &mut self,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        reason: &str,
    ) -> Result<Vec<Output>, String> {
        let policy = self.config.reconnect.clone().unwrap_or_default();
        let since = tokio::time::Instant::now();
        let mut last = reason.to_owned();
        for attempt in 1u32.. {
            if policy.gives_up(since.elapsed()) {
                return Err(format!(
                    "{reason}; not back within {:?} (last: {last})",
                    policy.give_up_after
                ));
            }
            let _ = self.events.send(Event::Reconnecting {
                reason: reason.to_owned(),
                attempt,
            });
            let wait = tokio::time::sleep(policy.delay(attempt, rand::random::<f64>()));
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    () = &mut wait => break,
                    command = commands.recv() => match command {
                        Some(Command::Leave) | None => return Err("left".to_owned()),
                        Some(_) => {}
                    },
                }
            }
            // In a cluster, the next node in turn: the one lost may be gone.
            let urls: Vec<&String> = std::iter::once(&self.config.url)
                .chain(&self.config.other_urls)
                .collect();
            self.url = (self.url + 1) % urls.len();
            let url = urls[self.url].clone();
            match Connection::open(&self.config, &url, &self.device_key).await {
                Ok((connection, first)) => {
                    tracing::info!(attempt, participant = connection.participant_id, "rejoined");
                    self.participant_id
                        .store(connection.participant_id, Ordering::Relaxed);
                    let _ = self.events.send(Event::Reconnected {
                        participant_id: connection.participant_id,
                    });
                    self.connection = connection;
                    return Ok(first);
                }
                Err(e) if refused_for_good(&e) => return Err(format!("{reason}; then {e}")),
                Err(e) => {
                    tracing::debug!(attempt, error = %e, "rejoin failed");
                    last = e.to_string();
                }
            }
        }
        unreachable!("attempts are counted without end")
    }
}
