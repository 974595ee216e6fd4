//! What can stop a load run, by where it went wrong.

use std::path::PathBuf;

use crate::media::MediaError;
use crate::scenario::ScenarioError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("test media: {0}")]
    Media(#[from] MediaError),
    #[error("signaling: {0}")]
    Signaling(#[from] signaling_client::ClientError),
    #[error("WebRTC: {0}")]
    WebRtc(#[from] rtc::shared::error::Error),
    #[error("UDP: {0}")]
    Io(#[from] std::io::Error),
    #[error("token: {0}")]
    Token(#[from] signaling_token::TokenError),
    /// The file of bots' tokens (`--tokens`) is not usable.
    #[error("tokens file: {0}")]
    Tokens(String),
    /// The sfu answered something a run cannot use.
    #[error("the sfu: {0}")]
    Sfu(String),
    #[error("starting {bin}: {source}")]
    Start {
        bin: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The local sfu's /proc entries could not be read.
    #[error("/proc of the sfu: {0}")]
    Proc(String),
    #[error("{url}: {source}")]
    Http {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
}
