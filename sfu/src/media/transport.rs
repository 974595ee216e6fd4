//! A participant's UDP transport: sockets of its own on a port of the range, or its place on
//! the shared port; the addresses its host candidates announce (the public one directly, if
//! configured); and the reader tasks that hand its datagrams to the room task.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::BytesMut;
use signaling_protocol::ParticipantId;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use udp_batch::{RecvBuffers, try_recv_batch};

use super::ports::{PortLease, PortsExhausted};
use super::udp_mux::{MuxConnection, local_addresses};
use super::{ForwardStats, MediaConfig};
use crate::media_room::Transport;

/// A datagram for a room: whose transport it came to, where, and from whom.
#[derive(Debug)]
pub(crate) struct RoomDatagram {
    pub participant: ParticipantId,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub data: BytesMut,
}

/// Why a transport could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    #[error(transparent)]
    NoPort(#[from] PortsExhausted),
    #[error("cannot bind the media port: {0}")]
    Bind(#[source] std::io::Error),
}

/// One announced address and the socket behind it.
#[derive(Debug)]
struct Endpoint {
    announced: SocketAddr,
    /// The local address bound (the shared socket's key in single-port mode).
    bound: IpAddr,
    /// Port-range mode: the participant's own socket.
    own: Option<Arc<UdpSocket>>,
}

#[derive(Debug)]
enum Io {
    Own { _lease: PortLease },
    Shared(MuxConnection),
}

/// A participant's open transport; its sockets and readers go when it is dropped.
#[derive(Debug)]
pub(crate) struct ParticipantTransport {
    io: Io,
    endpoints: Vec<Endpoint>,
    readers: Vec<tokio::task::AbortHandle>,
}

impl Drop for ParticipantTransport {
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
    }
}

impl ParticipantTransport {
    /// Opens `participant`'s transport as `config` says; its datagrams go to `room`. Must be
    /// called inside a tokio runtime.
    pub(crate) fn open(
        config: &MediaConfig,
        participant: ParticipantId,
        room: mpsc::Sender<RoomDatagram>,
        stats: Arc<ForwardStats>,
    ) -> Result<(Self, Transport), TransportError> {
        let ice_ufrag = random_ice_chars(16);
        let ice_pwd = random_ice_chars(32);
        let mut endpoints = Vec::new();
        let mut readers = Vec::new();
        let io = match &config.udp_mux {
            Some(mux) => {
                let connection = mux.connect(&ice_ufrag);
                for local in announced(connection.locals(), config.public_ip) {
                    let (bound, announced) = local;
                    let mut inbox = connection.inbox(bound.ip());
                    let (room, stats) = (room.clone(), stats.clone());
                    readers.push(
                        tokio::spawn(async move {
                            while let Some(d) = inbox.recv().await {
                                let d = RoomDatagram {
                                    participant,
                                    local: announced,
                                    remote: d.from,
                                    data: d.data,
                                };
                                if !hand_over(&room, d, &stats) {
                                    return;
                                }
                            }
                        })
                        .abort_handle(),
                    );
                    endpoints.push(Endpoint {
                        announced,
                        bound: bound.ip(),
                        own: None,
                    });
                }
                Io::Shared(connection)
            }
            None => {
                let lease = config.ports.lease()?;
                let mut bound_addrs = Vec::new();
                let mut sockets = Vec::new();
                for ip in local_addresses(config.ip) {
                    let std = std::net::UdpSocket::bind(SocketAddr::new(ip, lease.port()))
                        .map_err(TransportError::Bind)?;
                    std.set_nonblocking(true).map_err(TransportError::Bind)?;
                    let addr = std.local_addr().map_err(TransportError::Bind)?;
                    let socket = UdpSocket::from_std(std).map_err(TransportError::Bind)?;
                    bound_addrs.push(addr);
                    sockets.push((addr, Arc::new(socket)));
                }
                // Read by the room task itself ([`ParticipantTransport::poll_read`]): no task
                // of its own, no queue.
                for (bound, announced) in announced(bound_addrs, config.public_ip) {
                    let Some((_, socket)) = sockets.iter().find(|(a, _)| *a == bound) else {
                        continue;
                    };
                    endpoints.push(Endpoint {
                        announced,
                        bound: bound.ip(),
                        own: Some(socket.clone()),
                    });
                }
                Io::Own { _lease: lease }
            }
        };
        let transport = Transport {
            locals: endpoints.iter().map(|e| e.announced).collect(),
            ice_ufrag,
            ice_pwd,
        };
        Ok((
            ParticipantTransport {
                io,
                endpoints,
                readers,
            },
            transport,
        ))
    }

