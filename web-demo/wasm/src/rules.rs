//! The rules the page shares with the Rust clients, taken from the Rust that defines them, so
//! that the two cannot drift: the protocol version, which refusals are final, the rules for
//! names and room names.

use signaling_protocol::ErrorCode;
use signaling_protocol::names::{self, MAX_IDENTITY_BYTES, MAX_ROOM_BYTES, NameError};
use wasm_bindgen::prelude::*;

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
