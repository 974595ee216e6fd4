//! The binary as a user runs it: it starts, answers /healthz and /metrics, hands out dev
//! tokens in dev mode, and admits a participant to a room.

mod process;

use std::process::Command;

use futures_util::SinkExt;
use process::{dev_token, http_get as get, join_raw, start_sfu as start};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn the_dev_server_serves_health_metrics_tokens_and_signaling() {
    let sfu = start(&["--dev"]);
    assert_eq!(get(&sfu.addr, "/healthz").await, (200, "ok\n".into()));
    let (status, metrics) = get(&sfu.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("sfu_rooms 0"), "{metrics}");

    let token = dev_token(&sfu.addr, "demo", "alice").await;
    let (mut ws, reply) = join_raw(&sfu.addr, "demo", &token, None).await;
    assert!(reply.contains(r#""type":"joined""#), "{reply}");
    let (_, metrics) = get(&sfu.addr, "/metrics").await;
    assert!(metrics.contains("sfu_participants 1"), "{metrics}");
    // Client-reported failures are running totals: 5, then 8 (3 more), then a restart at 2.
    for n in [5, 8, 2] {
        let stats = serde_json::json!({"type": "media_stats", "decrypt_failures": n});
        ws.send(Message::text(stats.to_string()))
            .await
            .expect("send");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let metrics = loop {
        let (_, m) = get(&sfu.addr, "/metrics").await;
        if m.contains("sfu_client_decrypt_failures_total 10") {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "{m}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // The documented names (README, "Operating it").
    for name in [
        "sfu_rooms",
        "sfu_participants",
        "sfu_forwarded_packets_total",
        "sfu_forwarded_bytes_total",
        "sfu_received_packets_total",
        "sfu_keyframe_requests_total",
        "sfu_mls_epochs_total",
        "sfu_commits_rejected_total",
        "sfu_client_decrypt_failures_total",
        "sfu_udp_dropped_datagrams_total",
        "sfu_room_datagrams_dropped_total",
        "sfu_udp_datagrams_sent_total",
        "sfu_udp_send_calls_total",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name} in {metrics}"
        );
    }
}

#[test]
fn without_a_secret_or_dev_mode_it_refuses_to_start_and_says_why() {
    let out = Command::new(env!("CARGO_BIN_EXE_sfu"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("SFU_TOKEN_SECRET")
        .env_remove("SFU_DEV")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("token_secret"), "{err}");
}

#[test]
fn dev_mode_refuses_a_public_address_and_a_real_secret() {
    let run = |args: &[&str], secret: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sfu"));
        c.args(args)
            .env_remove("SFU_TOKEN_SECRET")
            .env_remove("SFU_DEV");
        if let Some(s) = secret {
            c.env("SFU_TOKEN_SECRET", s);
        }
        let out = c.output().expect("run");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(&["--dev", "--listen", "0.0.0.0:0"], None);
    assert!(!ok && err.contains("loopback"), "{err}");
    let (ok, err) = run(
        &["--dev", "--listen", "127.0.0.1:0"],
        Some("a real secret, thirty-two bytes"),
    );
    assert!(!ok && err.contains("token_secret"), "{err}");
}

#[test]
fn a_broken_config_file_is_refused_with_its_error() {
    let path = std::env::temp_dir().join(format!("sfu-test-{}.toml", std::process::id()));
    std::fs::write(&path, "listen = \"0.0.0.0:1\"\nmystery = 3\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_sfu"))
        .args(["--dev", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    let _ = std::fs::remove_file(&path);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mystery"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_says_goodbye_to_everyone_drains_the_room_and_exits() {
    use signaling_client::{Client, ClientConfig, Event};
    let mut sfu = start(&["--dev"]);
    assert_eq!(get(&sfu.addr, "/readyz").await, (200, "ready\n".into()));
    let mut clients = Vec::new();
    for name in ["alice", "bob"] {
        let token = dev_token(&sfu.addr, "r", name).await;
        let config = ClientConfig::new(format!("ws://{}/ws", sfu.addr), "r", &token);
        clients.push(Client::connect(config).await.expect("join"));
    }
    // Alice created the group (epoch 0) and added Bob (epoch 1).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !get(&sfu.addr, "/metrics")
        .await
        .1
        .contains("sfu_mls_epochs_total 2")
    {
        assert!(std::time::Instant::now() < deadline, "two epochs counted");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let status = Command::new("kill")
        .args(["-TERM", &sfu.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    for client in &mut clients {
        let reason = loop {
            match tokio::time::timeout(std::time::Duration::from_secs(10), client.next_event())
                .await
                .expect("told in time")
            {
                Some(Event::Closed { reason }) => break reason,
                // Each connection ends on its own; the other's end is not news to relay (a
                // page would take that person's tile away before hearing the goodbye).
                Some(Event::ParticipantLeft(pid)) => panic!("told {pid} left, not the goodbye"),
                Some(_) => continue,
                None => panic!("no closing event"),
            }
        };
        assert!(reason.contains("shutting down"), "{reason}");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let exit = loop {
        if let Some(status) = sfu.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not exit"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn turn_urls_come_with_time_limited_credentials() {
    let sfu = start(&[
        "--dev",
        "--ice-server",
        "stun:stun.example.org:3478,turn:turn.example.org:3478",
        "--turn-secret",
        "coturn static auth secret",
    ]);
    let token = dev_token(&sfu.addr, "r", "alice").await;
    let (_ws, reply) = join_raw(&sfu.addr, "r", &token, None).await;
    let joined: serde_json::Value = serde_json::from_str(&reply).expect("json");
    let servers = joined["ice_servers"].as_array().expect("ice_servers");
    assert_eq!(servers.len(), 2, "{reply}");
    assert!(
        servers[0].get("username").is_none(),
        "STUN needs no credentials"
    );
    let username = servers[1]["username"].as_str().expect("username");
    let (expiry, pid) = username.split_once(':').expect("expiry:participant");
    assert_eq!(pid, joined["participant_id"].to_string());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let expiry: u64 = expiry.parse().expect("seconds");
    // They end with the access token (a dev token lasts an hour), not 12 h later.
    assert!(
        (now + 3600 - 5..=now + 3600 + 5).contains(&expiry),
        "{expiry} vs now {now}"
    );
    assert_eq!(
        servers[1]["credential"].as_str().map(str::len),
        Some(28),
        "base64 of 20 bytes"
    );
}
