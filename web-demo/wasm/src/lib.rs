//! The browser's side of a meeting, compiled to wasm: [`Meeting`] runs the participant's MLS
//! session from the signaling server's messages (JSON text in, JSON text out), and hands the
//! page each epoch's SFrame keys, derived here by RFC 9605 §4.4.2 for every member. The
//! per-frame AES-GCM runs in WebCrypto in the media worker (`static/sframe.js`), on exactly
//! these keys and salts.

mod keys;
mod outputs;

use std::time::Duration;

use media_crypto::mls::{KeyringConfig, SessionConfig};
use signaling_participant::Participant;
use signaling_protocol::{ServerMessage, decode_server};
use wasm_bindgen::prelude::*;

pub use keys::{EpochKeys, SenderKey, epoch_keys, sframe_key};
pub use outputs::{JsOutput, to_js};

/// One participant in one room, after the server's `joined`.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Meeting {
    participant: Participant,
    others_present: bool,
    keyring: KeyringConfig,
}

#[wasm_bindgen]
impl Meeting {
    /// Starts from the server's `joined` message (its JSON text).
    #[wasm_bindgen(constructor)]
    pub fn new(joined: &str) -> Result<Meeting, JsError> {
        let message = decode_server(joined).map_err(|e| JsError::new(&e.to_string()))?;
        let ServerMessage::Joined {
            participant_id,
            identity,
            participants,
            ..
        } = message
        else {
            return Err(JsError::new("expected a joined message"));
        };
        let participant = Participant::new(participant_id, &identity, SessionConfig::default())
            .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(Meeting {
            participant,
            others_present: !participants.is_empty(),
            keyring: KeyringConfig::default(),
        })
    }

    /// This participant's id in the room.
    #[wasm_bindgen(getter, js_name = participantId)]
    pub fn participant_id(&self) -> u64 {
        self.participant.participant_id()
    }

    /// The SFrame cipher suite the group's frames use.
    #[wasm_bindgen(getter)]
    pub fn suite(&self) -> u16 {
        self.keyring.suite.id()
    }

    /// What to do first: a JSON array of outputs (see [`JsOutput`]).
    pub fn start(&mut self) -> String {
        let outputs = self.participant.start(self.others_present);
        to_js(outputs, &self.keyring)
    }

    /// Applies a server message (JSON text) at `now_ms` (milliseconds since any origin that
    /// never goes back, e.g. `performance.now()`); returns a JSON array of outputs.
    pub fn handle(&mut self, message: &str, now_ms: f64) -> Result<String, JsError> {
        let message = decode_server(message).map_err(|e| JsError::new(&e.to_string()))?;
        let now = Duration::from_secs_f64(now_ms.max(0.0) / 1000.0);
        let outputs = self.participant.handle(message, now);
        Ok(to_js(outputs, &self.keyring))
    }
}

/// RFC 9605 §4.4.2 for one KID: `{"key": [..], "salt": [..]}` as JSON, for the browser's
/// self-test against the RFC's vectors through the same worker code as meetings use.
#[wasm_bindgen(js_name = deriveSframeKey)]
pub fn derive_sframe_key(suite: u16, kid: u64, base_key: &[u8]) -> Result<String, JsError> {
    let key = sframe_key(suite, kid, base_key).map_err(|e| JsError::new(&e))?;
    serde_json::to_string(&key).map_err(|e| JsError::new(&e.to_string()))
}
