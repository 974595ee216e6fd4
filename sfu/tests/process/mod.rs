//! The `sfu` binary as its own process, and plain HTTP GETs against it: for the tests and the
//! benchmark that run the server as a user would.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A raw signaling WebSocket.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
/// A running `sfu`; killed when dropped.
pub struct Running {
    pub child: Child,
    /// `host:port` of its HTTP listener.
    pub addr: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Where a started sfu's logs go: nowhere, unless `SFU_TEST_LOGS` names a folder (each
/// process's in a file of its own there), to see what a failing test's servers did.
fn logs() -> Stdio {
    let Some(dir) = std::env::var_os("SFU_TEST_LOGS") else {
        return Stdio::null();
    };
    let name = format!(
        "sfu-{}-{}.log",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    std::fs::File::create(std::path::Path::new(&dir).join(name))
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null())
}

/// Starts the binary on an ephemeral loopback port with `args`, and waits for the line that
/// names its address.
pub fn start_sfu(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sfu"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("SFU_TOKEN_SECRET")
        .stdout(Stdio::piped())
        .stderr(logs())
        .spawn()
        .expect("spawn sfu");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let addr = line
        .trim()
        .strip_prefix("sfu listening on ")
        .and_then(|url| {
            url.strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"))
        })
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Running { child, addr }
}

/// `GET path`; the status and the body.
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    http(addr, "GET", path, &[]).await
}

/// `METHOD path` with extra headers; the status and the body.
pub async fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    sfu::http_client::request(addr, method, path, headers)
        .await
        .expect("HTTP request")
}

/// A token for `identity` in `room` from a dev-mode server's `/dev/token`.
pub async fn dev_token(addr: &str, room: &str, identity: &str) -> String {
    let query = format!("room={}&identity={identity}", room.replace(' ', "%20"));
    let (status, body) = http_get(addr, &format!("/dev/token?{query}")).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    v["token"].as_str().expect("token").to_owned()
}

/// Opens the signaling WebSocket (claiming `forwarded_for` in `X-Forwarded-For`, if given),
/// sends `join` for `room` with `token`, and returns the socket with the server's first
/// message, which must be text.
pub async fn join_raw(
    addr: &str,
    room: &str,
    token: &str,
    forwarded_for: Option<&str>,
) -> (Ws, String) {
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .expect("request");
    if let Some(ip) = forwarded_for {
        request
            .headers_mut()
            .insert("X-Forwarded-For", ip.parse().expect("header"));
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.expect("ws");
    let join = serde_json::json!({"type": "join", "protocol": signaling_protocol::PROTOCOL_VERSION, "room": room, "token": token});
    // A refused connection may be closing already; its reply still says why.
    let _ = ws.send(Message::text(join.to_string())).await;
    let Some(Ok(Message::Text(reply))) = ws.next().await else {
        panic!("no reply");
    };
    (ws, reply.to_string())
}
