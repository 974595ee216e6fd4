//! A participant whose network allows nothing but a TURN relay (ICE policy "relay") still
//! meets: the SFU hands out coturn's URL with time-limited credentials (shared-secret scheme),
//! and media flows through a real coturn (Debian's `turnserver`, started here on loopback).

mod common;

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{Bot, LOCALHOST, Ledger, ONE_MEETING_AT_A_TIME, eventually, start_with, token_for};
use sfu::media::MediaConfig;
use signaling_protocol::IceServer;
use signaling_server::SignalingConfig;
use signaling_server::turn::TurnCredentials;

const TURN_SECRET: &str = "coturn shared secret for tests";

struct Coturn(Child);

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind((LOCALHOST, 0))
        .and_then(|s| s.local_addr())
        .expect("port")
        .port()
}

fn coturn(port: u16) -> Coturn {
    let child = Command::new("turnserver")
        .args([
            "-n",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            &format!("--listening-port={port}"),
            "--use-auth-secret",
            &format!("--static-auth-secret={TURN_SECRET}"),
            "--realm=e2ee-sfu.test",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--allow-loopback-peers",
            "--min-port=61000",
            "--max-port=61999",
            "--log-file=stdout",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("turnserver (Debian package coturn; .ci/run installs it)");
    std::thread::sleep(Duration::from_millis(500));
    Coturn(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_only_participant_meets_through_coturn() {
    let _one = ONE_MEETING_AT_A_TIME.lock().await;
    let port = free_udp_port();
    let _turn = coturn(port);
    let sfu = start_with(
        MediaConfig::new(LOCALHOST, (0, 0), None),
        SignalingConfig {
            ice_servers: vec![IceServer {
                urls: vec![format!("turn:127.0.0.1:{port}?transport=udp")],
                username: None,
                credential: None,
            }],
            turn: Some(TurnCredentials::new(
                TURN_SECRET.as_bytes().to_vec(),
                Duration::from_secs(600),
            )),
            ..SignalingConfig::default()
        },
    )
    .await;
    let ledger = Arc::new(Ledger::default());
    let alice = Bot::join(&sfu, "relay", "alice", ledger.clone()).await;
    let bob = Bot::join_via(
        &sfu.url,
        "relay",
        "bob",
        &token_for("relay", "bob"),
        ledger,
        None,
        true,
    )
    .await;
    assert!(
        bob.ice_servers[0].username.is_some(),
        "credentials handed out"
    );
    eventually("bob and alice hearing each other through the relay", || {
        bob.count_from(alice.participant_id, "video") >= 5
            && alice.count_from(bob.participant_id, "video") >= 5
    })
    .await;
    let offer = bob
        .pc
        .local_description()
        .await
        .map(|d| d.sdp)
        .unwrap_or_default();
    assert!(
        offer.contains("typ relay"),
        "bob offered a relay candidate:\n{offer}"
    );
    assert!(
        !offer.contains("typ host"),
        "and no host candidate:\n{offer}"
    );
    bob.leave().await;
    alice.leave().await;
}
