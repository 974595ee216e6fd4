//! A bot's keys and measurements: how it seals what it sends and what it makes of each frame
//! it receives, in the run's mode. The bot's task owns it behind a lock the run reads for
//! progress and the report.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use media_crypto::mls::Keyring;
use media_crypto::sframe::{DecryptError, Header};

use super::synthetic::{self, Maker};
use crate::stats::{BotStats, Failure, JoinSteps, SendLog};

/// How a received frame is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Decrypted and checked against the sender the server names.
    Decrypt,
    /// Counted by its SFrame header (KID and counter), not decrypted.
    Count,
    /// A synthetic frame: counted by its own header.
    Synthetic,
}

/// Who the server says sends a track's frames (its stream id; for a video, what the SFU says
/// the section carries), and, for a moment after the SFU moved another video into the
/// section, who it said before: frames of the last stream may still be on their way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Label {
    pub now: Option<u64>,
    pub before: Option<u64>,
}

impl Label {
    /// Whether the label agrees with the frame's key's `sender` (no label: nothing to check).
    fn agrees(&self, sender: u64) -> bool {
        self.now.is_none_or(|p| p == sender) || self.before == Some(sender)
    }
}

/// What became of a received frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    Done,
    /// Its epoch's key has not arrived: the caller holds it and tries again.
    NoKeyYet,
}

#[derive(Debug)]
pub struct BotState {
    /// One keyring for sending and receiving (the group's keys).
    pub keyring: Keyring,
    /// No unexplained member is in the group (or each was acknowledged): frames may go out.
    pub may_send: bool,
    /// The participant id each leaf's credential names, in the current epoch.
    pub leaf_participants: HashMap<u32, u64>,
    pub stats: BotStats,
    /// Publishers heard from (MLS leaves, or participant ids of synthetic frames).
    senders_seen: HashSet<u64>,
    expected: usize,
    joined_at: Instant,
    log: Arc<SendLog>,
    run_start: Instant,
    /// Synthetic frames of this bot, when the run is synthetic.
    pub maker: Option<Maker>,
    /// When the network comes back from the last drop (`Bot::drop_network`).
    pub network_back: Option<Instant>,
    /// Rejoined after a drop, and no frame received since.
    rejoining: bool,
    /// When its network last changed, while no frame has been received since.
    moved_at: Option<Instant>,
}

impl BotState {
    pub fn new(
        keyring: Keyring,
        stats: BotStats,
        expected: usize,
        joined_at: Instant,
        log: Arc<SendLog>,
        run_start: Instant,
        maker: Option<Maker>,
    ) -> Self {
        BotState {
            keyring,
            may_send: true,
            leaf_participants: HashMap::new(),
            stats,
            senders_seen: HashSet::new(),
            expected,
            joined_at,
            log,
            run_start,
            maker,
            network_back: None,
            rejoining: false,
            moved_at: None,
        }
    }

    /// Its media moved to another network (and ICE restarts).
    pub fn moved(&mut self, now: Instant) {
        self.moved_at = Some(now);
    }

    /// The group is gone (the server re-made it, this bot lost track of it, or the
    /// connection dropped): nothing more is sealed under its keys, and what others sealed
    /// under them is taken only for the grace time. Media resumes under the next group's.
    pub fn group_gone(&mut self, now: Instant) {
        let since = self.since_start(now);
        self.keyring.retire(since);
    }

    /// The client rejoined by itself after its connection dropped.
    pub fn rejoined(&mut self) {
        self.stats.reconnects += 1;
        self.rejoining = true;
    }

    /// Time since the run started.
    pub fn since_start(&self, now: Instant) -> Duration {
        now.duration_since(self.run_start)
    }

    /// The frame to send for `frame` of the test media (video if `video`): synthetic of its
    /// size, or sealed under the group's key; `None` while sending is withheld or no key is
    /// held yet.
    pub fn seal(&mut self, video: bool, frame: &[u8]) -> Option<Vec<u8>> {
        if !self.may_send {
            // Someone unexplained is in the group: nothing goes out.
            self.stats.frames_withheld += 1;
            return None;
        }
        let now = Instant::now();
        let since = self.since_start(now);
        let sealed = match self.maker.as_mut() {
            Some(m) => m.frame(video, frame.len(), since),
            None => {
                let sealed = self.keyring.encrypt(b"", frame).ok()?;
                if let Ok((h, _)) = Header::parse(&sealed) {
                    self.log.sent(h.kid, h.ctr, now);
                }
                sealed
            }
        };
        self.stats.frames_sent += 1;
        Some(sealed)
    }

