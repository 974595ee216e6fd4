//! SFrame, RFC 9605 §4: the header, the cipher suites, key derivation, and per-frame
//! encryption and decryption with replay protection.

mod aead;
mod error;
mod header;
mod key;
mod receiver;
mod replay;
mod sender;
mod suite;

pub use aead::Aead;
pub use error::{DecryptError, EncryptError, HeaderError, KeyError, SuiteError};
pub use header::{Header, MAX_HEADER_LEN};
pub(crate) use key::FrameBuf;
pub use key::{FrameKey, KeyMaterial, derive_key_material};
pub(crate) use receiver::ReceiveKey;
pub use receiver::{Decrypted, Receiver};
pub use replay::DEFAULT_REPLAY_WINDOW;
pub use sender::Sender;
pub use suite::CipherSuite;

/// The most bytes SFrame adds to a frame: the longest header and the longest tag.
pub const MAX_OVERHEAD: usize = MAX_HEADER_LEN + 16;
