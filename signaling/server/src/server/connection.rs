//! One WebSocket connection: the join handshake (a few kilobytes at most until it succeeds),
//! then frames in (every frame counted by the rate limiter; size limits; decoding) and
//! messages out (bounded queue, a send that does not complete in time drops the connection),
//! pings and idle detection, until it closes.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use signaling_protocol::{
    ClientMessage, CommitRejection, ErrorCode, PROTOCOL_VERSION, ParticipantId, ServerMessage,
    decode_client,
};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tracing::Instrument;

use super::SignalingServer;
use super::limits::RateLimiter;
use super::outbox::{Inbox, Outbound, encode, outbox};
use super::rooms::{Joiner, RoomLink};
use super::websocket::{Budget, Socket};
use signaling_token as token;

type Sink = futures_util::stream::SplitSink<Socket, Message>;
type Stream = futures_util::stream::SplitStream<Socket>;

/// The most frames it takes to report a running total of undecryptable frames that grew by
/// this much since the last report is beyond belief; larger increments are clamped.
const MAX_REPORTED_FAILURES_PER_REPORT: u64 = 100_000;

/// Tells a connection why it is refused, and closes it.
pub(super) async fn refuse(socket: Socket, code: ErrorCode, message: &str) {
    let (mut sink, stream) = socket.split();
    let _ = send(&mut sink, &ServerMessage::error(code, message), LAST_WORDS).await;
    close(sink, stream).await;
}

/// Why a connection ends when its room has closed under it.
const ROOM_CLOSED: &str = "room closed";

