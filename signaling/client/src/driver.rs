//! The connection task: WebSocket frames in and out, and the MLS session driven by them.

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use media_crypto::mls::DeviceKey;
use signaling_participant::{Output, Participant};
use signaling_protocol::{
    ClientMessage, IceServer, PROTOCOL_VERSION, ParticipantId, ServerMessage, decode_server,
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
    let device = match &config.device_key {
        Some(bytes) => DeviceKey::from_bytes(bytes, config.session.ciphersuite)?,
        None => DeviceKey::generate(config.session.ciphersuite)?,
    };
    let mut participant =
        Participant::with_device_key(participant_id, &identity, &others, device, config.session)?;
    let first = participant.start();
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (event_tx, events) = mpsc::unbounded_channel();
    let mut driver = Driver {
        socket,
        participant,
        events: event_tx,
        start: Instant::now(),
    };
    driver.apply(first).await;
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
    Acknowledge(u32),
}

struct Driver {
    socket: Socket,
    participant: Participant,
    events: mpsc::UnboundedSender<Event>,
    start: Instant,
}

impl Driver {
    async fn send(&mut self, message: &ClientMessage) {
        if let Err(e) = send(&mut self.socket, message).await {
            tracing::debug!(error = %e, "send failed");
        }
    }

    /// Sends and reports what the participant asked for; returns a reason to stop.
    async fn apply(&mut self, outputs: Vec<Output>) -> Option<String> {
        for output in outputs {
            match output {
                Output::Send(message) => self.send(&message).await,
                Output::Event(event) => {
                    let _ = self.events.send(event);
                }
                Output::Stop(reason) => return Some(reason),
                _ => {}
            }
        }
        None
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let reason = loop {
            tokio::select! {
                frame = self.socket.next() => match frame {
                    Some(Ok(Message::Text(text))) => match decode_server(&text) {
                        Ok(message) => {
                            let outputs = self.participant.handle(message, self.start.elapsed());
                            if let Some(reason) = self.apply(outputs).await {
                                break reason;
                            }
                        }
                        Err(e) => {
                            let _ = self
                                .events
                                .send(Event::MlsFailure(format!("undecodable frame: {e}")));
                        }
                    },
                    Some(Ok(Message::Close(_))) | None => break "closed by the server".to_owned(),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break format!("connection lost: {e}"),
                },
                command = commands.recv() => match command {
                    Some(Command::Send(message)) => self.send(&message).await,
                    Some(Command::Acknowledge(leaf)) => {
                        let outputs = self.participant.acknowledge(leaf);
                        if let Some(reason) = self.apply(outputs).await {
                            break reason;
                        }
                    }
                    // The Client was dropped: leave.
                    None => {
                        self.send(&ClientMessage::Leave).await;
                        break "client dropped".to_owned();
                    }
                },
            }
        };
        let _ = self.socket.close(None).await;
        let _ = self.events.send(Event::Closed { reason });
    }
}
