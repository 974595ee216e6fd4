//! The Rust client joins again by itself: after a server restart on the same address (a new
//! group, a new safety number) and after its WebSocket is cut under it (added to the group
//! anew, the same device); and not after leaving or a refusal no retry changes.

mod common;

use std::time::Duration;

use common::{Seen, TestServer, WAIT, apply, start_on, token_for};
use signaling_client::{Client, ClientConfig, Event, Reconnect};
use signaling_server::SignalingConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

fn reconnecting(url: &str, room: &str, identity: &str, ttl_seconds: i64) -> ClientConfig {
    ClientConfig {
        reconnect: Some(Reconnect {
            first_delay: Duration::from_millis(50),
            ..Reconnect::default()
        }),
        ..ClientConfig::new(url, room, token_for(room, identity, ttl_seconds))
    }
}

/// What one client went through, as far as these tests look.
#[derive(Debug, Default)]
struct Seen2 {
    group: Seen,
    reconnecting: u32,
    reconnected: Vec<u64>,
    closed: Option<String>,
}

/// Takes events of every client until `done` holds for all.
async fn until_all(clients: &mut [Client], seen: &mut [Seen2], done: impl Fn(&Seen2) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !seen.iter().all(&done) {
        for (c, s) in clients.iter_mut().zip(seen.iter_mut()) {
            while let Some(event) = c.try_next_event() {
                match event {
                    Event::Reconnecting { .. } => s.reconnecting += 1,
                    Event::Reconnected { participant_id } => {
                        // A new member of a new (or the same) group: what was seen is past.
                        s.reconnected.push(participant_id);
                        s.group = Seen::default();
                    }
                    Event::Closed { reason } => s.closed = Some(reason),
                    other => apply(&mut s.group, other),
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The server's `host:port`.
fn host_port(server: &TestServer) -> String {
    let url = server.url.trim_start_matches("ws://");
    url.trim_end_matches("/ws").to_owned()
}

/// Shuts `server` down (goodbye to everyone), waits for its rooms to empty and its port to
/// close, and starts a new one on the same address.
async fn restart(
    server: TestServer,
    accept: JoinHandle<std::io::Result<()>>,
) -> (TestServer, JoinHandle<std::io::Result<()>>) {
    server.server.shut_down();
    assert!(
        server.server.drained(WAIT).await,
        "the old server's rooms empty"
    );
    accept.abort();
    let _ = accept.await;
    start_on(&host_port(&server), SignalingConfig::default()).await
}

fn in_one_group(seen: &[Seen2], members: usize) -> bool {
    seen.iter().all(|s| {
        s.group.roster.len() == members && s.group.safety_number == seen[0].group.safety_number
    })
}

#[tokio::test]
async fn clients_rejoin_after_a_server_restart_on_the_same_address() {
    let (server, accept) = start_on("127.0.0.1:0", SignalingConfig::default()).await;
    let mut clients = Vec::new();
    for name in ["ann", "ben"] {
        let config = reconnecting(&server.url, "restart", name, 600);
        clients.push(Client::connect(config).await.expect("join"));
    }
    let mut seen: Vec<Seen2> = (0..2).map(|_| Seen2::default()).collect();
    until_all(&mut clients, &mut seen, |s| s.group.roster.len() == 2).await;
    until_all(&mut clients, &mut seen, |_| true).await;
    assert!(in_one_group(&seen, 2));
    let before = seen[0].group.safety_number.clone();

    // The server goes away (goodbye to everyone) and a new one comes up where it was.
    let _again = restart(server, accept).await;

    until_all(&mut clients, &mut seen, |s| {
        !s.reconnected.is_empty() && s.group.roster.len() == 2
    })
    .await;
    // Every epoch of the new group reached both.
    tokio::time::sleep(Duration::from_millis(300)).await;
    until_all(&mut clients, &mut seen, |_| true).await;
    assert!(in_one_group(&seen, 2), "{seen:?}");
    assert_ne!(seen[0].group.safety_number, before, "a new group");
    for (i, s) in seen.iter().enumerate() {
        assert!(s.reconnecting >= 1 && s.closed.is_none(), "{s:?}");
        assert_eq!(
            s.reconnected,
            [clients[i].participant_id()],
            "the id is the new one"
        );
        assert!(s.group.failures.is_empty(), "{:?}", s.group.failures);
    }
}

/// A TCP relay to `upstream` whose connections all drop when `cut` is sent true (and new
/// ones are refused while it stays true).
async fn cuttable(upstream: String) -> (String, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (cut, watch) = watch::channel(false);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let mut down = watch.clone();
            if *down.borrow() {
                continue; // refused: dropped at once
            }
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    _ = down.wait_for(|&c| c) => {}
                }
            });
        }
    });
    (format!("ws://{addr}/ws"), cut)
}

