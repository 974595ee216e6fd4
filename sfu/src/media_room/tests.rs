//! The room with real WebRTC clients on the emulated network ([`super::emulated`]).

use std::collections::BTreeMap;
use std::time::Duration;

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling_protocol::{ErrorCode, PauseReason};
use signaling_protocol::{MediaSignal, VideoWant};

use super::emulated::{CLEAN, Conditions, LOSSY, World};
use super::{Input, Output};
use super::{Layer, MediaKind, Policy};

#[test]
fn participants_receive_every_track_of_the_others_byte_for_byte() {
    let mut w = World::new(1, CLEAN);
    w.join(1, true);
    w.join(2, true);
    w.run(Duration::from_millis(1500), false);
    w.join(3, true);
    w.run(Duration::from_secs(3), true);
    for pid in 1..=3u64 {
        let got = w.received(pid);
        let others: Vec<String> = (1..=3u64)
            .filter(|&q| q != pid)
            .map(|q| q.to_string())
            .collect();
        assert_eq!(
            got.keys().cloned().collect::<Vec<_>>(),
            others,
            "participant {pid}: {got:?}"
        );
        for (publisher, tracks) in &got {
            assert_eq!(tracks.len(), 2, "{pid} gets audio and video of {publisher}");
            for &(packets, distinct, corrupt) in tracks {
                assert_eq!(corrupt, 0, "every byte as sent");
                assert!(packets > 50, "{pid} from {publisher}: {packets} packets");
                assert_eq!(packets, distinct, "no duplicates on a clean network");
            }
        }
        // Sections name nobody (the payload says whose it is): the room says which stream, the
        // publisher's own, each video section carries.
        let c = &w.clients[&pid];
        for r in c.received.values().filter(|r| !r.publisher.is_empty()) {
            if r.video {
                assert!(
                    signaling_protocol::media_stream::parse_video_section(&r.stream).is_some(),
                    "{}",
                    r.stream
                );
                assert_eq!(r.mislabelled, 0, "the map names each packet's publisher");
                let named = format!("{0}.stream-{0}", r.publisher);
                assert!(
                    c.sections
                        .values()
                        .any(|(now, _)| now.as_ref() == Some(&named)),
                    "{named} in {:?}",
                    c.sections
                );
            } else {
                assert!(
                    signaling_protocol::media_stream::parse_audio_section(&r.stream).is_some(),
                    "{}",
                    r.stream
                );
            }
        }
        assert!(
            w.clients[&pid].errors.is_empty(),
            "{:?}",
            w.clients[&pid].errors
        );
    }
    let c = w.room.counters();
    assert!(c.packets_out >= 2 * c.packets_in - 200, "{c:?}");
}

#[test]
fn a_new_subscriber_makes_the_publisher_send_a_key_frame() {
    let mut w = World::new(2, CLEAN);
    w.join(1, true);
    w.run(Duration::from_millis(500), true);
    assert_eq!(w.clients[&1].keyframe_requests, 0, "nobody to send to yet");
    w.join(2, false);
    w.run(Duration::from_secs(2), true);
    assert!(w.clients[&1].keyframe_requests >= 1);
    assert!(w.room.counters().keyframe_requests_sent >= 1);
}

#[test]
fn a_stopped_track_leaves_every_subscriber_at_once() {
    let mut w = World::new(3, CLEAN);
    w.join(1, true);
    w.join(2, false);
    w.join(3, false);
    w.run(Duration::from_secs(2), true);
    let kinds = |w: &World| -> Vec<(MediaKind, usize)> {
        w.room
            .published()
            .into_iter()
            .map(|(_, k, subs)| (k, subs.len()))
            .collect()
    };
    assert_eq!(
        kinds(&w),
        vec![(MediaKind::Audio, 2), (MediaKind::Video, 2)]
    );
    w.stop_video(1);
    w.run(Duration::from_millis(200), true);
    assert_eq!(
        kinds(&w),
        vec![(MediaKind::Audio, 2)],
        "the video is gone for both"
    );
    let before: Vec<usize> = [2u64, 3]
        .iter()
        .map(|&p| w.received(p)["1"].iter().map(|t| t.0).sum())
        .collect();
    w.run(Duration::from_secs(1), true);
    let after: Vec<usize> = [2u64, 3]
        .iter()
        .map(|&p| w.received(p)["1"].iter().map(|t| t.0).sum())
        .collect();
    for (b, a) in before.iter().zip(&after) {
        assert!(
            (45..=55).contains(&(a - b)),
            "only audio flows on: {b} -> {a}"
        );
    }
}

