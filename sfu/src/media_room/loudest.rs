//! Which audio streams are forwarded: the N loudest of the room (by the RFC 6464 level each
//! packet carries in the clear), to everyone but their own publisher. A microphone that is
//! silent (or sends nothing, with Opus DTX) costs nobody anything downstream, however many
//! people are in the room; a meeting of a hundred hears its three loudest at a time, as its
//! people could follow no more anyway.
//!
//! Each stream's loudness is a running average that rises fast and falls slowly (about 100 ms),
//! so a new speaker is heard within three packets: it takes the place of the quietest stream forwarded
//! as soon as it is louder by a margin (or at once while a place is free). Streams quieter than
//! speech never take a place. A stream whose level is not known (no audio-level extension) is
//! always forwarded: it cannot be ranked.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::TrackId;

/// How loud a stream must be (in dB above silence, 127 - the RFC 6464 level) to take a place.
const SPEECH: f32 = 127.0 - 70.0;
/// How much louder (dB) than the quietest forwarded stream a stream must be to replace it.
const MARGIN: f32 = 6.0;
/// The running average's weight for a packet louder than it: a voice that starts is heard
/// within three packets (60 ms).
const ATTACK: f32 = 0.6;
/// ... and for a quieter one (20 ms packets: ~100 ms of memory).
const RELEASE: f32 = 0.2;
/// A stream that sends nothing (DTX) fades by half in this time.
const HALF_LIFE: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy)]
struct Loudness {
    score: f32,
    at: Instant,
}

impl Loudness {
    /// The score at `now`, faded for the time without packets.
    fn at(&self, now: Instant) -> f32 {
        let idle = now.saturating_duration_since(self.at).as_secs_f32();
        self.score * 0.5f32.powf(idle / HALF_LIFE.as_secs_f32())
    }
}

/// The loudest audio streams of a room.
#[derive(Debug, Clone)]
pub struct LoudestAudio {
    /// How many are forwarded (0: every stream).
    places: usize,
    loudness: HashMap<TrackId, Loudness>,
    forwarded: Vec<TrackId>,
    /// Streams forwarded whatever their level: those seen without one, and every stream of a
    /// room without a limit.
    always: HashSet<TrackId>,
}

impl LoudestAudio {
    /// The `places` loudest streams forwarded (0: all).
    pub fn new(places: usize) -> Self {
        LoudestAudio {
            places,
            loudness: HashMap::new(),
            forwarded: Vec::new(),
            always: HashSet::new(),
        }
    }

    /// A packet of audio stream `track` at RFC 6464 `level` (0 loudest, 127 silence), or of
    /// unknown level: true if it is forwarded.
    pub fn observe(&mut self, track: TrackId, level: Option<u8>, now: Instant) -> bool {
        let Some(level) = level.filter(|_| self.places > 0) else {
            self.always.insert(track);
            return true;
        };
        self.always.remove(&track);
        let heard = 127.0 - f32::from(level.min(127));
        let l = self.loudness.entry(track).or_insert(Loudness {
            score: heard,
            at: now,
        });
        let before = l.at(now);
        let weight = if heard > before { ATTACK } else { RELEASE };
        let score = before * (1.0 - weight) + heard * weight;
        *l = Loudness { score, at: now };
        if self.forwarded.contains(&track) {
            return true;
        }
        if score < SPEECH {
            return false;
        }
        if self.forwarded.len() < self.places {
            self.forwarded.push(track);
            return true;
        }
        let quietest = self
            .forwarded
            .iter()
            .enumerate()
            .map(|(i, t)| (i, self.loudness.get(t).map_or(0.0, |l| l.at(now))))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match quietest {
            Some((i, q)) if score >= q + MARGIN => {
                self.forwarded[i] = track;
                true
            }
            _ => false,
        }
    }

    /// How many are forwarded at most (0: every stream).
    pub fn places(&self) -> usize {
        self.places
    }

    /// The streams forwarded now.
    pub fn forwarded(&self) -> &[TrackId] {
        &self.forwarded
    }

    /// True if `track` is forwarded now: one of the loudest, one that cannot be ranked, or any
    /// stream of a room without a limit.
    pub fn holds_place(&self, track: TrackId) -> bool {
        self.forwarded.contains(&track) || self.always.contains(&track)
    }

    /// The stream ended.
    pub fn forget(&mut self, track: TrackId) {
        self.always.remove(&track);
        self.loudness.remove(&track);
        self.forwarded.retain(|&t| t != track);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// 20 ms packets of each (track, level) for `ms`; what was forwarded of each, in packets.
    fn talk(a: &mut LoudestAudio, from: Instant, ms: u32, who: &[(u64, u8)]) -> Vec<usize> {
        let mut counts = vec![0; who.len()];
        for i in 0..ms / 20 {
            for (k, &(t, level)) in who.iter().enumerate() {
                if a.observe(TrackId(t), Some(level), from + 20 * i * MS) {
                    counts[k] += 1;
                }
            }
        }
        counts
    }

    #[test]
    fn the_three_loudest_are_forwarded_and_silence_takes_no_place() {
        let t0 = Instant::now();
        let mut a = LoudestAudio::new(3);
        let got = talk(
            &mut a,
            t0,
            1000,
            &[(1, 20), (2, 25), (3, 30), (4, 40), (5, 127), (6, 127)],
        );
        assert_eq!(&got[4..], &[0, 0], "silent microphones cost nothing");
        assert_eq!(a.forwarded().len(), 3);
        assert_eq!(got[0], 50, "the loudest from its first packet");
        // A new, louder speaker takes the quietest place within a few packets.
        let t1 = t0 + 1000 * MS;
        let got = talk(&mut a, t1, 200, &[(1, 20), (2, 25), (3, 30), (6, 10)]);
        assert!(got[3] >= 7, "heard within 60 ms: {got:?}");
        assert!(!a.forwarded().contains(&TrackId(3)), "{:?}", a.forwarded());
    }

    #[test]
    fn a_speaker_who_stops_is_replaced_by_one_who_starts() {
        let t0 = Instant::now();
        let mut a = LoudestAudio::new(1);
        talk(&mut a, t0, 500, &[(1, 30)]);
        // 1 falls silent (DTX: no packets); 2 speaks softly, and gets the place once 1 faded.
        let got = talk(&mut a, t0 + 500 * MS, 500, &[(2, 50)]);
        assert!(got[0] > 15, "{got:?}");
        assert_eq!(a.forwarded(), &[TrackId(2)]);
    }

    #[test]
    fn a_stream_without_a_level_and_a_room_without_a_limit_forward_everything() {
        let now = Instant::now();
        let mut a = LoudestAudio::new(1);
        assert!(a.observe(TrackId(1), Some(10), now));
        assert!(
            a.observe(TrackId(2), None, now),
            "cannot be ranked: forwarded"
        );
        let mut all = LoudestAudio::new(0);
        assert!(all.observe(TrackId(3), Some(127), now));
        a.forget(TrackId(1));
        assert!(a.forwarded().is_empty());
    }
}
