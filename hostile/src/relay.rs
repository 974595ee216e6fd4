//! One relayed client: its WebSocket to the proxy and the proxy's to the sfu, with the room's
//! rules applied to what the sfu says (hidden presence, deceived committers, injected key
//! packages, relabelled streams) and what the client says logged.

use axum::extract::State;
use axum::extract::ws::{
    Message as ClientFrame, Utf8Bytes as ClientText, WebSocket, WebSocketUpgrade,
};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use signaling_protocol::{
    ClientMessage, Participant, ParticipantId, PendingAdd, ServerMessage, VideoWant, decode_client,
    decode_server,
};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as UpFrame;

use crate::{AppLieKind, Observed, Proxy, Relayed};

pub(crate) async fn upgrade(State(proxy): State<Proxy>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(8 << 20)
        .on_upgrade(move |socket| async move {
            if let Err(e) = relay(proxy, socket).await {
                tracing::info!(error = %e, "relay ended");
            }
        })
}

/// Who this connection is, once the server said.
struct Me {
    room: String,
    pid: ParticipantId,
}

async fn relay(proxy: Proxy, client: WebSocket) -> anyhow::Result<()> {
    let (upstream, _) = tokio_tungstenite::connect_async(proxy.config.upstream.as_str()).await?;
    let (mut to_client, mut from_client) = client.split();
    let (mut to_up, mut from_up) = upstream.split();
    let (inject, mut injected) = mpsc::unbounded_channel::<ServerMessage>();
    let close = Arc::new(tokio::sync::Notify::new());
    let mut room: Option<String> = None;
    let mut me: Option<Me> = None;
    let to_text = |m: &ServerMessage| {
        ClientFrame::Text(ClientText::from(
            serde_json::to_string(m).unwrap_or_default(),
        ))
    };
    let result = loop {
        tokio::select! {
            frame = from_client.next() => {
                let Some(Ok(frame)) = frame else { break Ok(()) };
                match frame {
                    ClientFrame::Text(t) => {
                        if let Ok(m) = decode_client(&t) {
                            if let ClientMessage::Join { room: r, .. } = &m {
                                room = Some(r.clone());
                            }
                            if let Some(me) = &me {
                                proxy.observe(me, &m);
                                if proxy.swallows(me, &m) {
                                    continue;
                                }
                                if let Some(m) = proxy.turned_back(me, &m) {
                                    let text = serde_json::to_string(&m).unwrap_or_default();
                                    to_up.send(UpFrame::text(text.as_str())).await?;
                                    continue;
                                }
                            }
                        }
                        to_up.send(UpFrame::text(t.as_str())).await?;
                    }
                    ClientFrame::Close(_) => break Ok(()),
                    _ => {}
                }
            }
            frame = from_up.next() => {
                let Some(Ok(frame)) = frame else { break Ok(()) };
                let UpFrame::Text(t) = frame else { continue };
                let Ok(message) = decode_server(&t) else {
                    to_client.send(ClientFrame::Text(ClientText::from(t.as_str()))).await?;
                    continue;
                };
                for m in proxy.rewrite(room.as_deref(), &mut me, &inject, &close, message) {
                    to_client.send(to_text(&m)).await?;
                }
            }
            extra = injected.recv() => {
                let Some(m) = extra else { continue };
                to_client.send(to_text(&m)).await?;
            }
            () = close.notified() => break Ok(()),
        }
    };
    if let Some(me) = me {
        proxy.lock().clients.remove(&me.pid);
    }
    result
}

impl Proxy {
    /// Whether `m` from a relayed client is kept from the server: a key package (or a
    /// failed commit's, which carries one) in a room whose clients may not rejoin.
    fn swallows(&self, me: &Me, m: &ClientMessage) -> bool {
        matches!(
            m,
            ClientMessage::KeyPackage { .. } | ClientMessage::CommitFailed { .. }
        ) && self
            .lock()
            .rooms
            .get(&me.room)
            .is_some_and(|r| r.swallow_key_packages)
    }

    /// `m` as the server must see it for a lie to hold: the videos a client names in
    /// `video_wants` under the labels it was told, named as they are.
    fn turned_back(&self, me: &Me, m: &ClientMessage) -> Option<ClientMessage> {
        let ClientMessage::VideoWants { videos, last_n } = m else {
            return None;
        };
        let state = self.lock();
        let rules = state
            .rooms
            .get(&me.room)
            .filter(|r| !r.relabel.is_empty())?;
        let videos = videos
            .iter()
            .map(|w| VideoWant {
                stream: rules.relabelled(&w.stream, true),
                height: w.height,
            })
            .collect();
        Some(ClientMessage::VideoWants {
            videos,
            last_n: *last_n,
        })
    }

