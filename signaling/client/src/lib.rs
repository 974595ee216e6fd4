//! The Rust signaling client: connects with an access token, joins a room, and drives the
//! participant's MLS session from the delivery service's messages (creating the group when
//! asked, committing queued adds and removes, joining from a Welcome, processing commits). It
//! reports what happens as [`Event`]s: new epochs with their frame keys and safety number,
//! participants, and the SFU's SDP and ICE. Load-test bots and tests are built on it.

mod driver;
mod error;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use media_crypto::mls::SessionConfig;
use signaling_protocol::{ClientMessage, IceCandidate, VideoWant};
use tokio::sync::mpsc;

pub use error::ClientError;
pub use signaling_participant::reconnect::Reconnect;
pub use signaling_participant::{AppMessage, AppMessageError, Event, LeafProblem, LeafWarning};
pub use signaling_protocol::ErrorCode;

/// Where and how to join.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The signaling WebSocket, e.g. `ws://127.0.0.1:8080/ws`.
    pub url: String,
    /// The room.
    pub room: String,
    /// An access token for the room.
    pub token: String,
    /// The MLS session's settings.
    pub session: SessionConfig,
    /// How long to wait for the server to accept the join (default 10 s).
    pub join_timeout: Duration,
    /// This device's signature key, as [`media_crypto::mls::DeviceKey::to_bytes`] stored it
    /// (default: a fresh one for each client, kept across its reconnects).
    pub device_key: Option<zeroize::Zeroizing<Vec<u8>>>,
    /// Join again by itself when the connection drops (default: off, the client closes).
    pub reconnect: Option<Reconnect>,
    /// Other nodes of a cluster (their signaling WebSockets): a rejoin tries them in turn,
    /// starting with the one after the node it lost (default: none, `url` again).
    pub other_urls: Vec<String>,
}

impl ClientConfig {
    /// A configuration with default session settings.
    pub fn new(url: impl Into<String>, room: impl Into<String>, token: impl Into<String>) -> Self {
        ClientConfig {
            url: url.into(),
            room: room.into(),
            token: token.into(),
            session: SessionConfig::default(),
            join_timeout: Duration::from_secs(10),
            device_key: None,
            reconnect: None,
            other_urls: Vec::new(),
        }
    }
}

/// A connected participant.
#[derive(Debug)]
pub struct Client {
    /// This participant's id now (a reconnect makes a new one).
    participant_id: Arc<AtomicU64>,
    ice_servers: Vec<signaling_protocol::IceServer>,
    commands: mpsc::UnboundedSender<driver::Command>,
    events: mpsc::UnboundedReceiver<Event>,
}

impl Client {
    /// Connects, joins, and starts driving the MLS session. Returns once the server has
    /// accepted the join; refusals (bad token, full room, ...) are [`ClientError::Refused`].
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        driver::connect(config).await
    }

    /// This participant's id in the room (since the last [`Event::Reconnected`], if any).
    pub fn participant_id(&self) -> signaling_protocol::ParticipantId {
        self.participant_id.load(Ordering::Relaxed)
    }

    /// The STUN/TURN servers the server told this participant to use for media.
    pub fn ice_servers(&self) -> &[signaling_protocol::IceServer] {
        &self.ice_servers
    }

    /// The next event; `None` once the connection is closed and every event was taken.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// An event if one is ready.
    pub fn try_next_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    fn send(&self, message: ClientMessage) {
        let _ = self.commands.send(driver::Command::Send(message));
    }

    /// Leaves the room: the server queues this member's removal and closes the connection;
    /// no reconnect follows.
    pub fn leave(&self) {
        let _ = self.commands.send(driver::Command::Leave);
    }

    /// Sends an SDP offer to the SFU.
    pub fn send_sdp_offer(&self, sdp: String) {
        self.send(ClientMessage::SdpOffer { sdp });
    }

    /// Sends an SDP answer to the SFU.
    pub fn send_sdp_answer(&self, sdp: String) {
        self.send(ClientMessage::SdpAnswer { sdp });
    }

    /// Tells the SFU which videos this participant shows and how large (replacing what it
    /// said before), and at most how many it takes at a time (`last_n`).
    pub fn send_video_wants(&self, videos: Vec<VideoWant>, last_n: Option<u16>) {
        self.send(ClientMessage::VideoWants { videos, last_n });
    }

    /// Sends a trickled ICE candidate to the SFU.
    pub fn send_ice_candidate(&self, candidate: IceCandidate) {
        self.send(ClientMessage::IceCandidate(candidate));
    }

    /// The user knows who holds the unexplained `leaf` on the device `signature_key` (as
    /// [`Event::NewEpoch`]'s warnings showed it): media may be sent again (an
    /// [`Event::SendGate`] follows). Nothing happens if the leaf holds another device by then.
    pub fn acknowledge(&self, leaf: u32, signature_key: &[u8]) {
        let _ = self
            .commands
            .send(driver::Command::Acknowledge(leaf, signature_key.to_vec()));
    }

    /// Says `message` to the other members, end to end (an MLS application message): sent
    /// now, or once the group settles ([`Event::ApplicationWaiting`]); others get it as
    /// [`Event::Application`].
    pub fn send_app(&self, message: AppMessage) -> Result<(), AppMessageError> {
        message.check()?;
        let _ = self.commands.send(driver::Command::App(message));
        Ok(())
    }

    /// Sends any protocol message as is (for tests of the server's refusals).
    pub fn send_raw(&self, message: ClientMessage) {
        self.send(message);
    }
}
