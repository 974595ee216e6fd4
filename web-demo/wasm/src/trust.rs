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
/// them; empty: none), the visit having begun at `since_ms` (wall clock). A damaged store is
/// dropped rather than trusted.
#[wasm_bindgen(js_name = trustLoad)]
pub fn trust_load(records: &str, since_ms: f64) {
    let store = if records.is_empty() {
        TrustStore::new()
    } else {
        TrustStore::from_records(records).unwrap_or_default()
    };
    with(|d| *d = Devices::new(store, since_ms.max(0.0) as u64));
}

/// Takes in records another tab wrote (JSON: identity → devices); true if anything changed
/// (the roster's verdicts should be shown again).
#[wasm_bindgen(js_name = trustMerge)]
pub fn trust_merge(records: &str) -> Result<bool, JsError> {
    with(|d| d.merge(records)).map_err(js_error)
}

/// One identity's record as stored (`stored`, JSON devices, or empty) merged with the one to
/// write (`new`): what to put back, in the same IndexedDB transaction. Nothing is lost.
#[wasm_bindgen(js_name = mergeTrustRecord)]
pub fn merge_trust_record(stored: &str, new: &str) -> Result<String, JsError> {
    let parse = |t: &str| -> Result<Vec<KnownDevice>, JsError> {
        if t.is_empty() {
            Ok(Vec::new())
        } else {
            serde_json::from_str(t).map_err(js_error)
        }
    };
    // A damaged stored record is replaced rather than trusted.
    let stored = parse(stored).unwrap_or_default();
    serde_json::to_string(&merge_devices(&stored, &parse(new)?)).map_err(js_error)
}

/// How many identities the page remembers.
#[wasm_bindgen(js_name = trustSize)]
pub fn trust_size() -> usize {
    with(|d| d.store().len())
}
