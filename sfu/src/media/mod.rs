//! The driver of the media rooms ([`crate::media_room`]): UDP transports (a port of the range
//! per participant, or one shared port) and one task per room.
//!
//! [`MediaServer`] is the signaling server's [`MediaFactory`]: each room's task (which also runs
//! the room's delivery service, so a room has one task and one membership) drives the room's
//! [`RoomDriver`] ([`room`]), which feeds joins, leaves, SDP/ICE and the datagrams of the room's
//! transports ([`transport`]) to its `MediaRoom` and carries out what the room asks.

mod load;
pub mod ports;
mod room;
pub mod threads;
mod transport;
pub mod udp_mux;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use signaling_server::server::{MediaFactory, MediaLoad, RoomMedia, RoomTask};

use crate::media_room::Policy;
use ports::PortPool;
use room::RoomDriver;
use threads::MediaThreads;
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
    /// Media datagrams sent, and the system calls that sent them.
    pub datagrams_sent: AtomicU64,
    pub send_calls: AtomicU64,
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
    /// Runs of datagrams to one destination go as one UDP GSO send.
    pub gso: bool,
    /// How each room forwards.
    pub policy: Policy,
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
            gso: true,
            policy: Policy::default(),
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

/// The SFU's media for every room: it makes each room's [`RoomDriver`], which the room's
/// task (the one that runs its delivery service) drives.
pub struct MediaServer {
    config: MediaConfig,
    stats: Arc<ForwardStats>,
    live: Arc<AtomicUsize>,
    /// Where rooms run (`None`: on the runtime that starts them).
    threads: Option<MediaThreads>,
    /// Rates since the cluster's last heartbeat.
    load: Arc<load::LoadMeter>,
}

impl std::fmt::Debug for MediaServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaServer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl MediaServer {
    pub fn new(config: MediaConfig) -> Self {
        MediaServer {
            config,
            stats: Arc::new(ForwardStats::default()),
            live: Arc::default(),
            threads: None,
            load: Arc::new(load::LoadMeter::new()),
        }
    }

    /// Media whose rooms run on `threads` (media threads of their own).
    pub fn with_threads(config: MediaConfig, threads: MediaThreads) -> Self {
        MediaServer {
            threads: Some(threads),
            ..MediaServer::new(config)
        }
    }

    /// Rooms with media now.
    pub fn room_count(&self) -> usize {
        self.live.load(Ordering::Relaxed)
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
}

impl MediaFactory for MediaServer {
    /// Called by the room's task, inside the tokio runtime.
    fn room(&self, name: &str) -> Box<dyn RoomMedia> {
        Box::new(RoomDriver::new(
            name,
            self.config.clone(),
            self.stats.clone(),
            self.live.clone(),
        ))
    }

    fn spawn_room(&self, task: RoomTask) {
        match &self.threads {
            Some(threads) => threads.spawn(task),
            None => {
                tokio::spawn(task);
            }
        }
    }

    fn load(&self) -> MediaLoad {
        self.load
            .read(self.stats.packets_out.load(Ordering::Relaxed))
    }
}
