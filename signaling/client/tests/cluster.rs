//! Nodes of a cluster on a real NATS server (nats-server with JetStream, on loopback): rooms
//! placed by load, and participants connected to different nodes in one room, with real
//! clients over WebSocket.

mod common;

use std::time::Duration;

use common::nats::Nats;
use common::{Seen, TestServer, start_node, until};
use signaling_client::{AppMessage, Event};
use signaling_server::SignalingConfig;

async fn three_nodes(nats: &Nats) -> Vec<TestServer> {
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        nodes.push(start_node(&nats.url, name, SignalingConfig::default()).await);
    }
    // Each has said it is alive.
    tokio::time::sleep(Duration::from_millis(600)).await;
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_participants_on_different_nodes_meet_in_one_room_and_read_each_other() {
    let nats = Nats::start();
    let nodes = three_nodes(&nats).await;
    let mut alice = nodes[0].client("standup", "alice").await;
    let mut sa = Seen::default();
    until(&mut alice, &mut sa, |s| s.epoch == Some(0)).await;
    let mut bob = nodes[1].client("standup", "bob").await;
    let mut sb = Seen::default();
    until(&mut bob, &mut sb, |s| s.roster.len() == 2).await;
    until(&mut alice, &mut sa, |s| s.roster.len() == 2).await;
    assert_eq!(sa.epoch, sb.epoch);
    assert_eq!(sa.safety_number, sb.safety_number, "one group");
    assert!(
        sa.failures.is_empty() && sb.failures.is_empty(),
        "{sa:?} {sb:?}"
    );
    // Each reads what the other says (MLS application messages, through the room's home).
    alice
        .send_app(AppMessage::Chat {
            text: "hello from a".into(),
        })
        .expect("send");
    bob.send_app(AppMessage::Chat {
        text: "hello from b".into(),
    })
    .expect("send");
    common::until_chat(&mut bob, "hello from a").await;
    common::until_chat(&mut alice, "hello from b").await;
    // One room in the cluster, on one home; both nodes count their participant.
    let homes: usize = nodes.iter().map(|n| n.server.stats().rooms).sum();
    assert_eq!(homes, 1);
    assert_eq!(nodes[0].server.stats().participants, 1);
    assert_eq!(nodes[1].server.stats().participants, 1);
    // Bob leaves: alice sees him removed in the next epoch.
    bob.leave();
    until(&mut alice, &mut sa, |s| s.roster.len() == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_rooms_spread_over_three_nodes_by_load() {
    let nats = Nats::start();
    let nodes = three_nodes(&nats).await;
    let mut clients = Vec::new();
    for i in 0..20 {
        // Every join through the first node: placement, not the entry point, decides.
        let mut c = nodes[0].client(&format!("room-{i}"), "alice").await;
        let mut seen = Seen::default();
        until(&mut c, &mut seen, |s| s.epoch == Some(0)).await;
        clients.push(c);
    }
    let per_node: Vec<usize> = nodes.iter().map(|n| n.server.stats().rooms).collect();
    assert_eq!(per_node.iter().sum::<usize>(), 20, "{per_node:?}");
    assert!(
        per_node.iter().all(|&n| (6..=7).contains(&n)),
        "rooms per node: {per_node:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiners_on_three_nodes_at_once_converge_on_one_group() {
    // Commits race from members on every node; the one delivery service, at the room's home,
    // takes the first valid one per epoch: one epoch sequence, one safety number.
    let nats = Nats::start();
    let nodes = three_nodes(&nats).await;
    let joins = (0..12).map(|i| {
        let url = nodes[i % 3].url.clone();
        tokio::spawn(async move {
            let mut client =
                signaling_client::Client::connect(signaling_client::ClientConfig::new(
                    url,
                    "big",
                    common::token_for("big", &format!("bot{i}"), 600),
                ))
                .await
                .expect("connect");
            let mut seen = Seen::default();
            until(&mut client, &mut seen, |s| s.roster.len() == 12).await;
            (client, seen)
        })
    });
    let results: Vec<_> = futures_util::future::join_all(joins)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let (_, first) = &results[0];
    for (_, seen) in &results {
        assert_eq!(seen.epoch, first.epoch);
        assert_eq!(seen.safety_number, first.safety_number);
        assert_eq!(seen.roster, first.roster);
        assert!(seen.failures.is_empty(), "{:?}", seen.failures);
    }
    let connected: Vec<usize> = nodes
        .iter()
        .map(|n| n.server.stats().participants)
        .collect();
    assert_eq!(connected, vec![4, 4, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_leaves_rooms_working_and_nodes_reconnect() {
    let mut nats = Nats::start();
    let nodes = three_nodes(&nats).await;
    let mut alice = nodes[0].client("standup", "alice").await;
    let mut sa = Seen::default();
    until(&mut alice, &mut sa, |s| s.epoch == Some(0)).await;
    let mut bob = nodes[1].client("standup", "bob").await;
    let mut sb = Seen::default();
    until(&mut bob, &mut sb, |s| s.roster.len() == 2).await;
    until(&mut alice, &mut sa, |s| s.roster.len() == 2).await;
    nats.restart();
    // Nodes reconnect by themselves; the room goes on: a newcomer on the third node joins it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut carol = nodes[2].client("standup", "carol").await;
    let mut sc = Seen::default();
    until(&mut carol, &mut sc, |s| s.roster.len() == 3).await;
    until(&mut alice, &mut sa, |s| s.roster.len() == 3).await;
    until(&mut bob, &mut sb, |s| s.roster.len() == 3).await;
    assert_eq!(sa.safety_number, sc.safety_number);
    assert_eq!(sb.safety_number, sc.safety_number);
    assert!(sa.failures.is_empty() && sb.failures.is_empty() && sc.failures.is_empty());
    // New rooms are placed again.
    let mut dave = nodes[1].client("retro", "dave").await;
    let mut sd = Seen::default();
    until(&mut dave, &mut sd, |s| s.epoch == Some(0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_nats_hands_its_rooms_over_and_takes_no_new_ones() {
    let nats = Nats::start();
    let cut = common::nats::Cut::to(&nats).await;
    // n0 sorts first: the room's first join (at n0) places it there.
    let n0 = start_node(&cut.url, "n0", SignalingConfig::default()).await;
    let n1 = start_node(&nats.url, "n1", SignalingConfig::default()).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut alice = n0.client("standup", "alice").await;
    let mut sa = Seen::default();
    until(&mut alice, &mut sa, |s| s.epoch == Some(0)).await;
    let mut bob = n1.client("standup", "bob").await;
    let mut sb = Seen::default();
    until(&mut bob, &mut sb, |s| s.roster.len() == 2).await;
    let before = sb.epoch.expect("epoch");
    assert_eq!(n0.server.stats().rooms, 1, "n0 is the room's home");
    cut.cut();
    // Bob's room moves to n1, rebuilt from its log: the same group, without alice.
    until(&mut bob, &mut sb, |s| s.roster.len() == 1).await;
    assert_eq!(sb.epoch, Some(before + 1), "the group went on: {sb:?}");
    assert!(sb.failures.is_empty(), "{:?}", sb.failures);
    // n0 let its room go, and takes no new one while it cannot reach the cluster.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while n0.server.stats().rooms > 0 {
        assert!(tokio::time::Instant::now() < deadline, "n0 kept its room");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = signaling_client::Client::connect(signaling_client::ClientConfig::new(
        n0.url.clone(),
        "retro",
        common::token_for("retro", "carol", 600),
    ))
    .await;
    assert!(
        matches!(
            refused,
            Err(signaling_client::ClientError::Refused {
                code: signaling_client::ErrorCode::Unavailable,
                ..
            })
        ),
        "{refused:?}"
    );
    drop(alice);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_home_hands_its_room_over_and_the_members_elsewhere_stay_in_it() {
    let nats = Nats::start();
    let nodes = three_nodes(&nats).await;
    // The first join at "a" places the room there (every node equal: the first by name).
    let mut alice = nodes[0].client("standup", "alice").await;
    let mut sa = Seen::default();
    until(&mut alice, &mut sa, |s| s.epoch == Some(0)).await;
    let mut bob = nodes[1].client("standup", "bob").await;
    let mut carol = nodes[2].client("standup", "carol").await;
    let (mut sb, mut sc) = (Seen::default(), Seen::default());
    until(&mut bob, &mut sb, |s| s.roster.len() == 3).await;
    until(&mut carol, &mut sc, |s| s.roster.len() == 3).await;
    assert_eq!(nodes[0].server.stats().rooms, 1, "a is the room's home");
    let before = sb.epoch.expect("epoch");
    let (bob_id, carol_id) = (bob.participant_id(), carol.participant_id());
    nodes[0].server.drain().await;
    // Alice, on the drained node, is told to go (and would reconnect elsewhere); bob and carol
    // stay, on their connections, in the same group at the room's new home.
    until(&mut bob, &mut sb, |s| s.roster.len() == 2).await;
    until(&mut carol, &mut sc, |s| s.roster.len() == 2).await;
    assert_eq!(sb.epoch, Some(before + 1), "{sb:?}");
    assert_eq!(sb.safety_number, sc.safety_number);
    assert_eq!(
        (bob.participant_id(), carol.participant_id()),
        (bob_id, carol_id)
    );
    assert_eq!(nodes[0].server.stats().rooms, 0);
    assert_eq!(
        nodes[1].server.stats().rooms + nodes[2].server.stats().rooms,
        1,
        "one new home"
    );
    // Alice comes back through another node, into the same group.
    drop(alice);
    let mut alice = nodes[1].client("standup", "alice").await;
    let mut sa = Seen::default();
    until(&mut alice, &mut sa, |s| s.roster.len() == 3).await;
    until(&mut bob, &mut sb, |s| s.roster.len() == 3).await;
    assert_eq!(sa.safety_number, sb.safety_number);
    assert!(
        sb.failures.is_empty() && sc.failures.is_empty(),
        "{sb:?} {sc:?}"
    );
    // Nothing was said to bob or carol about reconnecting: they never left.
    while let Some(event) = bob.try_next_event() {
        assert!(!matches!(event, Event::Reconnecting { .. }), "{event:?}");
    }
}

/// Events until the connection closes; its reason.
async fn closed(client: &mut signaling_client::Client) -> String {
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        match tokio::time::timeout_at(deadline, client.next_event())
            .await
            .expect("in time")
        {
            Some(Event::Closed { reason }) => return reason,
            Some(_) => {}
            None => return "closed".into(),
        }
    }
}

/// A join's refusal code, with this token, at `node`.
async fn refused(
    node: &TestServer,
    room: &str,
    token: String,
) -> Option<signaling_client::ErrorCode> {
    match signaling_client::Client::connect(signaling_client::ClientConfig::new(
        node.url.clone(),
        room,
        token,
    ))
    .await
    {
        Err(signaling_client::ClientError::Refused { code, .. }) => Some(code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administration_at_any_node_reaches_the_room_home_and_the_participant_node() {
    let nats = Nats::start();
    let nodes = three_nodes(&nats).await;
    let mut alice = nodes[0].client("standup", "alice").await;
    let mut sa = Seen::default();
    until(&mut alice, &mut sa, |s| s.epoch == Some(0)).await;
    let bob_token = common::token_for("standup", "bob", 600);
    let mut bob = signaling_client::Client::connect(signaling_client::ClientConfig::new(
        nodes[1].url.clone(),
        "standup",
        bob_token.clone(),
    ))
    .await
    .expect("bob");
    let mut mallory = nodes[1].client("standup", "mallory").await;
    until(&mut alice, &mut sa, |s| s.roster.len() == 3).await;
    // The third node is neither the room's home nor anyone's: it sees the whole cluster.
    let admin = &nodes[2].server;
    let rooms = admin.rooms().await;
    assert_eq!(rooms.len(), 1, "{rooms:?}");
    assert_eq!(rooms[0].home.as_deref(), Some("a"));
    assert_eq!(rooms[0].participants.len(), 3);
    // A removal for good, made where bob's token is known: he goes, and his token is refused
    // at every node.
    assert!(
        admin
            .remove_participant("standup", bob.participant_id())
            .await
    );
    assert!(closed(&mut bob).await.contains("removed"));
    for node in &nodes {
        assert_eq!(
            refused(node, "standup", bob_token.clone()).await,
            Some(signaling_client::ErrorCode::Removed)
        );
    }
    // A ban reaches mallory's node and every node's door.
    admin
        .ban("standup", "mallory", signaling_token::unix_now() + 3600)
        .await;
    assert!(closed(&mut mallory).await.contains("banned"));
    assert_eq!(
        refused(
            &nodes[0],
            "standup",
            common::token_for("standup", "mallory", 600)
        )
        .await,
        Some(signaling_client::ErrorCode::Banned)
    );
    until(&mut alice, &mut sa, |s| s.roster.len() == 1).await;
    // Closing reaches the room's home.
    assert_eq!(admin.close_room("standup").await, 1);
    assert!(closed(&mut alice).await.contains("closed"));
}
