//! A short real run: bots join a local sfu (the binary cargo built for the workspace's tests),
//! publish, decrypt everything, and the report says so.

use std::time::Duration;

use loadtest::run::{Target, run};
use loadtest::scenario::Scenario;
use loadtest::sfu_process::{LocalSfu, default_binary};

/// No decrypt failures, each frame reached most of the others, and little was lost.
fn assert_delivered(report: &loadtest::report::Report, mode: &str) {
    assert_eq!(report.decrypt_failures, 0, "{mode}: {report:#?}");
    assert!(
        report.frames_received as f64 > report.frames_sent as f64 * 1.5,
        "{mode}: {} received of {} sent",
        report.frames_received,
        report.frames_sent
    );
    assert!(report.loss_percent < 1.0, "{mode}: {report:#?}");
}

/// An sfu started here (the binary cargo built for the workspace's tests) with `args`.
fn local_sfu(args: &[String]) -> Target {
    let bin = default_binary().expect("target/debug/sfu (cargo test --workspace builds it)");
    let secret = "loadtest secret 0123456789";
    Target::Local(
        LocalSfu::start(&bin, secret, args).expect("sfu"),
        secret.into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_bots_and_a_late_joiner_decrypt_every_frame() {
    let target = local_sfu(&[]);
    let scenario = Scenario {
        participants: 3,
        duration: Duration::from_secs(6),
        ..Scenario::default()
    };
    let report = run(&scenario, target, false).await.expect("run");

    assert_eq!(report.participants_joined, 4, "three and the late joiner");
    assert_eq!(report.decrypt_failure_kinds.authentication_failed, 0);
    assert_eq!(report.decrypt_failure_kinds.other, 0);
    // Every publisher's frames reach the other members: at least 2 receivers per frame of the
    // first three over most of the run.
    assert!(
        report.frames_sent > 500,
        "{} frames sent",
        report.frames_sent
    );
    assert!(
        report.frames_received as f64 > report.frames_sent as f64 * 1.5,
        "{} received of {} sent",
        report.frames_received,
        report.frames_sent
    );
    assert_eq!(
        report.join_ms.count, 2,
        "the 2nd and 3rd joiners each heard everyone"
    );
    assert_eq!(report.late_join_ms.count, 1);
    // Each of the three joins' steps was seen (the first bot makes the group, so it never
    // takes a Welcome).
    let steps = &report.join_steps_ms;
    assert!(steps.in_group.count >= 2, "{steps:?}");
    assert_eq!(steps.media_connected.count, 3, "{steps:?}");
    assert_eq!(steps.first_frame.count, 3, "{steps:?}");
    assert!(report.latency_ms.count > 1000);
    assert!(
        report.commit_ms.count >= 2,
        "the adds of bot 2, 3 and the late joiner"
    );
    assert!(report.sfu_cpu_us_per_packet.is_some_and(|v| v > 0.0));
    assert!(report.sfu_peak_rss_mb.is_some_and(|v| v > 1.0));

    let json: serde_json::Value = serde_json::to_value(&report).expect("json");
    for key in [
        "participants_joined",
        "frames_sent",
        "frames_received",
        "decrypt_failures",
        "sfu_cpu_us_per_packet",
        "sfu_peak_rss_mb",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
    for (key, sub) in [
        ("join_ms", ["p50", "p99"].as_slice()),
        ("latency_ms", &["p50", "p95", "p99"]),
        ("commit_ms", &["p50", "p99"]),
    ] {
        for s in sub {
            assert!(json[key][s].is_number(), "{key}.{s}");
        }
    }
    for step in ["in_group", "media_connected", "first_frame"] {
        assert!(json["join_steps_ms"][step]["p99"].is_number(), "{step}");
    }
    let html = report.html();
    assert!(html.contains("<svg") && html.contains("frame latency"));
}

/// Joins, leaves and rejoins change the epoch under a running meeting: the members who stay
/// lose no frame and fail to decrypt none, across every change (each publisher seals under the
/// new epoch's key as soon as it has it; a receiver holds a frame until its key arrives and
/// keeps the old epoch's keys for a grace time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epoch_changes_cost_the_members_no_frame() {
    let target = local_sfu(&[]);
    let scenario = Scenario {
        participants: 4,
        duration: Duration::from_secs(12),
        churn: 20.0, // one leave-and-rejoin every 3 s (none in the last 3 s)
        ..Scenario::default()
    };
    let report = run(&scenario, target, false).await.expect("run");
    // Three joins after the first, the late joiner, and at least one per churn (a leave and
    // the rejoin may share a commit).
    assert!(report.churned >= 2, "{} churned", report.churned);
    assert!(
        report.epoch_changes >= 4 + report.churned,
        "{} epoch changes, {} churned",
        report.epoch_changes,
        report.churned
    );
    assert_eq!(report.frames_missed_at_epoch_changes, 0, "{report:#?}");
    assert_eq!(report.decrypt_failures, 0, "{report:#?}");
    assert!(
        report.frames_received as f64 > report.frames_sent as f64 * 1.5,
        "{} received of {} sent",
        report.frames_received,
        report.frames_sent
    );
}

/// On the sfu's single-UDP-port mode: connections come and go on the shared port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_and_rejoiners_hear_every_publisher() {
    let target = local_sfu(&["--udp-port".to_owned(), "0".to_owned()]);
    let scenario = Scenario {
        participants: 4,
        publishers: Some(2),
        duration: Duration::from_secs(10),
        churn: 20.0, // one leave-and-rejoin every 3 s (none in the last 3 s)
        late_joiner: false,
        ..Scenario::default()
    };
    let report = run(&scenario, target, false).await.expect("run");
    assert!(report.churned >= 2, "{} churned", report.churned);
    assert_eq!(report.participants_joined, 4 + report.churned);
    // Everyone but the very first (who found nobody publishing) heard every publisher present
    // when they joined: listeners, and those who came back.
    assert_eq!(
        report.join_ms.count as usize,
        report.participants_joined - 1,
        "{report:#?}"
    );
    assert_eq!(report.decrypt_failure_kinds.authentication_failed, 0);
    assert_eq!(report.decrypt_failure_kinds.other, 0);
}

/// Networks that go away for 2 s and come back: each dropped bot's client rejoins by itself,
/// the bot makes a new media connection and decrypts again; a bot sharing a screen sends it as
/// a third track that the others decrypt too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_whose_network_drops_come_back_by_themselves() {
    let target = local_sfu(&[]);
    let scenario = Scenario {
        participants: 3,
        duration: Duration::from_secs(36),
        drops: 6.0, // at 10 s and 20 s; none in the last 12 s
        drop_for: Duration::from_secs(2),
        screens: 1,
        chat: Some(Duration::from_secs(2)),
        late_joiner: false,
        ..Scenario::default()
    };
    let report = run(&scenario, target, false).await.expect("run");
    assert!(report.drops >= 2, "{report:#?}");
    assert_eq!(
        report.reconnects as usize, report.drops,
        "every drop rejoined"
    );
    assert_eq!(
        report.reconnect_ms.count as usize, report.drops,
        "media again after each"
    );
    assert!(
        report.reconnect_ms.max < 10_000.0,
        "{:?}",
        report.reconnect_ms
    );
    assert_eq!(report.decrypt_failure_kinds.authentication_failed, 0);
    assert_eq!(report.decrypt_failure_kinds.other, 0);
    assert!(report.chat_received > 0);
}

