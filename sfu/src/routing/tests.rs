//! The routing table: who receives which track, key frames for joiners, clean departures.

use std::time::{Duration, Instant};

use super::*;

fn router() -> RoomRouter {
    RoomRouter::new(
        KeyframeThrottle::new(Duration::from_millis(500)),
        ActiveSpeaker::default(),
    )
}

fn subscribed(actions: &[Action]) -> Vec<(ParticipantId, TrackId)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Subscribe { subscriber, track } => Some((*subscriber, track.id)),
            _ => None,
        })
        .collect()
}

#[test]
fn every_track_goes_to_every_other_participant() {
    let now = Instant::now();
    let mut r = router();
    for p in 1..=3 {
        assert!(r.join(p, true, now).is_empty());
    }
    let (audio, actions) = r.publish(1, MediaKind::Audio).expect("publish");
    assert_eq!(subscribed(&actions), vec![(2, audio.id), (3, audio.id)]);
    let (video, _) = r.publish(2, MediaKind::Video).expect("publish");
    assert_eq!(r.subscribers(video.id), vec![1, 3]);
}

#[test]
fn a_late_joiner_gets_every_track_and_video_publishers_are_asked_for_a_key_frame() {
    let now = Instant::now();
    let mut r = router();
    r.join(1, true, now);
    let (audio, _) = r.publish(1, MediaKind::Audio).expect("publish");
    let (video, _) = r.publish(1, MediaKind::Video).expect("publish");
    let actions = r.join(2, true, now);
    assert_eq!(subscribed(&actions), vec![(2, audio.id), (2, video.id)]);
    assert!(actions.contains(&Action::RequestKeyframe { track: video.id }));
    assert!(!actions.contains(&Action::RequestKeyframe { track: audio.id }));
}

#[test]
fn key_frame_requests_are_throttled_per_track() {
    let now = Instant::now();
    let mut r = router();
    r.join(1, true, now);
    r.join(2, true, now);
    let (video, _) = r.publish(1, MediaKind::Video).expect("publish");
    assert!(r.keyframe_request(video.id, now).is_some());
    assert!(
        r.keyframe_request(video.id, now + Duration::from_millis(100))
            .is_none()
    );
    assert!(
        r.keyframe_request(video.id, now + Duration::from_millis(600))
            .is_some()
    );
    assert!(r.keyframe_request(TrackId(99), now).is_none());
}

#[test]
fn a_leaver_takes_its_tracks_out_of_every_subscriber() {
    let now = Instant::now();
    let mut r = router();
    for p in 1..=3 {
        r.join(p, true, now);
    }
    let (a, _) = r.publish(2, MediaKind::Audio).expect("publish");
    let (v, _) = r.publish(2, MediaKind::Video).expect("publish");
    let (other, _) = r.publish(3, MediaKind::Audio).expect("publish");
    let actions = r.leave(2, now);
    for (sub, track) in [(1, a.id), (3, a.id), (1, v.id), (3, v.id)] {
        assert!(
            actions.contains(&Action::Unsubscribe {
                subscriber: sub,
                track
            }),
            "{actions:?}"
        );
    }
    assert_eq!(r.tracks().count(), 1);
    assert_eq!(r.subscribers(other.id), vec![1]);
    assert!(r.leave(2, now).is_empty(), "leaving twice does nothing");
}

#[test]
fn listeners_cannot_publish_and_strangers_are_refused() {
    let now = Instant::now();
    let mut r = router();
    r.join(1, false, now);
    assert_eq!(
        r.publish(1, MediaKind::Audio).map(|_| ()),
        Err(RouteError::PublishNotAllowed(1))
    );
    assert_eq!(
        r.publish(7, MediaKind::Audio).map(|_| ()),
        Err(RouteError::UnknownParticipant(7))
    );
    assert_eq!(
        r.unpublish(TrackId(5)),
        Err(RouteError::UnknownTrack(TrackId(5)))
    );
}

#[test]
fn a_publisher_has_a_few_tracks_at_most_and_a_stopped_one_frees_its_place() {
    let now = Instant::now();
    let mut r = router();
    r.join(1, true, now);
    let mut mine = Vec::new();
    for _ in 0..MAX_TRACKS_PER_PUBLISHER {
        mine.push(r.publish(1, MediaKind::Video).expect("within the cap").0);
    }
    assert_eq!(
        r.publish(1, MediaKind::Audio).map(|_| ()),
        Err(RouteError::TooManyTracks(1))
    );
    // Another publisher is not affected.
    r.join(2, true, now);
    assert!(r.publish(2, MediaKind::Audio).is_ok());
    r.unpublish(mine[0].id).expect("published");
    assert!(r.publish(1, MediaKind::Audio).is_ok());
}

#[test]
fn audio_levels_pick_the_active_speaker() {
    let now = Instant::now();
    let mut r = router();
    r.join(1, true, now);
    r.join(2, true, now);
    let (a1, _) = r.publish(1, MediaKind::Audio).expect("publish");
    let (a2, _) = r.publish(2, MediaKind::Audio).expect("publish");
    for i in 0..50u32 {
        let t = now + Duration::from_millis(20) * i;
        r.audio_level(a1.id, 45, t);
        r.audio_level(a2.id, 15, t);
    }
    assert_eq!(
        r.tick(now + Duration::from_millis(1000)),
        Some(Action::ActiveSpeaker {
            participant: Some(2)
        })
    );
    assert_eq!(
        r.leave(2, now + Duration::from_millis(1000)).last(),
        Some(&Action::ActiveSpeaker {
            participant: Some(1)
        })
    );
}
