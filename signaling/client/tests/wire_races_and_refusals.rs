//! Over the wire: commit races, a committer that goes silent mid-commit, refused tokens, and
//! malformed input that changes nothing.

mod common;

use common::raw::Raw;
use common::{Seen, start, token_for, until};
use signaling_client::{Client, ClientConfig, ClientError};
use signaling_protocol::{ClientMessage, CommitRejection, ErrorCode, ServerMessage};
use signaling_server::SignalingConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_commit_at_once_and_exactly_one_wins() {
    let server = start(SignalingConfig::default()).await;
    let mut a = Raw::join(&server.url, "race", "alice").await;
    a.create_group().await;
    let mut b = Raw::join(&server.url, "race", "bob").await;
    let (add_b, ()) = tokio::join!(a.commit_for_request(), b.get_added_later());
    a.send(&ClientMessage::Commit(add_b)).await;
    a.process_next_commit().await;
    b.finish_added().await;
    assert_eq!(a.session.epoch(), Some(1));

    let (ca, cb) = (
        ClientMessage::Commit(a.self_update()),
        ClientMessage::Commit(b.self_update()),
    );
    tokio::join!(a.send(&ca), b.send(&cb));
    let (winner_a, winner_b) = tokio::join!(a.process_next_commit(), b.process_next_commit());
    assert_eq!(winner_a, winner_b, "both saw the same winner");
    let loser = if winner_a == a.pid { &mut b } else { &mut a };
    let rejected = loser
        .recv_until(|m| matches!(m, ServerMessage::CommitRejected { .. }))
        .await;
    assert_eq!(
        rejected,
        ServerMessage::CommitRejected {
            epoch: 2,
            reason: CommitRejection::StaleEpoch
        }
    );
    assert_eq!(a.session.epoch(), Some(2));
    assert_eq!(a.session.epoch(), b.session.epoch());
    assert_eq!(a.session.safety_number(), b.session.safety_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committer_that_disconnects_mid_commit_is_replaced() {
    let server = start(SignalingConfig::default()).await;
    let mut a = Raw::join(&server.url, "r", "alice").await;
    a.create_group().await;
    let mut b = server.client("r", "bob").await;
    let add_b = a.commit_for_request().await;
    a.send(&ClientMessage::Commit(add_b)).await;
    let mut sb = Seen::default();
    until(&mut b, &mut sb, |s| s.roster.len() == 2).await;

    // Carol arrives; alice is asked to commit, and vanishes without a word.
    let mut c = server.client("r", "carol").await;
    a.recv_until(|m| matches!(m, ServerMessage::CommitRequest { .. }))
        .await;
    drop(a);
    let mut sc = Seen::default();
    until(&mut c, &mut sc, |s| s.roster.len() == 2).await;
    until(&mut b, &mut sb, |s| {
        s.roster.len() == 2 && s.epoch == sc.epoch
    })
    .await;
    assert!(
        sb.roster.iter().all(|n| !n.ends_with(":alice")),
        "{:?}",
        sb.roster
    );
    assert_eq!(sb.safety_number, sc.safety_number);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_wrong_room_and_forged_tokens_are_refused_clearly() {
    let server = start(SignalingConfig::default()).await;
    let refused = |token: String, room: &'static str| {
        let url = server.url.clone();
        async move {
            match Client::connect(ClientConfig::new(url, room, token)).await {
                Err(ClientError::Refused { code, message }) => (code, message),
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
    };
    let (code, message) = refused(token_for("r", "alice", -10), "r").await;
    assert_eq!(code, ErrorCode::TokenExpired, "{message}");
    let (code, message) = refused(token_for("other", "alice", 600), "r").await;
    assert_eq!(code, ErrorCode::WrongRoom);
    assert!(message.contains("other"), "{message}");
    let forged = signaling_token::mint(
        &signaling_token::Claims::new("r", "mallory", std::time::Duration::from_secs(600)),
        b"wrong secret",
    )
    .expect("mint");
    let (code, _) = refused(forged, "r").await;
    assert_eq!(code, ErrorCode::InvalidToken);
    // Good for a year, or only from tomorrow: refused, saying why.
    let mint = |claims: signaling_token::Claims| {
        signaling_token::mint(&claims, common::SECRET).expect("mint")
    };
    let year = std::time::Duration::from_secs(365 * 86_400);
    let (code, message) =
        refused(mint(signaling_token::Claims::new("r", "alice", year)), "r").await;
    assert_eq!(code, ErrorCode::InvalidToken);
    assert!(message.contains("longer than"), "{message}");
    let tomorrow = signaling_token::Claims {
        nbf: Some(signaling_token::unix_now() + 86_400),
        ..signaling_token::Claims::new("r", "alice", std::time::Duration::from_secs(90_000))
    };
    let (code, message) = refused(mint(tomorrow), "r").await;
    assert_eq!(code, ErrorCode::InvalidToken);
    assert!(message.contains("not valid yet"), "{message}");
    assert_eq!(server.server.stats().rooms, 0, "no room was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_unknown_oversize_and_invalid_mls_get_errors_and_change_nothing() {
    let server = start(SignalingConfig {
        max_message_bytes: 64 * 1024,
        ..SignalingConfig::default()
    })
    .await;
    let mut a = Raw::join(&server.url, "r", "alice").await;
    a.create_group().await;
    let mut x = Raw::join(&server.url, "r", "xavier").await;
    a.recv_until(|m| matches!(m, ServerMessage::ParticipantJoined(_)))
        .await;

    let expect_error = |m: ServerMessage, code: ErrorCode| match m {
        ServerMessage::Error { code: c, message } => assert_eq!(c, code, "{message}"),
        other => panic!("expected {code:?}, got {other:?}"),
    };
    x.send_text("this is not json").await;
    expect_error(x.recv().await, ErrorCode::MalformedMessage);
    x.send_text(r#"{"type":"teleport","to":"mars"}"#).await;
    expect_error(x.recv().await, ErrorCode::UnknownMessageType);
    x.send_text(&format!(
        r#"{{"type":"sdp_offer","sdp":"{}"}}"#,
        "a".repeat(100 * 1024)
    ))
    .await;
    expect_error(x.recv().await, ErrorCode::MessageTooLarge);
    x.send(&ClientMessage::KeyPackage {
        key_package: vec![0xde, 0xad].into(),
    })
    .await;
    expect_error(x.recv().await, ErrorCode::InvalidMls);
    let mut garbage = a.self_update();
    a.session.discard_pending_commit().expect("discard");
    garbage.commit = vec![1, 2, 3, 4].into();
    a.send(&ClientMessage::Commit(garbage)).await;
    assert_eq!(
        a.recv_until(|m| matches!(m, ServerMessage::CommitRejected { .. }))
            .await,
        ServerMessage::CommitRejected {
            epoch: 0,
            reason: CommitRejection::InvalidMls
        }
    );

    // Nothing changed: xavier is added in exactly the next epoch, as if nothing happened.
    let (add_x, ()) = tokio::join!(a.commit_for_request(), x.get_added_later());
    assert_eq!(add_x.epoch, 0);
    a.send(&ClientMessage::Commit(add_x)).await;
    a.process_next_commit().await;
    x.finish_added().await;
    assert_eq!((a.session.epoch(), x.session.epoch()), (Some(1), Some(1)));
    assert_eq!(a.session.safety_number(), x.session.safety_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_answering_is_dropped_and_removed() {
    let server = start(SignalingConfig {
        ping_interval: std::time::Duration::from_millis(100),
        idle_timeout: std::time::Duration::from_millis(600),
        ..SignalingConfig::default()
    })
    .await;
    let mut a = server.client("r", "alice").await;
    let mut sa = Seen::default();
    until(&mut a, &mut sa, |s| s.epoch == Some(0)).await;
    // Bob joins the group, then his machine freezes: the socket stays open, nothing is read,
    // so no pong ever goes back.
    let mut bob = Raw::join(&server.url, "r", "bob").await;
    bob.get_added().await;
    until(&mut a, &mut sa, |s| s.roster.len() == 2).await;
    let frozen = bob;
    until(&mut a, &mut sa, |s| s.roster.len() == 1).await;
    assert!(sa.roster[0].ends_with(":alice"));
    drop(frozen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_rate_limited_with_a_clear_error() {
    let server = start(SignalingConfig {
        messages_per_second: 5,
        message_burst: 5,
        ..SignalingConfig::default()
    })
    .await;
    let mut a = Raw::join(&server.url, "r", "alice").await;
    a.create_group().await;
    for _ in 0..20 {
        a.send_text(r#"{"type":"sdp_offer","sdp":"v=0"}"#).await;
    }
    let limited = a
        .recv_until(|m| {
            matches!(
                m,
                ServerMessage::Error {
                    code: ErrorCode::RateLimited,
                    ..
                }
            )
        })
        .await;
    assert!(matches!(limited, ServerMessage::Error { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_message_over_the_cap_is_refused_and_large_ones_cost_more() {
    let server = start(SignalingConfig::default()).await;
    let mut a = Raw::join(&server.url, "big", "alice").await;
    a.create_group().await;
    let mut b = Raw::join(&server.url, "big", "bob").await;
    let (add_b, ()) = tokio::join!(a.commit_for_request(), b.get_added_later());
    a.send(&ClientMessage::Commit(add_b)).await;
    a.process_next_commit().await;
    b.finish_added().await;
    let epoch = a.session.epoch().expect("epoch");
    // 600 kB of application message (a valid one would be refused the same: the size is all
    // the server reads first).
    let (_, sealed) = a
        .session
        .seal_application(&vec![b'x'; 600_000])
        .expect("seal");
    a.send(&ClientMessage::Application {
        id: 7,
        epoch,
        message: sealed.into(),
    })
    .await;
    let refused = a
        .recv_until(|m| matches!(m, ServerMessage::ApplicationRejected { .. }))
        .await;
    assert_eq!(
        refused,
        ServerMessage::ApplicationRejected {
            id: 7,
            epoch,
            reason: CommitRejection::TooLarge
        }
    );
    // Just under the cap goes through, and costs 15 messages of the burst of 200: about the
    // 14th in a row is refused for the rate (the bucket refills at 50 a second meanwhile),
    // where 20 small ones would all pass.
    let mut refused_at = None;
    for id in 0..20u64 {
        let (_, sealed) = a
            .session
            .seal_application(&vec![b'y'; 60_000])
            .expect("seal");
        a.send(&ClientMessage::Application {
            id,
            epoch,
            message: sealed.into(),
        })
        .await;
    }
    for _ in 0..20 {
        if let ServerMessage::ApplicationRejected { id, reason, .. } = a
            .recv_until(|m| matches!(m, ServerMessage::ApplicationRejected { .. }))
            .await
        {
            assert_eq!(reason, CommitRejection::RateLimited);
            refused_at = Some(id);
            break;
        }
    }
    assert!(
        refused_at.is_some_and(|id| (10..19).contains(&id)),
        "refused for the rate at {refused_at:?}"
    );
    let got = b
        .recv_until(|m| matches!(m, ServerMessage::Application { .. }))
        .await;
    let ServerMessage::Application { message, .. } = got else {
        unreachable!()
    };
    assert!(message.as_slice().len() < 64 * 1024);
}
