//! Three Rust participants (webrtc-rs peers, signaling clients, media-crypto) meet through the
//! SFU: each publishes SFrame-encrypted audio and video and decrypts every frame of the others.

mod common;

use std::sync::Arc;

use common::{Bot, Ledger, eventually, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_participants_receive_and_decrypt_each_others_audio_and_video() {
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
                eventually(
                    &format!("{} decrypting {kind} from {}", bot.name, other.name),
                    || bot.count_from(other.participant_id, kind) >= 10,
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