    /// Takes one received frame of a track the server says `label` sends. "No key yet" is returned (not counted) so the caller can hold the frame; every
    /// other outcome is counted here.
    pub fn open(&mut self, frame: &[u8], label: Label, check: Check) -> Opened {
        let now = Instant::now();
        let since = self.since_start(now);
        let (sender, latency) = match check {
            Check::Synthetic => match synthetic::read(frame) {
                Ok(s) => (s.sender, Some(since.saturating_sub(s.sent))),
                Err(e) => {
                    tracing::debug!(error = %e, "not a synthetic frame");
                    self.stats.failed(Failure::Other, since);
                    return Opened::Done;
                }
            },
            Check::Count => {
                let Ok((h, _)) = Header::parse(frame) else {
                    self.stats.failed(Failure::Other, since);
                    return Opened::Done;
                };
                let Some((leaf, _)) = self.keyring.config().kid_layout.split(h.kid) else {
                    self.stats.failed(Failure::Other, since);
                    return Opened::Done;
                };
                (u64::from(leaf), self.latency(h.kid, h.ctr, now))
            }
            Check::Decrypt => match self.keyring.decrypt(b"", frame, since) {
                Ok((r, _plaintext)) => {
                    // The key names the sender; the server's label must agree with it.
                    if let Some(&actual) = self.leaf_participants.get(&r.sender)
                        && !label.agrees(actual)
                    {
                        self.stats.mislabelled_frames += 1;
                    }
                    self.stats.frames_verified += 1;
                    let (kid, ctr) = (r.header.kid, r.header.ctr);
                    (u64::from(r.sender), self.latency(kid, ctr, now))
                }
                Err(DecryptError::NoKeyYet { .. }) => return Opened::NoKeyYet,
                Err(DecryptError::BeforeJoin { .. }) => {
                    self.stats.before_join += 1;
                    return Opened::Done;
                }
                Err(DecryptError::Replayed { .. }) => {
                    self.stats.duplicates += 1;
                    return Opened::Done;
                }
                Err(DecryptError::AuthenticationFailed { .. }) => {
                    self.stats.failed(Failure::AuthenticationFailed, since);
                    return Opened::Done;
                }
                Err(e @ DecryptError::TooOld { .. }) => {
                    tracing::debug!(error = %e, "decrypt failure");
                    self.stats.failed(Failure::TooOld, since);
                    return Opened::Done;
                }
                Err(DecryptError::StaleEpoch { .. }) => {
                    self.stats.failed(Failure::StaleEpoch, since);
                    return Opened::Done;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "decrypt failure");
                    self.stats.failed(Failure::Other, since);
                    return Opened::Done;
                }
            },
        };
        self.stats.received(since.as_secs() as usize, latency);
        self.senders_seen.insert(sender);
        if std::mem::take(&mut self.rejoining)
            && let Some(back) = self.network_back.take()
        {
            crate::stats::record(
                &mut self.stats.reconnect_latency,
                now.saturating_duration_since(back),
            );
        }
        if let Some(moved) = self.moved_at.take() {
            crate::stats::record(
                &mut self.stats.ice_restart_latency,
                now.saturating_duration_since(moved),
            );
        }
        self.join_step(now, |j| &mut j.first_frame);
        if self.stats.join_time.is_none()
            && self.expected > 0
            && self.senders_seen.len() >= self.expected
        {
            self.stats.join_time = Some(now.duration_since(self.joined_at));
        }
        Opened::Done
    }

    fn latency(&self, kid: u64, ctr: u64, now: Instant) -> Option<Duration> {
        self.log
            .sent_at(kid, ctr)
            .map(|t| now.saturating_duration_since(t))
    }

    /// Records `step` of the first join as reached at `now` (the time from the join request),
    /// once: its first time counts, and nothing once the join is done (a later rejoin's steps
    /// are not the join's).
    pub fn join_step(
        &mut self,
        now: Instant,
        step: impl FnOnce(&mut JoinSteps) -> &mut Option<Duration>,
    ) {
        if self.stats.join_time.is_none() {
            let since = now.saturating_duration_since(self.joined_at);
            step(&mut self.stats.join_steps).get_or_insert(since);
        }
    }

    /// Whether the bot has a frame from every publisher it expected.
    pub fn joined(&self) -> bool {
        self.expected == 0 || self.stats.join_time.is_some()
    }
}
