//! MLS messages to and from bytes (RFC 9420 §6, `MLSMessage`).

use openmls::prelude::tls_codec::{Deserialize, Serialize};
use openmls::prelude::*;

use crate::mls::error::{MlsError, PeerFault};

/// Parses one whole `MLSMessage`; trailing bytes are an error.
pub(super) fn decode(bytes: &[u8], what: &'static str) -> Result<MlsMessageBodyIn, MlsError> {
    MlsMessageIn::tls_deserialize_exact(bytes)
        .map(MlsMessageIn::extract)
        .map_err(|e| {
            MlsError::Peer(PeerFault::Malformed {
                what,
                reason: e.to_string(),
            })
        })
}

pub(super) fn encode(msg: &MlsMessageOut) -> Result<Vec<u8>, MlsError> {
    msg.tls_serialize_detached()
        .map_err(|e| MlsError::Internal(format!("encoding an MLS message: {e}")))
}

pub(super) fn kind(body: &MlsMessageBodyIn) -> &'static str {
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

/// Parses and validates a key package sent as an `MLSMessage`.
pub(super) fn key_package(
    bytes: &[u8],
    crypto: &impl openmls_traits::crypto::OpenMlsCrypto,
) -> Result<KeyPackage, MlsError> {
    match decode(bytes, "key package")? {
        MlsMessageBodyIn::KeyPackage(kp) => kp
            .validate(crypto, ProtocolVersion::Mls10)
            .map_err(|e| MlsError::Peer(PeerFault::InvalidKeyPackage(e.to_string()))),
        other => Err(MlsError::Peer(PeerFault::UnexpectedMessage {
            expected: "key package",
            got: kind(&other),
        })),
    }
}
