//! Single-port mode: every participant's media on one UDP port, told apart by ICE username
//! fragment and then by address, with strangers' datagrams dropped.

mod common;

use std::sync::Arc;

use common::{LOCALHOST, Ledger, ONE_MEETING_AT_A_TIME, eventually, meeting, start_with};
use sfu::media::MediaConfig;
use signaling_server::SignalingConfig;

/// A STUN Binding request whose USERNAME is `username`.
fn binding_request(username: &str) -> Vec<u8> {
    let mut attr = 0x0006u16.to_be_bytes().to_vec();
    attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attr.extend_from_slice(username.as_bytes());
    attr.resize(4 + username.len().div_ceil(4) * 4, 0);
    let mut m = vec![0, 1];
    m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    m.extend_from_slice(&[9; 12]);
    m.extend_from_slice(&attr);
    m
}

/// `check` with a MESSAGE-INTEGRITY attribute of 20 made-up bytes (and its length fixed).
fn with_made_up_integrity(mut check: Vec<u8>) -> Vec<u8> {
    check.extend_from_slice(&0x0008u16.to_be_bytes());
    check.extend_from_slice(&20u16.to_be_bytes());
    check.extend_from_slice(&[0x5a; 20]);
    let len = (check.len() - 20) as u16;
    check[2..4].copy_from_slice(&len.to_be_bytes());
    check
}

/// The ICE username fragment an SDP names.
fn ice_ufrag(sdp: &str) -> String {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .expect("an ice-ufrag")
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_meeting_runs_on_one_udp_port_and_strangers_datagrams_reach_nobody() {
    let _one = ONE_MEETING_AT_A_TIME.lock().await;
    let config = MediaConfig::single_port(LOCALHOST, 0, None).expect("bind the shared port");
    let mux = config.udp_mux.clone().expect("single-port mode");
    let port = mux.port();
    let sfu = start_with(config, SignalingConfig::default()).await;

    // A stranger sprays the port before and during the meeting: garbage, DTLS-looking bytes,
    // and STUN requests for a username fragment nobody has.
    let stranger = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let spray = {
        let stranger = Arc::new(stranger);
        tokio::spawn(async move {
            for i in 0u32.. {
                let datagram = match i % 3 {
                    0 => binding_request("nobodysFrag:x"),
                    1 => vec![22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
                    _ => i.to_be_bytes().repeat(50),
                };
                let _ = stranger.send_to(&datagram, ("127.0.0.1", port)).await;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
    };

    let ledger = Arc::new(Ledger::default());
    let bots = meeting(&sfu, &["alice", "bob", "carol"], &ledger).await;
    for bot in &bots {
        let sdp = bot.remote_sdp().await;
        let found = common::candidates(&sdp);
        assert!(!found.is_empty(), "{sdp}");
        for (ip, p) in found {
            assert_eq!((ip.as_str(), p), ("127.0.0.1", port), "{sdp}");
        }
        assert!(
            bot.errors.lock().expect("lock").is_empty(),
            "{:?}",
            bot.errors
        );
    }
    assert_eq!(mux.connections(), 3);
    assert_eq!(sfu.media.ports_in_use(), 0, "no port of the range is taken");
    let routes = mux.routes();
    assert!(routes >= 3, "each bot's path is a route ({routes})");

    // A second stranger knows alice's username fragment (it travels in clear in every check)
    // and sends checks of its own, with a made-up MESSAGE-INTEGRITY: alice's connection gets
    // them, its ICE agent refuses them, and the stranger's address routes nowhere.
    let alice_frag = ice_ufrag(&bots[0].remote_sdp().await);
    let spoofer = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    for _ in 0..20 {
        let check = with_made_up_integrity(binding_request(&format!("{alice_frag}:spoofer")));
        spoofer
            .send_to(&check, ("127.0.0.1", port))
            .await
            .expect("send");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut buf = [0u8; 1500];
    let answer = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        spoofer.recv_from(&mut buf),
    )
    .await;
    assert!(
        answer.is_err(),
        "a check without the password is answered: {answer:?}"
    );
    assert_eq!(
        mux.routes(),
        routes,
        "the spoofer's address is nobody's route"
    );
    eventually("the stranger's datagrams to be dropped", || {
        mux.dropped() > 30
    })
    .await;

    // Everyone keeps hearing everyone while the stranger goes on.
    let (alice, bob) = (&bots[0], &bots[1]);
    let heard = alice.count_from(bob.participant_id, "video");
    eventually("alice still seeing bob", || {
        alice.count_from(bob.participant_id, "video") > heard + 20
    })
    .await;
    spray.abort();
    for bot in bots {
        bot.leave().await;
    }
    eventually("every connection to leave the port", || {
        mux.connections() == 0
    })
    .await;
    eventually("the media room to close", || sfu.media.room_count() == 0).await;

    // The port serves the next meeting.
    let ledger = Arc::new(Ledger::default());
    let again = meeting(&sfu, &["dave", "erin"], &ledger).await;
    assert_eq!(mux.connections(), 2);
    for bot in again {
        bot.leave().await;
    }
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let err = MediaConfig::single_port(LOCALHOST, port, None).expect_err("the port is taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
}

/// Media bound to every interface (`media_ip = "0.0.0.0"`, the deployment behind a proxy), in
/// both port modes: the SFU announces the interfaces' addresses (never loopback) and a meeting
/// works through them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn media_on_every_interface_works_in_both_port_modes() {
    let _one = ONE_MEETING_AT_A_TIME.lock().await;
    let wildcard = std::net::IpAddr::from([0, 0, 0, 0]);
    for config in [
        MediaConfig::new(wildcard, (0, 0), None),
        MediaConfig::single_port(wildcard, 0, None).expect("bind the shared port"),
    ] {
        let one_port = config.udp_mux.as_ref().map(|m| m.port());
        let sfu = start_with(config, SignalingConfig::default()).await;
        let ledger = Arc::new(Ledger::default());
        let bots = meeting(&sfu, &["alice", "bob"], &ledger).await;
        let sdp = bots[0].remote_sdp().await;
        let found = common::candidates(&sdp);
        assert!(!found.is_empty(), "{sdp}");
        for (ip, port) in found {
            let ip: std::net::IpAddr = ip.parse().expect("an address");
            assert!(!ip.is_loopback() && !ip.is_unspecified(), "{sdp}");
            if let Some(p) = one_port {
                assert_eq!(port, p, "{sdp}");
            }
        }
        for bot in bots {
            bot.leave().await;
        }
        eventually("the media room to close", || sfu.media.room_count() == 0).await;
    }
}
