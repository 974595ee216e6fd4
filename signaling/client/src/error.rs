//! Client errors.

use signaling_protocol::ErrorCode;
use thiserror::Error;

/// Connecting or joining failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The WebSocket could not be opened.
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The server refused the join.
    #[error("join refused ({code:?}): {message}")]
    Refused { code: ErrorCode, message: String },
    /// The server sent something that is not the protocol, or closed early.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// No answer to the join in time.
    #[error("no answer to the join within {0:?}")]
    Timeout(std::time::Duration),
    /// The local MLS session could not be set up.
    #[error("MLS: {0}")]
    Mls(#[from] media_crypto::mls::MlsError),
}