#[test]
fn a_participant_whose_token_forbids_publishing_is_told_and_its_tracks_go_nowhere() {
    let mut w = World::new(4, CLEAN);
    w.join(1, true);
    // Its token says listener, yet it offers and sends audio and video.
    w.join_with(2, true, false);
    w.run(Duration::from_secs(2), true);
    let errors = &w.clients[&2].errors;
    assert_eq!(
        errors.len(),
        2,
        "once per track, not per packet: {errors:?}"
    );
    assert!(
        errors
            .iter()
            .all(|(c, _)| *c == ErrorCode::PublishNotAllowed)
    );
    assert!(w.received(1).is_empty(), "nothing of 2 reaches 1");
    assert_eq!(w.received(2).len(), 1, "2 still receives 1");
    assert!(w.room.published().iter().all(|(p, ..)| *p == 1));
}

#[test]
fn loss_reordering_and_jitter_on_every_link_are_repaired_by_nack_on_both_hops() {
    let mut w = World::new(6, LOSSY);
    w.join(1, true);
    w.join(2, false);
    w.run(Duration::from_secs(2), false);
    w.run(Duration::from_secs(6), true);
    let video = w.received(2)["1"]
        .iter()
        .map(|&(_, distinct, corrupt)| (distinct, corrupt))
        .max()
        .unwrap();
    let sent = w.clients[&1]
        .senders
        .iter()
        .find(|s| s.2 == RtpCodecKind::Video)
        .map(|s| usize::from(s.3) - 1)
        .unwrap();
    assert_eq!(video.1, 0);
    // The first packets went out before the subscriber was there; of the rest nearly all
    // arrive though each hop loses 3% (~6% end to end without repair).
    assert!(
        video.0 as f64 >= 0.97 * (sent as f64 - 30.0),
        "{} of {sent} video packets",
        video.0
    );
}

#[test]
fn the_loudest_participant_becomes_the_active_speaker() {
    let mut w = World::new(7, CLEAN);
    w.join(1, true);
    w.join(2, true);
    w.run(Duration::from_secs(1), true);
    assert_eq!(w.speaker, None);
    w.clients.get_mut(&2).unwrap().level = 20;
    w.run(Duration::from_secs(2), true);
    assert_eq!(w.speaker, Some(2));
}

#[test]
fn a_newcomer_is_told_who_speaks_now_without_waiting_for_a_change() {
    let mut w = World::new(7, CLEAN);
    w.join(1, true);
    w.join(2, true);
    w.clients.get_mut(&2).unwrap().level = 20;
    w.run(Duration::from_secs(2), true);
    assert_eq!(w.speaker, Some(2));
    // What the world heard is forgotten: only what is said from now on counts.
    w.speaker = None;
    w.join(3, true);
    w.run(Duration::from_millis(600), true);
    assert_eq!(
        w.speaker,
        Some(2),
        "the speaker, said again at the tick after 3 joined"
    );
}

#[test]
fn a_participant_whose_network_vanishes_is_disconnected_and_its_tracks_end() {
    let mut w = World::new(8, CLEAN);
    w.join(1, true);
    w.join(2, true);
    w.run(Duration::from_secs(2), true);
    w.clients.get_mut(&1).unwrap().vanished = true;
    w.run(Duration::from_secs(40), true);
    assert!(w.clients[&1].disconnected, "told, and its signaling ends");
    assert!(w.closed_transports.contains(&1));
    assert!(w.room.published().iter().all(|(p, ..)| *p == 2));
}

