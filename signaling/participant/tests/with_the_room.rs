//! Participants driven by the delivery service's room state machine, with no network: they
//! form one group, agree on its epoch, roster and safety number, and a leaver is removed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use media_crypto::mls::SessionConfig;
use signaling_participant::{Event, Output, Participant};
use signaling_protocol::{ParticipantId, ServerMessage};
use signaling_server::room::{Effect, Room, RoomConfig};

struct Meeting {
    room: Room,
    participants: BTreeMap<ParticipantId, Participant>,
    /// Each participant's last new epoch: (epoch, safety number digits, roster names).
    seen: BTreeMap<ParticipantId, (u64, String, Vec<String>)>,
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
                let outputs = match (&message, self.participants.get_mut(&to)) {
                    (
                        ServerMessage::Joined {
                            identity,
                            participants,
                            ..
                        },
                        None,
                    ) => {
                        let mut p =
                            Participant::new(to, identity, participants, SessionConfig::default())
                                .expect("participant");
                        let out = p.start();
                        self.participants.insert(to, p);
                        out
                    }
                    (_, Some(p)) => p.handle(message, self.start.elapsed()),
                    (_, None) => Vec::new(),
                };
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
                        Output::Event(Event::MlsFailure(m)) => panic!("{to}: {m}"),
                        Output::Event(
                            e @ (Event::RefusedAdd { .. }
                            | Event::GroupLost { .. }
                            | Event::AccountMismatch { .. }),
                        ) => panic!("{to}: {e:?}"),
                        _ => {}
                    }
                }
            }
        }
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
