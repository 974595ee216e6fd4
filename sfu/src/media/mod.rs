//! The media side of the SFU on webrtc-rs 0.21: one PeerConnection per participant, each
//! published track forwarded to every other participant without being decrypted.
//!
//! [`MediaServer`] is the signaling server's [`MediaHandler`]: joins, leaves and SDP/ICE go to
//! one task per room ([`room`]), which owns the routing table and the PeerConnections.

mod events;
mod forward;
pub mod offer;
mod peer;
pub mod ports;
mod room;
pub mod udp_mux;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use signaling_protocol::ParticipantId;
use signaling_server::server::{MediaHandler, MediaSender, MediaSignal};
use tokio::sync::mpsc;

pub use forward::ForwardStats;
pub use peer::PeerError;
use ports::PortPool;
use room::{RoomInput, RoomMedia};

/// Where media flows: the address and port range PeerConnections bind, and the address they
/// announce.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The address to bind (a wildcard binds every interface).
    pub ip: IpAddr,
    /// The UDP ports PeerConnections take, one each.
    pub ports: PortPool,
    /// The public address announced in ICE host candidates instead of the bound one (1:1 NAT).
    pub public_ip: Option<IpAddr>,
    /// Single-port mode: every PeerConnection on this one port instead of `ports`.
    pub udp_mux: Option<Arc<udp_mux::UdpMux>>,
}

impl MediaConfig {
    /// Media on `ip`, one port of `udp_ports` (inclusive; starting at 0: any port) per
    /// participant.
    pub fn new(ip: IpAddr, udp_ports: (u16, u16), public_ip: Option<IpAddr>) -> Self {
        MediaConfig {
            ip,
            ports: PortPool::new(ip, udp_ports),
            public_ip,
            udp_mux: None,
        }
    }

    /// Media on `ip`, every participant on UDP `port` (0: one the OS picks). Binds the port
    /// now; must be called inside a tokio runtime.
    pub fn single_port(ip: IpAddr, port: u16, public_ip: Option<IpAddr>) -> std::io::Result<Self> {
        Ok(MediaConfig {
            udp_mux: Some(udp_mux::UdpMux::bind(ip, port)?),
            ..MediaConfig::new(ip, (0, 0), public_ip)
        })
    }
}

/// Running room tasks by name. A task removes itself when its room is empty.
pub(crate) type Rooms = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<RoomInput>>>>;

/// The SFU's media handling for every room.
pub struct MediaServer {
    config: MediaConfig,
    rooms: Rooms,
    stats: Arc<ForwardStats>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for MediaServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaServer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl MediaServer {
    /// Must be created inside a tokio runtime.
    pub fn new(config: MediaConfig) -> Self {
        MediaServer {
            config,
            rooms: Arc::new(Mutex::new(HashMap::new())),
            stats: Arc::new(ForwardStats::default()),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// Rooms with a running media task.
    pub fn room_count(&self) -> usize {
        self.lock().len()
    }

    /// UDP ports held by PeerConnections now.
    pub fn ports_in_use(&self) -> usize {
        self.config.ports.in_use()
    }

    /// Single-port mode: datagrams on the shared port that belonged to no connection (or
    /// found its queue full) so far; 0 in port-range mode.
    pub fn udp_dropped(&self) -> u64 {
        self.config.udp_mux.as_ref().map_or(0, |m| m.dropped())
    }

    /// Packets and bytes forwarded so far.
    pub fn stats(&self) -> Arc<ForwardStats> {
        self.stats.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<RoomInput>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn room(&self, name: &str) -> mpsc::UnboundedSender<RoomInput> {
        let mut rooms = self.lock();
        if let Some(tx) = rooms.get(name)
            && !tx.is_closed()
        {
            return tx.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (events, events_rx) = events::channel(self.stats.clone());
        let media = RoomMedia::new(
            name.to_owned(),
            self.config.clone(),
            self.stats.clone(),
            tx.clone(),
            events,
        );
        self.runtime
            .spawn(media.run(rx, events_rx, self.rooms.clone()));
        rooms.insert(name.to_owned(), tx.clone());
        tx
    }

    fn send(&self, room: &str, input: RoomInput) {
        let _ = self.room(room).send(input);
    }
}

impl MediaHandler for MediaServer {
    fn joined(
        &self,
        room: &str,
        participant: ParticipantId,
        may_publish: bool,
        sender: MediaSender,
    ) {
        self.send(
            room,
            RoomInput::Joined {
                participant,
                may_publish,
                sender,
            },
        );
    }

    fn signal(&self, room: &str, participant: ParticipantId, signal: MediaSignal) {
        self.send(
            room,
            RoomInput::Signal {
                participant,
                signal,
            },
        );
    }

    fn left(&self, room: &str, participant: ParticipantId) {
        self.send(room, RoomInput::Left { participant });
    }
}