/// A participant whose network goes away and comes back as another restarts ICE over its
/// signaling connection: the room answers with the restart, media flows both ways again on the
/// same connection, and it keeps its place (no disconnect, its tracks still published).
#[test]
fn a_participant_whose_network_changes_restarts_ice_and_keeps_its_place() {
    let mut w = World::new(12, CLEAN);
    w.join(1, true);
    w.join(2, true);
    w.run(Duration::from_secs(2), true);
    let ufrag = |w: &World| {
        let sdp = &w.clients[&1].pc.local_description().expect("offered").sdp;
        sdp.lines()
            .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
            .map(str::to_owned)
    };
    let before = ufrag(&w);
    w.clients.get_mut(&1).unwrap().vanished = true;
    // Past ICE's 5 s to "disconnected" on both sides.
    w.run(Duration::from_secs(8), true);
    w.restart_ice_from(1, "10.0.2.1:6000".parse().unwrap());
    w.run(Duration::from_secs(3), true);
    assert_ne!(ufrag(&w), before, "new ICE credentials");
    let (from_1, from_2) = (w.packets_from(2), w.packets_from(1));
    w.run(Duration::from_secs(1), true);
    let grew = |now: &BTreeMap<String, usize>, then: &BTreeMap<String, usize>, p: &str| {
        now.get(p).copied().unwrap_or(0) - then.get(p).copied().unwrap_or(0)
    };
    assert!(
        grew(&w.packets_from(2), &from_1, "1") >= 100,
        "2 gets 1's media again"
    );
    assert!(
        grew(&w.packets_from(1), &from_2, "2") >= 100,
        "1 gets 2's media again"
    );
    // Long past ICE's time to "failed": still the same participant and connection.
    w.run(Duration::from_secs(30), true);
    assert!(!w.clients[&1].disconnected);
    assert!(!w.closed_transports.contains(&1));
    assert_eq!(
        w.room.published().iter().filter(|(p, ..)| *p == 1).count(),
        2
    );
    assert!(
        w.clients[&1].errors.is_empty(),
        "{:?}",
        w.clients[&1].errors
    );
}

#[test]
fn an_offer_that_cannot_be_answered_takes_no_transport() {
    let mut w = World::new(9, CLEAN);
    w.room.handle_input(
        w.now,
        Input::Joined {
            participant: 1,
            may_publish: true,
        },
    );
    w.room.handle_input(
        w.now,
        Input::Signal {
            participant: 1,
            signal: MediaSignal::Offer("v=0\r\nnot sdp".into()),
        },
    );
    let outs: Vec<Output> = std::iter::from_fn(|| w.room.poll_output()).collect();
    assert!(
        matches!(
            &outs[..],
            [Output::Error {
                code: ErrorCode::InvalidSdp,
                ..
            }]
        ),
        "{outs:?}"
    );
}

#[test]
fn an_answer_without_an_offer_is_refused() {
    let mut w = World::new(10, CLEAN);
    w.join(1, true);
    w.run(Duration::from_millis(300), false);
    w.room.handle_input(
        w.now,
        Input::Signal {
            participant: 1,
            signal: MediaSignal::Answer("v=0".into()),
        },
    );
    w.run(Duration::from_millis(10), false);
    assert!(
        w.clients[&1]
            .errors
            .iter()
            .any(|(c, m)| *c == ErrorCode::InvalidSdp && m.contains("without an offer"))
    );
}

#[test]
fn an_offer_that_crosses_the_rooms_offer_is_answered_and_the_room_offers_again() {
    let mut w = World::new(11, CLEAN);
    w.join(2, false);
    w.run(Duration::from_millis(500), false);
    w.clients.get_mut(&2).unwrap().hold_offers = true;
    w.join(1, true);
    w.run(Duration::from_millis(500), true);
    assert_eq!(w.clients[&2].held.len(), 1, "the room offered 1's tracks");
    // 2 ignores that offer and sends one of its own: the offers cross.
    w.clients.get_mut(&2).unwrap().hold_offers = false;
    w.reoffer(2);
    w.run(Duration::from_secs(2), true);
    assert!(
        w.clients[&2].errors.is_empty(),
        "{:?}",
        w.clients[&2].errors
    );
    let got = w.received(2);
    assert_eq!(got["1"].len(), 2, "audio and video of 1 arrive: {got:?}");
    assert!(got["1"].iter().all(|t| t.0 > 20));
}

