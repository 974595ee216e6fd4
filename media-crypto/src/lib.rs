//! Frame encryption for end-to-end encrypted conferencing: SFrame (RFC 9605) keyed from an MLS
//! group (RFC 9420, through openmls).
//!
//! - [`sframe`]: the codec. Headers, all cipher suites, key derivation, senders whose counters
//!   never repeat, receivers with replay windows; encryption into caller buffers.
//! - [`mls`]: keys from MLS (RFC 9605 §5.2): KIDs, a per-epoch keyring with a grace time, and
//!   the MLS session that drives it; rosters and safety numbers for people to compare.
//!
//! No IO and no clock: time is passed in. Builds for `wasm32-unknown-unknown`.
//!
//! ```
//! use std::time::Duration;
//! use media_crypto::mls::{MlsSession, SessionConfig};
//!
//! let now = Duration::ZERO; // time since an origin the caller chooses
//! let mut alice = MlsSession::new("alice", SessionConfig::default())?;
//! let mut bob = MlsSession::new("bob", SessionConfig::default())?;
//! alice.create_group(b"room-1", now)?;
//! // Pending until the delivery service accepts it.
//! let out = alice.commit(&[bob.key_package()?], &[])?;
//! alice.confirm_pending_commit(now)?;
//! bob.join_from_welcome(&out.welcome.expect("adds make a welcome"), now)?;
//!
//! let frame = alice.keyring_mut().encrypt(b"", b"encoded video frame")?;
//! let (from, plaintext) = bob.keyring_mut().decrypt(b"", &frame, now)?;
//! assert_eq!((from.sender, plaintext.as_slice()), (0, &b"encoded video frame"[..]));
//! assert_eq!(alice.safety_number(), bob.safety_number());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod mls;
pub mod sframe;
