//! Participants driven by the delivery service's room state machine, with no network: they
//! form one group, agree on its epoch, roster and safety number, and a leaver is removed;
//! what they say reaches everyone in the group once, also across an epoch change.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use media_crypto::mls::SessionConfig;
use signaling_participant::{AppMessage, Event, Output, Participant};
use signaling_protocol::{ParticipantId, ServerMessage};
use signaling_server::room::{Effect, Room, RoomConfig};

struct Meeting {
    room: Room,
    participants: BTreeMap<ParticipantId, Participant>,
    /// Each participant's last new epoch: (epoch, safety number digits, roster names).
    seen: BTreeMap<ParticipantId, (u64, String, Vec<String>)>,
    /// What each participant heard: (the signer's roster name, the text).
    heard: BTreeMap<ParticipantId, Vec<(String, String)>>,
    /// A participant whose messages from the room are held back (as a slow network would).
    held: Option<(ParticipantId, Vec<ServerMessage>)>,
    start: Instant,
}

impl Meeting {
    fn new() -> Self {
        Meeting {
            room: Room::new(
                "r",
                RoomConfig {
                    max_participants: 10,
                    commit_timeout: Duration::from_secs(5),
                    ice_servers: Default::default(),
                },
                [1; 16],
            ),
            participants: BTreeMap::new(),
            seen: BTreeMap::new(),
            heard: BTreeMap::new(),
            held: None,
            start: Instant::now(),
        }
    }

    fn join(&mut self, pid: ParticipantId, name: &str) {
        self.room
            .join(pid, name.into(), true, Instant::now())
            .expect("join");
        self.run();
    }

    /// Delivers every message until nothing moves.
    fn run(&mut self) {
        loop {
            let effects = self.room.take_effects();
            if effects.is_empty() {
                return;
            }
            let sends = effects.into_iter().flat_map(|e| match e {
                Effect::Send(to, m) => vec![(to, m)],
                Effect::Broadcast(to, m) => to.into_iter().map(|p| (p, m.clone())).collect(),
                _ => Vec::new(),
            });
            for (to, message) in sends {
                if let Some((pid, queue)) = self.held.as_mut()
                    && *pid == to
                {
                    queue.push(message);
                    continue;
                }
                self.deliver(to, message);
            }
        }
    }

    fn deliver(&mut self, to: ParticipantId, message: ServerMessage) {
        let outputs = match (&message, self.participants.get_mut(&to)) {
            (
                ServerMessage::Joined {
                    identity,
                    participants,
                    ..
                },
                None,
            ) => {
                let mut p = Participant::new(to, identity, participants, SessionConfig::default())
                    .expect("participant");
                let out = p.start();
                self.participants.insert(to, p);
                out
            }
            (_, Some(p)) => p.handle(message, self.start.elapsed()),
            (_, None) => Vec::new(),
        };
        self.route(to, outputs);
    }

    fn route(&mut self, to: ParticipantId, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send(m) => self.room.handle(to, m, Instant::now()),
                Output::Event(Event::NewEpoch {
                    epoch,
                    roster,
                    safety_number,
                    ..
                }) => {
                    let names = roster.iter().map(|r| r.name()).collect();
                    self.seen
                        .insert(to, (epoch, safety_number.to_string(), names));
                }
                Output::Event(Event::Application {
                    sender,
                    message: AppMessage::Chat { text },
                    ..
                }) => self
                    .heard
                    .entry(to)
                    .or_default()
                    .push((sender.name(), text)),
                Output::Event(Event::MlsFailure(m)) => panic!("{to}: {m}"),
                Output::Event(
                    e @ (Event::RefusedAdd { .. }
                    | Event::GroupLost { .. }
                    | Event::AccountMismatch { .. }
                    | Event::ApplicationRefused { .. }),
                ) => panic!("{to}: {e:?}"),
                _ => {}
            }
        }
    }

    fn say(&mut self, from: ParticipantId, text: &str) {
        let p = self.participants.get_mut(&from).expect("participant");
        let (_, outputs) = p
            .send_app(AppMessage::Chat { text: text.into() })
            .expect("a chat message");
        self.route(from, outputs);
        self.run();
    }

    /// Delivers what was held back for the held participant, and holds nothing more.
    fn release(&mut self) {
        if let Some((pid, queue)) = self.held.take() {
            for message in queue {
                self.deliver(pid, message);
            }
        }
        self.run();
    }

    fn agreed(&self) -> (u64, String, Vec<String>) {
        let views: Vec<_> = self
            .room
            .members()
            .iter()
            .map(|pid| self.seen.get(pid).cloned().expect("a view"))
            .collect();
        assert!(views.windows(2).all(|w| w[0] == w[1]), "{views:?}");
        views[0].clone()
    }
}

