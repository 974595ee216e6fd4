//! The admin API as an operator uses it: refused without the token; lists rooms and
//! participants; removes a participant for good (it is told, leaves the MLS group, does not
//! reconnect, and its token is refused from then on); bans an identity from a room until a
//! time; closes a room; `sfu admin` over plain HTTP and over TLS (a private CA, or no checks).

mod process;

use std::time::Duration;

use process::{http, join_raw, start_sfu};
use signaling_client::{Client, ClientConfig, Event, Reconnect};

const ADMIN: &str = "admin token 0123456789";

async fn client(addr: &str, room: &str, name: &str) -> Client {
    let token = process::dev_token(addr, room, name).await;
    with_token(addr, room, &token).await
}

/// A client that reconnects by itself when its connection drops.
async fn with_token(addr: &str, room: &str, token: &str) -> Client {
    let mut config = ClientConfig::new(format!("ws://{addr}/ws"), room, token);
    config.reconnect = Some(Reconnect::default());
    Client::connect(config).await.expect("join")
}

/// The error code of the server's reply to a join with `token`.
async fn refusal(addr: &str, room: &str, token: &str) -> String {
    let (_, reply) = join_raw(addr, room, token, None).await;
    let reply: serde_json::Value = serde_json::from_str(&reply).expect("json");
    assert_eq!(reply["type"], "error", "{reply}");
    reply["code"].as_str().expect("code").to_owned()
}

/// The events until the connection closes (at most 10 s); how it closed.
async fn closing(c: &mut Client) -> (Vec<Event>, String) {
    let mut seen = Vec::new();
    loop {
        match until(c, Some).await {
            Event::Closed { reason } => return (seen, reason),
            e => seen.push(e),
        }
    }
}

