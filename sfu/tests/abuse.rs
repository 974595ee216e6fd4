//! Clients that misbehave on purpose, against the binary as it runs: members that stop reading
//! while another floods the room with large valid proposals, connections that send too much
//! before joining, binary and oversize frames, slow HTTP headers, too many TCP connections from
//! one address, absurd client statistics. The server stays within its bounds and everyone
//! else's meeting goes on.

mod process;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use media_crypto::mls::{MlsSession, SessionConfig};
use process::{Ws, dev_token, http_get as get, join_raw, start_sfu};
use signaling_protocol::{ClientMessage, ServerMessage, credential_identity, decode_server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(30);

/// A member speaking the protocol by hand, so that it can stop reading at will.
struct Member {
    ws: Ws,
    session: MlsSession,
}

async fn recv(ws: &mut Ws) -> ServerMessage {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("timed out waiting for the server")
            .expect("closed")
            .expect("frame");
        if let Message::Text(t) = frame {
            return decode_server(&t).expect("decodable");
        }
    }
}

async fn send(ws: &mut Ws, m: &ClientMessage) {
    ws.send(Message::text(serde_json::to_string(m).expect("json")))
        .await
        .expect("send");
}

impl Member {
    /// Joins `room` as `name` and gets into its group (creating it if first).
    async fn join(addr: &str, room: &str, name: &str) -> Member {
        let token = dev_token(addr, room, name).await;
        let (ws, reply) = join_raw(addr, room, &token, None).await;
        let Ok(ServerMessage::Joined {
            participant_id,
            participants,
            ..
        }) = decode_server(&reply)
        else {
            panic!("not joined: {reply}");
        };
        let session = MlsSession::new(
            credential_identity(participant_id, name),
            SessionConfig::default(),
        )
        .expect("session");
        let mut m = Member { ws, session };
        if participants.is_empty() {
            let ServerMessage::CreateGroup { group_id } = m.until_create().await else {
                unreachable!()
            };
            m.session
                .create_group(group_id.as_slice(), Duration::ZERO)
                .expect("create");
            let gi = m.session.group_info().expect("gi");
            send(
                &mut m.ws,
                &ClientMessage::GroupCreated {
                    group_info: gi.into(),
                },
            )
            .await;
        } else {
            let kp = m.session.key_package().expect("kp");
            send(
                &mut m.ws,
                &ClientMessage::KeyPackage {
                    key_package: kp.into(),
                },
            )
            .await;
            loop {
                match recv(&mut m.ws).await {
                    ServerMessage::Welcome { welcome, epoch } => {
                        m.session
                            .join_from_welcome(welcome.as_slice(), Duration::ZERO)
                            .expect("welcome");
                        send(&mut m.ws, &ClientMessage::WelcomeAck { epoch }).await;
                        break;
                    }
                    ServerMessage::Error { code, message } => panic!("{code:?}: {message}"),
                    _ => {}
                }
            }
        }
        m
    }

    async fn until_create(&mut self) -> ServerMessage {
        loop {
            let m = recv(&mut self.ws).await;
            if matches!(m, ServerMessage::CreateGroup { .. }) {
                return m;
            }
        }
    }

    /// Follows the group (commits it is asked for, commits it receives) until `done`.
    async fn follow(&mut self, mut done: impl FnMut(&MlsSession) -> bool) {
        while !done(&self.session) {
            match recv(&mut self.ws).await {
                ServerMessage::CommitRequest { epoch, add, remove } => {
                    let roster = self.session.roster();
                    let leaves: Vec<u32> = roster
                        .iter()
                        .filter(|r| {
                            remove
                                .iter()
                                .any(|p| r.name().starts_with(&format!("{p}:")))
                        })
                        .map(|r| r.leaf)
                        .collect();
                    let kps: Vec<Vec<u8>> = add
                        .iter()
                        .map(|a| a.key_package.as_slice().to_vec())
                        .collect();
                    let out = self.session.commit(&kps, &leaves).expect("commit");
                    let removed = roster
                        .iter()
                        .filter(|r| out.removed.contains(&r.leaf))
                        .filter_map(|r| r.name().split(':').next()?.parse().ok())
                        .collect();
                    send(
                        &mut self.ws,
                        &ClientMessage::Commit(signaling_protocol::CommitMessage {
                            epoch,
                            commit: out.commit.into(),
                            welcome: out.welcome.map(Into::into),
                            group_info: out.group_info.expect("gi").into(),
                            added: add.iter().map(|a| a.participant_id).collect(),
                            removed,
                        }),
                    )
                    .await;
                }
                ServerMessage::Commit { commit, .. } => {
                    self.session
                        .process(commit.as_slice(), Duration::ZERO)
                        .expect("process");
                }
                ServerMessage::CommitRejected { .. } => {
                    let _ = self.session.discard_pending_commit();
                }
                _ => {}
            }
        }
    }
}

