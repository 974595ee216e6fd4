//! A load scenario: from a TOML file, then flags. Every field has a default, so
//! `loadtest --participants 6 --duration 20s` is a complete scenario.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// Rooms, each with the same participants (default 1).
    pub rooms: usize,
    /// The room's name, or with several rooms their names' stem: `NAME-0`, `NAME-1`, ...
    /// (default "load", so one room is `load-0`). Give a meeting's room to put bots in it.
    pub room: Option<String>,
    /// What the bots are called: `NAME-0`, `NAME-1`, ... in each room (default "bot").
    pub name: String,
    /// Participants per room (default 6).
    pub participants: usize,
    /// How many of them publish (default: all); the others only listen.
    pub publishers: Option<usize>,
    /// Publish audio only (default: audio and video).
    pub audio_only: bool,
    /// How many of the publishers also share a screen (the test video again, as a stream of
    /// its own, announced as their screen in a signed state message) (default 0).
    pub screens: usize,
    /// How long the meeting runs once everyone is in, e.g. "20s", "2m" (default 20 s).
    #[serde(with = "duration_text")]
    pub duration: Duration,
    /// Joins per second while the rooms fill (default 5).
    pub ramp: f64,
    /// Leaves-and-rejoins per minute per room during the meeting (default 0).
    pub churn: f64,
    /// Network drops per minute per room (default 0): a bot's network goes away for
    /// `drop_for` (signaling and media), its client reconnects by itself and the bot makes a
    /// new media connection; the report gives the time from the network's return to media.
    pub drops: f64,
    /// Network changes per minute per room (default 0): a bot's media moves to another
    /// network (a new address; its signaling stays up), it restarts ICE and keeps its place;
    /// the report gives the time from the change to media again.
    pub network_changes: f64,
    /// How long a drop lasts, e.g. "5s" (default 5 s).
    #[serde(with = "duration_text")]
    pub drop_for: Duration,
    /// Squeezes per minute per room (default 0): a bot's downlink narrows to `squeeze_to`
    /// kbit/s for `squeeze_for` (a queue in user space before its socket, as a slow line's
    /// router has) and widens again; the report gives the time from the widening to a video
    /// that fell getting a higher layer.
    pub squeezes: f64,
    /// The squeezed downlink, kbit/s (default 300).
    pub squeeze_to: u32,
    /// How long a squeeze lasts, e.g. "10s" (default 10 s).
    #[serde(with = "duration_text")]
    pub squeeze_for: Duration,
    /// One more participant per room joins once the meeting runs, and its time to the first
    /// frames is reported apart (default on).
    pub late_joiner: bool,
    /// Synthetic media: random payloads of the test media's sizes and rates, each frame
    /// carrying its sender, counter and send time, no SFrame (default off: every frame is the
    /// test media, SFrame-encrypted under the group's key).
    pub synthetic: bool,
    /// Encrypted mode: each bot decrypts and checks the frames of this many of the tracks it
    /// receives (the first to arrive) and only counts the others by their SFrame header
    /// (default: all).
    pub verify: Option<usize>,
    /// The camera in layers: three spatial (160x90, 320x180, 640x360) and three temporal, each
    /// spatial layer's frame sealed on its own, as a Chromium page sends it (default off: one
    /// layer of 320x240).
    pub layers: bool,
    /// Each bot shows this many of the others' videos (tiles `tile_height` device pixels tall,
    /// the first to arrive) and none of the rest, and tells the SFU so (`video_wants`), as a
    /// page showing a grid page does (default: it says nothing, and gets every video whole).
    pub tiles: Option<usize>,
    /// The height of a bot's tiles (default 180).
    pub tile_height: u16,
    /// How many bots of a room speak at a time, in turns of 10 s; the others' microphones are
    /// silent, with Opus DTX (default: everyone speaks all the time).
    pub speakers: Option<usize>,
    /// Each bot (listeners too) sends a chat message this often, e.g. "5s" (an MLS application
    /// message); the report gives their delivery latency (default: no chat).
    #[serde(with = "optional_duration_text")]
    pub chat: Option<Duration>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            rooms: 1,
            room: None,
            name: "bot".into(),
            participants: 6,
            publishers: None,
            audio_only: false,
            screens: 0,
            duration: Duration::from_secs(20),
            ramp: 5.0,
            churn: 0.0,
            drops: 0.0,
            network_changes: 0.0,
            drop_for: Duration::from_secs(5),
            squeezes: 0.0,
            squeeze_to: 300,
            squeeze_for: Duration::from_secs(10),
            late_joiner: true,
            synthetic: false,
            verify: None,
            layers: false,
            tiles: None,
            tile_height: 180,
            speakers: None,
            chat: None,
        }
    }
}

