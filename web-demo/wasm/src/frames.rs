//! The media worker's frame decisions, in Rust: [`FrameKeys`] is media-crypto's [`Keyring`]
//! with the cipher left to WebCrypto (`static/sframe.js`). It installs each epoch's base key,
//! derives every member's key (RFC 9605 §4.4.2 and §5.2 KIDs), encodes and parses headers
//! (§4.3), picks the key of a received frame's KID (grace time, dropped epochs, a new group),
//! spends the sending counter, and keeps each sender's replay window; the worker only runs
//! AES-GCM with the nonce and header it is given. Bots, tests and browsers share this code.

use std::time::Duration;

use media_crypto::mls::{EpochKey, Keyring, KeyringConfig, OpenPlan};
use media_crypto::sframe::{CipherSuite, DecryptError, FrameKey, Header};
use wasm_bindgen::prelude::*;

use crate::js_error;

/// Milliseconds of the worker's clock as the keyring's time.
fn at(now_ms: f64) -> Duration {
    Duration::from_secs_f64(now_ms.max(0.0) / 1000.0)
}

/// What became of a received frame's header, for the worker's counts.
#[wasm_bindgen]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenStatus {
    /// Its key is known: decrypt with it, then call [`FrameKeys::opened`].
    Ready = 0,
    /// Not an SFrame header.
    Malformed = 1,
    /// Its epoch's key has not arrived (yet): worth waiting briefly.
    NoKeyYet = 2,
    /// Its epoch's keys were dropped (grace time over, or a newer epoch took its bits).
    Stale = 3,
    /// Its KID names nobody of its epoch (or is no KID of ours at all).
    UnknownSender = 4,
    /// Its counter was accepted before, or is older than the window.
    Replayed = 5,
    /// Shorter than a header and a tag.
    TooShort = 6,
    /// Sealed before this member joined, under keys it never had: nothing to wait for.
    BeforeJoin = 7,
}

fn status_of(e: &DecryptError) -> OpenStatus {
    match e {
        DecryptError::Header(_) => OpenStatus::Malformed,
        DecryptError::NoKeyYet { .. } => OpenStatus::NoKeyYet,
        DecryptError::StaleEpoch { .. } => OpenStatus::Stale,
        DecryptError::BeforeJoin { .. } => OpenStatus::BeforeJoin,
        DecryptError::Replayed { .. } | DecryptError::TooOld { .. } => OpenStatus::Replayed,
        DecryptError::CiphertextTooShort { .. } => OpenStatus::TooShort,
        _ => OpenStatus::UnknownSender,
    }
}

/// A received frame's header, read.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Opening {
    status: OpenStatus,
    kid: u64,
    plan: Option<OpenPlan>,
}

#[wasm_bindgen]
impl Opening {
    #[wasm_bindgen(getter)]
    pub fn status(&self) -> OpenStatus {
        self.status
    }
    /// The frame's KID (0 when the header did not parse).
    #[wasm_bindgen(getter)]
    pub fn kid(&self) -> u64 {
        self.kid
    }
    #[wasm_bindgen(getter)]
    pub fn ctr(&self) -> u64 {
        self.plan.map_or(0, |p| p.header.ctr)
    }
    /// The sender's leaf.
    #[wasm_bindgen(getter)]
    pub fn sender(&self) -> u32 {
        self.plan.map_or(0, |p| p.sender)
    }
    #[wasm_bindgen(getter)]
    pub fn epoch(&self) -> u64 {
        self.plan.map_or(0, |p| p.epoch)
    }
    #[wasm_bindgen(getter, js_name = headerLen)]
    pub fn header_len(&self) -> usize {
        self.plan.map_or(0, |p| p.header_len)
    }
    #[wasm_bindgen(getter)]
    pub fn nonce(&self) -> Vec<u8> {
        self.plan.map(|p| p.nonce.to_vec()).unwrap_or_default()
    }
}

/// The next frame to send: its header and nonce under this member's key.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Sealing {
    kid: u64,
    epoch: u64,
    header: Vec<u8>,
    nonce: [u8; 12],
}

#[wasm_bindgen]
impl Sealing {
    #[wasm_bindgen(getter)]
    pub fn kid(&self) -> u64 {
        self.kid
    }
    #[wasm_bindgen(getter)]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    #[wasm_bindgen(getter)]
    pub fn header(&self) -> Vec<u8> {
        self.header.clone()
    }
    #[wasm_bindgen(getter)]
    pub fn nonce(&self) -> Vec<u8> {
        self.nonce.to_vec()
    }
}

/// The worker's keys and frame state.
#[wasm_bindgen]
pub struct FrameKeys {
    keyring: Keyring,
}

impl std::fmt::Debug for FrameKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameKeys")
            .field("epochs", &self.keyring.epochs())
            .finish_non_exhaustive()
    }
}

#[wasm_bindgen]
impl FrameKeys {
    /// Keys under `suite` (an RFC 9605 cipher suite id), with the meeting's KID layout, grace
    /// time and replay window.
    #[wasm_bindgen(constructor)]
    pub fn new(suite: u16) -> Result<FrameKeys, JsError> {
        let suite = CipherSuite::from_id(suite).map_err(js_error)?;
        Ok(FrameKeys {
            keyring: Keyring::new(KeyringConfig {
                suite,
                ..KeyringConfig::default()
            }),
        })
    }

