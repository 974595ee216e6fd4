//! How the SFU names the streams it forwards: `"<publisher>.<source>"`, where `<source>` is
//! the publisher's own stream id (its SDP msid), so that a subscriber can tell which tracks go
//! together (a microphone and camera; a screen share) and the publisher can say, in a message
//! signed by its key, which of its streams is its screen. `"<publisher>"` alone when the
//! publisher's stream id cannot be forwarded as it is.
//!
//! Audio is different: a receiver gets the loudest few streams of the room through a fixed set
//! of sections, each carrying whoever is loud at the moment, named `"audio-<n>"`
//! ([`audio_section`]): who speaks in one is known only by the key that opens its frames.
//!
//! Video likewise: a receiver takes the videos it shows through as many sections as it shows
//! videos, named `"video-<n>"` ([`video_section`]), and the SFU says which stream each carries
//! (`video_sections`, by the section's media id) as it moves videos between them.
//!
//! A label from the server, so a hint: a client names media by the key that opens its frames
//! and takes a stream as a screen share only when its publisher says so.

use crate::ParticipantId;

/// The longest source name the SFU forwards (RFC 8830 allows 64 characters).
pub const MAX_SOURCE_LEN: usize = 64;

/// Whether `source` (a publisher's msid stream id) may be forwarded as it is: 1 to
/// [`MAX_SOURCE_LEN`] characters of RFC 8830's token set that cannot break an SDP line.
/// (`.` separates the two parts: a token character, unlike `:`; the publisher is digits.)
pub fn valid_source(source: &str) -> bool {
    (1..=MAX_SOURCE_LEN).contains(&source.len())
        && source
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.{}".contains(&b))
}

/// The stream id a subscriber sees for `publisher`'s stream `source`.
pub fn stream_id(publisher: ParticipantId, source: Option<&str>) -> String {
    match source {
        Some(s) => format!("{publisher}.{s}"),
        None => publisher.to_string(),
    }
}

/// Reads a stream id made by [`stream_id`]: the publisher and its source, if named.
pub fn parse_stream_id(stream: &str) -> Option<(ParticipantId, Option<&str>)> {
    match stream.split_once('.') {
        Some((p, s)) if valid_source(s) => Some((p.parse().ok()?, Some(s))),
        Some(_) => None,
        None => Some((stream.parse().ok()?, None)),
    }
}

/// The stream id of a receiver's `n`th audio section (the loudest streams take turns in it).
pub fn audio_section(n: usize) -> String {
    format!("audio-{n}")
}

/// Which audio section a stream id made by [`audio_section`] names.
pub fn parse_audio_section(stream: &str) -> Option<usize> {
    section_number(stream.strip_prefix("audio-")?)
}

/// The stream id of a receiver's `n`th video section (the videos it takes move between them).
pub fn video_section(n: usize) -> String {
    format!("video-{n}")
}

/// Which video section a stream id made by [`video_section`] names.
pub fn parse_video_section(stream: &str) -> Option<usize> {
    section_number(stream.strip_prefix("video-")?)
}

fn section_number(n: &str) -> Option<usize> {
    if n.is_empty() || n.len() > 4 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_round_trip() {
        assert_eq!(parse_stream_id(&stream_id(7, None)), Some((7, None)));
        let id = stream_id(7, Some("{3f2a-b}"));
        assert_eq!(id, "7.{3f2a-b}");
        assert_eq!(parse_stream_id(&id), Some((7, Some("{3f2a-b}"))));
    }

    #[test]
    fn sources_that_could_break_an_sdp_line_are_not_valid() {
        for bad in ["", "a b", "a\r\nb", "a:b", "a/b", &"x".repeat(65), "é"] {
            assert!(!valid_source(bad), "{bad:?}");
            assert_eq!(parse_stream_id(&format!("1.{bad}")), None);
        }
        assert!(valid_source(&"x".repeat(64)));
        assert_eq!(parse_stream_id("not-a-number"), None);
    }

    #[test]
    fn audio_sections_are_no_publishers_stream() {
        assert_eq!(parse_audio_section(&audio_section(2)), Some(2));
        assert_eq!(parse_stream_id(&audio_section(2)), None);
        for bad in [
            "audio-",
            "audio-x",
            "audio--1",
            "audio-12345",
            "7",
            "7.audio-1",
        ] {
            assert_eq!(parse_audio_section(bad), None, "{bad:?}");
        }
        assert_eq!(parse_video_section(&video_section(12)), Some(12));
        assert_eq!(parse_video_section(&audio_section(1)), None);
        assert_eq!(parse_stream_id(&video_section(1)), None);
    }
}
