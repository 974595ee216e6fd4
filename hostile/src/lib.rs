//! A hostile server, for tests: what clients meet when the server they talk to is compromised.
//!
//! It stands in front of a real sfu as a man in the middle of every signaling connection, and
//! it has what a server's operator has: the token secret (it mints tokens, and serves the
//! demo page with a `/dev/token` of its own) and members of its own in the room
//! ([`Accomplice`]). On command (`POST /hostile/...`, see [`control`]) it lies:
//!
//! - `ghost`: a participant of its own joins, and the proxy hides it from every client it
//!   relays: nobody is told it is in the room, yet a committer adds it to the group.
//! - `double`: a second participant under a name someone present already uses, on a new
//!   device, or on the device of another of its members (a key seen as mallory comes back as
//!   alice).
//! - `drop`: every relayed client's connection in a room is closed (they reconnect).
//! - `leave`: one of its members leaves (its device key stays at hand for `double`).
//! - `propose-add`: one of its members signs an Add proposal for someone nobody queued, and the
//!   proxy hands it to every client as if the delivery service relayed it.
//! - `inject-key-package`: commit requests to its clients carry an extra key package, of a
//!   participant never announced.
//! - `external-commit`: an external commit (RFC 9420 §12.4.3.2) made from the GroupInfo the
//!   server holds, for a fresh device under a participant id it names (one present, or one that
//!   left), offered to the delivery service and handed to every client as accepted.
//! - `swap`: one of its members commits the removal of someone's leaf and the add of a fresh
//!   device under the same participant id and identity, handed to every client as accepted.
//! - `app`: one sender's application messages to one client are dropped, or held and
//!   delivered in reverse order.
//! - `reject-app`: a client is told the delivery service refused one of its application
//!   messages (one it did relay), as stale.
//! - `relabel`: the video sections it relays say one publisher's videos are another
//!   participant's (its `video_streams` lists them so, and the client's `video_wants` naming
//!   them are turned back on the way up).
//! - `rejoin`: every relayed client of a room is told the group was re-made and must rejoin,
//!   and the key packages they send to be added again are swallowed: the group never forms
//!   again, and media under the old group's keys must stop.
//!
//! Honest clients must catch each of these; the tests in `sfu/tests/hostile_server.rs` and
//! `web-demo/tests/hostile.test.js` check that they do. It is never part of the product: the
//! sfu does not link it.

pub mod accomplice;
pub mod control;
pub mod forge;
mod labels;
mod relay;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{any, get, post};
use signaling_protocol::{ParticipantId, ServerMessage};
use tokio::sync::mpsc;

pub use accomplice::Accomplice;

/// Where the real server is, and what the proxy may do.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The sfu's signaling WebSocket, e.g. `ws://127.0.0.1:8080/ws`.
    pub upstream: String,
    /// The sfu's token secret (the operator's).
    pub secret: Vec<u8>,
    /// The demo page to serve, if any.
    pub demo_dir: Option<PathBuf>,
}

/// What the proxy does to one room's clients.
#[derive(Debug, Default)]
pub(crate) struct RoomRules {
    /// Identities whose presence is hidden from relayed clients.
    pub hidden: Vec<String>,
    /// To relayed clients, the videos of `identity` are labelled as `as_identity`'s.
    pub relabel: Vec<(String, String)>,
    /// Commit requests to relayed clients get this extra key package (participant id, bytes).
    pub inject: Option<(ParticipantId, Vec<u8>)>,
    /// Participant ids and identities seen in the room (from presence and joins).
    pub identities: BTreeMap<ParticipantId, String>,
    /// The proxy's own members.
    pub accomplices: Vec<Accomplice>,
    /// What happens to application messages on their way to a relayed client.
    pub app_lies: Vec<AppLie>,
    /// Key packages from relayed clients (asking to be added again) are not passed on.
    pub swallow_key_packages: bool,
}

