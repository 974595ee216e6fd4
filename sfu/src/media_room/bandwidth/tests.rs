//! Subscribers behind links that carry only so much, on the emulated network: real clients'
//! transport-wide feedback, the room's estimate of each subscriber and the layers it sends.

use std::time::Duration;

use signaling_protocol::PauseReason;

use super::super::emulated::{CLEAN, World};
use super::super::{MediaKind, Policy};

/// A publisher of three spatial layers (about 60, 140 and 440 kbps) and two subscribers.
fn meeting() -> World {
    let mut w = World::new(21, CLEAN);
    w.join_svc(1);
    w.join(2, false);
    w.join(3, false);
    w.run(Duration::from_secs(1), false);
    w
}

/// Spatial layers `pid` received video packets of since it last forgot, and how many.
fn spatial(w: &World, pid: u64) -> Vec<(u8, usize)> {
    let mut by = std::collections::BTreeMap::new();
    for (&(s, _), &n) in &w.video_from(pid, 1).layers {
        *by.entry(s).or_insert(0) += n;
    }
    by.into_iter().collect()
}

#[test]
fn a_subscriber_behind_300_kbps_gets_the_low_layers_without_loss_and_the_others_get_all() {
    let mut w = meeting();
    w.limit(3, Some(300_000));
    w.run(Duration::from_secs(8), true);
    w.forget_received(2);
    w.forget_received(3);
    w.run(Duration::from_secs(5), true);
    let three = spatial(&w, 3);
    assert!(
        three.iter().all(|&(s, _)| s < 2),
        "3 gets no top layer: {three:?}"
    );
    let pictures = 5 * 25;
    let s0 = three.first().map_or(0, |&(_, n)| n);
    assert!(
        s0 >= pictures * 95 / 100,
        "3 gets the low layer whole: {three:?}"
    );
    let r = w.video_from(3, 1);
    assert_eq!(r.sequence_breaks, 0, "no loss once settled");
    assert_eq!(r.corrupt, 0);
    let two = spatial(&w, 2);
    assert_eq!(two.len(), 3, "2 is not held back by 3: {two:?}");
    assert_eq!(w.video_from(2, 1).sequence_breaks, 0);
}

#[test]
fn when_the_link_comes_back_the_subscriber_climbs_back_within_seconds() {
    let mut w = meeting();
    w.limit(3, Some(300_000));
    w.run(Duration::from_secs(8), true);
    w.limit(3, None);
    w.run(Duration::from_secs(5), true);
    w.forget_received(3);
    w.run(Duration::from_secs(2), true);
    let three = spatial(&w, 3);
    assert_eq!(three.len(), 3, "every layer again: {three:?}");
}

#[test]
fn a_subscriber_that_stops_reading_is_sent_the_least_and_holds_nobody_back() {
    let mut w = meeting();
    w.run(Duration::from_secs(2), true);
    // 3's link drops everything: no feedback comes back.
    w.limit(3, Some(1));
    w.run(Duration::from_secs(4), true);
    let before = w.room.counters().packets_out;
    w.forget_received(2);
    w.run(Duration::from_secs(4), true);
    let sent = w.room.counters().packets_out - before;
    let two = w.video_from(2, 1);
    assert_eq!(spatial(&w, 2).len(), 3);
    assert_eq!(two.sequence_breaks, 0);
    // 2 gets about 4 packets a picture, 25 pictures a second, and audio; 3 little more than
    // its audio.
    let to_two = (two.packets + w.audio_from(2, 1)) as u64;
    assert!(
        sent < to_two + to_two / 2,
        "{sent} packets out, {to_two} of them to 2"
    );
}

/// Three publishers of three spatial layers; 4 and 5 show each of their videos 180 px tall,
/// in a room whose last-N is 2.
fn three_on_a_grid() -> World {
    let mut w = World::with_policy(
        22,
        CLEAN,
        Policy {
            loudest_audio: 0,
            last_n: 2,
            ..Policy::default()
        },
    );
    for pid in 1..=3 {
        w.join_svc(pid);
    }
    w.join(4, false);
    w.join(5, false);
    w.run(Duration::from_secs(1), false);
    let all = ["1.stream-1", "2.stream-2", "3.stream-3"];
    for pid in 1..=3 {
        // The publishers show nobody.
        w.show(pid, &all, 0, None);
    }
    w.show(4, &all, 180, None);
    w.show(5, &all, 180, Some(1));
    w
}

