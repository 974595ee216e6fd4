//! The proxy's control routes: tests tell it which lie to tell (`POST /hostile/...`), and ask
//! what the clients did (`GET /hostile/observed`). It also hands out tokens (`/dev/token`),
//! signed with the operator's secret, as a server in dev mode would.

use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use media_crypto::mls::{MlsSession, SessionConfig};
use serde::Deserialize;
use serde_json::{Value, json};
use signaling_protocol::{
    ClientMessage, CommitMessage, CommitRejection, ServerMessage, credential_identity,
};
use signaling_token::{self as token, Claims};
use tokio::sync::mpsc;

use crate::{Accomplice, AppLie, AppLieKind, Proxy, forge};

type Reply = Result<Json<Value>, (StatusCode, String)>;

fn bad(e: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, e.to_string())
}

#[derive(Debug, Deserialize)]
pub struct Who {
    room: String,
    #[serde(alias = "identity")]
    name: Option<String>,
    #[serde(rename = "as")]
    as_identity: Option<String>,
    /// Join on the device of the proxy's member of this name (a key seen under that name).
    key_of: Option<String>,
}

/// The participant id the injected key package names, and the fake Add proposal's.
pub const INTRUDER: u64 = 4242;
pub const PROPOSED: u64 = 777;

impl Proxy {
    fn token(&self, room: &str, identity: &str) -> Result<String, (StatusCode, String)> {
        token::mint(
            &Claims::new(room, identity, Duration::from_secs(3600)),
            &self.config.secret,
        )
        .map_err(bad)
    }

    async fn accomplice(
        &self,
        room: &str,
        name: &str,
        device: Option<media_crypto::mls::DeviceKey>,
    ) -> Result<Accomplice, (StatusCode, String)> {
        let token = self.token(room, name)?;
        let a = Accomplice::join(&self.config.upstream, room, &token, device)
            .await
            .map_err(bad)?;
        self.lock()
            .rooms
            .entry(room.to_owned())
            .or_default()
            .accomplices
            .push(a.clone());
        Ok(a)
    }
}

pub(crate) async fn dev_token(State(p): State<Proxy>, Query(w): Query<Who>) -> Reply {
    let identity = w.name.ok_or_else(|| bad("identity?"))?;
    Ok(Json(json!({
        "token": p.token(&w.room, &identity)?,
        "room": w.room,
        "identity": identity,
        "expires_in": 3600,
        "insecure_dev_mode": true,
    })))
}

/// A member of the proxy's own, visible to all (it joins first, so it creates the group and
/// is asked to commit).
pub(crate) async fn member(State(p): State<Proxy>, Query(w): Query<Who>) -> Reply {
    let name = w.name.ok_or_else(|| bad("name?"))?;
    let a = p.accomplice(&w.room, &name, None).await?;
    Ok(Json(json!({ "participant_id": a.participant_id })))
}

/// A member nobody relayed is told about (but a deceived committer).
pub(crate) async fn ghost(State(p): State<Proxy>, Query(w): Query<Who>) -> Reply {
    let name = w.name.ok_or_else(|| bad("name?"))?;
    p.lock()
        .rooms
        .entry(w.room.clone())
        .or_default()
        .hidden
        .push(name.clone());
    let a = p.accomplice(&w.room, &name, None).await?;
    Ok(Json(json!({ "participant_id": a.participant_id })))
}

/// A second participant under a name already in use, on its own new device, or (`key_of`) on
/// the device of another of the proxy's members: a key seen under one name comes back under
/// another.
pub(crate) async fn double(State(p): State<Proxy>, Query(w): Query<Who>) -> Reply {
    let name = w.name.ok_or_else(|| bad("name?"))?;
    let device = match &w.key_of {
        Some(other) => Some(
            accomplice_named(&p, &w.room, other)?
                .device_key()
                .map_err(bad)?,
        ),
        None => None,
    };
    let a = p.accomplice(&w.room, &name, device).await?;
    Ok(Json(json!({ "participant_id": a.participant_id })))
}

/// The proxy's member named `name` in `room`.
fn accomplice_named(p: &Proxy, room: &str, name: &str) -> Result<Accomplice, (StatusCode, String)> {
    p.lock()
        .rooms
        .get(room)
        .and_then(|r| r.accomplices.iter().find(|a| a.identity == name).cloned())
        .ok_or_else(|| bad(format!("no member of ours named {name:?} in {room:?}")))
}

/// One of the proxy's members leaves the room (its device key stays at hand for `key_of`).
pub(crate) async fn leave(State(p): State<Proxy>, Query(w): Query<Who>) -> Reply {
    let name = w.name.ok_or_else(|| bad("name?"))?;
    let a = accomplice_named(&p, &w.room, &name)?;
    a.send(ClientMessage::Leave);
    Ok(Json(json!({ "participant_id": a.participant_id })))
}

