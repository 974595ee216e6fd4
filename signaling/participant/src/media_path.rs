//! Keeping the media path up while signaling stays (decision 0030): the one policy of the
//! page (through wasm) and the bots, without IO. When ICE goes "disconnected" for a second,
//! or "failed", or the device knows its network changed, the client offers an ICE restart,
//! and again every few seconds while the path stays down; after a while down it gives up (and
//! the client rejoins). A restart offer the SFU leaves unanswered is withdrawn (rolled back),
//! and an SFU offer that crossed it is answered then: the SFU, the polite side, waits for it.
//!
//! Time is a [`Duration`] since any origin that never goes back, as the caller counts it.

use std::time::Duration;

/// The first restart after this long "disconnected".
pub const RESTART_AFTER: Duration = Duration::from_secs(1);
/// Then one every this long while the path stays down, counted from the offer sent.
pub const RETRY_EVERY: Duration = Duration::from_secs(4);
/// Down longer than this: restarts did not mend it.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(20);
/// A restart offer unanswered this long is withdrawn.
pub const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// The ICE connection's state, as far as this policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceState {
    Connected,
    Disconnected,
    Failed,
    /// New, checking, closed: nothing to do.
    Other,
}

impl IceState {
    /// From the WebRTC name (`RTCIceConnectionState`): "connected", "completed", ...
    pub fn from_name(name: &str) -> IceState {
        match name {
            "connected" | "completed" => IceState::Connected,
            "disconnected" => IceState::Disconnected,
            "failed" => IceState::Failed,
            _ => IceState::Other,
        }
    }
}

/// The path went down, or came back (after how long down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Down,
    Up { after: Duration },
}

/// What the client should do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Offer an ICE restart (then call [`MediaPath::offered`]).
    OfferRestart,
    /// Withdraw our unanswered offer (roll back), then answer this SFU offer if any.
    Withdraw { answer: Option<String> },
    /// Restarts did not mend the path: the media connection has failed.
    GiveUp,
}

/// See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct MediaPath {
    /// Since when the path is down, while it is.
    down_since: Option<Duration>,
    /// When the next restart is due, while down.
    next_restart: Option<Duration>,
    /// When our last restart offer went out.
    last_offer: Option<Duration>,
    /// Since when our last offer waits for its answer.
    unanswered: Option<Duration>,
    /// An SFU offer that crossed ours: answered once ours is settled.
    set_aside: Option<String>,
    /// Restart offers made.
    restarts: u32,
}

impl MediaPath {
    /// True while the path is down and restarts try to mend it.
    pub fn recovering(&self) -> bool {
        self.down_since.is_some()
    }

