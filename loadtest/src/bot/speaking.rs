//! When a bot speaks, and how its microphone sounds when it does not (Opus DTX).

use std::time::Duration;

/// When a bot speaks: its microphone is loud then, and silent otherwise (Opus DTX: one packet
/// every 400 ms, at the level of silence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaking {
    Always,
    /// `speakers` of the `of` bots of its room speak at a time, in turns of
    /// [`SPEAKING_TURN`]; this one is number `index`.
    InTurn {
        index: usize,
        of: usize,
        speakers: usize,
    },
}

/// How long a speaker keeps the floor when bots speak in turn.
pub const SPEAKING_TURN: Duration = Duration::from_secs(10);

/// An Opus DTX packet goes every this many 20 ms frames of silence.
pub const DTX_EVERY: usize = 20;

impl Speaking {
    /// Whether it speaks `since` the run began.
    pub fn now(self, since: Duration) -> bool {
        match self {
            Speaking::Always => true,
            Speaking::InTurn {
                index,
                of,
                speakers,
            } => {
                let turn = (since.as_secs() / SPEAKING_TURN.as_secs()) as usize;
                (index + turn) % of.max(1) < speakers
            }
        }
    }
}
