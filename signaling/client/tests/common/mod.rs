//! A signaling server on loopback and helpers to drive clients against it.
#![allow(dead_code)]

pub mod nats;
pub mod raw;

use std::time::Duration;

use signaling_client::{Client, ClientConfig, Event};
use signaling_server::{SignalingConfig, SignalingServer};
use signaling_token::{self as token, Claims};

pub const SECRET: &[u8] = b"test secret";
pub const WAIT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct TestServer {
    pub url: String,
    pub server: SignalingServer,
}

pub async fn start(config: SignalingConfig) -> TestServer {
    start_on("127.0.0.1:0", config).await.0
}

/// A server on `addr` (a port of 0: any free one), and its accept loop's task.
pub async fn start_on(
    addr: &str,
    config: SignalingConfig,
) -> (TestServer, tokio::task::JoinHandle<std::io::Result<()>>) {
    let server = SignalingServer::new(SignalingConfig {
        token_secret: SECRET.to_vec(),
        ..config
    })
    .expect("server");
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = server.router();
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("ws://{addr}/ws");
    (TestServer { url, server }, task)
}

/// A node of the cluster on NATS at `nats_url`, named `node_id`, on any free port.
pub async fn start_node(nats_url: &str, node_id: &str, config: SignalingConfig) -> TestServer {
    use signaling_server::server::cluster::{Cluster, ClusterConfig};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let cluster = Cluster::connect(ClusterConfig {
        nats_urls: vec![nats_url.to_owned()],
        node_id: node_id.to_owned(),
        public_url: format!("http://{addr}"),
        media_address: addr.ip().to_string(),
        heartbeat: Duration::from_millis(250),
    })
    .await
    .expect("cluster");
    let server = SignalingServer::clustered(
        SignalingConfig {
            token_secret: SECRET.to_vec(),
            ..config
        },
        None,
        cluster,
    )
    .expect("server");
    let app = server.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    TestServer {
        url: format!("ws://{addr}/ws"),
        server,
    }
}

pub fn token_for(room: &str, identity: &str, ttl_seconds: i64) -> String {
    let exp = (token::unix_now() as i64 + ttl_seconds).max(0) as u64;
    token::mint(
        &Claims {
            exp,
            iat: None,
            ..Claims::new(room, identity, std::time::Duration::ZERO)
        },
        SECRET,
    )
    .expect("mint")
}

impl TestServer {
    pub async fn client(&self, room: &str, identity: &str) -> Client {
        Client::connect(ClientConfig::new(
            self.url.clone(),
            room,
            token_for(room, identity, 600),
        ))
        .await
        .expect("connect")
    }
}

/// What a client has seen of the group so far.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub epoch: Option<u64>,
    pub roster: Vec<String>,
    pub safety_number: Option<String>,
    pub failures: Vec<String>,
}

/// Takes events until `done` holds for what was seen, or panics after [`WAIT`].
pub async fn until(client: &mut Client, seen: &mut Seen, done: impl Fn(&Seen) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done(seen) {
        let event = tokio::time::timeout_at(deadline, client.next_event())
            .await
            .unwrap_or_else(|_| panic!("timed out; seen {seen:?}"))
            .unwrap_or_else(|| panic!("client closed; seen {seen:?}"));
        apply(seen, event);
    }
}

/// Takes events until a chat message arrives, and checks it says `expected`; panics after
/// [`WAIT`].
pub async fn until_chat(client: &mut Client, expected: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, client.next_event())
            .await
            .expect("in time")
            .expect("open");
        if let Event::Application {
            message: signaling_client::AppMessage::Chat { text },
            ..
        } = event
        {
            assert_eq!(text, expected);
            return;
        }
    }
}

pub fn apply(seen: &mut Seen, event: Event) {
    match event {
        Event::NewEpoch {
            epoch,
            roster,
            safety_number,
            ..
        } => {
            seen.epoch = Some(epoch);
            seen.roster = roster.iter().map(|r| r.name()).collect();
            seen.safety_number = Some(safety_number.to_string());
        }
        Event::MlsFailure(f) => seen.failures.push(f),
        Event::ServerError { code, message } => seen.failures.push(format!("{code:?}: {message}")),
        _ => {}
    }
}
