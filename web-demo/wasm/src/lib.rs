//! The browser's side of a meeting, compiled to wasm: [`Meeting`] runs the participant's MLS
//! session from the signaling server's messages (JSON text in, JSON text out), and hands the
//! page each epoch's key material for the media worker and the roster as the group states it,
//! judged ([`roster`]): fingerprints, devices seen before, leaves nobody announced. In the
//! worker, [`FrameKeys`] makes every frame decision (header, KID, key, nonce, counter, replay
//! window) with media-crypto's keyring; only AES-GCM runs in WebCrypto (`static/sframe.js`).

mod frames;
mod keys;
pub mod media_path;
mod outputs;
mod roster;
pub mod rules;
pub mod trust;

use std::time::Duration;

use media_crypto::mls::{DeviceKey, KeyringConfig, RosterEntry, SessionConfig};
use signaling_participant::{AppMessage, Participant};
use signaling_protocol::{ServerMessage, decode_server};
use wasm_bindgen::prelude::*;

pub use frames::{FrameKeys, OpenStatus, Opening, Sealing};
pub use keys::{EpochKeys, SenderKey, epoch_keys, sframe_key};
pub use outputs::{Converter, JsOutput};
pub use roster::{Devices, Member, Warning};

/// One participant in one room, after the server's `joined`.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Meeting {
    participant: Participant,
    keyring: KeyringConfig,
    /// `performance.timeOrigin`: wall-clock milliseconds at the page's time 0.
    wall_origin_ms: f64,
    last_now_ms: f64,
}

fn js_error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

#[wasm_bindgen]
impl Meeting {
    /// Starts from the server's `joined` message (its JSON text), signing with this device's
    /// key (`device_key`, as [`Meeting::device_key`] handed it out; empty: a fresh one) and
    /// judging devices with the page's trust store ([`trust`]). `wall_origin_ms` is
    /// `performance.timeOrigin`.
    #[wasm_bindgen(constructor)]
    pub fn new(joined: &str, device_key: &[u8], wall_origin_ms: f64) -> Result<Meeting, JsError> {
        let message = decode_server(joined).map_err(js_error)?;
        let ServerMessage::Joined {
            participant_id,
            identity,
            participants,
            ..
        } = message
        else {
            return Err(JsError::new("expected a joined message"));
        };
        let config = SessionConfig::default();
        let device = if device_key.is_empty() {
            DeviceKey::generate(config.ciphersuite)
        } else {
            DeviceKey::from_bytes(device_key, config.ciphersuite)
        }
        .map_err(js_error)?;
        let participant =
            Participant::with_device_key(participant_id, &identity, &participants, device, config)
                .map_err(js_error)?;
        Ok(Meeting {
            participant,
            keyring: KeyringConfig::default(),
            wall_origin_ms,
            last_now_ms: 0.0,
        })
    }

