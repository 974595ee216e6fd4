//! The rules the page shares with the Rust clients, taken from the Rust that defines them, so
//! that the two cannot drift: the protocol version, which refusals are final, the rules for
//! names and room names, stream ids, when to reconnect, how long a frame waits for its key.
//! (Keeping the media path up is [`crate::media_path`].)

use signaling_participant::reconnect::Reconnect;
use signaling_protocol::ErrorCode;
use signaling_protocol::names::{self, MAX_IDENTITY_BYTES, MAX_ROOM_BYTES, NameError};
use wasm_bindgen::prelude::*;

/// The publisher and source a received stream id names (the SFU's label, a hint:
/// `signaling_protocol::media_stream`), as JSON `{"pid": N, "source": S|null}`, or the audio
/// section it is, as `{"audio": N}`; nothing when it is not a stream id the SFU makes.
#[wasm_bindgen(js_name = parseStreamId)]
pub fn parse_stream_id(id: &str) -> Option<String> {
    use signaling_protocol::media_stream;
    if let Some(n) = media_stream::parse_audio_section(id) {
        return Some(serde_json::json!({ "audio": n }).to_string());
    }
    let (pid, source) = media_stream::parse_stream_id(id)?;
    Some(serde_json::json!({ "pid": pid, "source": source }).to_string())
}

/// The wait before reconnect attempt `attempt` (from 1), spread by `jitter` (0 to 1), in
/// milliseconds (`signaling_participant::reconnect`).
#[wasm_bindgen(js_name = reconnectDelayMs)]
pub fn reconnect_delay_ms(attempt: u32, jitter: f64) -> f64 {
    Reconnect::default().delay(attempt, jitter).as_secs_f64() * 1000.0
}

/// Whether a page down for `down_ms` stops trying to reconnect.
#[wasm_bindgen(js_name = reconnectGivesUp)]
pub fn reconnect_gives_up(down_ms: f64) -> bool {
    Reconnect::default().gives_up(std::time::Duration::from_secs_f64(
        down_ms.max(0.0) / 1000.0,
    ))
}

/// How long a received frame may wait for its epoch's key, in milliseconds.
#[wasm_bindgen(js_name = keyWaitMs)]
pub fn key_wait_ms() -> f64 {
    media_crypto::mls::KEY_WAIT.as_secs_f64() * 1000.0
}

/// What is wrong with `identity` (`signaling_protocol::names::check_identity`): `"empty"`,
/// `"too_long"`, `"padded"`, `"control"` or `"invisible"`; nothing if it is fine.
#[wasm_bindgen(js_name = checkIdentity)]
pub fn check_identity(identity: &str) -> Option<String> {
    names::check_identity(identity)
        .err()
        .map(|e: NameError| e.code().to_owned())
}

/// As [`check_identity`], for a room name.
#[wasm_bindgen(js_name = checkRoom)]
pub fn check_room(room: &str) -> Option<String> {
    names::check_room(room).err().map(|e| e.code().to_owned())
}

/// The longest identity, in bytes.
#[wasm_bindgen(js_name = maxIdentityBytes)]
pub fn max_identity_bytes() -> usize {
    MAX_IDENTITY_BYTES
}

/// The longest room name, in bytes.
#[wasm_bindgen(js_name = maxRoomBytes)]
pub fn max_room_bytes() -> usize {
    MAX_ROOM_BYTES
}

/// The signaling protocol version this page speaks (`signaling_protocol::PROTOCOL_VERSION`).
#[wasm_bindgen(js_name = protocolVersion)]
pub fn protocol_version() -> u16 {
    signaling_protocol::PROTOCOL_VERSION
}

/// Whether the server's error `code` (as on the wire, e.g. `"removed"`) is a refusal that
/// trying again cannot change: the page stops instead of reconnecting
/// ([`ErrorCode::is_final`]). An unknown code is not final.
#[wasm_bindgen(js_name = isFinalRefusal)]
pub fn is_final_refusal(code: &str) -> bool {
    serde_json::from_value::<ErrorCode>(serde_json::Value::String(code.to_owned()))
        .is_ok_and(ErrorCode::is_final)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_judged_by_the_rust_rules() {
        assert_eq!(check_identity("alice"), None);
        assert_eq!(
            check_identity("alice\u{200B}").as_deref(),
            Some("invisible")
        );
        assert_eq!(check_identity(&"é".repeat(60)).as_deref(), Some("too_long"));
        assert_eq!(check_room(&"r".repeat(129)).as_deref(), Some("too_long"));
        assert_eq!(check_room("weekly sync"), None);
    }

    #[test]
    fn stream_ids_and_reconnects_follow_the_rust_rules() {
        assert_eq!(
            parse_stream_id("7.{3f2a-b}").as_deref(),
            Some(r#"{"pid":7,"source":"{3f2a-b}"}"#)
        );
        assert_eq!(
            parse_stream_id("7").as_deref(),
            Some(r#"{"pid":7,"source":null}"#)
        );
        assert_eq!(
            parse_stream_id("7.a b"),
            None,
            "not a source the SFU forwards"
        );
        assert_eq!(parse_stream_id("x.y"), None);
        assert_eq!(reconnect_delay_ms(1, 0.5), 250.0);
        assert_eq!(reconnect_delay_ms(11, 0.5), 8000.0);
        assert!(reconnect_gives_up(121_000.0) && !reconnect_gives_up(1000.0));
        assert_eq!(key_wait_ms(), 1000.0);
    }

    #[test]
    fn final_refusals_are_named_as_on_the_wire() {
        for code in [
            "removed",
            "banned",
            "room_closed",
            "token_expired",
            "invalid_token",
        ] {
            assert!(is_final_refusal(code), "{code}");
        }
        for code in [
            "rate_limited",
            "shutting_down",
            "internal",
            "no such code",
            "",
        ] {
            assert!(!is_final_refusal(code), "{code}");
        }
    }
}
