//! Each epoch's key material for the media worker, and the RFC 9605 §4.4.2 derivation for the
//! page's self-test. The worker derives every member's frame key itself, in the same Rust code
//! ([`crate::FrameKeys`]), from the epoch's base key.

use media_crypto::mls::{EpochKey, KeyringConfig};
use media_crypto::sframe::{CipherSuite, derive_key_material};
use serde::Serialize;

/// One KID's key and salt (§4.4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SenderKey {
    pub kid: u64,
    pub key: Vec<u8>,
    pub salt: Vec<u8>,
}

/// An epoch as the worker installs it ([`crate::FrameKeys::install`]).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct EpochKeys {
    pub suite: u16,
    /// The MLS group id: epochs count from 0 in each group, so keys of another group replace
    /// all others at once.
    pub group: Vec<u8>,
    pub epoch: u64,
    /// `MLS-Exporter("SFrame 1.0 Base Key", "", Nk)` of the epoch.
    pub base_key: Vec<u8>,
    /// This participant's leaf, if it sends in this epoch.
    pub own_leaf: Option<u32>,
    /// The leaves of the epoch's members.
    pub members: Vec<u32>,
}

impl std::fmt::Debug for EpochKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpochKeys")
            .field("epoch", &self.epoch)
            .field("own_leaf", &self.own_leaf)
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

/// §4.4.2 for one KID under `suite`.
pub fn sframe_key(suite: u16, kid: u64, base_key: &[u8]) -> Result<SenderKey, String> {
    let suite = CipherSuite::from_id(suite).map_err(|e| e.to_string())?;
    let material = derive_key_material(suite, kid, base_key).map_err(|e| e.to_string())?;
    Ok(SenderKey {
        kid,
        key: material.key.to_vec(),
        salt: material.salt.to_vec(),
    })
}

/// What the worker needs of `key`'s epoch.
pub fn epoch_keys(key: &EpochKey, config: &KeyringConfig) -> EpochKeys {
    EpochKeys {
        suite: config.suite.id(),
        group: key.group_id.clone(),
        epoch: key.epoch,
        base_key: key.base_key.to_vec(),
        own_leaf: key.own_leaf,
        members: key.members.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FrameKeys, OpenStatus};
    use media_crypto::mls::Keyring;
    use media_crypto::sframe::Aead;

    /// What the worker does with a frame: the plan from Rust, the cipher from "WebCrypto"
    /// (here the crate's own AES-GCM standing in for it).
    fn worker_open(
        w: &mut FrameKeys,
        suite: CipherSuite,
        frame: &[u8],
        now_ms: f64,
    ) -> Option<Vec<u8>> {
        let o = w.open(&frame[..frame.len().min(17)], frame.len(), now_ms);
        if o.status() != OpenStatus::Ready {
            return None;
        }
        let key = w.aead_key(o.epoch(), o.kid());
        let nonce: [u8; 12] = o.nonce().try_into().expect("nonce");
        let (header, body) = frame.split_at(o.header_len());
        let plain = Aead::new(suite, &key)
            .expect("aead")
            .open(&nonce, header, body)?;
        w.opened(&o).then_some(plain)
    }

    #[test]
    fn the_worker_opens_what_the_keyring_seals_and_seals_what_it_opens() {
        let config = KeyringConfig::default();
        let key = EpochKey {
            group_id: b"g".to_vec(),
            epoch: 3,
            base_key: vec![7u8; 16].into(),
            own_leaf: Some(1),
            members: vec![0, 1, 4],
        };
        let mut bot = Keyring::new(config);
        bot.install(key.clone(), std::time::Duration::ZERO)
            .expect("install");
        let handed = epoch_keys(
            &EpochKey {
                own_leaf: Some(4),
                ..key.clone()
            },
            &config,
        );
        let mut worker = FrameKeys::new(handed.suite).expect("suite");
        let own = handed.own_leaf.map_or(-1, i64::from);
        let install = |w: &mut FrameKeys| {
            w.install(
                &handed.group,
                handed.epoch,
                &handed.base_key,
                own,
                handed.members.clone(),
                0.0,
            )
            .expect("install")
        };
        assert!(install(&mut worker));
        assert!(!install(&mut worker), "the same epoch twice is ignored");
        let frame = bot.encrypt(b"", b"hello").expect("encrypt");
        assert_eq!(
            worker_open(&mut worker, config.suite, &frame, 10.0).as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(
            worker_open(&mut worker, config.suite, &frame, 10.0),
            None,
            "a replay"
        );
        // The worker's frame, sealed with the plan it gets.
        let s = worker.seal().expect("sends");
        let aead_key = worker.aead_key(s.epoch(), s.kid());
        let nonce: [u8; 12] = s.nonce().try_into().expect("nonce");
        let mut out = s.header();
        out.extend(Aead::new(config.suite, &aead_key).expect("aead").seal(
            &nonce,
            &s.header(),
            b"hi",
        ));
        let (r, plain) = bot
            .decrypt(b"", &out, std::time::Duration::ZERO)
            .expect("opens");
        assert_eq!((plain.as_slice(), r.sender), (&b"hi"[..], 4));
        assert_eq!(worker.member_kids().len(), 3);
        assert_eq!(worker.member_leaves(), vec![0, 1, 4]);
        // Garbage and strangers are told apart.
        assert_eq!(
            worker.open(&[0xff], 1, 10.0).status(),
            OpenStatus::Malformed
        );
        let mut junk = media_crypto::sframe::Header::new(config.kid_layout.kid(9, 3), 0).to_bytes();
        junk.extend([0; 20]);
        assert_eq!(
            worker.open(&junk, junk.len(), 10.0).status(),
            OpenStatus::UnknownSender
        );
        assert_eq!(
            worker.open(&frame[..3], 3, 10.0).status(),
            OpenStatus::TooShort
        );
    }
}
