//! The rules the page shares with the Rust clients, taken from the Rust that defines them, so
//! that the two cannot drift: the protocol version, which refusals are final.

use signaling_protocol::ErrorCode;
use wasm_bindgen::prelude::*;

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