/// Closes every relayed client's connection in `room` (their members of the group go; the
/// proxy's own stay): the clients reconnect and join again.
pub(crate) async fn drop_all(State(p): State<Proxy>, Query(q): Query<Room>) -> Reply {
    let state = p.lock();
    let mut dropped = 0;
    for c in state.clients.values().filter(|c| c.room == q.room) {
        c.close.notify_one();
        dropped += 1;
    }
    Ok(Json(json!({ "dropped": dropped })))
}

/// A way to hand a relayed client a message of the proxy's own.
type Inject = mpsc::UnboundedSender<ServerMessage>;

/// One of the proxy's members that is in `room`'s group, and a way to reach each relayed
/// client of the room.
fn member_and_clients(
    p: &Proxy,
    room: &str,
) -> Result<(Accomplice, Vec<Inject>), (StatusCode, String)> {
    let state = p.lock();
    let rules = state.rooms.get(room).ok_or_else(|| bad("no such room"))?;
    let a = rules
        .accomplices
        .iter()
        .find(|a| a.epoch().is_some())
        .ok_or_else(|| bad("no member of ours is in the group"))?
        .clone();
    let targets = state
        .clients
        .values()
        .filter(|c| c.room == room)
        .map(|c| c.inject.clone())
        .collect();
    Ok((a, targets))
}

/// An Add proposal signed by one of the proxy's members, handed to every relayed client.
pub(crate) async fn propose_add(State(p): State<Proxy>, Query(w): Query<Who>) -> Reply {
    let (a, targets) = member_and_clients(&p, &w.room)?;
    let proposal = a.propose_add(PROPOSED, "eve").map_err(bad)?;
    for t in &targets {
        let _ = t.send(ServerMessage::Proposal {
            from: a.participant_id,
            proposal: proposal.clone().into(),
        });
    }
    Ok(Json(json!({ "delivered": targets.len() })))
}

