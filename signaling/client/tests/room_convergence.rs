//! Real clients over WebSocket against a real server: they converge, carry on through
//! departures, and see leavers removed.

mod common;

use common::{Seen, start, until};
use signaling_server::SignalingConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_clients_joining_at_once_converge_on_one_epoch_and_safety_number() {
    let server = start(SignalingConfig::default()).await;
    let joins = (0..20).map(|i| {
        let url = server.url.clone();
        tokio::spawn(async move {
            let mut client =
                signaling_client::Client::connect(signaling_client::ClientConfig::new(
                    url,
                    "big",
                    common::token_for("big", &format!("bot{i}"), 600),
                ))
                .await
                .expect("connect");
            let mut seen = Seen::default();
            until(&mut client, &mut seen, |s| s.roster.len() == 20).await;
            (client, seen)
        })
    });
    let results: Vec<_> = futures_util::future::join_all(joins)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let (_, first) = &results[0];
    for (_, seen) in &results {
        assert_eq!(seen.epoch, first.epoch);
        assert_eq!(seen.safety_number, first.safety_number);
        assert_eq!(seen.roster, first.roster);
        assert!(seen.failures.is_empty(), "{:?}", seen.failures);
    }
    // 19 joiners, batched: fewer commits than joiners.
    let epoch = first.epoch.expect("epoch");
    assert!(epoch <= 19, "epoch {epoch}");
    assert_eq!(server.server.stats().participants, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaver_is_removed_in_the_next_epoch() {
    let server = start(SignalingConfig::default()).await;
    let mut a = server.client("r", "alice").await;
    let mut sa = Seen::default();
    until(&mut a, &mut sa, |s| s.epoch == Some(0)).await;
    let mut b = server.client("r", "bob").await;
    let mut c = server.client("r", "carol").await;
    let (mut sb, mut sc) = (Seen::default(), Seen::default());
    until(&mut b, &mut sb, |s| s.roster.len() == 3).await;
    until(&mut c, &mut sc, |s| s.roster.len() == 3).await;
    until(&mut a, &mut sa, |s| s.roster.len() == 3).await;
    let before = sa.epoch.expect("epoch");

    c.leave();
    until(&mut a, &mut sa, |s| s.roster.len() == 2).await;
    until(&mut b, &mut sb, |s| s.roster.len() == 2).await;
    assert_eq!(sa.epoch, Some(before + 1));
    assert_eq!(sa.safety_number, sb.safety_number);
    assert!(
        sa.roster.iter().all(|n| !n.ends_with(":carol")),
        "{:?}",
        sa.roster
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_drops_its_client_is_removed_and_joins_go_on() {
    let server = start(SignalingConfig {
        commit_timeout: std::time::Duration::from_millis(500),
        ..SignalingConfig::default()
    })
    .await;
    let mut a = server.client("r", "alice").await;
    let mut sa = Seen::default();
    until(&mut a, &mut sa, |s| s.epoch == Some(0)).await;
    let mut b = server.client("r", "bob").await;
    let mut sb = Seen::default();
    until(&mut b, &mut sb, |s| s.roster.len() == 2).await;
    until(&mut a, &mut sa, |s| s.roster.len() == 2).await;
    // Alice, the member asked to commit, vanishes as carol arrives.
    drop(a);
    let mut c = server.client("r", "carol").await;
    let mut sc = Seen::default();
    until(&mut c, &mut sc, |s| {
        s.roster.len() == 2 && s.roster.iter().any(|n| n.ends_with(":carol"))
    })
    .await;
    until(&mut b, &mut sb, |s| {
        s.roster.iter().any(|n| n.ends_with(":carol")) && s.roster.len() == 2
    })
    .await;
    assert_eq!(sb.safety_number, sc.safety_number);
    assert_eq!(sb.epoch, sc.epoch);
}