#[test]
fn three_participants_form_one_group_and_a_leaver_is_removed() {
    let mut m = Meeting::new();
    m.join(1, "alice");
    m.join(2, "bob");
    m.join(3, "carol");
    let (epoch, digits, roster) = m.agreed();
    assert_eq!(epoch, 2);
    assert_eq!(digits.chars().filter(char::is_ascii_digit).count(), 40);
    assert_eq!(roster, vec!["1:alice", "2:bob", "3:carol"]);

    m.room.disconnect(2, Instant::now());
    m.participants.remove(&2);
    m.run();
    let (epoch, _, roster) = m.agreed();
    assert_eq!(epoch, 3);
    assert_eq!(roster, vec!["1:alice", "3:carol"]);
}

#[test]
fn what_members_say_reaches_the_others_once_even_across_an_epoch_change() {
    let mut m = Meeting::new();
    m.join(1, "alice");
    m.join(2, "bob");
    m.join(3, "carol");
    m.say(1, "hello");
    for p in [2, 3] {
        assert_eq!(m.heard[&p], [("1:alice".to_owned(), "hello".to_owned())]);
    }
    assert!(!m.heard.contains_key(&1), "not echoed to the sender");

    // Bob's network is slow: dave is added (a new epoch) before bob hears of it, and bob
    // speaks in the epoch he still holds. The delivery service refuses that as stale; bob
    // takes the commit, seals it again, and everyone in the new epoch reads it once.
    m.held = Some((2, Vec::new()));
    m.join(4, "dave");
    assert_eq!(m.room.epoch(), Some(3));
    m.say(2, "during the change");
    m.release();
    for p in [1, 3, 4] {
        let heard: Vec<_> = m.heard[&p]
            .iter()
            .filter(|(_, t)| t == "during the change")
            .collect();
        assert_eq!(
            heard,
            [&("2:bob".to_owned(), "during the change".to_owned())],
            "p{p}"
        );
    }
    // Dave reads from his join on: not what was said before.
    assert!(m.heard[&4].iter().all(|(_, t)| t != "hello"));
}

#[test]
fn a_message_of_a_member_removed_from_the_group_is_not_shown_even_if_the_server_relays_it() {
    let mut m = Meeting::new();
    m.join(1, "alice");
    m.join(2, "bob");
    m.join(3, "carol");
    // Carol seals a message in the epoch she is in; the server keeps it back...
    let carol = m.participants.get_mut(&3).expect("carol");
    let (_, outputs) = carol
        .send_app(AppMessage::Chat {
            text: "after my removal".into(),
        })
        .expect("a chat message");
    let sealed = outputs
        .into_iter()
        .find_map(|o| match o {
            Output::Send(signaling_protocol::ClientMessage::Application {
                epoch, message, ..
            }) => Some((epoch, message)),
            _ => None,
        })
        .expect("an application message");
    // ... carol is removed (a new epoch, keys she never gets) ...
    m.room.disconnect(3, Instant::now());
    m.participants.remove(&3);
    m.run();
    assert_eq!(m.agreed().2, vec!["1:alice", "2:bob"]);
    // ... and then relays it, as from carol or as from bob: alice shows neither.
    for from in [3, 2] {
        let alice = m.participants.get_mut(&1).expect("alice");
        let outputs = alice.handle(
            ServerMessage::Application {
                from,
                epoch: sealed.0,
                message: sealed.1.clone(),
            },
            m.start.elapsed(),
        );
        assert!(
            !outputs
                .iter()
                .any(|o| matches!(o, Output::Event(Event::Application { .. }))),
            "shown: {outputs:?}"
        );
        assert!(
            outputs
                .iter()
                .any(|o| matches!(o, Output::Event(Event::ApplicationRefused { .. }))),
            "refused, and said so: {outputs:?}"
        );
    }
    assert!(!m.heard.contains_key(&1));
}
