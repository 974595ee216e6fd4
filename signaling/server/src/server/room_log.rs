//! Where a room's records ([`crate::room::Record`]) are kept: nowhere on a lone server; in a
//! cluster, in a stream of the room's own ([`super::cluster`]).

use futures_util::future::BoxFuture;

use crate::room::Record;

/// Why a log could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// Someone else wrote to the log since this one last read or wrote it: another node is
    /// the room's home now.
    #[error("another node wrote the room's log: the room is no longer this node's")]
    Lost,
    /// The log cannot be reached now.
    #[error("the room's log cannot be reached: {0}")]
    Unavailable(String),
    /// A record that does not parse.
    #[error("a record of the room's log does not parse: {0}")]
    Corrupt(String),
}

/// One room's log.
pub(crate) trait RoomLog: Send {
    /// Every record so far, oldest first.
    fn load(&mut self) -> BoxFuture<'_, Result<Vec<Record>, LogError>>;

    /// Writes `record` after the last one this log read or wrote: [`LogError::Lost`] if
    /// another wrote one meanwhile.
    fn append<'a>(&'a mut self, record: &'a Record) -> BoxFuture<'a, Result<(), LogError>>;

    /// The room ended: its log goes.
    fn remove(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// Opens rooms' logs.
pub(crate) trait RoomLogs: Send + Sync {
    fn open(&self, room: &str) -> Box<dyn RoomLog>;
}
