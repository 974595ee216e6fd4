//! The insecure dev-token route exists only when switched on, and its tokens verify.

use signaling_server::{SignalingConfig, SignalingServer};
use signaling_token as token;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    s.read_to_string(&mut response).await.expect("read");
    let status = response[9..12].parse().expect("status");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn serve(config: SignalingConfig) -> (std::net::SocketAddr, SignalingServer) {
    let server = SignalingServer::new(config).expect("server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = server.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, server)
}

#[tokio::test]
async fn dev_mode_hands_out_tokens_that_verify() {
    let (addr, server) = serve(SignalingConfig {
        insecure_dev_tokens: true,
        ..SignalingConfig::default()
    })
    .await;
    let (status, body) = get(addr, "/dev/token?room=standup&identity=alice").await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["insecure_dev_mode"], true);
    let t = json["token"].as_str().expect("token");
    let claims = token::verify(t, &server.config().token_policy(), "standup").expect("verifies");
    assert_eq!(claims.sub, "alice");
    let (status, _) = get(addr, "/dev/token?room=&identity=alice").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn without_dev_mode_there_is_no_token_route_and_a_secret_is_required() {
    assert!(SignalingServer::new(SignalingConfig::default()).is_err());
    let (addr, _) = serve(SignalingConfig {
        token_secret: b"s".to_vec(),
        ..SignalingConfig::default()
    })
    .await;
    let (status, _) = get(addr, "/dev/token?room=r&identity=alice").await;
    assert_eq!(status, 404);
}
