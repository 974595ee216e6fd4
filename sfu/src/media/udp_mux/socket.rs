//! The webrtc-rs side of the shared port: a [`Runtime`] that is tokio's in everything but UDP
//! sockets. The PeerConnection binds a socket of its own as usual (its host candidate's
//! address; the SFU announces the shared port instead); [`MuxRuntime::wrap_udp_socket`] closes
//! it and hands back a view of the shared socket: sends go out from the shared port, receives
//! come from this connection's inbox. A Binding success response it sends teaches the mux the
//! route to its destination; a Binding request it sends is remembered, so that its answer does.

use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    TokioRuntime, Transmit,
};

use super::{ConnId, Datagram, Shared, UdpMux, stun};

/// One connection's runtime on the shared port.
#[derive(Debug)]
pub struct MuxRuntime {
    mux: Arc<UdpMux>,
    id: ConnId,
    tokio: TokioRuntime,
}

impl MuxRuntime {
    pub(super) fn new(mux: Arc<UdpMux>, id: ConnId) -> Self {
        MuxRuntime {
            mux,
            id,
            tokio: TokioRuntime,
        }
    }
}

impl Runtime for MuxRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.tokio.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        self.tokio.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, own: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let local = own.local_addr()?;
        drop(own);
        let (route_ip, shared) = self.mux.socket_for(local.ip()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("the shared UDP port has no socket for {}", local.ip()),
            )
        })?;
        Ok(Arc::new(MuxSocket {
            local,
            route_ip,
            id: self.id,
            routes: self.mux.shared.clone(),
            shared,
            inbox: Mutex::new(self.mux.inbox(self.id, local.ip())),
        }))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.tokio.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.tokio.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.tokio.resolve_host(host)
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.tokio.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.tokio.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.tokio.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.tokio.yield_now()
    }

    fn name(&self) -> &'static str {
        "tokio (shared UDP port)"
    }
}

/// A connection's view of the shared socket.
#[derive(Debug)]
struct MuxSocket {
    /// The address the PeerConnection bound (and keys this socket by).
    local: SocketAddr,
    /// The shared socket's address, which keys the routes through it.
    route_ip: IpAddr,
    id: ConnId,
    routes: Arc<Shared>,
    shared: Arc<UdpSocket>,
    inbox: Mutex<mpsc::Receiver<Datagram>>,
}

impl AsyncUdpSocket for MuxSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        let remote = (self.route_ip, transmit.destination);
        if stun::is_binding_success(transmit.contents) {
            // The agent verified a check from there: that path is ours.
            if !self.routes.routes().learn(self.id, remote, Instant::now()) {
                tracing::debug!(destination = %transmit.destination, "a route held by another connection stays with it");
            }
        } else if stun::is_binding_request(transmit.contents)
            && let Some(tid) = stun::transaction_id(transmit.contents)
        {
            // A check of ours: its answer, from there, will show the path works.
            self.routes
                .routes()
                .sent_check(self.id, tid, remote, Instant::now());
        }
        // One datagram per send: `max_gso_segments` is 1, so no caller batches.
        self.shared
            .poll_send_to(cx, transmit.contents, transmit.destination)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        let slots = bufs.len().min(meta.len());
        if slots == 0 {
            return Poll::Ready(Ok(0));
        }
        let first = match inbox.poll_recv(cx) {
            Poll::Ready(Some(d)) => d,
            Poll::Ready(None) => {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the connection left the shared UDP port",
                )));
            }
            Poll::Pending => return Poll::Pending,
        };
        let mut filled = 0;
        let mut next = Some(first);
        while let Some(d) = next {
            let len = d.data.len().min(bufs[filled].len());
            bufs[filled][..len].copy_from_slice(&d.data[..len]);
            let mut m = RecvMeta::default();
            m.addr = d.from;
            m.len = len;
            m.stride = len.max(1);
            m.dst_ip = Some(self.local.ip());
            meta[filled] = m;
            filled += 1;
            next = if filled < slots {
                inbox.try_recv().ok()
            } else {
                None
            };
        }
        Poll::Ready(Ok(filled))
    }
}