/// Media that moves to another network while signaling stays up (a new UDP port, the old one
/// closed): each moved bot restarts ICE and keeps its place: no rejoin, media again within
/// seconds, every frame still decrypting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_whose_media_moves_to_another_network_restart_ice_and_stay() {
    let target = local_sfu(&[]);
    let scenario = Scenario {
        participants: 3,
        duration: Duration::from_secs(32),
        network_changes: 6.0, // at 10 s and 20 s; none in the last 10 s
        late_joiner: false,
        ..Scenario::default()
    };
    let report = run(&scenario, target, false).await.expect("run");
    assert!(report.network_changes >= 2, "{report:#?}");
    assert_eq!(report.reconnects, 0, "nobody rejoined");
    assert_eq!(report.participants_joined, 3, "the same three throughout");
    assert_eq!(
        report.ice_restart_ms.count as usize, report.network_changes,
        "media again after each change: {report:#?}"
    );
    assert!(report.ice_restarts as usize >= report.network_changes);
    assert!(
        report.ice_restart_ms.max < 5_000.0,
        "{:?}",
        report.ice_restart_ms
    );
    assert_eq!(report.decrypt_failure_kinds.authentication_failed, 0);
    assert_eq!(report.decrypt_failure_kinds.other, 0);
}

/// The cheap modes: synthetic frames are counted and timed by their own header, and
/// `--verify 1` decrypts one track per bot and counts the others by their SFrame header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_and_partly_verified_runs_count_every_frame() {
    for (synthetic, verify) in [(true, None), (false, Some(1))] {
        let target = local_sfu(&[]);
        let scenario = Scenario {
            participants: 3,
            duration: Duration::from_secs(5),
            late_joiner: false,
            synthetic,
            verify,
            ..Scenario::default()
        };
        let report = run(&scenario, target, false).await.expect("run");
        let mode = format!("synthetic {synthetic}, verify {verify:?}");
        assert_delivered(&report, &mode);
        assert!(report.latency_ms.count > 500, "{mode}: timed by the header");
        assert_eq!(report.join_ms.count, 2, "{mode}");
        if synthetic {
            assert_eq!(report.frames_verified, 0);
        } else {
            // Each bot receives four tracks (two publishers, audio and video) and decrypts one.
            assert!(
                report.frames_verified > 0 && report.frames_verified < report.frames_received / 2,
                "{mode}: {} verified of {}",
                report.frames_verified,
                report.frames_received
            );
        }
        assert!(report.loadtest.packets_per_second > 100.0);
        assert!(report.loadtest.cpu_us_per_packet.is_some_and(|v| v > 0.0));
    }
}

