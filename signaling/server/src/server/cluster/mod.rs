//! A cluster of nodes on NATS (DESIGN.md, "Scale"; docs/decisions/0046): each node says it is
//! alive, where it is and how loaded in a JetStream key-value bucket ([`nodes`]), and each room
//! has one home node, chosen by load on its first join and claimed with an atomic create in
//! another bucket ([`placement`]). The home runs the room's delivery service; a participant
//! may connect to any node.

mod admin;
mod directory;
mod home;
mod log;
mod nodes;
mod placement;
mod remote;
mod uplink;
mod watched;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv};

pub(super) use directory::ClusterRooms;
use nodes::Nodes;
pub use nodes::{NodeInfo, NodeLoad};
use placement::Placement;

/// How a node joins a cluster (docs/deploy.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The NATS servers (`nats://HOST:PORT`); several for a NATS cluster.
    pub nats_urls: Vec<String>,
    /// This node's name: unique in the cluster, letters, digits, `-` and `_`, at most 64.
    pub node_id: String,
    /// Where participants reach this node's signaling, as the cluster lists it.
    pub public_url: String,
    /// Where this node's media is (its media IP), as the cluster lists it.
    pub media_address: String,
    /// How often a node says it is alive and refreshes the rooms it is home to; one not heard
    /// of for three of these is taken for gone, and its rooms for free (default 1 s).
    pub heartbeat: Duration,
}

impl ClusterConfig {
    /// `node_id` as the rules want it, or why not.
    pub fn check_node_id(node_id: &str) -> Result<(), String> {
        if node_id.is_empty() || node_id.len() > 64 {
            return Err(format!(
                "node_id {node_id:?} must be 1 to 64 characters long"
            ));
        }
        if !node_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "node_id {node_id:?} may hold only letters, digits, '-' and '_'"
            ));
        }
        Ok(())
    }
}

/// Why a node cannot be part of the cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    #[error("invalid cluster settings: {0}")]
    Invalid(String),
    #[error("cannot reach NATS at {urls}: {source}")]
    Connect {
        urls: String,
        source: async_nats::ConnectError,
    },
    #[error("NATS JetStream: {0} (is nats-server running with -js?)")]
    JetStream(String),
    #[error("another live node is already called {0:?}")]
    NodeIdTaken(String),
}

/// How long a node has to answer a ping.
pub(super) const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// The buckets, and how long their entries live without a refresh.
const NODES_BUCKET: &str = "sfu_nodes";
const ROOMS_BUCKET: &str = "sfu_rooms";
const IDS_BUCKET: &str = "sfu_ids";
const REVOKED_BUCKET: &str = "sfu_revoked";

