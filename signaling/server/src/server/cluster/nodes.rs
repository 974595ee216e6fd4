//! Nodes: each says, every heartbeat, that it is alive, where participants and media reach it,
//! and how loaded it is, in the nodes bucket, whose entries expire three heartbeats after
//! their last refresh: a node that dies drops out by itself.

use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};

use super::ClusterError;
use super::watched::Watched;

/// How loaded a node is.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeLoad {
    /// Rooms it is home to.
    pub rooms: usize,
    /// Participants connected to it.
    pub participants: usize,
    /// RTP packets it forwards a second.
    pub packets_per_second: f64,
    /// The share of the machine's CPU it uses, 0 to 1.
    pub cpu: f64,
}

/// What a node tells the cluster about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node_id: String,
    /// Its number: the high bits (`>> 32`) of the participant ids it hands out.
    #[serde(default)]
    pub index: u64,
    /// Where participants reach its signaling.
    pub public_url: String,
    /// Where its media is.
    pub media_address: String,
    pub load: NodeLoad,
    /// Taking no new rooms, handing its rooms over before it stops.
    pub draining: bool,
    /// The sfu's version.
    pub version: String,
}

impl NodeInfo {
    /// What placement weighs: a room it is home to as much as ten participants, the whole
    /// machine's CPU as fifty.
    pub fn cost(&self) -> f64 {
        self.load.rooms as f64 * 10.0 + self.load.participants as f64 + self.load.cpu * 50.0
    }
}

/// The nodes bucket, and this node's entry in it.
pub(crate) struct Nodes {
    store: kv::Store,
    me: String,
    ttl: Duration,
    view: Watched,
}

impl Nodes {
    pub(super) fn new(store: kv::Store, me: String, ttl: Duration) -> Self {
        let view = Watched::start(store.clone());
        Nodes {
            store,
            me,
            ttl,
            view,
        }
    }

    /// Takes this node's name: refused while another live node holds it. A node that was
    /// killed and restarts at once finds its old entry, which expires within the TTL: it
    /// waits that long.
    pub(super) async fn claim_name(&self) -> Result<(), ClusterError> {
        let deadline = Instant::now() + self.ttl * 2;
        loop {
            match self.store.create(&self.me, "{}".into()).await {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    if Instant::now() >= deadline {
                        return Err(ClusterError::NodeIdTaken(self.me.clone()));
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(ClusterError::JetStream(format!("node name: {e}"))),
            }
        }
    }

    /// Says this node is alive, as `info`.
    pub(crate) async fn publish(&self, info: &NodeInfo) -> Result<(), String> {
        let value = serde_json::to_vec(info).map_err(|e| e.to_string())?;
        self.store
            .put(&self.me, value.into())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The live nodes (this one too, once it has said so), by name.
    pub(crate) fn live(&self) -> Vec<NodeInfo> {
        let mut out: Vec<NodeInfo> = self
            .view
            .recent(self.ttl)
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice::<NodeInfo>(&v).ok())
            .collect();
        out.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        out
    }

    /// `node` is gone (it answers nothing): it is struck from the list at once, here and for
    /// everyone, rather than when its entry expires.
    pub(crate) async fn strike(&self, node: &str) {
        self.view.forget(node);
        let _ = self.store.delete(node).await;
    }
}
