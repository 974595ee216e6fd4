//! Single-port mode: every participant's media session on one UDP port, so the firewall needs
//! one rule. Each session's transport is a [`MuxConnection`]: its datagrams arrive in an inbox
//! per local address, and it sends from the shared socket.
//!
//! Routing an arriving datagram: a STUN Binding request names the connection by its ICE
//! username fragment (chosen by us, registered here) and goes to it; everything else (DTLS,
//! SRTP, STUN responses) follows the source address. An address becomes a connection's route
//! only through a check that succeeded, in either direction: the connection's ICE agent
//! answers a check from it with a Binding success response (after verifying the request's
//! MESSAGE-INTEGRITY with the connection's password), or a Binding success response comes from
//! it carrying the transaction id of a check the connection sent there (96 random bits only
//! the path sees). webrtc-rs answers a nominating check only once its own check of the pair
//! succeeded, so browsers that nominate at once need the second way. A stranger who learns or
//! guesses a username fragment teaches no route. A connection keeps at most [`MAX_REMOTES`]
//! addresses, and a route in use is never taken by another connection. Datagrams for nobody are
//! dropped and counted.

pub mod stun;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// A datagram for one connection, and who sent it.
#[derive(Debug)]
pub struct Datagram {
    pub data: BytesMut,
    pub from: SocketAddr,
}

/// Datagrams queued for one connection's socket before new ones are dropped (as a full
/// kernel buffer would).
const INBOX: usize = 1024;

/// Addresses one connection may be reached at: the paths of its candidate pairs that passed a
/// check (a browser checks a handful). Beyond it the one heard from longest ago goes.
pub const MAX_REMOTES: usize = 8;

/// A route heard from within this long stays with its connection: another connection answering
/// a check from the same address (a spoofed source, or a NAT that reused it) does not take it.
/// ICE consent expires after 30 s without a check (RFC 7675), so a real path reused by a NAT is
/// free by then.
const ROUTE_HOLD: Duration = Duration::from_secs(30);

/// Checks in flight (sent, not yet answered) the mux remembers, for all connections; the oldest
/// is forgotten first. An ICE agent retransmits a handful of checks per pair.
const MAX_CHECKS: usize = 4096;

/// How long a check sent may be answered.
const CHECK_ANSWERED_WITHIN: Duration = Duration::from_secs(10);

type ConnId = u64;

/// A path: the shared socket's local address and the remote address.
type Remote = (IpAddr, SocketAddr);

#[derive(Debug, Clone, Copy)]
struct Route {
    conn: ConnId,
    /// When a datagram last came this way (or the route was learned).
    seen: Instant,
}

#[derive(Debug, Default)]
struct Routes {
    by_ufrag: HashMap<String, ConnId>,
    by_remote: HashMap<Remote, Route>,
    conns: HashMap<ConnId, Conn>,
    /// Checks connections sent, by transaction id: who sent it, where, when.
    checks: HashMap<[u8; 12], (ConnId, Remote, Instant)>,
    /// Their transaction ids, oldest first (an answered one stays until it comes round).
    check_order: VecDeque<[u8; 12]>,
}

#[derive(Debug, Default)]
struct Conn {
    ufrag: String,
    /// One inbox per local address the connection's ICE agent bound.
    inboxes: Vec<(IpAddr, mpsc::Sender<Datagram>)>,
    remotes: Vec<Remote>,
}

impl Routes {
    /// Connection `id` sent a check with this transaction id to `remote`.
    fn sent_check(&mut self, id: ConnId, tid: [u8; 12], remote: Remote, now: Instant) {
        if self.checks.insert(tid, (id, remote, now)).is_none() {
            self.check_order.push_back(tid);
        }
        while self.check_order.len() > MAX_CHECKS {
            if let Some(old) = self.check_order.pop_front() {
                self.checks.remove(&old);
            }
        }
    }

    /// A Binding success response with transaction id `tid` came from `remote`: the connection
    /// whose check it answers, if that check went there, lately.
    fn answered_check(&mut self, tid: [u8; 12], remote: Remote, now: Instant) -> Option<ConnId> {
        let &(id, to, at) = self.checks.get(&tid)?;
        if to != remote || now.saturating_duration_since(at) > CHECK_ANSWERED_WITHIN {
            return None;
        }
        self.checks.remove(&tid);
        self.learn(id, remote, now).then_some(id)
    }

