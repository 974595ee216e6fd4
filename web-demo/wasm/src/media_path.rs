//! The page's side of keeping the media path up: signaling_participant's [`media_path`]
//! policy (the bots' too), driven by the page's PeerConnection with the page's clock
//! (`performance.now()`, milliseconds).
//!
//! [`media_path`]: signaling_participant::media_path

use std::time::Duration;

use serde::Serialize;
use signaling_participant::media_path::{self, Change, IceState, Step};
use wasm_bindgen::prelude::*;

fn at(now_ms: f64) -> Duration {
    Duration::from_secs_f64(now_ms.max(0.0) / 1000.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What the page should do, as JSON: `{"step": "offer_restart"}`, `{"step": "withdraw",
/// "answer": sdp|null}`, `{"step": "give_up"}`.
#[derive(Debug, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
enum JsStep {
    OfferRestart,
    Withdraw { answer: Option<String> },
    GiveUp,
}

/// The media path's recovery state for one PeerConnection.
#[wasm_bindgen]
#[derive(Debug, Default)]
pub struct MediaPath(media_path::MediaPath);

#[wasm_bindgen]
impl MediaPath {
    #[wasm_bindgen(constructor)]
    pub fn new() -> MediaPath {
        MediaPath::default()
    }

    /// The ICE connection state is now `state` (`RTCIceConnectionState`'s name). Returns `-1`
    /// when the path just went down, the milliseconds it was down when it just came back, or
    /// nothing.
    pub fn ice(&mut self, state: &str, now_ms: f64) -> Option<f64> {
        match self.0.ice(IceState::from_name(state), at(now_ms))? {
            Change::Down => Some(-1.0),
            Change::Up { after } => Some(ms(after)),
        }
    }

    /// A restart offer went out.
    pub fn offered(&mut self, now_ms: f64) {
        self.0.offered(at(now_ms));
    }

    /// The SFU answered our offer.
    pub fn answered(&mut self) {
        self.0.answered();
    }

    /// The SFU offers: the offer to answer now, or nothing when ours is out (it is set aside).
    #[wasm_bindgen(js_name = sfuOffer)]
    pub fn sfu_offer(&mut self, sdp: String, have_local_offer: bool) -> Option<String> {
        self.0.sfu_offer(sdp, have_local_offer)
    }

    /// What is due now (JSON, see the module), or nothing; `stable`: no exchange in flight.
    pub fn poll(&mut self, now_ms: f64, stable: bool) -> Option<String> {
        let step = match self.0.poll(at(now_ms), stable)? {
            Step::OfferRestart => JsStep::OfferRestart,
            Step::Withdraw { answer } => JsStep::Withdraw { answer },
            Step::GiveUp => JsStep::GiveUp,
        };
        serde_json::to_string(&step).ok()
    }

    /// When [`MediaPath::poll`] next has something to do (the page's clock), or nothing.
    #[wasm_bindgen(js_name = nextTimeoutMs)]
    pub fn next_timeout_ms(&self) -> Option<f64> {
        self.0.next_timeout().map(ms)
    }

    /// True while the path is down and restarts try to mend it.
    #[wasm_bindgen(getter)]
    pub fn recovering(&self) -> bool {
        self.0.recovering()
    }

    /// Restart offers made.
    #[wasm_bindgen(getter)]
    pub fn restarts(&self) -> u32 {
        self.0.restarts()
    }
}
