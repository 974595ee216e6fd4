//! Commits per second the delivery service sustains: a room of 50 members takes a chain of real
//! MLS commits (key updates by one member), verifying each against the room's public tree
//! (signature, path, tree and transcript hashes, what it adds and removes, its GroupInfo) and
//! fanning it out. Beside it, in the same run, what the room did before it verified commits:
//! parsing their framing only. This is the server's CPU per commit; the network and the
//! members' own work are not in it.
//!
//! cargo bench -p signaling-server --bench delivery

use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use media_crypto::mls::{MlsSession, SessionConfig};
use signaling_protocol::{ClientMessage, CommitMessage, ServerMessage, credential_identity};
use signaling_server::mls::framing;
use signaling_server::room::{Effect, Room, RoomConfig};

const MEMBERS: u64 = 50;
const CHAIN: usize = 200;
const BASE: [u8; 16] = [3; 16];

struct Script {
    group_info: Vec<u8>,
    key_packages: Vec<Vec<u8>>,
    add_all: CommitMessage,
    chain: Vec<CommitMessage>,
}

fn config() -> RoomConfig {
    RoomConfig {
        max_participants: 1000,
        commit_timeout: Duration::from_secs(5),
        ice_servers: Default::default(),
    }
}

/// Real MLS messages for: member 1 creates the group, adds members 2..=50 in one commit, then
/// commits CHAIN key updates.
fn script() -> Script {
    let group_id = Room::new("bench", config(), BASE).group_id();
    let t = Duration::ZERO;
    let mut creator =
        MlsSession::new(credential_identity(1, "m1"), SessionConfig::default()).expect("s");
    creator.create_group(&group_id, t).expect("create");
    let group_info = creator.group_info().expect("gi");
    let key_packages: Vec<Vec<u8>> = (2..=MEMBERS)
        .map(|pid| {
            MlsSession::new(
                credential_identity(pid, &format!("m{pid}")),
                SessionConfig::default(),
            )
            .expect("s")
            .key_package()
            .expect("kp")
        })
        .collect();
    let out = creator.commit(&key_packages, &[]).expect("commit");
    creator.confirm_pending_commit(t).expect("confirm");
    let add_all = CommitMessage {
        epoch: 0,
        commit: out.commit.into(),
        welcome: out.welcome.map(Into::into),
        group_info: out.group_info.expect("gi").into(),
        added: (2..=MEMBERS).collect(),
        removed: vec![],
    };
    let chain = (0..CHAIN)
        .map(|i| {
            let out = creator.commit(&[], &[]).expect("commit");
            creator.confirm_pending_commit(t).expect("confirm");
            CommitMessage {
                epoch: 1 + i as u64,
                commit: out.commit.into(),
                welcome: None,
                group_info: out.group_info.expect("gi").into(),
                added: vec![],
                removed: vec![],
            }
        })
        .collect();
    Script {
        group_info,
        key_packages,
        add_all,
        chain,
    }
}

/// A room at epoch 1 with all 50 members in the group.
fn room_of(script: &Script) -> Room {
    let now = Instant::now();
    let mut room = Room::new("bench", config(), BASE);
    for pid in 1..=MEMBERS {
        room.join(pid, format!("m{pid}"), true, now).expect("join");
    }
    let send = |room: &mut Room, from, m| room.handle(from, m, now);
    send(
        &mut room,
        1,
        ClientMessage::GroupCreated {
            group_info: script.group_info.clone().into(),
        },
    );
    for (i, kp) in script.key_packages.iter().enumerate() {
        send(
            &mut room,
            i as u64 + 2,
            ClientMessage::KeyPackage {
                key_package: kp.clone().into(),
            },
        );
    }
    send(&mut room, 1, ClientMessage::Commit(script.add_all.clone()));
    for pid in 2..=MEMBERS {
        send(&mut room, pid, ClientMessage::WelcomeAck { epoch: 1 });
    }
    assert_eq!(room.epoch(), Some(1));
    assert_eq!(room.members().len() as u64, MEMBERS);
    room.take_effects();
    room
}

fn commits(c: &mut Criterion) {
    let script = script();
    let mut g = c.benchmark_group("delivery-service");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(CHAIN as u64));
    g.bench_function("accept-and-fan-out/50-members", |b| {
        b.iter_batched(
            || (room_of(&script), script.chain.clone()),
            |(mut room, chain)| {
                let now = Instant::now();
                let mut fanned = 0;
                for commit in chain {
                    room.handle(1, ClientMessage::Commit(commit), now);
                    fanned += room
                        .take_effects()
                        .iter()
                        .map(|e| match e {
                            Effect::Broadcast(to, ServerMessage::Commit { .. }) => to.len(),
                            _ => 0,
                        })
                        .sum::<usize>();
                }
                assert_eq!(room.epoch(), Some(1 + CHAIN as u64));
                assert_eq!(fanned, CHAIN * MEMBERS as usize);
            },
            BatchSize::LargeInput,
        )
    });
    // The same chain, framing only: what the room checked before it verified commits.
    let group_id = Room::new("bench", config(), BASE).group_id();
    g.bench_function("framing-only-as-before/50-members", |b| {
        b.iter(|| {
            for (i, commit) in script.chain.iter().enumerate() {
                let epoch = 1 + i as u64;
                framing::check_handshake(
                    commit.commit.as_slice(),
                    &group_id,
                    epoch,
                    openmls::prelude::ContentType::Commit,
                )
                .expect("framing");
                framing::check_group_info(commit.group_info.as_slice(), &group_id, epoch + 1)
                    .expect("group info");
            }
        })
    });
    g.finish();
}

criterion_group!(benches, commits);
criterion_main!(benches);
