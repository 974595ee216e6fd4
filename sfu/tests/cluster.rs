//! sfu nodes as their own processes in a cluster on a real NATS server (nats-server with
//! JetStream, on loopback, a temporary store): a room's home killed with kill -9, and the room
//! going on at another node with its members there, with real clients over WebSocket.

#[path = "../../signaling/client/tests/common/mod.rs"]
mod common;
mod process;

use std::time::{Duration, Instant};

use common::nats::Nats;
use common::{Seen, until, until_chat};
use process::{Running, http, start_sfu};
use signaling_client::{AppMessage, Client, ClientConfig, Reconnect};
use signaling_token::{self as token, Claims};

const SECRET: &str = "a cluster's shared token secret";
const ADMIN: &str = "an admin token of sixteen bytes or more";

fn node(nats: &Nats, name: &str, ports: u16) -> Running {
    let range_min = ports.to_string();
    let range_max = (ports + 20).to_string();
    start_sfu(&[
        "--cluster",
        &nats.url,
        "--node-id",
        name,
        "--token-secret",
        SECRET,
        "--admin-token",
        ADMIN,
        "--udp-port-min",
        &range_min,
        "--udp-port-max",
        &range_max,
    ])
}

/// A client at `node` that reconnects by itself, to the `others` in turn.
async fn client(node: &Running, others: &[&Running], room: &str, identity: &str) -> Client {
    let token = token::mint(
        &Claims::new(room, identity, Duration::from_secs(600)),
        SECRET.as_bytes(),
    )
    .expect("mint");
    let mut config = ClientConfig::new(format!("ws://{}/ws", node.addr), room, token);
    config.reconnect = Some(Reconnect {
        first_delay: Duration::from_millis(100),
        ..Reconnect::default()
    });
    config.other_urls = others
        .iter()
        .map(|n| format!("ws://{}/ws", n.addr))
        .collect();
    Client::connect(config).await.expect("connect")
}

/// Which of `nodes` is home to `room` (the one whose admin API lists it).
async fn home_of(nodes: &[&Running], room: &str) -> usize {
    let bearer = format!("Bearer {ADMIN}");
    for (i, n) in nodes.iter().enumerate() {
        let (_, body) = http(
            &n.addr,
            "GET",
            "/admin/rooms",
            &[("Authorization", &bearer)],
        )
        .await;
        if body.contains(&format!("\"name\":\"{room}\"")) {
            return i;
        }
    }
    panic!("no node is home to {room}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_whose_home_is_killed_goes_on_at_another_node_with_the_same_group() {
    let nats = Nats::start();
    let nodes = [
        node(&nats, "n1", 52000),
        node(&nats, "n2", 52100),
        node(&nats, "n3", 52200),
    ];
    // Every node has said it is alive, and has been connected longer than an entry lives (a
    // node that has just connected takes nobody for gone before their entries expire).
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let mut alice = client(&nodes[0], &[&nodes[1], &nodes[2]], "standup", "alice").await;
    let mut sa = Seen::default();
    until(&mut alice, &mut sa, |s| s.roster.len() == 1).await;
    let mut bob = client(&nodes[1], &[&nodes[2], &nodes[0]], "standup", "bob").await;
    let mut carol = client(&nodes[2], &[&nodes[0], &nodes[1]], "standup", "carol").await;
    let (mut sb, mut sc) = (Seen::default(), Seen::default());
    until(&mut carol, &mut sc, |s| s.roster.len() == 3).await;
    until(&mut bob, &mut sb, |s| s.roster.len() == 3).await;
    until(&mut alice, &mut sa, |s| s.roster.len() == 3).await;
    let (epoch, safety) = (sc.epoch, sc.safety_number.clone());
    let home = home_of(&[&nodes[0], &nodes[1], &nodes[2]], "standup").await;
    let [mut a, mut b, mut c] = nodes.map(Some);
    let mut survivors: Vec<(Client, Seen)> = Vec::new();
    let mut clients = [Some((alice, sa)), Some((bob, sb)), Some((carol, sc))];
    for (i, c) in clients.iter_mut().enumerate() {
        if i != home {
            survivors.push(c.take().expect("client"));
        }
    }
    let (mut stranded, mut ss) = clients[home].take().expect("the home's own participant");
    let stranded_id = stranded.participant_id();
    let survivor_ids: Vec<u64> = survivors.iter().map(|(c, _)| c.participant_id()).collect();
    // kill -9 the home, with its participant on it.
    let killed = Instant::now();
    let victim = [&mut a, &mut b, &mut c][home].take().expect("node");
    let _ = std::process::Command::new("kill")
        .args(["-9", &victim.pid().to_string()])
        .status();
    drop(victim);
    // The two on the other nodes stay members of the same group, on their connections: the
    // next epoch is the old group's next (at the room's new home, rebuilt from its log).
    let (first, rest) = survivors.split_at_mut(1);
    let (c1, s1) = &mut first[0];
    until(c1, s1, |s| s.epoch > epoch).await;
    let recovered = killed.elapsed();
    assert_eq!(
        s1.epoch,
        epoch.map(|e| e + 1),
        "the group went on from epoch {epoch:?}: not a new group"
    );
    assert_ne!(s1.safety_number, safety, "a new epoch");
    // The dead node's participant reconnects to another node by itself and is back in the
    // same group: all three at one epoch, one safety number.
    until(&mut stranded, &mut ss, |s| {
        s.roster.len() == 3 && s.epoch > epoch
    })
    .await;
    assert_ne!(
        stranded.participant_id(),
        stranded_id,
        "joined again, at another node"
    );
    let back_at = ss.epoch;
    // (The new home may have added it back in the commit that removed its old leaf.)
    until(c1, s1, |s| s.roster.len() == 3 && s.epoch >= back_at).await;
    let (c2, s2) = &mut rest[0];
    until(c2, s2, |s| s.roster.len() == 3 && s.epoch >= back_at).await;
    for s in [&*s1, &*s2] {
        assert_eq!((s.epoch, &s.safety_number), (ss.epoch, &ss.safety_number));
    }
    let back = killed.elapsed();
    assert_eq!(
        survivors
            .iter()
            .map(|(c, _)| c.participant_id())
            .collect::<Vec<_>>(),
        survivor_ids,
        "the survivors never reconnected"
    );
    for s in survivors.iter().map(|(_, s)| s).chain([&ss]) {
        assert!(s.failures.is_empty(), "{:?}", s.failures);
    }
    // And they read each other.
    survivors[0]
        .0
        .send_app(AppMessage::Chat {
            text: "still here".into(),
        })
        .expect("send");
    until_chat(&mut survivors[1].0, "still here").await;
    until_chat(&mut stranded, "still here").await;
    eprintln!(
        "from kill -9: the group's next epoch at the new home {recovered:?}, everyone back {back:?}"
    );
}
