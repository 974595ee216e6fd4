//! What a participant's offer may ask of the SFU, checked before any connection or port is
//! taken for it: it parses, it sends at most [`MAX_TRACKS_PER_PUBLISHER`] media sections,
//! and it has at most [`MAX_SECTIONS`] sections in all (a later offer carries the sections the
//! SFU added to send others' tracks, so the total grows with the room, but not without end).

use rtc::sdp::{MediaDescription, SessionDescription};
use signaling_protocol::ErrorCode;

use super::MAX_TRACKS_PER_PUBLISHER;

/// Media sections one offer may hold.
pub const MAX_SECTIONS: usize = 512;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OfferError {
    #[error("the offer is not valid SDP: {0}")]
    Unparsable(String),
    #[error(
        "the offer sends {0} media sections; a participant may send {MAX_TRACKS_PER_PUBLISHER}"
    )]
    TooManyTracks(usize),
    #[error("the offer has {0} media sections; at most {MAX_SECTIONS} are taken")]
    TooManySections(usize),
}

impl OfferError {
    /// The code the participant is told.
    pub fn code(&self) -> ErrorCode {
        match self {
            OfferError::Unparsable(_) | OfferError::TooManySections(_) => ErrorCode::InvalidSdp,
            OfferError::TooManyTracks(_) => ErrorCode::PublishNotAllowed,
        }
    }
}

/// Checks `sdp` as an offer.
pub fn check(sdp: &str) -> Result<(), OfferError> {
    let parsed = SessionDescription::unmarshal(&mut std::io::Cursor::new(sdp.as_bytes()))
        .map_err(|e| OfferError::Unparsable(e.to_string()))?;
    let sections = &parsed.media_descriptions;
    if sections.len() > MAX_SECTIONS {
        return Err(OfferError::TooManySections(sections.len()));
    }
    let sending = sections.iter().filter(|m| sends(m)).count();
    if sending > MAX_TRACKS_PER_PUBLISHER {
        return Err(OfferError::TooManyTracks(sending));
    }
    Ok(())
}

/// Whether the offerer sends media in this section: RTP media, not rejected (port 0), and
/// `sendrecv` or `sendonly` (sendrecv when no direction is given, RFC 3264 §5.1).
fn sends(m: &MediaDescription) -> bool {
    let media = m.media_name.media.as_str();
    (media == "audio" || media == "video")
        && m.media_name.port.value != 0
        && !m.has_attribute("recvonly")
        && !m.has_attribute("inactive")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(sections: &[(&str, u16, &str)]) -> String {
        let mut sdp = String::from(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
             a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n",
        );
        for (i, (media, port, direction)) in sections.iter().enumerate() {
            sdp.push_str(&format!(
                "m={media} {port} UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:{i}\r\n\
                 a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\n\
                 a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
            ));
            if !direction.is_empty() {
                sdp.push_str(&format!("a={direction}\r\n"));
            }
        }
        sdp
    }

    #[test]
    fn a_camera_a_microphone_and_a_screen_are_fine() {
        let mut sections = vec![
            ("audio", 9, "sendonly"),
            ("video", 9, ""),
            ("video", 9, "sendrecv"),
        ];
        // What the SFU added to send others' tracks, and a rejected section.
        sections.extend([("audio", 9, "recvonly"); 40]);
        sections.push(("video", 0, "sendonly"));
        sections.push(("video", 9, "inactive"));
        assert_eq!(check(&offer(&sections)), Ok(()));
    }

    #[test]
    fn more_sending_sections_than_a_publisher_may_have_are_refused() {
        let sections = [("audio", 9, "sendonly"); MAX_TRACKS_PER_PUBLISHER + 1];
        let e = check(&offer(&sections)).expect_err("too many");
        assert_eq!(e, OfferError::TooManyTracks(MAX_TRACKS_PER_PUBLISHER + 1));
        assert_eq!(e.code(), ErrorCode::PublishNotAllowed);
    }

    #[test]
    fn an_offer_of_endless_sections_is_refused() {
        let sections = vec![("video", 9, "recvonly"); MAX_SECTIONS + 1];
        let e = check(&offer(&sections)).expect_err("too many");
        assert_eq!(e, OfferError::TooManySections(MAX_SECTIONS + 1));
        assert_eq!(e.code(), ErrorCode::InvalidSdp);
        assert!(matches!(check("not sdp"), Err(OfferError::Unparsable(_))));
    }
}