/// Random joins, leaves, stopped tracks and crossing offers, on a lossy network: once things
/// settle, every participant receives every track of everyone else present, and nothing of
/// anyone gone.
#[test]
fn under_churn_everyone_present_receives_everyone_else_and_nothing_of_the_departed() {
    use rand::{Rng, SeedableRng};
    let lossy = Conditions {
        loss: 0.01,
        delay: Duration::from_millis(10),
        jitter: Duration::from_millis(5),
    };
    for seed in 0..5u64 {
        let mut w = World::new(100 + seed, lossy);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut next = 1u64;
        for _ in 0..20 {
            let present: Vec<u64> = w.clients.keys().copied().collect();
            match rng.random_range(0..10) {
                0..=4 if present.len() < 5 => {
                    w.join(next, rng.random_bool(0.7));
                    next += 1;
                }
                5..=6 if !present.is_empty() => {
                    w.leave(present[rng.random_range(0..present.len())]);
                }
                7 => {
                    let video: Vec<u64> = present
                        .iter()
                        .copied()
                        .filter(|p| {
                            w.clients[p]
                                .senders
                                .iter()
                                .any(|s| s.2 == RtpCodecKind::Video)
                        })
                        .collect();
                    if let Some(&p) = video.first() {
                        w.stop_video(p);
                    }
                }
                8 if !present.is_empty() => w.reoffer(present[rng.random_range(0..present.len())]),
                _ => {}
            }
            w.run(Duration::from_millis(rng.random_range(50..400)), true);
        }
        // Some arrive last, into whatever the churn left.
        while w.clients.len() < 3 {
            w.join(next, true);
            next += 1;
        }
        w.run(Duration::from_secs(2), true);
        let before: BTreeMap<u64, BTreeMap<String, usize>> =
            w.clients.keys().map(|&p| (p, w.packets_from(p))).collect();
        w.run(Duration::from_secs(1), true);
        let present: Vec<u64> = w.clients.keys().copied().collect();
        for &sub in &present {
            let now = w.packets_from(sub);
            for &publisher in &present {
                let sends = w.clients[&publisher].senders.len();
                if publisher == sub || sends == 0 {
                    continue;
                }
                let key = publisher.to_string();
                let grew = now.get(&key).copied().unwrap_or(0)
                    - before[&sub].get(&key).copied().unwrap_or(0);
                // One second: 50 audio packets, 75 more with video.
                assert!(
                    grew >= 40,
                    "seed {seed}: {sub} got {grew} packets of {publisher} in 1 s"
                );
            }
            assert!(
                w.clients[&sub].errors.is_empty(),
                "seed {seed}: {:?}",
                w.clients[&sub].errors
            );
        }
        for (publisher, _, subscribers) in w.room.published() {
            assert!(
                present.contains(&publisher),
                "seed {seed}: a track of {publisher}, who left"
            );
            assert!(
                subscribers.iter().all(|s| present.contains(s)),
                "seed {seed}"
            );
        }
    }
}

/// A long-lived subscriber's connection does not grow with the publishers who came and went:
/// a departed track's section carries the next publisher's track of that kind, which arrives
/// intact and under its own publisher's name, with nothing more of the departed.
#[test]
fn publishers_who_come_and_go_reuse_a_subscribers_sections() {
    let mut w = World::new(7, CLEAN);
    w.join(1, false);
    w.join(2, true);
    w.run(Duration::from_secs(2), true);
    let first = w.room.sections(1).expect("a connection");
    // The listener's own two receiving sections, an audio section (this room forwards every
    // audio stream: one section per stream heard at once) and 2's video.
    assert_eq!(first, 4);
    for publisher in 3..=8u64 {
        w.leave(publisher - 1);
        w.join(publisher, true);
        w.run(Duration::from_secs(2), true);
        let before = w.packets_from(1);
        w.run(Duration::from_secs(1), true);
        let after = w.packets_from(1);
        let key = publisher.to_string();
        let grew = after.get(&key).copied().unwrap_or(0) - before.get(&key).copied().unwrap_or(0);
        assert!(grew >= 100, "1 got {grew} packets of {publisher} in 1 s");
        for gone in 2..publisher {
            let k = gone.to_string();
            assert_eq!(
                after.get(&k),
                before.get(&k),
                "nothing more of {gone}, who left"
            );
        }
        assert_eq!(w.room.sections(1), Some(first), "after {publisher} came");
    }
    // Two at once: one more section per kind, and the same again after one of them goes.
    w.join(20, true);
    w.run(Duration::from_secs(2), true);
    assert_eq!(w.room.sections(1), Some(first + 2));
    w.leave(8);
    w.join(21, true);
    w.run(Duration::from_secs(2), true);
    assert_eq!(w.room.sections(1), Some(first + 2));
    let got = w.received(1);
    for publisher in ["20", "21"] {
        assert!(got[publisher].iter().all(|&(_, _, corrupt)| corrupt == 0));
    }
    assert!(
        w.clients[&1].errors.is_empty(),
        "{:?}",
        w.clients[&1].errors
    );
}

