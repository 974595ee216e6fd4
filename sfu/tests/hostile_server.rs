//! Rust participants against a hostile server: the real sfu with a man in the middle that has
//! the operator's powers ([`hostile`]). Each lie is caught: a participant the server hid is
//! named and our media stops; a key package nobody announced is refused by the committer; an
//! Add proposal from a member is refused; a second person under a known name is shown as such;
//! streams labelled as someone else's are found out by the keys that open them.

mod process;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hostile::{Proxy, ProxyConfig};
use loadtest::bot::{Bot, BotSpec, RunContext};
use loadtest::media::TestMedia;
use process::{Running, start_sfu};
use signaling_client::{AppMessage, Client, ClientConfig, Event, LeafProblem};
use signaling_token::{self as token, Claims};

const SECRET: &str = "the operator's token secret, 32 b";
const WAIT: Duration = Duration::from_secs(30);

struct Scene {
    _sfu: Running,
    proxy_addr: String,
    proxy: Proxy,
}

impl Scene {
    async fn new() -> Scene {
        let sfu = start_sfu(&["--token-secret", SECRET]);
        let (proxy, addr) = Proxy::start(ProxyConfig {
            upstream: format!("ws://{}/ws", sfu.addr),
            secret: SECRET.as_bytes().to_vec(),
            demo_dir: None,
        })
        .await
        .expect("proxy");
        Scene {
            _sfu: sfu,
            proxy_addr: addr.to_string(),
            proxy,
        }
    }

    fn token(room: &str, identity: &str) -> String {
        token::mint(
            &Claims::new(room, identity, Duration::from_secs(600)),
            SECRET.as_bytes(),
        )
        .expect("mint")
    }

    /// A participant whose connection goes through the proxy.
    async fn client(&self, room: &str, identity: &str) -> Client {
        Client::connect(ClientConfig::new(
            format!("ws://{}/ws", self.proxy_addr),
            room,
            Self::token(room, identity),
        ))
        .await
        .expect("connect")
    }

    /// Tells the proxy to lie: `POST /hostile/{what}?{query}`.
    async fn lie(&self, what: &str, query: &str) -> serde_json::Value {
        let (status, body) = sfu::http_client::request(
            &self.proxy_addr,
            "POST",
            &format!("/hostile/{what}?{query}"),
            &[],
        )
        .await
        .expect("control");
        assert_eq!(status, 200, "{what}: {body}");
        serde_json::from_str(&body).expect("json")
    }
}

/// Events until `pick` finds one, or panics after [`WAIT`].
async fn until<T>(c: &mut Client, what: &str, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let e = tokio::time::timeout_at(deadline, c.next_event())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap_or_else(|| panic!("closed while waiting for {what}"));
        if let Some(t) = pick(e) {
            return t;
        }
    }
}

