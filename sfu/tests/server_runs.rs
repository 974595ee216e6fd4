//! The binary as a user runs it: it starts, answers /healthz and /metrics, hands out dev
//! tokens in dev mode, and admits a participant to a room.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

struct Running {
    child: Child,
    addr: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sfu"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("SFU_TOKEN_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sfu");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let addr = line
        .trim()
        .strip_prefix("sfu listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Running { child, addr }
}

async fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut response = String::new();
    s.read_to_string(&mut response).await.expect("read");
    let status = response[9..12].parse().expect("status");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn the_dev_server_serves_health_metrics_tokens_and_signaling() {
    let sfu = start(&["--dev"]);
    assert_eq!(get(&sfu.addr, "/healthz").await, (200, "ok\n".into()));
    let (status, metrics) = get(&sfu.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("sfu_rooms 0"), "{metrics}");

    let (status, body) = get(&sfu.addr, "/dev/token?room=demo&identity=alice").await;
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).expect("json");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", sfu.addr))
        .await
        .expect("ws");
    let join =
        serde_json::json!({"type": "join", "protocol": 1, "room": "demo", "token": token["token"]});
    ws.send(Message::text(join.to_string()))
        .await
        .expect("send");
    let Some(Ok(Message::Text(reply))) = ws.next().await else {
        panic!("no reply");
    };
    assert!(reply.contains(r#""type":"joined""#), "{reply}");
    let (_, metrics) = get(&sfu.addr, "/metrics").await;
    assert!(metrics.contains("sfu_participants 1"), "{metrics}");
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