#[test]
fn each_subscriber_gets_the_layers_chosen_for_it_as_one_unbroken_stream() {
    let mut w = World::new(11, CLEAN);
    w.join_svc(1);
    w.join(2, false);
    w.join(3, false);
    w.run(Duration::from_secs(1), false);
    let video = w.room.track_of(1, MediaKind::Video);
    assert!(video.is_none(), "published with its first packet");
    w.run(Duration::from_millis(200), true);
    let video = w.room.track_of(1, MediaKind::Video).expect("published");
    let low = Layer {
        spatial: 0,
        temporal: 0,
    };
    w.room.set_layers(2, video, Some(low));
    w.run(Duration::from_millis(100), true);
    w.forget_received(2);
    w.forget_received(3);
    w.run(Duration::from_secs(3), true);
    let (two, three) = (w.video_from(2, 1), w.video_from(3, 1));
    // 2: S0 of the T0 pictures only, each marked as its picture's end.
    assert_eq!(two.layers.keys().copied().collect::<Vec<_>>(), vec![(0, 0)]);
    assert_eq!(two.markers.keys().copied().collect::<Vec<_>>(), vec![0]);
    assert_eq!(two.markers[&0], two.layers[&(0, 0)]);
    // 3: every layer, the picture's end on S2 only.
    assert_eq!(three.layers.len(), 9, "{:?}", three.layers);
    assert_eq!(three.markers.keys().copied().collect::<Vec<_>>(), vec![2]);
    for r in [two, three] {
        assert_eq!(r.corrupt, 0);
        assert_eq!(
            r.sequence_breaks, 0,
            "the numbers close up over what is left out"
        );
        assert_eq!(r.packets, r.seen.len(), "no duplicates");
    }
    let three_packets = three.packets;
    assert!(
        two.packets * 6 < three_packets,
        "{} vs {three_packets}",
        two.packets
    );

    // 2 goes up: a key frame is asked for (the upper layers are predicted from pictures it
    // did not get) and brings every layer; 3 goes down at once.
    let keys = w.clients[&1].video.key_pictures;
    w.room.set_layers(2, video, Some(Layer::ALL));
    w.room.set_layers(
        3,
        video,
        Some(Layer {
            spatial: 1,
            temporal: 2,
        }),
    );
    w.run(Duration::from_millis(100), true);
    w.forget_received(3);
    w.run(Duration::from_secs(2), true);
    assert!(
        w.clients[&1].video.key_pictures > keys,
        "a key picture was asked for"
    );
    let two = w.video_from(2, 1);
    assert_eq!(two.layers.len(), 9, "{:?}", two.layers);
    assert_eq!(two.sequence_breaks, 0);
    let three = w.video_from(3, 1);
    let s2 = |l: &BTreeMap<(u8, u8), usize>| -> usize {
        l.iter().filter(|((s, _), _)| *s == 2).map(|(_, n)| n).sum()
    };
    assert_eq!(s2(&three.layers), 0, "no S2 since");
    assert!(three.markers[&1] > 0);
    assert_eq!(three.sequence_breaks, 0);
}