fn paused(w: &World, pid: u64) -> Vec<(String, PauseReason)> {
    w.clients[&pid]
        .paused
        .iter()
        .map(|p| (p.stream.clone(), p.reason))
        .collect()
}

#[test]
fn last_n_forwards_the_most_recent_speakers_and_says_which_shown_videos_it_pauses() {
    let mut w = three_on_a_grid();
    w.run(Duration::from_secs(3), true);
    // Nobody spoke yet: the oldest tracks.
    assert_eq!(
        paused(&w, 4),
        [("3.stream-3".to_string(), PauseReason::LastN)]
    );
    assert_eq!(paused(&w, 5).len(), 2, "5 takes one: {:?}", paused(&w, 5));
    // 3 speaks: it takes 2's place with 4, and 1's with 5, at once.
    w.clients.get_mut(&3).unwrap().level = 20;
    w.run(Duration::from_secs(2), true);
    w.forget_received(4);
    w.forget_received(5);
    w.run(Duration::from_secs(2), true);
    assert_eq!(
        paused(&w, 4),
        [("2.stream-2".to_string(), PauseReason::LastN)]
    );
    assert_eq!(
        paused(&w, 5),
        [
            ("1.stream-1".to_string(), PauseReason::LastN),
            ("2.stream-2".to_string(), PauseReason::LastN)
        ]
    );
    for (sub, publisher, gets) in [
        (4, 1, true),
        (4, 2, false),
        (4, 3, true),
        (5, 1, false),
        (5, 3, true),
    ] {
        let r = w.video_from(sub, publisher);
        assert_eq!(
            r.packets > 40,
            gets,
            "{sub} of {publisher}: {} packets",
            r.packets
        );
        assert_eq!((r.corrupt, r.sequence_breaks), (0, 0));
    }
    // Nobody takes 2's video: after a while 2 is told to send none.
    w.run(Duration::from_secs(5), true);
    assert_eq!(w.clients[&2].video.told.last(), Some(&0));
    assert_ne!(w.clients[&1].video.told.last(), Some(&0));
    // Someone joins (its copies not yet shared out) while another says what it shows: the
    // newcomer's last-N leaves 2 out from the start, so 2 is not woken.
    let told = w.clients[&2].video.told.len();
    w.join(6, false);
    let receives_3 = |w: &World| {
        w.room
            .published()
            .iter()
            .any(|(p, k, subs)| *p == 3 && *k == MediaKind::Video && subs.contains(&6))
    };
    while !receives_3(&w) {
        w.run(Duration::from_millis(1), true);
    }
    w.show(4, &["1.stream-1", "2.stream-2", "3.stream-3"], 180, None);
    w.run(Duration::from_secs(2), true);
    assert_eq!(
        w.clients[&2].video.told.len(),
        told,
        "{:?}",
        w.clients[&2].video.told
    );
    assert!(
        w.video_from(6, 3).packets > 20,
        "the newcomer gets the speaker"
    );
    // 2 speaks louder: back at once, from a key picture.
    w.clients.get_mut(&2).unwrap().level = 5;
    w.run(Duration::from_secs(2), true);
    w.forget_received(5);
    w.run(Duration::from_secs(1), true);
    assert!(w.video_from(5, 2).packets > 20);
    assert_eq!(w.video_from(5, 2).corrupt, 0);
    assert!(paused(&w, 5).iter().all(|(s, _)| s != "2.stream-2"));
}

#[test]
fn a_subscriber_whose_link_carries_no_video_is_told_so_and_gets_it_back_with_the_link() {
    let mut w = meeting();
    w.show(3, &["1.stream-1"], 360, None);
    w.run(Duration::from_secs(2), true);
    assert!(paused(&w, 3).is_empty());
    w.limit(3, Some(1));
    w.run(Duration::from_secs(6), true);
    assert_eq!(
        paused(&w, 3),
        [("1.stream-1".to_string(), PauseReason::Bandwidth)]
    );
    w.limit(3, None);
    w.run(Duration::from_secs(8), true);
    assert!(paused(&w, 3).is_empty(), "{:?}", paused(&w, 3));
    w.forget_received(3);
    w.run(Duration::from_secs(2), true);
    assert!(w.video_from(3, 1).packets > 40);
}
