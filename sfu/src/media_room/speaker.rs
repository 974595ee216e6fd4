//! The active speaker, from the audio level header extension (RFC 6464: the level in -dBov,
//! 0 the loudest and 127 silence). The SFU reads it from the RTP header, so it works on
//! encrypted audio.
//!
//! Each participant's loudness is averaged over a sliding window; the loudest above a threshold
//! becomes the active speaker, and takes over from the current one only when it is louder by a
//! margin, so the highlight does not flicker. When everyone is quiet the last speaker stays.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use signaling_protocol::ParticipantId;

/// Active-speaker detection settings and state.
#[derive(Debug, Clone)]
pub struct ActiveSpeaker {
    window: Duration,
    /// Levels at or above this (quieter) do not count as speech.
    threshold: u8,
    /// How much louder (in dB) a challenger must be than the current speaker.
    margin: f64,
    /// Fewest packets in the window to count (20 ms Opus: 10 packets = 200 ms of sound).
    min_packets: usize,
    samples: HashMap<ParticipantId, VecDeque<(Instant, u8)>>,
    current: Option<ParticipantId>,
    /// Everyone who has been the active speaker, the most recent first.
    recent: Vec<ParticipantId>,
}

impl Default for ActiveSpeaker {
    /// A 1 s window, speech louder than -50 dBov, a 6 dB margin to take over.
    fn default() -> Self {
        ActiveSpeaker {
            window: Duration::from_secs(1),
            threshold: 50,
            margin: 6.0,
            min_packets: 10,
            samples: HashMap::new(),
            current: None,
            recent: Vec::new(),
        }
    }
}

impl ActiveSpeaker {
    /// The current active speaker.
    pub fn current(&self) -> Option<ParticipantId> {
        self.current
    }

    /// How recently `pid` was the active speaker: 0 for the current (or last) one, 1 for the
    /// one before, ...; `usize::MAX` for someone who never was.
    pub fn recency(&self, pid: ParticipantId) -> usize {
        self.recent
            .iter()
            .position(|&p| p == pid)
            .unwrap_or(usize::MAX)
    }

    /// One audio packet's level. The RFC 6464 voice-activity flag is not used: clients set it
    /// from their own detectors (or not at all), and loudness alone is what the highlight
    /// follows, as in other SFUs.
    pub fn observe(&mut self, pid: ParticipantId, level: u8, now: Instant) {
        let level = level.min(127);
        let q = self.samples.entry(pid).or_default();
        q.push_back((now, level));
        while q
            .front()
            .is_some_and(|&(t, _)| now.saturating_duration_since(t) > self.window)
        {
            q.pop_front();
        }
    }

    /// Mean level of `pid` over the window, if it has enough packets.
    fn mean_level(&self, pid: ParticipantId, now: Instant) -> Option<f64> {
        let q = self.samples.get(&pid)?;
        let recent: Vec<u8> = q
            .iter()
            .filter(|&&(t, _)| now.saturating_duration_since(t) <= self.window)
            .map(|&(_, l)| l)
            .collect();
        (recent.len() >= self.min_packets)
            .then(|| recent.iter().map(|&l| f64::from(l)).sum::<f64>() / recent.len() as f64)
    }

    /// Re-evaluates; returns the new active speaker when it changed.
    pub fn update(&mut self, now: Instant) -> Option<Option<ParticipantId>> {
        let loudest = self
            .samples
            .keys()
            .filter_map(|&p| self.mean_level(p, now).map(|l| (p, l)))
            .filter(|&(_, l)| l < f64::from(self.threshold))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let (candidate, level) = loudest?;
        if Some(candidate) == self.current {
            return None;
        }
        let takes_over = match self.current.and_then(|c| self.mean_level(c, now)) {
            Some(current_level) if current_level < f64::from(self.threshold) => {
                level + self.margin <= current_level
            }
            _ => true,
        };
        takes_over.then(|| {
            self.current = Some(candidate);
            self.recent.retain(|&p| p != candidate);
            self.recent.insert(0, candidate);
            self.current
        })
    }

    /// `pid` left; returns the change if it was the active speaker.
    pub fn forget(&mut self, pid: ParticipantId, now: Instant) -> Option<Option<ParticipantId>> {
        self.samples.remove(&pid);
        self.recent.retain(|&p| p != pid);
        if self.current != Some(pid) {
            return None;
        }
        self.current = None;
        Some(self.update(now).unwrap_or(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// `pid` sends 20 ms packets at `level` from `from` for `ms`.
    fn talk(s: &mut ActiveSpeaker, pid: ParticipantId, level: u8, from: Instant, ms: u64) {
        for i in 0..ms / 20 {
            s.observe(pid, level, from + 20 * i as u32 * MS);
        }
    }

    #[test]
    fn the_loudest_talker_above_the_threshold_becomes_active() {
        let t0 = Instant::now();
        let mut s = ActiveSpeaker::default();
        talk(&mut s, 1, 30, t0, 1000);
        talk(&mut s, 2, 20, t0, 1000);
        talk(&mut s, 3, 100, t0, 1000); // background noise only
        assert_eq!(s.update(t0 + 1000 * MS), Some(Some(2)));
        assert_eq!(s.update(t0 + 1000 * MS), None, "no change, no event");
    }

    #[test]
    fn a_challenger_needs_the_margin_and_silence_keeps_the_last_speaker() {
        let t0 = Instant::now();
        let mut s = ActiveSpeaker::default();
        talk(&mut s, 1, 30, t0, 1000);
        assert_eq!(s.update(t0 + 1000 * MS), Some(Some(1)));
        // 3 dB louder is not enough to take over...
        let t1 = t0 + 1000 * MS;
        talk(&mut s, 1, 30, t1, 1000);
        talk(&mut s, 2, 27, t1, 1000);
        assert_eq!(s.update(t1 + 1000 * MS), None);
        // ... 10 dB louder is.
        let t2 = t1 + 1000 * MS;
        talk(&mut s, 1, 30, t2, 1000);
        talk(&mut s, 2, 20, t2, 1000);
        assert_eq!(s.update(t2 + 1000 * MS), Some(Some(2)));
        // Everyone silent: the last speaker stays.
        let t3 = t2 + 1000 * MS;
        talk(&mut s, 1, 127, t3, 1000);
        talk(&mut s, 2, 127, t3, 1000);
        assert_eq!(s.update(t3 + 1000 * MS), None);
        assert_eq!(s.current(), Some(2));
        assert_eq!(
            (s.recency(2), s.recency(1), s.recency(3)),
            (0, 1, usize::MAX)
        );
    }

    #[test]
    fn a_leaving_speaker_is_replaced_or_cleared() {
        let t0 = Instant::now();
        let mut s = ActiveSpeaker::default();
        talk(&mut s, 1, 20, t0, 1000);
        talk(&mut s, 2, 40, t0, 1000);
        assert_eq!(s.update(t0 + 1000 * MS), Some(Some(1)));
        assert_eq!(s.forget(1, t0 + 1000 * MS), Some(Some(2)));
        assert_eq!(s.forget(2, t0 + 1000 * MS), Some(None));
    }
}
