//! How long a receiver takes to get a higher layer once its bandwidth rises again: each
//! video's top spatial layer (where its pictures end; `None` while none arrive, a video the
//! SFU paused) is noted when the bot's downlink narrows (`Bot::squeeze`) and when it widens;
//! of the videos that fell in between, the first to reach a layer above the one it had at the
//! widening ends the climb.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A video's top spatial layer; `None` (below every layer) while no picture arrives.
pub type Top = Option<u8>;

/// One receiver's videos through a squeeze.
#[derive(Debug, Default)]
pub enum Climb {
    #[default]
    Idle,
    /// Narrow since: each video's top layer before.
    Squeezed { before: HashMap<String, Top> },
    /// Wide again since `since`: the layer each fallen video is to reach.
    Climbing {
        since: Instant,
        to: HashMap<String, u8>,
    },
}

/// What the widening found.
#[derive(Debug, PartialEq, Eq)]
pub enum Widened {
    /// Some video had fallen: the climb is timed.
    Climbing,
    /// No video had fallen (the link was wide enough for what it showed).
    KeptLayers,
    /// There was no squeeze to end.
    NotSqueezed,
}

impl Climb {
    /// The downlink narrows; `tops` are the videos' top layers now.
    pub fn squeezed<'a>(&mut self, tops: impl Iterator<Item = (&'a String, Top)>) {
        *self = Climb::Squeezed {
            before: tops.map(|(t, l)| (t.clone(), l)).collect(),
        };
    }

    /// The downlink widens at `now`; `tops` are the videos' top layers now.
    pub fn widened<'a>(
        &mut self,
        now: Instant,
        tops: impl Iterator<Item = (&'a String, Top)>,
    ) -> Widened {
        let Climb::Squeezed { before } = std::mem::take(self) else {
            return Widened::NotSqueezed;
        };
        let to: HashMap<String, u8> = tops
            .filter(|(t, l)| before.get(*t).is_some_and(|b| l < b))
            .map(|(t, l)| (t.clone(), l.map_or(0, |l| l + 1)))
            .collect();
        if to.is_empty() {
            return Widened::KeptLayers;
        }
        *self = Climb::Climbing { since: now, to };
        Widened::Climbing
    }

    /// A picture of `track` ended at layer `top` at `now`: the climb's time, if this ends it.
    pub fn picture(&mut self, track: &str, top: u8, now: Instant) -> Option<Duration> {
        let Climb::Climbing { since, to } = self else {
            return None;
        };
        if to.get(track).is_some_and(|&want| top >= want) {
            let took = now.saturating_duration_since(*since);
            *self = Climb::Idle;
            return Some(took);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tops(v: &[(&str, Top)]) -> Vec<(String, Top)> {
        v.iter().map(|(t, l)| ((*t).to_owned(), *l)).collect()
    }

    #[test]
    fn the_climb_ends_when_a_fallen_video_gets_a_higher_layer() {
        let t = Instant::now();
        let mut c = Climb::default();
        let before = tops(&[("a", Some(2)), ("b", Some(1)), ("c", None)]);
        c.squeezed(before.iter().map(|(k, l)| (k, *l)));
        let low = tops(&[("a", Some(0)), ("b", Some(1)), ("c", None)]);
        assert_eq!(
            c.widened(t, low.iter().map(|(k, l)| (k, *l))),
            Widened::Climbing
        );
        // b never fell; a at its old layer is no climb yet.
        assert_eq!(c.picture("b", 1, t + Duration::from_millis(100)), None);
        assert_eq!(c.picture("a", 0, t + Duration::from_millis(200)), None);
        assert_eq!(
            c.picture("a", 1, t + Duration::from_millis(1500)),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            c.picture("a", 2, t + Duration::from_secs(2)),
            None,
            "timed once"
        );
    }

    #[test]
    fn a_video_paused_in_the_squeeze_climbs_with_its_first_picture() {
        let t = Instant::now();
        let mut c = Climb::default();
        let before = tops(&[("a", Some(1))]);
        c.squeezed(before.iter().map(|(k, l)| (k, *l)));
        let paused = tops(&[("a", None)]);
        assert_eq!(
            c.widened(t, paused.iter().map(|(k, l)| (k, *l))),
            Widened::Climbing
        );
        assert_eq!(
            c.picture("a", 0, t + Duration::from_millis(700)),
            Some(Duration::from_millis(700))
        );
    }

    #[test]
    fn videos_that_kept_their_layers_time_nothing() {
        let t = Instant::now();
        let mut c = Climb::default();
        assert_eq!(
            c.widened(t, std::iter::empty()),
            Widened::NotSqueezed,
            "no squeeze began"
        );
        let same = tops(&[("a", Some(1))]);
        c.squeezed(same.iter().map(|(k, l)| (k, *l)));
        assert_eq!(
            c.widened(t, same.iter().map(|(k, l)| (k, *l))),
            Widened::KeptLayers
        );
        assert_eq!(c.picture("a", 2, t), None);
    }
}
