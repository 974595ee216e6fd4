//! Media negotiation between a participant and the SFU's side of its room: the offers, answers
//! and candidates that signaling relays without reading them.

use crate::client::{ClientMessage, IceCandidate};
use crate::server::ServerMessage;

/// An offer, answer or trickled candidate, from a participant or for it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaSignal {
    Offer(String),
    Answer(String),
    Candidate(IceCandidate),
}

impl MediaSignal {
    /// The media signal a participant's message carries, if it carries one.
    pub fn from_client(message: &ClientMessage) -> Option<Self> {
        match message {
            ClientMessage::SdpOffer { sdp } => Some(MediaSignal::Offer(sdp.clone())),
            ClientMessage::SdpAnswer { sdp } => Some(MediaSignal::Answer(sdp.clone())),
            ClientMessage::IceCandidate(c) => Some(MediaSignal::Candidate(c.clone())),
            _ => None,
        }
    }

    /// The server message that carries it to a participant.
    pub fn into_server(self) -> ServerMessage {
        match self {
            MediaSignal::Offer(sdp) => ServerMessage::SdpOffer { sdp },
            MediaSignal::Answer(sdp) => ServerMessage::SdpAnswer { sdp },
            MediaSignal::Candidate(c) => ServerMessage::IceCandidate(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_messages_map_both_ways_and_nothing_else_is_one() {
        let offer = ClientMessage::SdpOffer { sdp: "v=0".into() };
        let signal = MediaSignal::from_client(&offer).unwrap();
        assert_eq!(signal, MediaSignal::Offer("v=0".into()));
        assert_eq!(
            signal.into_server(),
            ServerMessage::SdpOffer { sdp: "v=0".into() }
        );
        assert_eq!(MediaSignal::from_client(&ClientMessage::Leave), None);
    }
}
