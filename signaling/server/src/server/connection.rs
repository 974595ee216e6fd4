//! One WebSocket connection: the join handshake, then frames in (size and rate limits,
//! decoding) and messages out, pings and idle detection, until it closes.

use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use signaling_protocol::{
    ClientMessage, ErrorCode, PROTOCOL_VERSION, ParticipantId, ServerMessage, decode_client,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

use super::SignalingServer;
use super::limits::RateLimiter;
use super::media::{MediaSender, MediaSignal};
use super::registry::{Command, Outbound, RoomHandle};
use crate::token;

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;
type Stream = futures_util::stream::SplitStream<WebSocket>;

/// Tells a connection why it is refused, and closes it.
pub(super) async fn refuse(socket: WebSocket, code: ErrorCode, message: &str) {
    let (mut sink, _) = socket.split();
    let _ = send(&mut sink, &ServerMessage::error(code, message)).await;
    let _ = sink.send(Message::Close(None)).await;
}

pub(super) async fn run(server: SignalingServer, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let joined = match handshake(&server, &mut stream).await {
        Ok(joined) => joined,
        Err((code, message)) => {
            tracing::info!(?code, %message, "join refused");
            let _ = send(&mut sink, &ServerMessage::error(code, message)).await;
            let _ = sink.send(Message::Close(None)).await;
            return;
        }
    };
    let span = tracing::info_span!("participant", room = %joined.room, participant = joined.pid);
    serve(server, sink, stream, joined).instrument(span).await;
}

struct Joined {
    room: String,
    pid: ParticipantId,
    handle: RoomHandle,
    outbox: mpsc::Receiver<Outbound>,
}

async fn send(sink: &mut Sink, message: &ServerMessage) -> Result<(), axum::Error> {
    let text = serde_json::to_string(message).unwrap_or_else(|e| {
        format!(r#"{{"type":"error","code":"internal","message":"encoding: {e}"}}"#)
    });
    sink.send(Message::Text(Utf8Bytes::from(text))).await
}

/// Waits for `join`, checks version and token, and enters the room.
async fn handshake(
    server: &SignalingServer,
    stream: &mut Stream,
) -> Result<Joined, (ErrorCode, String)> {
    let config = &server.inner.config;
    if server.is_shutting_down() {
        return Err((
            ErrorCode::ShuttingDown,
            "the server is shutting down".into(),
        ));
    }
    let first = tokio::time::timeout(config.join_timeout, stream.next())
        .await
        .map_err(|_| (ErrorCode::NotJoined, "no join message in time".to_owned()))?;
    let text = match first {
        Some(Ok(Message::Text(t))) => t,
        _ => return Err((ErrorCode::NotJoined, "expected a join message".into())),
    };
    if text.len() > config.max_message_bytes {
        return Err((ErrorCode::MessageTooLarge, "join message too large".into()));
    }
    let (protocol, room, token) = match decode_client(&text) {
        Ok(ClientMessage::Join {
            protocol,
            room,
            token,
        }) => (protocol, room, token),
        Ok(_) => {
            return Err((
                ErrorCode::NotJoined,
                "the first message must be join".into(),
            ));
        }
        Err(e) => return Err((e.code(), e.to_string())),
    };
    if protocol != PROTOCOL_VERSION {
        return Err((
            ErrorCode::UnsupportedVersion,
            format!("this server speaks protocol {PROTOCOL_VERSION}, not {protocol}"),
        ));
    }
    let claims = token::verify(&token, &config.token_secret, &room)
        .map_err(|e| (e.code(), e.to_string()))?;
    let (tx, outbox) = mpsc::channel(config.outbox_capacity);
    let (pid, handle) = server
        .inner
        .registry
        .join(&room, claims.sub, claims.publish, tx.clone())
        .await
        .map_err(|code| (code, format!("cannot join room {room:?}")))?;
    if let Some(media) = &server.inner.media {
        media.joined(&room, pid, claims.publish, MediaSender { outbox: tx });
    }
    Ok(Joined {
        room,
        pid,
        handle,
        outbox,
    })
}

async fn serve(server: SignalingServer, mut sink: Sink, mut stream: Stream, mut joined: Joined) {
    let config = &server.inner.config;
    let pid = joined.pid;
    let mut limiter = RateLimiter::new(
        config.messages_per_second,
        config.message_burst,
        Instant::now().into_std(),
    );
    let mut last_seen = Instant::now();
    let mut last_rate_reply: Option<Instant> = None;
    let mut ping = tokio::time::interval(config.ping_interval);
    ping.tick().await;
    let mut shutdown = server.inner.shutdown.subscribe();
    // The participant's last reported running total of undecryptable frames.
    let mut reported_failures = 0u64;
    if server.is_shutting_down() {
        shutdown.mark_changed();
    }
    let reason = loop {
        tokio::select! {
            // The flag only ever goes from false to true.
            Ok(()) = shutdown.changed() => {
                let goodbye = ServerMessage::Goodbye { reason: "the server is shutting down".into() };
                let _ = send(&mut sink, &goodbye).await;
                break "server shutting down";
            }
            frame = stream.next() => {
                let Some(Ok(frame)) = frame else { break "connection lost" };
                last_seen = Instant::now();
                let reply = match frame {
                    Message::Text(text) => {
                        if text.len() > config.max_message_bytes {
                            Some(ServerMessage::error(
                                ErrorCode::MessageTooLarge,
                                format!("messages are limited to {} bytes", config.max_message_bytes),
                            ))
                        } else if !limiter.allow(last_seen.into_std()) {
                            // One rate-limit reply a second at most: no reply floods.
                            let quiet = last_rate_reply
                                .is_some_and(|t| last_seen.duration_since(t) < Duration::from_secs(1));
                            last_rate_reply = Some(last_seen);
                            (!quiet).then(|| ServerMessage::error(
                                ErrorCode::RateLimited,
                                format!("more than {} messages a second", config.messages_per_second),
                            ))
                        } else {
                            match decode_client(&text) {
                                Ok(ClientMessage::MediaStats { decrypt_failures }) => {
                                    // A running total: add what is new (a smaller one restarts).
                                    let new = decrypt_failures
                                        .checked_sub(reported_failures)
                                        .unwrap_or(decrypt_failures);
                                    reported_failures = decrypt_failures;
                                    server.inner.client_decrypt_failures.fetch_add(new, std::sync::atomic::Ordering::Relaxed);
                                    None
                                }
                                Ok(message) => match (media_signal(&message), &server.inner.media) {
                                    (Some(signal), Some(media)) => {
                                        media.signal(&joined.room, pid, signal);
                                        None
                                    }
                                    _ => {
                                        if !joined.handle.send(Command::Message { pid, message }) {
                                            break "room closed";
                                        }
                                        None
                                    }
                                },
                                Err(e) => Some(ServerMessage::error(e.code(), e.to_string())),
                            }
                        }
                    }
                    Message::Binary(_) => Some(ServerMessage::error(
                        ErrorCode::MalformedMessage,
                        "binary frames are not part of the protocol",
                    )),
                    Message::Close(_) => break "closed by the client",
                    Message::Ping(_) | Message::Pong(_) => None,
                };
                if let Some(reply) = reply
                    && send(&mut sink, &reply).await.is_err()
                {
                    break "connection lost";
                }
            }
            out = joined.outbox.recv() => match out {
                Some(Outbound::Message(mut message)) => {
                    if let (ServerMessage::Joined { ice_servers, .. }, Some(turn)) =
                        (&mut message, &config.turn)
                    {
                        turn.apply(ice_servers, pid, token::unix_now());
                    }
                    if send(&mut sink, &message).await.is_err() {
                        break "connection lost";
                    }
                }
                Some(Outbound::Close) | None => break "closed by the server",
            },
            _ = ping.tick() => {
                if last_seen.elapsed() > config.idle_timeout {
                    let _ = send(&mut sink, &ServerMessage::Goodbye { reason: "idle timeout".into() }).await;
                    break "idle timeout";
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break "connection lost";
                }
            }
        }
    };
    tracing::info!(reason, "participant disconnected");
    let _ = sink.send(Message::Close(None)).await;
    joined.handle.send(Command::Disconnect { pid });
    if let Some(media) = &server.inner.media {
        media.left(&joined.room, pid);
    }
}

/// The media negotiation messages, which go to the SFU rather than the room.
fn media_signal(message: &ClientMessage) -> Option<MediaSignal> {
    match message {
        ClientMessage::SdpOffer { sdp } => Some(MediaSignal::Offer(sdp.clone())),
        ClientMessage::SdpAnswer { sdp } => Some(MediaSignal::Answer(sdp.clone())),
        ClientMessage::IceCandidate(c) => Some(MediaSignal::Candidate(c.clone())),
        _ => None,
    }
}
