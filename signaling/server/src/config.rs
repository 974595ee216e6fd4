//! Server settings: plain data with documented defaults. Binaries fill it from files, the
//! environment and flags.

use std::time::Duration;

/// How the signaling server behaves.
#[derive(Debug, Clone)]
pub struct SignalingConfig {
    /// Secret for HS256 access tokens.
    pub token_secret: Vec<u8>,
    /// Serve `GET /dev/token`, which hands out tokens to anyone. For local demos only.
    pub insecure_dev_tokens: bool,
    /// Participants per room (default 100).
    pub max_participants_per_room: usize,
    /// Largest WebSocket message accepted, in bytes (default 1 MiB: a commit adding many
    /// members at once carries their Welcome).
    pub max_message_bytes: usize,
    /// Largest application message (chat, reactions, state; MLS ciphertext) relayed, in
    /// bytes (default 64 KiB): a larger one is refused back to its sender. Each 4 KiB of one
    /// counts as one more message against the rate below.
    pub max_application_bytes: usize,
    /// Sustained messages per second per connection (default 50) ...
    pub messages_per_second: u32,
    /// ... with bursts of up to this many (default 200).
    pub message_burst: u32,
    /// How long a new connection may take to send `join` (default 10 s).
    pub join_timeout: Duration,
    /// The server pings each connection this often (default 10 s) ...
    pub ping_interval: Duration,
    /// ... and drops one that has sent nothing, not even a pong, for this long (default 30 s).
    pub idle_timeout: Duration,
    /// How long the member asked to commit has before another is asked (default 5 s).
    pub commit_timeout: Duration,
    /// Outgoing messages queued per connection before it counts as stuck and is dropped
    /// (default 1024) ...
    pub outbox_capacity: usize,
    /// ... or bytes (default 8 MiB; a message sent to many is stored once, but counts in
    /// each queue).
    pub outbox_bytes: usize,
    /// A message the peer does not take within this is a peer that does not read: its
    /// connection is dropped (default 10 s).
    pub send_timeout: Duration,
    /// The longest an access token may live; longer ones are refused (default 24 h).
    pub max_token_lifetime: Duration,
    /// STUN/TURN servers handed to participants in `joined` (default none).
    pub ice_servers: Vec<signaling_protocol::IceServer>,
    /// Open connections allowed per client address (default 50).
    pub max_connections_per_ip: usize,
    /// Reverse proxies whose `X-Forwarded-For` names the client (default none: the TCP
    /// peer is the client).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Time-limited credentials for the `turn:` servers among them (default none).
    pub turn: Option<crate::turn::TurnCredentials>,
}

impl Default for SignalingConfig {
    fn default() -> Self {
        SignalingConfig {
            token_secret: Vec::new(),
            insecure_dev_tokens: false,
            max_participants_per_room: 100,
            max_message_bytes: 1 << 20,
            max_application_bytes: 64 << 10,
            messages_per_second: 50,
            message_burst: 200,
            join_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            commit_timeout: Duration::from_secs(5),
            outbox_capacity: 1024,
            outbox_bytes: 8 << 20,
            send_timeout: Duration::from_secs(10),
            max_token_lifetime: signaling_token::DEFAULT_MAX_LIFETIME,
            ice_servers: Vec::new(),
            turn: None,
            max_connections_per_ip: 50,
            trusted_proxies: Vec::new(),
        }
    }
}

impl SignalingConfig {
    /// What access tokens must satisfy.
    pub fn token_policy(&self) -> signaling_token::TokenPolicy<'_> {
        signaling_token::TokenPolicy {
            secret: &self.token_secret,
            max_lifetime: self.max_token_lifetime,
        }
    }
}
