//! Any text as a client's frame: a typed error or a message, never a panic; a message that
//! decodes encodes back to one that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signaling_protocol::decode_client;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = decode_client(text) {
        let again = serde_json::to_string(&m).expect("encodes");
        assert_eq!(decode_client(&again), Ok(m));
    }
});
