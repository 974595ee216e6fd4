//! The axum driver around the room state machine: one task per WebSocket connection, one task
//! per room, and the routes.

mod client_ip;
pub mod cluster;
mod connection;
mod dev_token;
mod limits;
mod local_rooms;
mod media;
mod media_leg;
mod outbox;
mod removal;
mod revocation;
mod room_log;
mod room_task;
mod rooms;
mod websocket;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

use crate::config::SignalingConfig;
pub use client_ip::{PerIp, Slot, client_ip};
use local_rooms::LocalRooms;
pub use media::{MediaFactory, MediaLoad, MediaSender, RoomMedia, RoomTask};
use rooms::Rooms;
pub use rooms::{RoomInfo, RoomStats};
use signaling_protocol::{ErrorCode, ParticipantId};

/// The signaling server: cheap to clone, shared by every route and connection.
#[derive(Clone)]
pub struct SignalingServer {
    inner: Arc<Inner>,
}

struct Inner {
    config: SignalingConfig,
    /// Where rooms are: this process's, by default.
    rooms: Arc<dyn Rooms>,
    /// True once the server is shutting down: joins are refused, connections told goodbye.
    shutdown: tokio::sync::watch::Sender<bool>,
    /// Frames participants reported they could not decrypt (sum of their running totals).
    client_decrypt_failures: std::sync::atomic::AtomicU64,
    per_ip: client_ip::PerIp,
    /// Tokens revoked by removals, identities banned, and who holds which token.
    revocations: Arc<revocation::Revocations>,
}

impl std::fmt::Debug for SignalingServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalingServer")
            .field("rooms", &self.inner.rooms.stats().rooms)
            .finish_non_exhaustive()
    }
}

impl SignalingServer {
    /// A server with this configuration. An empty token secret is refused unless the insecure
    /// dev mode is on (then a random one is made).
    pub fn new(config: SignalingConfig) -> Result<Self, ConfigError> {
        Self::build(config, None, None)
    }

    /// A server whose participants negotiate media with `media` (the SFU). Without one, SDP
    /// and ICE messages are refused with `media_unavailable`.
    pub fn with_media(
        config: SignalingConfig,
        media: Arc<dyn MediaFactory>,
    ) -> Result<Self, ConfigError> {
        Self::build(config, Some(media), None)
    }

    /// A node of `cluster` (docs/deploy.md): its rooms' homes are placed across the cluster's
    /// nodes, and its participants join rooms wherever their homes are. Must be called inside
    /// a Tokio runtime (the node's heartbeat starts here).
    pub fn clustered(
        config: SignalingConfig,
        media: Option<Arc<dyn MediaFactory>>,
        cluster: cluster::Cluster,
    ) -> Result<Self, ConfigError> {
        Self::build(config, media, Some(cluster))
    }

