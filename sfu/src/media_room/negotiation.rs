//! Offer/answer with one participant (RFC 8829 JSEP, RFC 3264). The participant offers first
//! (what it sends); the SFU offers whenever the set of tracks it sends the participant changed,
//! one exchange at a time. When the participant's offer crosses ours, the SFU is the polite
//! side: it withdraws its offer, answers, and offers again afterwards.

/// Where one participant's negotiation stands.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Negotiation {
    /// The participant's first offer was answered: it is in the room's routing.
    pub routed: bool,
    /// An offer of ours awaits its answer.
    pub offering: bool,
    /// Our tracks for the participant changed since the last offer.
    pub wanted: bool,
}

/// What to do with an offer from the participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnOffer {
    /// Apply it.
    Apply,
    /// Withdraw our pending offer first, then apply it.
    RollbackThenApply,
}

impl Negotiation {
    /// The participant offers.
    pub fn offer_received(&mut self) -> OnOffer {
        if self.offering {
            self.offering = false;
            // What our offer carried still has to be offered.
            self.wanted = true;
            OnOffer::RollbackThenApply
        } else {
            OnOffer::Apply
        }
    }

    /// The participant's offer was answered.
    pub fn answered(&mut self) {
        self.routed = true;
    }

    /// Our tracks for the participant changed.
    pub fn want(&mut self) {
        self.wanted = true;
    }

    /// True if an offer of ours should go out now (and then it is one in flight).
    pub fn take_offer_turn(&mut self) -> bool {
        if self.wanted && !self.offering && self.routed {
            self.wanted = false;
            self.offering = true;
            true
        } else {
            false
        }
    }

    /// Our offer could not be made; try again on the next change.
    pub fn offer_failed(&mut self) {
        self.offering = false;
    }

    /// An answer arrived: true if we were waiting for one.
    pub fn answer_received(&mut self) -> bool {
        std::mem::replace(&mut self.offering, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_exchange_at_a_time_and_only_once_routed() {
        let mut n = Negotiation::default();
        n.want();
        assert!(
            !n.take_offer_turn(),
            "not before the participant's first offer is answered"
        );
        assert_eq!(n.offer_received(), OnOffer::Apply);
        n.answered();
        assert!(n.take_offer_turn());
        n.want();
        assert!(!n.take_offer_turn(), "our first offer is still out");
        assert!(n.answer_received());
        assert!(
            n.take_offer_turn(),
            "the change made meanwhile is offered next"
        );
        assert!(n.answer_received());
        assert!(!n.answer_received(), "an answer without an offer");
        assert!(!n.take_offer_turn());
    }

    #[test]
    fn a_crossing_offer_wins_and_ours_follows() {
        let mut n = Negotiation {
            routed: true,
            ..Default::default()
        };
        n.want();
        assert!(n.take_offer_turn());
        assert_eq!(n.offer_received(), OnOffer::RollbackThenApply);
        assert!(n.take_offer_turn(), "ours goes out again after the answer");
    }
}