    /// Restart offers made so far.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    fn down(&mut self, now: Duration) -> Option<Change> {
        if self.down_since.is_some() {
            return None;
        }
        self.down_since = Some(now);
        Some(Change::Down)
    }

    /// The ICE connection's state changed.
    pub fn ice(&mut self, state: IceState, now: Duration) -> Option<Change> {
        match state {
            IceState::Connected => {
                let since = self.down_since.take()?;
                self.next_restart = None;
                Some(Change::Up {
                    after: now.saturating_sub(since),
                })
            }
            IceState::Disconnected => {
                let change = self.down(now);
                self.next_restart.get_or_insert(now + RESTART_AFTER);
                change
            }
            IceState::Failed => {
                let change = self.down(now);
                // At once, unless a restart went out less than a retry ago (its checks may
                // still be running).
                let earliest = self.last_offer.map_or(now, |t| (t + RETRY_EVERY).max(now));
                self.next_restart = Some(earliest);
                change
            }
            IceState::Other => None,
        }
    }

    /// The device's network changed: the old path is gone, restart at once.
    pub fn moved(&mut self, now: Duration) -> Option<Change> {
        let change = self.down(now);
        self.next_restart = Some(now);
        change
    }

    /// A restart offer went out at `now`.
    pub fn offered(&mut self, now: Duration) {
        self.restarts += 1;
        self.last_offer = Some(now);
        self.unanswered = Some(now);
        if self.down_since.is_some() {
            self.next_restart = Some(now + RETRY_EVERY);
        }
    }

    /// The SFU answered our offer.
    pub fn answered(&mut self) {
        self.unanswered = None;
    }

    /// The SFU offers (its tracks changed). Answer it now (`Some`), or, when our own offer is
    /// out (`have_local_offer`), it is set aside: ours wins, the SFU withdraws its offer and
    /// offers again, and if ours goes unanswered this one is answered after all.
    pub fn sfu_offer(&mut self, sdp: String, have_local_offer: bool) -> Option<String> {
        if have_local_offer {
            self.set_aside = Some(sdp);
            None
        } else {
            self.set_aside = None;
            Some(sdp)
        }
    }

    /// What is due at `now`; `stable`: no offer/answer exchange is in flight (a restart waits
    /// for one to finish: the next retry offers).
    pub fn poll(&mut self, now: Duration, stable: bool) -> Option<Step> {
        if self.unanswered.is_some_and(|t| now >= t + ANSWER_WAIT) {
            self.unanswered = None;
            return Some(Step::Withdraw {
                answer: self.set_aside.take(),
            });
        }
        let (since, next) = (self.down_since?, self.next_restart?);
        if now < next {
            return None;
        }
        if now.saturating_sub(since) > GIVE_UP_AFTER {
            self.down_since = None;
            self.next_restart = None;
            return Some(Step::GiveUp);
        }
        self.next_restart = Some(now + RETRY_EVERY);
        stable.then_some(Step::OfferRestart)
    }

    /// When [`Self::poll`] next has something to do.
    pub fn next_timeout(&self) -> Option<Duration> {
        let answer = self.unanswered.map(|t| t + ANSWER_WAIT);
        match (answer, self.next_restart) {
            (Some(a), Some(r)) => Some(a.min(r)),
            (a, r) => a.or(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn restarts_after_a_second_down_retries_and_gives_up_after_twenty() {
        let mut p = MediaPath::default();
        assert_eq!(p.poll(ms(0), true), None);
        assert_eq!(p.ice(IceState::Disconnected, ms(0)), Some(Change::Down));
        assert_eq!(p.poll(ms(500), true), None, "a short flap is left alone");
        assert_eq!(p.next_timeout(), Some(ms(1000)));
        assert_eq!(p.poll(ms(1000), true), Some(Step::OfferRestart));
        p.offered(ms(1200));
        p.answered();
        assert_eq!(p.poll(ms(2000), true), None);
        // Failed right after our offer: not at once, a retry after the offer.
        assert_eq!(p.ice(IceState::Failed, ms(2000)), None, "already down");
        assert_eq!(p.next_timeout(), Some(ms(5200)));
        assert_eq!(p.poll(ms(5200), true), Some(Step::OfferRestart));
        p.offered(ms(5200));
        p.answered();
        // An exchange in flight: the restart waits for the next retry.
        assert_eq!(p.poll(ms(9200), false), None);
        assert_eq!(p.poll(ms(13_200), true), Some(Step::OfferRestart));
        assert_eq!(p.poll(ms(21_000), true), Some(Step::GiveUp));
        assert!(!p.recovering());
        assert_eq!(p.restarts(), 2);
    }

    #[test]
    fn back_to_connected_ends_the_recovery_and_a_move_restarts_at_once() {
        let mut p = MediaPath::default();
        p.ice(IceState::Disconnected, ms(0));
        assert_eq!(
            p.ice(IceState::Connected, ms(300)),
            Some(Change::Up { after: ms(300) })
        );
        assert!(!p.recovering());
        assert_eq!(p.poll(ms(5000), true), None);
        assert_eq!(p.moved(ms(6000)), Some(Change::Down));
        assert_eq!(p.poll(ms(6000), true), Some(Step::OfferRestart));
        assert_eq!(IceState::from_name("completed"), IceState::Connected);
    }

    #[test]
    fn an_unanswered_offer_is_withdrawn_and_the_crossing_offer_answered() {
        let mut p = MediaPath::default();
        p.moved(ms(0));
        assert_eq!(p.poll(ms(0), true), Some(Step::OfferRestart));
        p.offered(ms(100));
        // The SFU's own offer crosses ours: set aside. Ours is out (not stable): no new
        // restart meanwhile, however long the path stays down.
        assert_eq!(p.sfu_offer("sfu offer".into(), true), None);
        assert_eq!(p.poll(ms(5000), false), None);
        assert_eq!(
            p.poll(ms(5100), false),
            Some(Step::Withdraw {
                answer: Some("sfu offer".into())
            })
        );
        // Not withdrawn twice; an offer with nothing of ours out is answered at once.
        assert_eq!(p.poll(ms(5200), false), None);
        assert_eq!(p.sfu_offer("next".into(), false), Some("next".into()));
    }
}
