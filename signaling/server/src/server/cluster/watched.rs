//! A bucket as this node sees it: every key's latest value, kept current by a watch (a put or
//! a delete anywhere in the cluster shows here within milliseconds). Entries that expire
//! make no event, so each is stamped with when it was last heard of, and readers ask only
//! for those heard of recently.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;

#[derive(Clone)]
pub(super) struct Watched {
    entries: Arc<Mutex<HashMap<String, (Bytes, Instant)>>>,
}

impl Watched {
    /// Watches `store` from now on, for as long as the returned value lives.
    pub(super) fn start(store: kv::Store) -> Self {
        let entries: Arc<Mutex<HashMap<String, (Bytes, Instant)>>> = Arc::default();
        let weak = Arc::downgrade(&entries);
        tokio::spawn(async move {
            loop {
                match store.watch_with_history(">").await {
                    Ok(mut watch) => {
                        while let Some(entry) = watch.next().await {
                            let Some(entries) = weak.upgrade() else {
                                return;
                            };
                            let Ok(entry) = entry else { break };
                            let mut map = entries.lock().unwrap_or_else(|e| e.into_inner());
                            match entry.operation {
                                kv::Operation::Put => {
                                    map.insert(entry.key, (entry.value, Instant::now()));
                                }
                                kv::Operation::Delete | kv::Operation::Purge => {
                                    map.remove(&entry.key);
                                }
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "cannot watch a cluster bucket"),
                }
                if weak.strong_count() == 0 {
                    return;
                }
                // NATS away: watch again once it is back.
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        Watched { entries }
    }

    /// Every key heard of within `within`, with its value.
    pub(super) fn recent(&self, within: Duration) -> Vec<(String, Bytes)> {
        let now = Instant::now();
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, (_, seen))| now.duration_since(*seen) <= within)
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }

    /// Forgets `key` (its owner is known to be gone).
    pub(super) fn forget(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}
