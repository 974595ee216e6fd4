//! The delivery service driven by random sequences of operations, as quinn-proto's fuzzers
//! drive its state machine: participants join, leave and vanish; messages are delivered in
//! any order a network allows (per participant, first in first out) or held back while a
//! participant is silent; commits are tampered with on their way (a zeroed signature, lists
//! that lie, a missing Welcome); garbage arrives; time jumps. The participants are the real
//! participant code ([`signaling_participant::Participant`]); the room is the real one.
//!
//! After every step [`Simulation::check`] holds the invariants:
//! - one epoch sequence: the room's epoch only moves forward within a group, and members at
//!   the room's epoch agree on its safety number (no fork);
//! - no member the queue did not add: every leaf of the group names a participant that joined
//!   the room, under its own identity, once;
//!
//! and at the end, [`Simulation::settle`] checks there is no stall: once everyone present
//! behaves, every one of them is in one group, at one epoch.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use media_crypto::mls::SessionConfig;
use signaling_participant::{Event, Output, Participant};
use signaling_protocol::{
    ClientMessage, ParticipantId, ServerMessage, credential_identity, parse_credential_identity,
};
use signaling_server::room::{Effect, Record, Room, RoomConfig};

/// How a commit is damaged on its way to the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Its signature is zeroed.
    ZeroSignature,
    /// It claims to add someone it does not.
    LieAdded,
    /// It claims to remove someone it does not.
    LieRemoved,
    /// Its Welcome is dropped.
    DropWelcome,
}

/// Garbage a participant sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Garbage {
    Commit,
    Proposal,
    KeyPackage,
    GroupCreated,
    WelcomeAck,
    CommitFailed,
}

/// One step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Someone new joins.
    Join,
    /// A participant says leave.
    Leave(u8),
    /// A participant's connection drops.
    Disconnect(u8),
    /// Time moves on.
    Tick(Duration),
    /// A participant takes every message waiting for it.
    Deliver(u8),
    /// Everyone who listens takes every message, until nothing moves.
    DeliverAll,
    /// A participant stops (or starts again) taking messages.
    ToggleSilent(u8),
    /// The next commit a participant sends is damaged.
    Tamper(u8, Tamper),
    /// A participant sends garbage.
    Garbage(u8, Garbage),
    /// The next commit delivered to a participant arrives damaged (it cannot process it).
    BreakNextCommit(u8),
}

impl Op {
    /// An operation from three bytes (for the fuzzer and the property test alike).
    pub fn from_bytes(b: [u8; 3]) -> Op {
        let who = b[1];
        match b[0] % 12 {
            0 | 1 => Op::Join,
            2 => Op::Leave(who),
            3 => Op::Disconnect(who),
            4 => Op::Tick(Duration::from_millis(u64::from(b[2]) * 50)),
            5 | 6 => Op::Deliver(who),
            7 => Op::DeliverAll,
            8 => Op::ToggleSilent(who),
            9 => Op::Tamper(
                who,
                [
                    Tamper::ZeroSignature,
                    Tamper::LieAdded,
                    Tamper::LieRemoved,
                    Tamper::DropWelcome,
                ][usize::from(b[2] % 4)],
            ),
            10 => Op::Garbage(
                who,
                [
                    Garbage::Commit,
                    Garbage::Proposal,
                    Garbage::KeyPackage,
                    Garbage::GroupCreated,
                    Garbage::WelcomeAck,
                    Garbage::CommitFailed,
                ][usize::from(b[2] % 6)],
            ),
            _ => Op::BreakNextCommit(who),
        }
    }
}

struct Sim {
    participant: Participant,
    /// Its first step (after `joined`) is still to be taken, when it next takes messages.
    starting: bool,
    identity: String,
    inbox: VecDeque<ServerMessage>,
    silent: bool,
    tamper: Option<Tamper>,
    break_next_commit: bool,
}

