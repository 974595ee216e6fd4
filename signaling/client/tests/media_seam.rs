//! The signaling side of media: SDP and ICE go between a participant and its room's media side
//! (the SFU's), which also learns who joins and leaves, from the room's own task.

mod common;

use std::sync::{Arc, Mutex};

use signaling_client::{Client, ClientConfig, Event};
use signaling_protocol::{IceCandidate, MediaSignal, ParticipantId};
use signaling_server::server::{MediaFactory, MediaSender, RoomMedia};
use signaling_server::{SignalingConfig, SignalingServer};

/// Makes rooms that answer every offer with "answer to <offer>" and record what they saw.
#[derive(Default)]
struct Echo {
    log: Arc<Mutex<Vec<String>>>,
}

struct EchoRoom {
    name: String,
    log: Arc<Mutex<Vec<String>>>,
    senders: Vec<(ParticipantId, MediaSender)>,
}

impl MediaFactory for Echo {
    fn room(&self, name: &str) -> Box<dyn RoomMedia> {
        Box::new(EchoRoom {
            name: name.to_owned(),
            log: self.log.clone(),
            senders: Vec::new(),
        })
    }
}

impl RoomMedia for EchoRoom {
    fn joined(&mut self, participant: ParticipantId, may_publish: bool, sender: MediaSender) {
        let line = format!("joined {} {participant} {may_publish}", self.name);
        self.log.lock().expect("lock").push(line);
        self.senders.push((participant, sender));
    }

    fn signal(&mut self, participant: ParticipantId, signal: MediaSignal) {
        self.log
            .lock()
            .expect("lock")
            .push(format!("{participant} {signal:?}"));
        if let MediaSignal::Offer(sdp) = signal {
            let (_, s) = self
                .senders
                .iter()
                .find(|(p, _)| *p == participant)
                .expect("sender");
            assert!(s.send(MediaSignal::Answer(format!("answer to {sdp}"))));
        }
    }

    fn left(&mut self, participant: ParticipantId) {
        let line = format!("left {} {participant}", self.name);
        self.log.lock().expect("lock").push(line);
    }

    fn poll(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Pending
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_reach_the_media_handler_and_answers_come_back() {
    let echo = Arc::new(Echo::default());
    let server = SignalingServer::with_media(
        SignalingConfig {
            token_secret: common::SECRET.to_vec(),
            ..SignalingConfig::default()
        },
        echo.clone(),
    )
    .expect("server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("ws://{}/ws", listener.local_addr().expect("addr"));
    let app = server.router();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut client = Client::connect(ClientConfig::new(
        url,
        "r",
        common::token_for("r", "alice", 600),
    ))
    .await
    .expect("connect");
    let me = client.participant_id();
    client.send_sdp_offer("v=0 offer".into());
    client.send_ice_candidate(IceCandidate {
        candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
        username_fragment: None,
    });
    let answer = loop {
        match client.next_event().await.expect("event") {
            Event::SdpAnswer(sdp) => break sdp,
            Event::ServerError { code, message } => panic!("{code:?}: {message}"),
            _ => {}
        }
    };
    assert_eq!(answer, "answer to v=0 offer");
    drop(client);
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while !echo
        .log
        .lock()
        .expect("lock")
        .iter()
        .any(|l| l.starts_with("left"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never told of the leave: {:?}",
            echo.log.lock().expect("lock")
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let log = echo.log.lock().expect("lock").clone();
    assert_eq!(log[0], format!("joined r {me} true"));
    assert_eq!(log[1], format!("{me} Offer(\"v=0 offer\")"));
    assert!(log[2].starts_with(&format!("{me} Candidate(")), "{log:?}");
    assert_eq!(log.last(), Some(&format!("left r {me}")));
}