/// A forged commit for the current epoch: first offered to the delivery service by one of
/// the proxy's members (whose refusal, if it comes within a second, is reported), then handed
/// to every relayed client as if the delivery service had accepted it, claiming it adds
/// `added` and removes `removed`.
async fn forged_commit(
    p: &Proxy,
    room: &str,
    make: impl FnOnce(&Accomplice) -> anyhow::Result<(u64, Vec<u8>)>,
    added: Vec<u64>,
    removed: Vec<u64>,
) -> Reply {
    let (a, targets) = member_and_clients(p, room)?;
    let (epoch, commit) = make(&a).map_err(bad)?;
    let refused_before = a.refusals().len();
    a.send(ClientMessage::Commit(CommitMessage {
        epoch,
        commit: commit.clone().into(),
        welcome: None,
        group_info: Vec::new().into(),
        added: added.clone(),
        removed: removed.clone(),
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    let ds = loop {
        if let Some(r) = a.refusals().get(refused_before) {
            break Some(*r);
        }
        if tokio::time::Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for t in &targets {
        let _ = t.send(ServerMessage::Commit {
            epoch,
            from: a.participant_id,
            commit: commit.clone().into(),
            added: added.clone(),
            removed: removed.clone(),
        });
    }
    Ok(Json(json!({
        "delivered": targets.len(),
        "epoch": epoch,
        "delivery_service": ds,
    })))
}

/// The participant id the proxy saw `name` under in `room` (present or gone since).
fn participant_named(p: &Proxy, room: &str, name: &str) -> Result<u64, (StatusCode, String)> {
    p.lock()
        .rooms
        .get(room)
        .and_then(|r| r.identities.iter().find(|(_, i)| *i == name))
        .map(|(&pid, _)| pid)
        .ok_or_else(|| bad(format!("no participant {name:?} seen in {room:?}")))
}

/// An external commit (RFC 9420 §12.4.3.2) from the GroupInfo the server holds, for a fresh
/// device under `name`'s participant id (one still present, or one that has left).
pub(crate) async fn external_commit(State(p): State<Proxy>, Query(w): Query<Who>) -> Reply {
    let name = w.name.ok_or_else(|| bad("name?"))?;
    let pid = participant_named(&p, &w.room, &name)?;
    let identity = credential_identity(pid, &name);
    forged_commit(
        &p,
        &w.room,
        |a| {
            let epoch = a.epoch().unwrap_or_default();
            Ok((
                epoch,
                forge::external_commit(&a.group_info()?, identity.as_bytes())?,
            ))
        },
        vec![pid],
        Vec::new(),
    )
    .await
}

/// A commit by one of the proxy's members that removes `name`'s leaf and adds a fresh device
/// under the same participant id and identity: a leaf swap the delivery service never queued.
pub(crate) async fn swap(State(p): State<Proxy>, Query(w): Query<Who>) -> Reply {
    let name = w.name.ok_or_else(|| bad("name?"))?;
    let pid = participant_named(&p, &w.room, &name)?;
    forged_commit(&p, &w.room, |a| a.swap(pid, &name), vec![pid], vec![pid]).await
}

#[derive(Debug, Deserialize)]
pub struct AppQuery {
    room: String,
    /// The sender's identity.
    from: String,
    /// The receiving relayed client's identity.
    to: String,
    /// Drop this many of the sender's next messages.
    drop: Option<usize>,
    /// Hold this many, then deliver them in reverse order.
    reverse: Option<usize>,
}

/// Drops, or reverses, `from`'s next application messages on their way to `to`.
pub(crate) async fn app(State(p): State<Proxy>, Query(q): Query<AppQuery>) -> Reply {
    let from = participant_named(&p, &q.room, &q.from)?;
    let to = participant_named(&p, &q.room, &q.to)?;
    let kind = match (q.drop, q.reverse) {
        (Some(n), None) if n > 0 => AppLieKind::Drop(n),
        (None, Some(n)) if n > 1 => AppLieKind::Reverse(n),
        _ => return Err(bad("drop=N (N > 0) or reverse=N (N > 1)")),
    };
    p.lock()
        .rooms
        .entry(q.room)
        .or_default()
        .app_lies
        .push(AppLie {
            from,
            to,
            kind,
            held: Vec::new(),
        });
    Ok(Json(json!({ "ok": true })))
}

#[derive(Debug, Deserialize)]
pub struct Room {
    room: String,
}

/// Tells every relayed client of `room` that the group was re-made and it must rejoin, and
/// from then on swallows the key packages they send to be added again.
pub(crate) async fn rejoin(State(p): State<Proxy>, Query(q): Query<Room>) -> Reply {
    let mut state = p.lock();
    state
        .rooms
        .entry(q.room.clone())
        .or_default()
        .swallow_key_packages = true;
    let targets: Vec<Inject> = state
        .clients
        .values()
        .filter(|c| c.room == q.room)
        .map(|c| c.inject.clone())
        .collect();
    for t in &targets {
        let _ = t.send(ServerMessage::Rejoin {
            reason: "the group was re-created".into(),
        });
    }
    Ok(Json(json!({ "delivered": targets.len() })))
}

#[derive(Debug, Deserialize)]
pub struct RejectQuery {
    room: String,
    name: String,
    /// The id of one of `name`'s application messages, as it sent it.
    id: u64,
}

/// Tells `name` that its application message `id` (which the delivery service relayed) was
/// refused as stale, naming the epoch it was sealed in.
pub(crate) async fn reject_app(State(p): State<Proxy>, Query(q): Query<RejectQuery>) -> Reply {
    let pid = participant_named(&p, &q.room, &q.name)?;
    let state = p.lock();
    let epoch = state
        .observed
        .iter()
        .filter(|o| o.room == q.room && o.participant_id == pid)
        .find(|o| o.message["type"] == "application" && o.message["id"] == q.id)
        .and_then(|o| o.message["epoch"].as_u64())
        .ok_or_else(|| bad(format!("{} sent no application message {}", q.name, q.id)))?;
    let client = state
        .clients
        .get(&pid)
        .ok_or_else(|| bad("not a relayed client"))?;
    let _ = client.inject.send(ServerMessage::ApplicationRejected {
        id: q.id,
        epoch,
        reason: CommitRejection::StaleEpoch,
    });
    Ok(Json(json!({ "epoch": epoch })))
}

/// From now on, commit requests to relayed clients carry a key package of a participant
/// nobody announced.
pub(crate) async fn inject_key_package(State(p): State<Proxy>, Query(w): Query<Who>) -> Reply {
    let kp = MlsSession::new(
        credential_identity(INTRUDER, "intruder"),
        SessionConfig::default(),
    )
    .and_then(|mut s| s.key_package())
    .map_err(bad)?;
    p.lock().rooms.entry(w.room).or_default().inject = Some((INTRUDER, kp));
    Ok(Json(json!({ "participant_id": INTRUDER })))
}

/// From now on, offers to relayed clients label `name`'s streams as `as`'s.
pub(crate) async fn relabel(State(p): State<Proxy>, Query(w): Query<Who>) -> Reply {
    let from = w.name.ok_or_else(|| bad("identity?"))?;
    let to = w.as_identity.ok_or_else(|| bad("as?"))?;
    p.lock()
        .rooms
        .entry(w.room)
        .or_default()
        .relabel
        .push((from, to));
    Ok(Json(json!({ "ok": true })))
}

pub(crate) async fn observed(State(p): State<Proxy>, Query(w): Query<Who>) -> Reply {
    Ok(Json(
        serde_json::to_value(p.observed(&w.room)).unwrap_or_default(),
    ))
}
