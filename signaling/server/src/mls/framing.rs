//! The public parts of MLS messages (RFC 9420 §6): what a delivery service may read to order
//! commits. openmls is used only as a parser here; nothing is verified or decrypted, and no
//! crypto provider is linked.

use openmls::prelude::tls_codec::Deserialize;
use openmls::prelude::{ContentType, MlsMessageBodyIn, MlsMessageIn, ProtocolMessage};
use thiserror::Error;

/// MLS bytes that are not what the delivery service needs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FramingError {
    #[error("not an MLS message: {0}")]
    Malformed(String),
    #[error("expected {expected}, got {got}")]
    WrongKind {
        expected: &'static str,
        got: &'static str,
    },
    #[error("message is for another group")]
    WrongGroup,
    #[error("message is for epoch {got}, expected {expected}")]
    WrongEpoch { expected: u64, got: u64 },
}

/// One whole `MLSMessage`; trailing bytes are an error.
pub(crate) fn parse(bytes: &[u8]) -> Result<MlsMessageBodyIn, FramingError> {
    MlsMessageIn::tls_deserialize_exact(bytes)
        .map(MlsMessageIn::extract)
        .map_err(|e| FramingError::Malformed(e.to_string()))
}

/// What kind of MLS message `body` is, for error messages.
pub(crate) fn kind(body: &MlsMessageBodyIn) -> &'static str {
    match body {
        MlsMessageBodyIn::PublicMessage(_) => "public message",
        MlsMessageBodyIn::PrivateMessage(_) => "private message",
        MlsMessageBodyIn::Welcome(_) => "welcome",
        MlsMessageBodyIn::GroupInfo(_) => "group info",
        MlsMessageBodyIn::KeyPackage(_) => "key package",
        #[allow(unreachable_patterns)]
        _ => "other MLS message",
    }
}

/// `message` is for `group_id` at `epoch`.
fn of_group_and_epoch(
    message: &ProtocolMessage,
    group_id: &[u8],
    epoch: u64,
) -> Result<(), FramingError> {
    if message.group_id().as_slice() != group_id {
        return Err(FramingError::WrongGroup);
    }
    if message.epoch().as_u64() != epoch {
        return Err(FramingError::WrongEpoch {
            expected: epoch,
            got: message.epoch().as_u64(),
        });
    }
    Ok(())
}

/// Checks that `bytes` are a handshake message of `content` type (commit or proposal) for
/// `group_id` at `epoch`.
pub fn check_handshake(
    bytes: &[u8],
    group_id: &[u8],
    epoch: u64,
    content: ContentType,
) -> Result<(), FramingError> {
    let message: ProtocolMessage = match parse(bytes)? {
        MlsMessageBodyIn::PublicMessage(m) => m.into(),
        MlsMessageBodyIn::PrivateMessage(m) => m.into(),
        other => {
            return Err(FramingError::WrongKind {
                expected: "handshake message",
                got: kind(&other),
            });
        }
    };
    of_group_and_epoch(&message, group_id, epoch)?;
    if message.content_type() != content {
        return Err(FramingError::WrongKind {
            expected: if content == ContentType::Commit {
                "commit"
            } else {
                "proposal"
            },
            got: match message.content_type() {
                ContentType::Commit => "commit",
                ContentType::Proposal => "proposal",
                ContentType::Application => "application message",
            },
        });
    }
    Ok(())
}

/// Checks that `bytes` are an application message (a PrivateMessage whose clear header says
/// content type application) for `group_id` at `epoch`. What it says and who sent it are
/// encrypted: only the members can tell.
pub fn check_application(bytes: &[u8], group_id: &[u8], epoch: u64) -> Result<(), FramingError> {
    let message: ProtocolMessage = match parse(bytes)? {
        MlsMessageBodyIn::PrivateMessage(m) => m.into(),
        other => {
            return Err(FramingError::WrongKind {
                expected: "application message",
                got: kind(&other),
            });
        }
    };
    of_group_and_epoch(&message, group_id, epoch)?;
    if message.content_type() != ContentType::Application {
        return Err(FramingError::WrongKind {
            expected: "application message",
            got: "handshake message",
        });
    }
    Ok(())
}

/// Checks that `bytes` are a GroupInfo of `group_id` at `epoch`.
pub fn check_group_info(bytes: &[u8], group_id: &[u8], epoch: u64) -> Result<(), FramingError> {
    match parse(bytes)? {
        MlsMessageBodyIn::GroupInfo(gi) => {
            if gi.group_id().as_slice() != group_id {
                return Err(FramingError::WrongGroup);
            }
            if gi.epoch().as_u64() != epoch {
                return Err(FramingError::WrongEpoch {
                    expected: epoch,
                    got: gi.epoch().as_u64(),
                });
            }
            Ok(())
        }
        other => Err(FramingError::WrongKind {
            expected: "group info",
            got: kind(&other),
        }),
    }
}

/// Checks that `bytes` are a Welcome.
pub fn check_welcome(bytes: &[u8]) -> Result<(), FramingError> {
    match parse(bytes)? {
        MlsMessageBodyIn::Welcome(_) => Ok(()),
        other => Err(FramingError::WrongKind {
            expected: "welcome",
            got: kind(&other),
        }),
    }
}

/// The credential identity inside a key package (its signature is the members' to verify).
pub fn key_package_identity(bytes: &[u8]) -> Result<Vec<u8>, FramingError> {
    match parse(bytes)? {
        MlsMessageBodyIn::KeyPackage(kp) => Ok(kp
            .unverified_credential()
            .credential
            .serialized_content()
            .to_vec()),
        other => Err(FramingError::WrongKind {
            expected: "key package",
            got: kind(&other),
        }),
    }
}