    fn build(
        mut config: SignalingConfig,
        media: Option<Arc<dyn MediaFactory>>,
        cluster: Option<cluster::Cluster>,
    ) -> Result<Self, ConfigError> {
        match (config.token_secret.is_empty(), config.insecure_dev_tokens) {
            (true, false) => return Err(ConfigError::NoTokenSecret),
            // Dev mode hands out tokens to anyone: signed with a real secret, they would be
            // good on every server that shares it.
            (false, true) => return Err(ConfigError::DevModeWithSecret),
            (true, true) => config.token_secret = (0..32).map(|_| rand::random::<u8>()).collect(),
            (false, false) => {}
        }
        if config.insecure_dev_tokens {
            tracing::warn!(
                "INSECURE DEV MODE: GET /dev/token hands an access token for any room and \
                 identity to anyone who asks. Never expose this server to a network."
            );
        }
        let shutdown = tokio::sync::watch::Sender::new(false);
        let revocations: Arc<revocation::Revocations> = Arc::default();
        Ok(SignalingServer {
            inner: Arc::new(Inner {
                rooms: match cluster {
                    None => Arc::new(LocalRooms::new(&config, media)),
                    Some(cluster) => cluster::ClusterRooms::start(
                        cluster,
                        &config,
                        media,
                        shutdown.subscribe(),
                        revocations.clone(),
                    ),
                },
                config,
                shutdown,
                client_decrypt_failures: Default::default(),
                per_ip: Default::default(),
                revocations,
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &SignalingConfig {
        &self.inner.config
    }

    /// `GET /ws` (the signaling WebSocket) and, in dev mode only, `GET /dev/token`.
    pub fn router(&self) -> Router {
        let mut router = Router::new().route("/ws", get(upgrade));
        if self.inner.config.insecure_dev_tokens {
            router = router.route("/dev/token", get(dev_token::issue));
        }
        router.with_state(self.clone())
    }

    /// Rooms and participants now.
    pub fn stats(&self) -> RoomStats {
        RoomStats {
            client_decrypt_failures: self
                .inner
                .client_decrypt_failures
                .load(std::sync::atomic::Ordering::Relaxed),
            ..self.inner.rooms.stats()
        }
    }

    /// In a cluster, its live nodes (this one among them) with their load; `None` alone.
    pub fn cluster_nodes(&self) -> Option<Vec<cluster::NodeInfo>> {
        self.inner.rooms.nodes()
    }

    /// Every room, with who is in it (administration).
    pub async fn rooms(&self) -> Vec<RoomInfo> {
        self.inner.rooms.rooms().await
    }

    /// Removes a participant from `room` for good: the token it joined with is revoked for
    /// the rest of its life (a rejoin with it is refused with `removed`), it is told
    /// `goodbye` (`removed`, final) and disconnected, with any other connection of the same
    /// token, and its MLS removal follows in the next commit. False if it is not there.
    pub async fn remove_participant(&self, room: &str, participant: ParticipantId) -> bool {
        // In a cluster, the node it is connected to knows its token: the removal is made there.
        if let Some(removed) = self.inner.rooms.remove_at_its_node(room, participant).await {
            return removed;
        }
        removal::remove_for_good(
            self.inner.rooms.as_ref(),
            &self.inner.revocations,
            room,
            participant,
        )
        .await
    }

    /// Bans `identity` from `room` until `until` (seconds since the Unix epoch): every token
    /// for it there is refused with `banned` until then (at every node of a cluster), and
    /// whoever holds one now is removed (told `goodbye`, `banned`). How many were removed here
    /// (in a cluster, the other nodes remove theirs as they learn of it).
    pub async fn ban(&self, room: &str, identity: &str, until: u64) -> usize {
        removal::ban(
            self.inner.rooms.as_ref(),
            &self.inner.revocations,
            room,
            identity,
            until,
        )
        .await
    }

    /// Closes `room`: everyone in it is told `goodbye` (`room_closed`, final) and
    /// disconnected. How many were there.
    pub async fn close_room(&self, room: &str) -> usize {
        self.inner
            .rooms
            .remove(
                room,
                None,
                "the room was closed by an administrator",
                ErrorCode::RoomClosed,
            )
            .await
    }

    /// Starts a graceful shutdown: new joins get `shutting_down`, and every participant is
    /// sent `goodbye` and disconnected (the rooms empty as they go).
    pub fn shut_down(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Drains this node: in a cluster its rooms move to other nodes first (their participants
    /// on other nodes stay, and follow their rooms; its own are told goodbye and reconnect,
    /// to another node); then as [`SignalingServer::shut_down`]. Alone, just that.
    pub async fn drain(&self) {
        self.inner.rooms.drain().await;
        self.shut_down();
    }

    /// Whether [`SignalingServer::shut_down`] was called.
    pub fn is_shutting_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// Waits until no participant is left, or `limit` passes; true if the rooms drained.
    pub async fn drained(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.stats().participants > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        true
    }
}

/// A configuration the server cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("no token secret configured (set one, or turn on the insecure dev mode)")]
    NoTokenSecret,
    #[error(
        "the insecure dev mode hands out tokens to anyone, so it runs only with a throwaway secret of its own: remove the configured token secret, or turn dev mode off"
    )]
    DevModeWithSecret,
}

async fn upgrade(
    State(server): State<SignalingServer>,
    request: axum::extract::Request,
) -> Response {
    let config = &server.inner.config;
    // The address limits count (none when the server runs without connect info).
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = client_ip::client_ip(
        peer,
        request
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok()),
        &config.trusted_proxies,
    );
    // Frames up to 4x the limit reach us and get a typed "too large" reply; beyond that the
    // WebSocket layer closes the connection.
    let frame_limit = config.max_message_bytes.saturating_mul(4);
    let slot = match ip {
        Some(ip) => match server.inner.per_ip.take(ip, config.max_connections_per_ip) {
            Some(slot) => Some(slot),
            None => {
                tracing::info!(%ip, "too many connections from one address");
                return websocket::upgrade(request, frame_limit, |socket, _| {
                    connection::refuse(
                        socket,
                        signaling_protocol::ErrorCode::TooManyConnections,
                        "too many open connections from your address",
                    )
                });
            }
        },
        None => None,
    };
    websocket::upgrade(request, frame_limit, move |socket, budget| async move {
        connection::run(server, socket, budget).await;
        drop(slot);
    })
}
