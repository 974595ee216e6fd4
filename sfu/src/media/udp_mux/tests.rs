//! Route learning on the shared port: the rules, and the datagrams on a real socket.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Conn, Datagram, MAX_REMOTES, ROUTE_HOLD, Remote, Routes, UdpMux};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn remote(port: u16) -> Remote {
    (
        LOCAL,
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), port),
    )
}

fn routes_with(conns: &[u64]) -> Routes {
    let mut routes = Routes::default();
    for &id in conns {
        routes.conns.insert(id, Conn::default());
    }
    routes
}

fn owner(routes: &Routes, r: Remote) -> Option<u64> {
    routes.by_remote.get(&r).map(|route| route.conn)
}

#[test]
fn a_route_in_use_stays_with_its_connection() {
    let mut routes = routes_with(&[1, 2]);
    let t0 = Instant::now();
    assert!(routes.learn(1, remote(1000), t0));
    // Connection 2 answers a check that claims the same source (spoofed): refused while
    // connection 1 is heard from there.
    assert!(!routes.learn(2, remote(1000), t0 + Duration::from_secs(5)));
    assert_eq!(owner(&routes, remote(1000)), Some(1));
    // Silent for longer than consent lasts: the address may belong to someone else now.
    assert!(routes.learn(2, remote(1000), t0 + ROUTE_HOLD + Duration::from_secs(1)));
    assert_eq!(owner(&routes, remote(1000)), Some(2));
    assert!(routes.conns[&1].remotes.is_empty());
    // A connection that left holds nothing.
    assert!(routes.learn(1, remote(2000), t0));
    routes.conns.remove(&1);
    assert!(routes.learn(2, remote(2000), t0));
    // Nor does one that never registered learn anything.
    assert!(!routes.learn(9, remote(3000), t0));
    assert_eq!(owner(&routes, remote(3000)), None);
}

#[test]
fn a_connection_keeps_at_most_a_few_addresses_and_drops_the_quietest() {
    let mut routes = routes_with(&[1]);
    let t0 = Instant::now();
    for i in 0..MAX_REMOTES as u16 {
        assert!(routes.learn(
            1,
            remote(1000 + i),
            t0 + Duration::from_millis(u64::from(i))
        ));
    }
    // The first path is the one in use: heard from again.
    routes.learn(1, remote(1000), t0 + Duration::from_secs(1));
    for i in 0..20u16 {
        routes.learn(
            1,
            remote(5000 + i),
            t0 + Duration::from_secs(2 + u64::from(i)),
        );
    }
    assert_eq!(routes.conns[&1].remotes.len(), MAX_REMOTES);
    assert_eq!(routes.by_remote.len(), MAX_REMOTES);
    assert_eq!(
        owner(&routes, remote(1000)),
        None,
        "evicted by newer paths at last"
    );
    assert_eq!(owner(&routes, remote(5019)), Some(1));
}

/// A datagram in `inbox` within a short wait, and who sent it.
async fn receive(inbox: &mut mpsc::Receiver<Datagram>) -> Option<(Vec<u8>, SocketAddr)> {
    let got = tokio::time::timeout(Duration::from_millis(300), inbox.recv()).await;
    match got {
        Ok(Some(d)) => Some((d.data.to_vec(), d.from)),
        _ => None,
    }
}

fn binding(kind: [u8; 2], username: &str) -> Vec<u8> {
    let mut attr = 0x0006u16.to_be_bytes().to_vec();
    attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attr.extend_from_slice(username.as_bytes());
    attr.resize(4 + username.len().div_ceil(4) * 4, 0);
    let mut m = kind.to_vec();
    m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    m.extend_from_slice(&[3; 12]);
    m.extend_from_slice(&attr);
    m
}

#[tokio::test]
async fn an_address_routes_only_after_its_check_is_answered() {
    let mux = UdpMux::bind(LOCAL, 0).expect("bind");
    let port = mux.port();
    let connection = mux.connect("sfuFrag");
    let mut inbox = connection.inbox(LOCAL);
    let peer = tokio::net::UdpSocket::bind((LOCAL, 0)).await.expect("bind");
    let peer_addr = peer.local_addr().expect("addr");

    // A check naming the connection reaches it (its agent decides), and teaches nothing.
    let check = binding([0, 1], "sfuFrag:peerFrag");
    peer.send_to(&check, (LOCAL, port)).await.expect("send");
    let (data, from) = receive(&mut inbox).await.expect("the check arrives");
    assert_eq!((data, from), (check, peer_addr));
    assert_eq!(mux.routes(), 0);
    let dropped = mux.dropped();
    peer.send_to(b"\x80dtls or srtp", (LOCAL, port))
        .await
        .expect("send");
    assert!(receive(&mut inbox).await.is_none(), "no route yet");
    assert_eq!(mux.dropped(), dropped + 1);

    // The agent answers it: from now on the peer's address is the connection's.
    let success = binding([1, 1], "");
    let shared = connection
        .sending(LOCAL, peer_addr, &success)
        .expect("the shared socket");
    shared.send_to(&success, peer_addr).await.expect("send");
    let mut buf = [0u8; 64];
    let (n, _) = peer.recv_from(&mut buf).await.expect("the answer arrives");
    assert_eq!(&buf[..n], &success[..]);
    assert_eq!(mux.routes(), 1);
    peer.send_to(b"\x80media", (LOCAL, port))
        .await
        .expect("send");
    let (data, _) = receive(&mut inbox).await.expect("routed");
    assert_eq!(data, b"\x80media");

    drop(inbox);
    drop(connection);
    assert_eq!(mux.routes(), 0, "a connection that leaves takes its routes");
}

#[test]
fn a_check_answered_from_where_it_went_teaches_the_route_and_nothing_else_does() {
    let mut routes = routes_with(&[1, 2]);
    let t0 = Instant::now();
    routes.sent_check(1, [1; 12], remote(1000), t0);
    // An answer with another transaction id, or from another address, or too late: nothing.
    assert_eq!(routes.answered_check([2; 12], remote(1000), t0), None);
    assert_eq!(routes.answered_check([1; 12], remote(1001), t0), None);
    assert_eq!(
        routes.answered_check([1; 12], remote(1000), t0 + Duration::from_secs(11)),
        None
    );
    assert_eq!(owner(&routes, remote(1000)), None);
    routes.sent_check(1, [3; 12], remote(1000), t0);
    assert_eq!(routes.answered_check([3; 12], remote(1000), t0), Some(1));
    assert_eq!(owner(&routes, remote(1000)), Some(1));
    // Used once.
    assert_eq!(routes.answered_check([3; 12], remote(1000), t0), None);
    // A check of connection 2 to an address connection 1 uses does not take it.
    routes.sent_check(2, [4; 12], remote(1000), t0);
    assert_eq!(routes.answered_check([4; 12], remote(1000), t0), None);
    assert_eq!(owner(&routes, remote(1000)), Some(1));
}

#[test]
fn the_checks_remembered_are_bounded() {
    let mut routes = routes_with(&[1]);
    let t0 = Instant::now();
    for i in 0..(super::MAX_CHECKS as u32 + 100) {
        let mut tid = [0u8; 12];
        tid[..4].copy_from_slice(&i.to_be_bytes());
        routes.sent_check(1, tid, remote(1000), t0);
    }
    assert_eq!(routes.checks.len(), super::MAX_CHECKS);
    assert_eq!(routes.check_order.len(), super::MAX_CHECKS);
    assert_eq!(
        routes.answered_check([0; 12], remote(1000), t0),
        None,
        "the oldest is forgotten"
    );
}
