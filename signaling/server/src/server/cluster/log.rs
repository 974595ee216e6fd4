//! A room's log in the cluster: a JetStream stream of its own (`SFU_ROOM_<hash>`, file storage,
//! so that it outlives a NATS restart), each record a message, each append made with the
//! stream's expected last sequence: a home that is no longer the room's (another node took the
//! room over and wrote to its log) cannot append, so its delivery service can decide nothing
//! more. The node that takes a room over reads the log and rebuilds the room from it.

use async_nats::jetstream::{self, message::PublishMessage, stream};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};

use super::super::room_log::{LogError, RoomLog, RoomLogs};
use crate::room::Record;

/// How long a log operation may take before the log counts as unreachable.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

pub(super) struct StreamLogs {
    js: jetstream::Context,
}

impl StreamLogs {
    pub(super) fn new(client: async_nats::Client) -> Self {
        StreamLogs {
            js: jetstream::new(client),
        }
    }
}

/// The stream's name and subject for `room`: a hash of its name (any name, a short token).
fn names(room: &str) -> (String, String) {
    let hash = hex::encode(&Sha256::digest(room.as_bytes())[..16]);
    (format!("SFU_ROOM_{hash}"), format!("sfu.log.{hash}"))
}

impl RoomLogs for StreamLogs {
    fn open(&self, room: &str) -> Box<dyn RoomLog> {
        let (name, subject) = names(room);
        Box::new(StreamLog {
            js: self.js.clone(),
            room: room.to_owned(),
            name,
            subject,
            last: 0,
        })
    }
}

struct StreamLog {
    js: jetstream::Context,
    room: String,
    name: String,
    subject: String,
    /// The sequence of the last record read or written.
    last: u64,
}

fn unavailable(e: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(e.to_string())
}

impl StreamLog {
    async fn stream(&self) -> Result<stream::Stream, LogError> {
        self.js
            .get_or_create_stream(stream::Config {
                name: self.name.clone(),
                description: Some(format!(
                    "room {:?}: its delivery service's records",
                    self.room
                )),
                subjects: vec![self.subject.clone()],
                storage: stream::StorageType::File,
                num_replicas: 1,
                ..Default::default()
            })
            .await
            .map_err(unavailable)
    }

    async fn read_all(&mut self) -> Result<Vec<Record>, LogError> {
        let mut stream = self.stream().await?;
        let state = stream.info().await.map_err(unavailable)?.state.clone();
        let mut records = Vec::new();
        if state.messages > 0 {
            for seq in state.first_sequence..=state.last_sequence {
                let message = stream.get_raw_message(seq).await.map_err(unavailable)?;
                let record: Record = serde_json::from_slice(&message.payload)
                    .map_err(|e| LogError::Corrupt(format!("record {seq}: {e}")))?;
                records.push(record);
            }
        }
        self.last = state.last_sequence;
        Ok(records)
    }

    async fn write(&mut self, record: &Record) -> Result<(), LogError> {
        let body = serde_json::to_vec(record).map_err(|e| LogError::Corrupt(e.to_string()))?;
        let ack = self
            .js
            .send_publish(
                self.subject.clone(),
                PublishMessage::build()
                    .payload(body.into())
                    .expected_last_sequence(self.last),
            )
            .await
            .map_err(unavailable)?
            .await;
        match ack {
            Ok(ack) => {
                self.last = ack.sequence;
                Ok(())
            }
            Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {
                Err(LogError::Lost)
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}

impl RoomLog for StreamLog {
    fn load(&mut self) -> BoxFuture<'_, Result<Vec<Record>, LogError>> {
        async move {
            tokio::time::timeout(TIMEOUT, self.read_all())
                .await
                .unwrap_or_else(|_| Err(LogError::Unavailable("timed out".into())))
        }
        .boxed()
    }

    fn append<'a>(&'a mut self, record: &'a Record) -> BoxFuture<'a, Result<(), LogError>> {
        async move {
            tokio::time::timeout(TIMEOUT, self.write(record))
                .await
                .unwrap_or_else(|_| Err(LogError::Unavailable("timed out".into())))
        }
        .boxed()
    }

    fn remove(self: Box<Self>) -> BoxFuture<'static, ()> {
        async move {
            let _ = self.js.delete_stream(&self.name).await;
        }
        .boxed()
    }
}
