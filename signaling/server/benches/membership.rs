//! Membership at scale (issue 27, step 6): in rooms of 50, 200, 500 and 1000 members, one
//! participant joins and leaves again, as in a meeting. For each join the committer (the
//! longest-present member) commits the add and merges it, another member processes the
//! commit, the delivery service verifies it against its public tree and fans it out, and the
//! joiner processes its Welcome (which carries the whole ratchet tree); the leave is a removal
//! commit, verified the same way. Times are the median and the largest of `ROUNDS` joins, on
//! one core each (everything here is one thread); sizes are what goes over the wire.
//!
//! cargo bench -p signaling-server --bench membership [-- 50 200]
//!
//! Not criterion: one round costs up to a second at 1000 members, and each of its phases is
//! wanted from the same rounds. MLS suite 0x0001, openmls with its in-memory storage.

use std::time::{Duration, Instant};

use media_crypto::mls::{MlsSession, SessionConfig};
use signaling_protocol::{
    ClientMessage, CommitMessage, ParticipantId, ServerMessage, credential_identity,
};
use signaling_server::room::{Effect, Room, RoomConfig};

const ROUNDS: usize = 10;
const BASE: [u8; 16] = [5; 16];
const T: Duration = Duration::ZERO;
/// The signaling server's default largest message (`max_message_bytes`).
const MAX_MESSAGE: usize = 1 << 20;

fn config(size: usize) -> RoomConfig {
    RoomConfig {
        max_participants: size + 1,
        commit_timeout: Duration::from_secs(5),
        ice_servers: Default::default(),
    }
}

fn session(pid: ParticipantId) -> MlsSession {
    MlsSession::new(
        credential_identity(pid, &format!("m{pid}")),
        SessionConfig::default(),
    )
    .expect("session")
}

/// A room of `size` members: 1 created the group and added the others in one commit; 2 is the
/// member that processes what follows (the rest never do: their state is not measured).
fn room_of(size: usize) -> (Room, MlsSession, MlsSession) {
    let now = Instant::now();
    let mut room = Room::new("bench", config(size), BASE);
    for pid in 1..=size as u64 {
        room.join(pid, format!("m{pid}"), true, now).expect("join");
    }
    let mut creator = session(1);
    creator
        .create_group(&room.group_id(), T)
        .expect("create group");
    room.handle(
        1,
        ClientMessage::GroupCreated {
            group_info: creator.group_info().expect("group info").into(),
        },
        now,
    );
    let mut member = session(2);
    let mut key_packages = vec![member.key_package().expect("kp")];
    key_packages.extend((3..=size as u64).map(|pid| session(pid).key_package().expect("kp")));
    for (i, kp) in key_packages.iter().enumerate() {
        room.handle(
            i as u64 + 2,
            ClientMessage::KeyPackage {
                key_package: kp.clone().into(),
            },
            now,
        );
    }
    let out = creator.commit(&key_packages, &[]).expect("commit");
    creator.confirm_pending_commit(T).expect("confirm");
    let welcome = out.welcome.expect("welcome");
    member.join_from_welcome(&welcome, T).expect("welcome");
    room.handle(
        1,
        ClientMessage::Commit(CommitMessage {
            epoch: 0,
            commit: out.commit.into(),
            welcome: Some(welcome.into()),
            group_info: out.group_info.expect("group info").into(),
            added: (2..=size as u64).collect(),
            removed: vec![],
        }),
        now,
    );
    for pid in 2..=size as u64 {
        room.handle(pid, ClientMessage::WelcomeAck { epoch: 1 }, now);
    }
    assert_eq!(room.epoch(), Some(1));
    assert_eq!(room.members().len(), size);
    room.take_effects();
    (room, creator, member)
}

/// What one join and leave cost.
#[derive(Default)]
struct Round {
    commit: Duration,
    process: Duration,
    verify_add: Duration,
    welcome: Duration,
    verify_remove: Duration,
    welcome_bytes: usize,
    group_info_bytes: usize,
    commit_message_bytes: usize,
}

/// Member 1 is asked to commit: the room's request, checked.
fn asked(room: &mut Room) -> (u64, Vec<ParticipantId>, Vec<ParticipantId>) {
    room.take_effects()
        .into_iter()
        .find_map(|e| match e {
            Effect::Send(1, ServerMessage::CommitRequest { epoch, add, remove }) => Some((
                epoch,
                add.into_iter().map(|a| a.participant_id).collect(),
                remove,
            )),
            _ => None,
        })
        .expect("member 1 is asked to commit")
}

