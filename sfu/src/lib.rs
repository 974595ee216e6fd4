//! The E2EE SFU as a library: the `sfu` binary is a thin `main` around it, and tests drive it
//! in process.
//!
//! - [`config`]: settings, files, validation.
//! - [`http`]: the one HTTP port (signaling, demo, health, metrics, security headers).
//! - [`serve`]: its TCP listener, plain or TLS, with per-address and slow-client limits.
//! - [`media_room`]: the sans-IO media room: sessions, tracks, forwarding of RTP it cannot
//!   decrypt, key frames, the active speaker, negotiation.
//! - [`media`]: its driver: UDP sockets (a port range or one shared port) and the room tasks.

pub mod admin;
pub mod cli;
pub mod config;
pub mod http;
pub mod http_client;
pub mod media;
pub mod media_room;
pub mod metrics;
pub mod serve;
pub mod tls;