/// The server's peak resident memory (VmHWM), in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_flood_to_members_who_stop_reading_stays_bounded() {
    let sfu = start_sfu(&["--dev"]);
    let room = "flood";
    let mut alice = Member::join(&sfu.addr, room, "alice").await;
    let mut others = Vec::new();
    for i in 0..6 {
        let joining = tokio::spawn({
            let addr = sfu.addr.clone();
            async move { Member::join(&addr, room, &format!("quiet{i}")).await }
        });
        // Alice commits each add.
        let want = i + 2;
        alice.follow(|s| s.roster().len() == want).await;
        others.push(joining.await.expect("join"));
    }
    let mut flooder = others.pop().expect("flooder");
    // Everyone but alice and the flooder stops reading now; alice goes on following the room.
    let alice = tokio::spawn(async move {
        alice
            .follow(|s| s.roster().iter().any(|r| r.name().ends_with(":late")))
            .await;
        alice
    });
    let before = peak_memory(sfu.pid());
    // The flooder sends 150 valid proposals of about 933 kB of JSON each: its own removal,
    // carrying 700 kB of authenticated data.
    flooder
        .session
        .set_authenticated_data(vec![0x55; 700 * 1024])
        .expect("aad");
    let epoch = flooder.session.epoch().expect("epoch");
    let proposal = flooder.session.leave().expect("proposal");
    let text = serde_json::to_string(&ClientMessage::Proposal {
        epoch,
        proposal: proposal.into(),
    })
    .expect("json");
    assert!(
        text.len() > 900_000 && text.len() < 1 << 20,
        "{}",
        text.len()
    );
    let (mut sink, mut stream) = flooder.ws.split();
    // The flooder reads its replies (limit errors), to keep sending.
    let replies = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    for _ in 0..150 {
        if sink.send(Message::text(text.clone())).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = peak_memory(sfu.pid());
    let _ = sink.close().await;
    replies.abort();
    // Each proposal reached the quiet members at most once (a few per epoch are relayed),
    // stored once for all of them; their queues filled and they were dropped.
    let grew = after.saturating_sub(before);
    assert!(
        grew < 120 << 20,
        "the server grew by {} MiB (peak {} MiB)",
        grew >> 20,
        after >> 20
    );
    // Alice, who reads, is still in a working room: a newcomer joins and both agree.
    let mut late = Member::join(&sfu.addr, room, "late").await;
    let alice = tokio::time::timeout(WAIT, alice)
        .await
        .expect("alice adds the newcomer")
        .expect("alice");
    late.follow(|s| s.epoch() == alice.session.epoch()).await;
    assert_eq!(late.session.safety_number(), alice.session.safety_number());
    println!(
        "MEASURE {{\"proposal_flood_peak_growth_mib\": {}, \"peak_mib\": {}}}",
        grew >> 20,
        after >> 20
    );
    drop(others);
}

#[tokio::test]
async fn too_much_before_joining_is_refused_without_joining() {
    let sfu = start_sfu(&["--dev"]);
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", sfu.addr))
        .await
        .expect("ws");
    // A 100 kB "join": far beyond what a join needs, refused before it is read whole.
    let huge = format!(
        r#"{{"type":"join","protocol":{},"room":"r","token":"{}"}}"#,
        signaling_protocol::PROTOCOL_VERSION,
        "x".repeat(100_000)
    );
    let _ = ws.send(Message::text(huge)).await;
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("an answer");
    match reply {
        Some(Ok(Message::Text(t))) => {
            assert!(t.contains("message_too_large"), "{t}");
        }
        // Or simply closed.
        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {}
        Some(Ok(other)) => panic!("unexpected {other:?}"),
    }
    let (_, metrics) = get(&sfu.addr, "/metrics").await;
    assert!(metrics.contains("sfu_participants 0"), "{metrics}");
}