/// Waits for an epoch whose roster has `n` members; its warnings and send gate.
async fn epoch_with(c: &mut Client, n: usize) -> (Vec<signaling_client::LeafWarning>, bool) {
    until(c, &format!("{n} members"), |e| match e {
        Event::NewEpoch {
            roster,
            warnings,
            may_send,
            ..
        } if roster.len() == n => Some((warnings, may_send)),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_the_server_hid_is_named_and_our_media_stops() {
    let s = Scene::new().await;
    s.lie("member", "room=r&name=carol").await;
    let mut alice = s.client("r", "alice").await;
    let mut bob = s.client("r", "bob").await;
    epoch_with(&mut alice, 3).await;
    epoch_with(&mut bob, 3).await;
    // Mallory joins; nobody relayed is told; carol (connected straight to the sfu) adds her.
    let ghost = s.lie("ghost", "room=r&name=mallory").await["participant_id"]
        .as_u64()
        .expect("pid");
    for c in [&mut alice, &mut bob] {
        let (warnings, may_send) = epoch_with(c, 4).await;
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].participant_id, Some(ghost));
        assert_eq!(warnings[0].identity, "mallory");
        assert_eq!(warnings[0].problem, LeafProblem::NotAnnounced);
        assert!(!may_send, "nothing goes out while mallory is in");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committer_refuses_a_key_package_of_someone_never_announced() {
    let s = Scene::new().await;
    let mut alice = s.client("k", "alice").await;
    s.lie("inject-key-package", "room=k").await;
    let mut bob = s.client("k", "bob").await;
    let bob_id = bob.participant_id();
    let (pid, reason) = until(&mut alice, "a refused add", |e| match e {
        Event::RefusedAdd {
            participant_id,
            reason,
        } => Some((participant_id, reason)),
        _ => None,
    })
    .await;
    assert_eq!(pid, hostile::control::INTRUDER);
    assert!(reason.contains("never announced"), "{reason}");
    // Bob is added, the intruder is not.
    let (warnings, _) = epoch_with(&mut bob, 2).await;
    assert!(warnings.is_empty());
    let commits: Vec<serde_json::Value> = s
        .proxy
        .observed("k")
        .into_iter()
        .filter(|o| o.message["type"] == "commit")
        .map(|o| o.message)
        .collect();
    assert_eq!(commits.len(), 1, "{commits:?}");
    assert_eq!(commits[0]["added"], serde_json::json!([bob_id]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_proposal_from_a_member_is_refused_by_everyone() {
    let s = Scene::new().await;
    s.lie("member", "room=p&name=carol").await;
    let mut alice = s.client("p", "alice").await;
    let mut bob = s.client("p", "bob").await;
    epoch_with(&mut alice, 3).await;
    epoch_with(&mut bob, 3).await;
    let delivered = s.lie("propose-add", "room=p").await["delivered"]
        .as_u64()
        .expect("n");
    assert_eq!(delivered, 2);
    for c in [&mut alice, &mut bob] {
        let reason = until(c, "a refused proposal", |e| match e {
            Event::RefusedProposal { reason, .. } => Some(reason),
            _ => None,
        })
        .await;
        assert!(reason.contains("add"), "{reason}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_alice_and_a_lookalike_are_shown_as_members_named_alike() {
    let s = Scene::new().await;
    s.lie("member", "room=d&name=carol").await;
    let mut alice = s.client("d", "alice").await;
    let mut bob = s.client("d", "bob").await;
    epoch_with(&mut alice, 3).await;
    epoch_with(&mut bob, 3).await;
    s.lie("double", "room=d&name=alice").await;
    let same = until(&mut bob, "two alices", |e| match e {
        Event::NewEpoch {
            roster, same_names, ..
        } if roster.len() == 4 => Some(same_names),
        _ => None,
    })
    .await;
    assert_eq!(same.len(), 1, "{same:?}");
    assert_eq!(same[0].identities, ["alice"]);
    assert_eq!(same[0].leaves.len(), 2);
    assert!(!same[0].look_alike());
    // "аlice" with a Cyrillic а: a name the server accepts, that looks like alice's.
    s.lie("double", "room=d&name=%D0%B0lice").await;
    let same = until(&mut bob, "a lookalike alice", |e| match e {
        Event::NewEpoch {
            roster, same_names, ..
        } if roster.len() == 5 => Some(same_names),
        _ => None,
    })
    .await;
    assert_eq!(same.len(), 1, "{same:?}");
    assert_eq!(same[0].identities, ["alice", "\u{430}lice"]);
    assert_eq!(same[0].leaves.len(), 3);
    assert!(same[0].look_alike());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_the_server_labels_as_someone_else_s_are_found_out_by_their_keys() {
    let s = Scene::new().await;
    s.lie("member", "room=m&name=carol").await;
    s.lie("relabel", "room=m&identity=bob&as=carol").await;
    let ctx = RunContext::new(
        format!("ws://{}/ws", s.proxy_addr),
        Arc::new(TestMedia::load().expect("media")),
    );
    let spec = |name: &str, expected| BotSpec {
        room: "m".into(),
        name: name.into(),
        token: Scene::token("m", name),
        // Video only: sound comes through audio sections that name nobody (decision 0044),
        // so there is no label of it to lie in.
        audio: false,
        video: true,
        screen: false,
        layers: false,
        tiles: None,
        speaks: loadtest::bot::Speaking::Always,
        expected_publishers: expected,
        late: false,
    };
    let alice = Bot::join(&ctx, spec("alice", 0)).await.expect("alice");
    let bob = Bot::join(&ctx, spec("bob", 1)).await.expect("bob");
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline
        && (alice.stats().mislabelled_frames < 20 || bob.stats().frames_received < 20)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (a, b) = (alice.stats(), bob.stats());
    assert!(
        a.mislabelled_frames >= 20,
        "alice got bob's frames under carol's name: {} of {}",
        a.mislabelled_frames,
        a.frames_received
    );
    assert_eq!(
        a.mislabelled_frames, a.frames_received,
        "every one of bob's frames"
    );
    assert!(b.frames_received >= 20);
    assert_eq!(b.mislabelled_frames, 0, "offers to bob were not relabelled");
    alice.leave().await;
    bob.leave().await;
}

/// Waits for the client to drop the group the server moved on without it; the reason.
async fn group_lost(c: &mut Client) -> String {
    until(c, "the group refused", |e| match e {
        Event::GroupLost { reason, .. } => Some(reason),
        Event::NewEpoch { roster, .. } => panic!("took a forged epoch: {roster:?}"),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_commit_is_refused_by_the_delivery_service_and_every_member() {
    let s = Scene::new().await;
    s.lie("member", "room=x&name=carol").await;
    let mut alice = s.client("x", "alice").await;
    let mut bob = s.client("x", "bob").await;
    epoch_with(&mut alice, 3).await;
    epoch_with(&mut bob, 3).await;
    // Dave comes and goes: his participant id was announced and is gone.
    let mut dave = s.client("x", "dave").await;
    epoch_with(&mut dave, 4).await;
    dave.leave();
    epoch_with(&mut alice, 3).await;
    epoch_with(&mut bob, 3).await;
    // From the GroupInfo the server holds: a fresh device under dave's participant id.
    let forged = s.lie("external-commit", "room=x&name=dave").await;
    assert_eq!(forged["delivery_service"], "invalid_mls", "{forged}");
    assert_eq!(forged["delivered"], 2);
    for c in [&mut alice, &mut bob] {
        let reason = group_lost(c).await;
        assert!(reason.contains("outside the group"), "{reason}");
    }
    // And one under alice's own participant id, while she is there.
    let (mut alice, mut bob) = (s.client("y", "alice").await, s.client("y", "bob").await);
    s.lie("member", "room=y&name=carol").await;
    epoch_with(&mut alice, 3).await;
    epoch_with(&mut bob, 3).await;
    let forged = s.lie("external-commit", "room=y&name=alice").await;
    assert_eq!(forged["delivery_service"], "invalid_mls", "{forged}");
    for c in [&mut alice, &mut bob] {
        let reason = group_lost(c).await;
        assert!(reason.contains("outside the group"), "{reason}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaf_swapped_for_another_device_under_the_same_participant_is_named() {
    let s = Scene::new().await;
    s.lie("member", "room=w&name=carol").await;
    let mut alice = s.client("w", "alice").await;
    let mut bob = s.client("w", "bob").await;
    let alice_id = alice.participant_id();
    epoch_with(&mut alice, 3).await;
    epoch_with(&mut bob, 3).await;
    // Carol (the server's) commits alice's removal and a new device under alice's id and name,
    // in one epoch: the roster still reads "alice", present, one leaf.
    let forged = s.lie("swap", "room=w&name=alice").await;
    assert_eq!(forged["delivery_service"], "not_as_queued", "{forged}");
    let (warnings, may_send) = until(&mut bob, "the swap", |e| match e {
        Event::NewEpoch {
            epoch,
            warnings,
            may_send,
            ..
        } if Some(epoch) == forged["epoch"].as_u64().map(|e| e + 1) => Some((warnings, may_send)),
        _ => None,
    })
    .await;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].participant_id, Some(alice_id));
    assert_eq!(warnings[0].problem, LeafProblem::AnotherDevice);
    assert!(!may_send, "bob sends nothing to the new 'alice'");
    until(&mut alice, "alice's removal", |e| {
        matches!(e, Event::Removed { .. }).then_some(())
    })
    .await;
}

fn chat(text: &str) -> AppMessage {
    AppMessage::Chat { text: text.into() }
}

/// What `c` is shown from others until `stop` (a chat text) arrives: the messages, and the
/// refusals of ones not shown.
async fn said_until(c: &mut Client, stop: &str) -> (Vec<AppMessage>, Vec<String>) {
    let (mut said, mut refused) = (Vec::new(), Vec::new());
    until(c, stop, |e| match e {
        Event::Application { message, .. } => {
            let done = message == chat(stop);
            said.push(message);
            done.then_some(())
        }
        Event::ApplicationRefused { reason, .. } => {
            refused.push(reason);
            None
        }
        _ => None,
    })
    .await;
    (said, refused)
}

/// How many times `name`'s client sent its application message `id`.
fn times_sent(s: &Scene, room: &str, pid: u64, id: u64) -> usize {
    s.proxy
        .observed(room)
        .iter()
        .filter(|o| o.participant_id == pid)
        .filter(|o| o.message["type"] == "application" && o.message["id"] == id)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_refusal_cannot_make_a_member_say_something_twice() {
    let s = Scene::new().await;
    s.lie("member", "room=c&name=carol").await;
    let mut alice = s.client("c", "alice").await;
    let mut bob = s.client("c", "bob").await;
    epoch_with(&mut alice, 3).await;
    epoch_with(&mut bob, 3).await;
    alice.send_app(chat("yes, approved")).expect("chat");
    alice.send_app(chat("next")).expect("chat");
    let (said, _) = said_until(&mut bob, "next").await;
    assert_eq!(said, [chat("yes, approved"), chat("next")]);
    // The server says message 0 was refused as stale (in the epoch it was sealed in): alice
    // seals it again after the next commit, under its own number, and bob drops it.
    s.lie("reject-app", "room=c&name=alice&id=0").await;
    let _dave = s.client("c", "dave").await;
    epoch_with(&mut alice, 4).await;
    alice.send_app(chat("after")).expect("chat");
    let (said, refused) = said_until(&mut bob, "after").await;
    assert_eq!(said, [chat("after")], "nothing shown twice");
    assert_eq!(times_sent(&s, "c", alice.participant_id(), 0), 2);
    assert!(refused[0].contains("duplicate"), "{refused:?}");
    // Two epochs later, the same lie about message 1 is not the delivery service's: nothing
    // is sent again at all.
    let _erin = s.client("c", "erin").await;
    epoch_with(&mut alice, 5).await;
    s.lie("reject-app", "room=c&name=alice&id=1").await;
    alice.send_app(chat("last")).expect("chat");
    let (said, _) = said_until(&mut bob, "last").await;
    assert_eq!(said, [chat("last")]);
    assert_eq!(times_sent(&s, "c", alice.participant_id(), 1), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_in_reverse_order_leave_the_newer_and_a_dropped_message_is_a_gap() {
    let s = Scene::new().await;
    s.lie("member", "room=o&name=carol").await;
    let mut alice = s.client("o", "alice").await;
    let mut bob = s.client("o", "bob").await;
    epoch_with(&mut alice, 3).await;
    epoch_with(&mut bob, 3).await;
    let state = |muted| AppMessage::State {
        muted,
        camera_off: false,
        hand: false,
        screen: None,
    };
    s.lie("app", "room=o&from=alice&to=bob&reverse=2").await;
    alice.send_app(state(true)).expect("state");
    alice.send_app(state(false)).expect("state");
    alice.send_app(chat("settled")).expect("chat");
    let (said, _) = said_until(&mut bob, "settled").await;
    assert_eq!(
        said,
        [state(false), chat("settled")],
        "the older state, delivered last, is not taken"
    );
    // One of alice's messages never reaches bob: shown as a gap once its wait is over.
    s.lie("app", "room=o&from=alice&to=bob&drop=1").await;
    alice.send_app(chat("lost")).expect("chat");
    alice.send_app(chat("kept")).expect("chat");
    let (said, _) = said_until(&mut bob, "kept").await;
    assert_eq!(said, [chat("kept")]);
    let (sender, missing) = until(&mut bob, "a gap", |e| match e {
        Event::ApplicationGap { sender, missing } => Some((sender, missing)),
        _ => None,
    })
    .await;
    assert_eq!(
        (sender.name(), missing),
        (format!("{}:alice", alice.participant_id()), 1)
    );
}