    /// Installs an epoch at `now_ms`: `group` is the MLS group id, `own_leaf` this member's
    /// leaf if it sends (negative: it does not). Returns `false` for an epoch that is not newer
    /// than the current one of the same group (ignored); keys of another group replace all.
    pub fn install(
        &mut self,
        group: &[u8],
        epoch: u64,
        base_key: &[u8],
        own_leaf: i64,
        members: Vec<u32>,
        now_ms: f64,
    ) -> Result<bool, JsError> {
        let key = EpochKey {
            group_id: group.to_vec(),
            epoch,
            base_key: base_key.to_vec().into(),
            own_leaf: u32::try_from(own_leaf).ok(),
            members,
        };
        match self.keyring.install(key, at(now_ms)) {
            Ok(()) => Ok(true),
            Err(media_crypto::mls::KeyringError::EpochNotNewer { .. }) => Ok(false),
            Err(e) => Err(js_error(e)),
        }
    }

    /// The group is gone (re-made by the server, lost, or the connection closed) at
    /// `now_ms`: nothing more is sealed under its keys, and frames others sealed under them
    /// open only for the grace time. The next group's keys replace them.
    pub fn retire(&mut self, now_ms: f64) {
        self.keyring.retire(at(now_ms));
    }

    /// Spends the next counter; an error when this member has no key to send with.
    pub fn seal(&mut self) -> Result<Sealing, JsError> {
        let plan = self.keyring.plan_seal().map_err(js_error)?;
        Ok(Sealing {
            kid: plan.kid,
            epoch: plan.epoch,
            header: plan.header,
            nonce: plan.nonce,
        })
    }

    /// Reads a received frame from its start (`head`, up to 17 bytes) and its length.
    pub fn open(&mut self, head: &[u8], frame_len: usize, now_ms: f64) -> Opening {
        match self.keyring.plan_open(head, frame_len, at(now_ms)) {
            Ok(plan) => Opening {
                status: OpenStatus::Ready,
                kid: plan.header.kid,
                plan: Some(plan),
            },
            Err(e) => Opening {
                status: status_of(&e),
                kid: Header::parse(head).map_or(0, |(h, _)| h.kid),
                plan: None,
            },
        }
    }

    /// The frame read as `opening` authenticated: its counter is taken. `false` when it is a
    /// replay after all (another frame with its counter came first) or its epoch went.
    pub fn opened(&mut self, opening: &Opening) -> bool {
        opening
            .plan
            .is_some_and(|plan| self.keyring.opened(&plan).is_ok())
    }

    /// The AES key of `kid` in `epoch`, to import into WebCrypto; empty when not held.
    #[wasm_bindgen(js_name = aeadKey)]
    pub fn aead_key(&self, epoch: u64, kid: u64) -> Vec<u8> {
        self.keyring
            .aead_key(epoch, kid)
            .map(|k| k.to_vec())
            .unwrap_or_default()
    }

    /// The epochs held, oldest first.
    pub fn epochs(&self) -> Vec<u64> {
        self.keyring.epochs()
    }

    /// The KIDs of every member of every epoch held (with [`FrameKeys::member_leaves`], in
    /// the same order).
    #[wasm_bindgen(js_name = memberKids)]
    pub fn member_kids(&self) -> Vec<u64> {
        self.keyring.members().into_iter().map(|(k, _)| k).collect()
    }

    /// The leaves of [`FrameKeys::member_kids`].
    #[wasm_bindgen(js_name = memberLeaves)]
    pub fn member_leaves(&self) -> Vec<u32> {
        self.keyring.members().into_iter().map(|(_, l)| l).collect()
    }
}

/// The SFrame header of `kid` and `ctr` (§4.3), for the page's self-test.
#[wasm_bindgen(js_name = encodeHeader)]
pub fn encode_header(kid: u64, ctr: u64) -> Vec<u8> {
    Header::new(kid, ctr).to_bytes()
}

/// `[kid, ctr, length]` of the header at the start of `bytes`, for the page's self-test.
#[wasm_bindgen(js_name = parseHeader)]
pub fn parse_header(bytes: &[u8]) -> Result<Vec<u64>, JsError> {
    let (h, len) = Header::parse(bytes).map_err(js_error)?;
    Ok(vec![h.kid, h.ctr, len as u64])
}

/// The nonce of `ctr` under the key of `kid` from `base_key` (§4.4.2, §4.4.3), for the page's
/// self-test: RFC 9605's vectors go through the worker's cipher step with it.
#[wasm_bindgen(js_name = frameNonce)]
pub fn frame_nonce(suite: u16, kid: u64, ctr: u64, base_key: &[u8]) -> Result<Vec<u8>, JsError> {
    let suite = CipherSuite::from_id(suite).map_err(js_error)?;
    let key = FrameKey::derive(suite, kid, base_key).map_err(js_error)?;
    Ok(key.nonce(ctr).to_vec())
}