    /// A fresh device key, to store (IndexedDB) and pass to [`Meeting::new`] on every visit.
    #[wasm_bindgen(js_name = newDeviceKey)]
    pub fn new_device_key() -> Result<Vec<u8>, JsError> {
        DeviceKey::generate(SessionConfig::default().ciphersuite)
            .map(|k| k.to_bytes().to_vec())
            .map_err(js_error)
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

    /// The page's `now_ms` as the participant's time, remembered for the wall clock.
    fn clock(&mut self, now_ms: f64) -> Duration {
        self.last_now_ms = now_ms.max(self.last_now_ms);
        Duration::from_secs_f64(now_ms.max(0.0) / 1000.0)
    }

    /// Wall-clock milliseconds now (as of the last call with the page's clock).
    fn wall_ms(&self) -> u64 {
        (self.wall_origin_ms + self.last_now_ms).max(0.0) as u64
    }

    /// `f` with a converter of outputs for the page, judging devices with the page's store.
    fn convert<T>(&self, f: impl FnOnce(&mut Converter<'_>) -> T) -> T {
        let wall_ms = self.wall_ms();
        trust::with(|devices| {
            f(&mut Converter {
                participant: &self.participant,
                devices,
                keyring: &self.keyring,
                wall_ms,
            })
        })
    }

    /// The roster entry the user was shown at `leaf` with `key` (hex) under `identity`, for an
    /// action on it.
    fn shown(&self, leaf: u32, key: &str, identity: &str) -> Result<RosterEntry, JsError> {
        roster::shown(&self.participant.session().roster(), leaf, key, identity).map_err(js_error)
    }

    /// What to do first: a JSON array of outputs (see [`JsOutput`]).
    pub fn start(&mut self) -> String {
        let outputs = self.participant.start();
        self.convert(|c| c.to_js(outputs))
    }

    /// Applies a server message (JSON text) at `now_ms` (milliseconds since any origin that
    /// never goes back, e.g. `performance.now()`); returns a JSON array of outputs.
    pub fn handle(&mut self, message: &str, now_ms: f64) -> Result<String, JsError> {
        let message = decode_server(message).map_err(js_error)?;
        let now = self.clock(now_ms);
        let outputs = self.participant.handle(message, now);
        Ok(self.convert(|c| c.to_js(outputs)))
    }

    /// Time passed (`now_ms` as for [`Meeting::handle`]): what is due, as outputs (messages
    /// that did not arrive in time). Call it at [`Meeting::next_timeout_ms`].
    #[wasm_bindgen(js_name = handleTimeout)]
    pub fn handle_timeout(&mut self, now_ms: f64) -> String {
        let now = self.clock(now_ms);
        let outputs = self.participant.handle_timeout(now);
        self.convert(|c| c.to_js(outputs))
    }

    /// When [`Meeting::handle_timeout`] next has something to do (on the clock of `now_ms`),
    /// or `undefined`.
    #[wasm_bindgen(js_name = nextTimeoutMs)]
    pub fn next_timeout_ms(&self) -> Option<f64> {
        self.participant
            .poll_timeout()
            .map(|t| t.as_secs_f64() * 1000.0)
    }

    /// The user knows who is at the unexplained `leaf`, on the device `key` (hex) under
    /// `identity`, as they were shown: media may be sent again once every unexplained leaf is acknowledged. Returns
    /// outputs (the send gate, the roster); refused if that leaf holds another device now.
    pub fn acknowledge(&mut self, leaf: u32, key: &str, identity: &str) -> Result<String, JsError> {
        let entry = self.shown(leaf, key, identity)?;
        let outputs = self
            .participant
            .acknowledge(leaf, &entry.signature_key)
            .map_err(js_error)?;
        Ok(self.convert(|c| {
            let mut list = c.to_list(outputs);
            list.push(JsOutput::Roster { roster: c.roster() });
            c.finish(list)
        }))
    }

    /// Says something to the other members, end to end: `message` is the JSON of an
    /// application message (`{"kind": "chat", "text": ...}`, `reaction`, `hand`, `state`);
    /// returns outputs (what to send, or that it waits). Refused if it is not one a member may
    /// send (empty, too long, control characters).
    pub fn say(&mut self, message: &str) -> Result<String, JsError> {
        let message: AppMessage = serde_json::from_str(message).map_err(js_error)?;
        let (_, outputs) = self.participant.send_app(message).map_err(js_error)?;
        Ok(self.convert(|c| c.to_js(outputs)))
    }

    /// The person at `leaf` compared the fingerprint of the device `key` (hex) under
    /// `identity` the page showed them, and it matched: this browser remembers that device as verified. Returns
    /// outputs (the roster, the records to keep); refused if that leaf holds another device
    /// now (the server refilled it since the user looked).
    pub fn verify(&mut self, leaf: u32, key: &str, identity: &str) -> Result<String, JsError> {
        let entry = self.shown(leaf, key, identity)?;
        let wall = self.wall_ms();
        trust::with(|d| d.verify(&roster::identity_of(&entry), &entry.signature_key, wall));
        Ok(self.roster())
    }

    /// The user accepts the new device at `leaf` (`key`, hex, as shown) as that person's: it
    /// is no longer flagged "new". Refused as [`Meeting::verify`] is.
    #[wasm_bindgen(js_name = acknowledgeDevice)]
    pub fn acknowledge_device(
        &mut self,
        leaf: u32,
        key: &str,
        identity: &str,
    ) -> Result<String, JsError> {
        let entry = self.shown(leaf, key, identity)?;
        let wall = self.wall_ms();
        trust::with(|d| d.acknowledge(&roster::identity_of(&entry), &entry.signature_key, wall));
        Ok(self.roster())
    }

    /// The roster as outputs (after the trust store changed, here or in another tab).
    pub fn roster(&self) -> String {
        self.convert(|c| {
            let list = vec![JsOutput::Roster { roster: c.roster() }];
            c.finish(list)
        })
    }
}

/// RFC 9605 §4.4.2 for one KID: `{"key": [..], "salt": [..]}` as JSON, for the browser's
/// self-test against the RFC's vectors through the same worker code as meetings use.
#[wasm_bindgen(js_name = deriveSframeKey)]
pub fn derive_sframe_key(suite: u16, kid: u64, base_key: &[u8]) -> Result<String, JsError> {
    let key = sframe_key(suite, kid, base_key).map_err(|e| JsError::new(&e))?;
    serde_json::to_string(&key).map_err(|e| JsError::new(&e.to_string()))
}