/// This node's link to the cluster: the NATS connection and the buckets.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClusterConfig,
    client: async_nats::Client,
    /// This node's number among every node the cluster has had: the high bits of the
    /// participant ids it hands out, so that ids never collide across nodes.
    index: u64,
    nodes: Nodes,
    placement: Placement,
    /// Revocations and bans, shared by every node.
    revoked: kv::Store,
    /// When this node last (re)connected to NATS.
    connected_since: Arc<std::sync::Mutex<std::time::Instant>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.inner.config.node_id)
            .field("index", &self.inner.index)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects to NATS, makes the buckets if this is the first node, and takes this node's
    /// name and number. The node is listed once the server it joins starts its heartbeat.
    pub async fn connect(config: ClusterConfig) -> Result<Cluster, ClusterError> {
        ClusterConfig::check_node_id(&config.node_id).map_err(ClusterError::Invalid)?;
        if config.nats_urls.is_empty() {
            return Err(ClusterError::Invalid("no NATS URL".into()));
        }
        let urls = config.nats_urls.join(",");
        let connected_at = Arc::new(std::sync::Mutex::new(std::time::Instant::now()));
        let connected_since = connected_at.clone();
        let addresses: Vec<async_nats::ServerAddr> = config
            .nats_urls
            .iter()
            .map(|u| u.parse())
            .collect::<Result<_, _>>()
            .map_err(|e| ClusterError::Invalid(format!("NATS URL {urls:?}: {e}")))?;
        let client = async_nats::ConnectOptions::new()
            .name(format!("sfu {}", config.node_id))
            // Keep trying for ever: a NATS restart must not end the node.
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            .event_callback(move |event| {
                let connected = connected_at.clone();
                async move {
                    match event {
                        async_nats::Event::Disconnected => tracing::warn!("NATS connection lost"),
                        async_nats::Event::Connected => {
                            *connected.lock().unwrap_or_else(|e| e.into_inner()) =
                                std::time::Instant::now();
                            tracing::info!("NATS connected");
                        }
                        other => tracing::debug!(event = %other, "NATS"),
                    }
                }
            })
            .connect(addresses)
            .await
            .map_err(|source| ClusterError::Connect {
                urls: urls.clone(),
                source,
            })?;
        let js = jetstream::new(client.clone());
        let ttl = config.heartbeat * 3;
        let nodes = bucket(&js, NODES_BUCKET, ttl, "live nodes").await?;
        let rooms = bucket(&js, ROOMS_BUCKET, ttl, "each room's home node").await?;
        let ids = bucket(&js, IDS_BUCKET, Duration::ZERO, "node numbers").await?;
        let revoked = bucket(
            &js,
            REVOKED_BUCKET,
            Duration::ZERO,
            "tokens revoked and identities banned, until when",
        )
        .await?;
        let nodes = Nodes::new(nodes, config.node_id.clone(), ttl);
        nodes.claim_name().await?;
        let index = next_index(&ids).await?;
        let placement = Placement::new(rooms, config.node_id.clone(), ttl);
        tracing::info!(node = %config.node_id, index, nats = %urls, "joined the cluster");
        Ok(Cluster {
            inner: Arc::new(Inner {
                config,
                client,
                index,
                nodes,
                placement,
                revoked,
                connected_since,
            }),
        })
    }

    /// This node's name.
    pub fn node_id(&self) -> &str {
        &self.inner.config.node_id
    }

    /// The settings it joined with.
    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    /// The first participant id this node hands out: ids are `index << 32` onwards, so those of
    /// two nodes never meet (and stay below 2^53, exact in JavaScript).
    pub(super) fn first_participant_id(&self) -> u64 {
        (self.inner.index << 32) + 1
    }

    /// This node's number among every node the cluster has had.
    pub fn index(&self) -> u64 {
        self.inner.index
    }

    pub(super) fn nodes(&self) -> &Nodes {
        &self.inner.nodes
    }

    pub(super) fn placement(&self) -> &Placement {
        &self.inner.placement
    }

    /// The revocations bucket.
    pub(super) fn revoked(&self) -> &kv::Store {
        &self.inner.revoked
    }

    /// The NATS connection.
    pub(super) fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    /// Whether `node` is gone: NATS says at once that nobody listens on its subjects (it died,
    /// or lost NATS), or it answers nothing in time and its entry has expired. A node whose
    /// entry only looks old to a busy observer, but that answers, is alive. Within an entry's
    /// lifetime of this node reconnecting to NATS (after a NATS restart, the other nodes may
    /// not have subscribed again yet), only the expired entry counts.
    pub(super) async fn is_gone(&self, node: &str) -> bool {
        let listed = self.inner.nodes.live().iter().any(|n| n.node_id == node);
        let since = *self
            .inner
            .connected_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if since.elapsed() < self.inner.config.heartbeat * 3 {
            return !listed;
        }
        let ping = self
            .inner
            .client
            .request(wire::ping_subject(node), bytes::Bytes::new());
        match tokio::time::timeout(PING_TIMEOUT, ping).await {
            Ok(Ok(_)) => false,
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => true,
            _ => !listed,
        }
    }

    /// Whether the NATS connection is up now.
    pub fn connected(&self) -> bool {
        self.inner.client.connection_state() == async_nats::connection::State::Connected
    }
}

/// The bucket `name`, made if this is the first node to ask (entries older than `ttl`
/// expire; zero: never). Made as the stream a key-value bucket is (the client's own
/// `create_key_value` first reads account details that nats-server 2.9, Debian 12's, does not
/// send in the shape it expects).
async fn bucket(
    js: &jetstream::Context,
    name: &str,
    ttl: Duration,
    description: &str,
) -> Result<kv::Store, ClusterError> {
    if let Ok(store) = js.get_key_value(name).await {
        return Ok(store);
    }
    let made = js
        .create_stream(jetstream::stream::Config {
            name: format!("KV_{name}"),
            description: Some(description.to_owned()),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: 1,
            max_age: ttl,
            storage: jetstream::stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: jetstream::stream::DiscardPolicy::New,
            num_replicas: 1,
            ..Default::default()
        })
        .await;
    if let Err(e) = &made {
        // Another node may have made it meanwhile.
        tracing::debug!(bucket = name, error = %e, "making the bucket");
    }
    js.get_key_value(name)
        .await
        .map_err(|e| ClusterError::JetStream(format!("bucket {name}: {e}")))
}

/// Takes the next node number, atomically: a counter in the ids bucket, bumped with a
/// compare-and-set. 2^21 of them before they wrap (participant ids stay below 2^53).
async fn next_index(ids: &kv::Store) -> Result<u64, ClusterError> {
    const KEY: &str = "node_index";
    loop {
        let entry = ids
            .entry(KEY)
            .await
            .map_err(|e| ClusterError::JetStream(format!("node number: {e}")))?;
        let (last, revision) = match &entry {
            Some(e) if e.operation == kv::Operation::Put => (
                std::str::from_utf8(&e.value)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0),
                e.revision,
            ),
            _ => (0, 0),
        };
        let next = last % ((1 << 21) - 1) + 1;
        let value: bytes::Bytes = next.to_string().into();
        // Another node taking one meanwhile fails the compare-and-set: then again.
        match revision {
            0 => match ids.create(KEY, value).await {
                Ok(_) => return Ok(next),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
                Err(e) => return Err(ClusterError::JetStream(format!("node number: {e}"))),
            },
            r => match ids.update(KEY, value, r).await {
                Ok(_) => return Ok(next),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
                Err(e) => return Err(ClusterError::JetStream(format!("node number: {e}"))),
            },
        }
    }
}