/// A scenario that cannot run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid scenario: {0}")]
pub struct ScenarioError(pub String);

impl Scenario {
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        toml::from_str(text).map_err(|e| ScenarioError(e.to_string()))
    }

    pub fn publishers(&self) -> usize {
        self.publishers
            .unwrap_or(self.participants)
            .min(self.participants)
    }

    /// Bots in each room at its fullest: the participants and the late joiner.
    pub fn room_size(&self) -> usize {
        self.participants + usize::from(self.late_joiner)
    }

    /// The name of room `index`: the given room itself when there is one room and it was
    /// named, else `STEM-index`.
    pub fn room_name(&self, index: usize) -> String {
        match &self.room {
            Some(room) if self.rooms == 1 => room.clone(),
            Some(stem) => format!("{stem}-{index}"),
            None => format!("load-{index}"),
        }
    }

    /// The name of the bot that joins a room `index`-th.
    pub fn bot_name(&self, index: usize) -> String {
        format!("{}-{index}", self.name)
    }

    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |m: &str| Err(ScenarioError(m.into()));
        if self.room.as_ref().is_some_and(|r| r.trim().is_empty()) {
            return bad("a room name cannot be empty");
        }
        let last_room = self.room_name(self.rooms.saturating_sub(1));
        if let Err(e) = signaling_token::check_room(&last_room) {
            return bad(&format!("room name {last_room:?} is refused: {e}"));
        }
        let longest = self.bot_name(self.participants + 1);
        if self.name.trim().is_empty() || signaling_token::check_identity(&longest).is_err() {
            return bad(&format!(
                "bot names must be printable and at most {} bytes ({longest:?} is not)",
                signaling_token::MAX_IDENTITY_BYTES
            ));
        }
        if self.rooms == 0 || self.participants == 0 {
            return bad("rooms and participants must be at least 1");
        }
        if self.publishers.is_some_and(|p| p > self.participants) {
            return bad("publishers cannot exceed participants");
        }
        if self.screens > self.publishers() {
            return bad("screens are shared by publishers: at most as many as publish");
        }
        if !(self.ramp > 0.0 && self.ramp.is_finite()) {
            return bad("ramp must be a positive number of joins per second");
        }
        if !(self.churn >= 0.0 && self.churn.is_finite()) {
            return bad("churn must be zero or more per minute");
        }
        if !(self.drops >= 0.0 && self.drops.is_finite()) {
            return bad("drops must be zero or more per minute");
        }
        if !(self.network_changes >= 0.0 && self.network_changes.is_finite()) {
            return bad("network changes must be zero or more per minute");
        }
        if self.drops > 0.0 && self.drop_for.is_zero() {
            return bad("a drop must last longer than nothing");
        }
        if !(self.squeezes >= 0.0 && self.squeezes.is_finite()) {
            return bad("squeezes must be zero or more per minute");
        }
        if self.squeezes > 0.0 && (self.squeeze_for.is_zero() || self.squeeze_to == 0) {
            return bad("a squeeze lasts longer than nothing and leaves at least 1 kbit/s");
        }
        if self.synthetic && self.verify.is_some() {
            return bad("verify counts decrypted tracks; synthetic media is not encrypted");
        }
        if self.chat.is_some_and(|c| c < Duration::from_millis(100)) {
            return bad("chat messages at most every 100 ms");
        }
        if self.duration.is_zero() {
            return bad("duration must be more than zero");
        }
        if self.speakers.is_some_and(|k| k > self.participants) {
            return bad("speakers cannot exceed participants");
        }
        if self.tiles.is_some() && self.tile_height == 0 {
            return bad("a tile shown is at least a pixel tall");
        }
        Ok(())
    }
}