#[test]
fn a_paused_subscriber_gets_no_video_packets_and_resumes_at_a_key_frame() {
    let mut w = World::new(12, CLEAN);
    w.join_svc(1);
    w.join(2, false);
    w.run(Duration::from_secs(1), false);
    w.run(Duration::from_millis(500), true);
    let video = w.room.track_of(1, MediaKind::Video).expect("published");
    w.room.set_layers(2, video, None);
    w.run(Duration::from_millis(100), true);
    let paused_at = w.video_from(2, 1).packets;
    let keys = w.clients[&1].video.key_pictures;
    w.run(Duration::from_secs(2), true);
    assert_eq!(w.video_from(2, 1).packets, paused_at);
    assert_eq!(
        w.clients[&1].video.key_pictures, keys,
        "no key frame while paused"
    );
    w.room.set_layers(2, video, Some(Layer::ALL));
    w.run(Duration::from_secs(1), true);
    assert!(w.clients[&1].video.key_pictures > keys);
    let r = w.video_from(2, 1);
    assert!(r.packets > paused_at + 50);
    assert_eq!((r.corrupt, r.sequence_breaks), (0, 0));
}

#[test]
fn under_loss_and_reordering_a_low_layer_subscriber_gets_its_layers_whole() {
    let mut w = World::new(13, LOSSY);
    w.join_svc(1);
    w.join(2, false);
    w.join(3, false);
    w.run(Duration::from_secs(2), false);
    w.run(Duration::from_millis(300), true);
    let video = w.room.track_of(1, MediaKind::Video).expect("published");
    let low = Layer {
        spatial: 1,
        temporal: 1,
    };
    w.room.set_layers(2, video, Some(low));
    w.run(Duration::from_millis(200), true);
    w.forget_received(2);
    w.run(Duration::from_secs(6), true);
    let r = w.video_from(2, 1);
    assert_eq!(r.corrupt, 0);
    assert!(
        r.layers.keys().all(|&(s, t)| s <= 1 && t <= 1),
        "{:?}",
        r.layers
    );
    // 150 pictures, half of them T0 or T1, of 2 packets each (S0, S1) up to S1.
    let expected = 150;
    assert!(
        r.seen.len() as f64 >= 0.95 * expected as f64,
        "{} of {expected}",
        r.seen.len()
    );
    assert!(w.video_from(3, 1).layers.len() == 9);
}

#[test]
fn a_subscriber_gets_each_video_at_the_size_it_shows_it_and_nothing_of_one_it_does_not() {
    let mut w = World::new(14, CLEAN);
    w.join_svc(1);
    for pid in 2..=4 {
        w.join(pid, false);
    }
    w.run(Duration::from_secs(1), false);
    let wants = |height| MediaSignal::VideoWants {
        videos: vec![VideoWant {
            stream: "1.stream-1".into(),
            height,
        }],
        last_n: None,
    };
    // Said before the video is published: it holds from its first packet.
    w.input(Input::Signal {
        participant: 2,
        signal: wants(300),
    });
    w.input(Input::Signal {
        participant: 3,
        signal: wants(0),
    });
    w.run(Duration::from_secs(3), true);
    let spatial = |w: &World, pid| -> Vec<u8> {
        let mut s: Vec<u8> = w.video_from(pid, 1).layers.keys().map(|l| l.0).collect();
        s.dedup();
        s
    };
    assert_eq!(spatial(&w, 2), vec![0, 1], "360 for a 300 px tile");
    assert!(
        w.clients[&3]
            .received
            .values()
            .all(|r| !r.video || r.packets == 0),
        "a video not shown costs nothing"
    );
    assert_eq!(spatial(&w, 4), vec![0, 1, 2], "not named: everything");
    // 3 shows it now, large; 2 hides it.
    w.input(Input::Signal {
        participant: 3,
        signal: wants(720),
    });
    w.input(Input::Signal {
        participant: 2,
        signal: wants(0),
    });
    w.run(Duration::from_millis(100), true);
    w.forget_received(2);
    w.run(Duration::from_secs(2), true);
    assert_eq!(spatial(&w, 3), vec![0, 1, 2]);
    assert_eq!(w.video_from(2, 1).packets, 0);
    // A list beyond the limit is refused and changes nothing.
    let many = (0..=signaling_protocol::MAX_VIDEO_WANTS)
        .map(|i| VideoWant {
            stream: format!("{i}"),
            height: 1,
        })
        .collect();
    w.input(Input::Signal {
        participant: 3,
        signal: MediaSignal::VideoWants {
            videos: many,
            last_n: None,
        },
    });
    w.run(Duration::from_millis(1), false);
    assert!(
        w.clients[&3]
            .errors
            .iter()
            .any(|(c, _)| *c == ErrorCode::MalformedMessage)
    );
    w.forget_received(3);
    w.run(Duration::from_secs(1), true);
    assert_eq!(spatial(&w, 3), vec![0, 1, 2]);
}

