//! The E2EE SFU as a library: the `sfu` binary is a thin `main` around it, and tests drive it
//! in process.
//!
//! - [`config`]: settings, files, validation.
//! - [`http`]: the one HTTP port (signaling, demo, health, metrics, security headers).
//! - [`serve`]: its TCP listener, plain or TLS, with per-address and slow-client limits.
//! - [`routing`]: the IO-free routing table of a room.
//! - [`media`]: the webrtc-rs driver that forwards RTP it cannot decrypt.
//! - [`media_room`]: the sans-IO media room (issue 13) that replaces it.

pub mod admin;
pub mod cli;
pub mod config;
pub mod http;
pub mod http_client;
pub mod media;
pub mod media_room;
pub mod metrics;
pub mod routing;
pub mod serve;
pub mod tls;