    /// Connection `id` answered a check from `remote`: the path becomes its route, unless
    /// another live connection heard from it lately. Returns whether it did.
    fn learn(&mut self, id: ConnId, remote: Remote, now: Instant) -> bool {
        if !self.conns.contains_key(&id) {
            return false;
        }
        if let Some(route) = self.by_remote.get_mut(&remote) {
            if route.conn == id {
                route.seen = now;
                return true;
            }
            let held = self.conns.contains_key(&route.conn)
                && now.saturating_duration_since(route.seen) < ROUTE_HOLD;
            if held {
                return false;
            }
            let old = route.conn;
            if let Some(c) = self.conns.get_mut(&old) {
                c.remotes.retain(|r| *r != remote);
            }
        }
        self.by_remote.insert(
            remote,
            Route {
                conn: id,
                seen: now,
            },
        );
        let Some(c) = self.conns.get_mut(&id) else {
            return false;
        };
        c.remotes.push(remote);
        if c.remotes.len() > MAX_REMOTES {
            let by_remote = &self.by_remote;
            let seen = |r: &Remote| by_remote.get(r).map(|route| route.seen);
            if let Some(stale) = c.remotes.iter().copied().min_by_key(seen) {
                c.remotes.retain(|r| *r != stale);
                if self.by_remote.get(&stale).is_some_and(|r| r.conn == id) {
                    self.by_remote.remove(&stale);
                }
            }
        }
        true
    }
}

/// What the receive loops share with the mux.
#[derive(Debug, Default)]
struct Shared {
    routes: Mutex<Routes>,
    /// Datagrams that matched no connection, or found its inbox full.
    dropped: AtomicU64,
}