/// Rooms on media threads of their own (`--media-threads`): two rooms on two threads, on a port
/// each and on one shared port (whose reader then runs on the first thread), forward every
/// frame as on the shared runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_on_media_threads_forward_every_frame() {
    for one_port in [false, true] {
        let mut args = vec!["--media-threads".to_owned(), "2".to_owned()];
        if one_port {
            args.extend(["--udp-port".to_owned(), "0".to_owned()]);
        }
        let target = local_sfu(&args);
        let scenario = Scenario {
            rooms: 2,
            participants: 3,
            duration: Duration::from_secs(5),
            late_joiner: false,
            ..Scenario::default()
        };
        let report = run(&scenario, target, false).await.expect("run");
        let mode = format!("one port {one_port}");
        assert_eq!(report.participants_joined, 6, "{mode}");
        assert_delivered(&report, &mode);
        assert_eq!(
            report.join_ms.count, 4,
            "{mode}: every joiner heard everyone"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layered_cameras_reach_each_bot_at_the_size_it_shows_them() {
    let scenario = |tiles| Scenario {
        participants: 3,
        duration: Duration::from_secs(6),
        late_joiner: false,
        layers: true,
        tiles,
        tile_height: 90,
        ..Scenario::default()
    };
    let all = run(&scenario(None), local_sfu(&[]), false)
        .await
        .expect("run");
    assert_delivered(&all, "every layer of every video");
    // Each subscriber's first picture is a key picture the SFU asked its publisher for, and
    // the publishing bots heard the request.
    assert!(all.key_frames_requested > 0, "{all:#?}");
    // One tile of 90 px: the lowest layer of one video (160x90), nothing of the other.
    let one = run(&scenario(Some(1)), local_sfu(&[]), false)
        .await
        .expect("run");
    // Fewer frames reach each bot than were sent (that is the point): none fails, none is lost.
    assert_eq!(one.decrypt_failures, 0, "{one:#?}");
    assert!(one.loss_percent < 1.0, "{one:#?}");
    assert!(
        one.video_frames_received * 4 < all.video_frames_received,
        "{} video frames with one small tile, {} with everything",
        one.video_frames_received,
        all.video_frames_received
    );
    assert!(
        one.video_frames_received > 3 * 3 * 30,
        "{}",
        one.video_frames_received
    );
}

/// A bot's downlink narrows to 300 kbit/s for a while (a queue in user space before its
/// socket): the SFU's estimate for it falls, its videos fall to a lower layer (or pause), and
/// once the link widens a video it shows gets a higher layer again, timed in the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_squeezed_downlink_falls_to_a_lower_layer_and_climbs_back() {
    let scenario = Scenario {
        participants: 3,
        duration: Duration::from_secs(24),
        late_joiner: false,
        layers: true,
        tiles: Some(2),
        tile_height: 360,
        squeezes: 10.0, // one, 6 s in (the next would end too late to be measured)
        squeeze_to: 300,
        squeeze_for: Duration::from_secs(5),
        ..Scenario::default()
    };
    let report = run(&scenario, local_sfu(&[]), false).await.expect("run");
    assert_eq!(report.squeezes, 1, "{report:#?}");
    assert_eq!(
        report.squeezes_kept_layers, 0,
        "two 640x360 videos do not fit 300 kbit/s"
    );
    assert_eq!(report.layer_climb_ms.count, 1, "{report:#?}");
    assert_eq!(report.decrypt_failure_kinds.authentication_failed, 0);
    // Every receiver took the top layer of what it shows, the squeezed one too.
    assert_eq!(report.subscribers.len(), 3);
    for s in &report.subscribers {
        assert!(s.layers.get("S2T0").is_some_and(|&n| n > 0), "{s:?}");
    }
}
