//! Who the server said is in the room: `joined`'s participant list, then `participant_joined`
//! and `participant_left`. This is the server's word, and only that: it is what an added MLS
//! leaf is checked against (a leaf the server never announced is someone who joined unseen),
//! never what the roster shows.

use std::collections::BTreeMap;

use signaling_protocol::{Participant, ParticipantId};

/// One announced participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    pub identity: String,
    /// Still in the room (not announced as gone since).
    pub present: bool,
}

/// The room's presence as announced during this visit.
#[derive(Debug, Clone, Default)]
pub struct Presence {
    announced: BTreeMap<ParticipantId, Announced>,
}

impl Presence {
    /// From `joined`: this participant and the others present.
    pub fn new(me: ParticipantId, identity: &str, others: &[Participant]) -> Self {
        let mut p = Presence::default();
        p.joined(me, identity);
        for o in others {
            p.joined(o.participant_id, &o.identity);
        }
        p
    }

    /// `participant_joined`. A participant id is announced once: a second announcement
    /// under another identity does not rename the first.
    pub fn joined(&mut self, pid: ParticipantId, identity: &str) {
        self.announced.entry(pid).or_insert_with(|| Announced {
            identity: identity.to_owned(),
            present: true,
        });
    }

    /// `participant_left`.
    pub fn left(&mut self, pid: ParticipantId) {
        if let Some(a) = self.announced.get_mut(&pid) {
            a.present = false;
        }
    }

    /// What was announced of `pid` during this visit (present or gone since).
    pub fn get(&self, pid: ParticipantId) -> Option<&Announced> {
        self.announced.get(&pid)
    }

    /// Present now, under `identity`.
    pub fn is_present_as(&self, pid: ParticipantId, identity: &str) -> bool {
        self.get(pid)
            .is_some_and(|a| a.present && a.identity == identity)
    }

    /// Everyone announced present now.
    pub fn present(&self) -> impl Iterator<Item = (ParticipantId, &str)> {
        self.announced
            .iter()
            .filter(|(_, a)| a.present)
            .map(|(&p, a)| (p, a.identity.as_str()))
    }
}
