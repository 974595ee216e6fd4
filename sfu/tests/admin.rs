//! The admin API as an operator uses it: refused without the token; lists rooms and
//! participants; removes a participant (who is told and then leaves the MLS group); closes a
//! room; `sfu admin` over plain HTTP and over TLS (a private CA, or no checks).

mod process;

use std::time::Duration;

use process::{http, start_sfu};
use signaling_client::{Client, ClientConfig, Event};

const ADMIN: &str = "admin token 0123456789";

async fn client(addr: &str, room: &str, name: &str) -> Client {
    let token = process::dev_token(addr, room, name).await;
    Client::connect(ClientConfig::new(format!("ws://{addr}/ws"), room, &token))
        .await
        .expect("join")
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
    let reason = until(&mut bob, |e| match e {
        Event::Closed { reason } => Some(reason),
        _ => None,
    })
    .await;
    assert!(reason.contains("administrator"), "{reason}");
    // Bob's MLS removal follows: Alice reaches an epoch with only herself.
    until(&mut alice, |e| match e {
        Event::NewEpoch { roster, .. } if roster.len() == 1 => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(http(&sfu.addr, "DELETE", &path, &bearer).await.0, 404);

    let (status, body) = http(&sfu.addr, "DELETE", "/admin/rooms/standup", &bearer).await;
    assert_eq!((status, body.as_str()), (200, r#"{"removed":1}"#));
    until(&mut alice, |e| match e {
        Event::Closed { .. } => Some(()),
        _ => None,
    })
    .await;
    let (_, body) = http(&sfu.addr, "GET", "/admin/rooms", &bearer).await;
    assert_eq!(body, "[]");
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
