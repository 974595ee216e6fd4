//! Join time against group size, on loopback: from a joiner's `join` request until it holds
//! the group's current frame keys (its first `NewEpoch`), for groups of 2, 10, 50 and 100.
//!
//! cargo bench -p signaling-client --bench join_time
//!
//! Every member runs in this process on the same two cores, so a join also pays for all the
//! other members processing the commit at once; on separate machines it would be faster.

use std::time::{Duration, Instant};

use signaling_client::{Client, ClientConfig, Event};
use signaling_server::{SignalingConfig, SignalingServer};
use signaling_token::{self as token, Claims};

const SECRET: &[u8] = b"bench secret";

fn token(room: &str, identity: &str) -> String {
    token::mint(
        &Claims::new(room, identity, std::time::Duration::from_secs(3600)),
        SECRET,
    )
    .expect("mint")
}

async fn connect(url: &str, room: &str, identity: &str) -> Client {
    Client::connect(ClientConfig::new(url, room, token(room, identity)))
        .await
        .expect("connect")
}

/// Waits until the client's roster has `n` members; returns the time it took.
async fn roster_of(client: &mut Client, n: usize) -> Duration {
    let start = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_secs(120), client.next_event()).await {
            Ok(Some(Event::NewEpoch { roster, .. })) if roster.len() == n => {
                return start.elapsed();
            }
            Ok(Some(Event::MlsFailure(f))) => panic!("MLS failure: {f}"),
            Ok(Some(_)) => {}
            Ok(None) => panic!("client closed"),
            Err(_) => panic!("no roster of {n} in 120 s"),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = SignalingServer::new(SignalingConfig {
        token_secret: SECRET.to_vec(),
        max_participants_per_room: 200,
        ..SignalingConfig::default()
    })
    .expect("server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("ws://{}/ws", listener.local_addr().expect("addr"));
    let app = server.router();
    tokio::spawn(async move { axum::serve(listener, app).await });

    println!("| group size | joins | p50 | p90 | max |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for size in [2usize, 10, 50, 100] {
        let room = format!("room-{size}");
        // size - 1 members already in the room.
        let mut first = connect(&url, &room, "m0").await;
        roster_of(&mut first, 1).await;
        let mut others = Vec::new();
        for i in 1..size - 1 {
            others.push(connect(&url, &room, &format!("m{i}")).await);
        }
        if size > 2 {
            roster_of(&mut first, size - 1).await;
        }
        let trials = if size >= 50 { 10 } else { 20 };
        let mut times = Vec::new();
        for t in 0..trials {
            let start = Instant::now();
            let mut joiner = connect(&url, &room, &format!("joiner{t}")).await;
            roster_of(&mut joiner, size).await;
            times.push(start.elapsed());
            joiner.leave();
            roster_of(&mut first, size - 1).await;
            // Let the other members catch up before the next join.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        times.sort();
        println!(
            "| {size} | {trials} | {:.1} ms | {:.1} ms | {:.1} ms |",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.9).as_secs_f64() * 1e3,
            times.last().expect("times").as_secs_f64() * 1e3,
        );
        for c in others.iter().chain(std::iter::once(&first)) {
            c.leave();
        }
    }
}