/// Events until `pick` returns something, for at most 10 s.
async fn until<T>(c: &mut Client, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), c.next_event())
            .await
            .expect("in time")
            .expect("open");
        if let Some(t) = pick(e) {
            return t;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_lists_removes_and_closes() {
    let sfu = start_sfu(&["--dev", "--admin-token", ADMIN]);
    let auth = format!("Bearer {ADMIN}");
    let bearer = [("Authorization", auth.as_str())];
    assert_eq!(http(&sfu.addr, "GET", "/admin/rooms", &[]).await.0, 401);
    assert_eq!(
        http(
            &sfu.addr,
            "GET",
            "/admin/rooms",
            &[("Authorization", "Bearer wrong")]
        )
        .await
        .0,
        401
    );

    let mut alice = client(&sfu.addr, "standup", "alice").await;
    let mut bob = client(&sfu.addr, "standup", "bob").await;
    until(&mut alice, |e| match e {
        Event::NewEpoch { roster, .. } if roster.len() == 2 => Some(()),
        _ => None,
    })
    .await;

    let (status, body) = http(&sfu.addr, "GET", "/admin/rooms", &bearer).await;
    assert_eq!(status, 200, "{body}");
    let rooms: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(rooms[0]["name"], "standup");
    let names: Vec<&str> = rooms[0]["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .map(|p| p["identity"].as_str().expect("identity"))
        .collect();
    assert_eq!(names, vec!["alice", "bob"]);

    let path = format!("/admin/rooms/standup/participants/{}", bob.participant_id());
    assert_eq!(http(&sfu.addr, "DELETE", &path, &bearer).await.0, 204);
    // Bob reconnects by himself when dropped, but not after a removal.
    let (events, reason) = closing(&mut bob).await;
    assert!(reason.contains("administrator"), "{reason}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Reconnecting { .. })),
        "{events:?}"
    );
    // Bob's MLS removal follows: Alice reaches an epoch with only herself.
    until(&mut alice, |e| match e {
        Event::NewEpoch { roster, .. } if roster.len() == 1 => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(http(&sfu.addr, "DELETE", &path, &bearer).await.0, 404);

    let (status, body) = http(&sfu.addr, "DELETE", "/admin/rooms/standup", &bearer).await;
    assert_eq!((status, body.as_str()), (200, r#"{"removed":1}"#));
    // Closing the room ends the meeting: alice does not come back either.
    let (events, reason) = closing(&mut alice).await;
    assert!(reason.contains("closed"), "{reason}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Reconnecting { .. })),
        "{events:?}"
    );
    let (_, body) = http(&sfu.addr, "GET", "/admin/rooms", &bearer).await;
    assert_eq!(body, "[]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_participants_token_is_refused_for_the_rest_of_its_life() {
    let sfu = start_sfu(&["--dev", "--admin-token", ADMIN]);
    let auth = format!("Bearer {ADMIN}");
    let bearer = [("Authorization", auth.as_str())];
    let token = process::dev_token(&sfu.addr, "standup", "mallory").await;
    let mut mallory = with_token(&sfu.addr, "standup", &token).await;
    // A second connection with the same token (another tab of the same link).
    let mut again = with_token(&sfu.addr, "standup", &token).await;
    let path = format!(
        "/admin/rooms/standup/participants/{}",
        mallory.participant_id()
    );
    assert_eq!(http(&sfu.addr, "DELETE", &path, &bearer).await.0, 204);
    for c in [&mut mallory, &mut again] {
        let (events, _) = closing(c).await;
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, Event::Reconnecting { .. })),
            "{events:?}"
        );
    }
    assert_eq!(refusal(&sfu.addr, "standup", &token).await, "removed");
    // Another person's token, and a new invitation for the same name, still admit.
    let other = process::dev_token(&sfu.addr, "standup", "bob").await;
    drop(with_token(&sfu.addr, "standup", &other).await);
    let fresh = process::dev_token(&sfu.addr, "standup", "mallory").await;
    drop(with_token(&sfu.addr, "standup", &fresh).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banned_identity_is_sent_away_and_refused_until_the_ban_ends() {
    let sfu = start_sfu(&["--dev", "--admin-token", ADMIN]);
    let url = format!("http://{}", sfu.addr);
    let mut mallory = client(&sfu.addr, "board", "mallory").await;
    let mut bob = client(&sfu.addr, "board", "bob").await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sfu"))
        .args(["admin", "--url", &url, "--admin-token", ADMIN])
        .args(["ban", "board", "mallory", "--for", "1h"])
        .output()
        .expect("run");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("banned \"mallory\" from room \"board\""),
        "{said}"
    );
    assert!(said.contains("removed 1 participant"), "{said}");
    let (events, reason) = closing(&mut mallory).await;
    assert!(reason.contains("banned"), "{reason}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Reconnecting { .. })),
        "{events:?}"
    );
    // Any token for mallory in that room, even a new one, is refused; elsewhere it is not.
    let fresh = process::dev_token(&sfu.addr, "board", "mallory").await;
    assert_eq!(refusal(&sfu.addr, "board", &fresh).await, "banned");
    let elsewhere = process::dev_token(&sfu.addr, "lobby", "mallory").await;
    drop(with_token(&sfu.addr, "lobby", &elsewhere).await);
    // Bob stays, and sees the group without mallory.
    until(&mut bob, |e| match e {
        Event::NewEpoch { roster, .. } if roster.len() == 1 => Some(()),
        _ => None,
    })
    .await;
    // A ban that would end before it starts is refused.
    let auth = format!("Bearer {ADMIN}");
    let (status, body) = http(
        &sfu.addr,
        "PUT",
        "/admin/rooms/board/bans/eve?until=1",
        &[("Authorization", auth.as_str())],
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_speaks_to_the_admin_api() {
    let sfu = start_sfu(&["--dev", "--admin-token", ADMIN]);
    let mut alice = client(&sfu.addr, "weekly sync", "alice").await;
    let url = format!("http://{}", sfu.addr);
    let admin = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sfu"))
            .args(["admin", "--url", &url, "--admin-token", ADMIN])
            .args(args)
            .output()
            .expect("run")
    };
    let out = admin(&["rooms"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rooms: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(rooms[0]["participants"][0]["identity"], "alice");
    let id = alice.participant_id().to_string();
    let out = admin(&["remove", "--room", "weekly sync", "--participant", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("cannot rejoin with it"), "{said}");
    until(&mut alice, |e| match e {
        Event::Closed { .. } => Some(()),
        _ => None,
    })
    .await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sfu"))
        .args([
            "admin",
            "--url",
            &url,
            "--admin-token",
            "not the token",
            "rooms",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin token"));
}

/// A CA, and a certificate for 127.0.0.1 it signed, written to `dir`: (ca.pem, cert.pem,
/// key.pem).
fn certificates(dir: &std::path::Path) -> [std::path::PathBuf; 3] {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("certificate");
    let paths = ["ca.pem", "cert.pem", "key.pem"].map(|f| dir.join(f));
    std::fs::write(&paths[0], ca.pem()).expect("write");
    std::fs::write(&paths[1], cert.pem()).expect("write");
    std::fs::write(&paths[2], key.serialize_pem()).expect("write");
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reaches_a_server_that_serves_tls_with_its_ca_or_told_not_to_check() {
    let dir = std::env::temp_dir().join(format!("sfu-admin-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let [ca, cert, key] = certificates(&dir);
    let path = |p: &std::path::Path| p.to_str().expect("utf-8").to_owned();
    let sfu = start_sfu(&[
        "--dev",
        "--admin-token",
        ADMIN,
        "--tls-cert",
        &path(&cert),
        "--tls-key",
        &path(&key),
    ]);
    let url = format!("https://{}", sfu.addr);
    let admin = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sfu"))
            .args(["admin", "--url", &url, "--admin-token", ADMIN])
            .args(extra)
            .arg("rooms")
            .output()
            .expect("run")
    };
    for trust in [
        vec!["--ca".to_owned(), path(&ca)],
        vec!["--insecure".to_owned()],
    ] {
        let trust: Vec<&str> = trust.iter().map(String::as_str).collect();
        let out = admin(&trust);
        assert!(
            out.status.success(),
            "{trust:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    }
    // The public CAs did not sign it, and a CA file that holds no certificate is said so.
    let out = admin(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("certificate") || err.contains("issuer"),
        "{err}"
    );
    let out = admin(&["--ca", &path(&key)]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no certificate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_server_tells_its_participants_to_go_and_takes_no_one_new() {
    let sfu = start_sfu(&["--dev", "--admin-token", ADMIN]);
    let mut alice = client(&sfu.addr, "standup", "alice").await;
    until(&mut alice, |e| {
        matches!(e, Event::NewEpoch { .. }).then_some(())
    })
    .await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sfu"))
        .args([
            "admin",
            "--url",
            &format!("http://{}", sfu.addr),
            "--admin-token",
            ADMIN,
            "drain",
        ])
        .output()
        .expect("sfu admin drain");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("draining"));
    // Told to go, as at a shutdown (a client reconnects: elsewhere, behind a load balancer).
    let reason = until(&mut alice, |e| match e {
        Event::Reconnecting { reason, .. } | Event::Closed { reason } => Some(reason),
        _ => None,
    })
    .await;
    assert!(reason.contains("shutting down"), "{reason}");
    let token = process::dev_token(&sfu.addr, "retro", "bob").await;
    assert_eq!(refusal(&sfu.addr, "retro", &token).await, "shutting_down");
}
