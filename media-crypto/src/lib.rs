//! Frame encryption for end-to-end encrypted conferencing: SFrame (RFC 9605) keyed from an MLS
//! group (RFC 9420, through openmls).
//!
//! - [`sframe`]: the codec. Headers, all cipher suites, key derivation, senders whose counters
//!   never repeat, receivers with replay windows; encryption into caller buffers.
//! - [`mls`]: keys from MLS (RFC 9605 §5.2): KIDs, a per-epoch keyring with a grace time, and
//!   the MLS session that drives it; rosters and safety numbers for people to compare.
//!
//! No IO and no clock: time is passed in. Builds for `wasm32-unknown-unknown`.

pub mod mls;
pub mod sframe;
