//! This node's NATS publications, in the order they are made: connections and room tasks
//! hand them over without waiting, and one task publishes them one after the other, so that
//! what one participant says (or is told) stays in order across nodes.

use async_nats::HeaderMap;
use bytes::Bytes;
use tokio::sync::mpsc;

#[derive(Clone)]
pub(super) struct Uplink {
    tx: mpsc::UnboundedSender<(String, HeaderMap, Bytes)>,
}

impl Uplink {
    pub(super) fn start(client: async_nats::Client) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<(String, HeaderMap, Bytes)>();
        tokio::spawn(async move {
            while let Some((subject, headers, body)) = rx.recv().await {
                // Fails only once the client is closed; while NATS is away the client buffers.
                if let Err(e) = client.publish_with_headers(subject, headers, body).await {
                    tracing::debug!(error = %e, "cannot publish to the cluster");
                }
            }
        });
        Uplink { tx }
    }

    pub(super) fn publish(&self, subject: String, headers: HeaderMap, body: Bytes) {
        let _ = self.tx.send((subject, headers, body));
    }
}