/// The scenarios that come with the tool (`loadtest/scenarios/*.toml`), by name.
pub const PRESETS: &[(&str, &str)] = &[
    ("meeting-50", include_str!("../scenarios/meeting-50.toml")),
    ("meeting-100", include_str!("../scenarios/meeting-100.toml")),
    ("webinar-200", include_str!("../scenarios/webinar-200.toml")),
    ("soak", include_str!("../scenarios/soak.toml")),
];

/// The preset scenario `name`.
pub fn preset(name: &str) -> Result<Scenario, String> {
    let (_, text) = PRESETS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
        let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
        format!("no preset {name:?}; there are {}", names.join(", "))
    })?;
    Scenario::from_toml(text).map_err(|e| format!("preset {name}: {e}"))
}

/// A duration as people write it: "500ms", "20s", "2m", "1h 30m" (humantime's syntax), or a
/// plain number of seconds ("3", "2.5").
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(seconds) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("{text:?} is not a duration like 20s or 2m: {e}"))
}

mod optional_duration_text {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration_text::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::duration_text::deserialize(d).map(Some)
    }
}

mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soak_scenario_is_a_valid_half_hour_with_churn_drops_chat_and_screens() {
        let s = Scenario::from_toml(include_str!("../scenarios/soak.toml")).expect("parses");
        s.validate().expect("valid");
        assert_eq!(s.duration, Duration::from_secs(30 * 60));
        assert!(s.churn > 0.0 && s.drops > 0.0 && s.chat.is_some() && s.screens > 0);
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-3").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn a_file_sets_what_it_names_and_refuses_unknown_keys() {
        let s = Scenario::from_toml("participants = 50\nduration = \"1m\"\nchurn = 2.5\n")
            .expect("parses");
        assert_eq!(s.participants, 50);
        assert_eq!(s.duration, Duration::from_secs(60));
        assert_eq!(s.churn, 2.5);
        assert_eq!(s.rooms, 1);
        assert!(Scenario::from_toml("participant = 5").is_err());
    }

    #[test]
    fn impossible_scenarios_are_refused() {
        let s = Scenario {
            publishers: Some(7),
            ..Scenario::default()
        };
        assert!(s.validate().is_err());
        assert!(
            Scenario {
                ramp: 0.0,
                ..Scenario::default()
            }
            .validate()
            .is_err()
        );
        assert!(Scenario::default().validate().is_ok());
        for bad in [
            Scenario {
                room: Some(" ".into()),
                ..Scenario::default()
            },
            Scenario {
                room: Some("r".repeat(129)),
                ..Scenario::default()
            },
            Scenario {
                name: "b".repeat(63),
                ..Scenario::default()
            },
            Scenario {
                name: "bad\nname".into(),
                ..Scenario::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rooms_and_bots_are_named_from_the_scenario() {
        let s = Scenario::default();
        assert_eq!(
            (s.room_name(0), s.bot_name(3)),
            ("load-0".into(), "bot-3".into())
        );
        let meeting = Scenario {
            room: Some("standup".into()),
            name: "probe".into(),
            ..Scenario::default()
        };
        assert_eq!(
            meeting.room_name(0),
            "standup",
            "one named room is that room"
        );
        assert_eq!(meeting.bot_name(0), "probe-0");
        let several = Scenario {
            rooms: 2,
            ..meeting
        };
        assert_eq!(several.room_name(1), "standup-1");
    }
}
