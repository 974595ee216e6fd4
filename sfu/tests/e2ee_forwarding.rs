//! Three Rust participants (webrtc-rs peers, signaling clients, media-crypto) meet through the
//! SFU: each publishes SFrame-encrypted audio and video and decrypts every frame of the others.

mod common;

use std::sync::Arc;

use common::{Bot, Ledger, eventually, eventually_explained, meeting, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_participants_receive_and_decrypt_each_others_audio_and_video() {
    let _serial = common::ONE_MEETING_AT_A_TIME.lock().await;
    let sfu = start().await;
    let ledger = Arc::new(Ledger::default());
    let mut bots = Vec::new();
    for name in ["alice", "bob", "carol"] {
        bots.push(Bot::join(&sfu, "meeting", name, ledger.clone()).await);
    }
    for bot in &bots {
        let mut roster = bot.roster.clone();
        let _ = tokio::time::timeout(common::WAIT, roster.wait_for(|r| r.len() == 3))
            .await
            .expect("roster of three");
    }
    for bot in &bots {
        for other in bots
            .iter()
            .filter(|o| o.participant_id != bot.participant_id)
        {
            for kind in ["audio", "video"] {
                eventually_explained(
                    &format!("{} decrypting {kind} from {}", bot.name, other.name),
                    || bot.count_from(other.participant_id, kind) >= 10,
                    || bot.explain(),
                )
                .await;
            }
        }
        assert!(
            bot.errors.lock().expect("lock").is_empty(),
            "{:?}",
            bot.errors
        );
    }
    // What the SFU forwarded is exactly what was sent: ciphertext, byte for byte.
    let sent = ledger.sent.lock().expect("lock");
    for bot in &bots {
        for r in bot.received.lock().expect("lock").iter() {
            assert!(
                sent.contains(&r.payload),
                "a forwarded payload differs from what was sent"
            );
        }
    }
    assert!(
        sfu.media
            .stats()
            .packets_out
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscribers_key_frame_request_reaches_the_publisher() {
    let _serial = common::ONE_MEETING_AT_A_TIME.lock().await;
    let sfu = start().await;
    let ledger = Arc::new(Ledger::default());
    let bots = meeting(&sfu, &["alice", "bob"], &ledger).await;
    let (alice, bob) = (&bots[0], &bots[1]);
    // Past the 500 ms throttle of the join-time request.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let sent = || {
        sfu.media
            .stats()
            .keyframe_requests_sent
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = sent();
    assert!(bob.request_keyframe_from(alice.participant_id).await);
    eventually("the SFU relaying bob's PLI to alice", || {
        sent() == before + 1
    })
    .await;
    // A burst of requests within the throttle interval becomes at most one more PLI.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    for _ in 0..5 {
        assert!(bob.request_keyframe_from(alice.participant_id).await);
    }
    eventually("one throttled PLI", || sent() == before + 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(sent(), before + 2, "the burst was throttled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leaver_s_tracks_leave_everyone_s_connection_and_an_empty_room_is_cleaned_up() {
    let _serial = common::ONE_MEETING_AT_A_TIME.lock().await;
    let sfu = start().await;
    let ledger = Arc::new(Ledger::default());
    let mut bots = meeting(&sfu, &["alice", "bob", "carol"], &ledger).await;
    let carol = bots.pop().expect("carol");
    let carol_id = carol.participant_id;
    let from_carol =
        |bot: &common::Bot| bot.count_from(carol_id, "audio") + bot.count_from(carol_id, "video");
    for bot in &bots {
        let before = bot.count_from(carol_id, "video");
        eventually("carol's video", || {
            bot.count_from(carol_id, "video") > before + 5
        })
        .await;
    }
    carol.leave().await;
    // Her sections carry nothing of hers from now on (they wait for the next videos).
    for bot in &bots {
        let deadline = std::time::Instant::now() + common::WAIT;
        loop {
            let seen = from_carol(bot);
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            if from_carol(bot) == seen {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} still receives carol's tracks",
                bot.name
            );
        }
    }
    // Alice and bob still hear each other.
    let (alice, bob) = (&bots[0], &bots[1]);
    let heard = alice.count_from(bob.participant_id, "audio");
    eventually("alice still hearing bob", || {
        alice.count_from(bob.participant_id, "audio") > heard + 5
    })
    .await;
    for bot in bots {
        bot.leave().await;
    }
    eventually("the media room closing", || sfu.media.room_count() == 0).await;
}