/// Participant `pid` joins the room of `size` and leaves again.
fn round(room: &mut Room, creator: &mut MlsSession, member: &mut MlsSession, pid: u64) -> Round {
    let now = Instant::now();
    let mut r = Round::default();
    let mut joiner = session(pid);
    room.join(pid, format!("m{pid}"), true, now).expect("join");
    let kp = joiner.key_package().expect("kp");
    room.handle(
        pid,
        ClientMessage::KeyPackage {
            key_package: kp.clone().into(),
        },
        now,
    );
    let (epoch, add, _) = asked(room);
    assert_eq!(add, [pid]);
    let t = Instant::now();
    let out = creator.commit(&[kp], &[]).expect("commit");
    let change = creator.confirm_pending_commit(T).expect("confirm");
    r.commit = t.elapsed();
    let leaf = change.added[0].leaf;
    let welcome = out.welcome.expect("welcome");
    let message = ClientMessage::Commit(CommitMessage {
        epoch,
        commit: out.commit.clone().into(),
        welcome: Some(welcome.clone().into()),
        group_info: out.group_info.expect("group info").into(),
        added: vec![pid],
        removed: vec![],
    });
    r.welcome_bytes = welcome.len();
    r.commit_message_bytes = serde_json::to_string(&message).expect("json").len();
    let t = Instant::now();
    room.handle(1, message, now);
    r.verify_add = t.elapsed();
    assert_eq!(room.epoch(), Some(epoch + 1), "the add is accepted");
    r.group_info_bytes = room.group_info().expect("group info").len();
    let t = Instant::now();
    member.process(&out.commit, T).expect("process");
    r.process = t.elapsed();
    let t = Instant::now();
    joiner.join_from_welcome(&welcome, T).expect("join");
    r.welcome = t.elapsed();
    room.handle(pid, ClientMessage::WelcomeAck { epoch: epoch + 1 }, now);
    room.take_effects();
    // It leaves: its removal is committed.
    room.disconnect(pid, now);
    let (epoch, _, remove) = asked(room);
    assert_eq!(remove, [pid]);
    let out = creator.commit(&[], &[leaf]).expect("remove");
    creator.confirm_pending_commit(T).expect("confirm");
    let message = ClientMessage::Commit(CommitMessage {
        epoch,
        commit: out.commit.clone().into(),
        welcome: None,
        group_info: out.group_info.expect("group info").into(),
        added: vec![],
        removed: vec![pid],
    });
    let t = Instant::now();
    room.handle(1, message, now);
    r.verify_remove = t.elapsed();
    assert_eq!(room.epoch(), Some(epoch + 1), "the removal is accepted");
    member.process(&out.commit, T).expect("process");
    room.take_effects();
    r
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn median_max<T: Ord + Copy>(mut v: Vec<T>) -> (T, T) {
    v.sort();
    (v[v.len() / 2], v[v.len() - 1])
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![50, 200, 500, 1000]
    } else {
        sizes
    };
    println!(
        "| members | committer: commit + merge | member: process | DS: verify add | joiner: Welcome | DS: verify removal | Welcome | GroupInfo | commit message |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for size in sizes {
        let setup = Instant::now();
        let (mut room, mut creator, mut member) = room_of(size);
        let setup = setup.elapsed();
        let rounds: Vec<Round> = (0..ROUNDS)
            .map(|i| {
                let pid = 10_000 + i as u64;
                round(&mut room, &mut creator, &mut member, pid)
            })
            .collect();
        let col = |f: fn(&Round) -> Duration| {
            let (m, x) = median_max(rounds.iter().map(f).collect());
            format!("{} ms (max {})", ms(m), ms(x))
        };
        let bytes = |f: fn(&Round) -> usize| {
            let (_, x) = median_max(rounds.iter().map(f).collect());
            format!("{:.1} KB", x as f64 / 1000.0)
        };
        println!(
            "| {size} | {} | {} | {} | {} | {} | {} | {} | {} |",
            col(|r| r.commit),
            col(|r| r.process),
            col(|r| r.verify_add),
            col(|r| r.welcome),
            col(|r| r.verify_remove),
            bytes(|r| r.welcome_bytes),
            bytes(|r| r.group_info_bytes),
            bytes(|r| r.commit_message_bytes),
        );
        let largest = rounds
            .iter()
            .map(|r| r.commit_message_bytes)
            .max()
            .unwrap_or(0);
        if largest > MAX_MESSAGE {
            println!(
                "|   | the commit message ({largest} bytes) is over the server's default limit ({MAX_MESSAGE}) | | | | | | | |"
            );
        }
        eprintln!("({size} members: set up in {:.1} s)", setup.as_secs_f64());
    }
}
