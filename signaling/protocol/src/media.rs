//! Media negotiation between a participant and the SFU's side of its room: the offers, answers
//! and candidates that signaling relays without reading them, and which videos the participant
//! shows how large.

use crate::client::{ClientMessage, IceCandidate, VideoWant};
use crate::server::{PausedVideo, ServerMessage, VideoSection};

/// An offer, answer or trickled candidate, from a participant or for it; which videos a
/// participant shows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaSignal {
    Offer(String),
    Answer(String),
    Candidate(IceCandidate),
    /// From a participant only: the videos it shows and how large, and at most how many it
    /// takes at a time.
    VideoWants {
        videos: Vec<VideoWant>,
        last_n: Option<u16>,
    },
    /// For a participant only: how many spatial layers of its video `source` anyone shows,
    /// the top one `height` tall.
    SendLayers {
        source: String,
        spatial_layers: u8,
        height: u16,
    },
    /// For a participant only: the shown videos it is sent nothing of now, and why.
    PausedVideos(Vec<PausedVideo>),
    /// For a participant only: the videos published in the room now.
    VideoStreams(Vec<String>),
    /// For a participant only: what each of its video sections carries now.
    VideoSections(Vec<VideoSection>),
}

impl MediaSignal {
    /// The media signal a participant's message carries, if it carries one.
    pub fn from_client(message: &ClientMessage) -> Option<Self> {
        match message {
            ClientMessage::SdpOffer { sdp } => Some(MediaSignal::Offer(sdp.clone())),
            ClientMessage::SdpAnswer { sdp } => Some(MediaSignal::Answer(sdp.clone())),
            ClientMessage::IceCandidate(c) => Some(MediaSignal::Candidate(c.clone())),
            ClientMessage::VideoWants { videos, last_n } => Some(MediaSignal::VideoWants {
                videos: videos.clone(),
                last_n: *last_n,
            }),
            _ => None,
        }
    }

    /// The server message that carries it to a participant (none for what only a
    /// participant says).
    pub fn into_server(self) -> Option<ServerMessage> {
        match self {
            MediaSignal::Offer(sdp) => Some(ServerMessage::SdpOffer { sdp }),
            MediaSignal::Answer(sdp) => Some(ServerMessage::SdpAnswer { sdp }),
            MediaSignal::Candidate(c) => Some(ServerMessage::IceCandidate(c)),
            MediaSignal::VideoWants { .. } => None,
            MediaSignal::SendLayers {
                source,
                spatial_layers,
                height,
            } => Some(ServerMessage::SendLayers {
                source,
                spatial_layers,
                height,
            }),
            MediaSignal::PausedVideos(videos) => Some(ServerMessage::PausedVideos { videos }),
            MediaSignal::VideoStreams(streams) => Some(ServerMessage::VideoStreams { streams }),
            MediaSignal::VideoSections(sections) => Some(ServerMessage::VideoSections { sections }),
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
            Some(ServerMessage::SdpOffer { sdp: "v=0".into() })
        );
        let wants = ClientMessage::VideoWants {
            videos: vec![VideoWant {
                stream: "7.cam".into(),
                height: 180,
            }],
            last_n: Some(4),
        };
        let signal = MediaSignal::from_client(&wants).unwrap();
        assert_eq!(signal.into_server(), None, "a participant's word only");
        assert_eq!(MediaSignal::from_client(&ClientMessage::Leave), None);
    }
}
