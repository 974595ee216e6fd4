//! Bad input at the media layer: a malformed SDP, an offer with no usable codec, and garbage
//! datagrams on the media ports each get a clear answer or are shrugged off, and the meeting
//! goes on.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Ledger, eventually, meeting, start, token_for};
use signaling_client::{Client, ClientConfig, Event};
use signaling_protocol::ErrorCode;

async fn next_error(client: &mut Client) -> (ErrorCode, String) {
    loop {
        let event = tokio::time::timeout(common::WAIT, client.next_event())
            .await
            .expect("an answer in time")
            .expect("open");
        match event {
            Event::ServerError { code, message } => return (code, message),
            Event::SdpAnswer(sdp) => panic!("expected an error, got an answer:\n{sdp}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_sdp_and_unusable_codecs_are_refused_and_the_meeting_goes_on() {
    let _serial = common::ONE_MEETING_AT_A_TIME.lock().await;
    let sfu = start().await;
    let ledger = Arc::new(Ledger::default());
    let bots = meeting(&sfu, &["alice", "bob"], &ledger).await;
    let (alice, bob) = (&bots[0], &bots[1]);

    let mut mallory = Client::connect(ClientConfig::new(
        sfu.url.clone(),
        "meeting",
        token_for("meeting", "mallory"),
    ))
    .await
    .expect("connect");
    mallory.send_sdp_offer("this is not SDP".into());
    let (code, message) = next_error(&mut mallory).await;
    assert_eq!(code, ErrorCode::InvalidSdp, "{message}");

    // A well-formed offer whose only codec is one the SFU does not carry.
    let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
        a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\n\
        a=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\na=rtcp-mux\r\n\
        a=rtpmap:96 NOTACODEC/8000\r\na=sendonly\r\n";
    mallory.send_sdp_offer(offer.into());
    let (code, message) = next_error(&mut mallory).await;
    assert_eq!(code, ErrorCode::InvalidSdp, "{message}");
    assert!(message.contains("codec"), "{message}");

    // Alice and bob never noticed.
    let heard = alice.count_from(bob.participant_id, "audio");
    eventually("alice still hearing bob", || {
        alice.count_from(bob.participant_id, "audio") > heard + 5
    })
    .await;
    assert!(alice.errors.lock().expect("lock").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_datagrams_on_the_media_ports_do_not_disturb_anyone() {
    let _serial = common::ONE_MEETING_AT_A_TIME.lock().await;
    let sfu = start().await;
    let ledger = Arc::new(Ledger::default());
    let bots = meeting(&sfu, &["alice", "bob"], &ledger).await;
    let (alice, bob) = (&bots[0], &bots[1]);

    // The SFU's host candidates, from the SDP it sent each of them.
    let mut ports = Vec::new();
    for bot in [alice, bob] {
        for line in bot.remote_sdp().await.lines() {
            if line.starts_with("a=candidate:") && line.contains("127.0.0.1") {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if let Some(port) = fields.get(5).and_then(|p| p.parse::<u16>().ok()) {
                    ports.push(port);
                }
            }
        }
    }
    assert!(!ports.is_empty(), "no SFU candidate found");
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    for i in 0..2000u32 {
        let junk: Vec<u8> = (0..(i % 1200) as usize)
            .map(|j| (i as usize * 31 + j) as u8)
            .collect();
        for &port in &ports {
            let _ = socket.send_to(&junk, ("127.0.0.1", port)).await;
        }
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let heard = alice.count_from(bob.participant_id, "video");
    eventually("alice still seeing bob", || {
        alice.count_from(bob.participant_id, "video") > heard + 5
    })
    .await;
    let heard = bob.count_from(alice.participant_id, "audio");
    eventually("bob still hearing alice", || {
        bob.count_from(alice.participant_id, "audio") > heard + 5
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_another_room_is_refused_and_the_meeting_goes_on() {
    let _serial = common::ONE_MEETING_AT_A_TIME.lock().await;
    let sfu = start().await;
    let ledger = Arc::new(Ledger::default());
    let bots = meeting(&sfu, &["alice", "bob"], &ledger).await;
    let refused = Client::connect(ClientConfig::new(
        &sfu.url,
        "meeting",
        token_for("elsewhere", "mallory"),
    ))
    .await;
    match refused {
        Err(signaling_client::ClientError::Refused { code, .. }) => {
            assert_eq!(code, ErrorCode::WrongRoom)
        }
        other => panic!("expected wrong_room, got {:?}", other.map(|_| ())),
    }
    assert_eq!(sfu.signaling.stats().participants, 2);
    let before = bots[0].count_from(bots[1].participant_id, "video");
    eventually("the meeting to go on", || {
        bots[0].count_from(bots[1].participant_id, "video") > before + 5
    })
    .await;
    for bot in bots {
        bot.leave().await;
    }
}