#[test]
fn each_participant_hears_the_three_loudest_and_silent_microphones_cost_nothing() {
    let mut w = World::with_policy(15, CLEAN, Policy::default());
    for pid in 1..=5 {
        w.join(pid, true);
    }
    w.join(6, false);
    // 1-3 speak, 4 softly, 5 is silent.
    for (pid, level) in [(1, 20), (2, 25), (3, 30), (4, 45), (5, 127)] {
        w.clients.get_mut(&pid).unwrap().level = level;
    }
    w.run(Duration::from_secs(2), false);
    w.run(Duration::from_secs(2), true);
    let heard = |w: &World, pid| -> Vec<u64> {
        (1..=5)
            .filter(|&p| p != pid && w.audio_from(pid, p) > 10)
            .collect()
    };
    assert_eq!(heard(&w, 6), vec![1, 2, 3]);
    assert_eq!(heard(&w, 1), vec![2, 3], "a speaker hears the other two");
    assert_eq!(w.audio_from(6, 5), 0, "silence is not forwarded at all");
    // 4 starts to speak loudly: it takes the quietest place at once.
    w.forget_received(6);
    w.clients.get_mut(&4).unwrap().level = 10;
    w.run(Duration::from_secs(1), true);
    assert!(w.audio_from(6, 4) >= 45, "{} of 50", w.audio_from(6, 4));
    w.forget_received(6);
    w.run(Duration::from_secs(1), true);
    assert_eq!(heard(&w, 6), vec![1, 2, 4]);
    // Each stream stays unbroken for its receiver across the gaps.
    for r in w.clients[&6].received.values() {
        assert_eq!(r.corrupt, 0);
    }
}

/// Decision 0044 for audio: a receiver hears the loudest through three sections of its own,
/// which whoever speaks takes in turn; a publisher who joins adds its video's section to the
/// others' connections and nothing for its sound.
#[test]
fn the_loudest_take_turns_in_three_audio_sections_and_a_join_adds_none() {
    let mut w = World::with_policy(16, CLEAN, Policy::default());
    w.join(9, false);
    for pid in 1..=2 {
        w.join(pid, true);
        w.clients.get_mut(&pid).unwrap().level = 20;
    }
    w.run(Duration::from_secs(2), true);
    // Its own two, three audio sections, two videos.
    assert_eq!(w.room.sections(9), Some(7));
    for pid in 3..=6 {
        w.join(pid, true);
        w.clients.get_mut(&pid).unwrap().level = 127;
    }
    w.run(Duration::from_secs(2), true);
    assert_eq!(
        w.room.sections(9),
        Some(11),
        "a video section each, no audio section"
    );
    // 1 and 2 fall silent, 3, 5 and 6 speak up: they take the sections over.
    for (pid, level) in [(1, 127), (2, 127), (3, 30), (5, 20), (6, 25)] {
        w.clients.get_mut(&pid).unwrap().level = level;
    }
    w.run(Duration::from_secs(1), true);
    w.forget_received(9);
    w.run(Duration::from_secs(1), true);
    let heard: Vec<u64> = (1..=6).filter(|&p| w.audio_from(9, p) > 0).collect();
    assert_eq!(heard, vec![3, 5, 6]);
    assert!(w.audio_from(9, 5) >= 45, "{}", w.audio_from(9, 5));
    assert_eq!(w.room.sections(9), Some(11), "nobody renegotiated");
    // Six publishers' sound, all through at most three tracks, every byte as sent.
    let audio: std::collections::BTreeSet<&str> = w.clients[&9]
        .received
        .iter()
        .filter(|(_, r)| !r.video && !r.publisher.is_empty())
        .map(|(k, _)| k.split('/').next().unwrap())
        .collect();
    assert!((1..=3).contains(&audio.len()), "{audio:?}");
    assert!(w.clients[&9].received.values().all(|r| r.corrupt == 0));
}