#[tokio::test]
async fn binary_and_oversize_frames_count_against_the_rate() {
    let sfu = start_sfu(&["--dev"]);
    let token = dev_token(&sfu.addr, "r", "spammer").await;
    let (mut ws, reply) = join_raw(&sfu.addr, "r", &token, None).await;
    assert!(reply.contains("joined"), "{reply}");
    let oversize = "y".repeat((1 << 20) + 10);
    let mut limited = false;
    for i in 0..400 {
        let frame = if i % 2 == 0 {
            Message::binary(vec![0u8; 16])
        } else {
            Message::text(oversize.clone())
        };
        if ws.send(frame).await.is_err() {
            break;
        }
    }
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                if t.contains("rate_limited") {
                    limited = true;
                    break;
                }
            }
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    assert!(limited, "binary and oversize frames were rate limited");
}

#[tokio::test]
async fn slow_headers_are_dropped_and_one_address_holds_few_connections() {
    let sfu = start_sfu(&["--dev", "--max-connections-per-ip", "2"]);
    // Headers that never finish: the server hangs up after its header timeout (10 s).
    let mut slow = TcpStream::connect(&sfu.addr).await.expect("tcp");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(30), slow.read(&mut buf))
        .await
        .expect("the server hangs up in time");
    assert!(matches!(n, Ok(0) | Ok(_) | Err(_)));
    assert!(started.elapsed() >= Duration::from_secs(5), "not at once");
    drop(slow);
    // Twice the WebSocket limit of TCP connections from one address, then no more.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(&sfu.addr).await.expect("tcp"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(&sfu.addr).await.expect("tcp");
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let n = tokio::time::timeout(Duration::from_secs(10), extra.read(&mut buf))
        .await
        .expect("an answer");
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "the fifth connection is closed unanswered"
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        get(&sfu.addr, "/healthz").await.0,
        200,
        "a freed slot serves again"
    );
}

#[tokio::test]
async fn absurd_decrypt_failure_reports_cannot_wrap_the_counter() {
    let sfu = start_sfu(&["--dev"]);
    let token = dev_token(&sfu.addr, "r", "liar").await;
    let (mut ws, _) = join_raw(&sfu.addr, "r", &token, None).await;
    for n in [u64::MAX, 0, u64::MAX, 0, u64::MAX] {
        let stats = serde_json::json!({"type": "media_stats", "decrypt_failures": n});
        ws.send(Message::text(stats.to_string()))
            .await
            .expect("send");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, metrics) = get(&sfu.addr, "/metrics").await;
    let total: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sfu_client_decrypt_failures_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("counter");
    assert!(total <= 300_000, "clamped, not wrapped: {total}");
    assert!(total > 0);
}

/// A raw GET, for its headers.
async fn headers_of(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("tcp");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    text.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_lowercase()
}

#[tokio::test]
async fn the_page_comes_with_a_content_security_policy_and_the_usual_headers() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../web-demo/static");
    let sfu = start_sfu(&["--dev", "--demo-dir", demo]);
    let h = headers_of(&sfu.addr, "/").await;
    assert!(h.starts_with("http/1.1 200"), "{h}");
    for expected in [
        "content-security-policy: default-src 'none'; script-src 'self' 'wasm-unsafe-eval'",
        "frame-ancestors 'none'",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
        "x-frame-options: deny",
        "permissions-policy: camera=(self), microphone=(self)",
    ] {
        assert!(h.contains(expected), "{expected:?} in {h}");
    }
    assert!(!h.contains("unsafe-inline"), "{h}");
    assert!(
        headers_of(&sfu.addr, "/healthz")
            .await
            .contains("x-content-type-options")
    );
}