impl Shared {
    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a datagram that arrived on `local` to its connection.
    fn route(&self, local: IpAddr, from: SocketAddr, data: &[u8]) {
        let inbox = {
            let mut routes = self.routes();
            // A check goes to the connection it names, whose agent verifies it; it teaches no
            // route by itself.
            let by_ufrag = stun::binding_request_ufrag(data)
                .and_then(|ufrag| routes.by_ufrag.get(ufrag).copied());
            let answered = if by_ufrag.is_none() && stun::is_binding_success(data) {
                stun::transaction_id(data)
                    .and_then(|tid| routes.answered_check(tid, (local, from), Instant::now()))
            } else {
                None
            };
            let id = by_ufrag.or(answered).or_else(|| {
                routes.by_remote.get_mut(&(local, from)).map(|route| {
                    route.seen = Instant::now();
                    route.conn
                })
            });
            id.and_then(|id| routes.conns.get(&id)).and_then(|c| {
                c.inboxes
                    .iter()
                    .find(|(ip, _)| *ip == local)
                    .or_else(|| c.inboxes.first())
                    .map(|(_, tx)| tx.clone())
            })
        };
        let delivered = inbox.is_some_and(|tx| {
            tx.try_send(Datagram {
                data: BytesMut::from(data),
                from,
            })
            .is_ok()
        });
        if !delivered {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The shared port: one socket per local address, and the routes to the connections on it.
#[derive(Debug)]
pub struct UdpMux {
    port: u16,
    sockets: Vec<(IpAddr, Arc<UdpSocket>)>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    receivers: Vec<tokio::task::AbortHandle>,
}

impl Drop for UdpMux {
    fn drop(&mut self) {
        for r in &self.receivers {
            r.abort();
        }
    }
}

impl UdpMux {
    /// Binds `port` on `ip` (a wildcard: on each usable interface address, as the
    /// PeerConnections would) and starts receiving. Must be called inside a tokio runtime.
    pub fn bind(ip: IpAddr, port: u16) -> io::Result<Arc<UdpMux>> {
        let mut sockets = Vec::new();
        let mut bound_port = port;
        for local in local_addresses(ip) {
            let std = std::net::UdpSocket::bind(SocketAddr::new(local, bound_port))?;
            std.set_nonblocking(true)?;
            // Port 0 (tests): every address shares the port the first one got.
            bound_port = std.local_addr()?.port();
            sockets.push((local, Arc::new(UdpSocket::from_std(std)?)));
        }
        let shared = Arc::new(Shared::default());
        let receivers = sockets
            .iter()
            .map(|(local, socket)| {
                tokio::spawn(receive(*local, socket.clone(), shared.clone())).abort_handle()
            })
            .collect();
        Ok(Arc::new(UdpMux {
            port: bound_port,
            sockets,
            shared,
            next_id: AtomicU64::new(1),
            receivers,
        }))
    }

    /// The shared port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections registered now.
    pub fn connections(&self) -> usize {
        self.shared.routes().conns.len()
    }

    /// Paths (local address, remote address) that route to a connection now.
    pub fn routes(&self) -> usize {
        self.shared.routes().by_remote.len()
    }

    /// Datagrams dropped so far: for no known connection, or beyond a full inbox.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Registers a connection whose ICE username fragment is `ufrag`; it leaves the mux when
    /// the returned handle is dropped.
    pub fn connect(self: &Arc<Self>, ufrag: &str) -> MuxConnection {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut routes = self.shared.routes();
        routes.by_ufrag.insert(ufrag.to_owned(), id);
        routes.conns.insert(
            id,
            Conn {
                ufrag: ufrag.to_owned(),
                ..Conn::default()
            },
        );
        MuxConnection {
            mux: self.clone(),
            id,
        }
    }

    /// A new inbox for connection `id`'s datagrams arriving on `local` (replacing an earlier
    /// one).
    fn inbox(&self, id: ConnId, local: IpAddr) -> mpsc::Receiver<Datagram> {
        let (tx, rx) = mpsc::channel(INBOX);
        if let Some(c) = self.shared.routes().conns.get_mut(&id) {
            c.inboxes.retain(|(ip, _)| *ip != local);
            c.inboxes.push((local, tx));
        }
        rx
    }

    /// The shared socket bound to `local`.
    fn socket(&self, local: IpAddr) -> Option<&Arc<UdpSocket>> {
        self.sockets
            .iter()
            .find(|(ip, _)| *ip == local)
            .map(|(_, s)| s)
    }
}

/// One connection's place on the shared port.
#[derive(Debug)]
pub struct MuxConnection {
    mux: Arc<UdpMux>,
    id: ConnId,
}

impl MuxConnection {
    /// The shared port.
    pub fn port(&self) -> u16 {
        self.mux.port()
    }

    /// The addresses of the shared sockets (one per local address), which this connection's
    /// host candidates name.
    pub fn locals(&self) -> Vec<SocketAddr> {
        self.mux
            .sockets
            .iter()
            .map(|(ip, _)| SocketAddr::new(*ip, self.mux.port))
            .collect()
    }

    /// This connection's datagrams arriving on `local` (replacing an earlier inbox).
    pub fn inbox(&self, local: IpAddr) -> mpsc::Receiver<Datagram> {
        self.mux.inbox(self.id, local)
    }

    /// The shared socket to send `data` to `to` from, on `local`; what it teaches the mux is
    /// learned now. A Binding success response (the session's ICE agent verified a check from
    /// there) makes that path the connection's route; a Binding request (a check of ours) is
    /// remembered, so that its answer does.
    pub fn sending(&self, local: IpAddr, to: SocketAddr, data: &[u8]) -> Option<Arc<UdpSocket>> {
        let socket = self.mux.socket(local)?.clone();
        let remote = (local, to);
        if stun::is_binding_success(data) {
            if !self
                .mux
                .shared
                .routes()
                .learn(self.id, remote, Instant::now())
            {
                tracing::debug!(destination = %to, "a route held by another connection stays with it");
            }
        } else if stun::is_binding_request(data)
            && let Some(tid) = stun::transaction_id(data)
        {
            self.mux
                .shared
                .routes()
                .sent_check(self.id, tid, remote, Instant::now());
        }
        Some(socket)
    }
}

impl Drop for MuxConnection {
    fn drop(&mut self) {
        let mut routes = self.mux.shared.routes();
        if let Some(c) = routes.conns.remove(&self.id) {
            if routes.by_ufrag.get(&c.ufrag) == Some(&self.id) {
                routes.by_ufrag.remove(&c.ufrag);
            }
            for r in c.remotes {
                if routes
                    .by_remote
                    .get(&r)
                    .is_some_and(|route| route.conn == self.id)
                {
                    routes.by_remote.remove(&r);
                }
            }
        }
    }
}

/// The addresses to bind for `ip`: itself, or for a wildcard each usable interface address of
/// its family (not loopback, not link-local), or the wildcard when there is none.
pub(crate) fn local_addresses(ip: IpAddr) -> Vec<IpAddr> {
    if !ip.is_unspecified() {
        return vec![ip];
    }
    let mut found: Vec<IpAddr> = Vec::new();
    for interface in rtc::shared::ifaces::ifaces().unwrap_or_default() {
        let Some(addr) = interface.addr else { continue };
        let a = addr.ip();
        let link_local = match a {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => v6.is_unicast_link_local(),
        };
        if a.is_ipv4() == ip.is_ipv4()
            && !a.is_loopback()
            && !a.is_unspecified()
            && !link_local
            && !found.contains(&a)
        {
            found.push(a);
        }
    }
    if found.is_empty() {
        found.push(ip);
    }
    found
}

/// Reads the shared socket on `local`, a batch per system call, and routes each datagram.
async fn receive(local: IpAddr, socket: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut buffers = udp_batch::RecvBuffers::new(udp_batch::BATCH, 2048);
    loop {
        let got = udp_batch::recv_batch(&socket, &mut buffers, |data, from| {
            shared.route(local, from, data)
        })
        .await;
        match got {
            Ok(_) => {}
            // ICMP errors about one peer surface here; the socket is fine.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                tracing::error!(%local, error = %e, "the shared UDP port cannot receive");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests;
