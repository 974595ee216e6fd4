//! The driver of the media rooms ([`crate::media_room`]): UDP transports (a port of the range
//! per participant, or one shared port) and one task per room.
//!
//! [`MediaServer`] is the signaling server's [`MediaHandler`]: joins, leaves and SDP/ICE go to
//! the room's task ([`room`]), which feeds them to its `MediaRoom` with the datagrams of the
//! room's transports ([`transport`]) and carries out what the room asks.

pub mod batch;
pub mod ports;
mod room;
mod transport;
pub mod udp_mux;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use signaling_protocol::ParticipantId;
use signaling_server::server::{MediaHandler, MediaSender, MediaSignal};
use tokio::sync::mpsc;

use ports::PortPool;
use room::{RoomInput, RoomTask};
pub use transport::TransportError;

/// Counters for /metrics and benchmarks, summed over the rooms.
#[derive(Debug, Default)]
pub struct ForwardStats {
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// PLIs sent to publishers (for new subscribers and subscribers' requests, throttled).
    pub keyframe_requests_sent: AtomicU64,
    /// Datagrams dropped because a room's task was behind (its queue was full).
    pub datagrams_dropped: AtomicU64,
}

/// Where media flows: the address and port range transports bind, and the address they
/// announce.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The address to bind (a wildcard binds every interface).
    pub ip: IpAddr,
    /// The UDP ports transports take, one each.
    pub ports: PortPool,
    /// The public address announced in ICE host candidates instead of the bound one (1:1 NAT).
    pub public_ip: Option<IpAddr>,
    /// Single-port mode: every transport on this one port instead of `ports`.
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

    /// UDP ports held by transports now.
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
        let (datagrams, datagrams_rx) = mpsc::channel(room::DATAGRAM_QUEUE);
        let task = RoomTask {
            name: name.to_owned(),
            config: self.config.clone(),
            stats: self.stats.clone(),
            datagrams,
            room: crate::media_room::MediaRoom::new(),
            senders: HashMap::new(),
            transports: HashMap::new(),
            counted: Default::default(),
            outgoing: Vec::new(),
            recv_buffers: batch::RecvBuffers::new(batch::BATCH, 2048),
        };
        self.runtime
            .spawn(task.run(rx, datagrams_rx, tx.clone(), self.rooms.clone()));
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