/// Sends what is queued for the connection, up to a close, each within [`LAST_WORDS`].
async fn last_words(sink: &mut Sink, inbox: &mut Inbox) {
    while let Some(out) = inbox.try_recv() {
        let sent = match out {
            Outbound::Message(message) => send(sink, &message, LAST_WORDS).await,
            Outbound::Frame(text) => send_text(sink, text, LAST_WORDS).await,
            Outbound::Close => return,
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Ends the WebSocket with its closing handshake: the close frame, then what the peer still
/// sends is read (and dropped) until its own close, within [`LAST_WORDS`]. A socket dropped
/// with unread bytes in it (a commit the peer sent as it was being removed) is reset, and a
/// reset can throw away the goodbye still unread on the peer's side.
async fn close(mut sink: Sink, mut stream: Stream) {
    let _ = tokio::time::timeout(LAST_WORDS, async move {
        if sink.send(Message::Close(None)).await.is_err() {
            return;
        }
        while let Some(Ok(frame)) = stream.next().await {
            if matches!(frame, Message::Close(_)) {
                return;
            }
        }
    })
    .await;
}

/// How long the last words to a refused or departing connection may take.
const LAST_WORDS: Duration = Duration::from_secs(2);

pub(super) async fn run(server: SignalingServer, socket: Socket, budget: Budget) {
    let (mut sink, mut stream) = socket.split();
    let joined = match handshake(&server, &mut stream).await {
        Ok(joined) => joined,
        Err((code, message)) => {
            tracing::info!(?code, %message, "join refused");
            let _ = send(&mut sink, &ServerMessage::error(code, message), LAST_WORDS).await;
            close(sink, stream).await;
            return;
        }
    };
    budget.lift();
    let span = tracing::info_span!("participant", room = %joined.room, participant = joined.pid);
    serve(server, sink, stream, joined).instrument(span).await;
}

struct Joined {
    room: String,
    pid: ParticipantId,
    link: Box<dyn RoomLink>,
    inbox: Inbox,
    /// When the access token expires (TURN credentials end then too).
    token_expires: u64,
}

/// Sends a text frame; a send that does not complete within `limit` fails (the peer does not
/// read, and its TCP window is full).
async fn send_text(sink: &mut Sink, text: Utf8Bytes, limit: Duration) -> Result<(), String> {
    match tokio::time::timeout(limit, sink.send(Message::Text(text))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the peer does not read".into()),
    }
}

async fn send(sink: &mut Sink, message: &ServerMessage, limit: Duration) -> Result<(), String> {
    send_text(sink, Utf8Bytes::from(encode(message)), limit).await
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
        Some(Err(_)) => {
            return Err((
                ErrorCode::MessageTooLarge,
                "the join message is too large or malformed".into(),
            ));
        }
        _ => return Err((ErrorCode::NotJoined, "expected a join message".into())),
    };
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
    let claims = token::verify(&token, &config.token_policy(), &room)
        .map_err(|e| (e.code(), e.to_string()))?;
    // Which token this participant holds is known before it enters the room, so that a
    // removal always finds it (and one already revoked is refused here).
    let revocations = &server.inner.revocations;
    server
        .inner
        .rooms
        .learn_revocations(&claims, revocations)
        .await;
    let pid = server.inner.rooms.next_id();
    revocations.hold(pid, &claims, token::unix_now())?;
    let (tx, inbox) = outbox(config.outbox_capacity, config.outbox_bytes);
    let joiner = Joiner {
        pid,
        identity: claims.sub.clone(),
        may_publish: claims.publish,
        outbox: tx,
        media: true,
        resume: false,
    };
    let link = match server.inner.rooms.join(&room, joiner).await {
        Ok(link) => link,
        Err(code) => {
            revocations.release(pid);
            return Err((code, format!("cannot join room {room:?}")));
        }
    };
    // Removed while this join was on its way in: undone.
    if let Err(refused) = revocations.check(&claims, token::unix_now()) {
        link.leave(pid);
        revocations.release(pid);
        return Err(refused);
    }
    Ok(Joined {
        room,
        pid,
        link,
        inbox,
        token_expires: claims.exp,
    })
}

/// What one incoming frame asks for.
enum Incoming {
    /// Nothing to say back.
    Quiet,
    Reply(ServerMessage),
    Stop(&'static str),
}

/// Each this many bytes of an application message count as one more message against the rate.
const APPLICATION_BYTES_PER_MESSAGE: usize = 4096;

/// The last word to every participant when the server stops.
fn shutting_down() -> ServerMessage {
    ServerMessage::Goodbye {
        reason: "the server is shutting down".into(),
        code: None,
    }
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
    let limit = config.send_timeout;
    let reason = loop {
        tokio::select! {
            // The flag only ever goes from false to true.
            Ok(()) = shutdown.changed() => {
                let _ = send(&mut sink, &shutting_down(), LAST_WORDS).await;
                break "server shutting down";
            }
            frame = stream.next() => {
                let frame = match frame {
                    Some(Ok(frame)) => frame,
                    // Oversize frames (beyond what the WebSocket layer accepts) end here too.
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "unreadable frame");
                        break "connection lost";
                    }
                    None => break "connection lost",
                };
                last_seen = Instant::now();
                // Every frame counts against the rate, whatever it is.
                if !limiter.allow(last_seen.into_std()) {
                    // One rate-limit reply a second at most: no reply floods.
                    let quiet = last_rate_reply
                        .is_some_and(|t| last_seen.duration_since(t) < Duration::from_secs(1));
                    last_rate_reply = Some(last_seen);
                    if quiet {
                        continue;
                    }
                    let reply = ServerMessage::error(
                        ErrorCode::RateLimited,
                        format!("more than {} messages a second", config.messages_per_second),
                    );
                    if send(&mut sink, &reply, limit).await.is_err() {
                        break "connection lost";
                    }
                    continue;
                }
                let incoming = match frame {
                    Message::Text(text) if text.len() > config.max_message_bytes => {
                        Incoming::Reply(ServerMessage::error(
                            ErrorCode::MessageTooLarge,
                            format!("messages are limited to {} bytes", config.max_message_bytes),
                        ))
                    }
                    Message::Text(text) => match decode_client(&text) {
                        Ok(ClientMessage::MediaStats { decrypt_failures }) => {
                            // A running total: add what is new (a smaller one restarts), and
                            // never more at once than a participant could have seen.
                            let new = decrypt_failures
                                .checked_sub(reported_failures)
                                .unwrap_or(decrypt_failures)
                                .min(MAX_REPORTED_FAILURES_PER_REPORT);
                            reported_failures = decrypt_failures;
                            let counter = &server.inner.client_decrypt_failures;
                            let _ = counter.fetch_update(
                                std::sync::atomic::Ordering::Relaxed,
                                std::sync::atomic::Ordering::Relaxed,
                                |n| Some(n.saturating_add(new)),
                            );
                            Incoming::Quiet
                        }
                        Ok(ClientMessage::Application { id, epoch, message })
                            if message.as_slice().len() > config.max_application_bytes =>
                        {
                            Incoming::Reply(ServerMessage::ApplicationRejected {
                                id,
                                epoch,
                                reason: CommitRejection::TooLarge,
                            })
                        }
                        // An application message is relayed to everyone: each 4 KiB of it
                        // counts as one more message against the rate.
                        Ok(ClientMessage::Application { id, epoch, message })
                            if !limiter.allow_n(
                                last_seen.into_std(),
                                u32::try_from(message.as_slice().len() / APPLICATION_BYTES_PER_MESSAGE)
                                    .unwrap_or(u32::MAX),
                            ) =>
                        {
                            Incoming::Reply(ServerMessage::ApplicationRejected {
                                id,
                                epoch,
                                reason: CommitRejection::RateLimited,
                            })
                        }
                        Ok(message) => {
                            // Media signaling too: the room's task hands it to the room's media.
                            if joined.link.message(pid, message) {
                                Incoming::Quiet
                            } else {
                                Incoming::Stop(ROOM_CLOSED)
                            }
                        }
                        Err(e) => Incoming::Reply(ServerMessage::error(e.code(), e.to_string())),
                    },
                    Message::Binary(_) => Incoming::Reply(ServerMessage::error(
                        ErrorCode::MalformedMessage,
                        "binary frames are not part of the protocol",
                    )),
                    Message::Close(_) => Incoming::Stop("closed by the client"),
                    _ => Incoming::Quiet,
                };
                match incoming {
                    Incoming::Quiet => {}
                    Incoming::Stop(ROOM_CLOSED) => {
                        // The room closed with this participant's last words queued (a
                        // removal's goodbye, when it was the last one out): they go first.
                        last_words(&mut sink, &mut joined.inbox).await;
                        break ROOM_CLOSED;
                    }
                    Incoming::Stop(reason) => break reason,
                    Incoming::Reply(reply) => {
                        if send(&mut sink, &reply, limit).await.is_err() {
                            break "connection lost";
                        }
                    }
                }
            }
            out = joined.inbox.recv() => {
                // Shutting down, each connection ends on its own: what the room says after
                // another's ended (it left, so its tracks go) is not this page's news. Said,
                // it would take that person's tile away before this page hears the goodbye.
                if server.is_shutting_down() {
                    let _ = send(&mut sink, &shutting_down(), LAST_WORDS).await;
                    break "server shutting down";
                }
                let sent = match out {
                    Some(Outbound::Message(mut message)) => {
                        if let (ServerMessage::Joined { ice_servers, .. }, Some(turn)) =
                            (&mut message, &config.turn)
                        {
                            turn.apply(ice_servers, pid, token::unix_now(), joined.token_expires);
                        }
                        send(&mut sink, &message, limit).await
                    }
                    Some(Outbound::Frame(text)) => send_text(&mut sink, text, limit).await,
                    Some(Outbound::Close) | None => break "closed by the server",
                };
                if let Err(e) = sent {
                    tracing::info!(error = %e, "cannot deliver");
                    break "connection lost";
                }
            }
            _ = ping.tick() => {
                if last_seen.elapsed() > config.idle_timeout {
                    let _ = send(&mut sink, &ServerMessage::Goodbye { reason: "idle timeout".into(), code: None }, LAST_WORDS).await;
                    break "idle timeout";
                }
                let ping = tokio::time::timeout(limit, sink.send(Message::Ping(Default::default())));
                if !matches!(ping.await, Ok(Ok(()))) {
                    break "connection lost";
                }
            }
        }
    };
    tracing::info!(reason, "participant disconnected");
    // Out of the room first: the others need not wait for this peer's closing handshake.
    joined.link.leave(pid);
    server.inner.revocations.release(pid);
    close(sink, stream).await;
}
