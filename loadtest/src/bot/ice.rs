//! When a bot's media path breaks while its signaling stays up (another network, a lost
//! binding), it restarts ICE as the page does (decision 0030): the first restart after 1 s of
//! "disconnected" (at once when "failed" or when the bot knows its network changed), again
//! every 4 s while still down, and after 20 s it gives up (the media connection has failed).

use std::time::{Duration, Instant};

use rtc::peer_connection::state::RTCIceConnectionState;

const RESTART_AFTER: Duration = Duration::from_secs(1);
const RETRY_EVERY: Duration = Duration::from_secs(4);
const GIVE_UP_AFTER: Duration = Duration::from_secs(20);

/// What to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Nothing,
    Restart,
    GiveUp,
}

/// Where the media path stands.
#[derive(Debug, Default)]
pub struct IceRecovery {
    /// Since when it is down, while it is.
    down_since: Option<Instant>,
    /// When to offer the next restart.
    next: Option<Instant>,
}

impl IceRecovery {
    /// True while the path is down and restarts try to mend it.
    pub fn recovering(&self) -> bool {
        self.down_since.is_some()
    }

    /// The connection's ICE state changed.
    pub fn state(&mut self, state: RTCIceConnectionState, now: Instant) {
        match state {
            RTCIceConnectionState::Connected | RTCIceConnectionState::Completed => {
                *self = IceRecovery::default();
            }
            RTCIceConnectionState::Disconnected => {
                self.down_since.get_or_insert(now);
                self.next.get_or_insert(now + RESTART_AFTER);
            }
            RTCIceConnectionState::Failed => {
                self.down_since.get_or_insert(now);
                self.next = Some(now);
            }
            _ => {}
        }
    }

    /// The bot's network changed: the old path is gone, restart at once.
    pub fn moved(&mut self, now: Instant) {
        self.down_since.get_or_insert(now);
        self.next = Some(now);
    }

    /// When [`Self::due`] should be asked next.
    pub fn next(&self) -> Option<Instant> {
        self.next
    }

    /// What is due at `now` (a restart due is taken: the next one is a retry later).
    pub fn due(&mut self, now: Instant) -> Due {
        let (Some(since), Some(next)) = (self.down_since, self.next) else {
            return Due::Nothing;
        };
        if now < next {
            return Due::Nothing;
        }
        if now.duration_since(since) > GIVE_UP_AFTER {
            *self = IceRecovery::default();
            return Due::GiveUp;
        }
        self.next = Some(now + RETRY_EVERY);
        Due::Restart
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_after_a_second_down_retries_and_gives_up_after_twenty() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut ice = IceRecovery::default();
        assert_eq!(ice.due(at(0)), Due::Nothing);
        ice.state(RTCIceConnectionState::Disconnected, at(0));
        assert_eq!(ice.due(at(500)), Due::Nothing, "a short flap is left alone");
        assert_eq!(ice.due(at(1000)), Due::Restart);
        assert_eq!(ice.due(at(1500)), Due::Nothing);
        ice.state(RTCIceConnectionState::Failed, at(2000));
        assert_eq!(ice.due(at(2000)), Due::Restart, "failed: at once");
        assert_eq!(ice.due(at(6000)), Due::Restart, "and again 4 s later");
        assert_eq!(ice.due(at(21_000)), Due::GiveUp);
        assert!(!ice.recovering());
    }

    #[test]
    fn back_to_connected_ends_the_recovery_and_a_move_restarts_at_once() {
        let t0 = Instant::now();
        let mut ice = IceRecovery::default();
        ice.state(RTCIceConnectionState::Disconnected, t0);
        ice.state(
            RTCIceConnectionState::Connected,
            t0 + Duration::from_millis(300),
        );
        assert!(!ice.recovering());
        assert_eq!(ice.due(t0 + Duration::from_secs(5)), Due::Nothing);
        ice.moved(t0);
        assert_eq!(ice.due(t0), Due::Restart);
    }
}
