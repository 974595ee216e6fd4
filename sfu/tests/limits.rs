//! Per-address connection limits, as a client meets them: the connection beyond the limit is
//! told `too_many_connections`; a freed slot is usable again; behind a trusted proxy each
//! forwarded client address has its own count, and nobody else's forwarded header counts.

mod process;

use process::{Ws, dev_token, join_raw, start_sfu};

/// Opens the signaling socket (optionally claiming `forwarded_for`), joins, and returns the
/// socket with the first reply's type (and error code, if any).
async fn join(addr: &str, forwarded_for: Option<&str>) -> (Ws, String) {
    let token = dev_token(addr, "r", "someone").await;
    let (ws, reply) = join_raw(addr, "r", &token, forwarded_for).await;
    let v: serde_json::Value = serde_json::from_str(&reply).expect("json");
    let kind = match v["type"].as_str() {
        Some("error") => format!("error:{}", v["code"].as_str().unwrap_or("")),
        Some(t) => t.to_owned(),
        None => reply,
    };
    (ws, kind)
}

#[tokio::test]
async fn one_address_gets_at_most_the_limit_and_a_freed_slot_is_reused() {
    let sfu = start_sfu(&["--dev", "--max-connections-per-ip", "2"]);
    let (first, a) = join(&sfu.addr, None).await;
    let (_second, b) = join(&sfu.addr, None).await;
    let (_, c) = join(&sfu.addr, None).await;
    assert_eq!((a.as_str(), b.as_str()), ("joined", "joined"));
    assert_eq!(c, "error:too_many_connections");
    // A forwarded header from an untrusted peer changes nothing.
    let (_, d) = join(&sfu.addr, Some("203.0.113.5")).await;
    assert_eq!(d, "error:too_many_connections");
    drop(first);
    let mut again = String::new();
    for _ in 0..50 {
        again = join(&sfu.addr, None).await.1;
        if again == "joined" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        again, "joined",
        "the slot of a closed connection is free again"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_address_counts_apart() {
    let sfu = start_sfu(&[
        "--dev",
        "--max-connections-per-ip",
        "1",
        "--trusted-proxy",
        "127.0.0.1",
    ]);
    let (_a, a) = join(&sfu.addr, Some("203.0.113.1")).await;
    let (_b, b) = join(&sfu.addr, Some("203.0.113.2")).await;
    let (_, c) = join(&sfu.addr, Some("198.51.100.9, 203.0.113.1")).await;
    assert_eq!((a.as_str(), b.as_str()), ("joined", "joined"));
    assert_eq!(
        c, "error:too_many_connections",
        "the rightmost untrusted address counts"
    );
}
