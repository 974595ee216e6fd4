//! The signaling server, as a library the `sfu` binary embeds: WebSocket rooms, access tokens,
//! and the MLS delivery service. It orders the group's handshake messages and never holds a
//! key: it links no frame-key code.
//!
//! - [`room`]: the IO-free room and delivery-service state machine.
//! - access tokens are [`signaling_token`]'s (the loadtest and tools mint them without the
//!   server).
//! - [`mls`]: the public parts of MLS the delivery service reads, and its verification of commits.
//! - [`server`]: the axum driver (WebSocket connections, room tasks, limits, dev tokens).

pub mod config;
pub mod mls;
pub mod room;
pub mod server;
pub mod turn;

pub use config::SignalingConfig;
pub use server::SignalingServer;
