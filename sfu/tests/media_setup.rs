//! What the SFU's network settings and room lifecycle do for participants: the active speaker
//! announced from audio levels, the configured port range, public IP and ICE servers, and
//! nothing left running once everyone is gone.

mod common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{
    Bot, LOCALHOST, Ledger, ONE_MEETING_AT_A_TIME, eventually, meeting, start, start_with,
};
use sfu::media::MediaConfig;
use signaling_client::{Client, ClientConfig, Event};
use signaling_protocol::{ErrorCode, IceServer};
use signaling_server::SignalingConfig;

async fn announced_to_all(bots: &[Bot], who: u64) {
    for bot in bots {
        let mut speaker = bot.speaker.clone();
        tokio::time::timeout(common::WAIT, speaker.wait_for(|s| *s == Some(Some(who))))
            .await
            .unwrap_or_else(|_| panic!("{} never heard that {who} speaks", bot.name))
            .expect("speaker channel");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loudest_participant_is_announced_as_active_speaker() {
    let _one = ONE_MEETING_AT_A_TIME.lock().await;
    let sfu = start().await;
    let ledger = Arc::new(Ledger::default());
    let bots = meeting(&sfu, &["alice", "bob", "carol"], &ledger).await;

    bots[1].loudness.store(20, Ordering::Relaxed);
    announced_to_all(&bots, bots[1].participant_id).await;

    // Bob falls silent and Carol speaks: the highlight moves to her.
    bots[1].loudness.store(127, Ordering::Relaxed);
    bots[2].loudness.store(15, Ordering::Relaxed);
    announced_to_all(&bots, bots[2].participant_id).await;

    for bot in bots {
        bot.leave().await;
    }
}

/// `n` consecutive UDP ports free on localhost now.
fn free_ports(n: u16) -> (u16, u16) {
    'search: for base in (42000..60000).step_by(101) {
        for p in base..base + n {
            if UdpSocket::bind((LOCALHOST, p)).is_err() {
                continue 'search;
            }
        }
        return (base, base + n - 1);
    }
    panic!("no free port range");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_uses_the_configured_ports_public_ip_and_ice_servers() {
    let _one = ONE_MEETING_AT_A_TIME.lock().await;
    let ports = free_ports(4);
    let public = "203.0.113.9".parse().expect("ip");
    let stun = IceServer {
        urls: vec!["stun:stun.example.org:3478".into()],
        username: None,
        credential: None,
    };
    let sfu = start_with(
        MediaConfig::new(LOCALHOST, ports, Some(public)),
        SignalingConfig {
            ice_servers: vec![stun.clone()],
            ..SignalingConfig::default()
        },
    )
    .await;
    let ledger = Arc::new(Ledger::default());
    let bot = Bot::join(&sfu, "meeting", "alice", ledger).await;
    assert_eq!(
        bot.ice_servers,
        vec![stun],
        "joined carries the ICE servers"
    );

    let answer = tokio::time::timeout(common::WAIT, async {
        loop {
            let sdp = bot.remote_sdp().await;
            if !sdp.is_empty() {
                break sdp;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the SFU's answer");
    let found = common::candidates(&answer);
    assert!(!found.is_empty(), "the answer has candidates: {answer}");
    for (ip, port) in &found {
        assert_eq!(ip, "203.0.113.9", "only the public address is announced");
        assert!(
            (ports.0..=ports.1).contains(port),
            "port {port} is outside {ports:?}"
        );
    }
    assert_eq!(sfu.media.ports_in_use(), 1);
    bot.leave().await;
    eventually("the port to be released", || sfu.media.ports_in_use() == 0).await;
}

/// An sfu whose media has one UDP port of the range to give.
async fn with_one_port() -> common::TestSfu {
    start_with(
        MediaConfig::new(LOCALHOST, free_ports(1), None),
        SignalingConfig::default(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_beyond_the_port_range_is_told_media_is_unavailable() {
    let _one = ONE_MEETING_AT_A_TIME.lock().await;
    let sfu = with_one_port().await;
    let ledger = Arc::new(Ledger::default());
    let first = Bot::join(&sfu, "meeting", "alice", ledger.clone()).await;
    let second = Bot::join(&sfu, "meeting", "bob", ledger).await;
    eventually("bob's error", || {
        second
            .errors
            .lock()
            .expect("lock")
            .iter()
            .any(|e| e.starts_with(&format!("{:?}", ErrorCode::MediaUnavailable)))
    })
    .await;
    assert!(first.errors.lock().expect("lock").is_empty());
    first.leave().await;
    second.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_that_do_not_parse_cannot_be_answered_or_ask_too_much_take_no_port() {
    let _one = ONE_MEETING_AT_A_TIME.lock().await;
    let sfu = with_one_port().await;
    let mallory = Client::connect(ClientConfig::new(
        sfu.url.clone(),
        "meeting",
        common::token_for("meeting", "mallory"),
    ))
    .await
    .expect("connect");
    // Garbage, and a well-formed offer with no codec the SFU carries, again and again.
    let unusable = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
        a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\n\
        a=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\na=rtcp-mux\r\n\
        a=rtpmap:96 NOTACODEC/8000\r\na=sendonly\r\n";
    // And an offer that would publish more tracks than anyone may (five microphones).
    let mut greedy = unusable.replace("a=group:BUNDLE 0", "a=group:BUNDLE 0 1 2 3 4");
    let section = &unusable[unusable.find("m=audio").expect("a section")..];
    for mid in 1..5 {
        greedy.push_str(&section.replace("a=mid:0", &format!("a=mid:{mid}")));
    }
    for i in 0..6 {
        mallory.send_sdp_offer(if i % 2 == 0 {
            "not sdp".to_owned()
        } else {
            unusable.to_owned()
        });
    }
    mallory.send_sdp_offer(greedy);
    let mut mallory = mallory;
    let refusal = tokio::time::timeout(common::WAIT, async {
        while let Some(event) = mallory.next_event().await {
            if let Event::ServerError {
                code: ErrorCode::PublishNotAllowed,
                message,
            } = event
            {
                return message;
            }
        }
        panic!("mallory's connection closed");
    })
    .await
    .expect("the five-track offer is refused");
    assert!(refusal.contains("sends 5 media sections"), "{refusal}");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        sfu.media.ports_in_use(),
        0,
        "no port is held for refused offers"
    );
    // The one port is still there for someone with a real offer.
    let ledger = Arc::new(Ledger::default());
    let alice = Bot::join(&sfu, "meeting", "alice", ledger).await;
    eventually("alice's media connection", || sfu.media.ports_in_use() == 1).await;
    assert!(alice.errors.lock().expect("lock").is_empty());
    alice.leave().await;
    drop(mallory);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_left_running_after_a_meeting() {
    let _one = ONE_MEETING_AT_A_TIME.lock().await;
    let sfu = start().await;
    let metrics = tokio::runtime::Handle::current().metrics();
    // Let the listener settle, then count what runs with an empty server.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline = metrics.num_alive_tasks();

    let ledger = Arc::new(Ledger::default());
    let bots = meeting(&sfu, &["alice", "bob", "carol"], &ledger).await;
    assert!(metrics.num_alive_tasks() > baseline + 10);
    for bot in bots {
        bot.leave().await;
    }
    eventually("the media room to close", || sfu.media.room_count() == 0).await;
    eventually("every task to end", || {
        metrics.num_alive_tasks() <= baseline
    })
    .await;
    assert_eq!(sfu.signaling.stats().rooms, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_whose_media_connection_dies_is_removed_from_the_room() {
    let _one = ONE_MEETING_AT_A_TIME.lock().await;
    let sfu = start().await;
    let ledger = Arc::new(Ledger::default());
    let mut bots = meeting(&sfu, &["alice", "bob"], &ledger).await;
    // A watcher on the signaling side sees who is in the MLS group.
    let mut watcher = Client::connect(ClientConfig::new(
        &sfu.url,
        "meeting",
        common::token_for("meeting", "watcher"),
    ))
    .await
    .expect("watcher");
    let bob = bots.pop().expect("bob");
    let bob_id = bob.participant_id;
    // Bob's media connection closes while his signaling connection stays open.
    bob.pc.close().await.expect("close");
    let mut roster_without_bob = false;
    while let Ok(Some(event)) = tokio::time::timeout(common::WAIT, watcher.next_event()).await {
        if let Event::NewEpoch { roster, .. } = event
            && roster.len() == 2
            && roster
                .iter()
                .all(|r| !r.name().starts_with(&format!("{bob_id}:")))
        {
            roster_without_bob = true;
            break;
        }
    }
    assert!(roster_without_bob, "bob was removed from the MLS group");
    assert!(
        bob.errors
            .lock()
            .expect("lock")
            .iter()
            .any(|e| e.starts_with(&format!("{:?}", ErrorCode::MediaUnavailable))),
        "bob was told why"
    );
    bob.leave().await;
    for bot in bots {
        bot.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_opus_and_vp9_are_negotiated_whatever_is_offered() {
    let _one = ONE_MEETING_AT_A_TIME.lock().await;
    let sfu = start().await;
    let ledger = Arc::new(Ledger::default());
    // The bots offer every codec webrtc-rs knows (VP8, H264, AV1, G.722, PCMU, ...).
    let bots = meeting(&sfu, &["alice", "bob"], &ledger).await;
    for bot in &bots {
        let sdp = bot.remote_sdp().await;
        let codecs: std::collections::BTreeSet<String> = sdp
            .lines()
            .filter_map(|l| l.strip_prefix("a=rtpmap:"))
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter_map(|c| c.split('/').next())
            .map(str::to_ascii_lowercase)
            .collect();
        assert!(!codecs.is_empty(), "{sdp}");
        for c in &codecs {
            assert!(
                ["opus", "vp9", "rtx"].contains(&c.as_str()),
                "{c} negotiated: {sdp}"
            );
        }
    }
    for bot in bots {
        bot.leave().await;
    }
}
