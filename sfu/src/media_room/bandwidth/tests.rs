//! Subscribers behind links that carry only so much, on the emulated network: real clients'
//! transport-wide feedback, the room's estimate of each subscriber and the layers it sends.

use std::time::Duration;

use super::super::emulated::{CLEAN, World};

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