/// The room and its participants.
pub struct Simulation {
    room: Room,
    t0: Instant,
    now: Instant,
    next_pid: ParticipantId,
    people: BTreeMap<ParticipantId, Sim>,
    /// Everyone who ever joined, with their identity.
    joined: BTreeMap<ParticipantId, String>,
    /// The group id and epoch last seen, to check epochs only move forward within a group.
    last: Option<(Vec<u8>, u64)>,
    /// Every message the room rejected or refused, for the record.
    pub refusals: usize,
    /// Commits the room accepted.
    pub accepted: usize,
    /// The last things that happened, to explain a failure.
    trail: VecDeque<String>,
    /// What the room asked to be written to its log.
    records: Vec<Record>,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("room", &self.room)
            .field("present", &self.people.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// How long the room waits for a committer, creator or joiner.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many participants at once.
pub const MAX_PEOPLE: usize = 6;

impl Default for Simulation {
    fn default() -> Self {
        Self::new()
    }
}

impl Simulation {
    pub fn new() -> Self {
        let now = Instant::now();
        Simulation {
            room: Room::new(
                "model",
                RoomConfig {
                    max_participants: 32,
                    commit_timeout: TIMEOUT,
                    ice_servers: Default::default(),
                },
                [3; 16],
            ),
            t0: now,
            now,
            next_pid: 1,
            people: BTreeMap::new(),
            joined: BTreeMap::new(),
            last: None,
            refusals: 0,
            accepted: 0,
            trail: VecDeque::new(),
            records: Vec::new(),
        }
    }

    fn mls_now(&self) -> Duration {
        self.now - self.t0
    }

    fn pick(&self, who: u8) -> Option<ParticipantId> {
        let ids: Vec<ParticipantId> = self.people.keys().copied().collect();
        (!ids.is_empty()).then(|| ids[usize::from(who) % ids.len()])
    }

    /// Hands the room's effects to the participants' inboxes.
    fn collect(&mut self) {
        loop {
            let effects = self.room.take_effects();
            if effects.is_empty() {
                return;
            }
            for e in effects {
                match e {
                    Effect::Send(to, m) => self.post(to, m),
                    Effect::Broadcast(to, m) => {
                        for pid in to {
                            self.post(pid, m.clone());
                        }
                    }
                    Effect::Close(pid) => {
                        self.people.remove(&pid);
                    }
                    Effect::Record(r) => self.records.push(r),
                }
            }
        }
    }

    fn note(&mut self, what: String) {
        self.trail.push_back(what);
        if self.trail.len() > 40 {
            self.trail.pop_front();
        }
    }

    fn post(&mut self, to: ParticipantId, m: ServerMessage) {
        match &m {
            ServerMessage::CommitRequest { epoch, add, remove } => self.note(format!(
                "to {to}: request e{epoch} add {:?} remove {remove:?}",
                add.iter().map(|a| a.participant_id).collect::<Vec<_>>()
            )),
            ServerMessage::CommitRejected { epoch, reason } => {
                self.note(format!("to {to}: rejected e{epoch} {reason:?}"))
            }
            ServerMessage::Error { code, message } => {
                self.note(format!("to {to}: error {code:?} {message}"))
            }
            ServerMessage::Rejoin { reason } => self.note(format!("to {to}: rejoin {reason}")),
            ServerMessage::CreateGroup { .. } => self.note(format!("to {to}: create")),
            _ => {}
        }
        if matches!(m, ServerMessage::CommitRejected { .. }) {
            self.refusals += 1;
        }
        if matches!(&m, ServerMessage::Commit { from, .. } if *from == to) {
            self.accepted += 1;
        }
        if let ServerMessage::Joined {
            identity,
            participants,
            ..
        } = &m
            && !self.people.contains_key(&to)
        {
            let Ok(participant) =
                Participant::new(to, identity, participants, SessionConfig::default())
            else {
                return;
            };
            self.people.insert(
                to,
                Sim {
                    participant,
                    starting: true,
                    identity: identity.clone(),
                    inbox: VecDeque::new(),
                    silent: false,
                    tamper: None,
                    break_next_commit: false,
                },
            );
            return;
        }
        if let Some(p) = self.people.get_mut(&to) {
            p.inbox.push_back(m);
        }
    }

    /// What a participant wants sent, on its way to the room (tampered with, if so set).
    fn apply(&mut self, from: ParticipantId, outputs: Vec<Output>) {
        for o in outputs {
            let Output::Send(mut m) = o else {
                match &o {
                    Output::Event(Event::MlsFailure(f)) => {
                        self.refusals += 1;
                        self.note(format!("{from}: failure {f}"));
                    }
                    Output::Event(Event::RefusedAdd {
                        participant_id,
                        reason,
                    }) => self.note(format!("{from}: refused add {participant_id}: {reason}")),
                    Output::Event(Event::GroupLost { epoch, reason }) => {
                        self.note(format!("{from}: lost e{epoch}: {reason}"))
                    }
                    _ => {}
                }
                continue;
            };
            match &m {
                ClientMessage::Commit(c) => self.note(format!(
                    "{from}: commit e{} added {:?} removed {:?}",
                    c.epoch, c.added, c.removed
                )),
                ClientMessage::KeyPackage { .. } => self.note(format!("{from}: key package")),
                ClientMessage::CommitFailed { epoch, .. } => {
                    self.note(format!("{from}: commit failed e{epoch}"))
                }
                ClientMessage::WelcomeAck { epoch } => self.note(format!("{from}: ack e{epoch}")),
                _ => {}
            }
            if let ClientMessage::Commit(c) = &mut m
                && let Some(t) = self.people.get_mut(&from).and_then(|p| p.tamper.take())
            {
                match t {
                    Tamper::ZeroSignature => {
                        let mut b = c.commit.as_slice().to_vec();
                        let n = b.len();
                        if n > 131 {
                            b[n - 130..n - 66].fill(0);
                        }
                        c.commit = b.into();
                    }
                    Tamper::LieAdded => c.added.push(from),
                    Tamper::LieRemoved => c.removed.push(from),
                    Tamper::DropWelcome => c.welcome = None,
                }
            }
            if self.people.contains_key(&from) {
                self.room.handle(from, m, self.now);
            }
        }
        self.collect();
    }

    fn deliver(&mut self, pid: ParticipantId) {
        let now = self.mls_now();
        while let Some(p) = self.people.get_mut(&pid) {
            if p.silent {
                return;
            }
            if std::mem::take(&mut p.starting) {
                let out = p.participant.start();
                self.apply(pid, out);
                continue;
            }
            let Some(mut m) = p.inbox.pop_front() else {
                return;
            };
            if let ServerMessage::Commit { commit, .. } = &mut m
                && std::mem::take(&mut p.break_next_commit)
            {
                let mut b = commit.as_slice().to_vec();
                if let Some(last) = b.last_mut() {
                    *last ^= 0xff;
                }
                *commit = b.into();
            }
            let out = p.participant.handle(m, now);
            self.apply(pid, out);
        }
    }

    fn deliver_all(&mut self) {
        for _ in 0..64 {
            let ready: Vec<ParticipantId> = self
                .people
                .iter()
                .filter(|(_, p)| !p.silent && (p.starting || !p.inbox.is_empty()))
                .map(|(&pid, _)| pid)
                .collect();
            if ready.is_empty() {
                return;
            }
            for pid in ready {
                self.deliver(pid);
            }
        }
    }

    fn garbage(&mut self, pid: ParticipantId, g: Garbage) {
        let epoch = self.room.epoch().unwrap_or(0);
        let junk: Vec<u8> = (0..200u8).map(|i| i.wrapping_mul(37)).collect();
        let m = match g {
            Garbage::Commit => ClientMessage::Commit(signaling_protocol::CommitMessage {
                epoch,
                commit: junk.clone().into(),
                welcome: None,
                group_info: junk.into(),
                added: vec![pid],
                removed: vec![],
            }),
            Garbage::Proposal => ClientMessage::Proposal {
                epoch,
                proposal: junk.into(),
            },
            Garbage::KeyPackage => ClientMessage::KeyPackage {
                key_package: junk.into(),
            },
            Garbage::GroupCreated => ClientMessage::GroupCreated {
                group_info: junk.into(),
            },
            Garbage::WelcomeAck => ClientMessage::WelcomeAck { epoch: epoch + 7 },
            Garbage::CommitFailed => ClientMessage::CommitFailed {
                epoch,
                reason: "garbage".into(),
                key_package: junk.into(),
            },
        };
        self.room.handle(pid, m, self.now);
        self.collect();
    }

    /// Applies one operation.
    pub fn step(&mut self, op: Op) {
        match op {
            Op::Join if self.people.len() < MAX_PEOPLE => {
                let pid = self.next_pid;
                self.next_pid += 1;
                let identity = format!("p{pid}");
                self.joined.insert(pid, identity.clone());
                let _ = self.room.join(pid, identity, true, self.now);
                self.collect();
            }
            Op::Join => {}
            Op::Leave(who) => {
                if let Some(pid) = self.pick(who) {
                    self.room.handle(pid, ClientMessage::Leave, self.now);
                    self.people.remove(&pid);
                    self.collect();
                }
            }
            Op::Disconnect(who) => {
                if let Some(pid) = self.pick(who) {
                    self.people.remove(&pid);
                    self.room.disconnect(pid, self.now);
                    self.collect();
                }
            }
            Op::Tick(d) => {
                self.now += d;
                self.room.tick(self.now);
                self.collect();
            }
            Op::Deliver(who) => {
                if let Some(pid) = self.pick(who) {
                    self.deliver(pid);
                }
            }
            Op::DeliverAll => self.deliver_all(),
            Op::ToggleSilent(who) => {
                if let Some(p) = self.pick(who).and_then(|pid| self.people.get_mut(&pid)) {
                    p.silent = !p.silent;
                }
            }
            Op::Tamper(who, t) => {
                if let Some(p) = self.pick(who).and_then(|pid| self.people.get_mut(&pid)) {
                    p.tamper = Some(t);
                }
            }
            Op::Garbage(who, g) => {
                if let Some(pid) = self.pick(who) {
                    self.garbage(pid, g);
                }
            }
            Op::BreakNextCommit(who) => {
                if let Some(p) = self.pick(who).and_then(|pid| self.people.get_mut(&pid)) {
                    p.break_next_commit = true;
                }
            }
        }
    }

    /// The invariants that hold after every step; panics with what broke.
    pub fn check(&mut self) {
        // One epoch sequence: within a group, the epoch only moves forward.
        let now = self.room.epoch().map(|e| (self.room.group_id(), e));
        if let (Some((g0, e0)), Some((g1, e1))) = (&self.last, &now)
            && g0 == g1
        {
            assert!(e1 >= e0, "the epoch went back from {e0} to {e1}");
        }
        if now.is_some() {
            self.last = now.clone();
        }
        // No fork: members at the room's epoch share one safety number.
        if let Some((group, epoch)) = &now {
            let numbers: BTreeSet<String> = self
                .people
                .values()
                .map(|p| p.participant.session())
                .filter(|s| s.group_id() == Some(group.as_slice()) && s.epoch() == Some(*epoch))
                .filter_map(|s| s.safety_number().map(|n| n.digits()))
                .collect();
            assert!(numbers.len() <= 1, "a fork at epoch {epoch}: {numbers:?}");
        }
        // No member the queue did not add: every leaf names one who joined, as itself, once.
        for (pid, leaves) in self.room.leaves() {
            assert!(
                self.joined.contains_key(&pid),
                "leaf of participant {pid}, who never joined"
            );
            assert_eq!(leaves.len(), 1, "participant {pid} holds leaves {leaves:?}");
        }
        for p in self.people.values() {
            for r in p.participant.session().roster() {
                let name = r.name();
                let Some((pid, identity)) = parse_credential_identity(&name) else {
                    panic!("a leaf with credential {name:?}");
                };
                assert_eq!(
                    self.joined.get(&pid).map(String::as_str),
                    Some(identity),
                    "leaf {name:?} is not who joined as {pid}"
                );
            }
        }
        let _ = credential_identity;
    }

    /// The room's records rebuild it as it is (the group, its epoch, tree and GroupInfo), as
    /// a node taking the room over would: whatever happened, the log carries the room on.
    pub fn check_records(&self) {
        let restored = Room::restore(
            "model",
            self.room.config().clone(),
            [4; 16],
            &self.records,
            self.now,
        )
        .unwrap_or_else(|e| {
            panic!(
                "the records do not rebuild the room: {e}\n{:#?}",
                self.trail
            )
        });
        assert_eq!(restored.epoch(), self.room.epoch(), "epoch");
        assert_eq!(restored.leaves(), self.room.leaves(), "leaves");
        assert_eq!(restored.group_info(), self.room.group_info(), "group info");
        if self.room.epoch().is_some() {
            assert_eq!(restored.group_id(), self.room.group_id(), "group id");
        }
    }

    /// Everyone present behaves from now on: within a bounded time every one of them is in
    /// one group at one epoch, and the room counts them all as members. Panics on a stall.
    pub fn settle(&mut self) {
        self.check_records();
        for p in self.people.values_mut() {
            p.silent = false;
            p.tamper = None;
            p.break_next_commit = false;
        }
        for round in 0..40 {
            self.deliver_all();
            if self.room.epoch().unwrap_or(0) > 200 {
                break;
            }
            self.check();
            if self.converged() {
                return;
            }
            // Let the room's deadlines pass.
            self.now += if round % 2 == 0 {
                Duration::from_millis(500)
            } else {
                TIMEOUT
            };
            self.room.tick(self.now);
            self.collect();
        }
        panic!(
            "stalled after {:#?}\npresent {:?}, occupants {:?}, pending {:?}, leaves {:?}, epoch {:?}, sessions {:?}",
            self.trail,
            self.people.keys().collect::<Vec<_>>(),
            self.room
                .occupants()
                .iter()
                .map(|o| (o.participant_id, o.state.clone()))
                .collect::<Vec<_>>(),
            self.room.pending(),
            self.room.leaves(),
            self.room.epoch(),
            self.people
                .iter()
                .map(|(pid, p)| (pid, p.participant.session().epoch(), p.identity.clone()))
                .collect::<Vec<_>>()
        );
    }

    #[doc(hidden)]
    pub fn debug(&self) -> String {
        format!(
            "room g{:?} e{:?} occ {:?} leaves {:?} | people {:?}",
            self.room.group_id().last(),
            self.room.epoch(),
            self.room
                .occupants()
                .iter()
                .map(|o| (o.participant_id, o.state.clone()))
                .collect::<Vec<_>>(),
            self.room.leaves(),
            self.people
                .iter()
                .map(|(p, s)| (
                    *p,
                    s.participant
                        .session()
                        .group_id()
                        .and_then(|g| g.last().copied()),
                    s.participant.session().epoch(),
                    s.silent,
                    s.inbox
                        .iter()
                        .map(|m| format!("{m:?}").chars().take(12).collect::<String>())
                        .collect::<Vec<_>>()
                ))
                .collect::<Vec<_>>()
        )
    }

    fn converged(&self) -> bool {
        let present: Vec<ParticipantId> = self.people.keys().copied().collect();
        if present.is_empty() {
            return true;
        }
        if self.room.members() != present {
            return false;
        }
        let epoch = self.room.epoch();
        let group = self.room.group_id();
        self.people.values().all(|p| {
            let s = p.participant.session();
            s.epoch() == epoch
                && s.group_id() == Some(group.as_slice())
                && s.roster().len() == present.len()
        })
    }
}
