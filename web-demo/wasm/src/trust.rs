//! This page's trust store: one for the life of the page (the wasm module lives as long as the
//! page), so what it judged a device, and what the user accepted or verified, stays the same
//! across every reconnect and every `Meeting` the page makes. Loaded once from IndexedDB
//! (`trustLoad`); each change goes out as records to write (the `trust` output), which the page
//! merges into IndexedDB record by record (`mergeTrustRecord`) and tells its other tabs, whose
//! records come in through `trustMerge`.

use std::cell::RefCell;

use signaling_participant::trust::{KnownDevice, TrustStore, merge_devices};
use wasm_bindgen::prelude::*;

use crate::js_error;
use crate::roster::Devices;

thread_local! {
    static DEVICES: RefCell<Devices> = RefCell::new(Devices::default());
}

/// Runs `f` with the page's devices.
pub(crate) fn with<T>(f: impl FnOnce(&mut Devices) -> T) -> T {
    DEVICES.with(|d| f(&mut d.borrow_mut()))
}

/// Loads the page's trust store from `records` (JSON: identity → devices, as IndexedDB holds
/// them; empty: none), the visit having begun at `since_ms` (wall clock). A damaged record is
/// left out (and left alone in IndexedDB); false if the text as a whole is not records (then
/// the store starts empty).
#[wasm_bindgen(js_name = trustLoad)]
pub fn trust_load(records: &str, since_ms: f64) -> bool {
    let (store, whole) = match records {
        "" => (TrustStore::new(), true),
        text => match TrustStore::from_records(text) {
            Ok(store) => (store, true),
            Err(_) => (TrustStore::new(), false),
        },
    };
    with(|d| *d = Devices::new(store, since_ms.max(0.0) as u64));
    whole
}

/// Takes in records another tab wrote (JSON: identity → devices); true if anything changed
/// (the roster's verdicts should be shown again).
#[wasm_bindgen(js_name = trustMerge)]
pub fn trust_merge(records: &str) -> Result<bool, JsError> {
    with(|d| d.merge(records)).map_err(js_error)
}

/// One identity's record as stored (`stored`, JSON devices, or empty) merged with the one to
/// write (`new`): what to put back, in the same IndexedDB transaction. Nothing is lost: a
/// stored record that does not parse is not overwritten (an error; the write is skipped).
#[wasm_bindgen(js_name = mergeTrustRecord)]
pub fn merge_trust_record(stored: &str, new: &str) -> Result<String, JsError> {
    let parse = |t: &str| -> Result<Vec<KnownDevice>, JsError> {
        if t.is_empty() {
            Ok(Vec::new())
        } else {
            serde_json::from_str(t).map_err(js_error)
        }
    };
    serde_json::to_string(&merge_devices(&parse(stored)?, &parse(new)?)).map_err(js_error)
}

/// Whether a stored record may be forgotten (bounding the store): not if a device in it is
/// verified, or it does not parse (it is left alone).
#[wasm_bindgen(js_name = trustRecordForgettable)]
pub fn trust_record_forgettable(stored: &str) -> bool {
    serde_json::from_str::<Vec<KnownDevice>>(stored).is_ok_and(|ds| !ds.iter().any(|d| d.verified))
}