    /// The socket to send `data` to `remote` from, for the announced address `local` (on the
    /// shared port, what the datagram teaches the mux is learned now).
    pub(crate) fn sending(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
    ) -> Option<Arc<UdpSocket>> {
        let e = self
            .endpoints
            .iter()
            .find(|e| e.announced == local)
            .or_else(|| self.endpoints.first())?;
        match (&self.io, &e.own) {
            (_, Some(socket)) => Some(socket.clone()),
            (Io::Shared(connection), None) => connection.sending(e.bound, remote, data),
            (Io::Own { .. }, None) => None,
        }
    }
}

/// The addresses to announce for the bound ones: each as it is, or, with a public address (1:1
/// NAT), that address with the port of the first bound one of its family, alone.
fn announced(bound: Vec<SocketAddr>, public: Option<IpAddr>) -> Vec<(SocketAddr, SocketAddr)> {
    match public {
        None => bound.into_iter().map(|b| (b, b)).collect(),
        Some(ip) => bound
            .into_iter()
            .find(|b| b.is_ipv4() == ip.is_ipv4())
            .map(|b| (b, SocketAddr::new(ip, b.port())))
            .into_iter()
            .collect(),
    }
}

/// Hands a datagram to the room task; a full queue drops it (counted). False once the room is
/// gone.
fn hand_over(room: &mpsc::Sender<RoomDatagram>, d: RoomDatagram, stats: &ForwardStats) -> bool {
    match room.try_send(d) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            stats.datagrams_dropped.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

impl ParticipantTransport {
    /// Takes the datagrams waiting on the participant's own sockets (port-range mode) into
    /// `out`, a batch per system call; registers `cx` for those with none. On the shared port
    /// nothing: its datagrams come through the room's queue.
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        participant: ParticipantId,
        buffers: &mut RecvBuffers,
        out: &mut Vec<RoomDatagram>,
    ) {
        for e in &self.endpoints {
            let Some(socket) = &e.own else { continue };
            loop {
                match socket.poll_recv_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(err)) => {
                        tracing::debug!(participant, error = %err, "media socket cannot receive");
                        break;
                    }
                    Poll::Pending => break,
                }
                let got = try_recv_batch(socket, buffers, |data, remote| {
                    out.push(RoomDatagram {
                        participant,
                        local: e.announced,
                        remote,
                        data: BytesMut::from(data),
                    })
                });
                match got {
                    // A full batch: there may be more.
                    Ok(n) if n == buffers.len() => continue,
                    Ok(_) => break,
                    // Not ready after all: poll_recv_ready registers `cx` next time round.
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => continue,
                    // ICMP errors about one peer surface here; the socket is fine.
                    Err(err) => {
                        tracing::debug!(participant, error = %err, "media socket error");
                        break;
                    }
                }
            }
        }
    }
}

/// ICE credentials (RFC 8445 §5.3: ice-chars): `n` letters and digits.
fn random_ice_chars(n: usize) -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::announced;
    use std::net::SocketAddr;

    #[test]
    fn a_public_address_is_announced_alone_with_the_bound_port() {
        let a: SocketAddr = "10.0.0.5:50000".parse().unwrap();
        let b: SocketAddr = "10.0.1.5:50000".parse().unwrap();
        assert_eq!(announced(vec![a, b], None), vec![(a, a), (b, b)]);
        let public = "203.0.113.9".parse().unwrap();
        let want: SocketAddr = "203.0.113.9:50000".parse().unwrap();
        assert_eq!(announced(vec![a, b], Some(public)), vec![(a, want)]);
    }
}