    fn observe(&self, me: &Me, m: &ClientMessage) {
        if matches!(
            m,
            ClientMessage::SdpOffer { .. }
                | ClientMessage::SdpAnswer { .. }
                | ClientMessage::IceCandidate(_)
                | ClientMessage::MediaStats { .. }
        ) {
            return;
        }
        let mut state = self.lock();
        state.observed.push(Observed {
            room: me.room.clone(),
            participant_id: me.pid,
            message: serde_json::to_value(m).unwrap_or_default(),
        });
    }

    /// What the client gets instead of `message`.
    fn rewrite(
        &self,
        room: Option<&str>,
        me: &mut Option<Me>,
        inject: &mpsc::UnboundedSender<ServerMessage>,
        close: &Arc<tokio::sync::Notify>,
        message: ServerMessage,
    ) -> Vec<ServerMessage> {
        let Some(room) = room else {
            return vec![message];
        };
        let mut state = self.lock();
        let mut out = Vec::new();
        let message = match message {
            ServerMessage::Joined {
                participant_id,
                room: r,
                identity,
                may_publish,
                mut participants,
                epoch,
                ice_servers,
            } => {
                *me = Some(Me {
                    room: room.to_owned(),
                    pid: participant_id,
                });
                state.clients.insert(
                    participant_id,
                    Relayed {
                        room: room.to_owned(),
                        inject: inject.clone(),
                        close: close.clone(),
                    },
                );
                let rules = state.rooms.entry(room.to_owned()).or_default();
                rules.identities.insert(participant_id, identity.clone());
                for p in &participants {
                    rules
                        .identities
                        .insert(p.participant_id, p.identity.clone());
                }
                participants.retain(|p| !rules.hidden.contains(&p.identity));
                ServerMessage::Joined {
                    participant_id,
                    room: r,
                    identity,
                    may_publish,
                    participants,
                    epoch,
                    ice_servers,
                }
            }
            ServerMessage::ParticipantJoined(p) => {
                let rules = state.rooms.entry(room.to_owned()).or_default();
                rules
                    .identities
                    .insert(p.participant_id, p.identity.clone());
                if rules.hidden.contains(&p.identity) {
                    return Vec::new();
                }
                ServerMessage::ParticipantJoined(p)
            }
            ServerMessage::CommitRequest {
                epoch,
                mut add,
                remove,
            } => {
                let rules = state.rooms.entry(room.to_owned()).or_default();
                // A committer is told of the hidden one just before it is asked to add it:
                // the committer is deceived, everyone else left in the dark.
                for a in &add {
                    if let Some(identity) = rules.identities.get(&a.participant_id)
                        && rules.hidden.contains(identity)
                    {
                        out.push(ServerMessage::ParticipantJoined(Participant {
                            participant_id: a.participant_id,
                            identity: identity.clone(),
                            may_publish: true,
                        }));
                    }
                }
                if let Some((pid, kp)) = &rules.inject {
                    add.push(PendingAdd {
                        participant_id: *pid,
                        key_package: kp.clone().into(),
                    });
                }
                ServerMessage::CommitRequest { epoch, add, remove }
            }
            ServerMessage::VideoSections { mut sections } => {
                let rules = state.rooms.entry(room.to_owned()).or_default();
                for s in &mut sections {
                    if let Some(stream) = s.stream.as_mut() {
                        *stream = rules.relabelled(stream, false);
                    }
                }
                ServerMessage::VideoSections { sections }
            }
            ServerMessage::VideoStreams { streams } => {
                let rules = state.rooms.entry(room.to_owned()).or_default();
                let streams = streams.iter().map(|s| rules.relabelled(s, false)).collect();
                ServerMessage::VideoStreams { streams }
            }
            ServerMessage::Application { from, .. } => {
                let to = me.as_ref().map(|m| m.pid);
                let rules = state.rooms.entry(room.to_owned()).or_default();
                let Some(i) = rules
                    .app_lies
                    .iter()
                    .position(|l| l.from == from && Some(l.to) == to)
                else {
                    return vec![message];
                };
                let lie = &mut rules.app_lies[i];
                match lie.kind {
                    AppLieKind::Drop(n) => {
                        lie.kind = AppLieKind::Drop(n - 1);
                        if n == 1 {
                            rules.app_lies.remove(i);
                        }
                        return Vec::new();
                    }
                    AppLieKind::Reverse(n) => {
                        lie.held.push(message);
                        if lie.held.len() < n {
                            return Vec::new();
                        }
                        let mut held = rules.app_lies.remove(i).held;
                        held.reverse();
                        return held;
                    }
                }
            }
            other => other,
        };
        out.push(message);
        out
    }
}