impl RoomRules {
    /// `stream` as the relabelling says it (`back`: a relabelled one as it really is).
    pub fn relabelled(&self, stream: &str, back: bool) -> String {
        let pid_of = |name: &str| {
            self.identities
                .iter()
                .find(|(_, i)| i.as_str() == name)
                .map(|(p, _)| p.to_string())
        };
        let mut s = stream.to_owned();
        for (from, to) in &self.relabel {
            if let (Some(f), Some(t)) = (pid_of(from), pid_of(to)) {
                s = if back {
                    labels::relabel(&s, &t, &f)
                } else {
                    labels::relabel(&s, &f, &t)
                };
            }
        }
        s
    }
}

/// A lie about one sender's application messages to one relayed client.
#[derive(Debug)]
pub(crate) struct AppLie {
    pub from: ParticipantId,
    pub to: ParticipantId,
    pub kind: AppLieKind,
    /// Messages held back so far.
    pub held: Vec<ServerMessage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppLieKind {
    /// The next this many are never delivered.
    Drop(usize),
    /// The next this many are held, then delivered last first.
    Reverse(usize),
}

/// A relayed client: a way to hand it a message of the proxy's own, and to cut it off.
#[derive(Debug, Clone)]
pub(crate) struct Relayed {
    pub room: String,
    pub inject: mpsc::UnboundedSender<ServerMessage>,
    pub close: Arc<tokio::sync::Notify>,
}

/// Something the proxy saw a client do, for tests to check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Observed {
    pub room: String,
    pub participant_id: ParticipantId,
    /// The client's message, as sent (JSON).
    pub message: serde_json::Value,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub rooms: HashMap<String, RoomRules>,
    pub clients: HashMap<ParticipantId, Relayed>,
    pub observed: Vec<Observed>,
}

/// The proxy, shared by its routes.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub(crate) config: Arc<ProxyConfig>,
    pub(crate) state: Arc<Mutex<State>>,
}

impl Proxy {
    pub fn new(config: ProxyConfig) -> Self {
        Proxy {
            config: Arc::new(config),
            state: Arc::default(),
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The proxy's routes: `/ws` (relayed), `/dev/token`, `/hostile/...`, and the demo page.
    pub fn router(&self) -> Router {
        let mut app = Router::new()
            .route("/ws", any(relay::upgrade))
            .route("/dev/token", get(control::dev_token))
            .route("/hostile/member", post(control::member))
            .route("/hostile/ghost", post(control::ghost))
            .route("/hostile/double", post(control::double))
            .route("/hostile/propose-add", post(control::propose_add))
            .route(
                "/hostile/inject-key-package",
                post(control::inject_key_package),
            )
            .route("/hostile/relabel", post(control::relabel))
            .route("/hostile/external-commit", post(control::external_commit))
            .route("/hostile/swap", post(control::swap))
            .route("/hostile/app", post(control::app))
            .route("/hostile/reject-app", post(control::reject_app))
            .route("/hostile/rejoin", post(control::rejoin))
            .route("/hostile/drop", post(control::drop_all))
            .route("/hostile/leave", post(control::leave))
            .route("/hostile/observed", get(control::observed))
            .with_state(self.clone());
        if let Some(dir) = &self.config.demo_dir {
            app = app.fallback_service(tower_http::services::ServeDir::new(dir));
        }
        app
    }

    /// Serves on `listener` until the task is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(
            listener,
            self.router()
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    }

    /// Starts on an ephemeral loopback port; its `host:port`.
    pub async fn start(config: ProxyConfig) -> std::io::Result<(Proxy, SocketAddr)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let proxy = Proxy::new(config);
        tokio::spawn(proxy.clone().serve(listener));
        Ok((proxy, addr))
    }

    /// What clients of `room` sent, so far.
    pub fn observed(&self, room: &str) -> Vec<Observed> {
        self.lock()
            .observed
            .iter()
            .filter(|o| o.room == room)
            .cloned()
            .collect()
    }
}