#[test]
fn a_receiver_that_shows_two_videos_keeps_two_video_sections_and_the_speakers_take_them_over() {
    let mut w = World::with_policy(18, CLEAN, Policy::default());
    let streams: Vec<String> = (1..=6).map(|p| format!("{p}.stream-{p}")).collect();
    let all: Vec<&str> = streams.iter().map(String::as_str).collect();
    w.join(9, false);
    // It says what it shows before its offer is answered: nothing comes unnamed.
    w.show(9, &all, 180, Some(2));
    for pid in 1..=2 {
        w.join(pid, true);
        w.clients.get_mut(&pid).unwrap().level = 20;
    }
    w.run(Duration::from_secs(2), true);
    let sections = w.room.sections(9);
    assert_eq!(
        w.clients[&9].sections.len(),
        2,
        "{:?}",
        w.clients[&9].sections
    );
    // Four more join, quiet: nobody's connection grows for them.
    for pid in 3..=6 {
        w.join(pid, true);
        w.clients.get_mut(&pid).unwrap().level = 127;
    }
    w.run(Duration::from_secs(2), true);
    assert_eq!(
        w.room.sections(9),
        sections,
        "no section for a video not taken"
    );
    assert_eq!(w.clients[&9].sections.len(), 2);
    // 1 and 2 fall silent, 6 speaks, then 5: their videos take the two sections over.
    for (pid, level) in [(1, 127), (2, 127), (6, 20)] {
        w.clients.get_mut(&pid).unwrap().level = level;
    }
    w.run(Duration::from_secs(2), true);
    for (pid, level) in [(6, 127), (5, 20)] {
        w.clients.get_mut(&pid).unwrap().level = level;
    }
    w.run(Duration::from_secs(2), true);
    w.forget_received(9);
    w.run(Duration::from_secs(1), true);
    let seen: Vec<u64> = (1..=6)
        .filter(|&p| {
            w.clients[&9]
                .received
                .values()
                .any(|r| r.video && r.publisher == p.to_string() && r.packets > 0)
        })
        .collect();
    assert_eq!(seen, vec![5, 6]);
    assert_eq!(w.room.sections(9), sections, "nobody renegotiated");
    let mapped: Vec<Option<String>> = {
        let mut m: Vec<_> = w.clients[&9]
            .sections
            .values()
            .map(|(now, _)| now.clone())
            .collect();
        m.sort();
        m
    };
    assert_eq!(
        mapped,
        vec![Some("5.stream-5".to_owned()), Some("6.stream-6".to_owned())],
        "the room says which video each section carries"
    );
    for r in w.clients[&9].received.values().filter(|r| r.video) {
        assert!(
            r.packets == 0 || r.packets > 30,
            "{}: {}",
            r.publisher,
            r.packets
        );
        assert_eq!((r.corrupt, r.sequence_breaks, r.mislabelled), (0, 0, 0));
    }
}

#[test]
fn a_receiver_gets_no_more_video_sections_than_the_room_allows_and_is_told_what_it_misses() {
    let policy = Policy {
        max_videos: 2,
        ..Policy::default()
    };
    let mut w = World::with_policy(19, CLEAN, policy);
    // 9 never says what it shows: it would take every video.
    w.join(9, false);
    for pid in 1..=4 {
        w.join(pid, true);
    }
    w.run(Duration::from_secs(3), true);
    w.forget_received(9);
    w.run(Duration::from_secs(1), true);
    let c = &w.clients[&9];
    assert_eq!(c.sections.len(), 2, "{:?}", c.sections);
    let seen: Vec<u64> = (1..=4)
        .filter(|&p| {
            c.received
                .values()
                .any(|r| r.video && r.publisher == p.to_string() && r.packets > 20)
        })
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let paused: Vec<(&str, PauseReason)> = c
        .paused
        .iter()
        .map(|p| (p.stream.as_str(), p.reason))
        .collect();
    assert_eq!(paused.len(), 2, "{paused:?}");
    assert!(paused.iter().all(|(_, r)| *r == PauseReason::LastN));
    for (p, _) in &paused {
        let publisher: u64 = p.split('.').next().unwrap().parse().unwrap();
        assert!(!seen.contains(&publisher), "{p} is sent and said paused");
    }
}