#[tokio::test]
async fn a_client_whose_websocket_is_cut_is_added_to_the_group_again() {
    let (server, _accept) = start_on("127.0.0.1:0", SignalingConfig::default()).await;
    let upstream = host_port(&server);
    let (relayed, cut) = cuttable(upstream).await;
    let mut clients = vec![
        Client::connect(reconnecting(&server.url, "cut", "cy", 600))
            .await
            .expect("cy"),
        Client::connect(reconnecting(&relayed, "cut", "di", 600))
            .await
            .expect("di"),
    ];
    let mut seen: Vec<Seen2> = (0..2).map(|_| Seen2::default()).collect();
    until_all(&mut clients, &mut seen, |s| s.group.roster.len() == 2).await;
    let epoch = seen[0].group.epoch.expect("an epoch");
    let old_id = clients[1].participant_id();

    cut.send_replace(true);
    until_all(&mut clients, &mut seen[..], |s| s.group.roster.len() <= 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    cut.send_replace(false);

    until_all(&mut clients, &mut seen, |s| {
        s.group.epoch.is_some_and(|e| e >= epoch + 2)
    })
    .await;
    until_all(&mut clients, &mut seen, |s| s.group.roster.len() == 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    until_all(&mut clients, &mut seen, |_| true).await;
    assert!(in_one_group(&seen, 2), "{seen:?}");
    assert_eq!(seen[0].reconnecting, 0, "cy's connection never dropped");
    assert!(seen[1].reconnecting >= 1);
    let new_id = clients[1].participant_id();
    assert_ne!(new_id, old_id);
    assert_eq!(seen[1].reconnected, [new_id]);
    assert!(
        seen.iter()
            .all(|s| s.closed.is_none() && s.group.failures.is_empty()),
        "{seen:?}"
    );
}

#[tokio::test]
async fn no_rejoin_after_leaving_or_with_an_expired_token() {
    let (server, accept) = start_on("127.0.0.1:0", SignalingConfig::default()).await;
    // A token that expires in two seconds: valid for the join, expired for the rejoin.
    let mut short = Client::connect(reconnecting(&server.url, "end", "eve", 2))
        .await
        .expect("join");
    let leaver = Client::connect(reconnecting(&server.url, "end", "fay", 600))
        .await
        .expect("join");
    leaver.leave();
    let mut leaver = leaver;
    let reason = closed(&mut leaver).await;
    assert_eq!(reason, "left");

    tokio::time::sleep(Duration::from_secs(3)).await;
    let _again = restart(server, accept).await;
    let reason = closed(&mut short).await;
    assert!(reason.contains("TokenExpired"), "{reason}");
}

/// Takes events until the client is closed; its reason.
async fn closed(client: &mut Client) -> String {
    tokio::time::timeout(WAIT, async {
        loop {
            match client.next_event().await {
                Some(Event::Closed { reason }) => return reason,
                Some(_) => {}
                None => return "no Closed event".to_owned(),
            }
        }
    })
    .await
    .expect("closed in time")
}
