//! The receiving side: keys by KID, each with its replay window (RFC 9605 §4.4.4).

use std::collections::HashMap;

use super::error::{DecryptError, KeyError};
use super::header::Header;
use super::key::{FrameBuf, FrameKey};
use super::replay::{DEFAULT_REPLAY_WINDOW, ReplayWindow};
use super::suite::CipherSuite;

/// A frame that decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decrypted {
    /// The header it carried.
    pub header: Header,
    /// Plaintext bytes written to the output buffer.
    pub len: usize,
}

/// One KID's key and replay window.
#[derive(Debug, Clone)]
pub(crate) struct ReceiveKey {
    key: FrameKey,
    window: ReplayWindow,
}

impl ReceiveKey {
    pub(crate) fn new(key: FrameKey, replay_window: usize) -> Self {
        ReceiveKey {
            key,
            window: ReplayWindow::new(replay_window),
        }
    }

    /// The key.
    pub(crate) fn key(&self) -> &FrameKey {
        &self.key
    }

    /// Refuses a counter already accepted or too old for the window; changes nothing.
    pub(crate) fn check(&self, header: Header) -> Result<(), DecryptError> {
        self.window.check(header.kid, header.ctr)
    }

    /// Records a counter whose frame authenticated elsewhere, if it is still fresh.
    pub(crate) fn accept(&mut self, header: Header) -> Result<(), DecryptError> {
        self.window.check(header.kid, header.ctr)?;
        self.window.accept(header.ctr);
        Ok(())
    }

    /// Checks the replay window, authenticates and decrypts, then records the counter. A frame
    /// that fails leaves the window as it was.
    pub(crate) fn open(
        &mut self,
        header: Header,
        hlen: usize,
        metadata: &[u8],
        buf: FrameBuf<'_>,
    ) -> Result<usize, DecryptError> {
        self.window.check(header.kid, header.ctr)?;
        let len = self.key.open(header, hlen, metadata, buf)?;
        self.window.accept(header.ctr);
        Ok(len)
    }
}

/// Decrypts frames from any number of senders, each KID with its own key and replay window.
#[derive(Debug)]
pub struct Receiver {
    suite: CipherSuite,
    replay_window: usize,
    keys: HashMap<u64, ReceiveKey>,
}

impl Receiver {
    /// A receiver with the default replay window ([`DEFAULT_REPLAY_WINDOW`] counters).
    pub fn new(suite: CipherSuite) -> Self {
        Self::with_replay_window(suite, DEFAULT_REPLAY_WINDOW)
    }

    /// A receiver whose replay window covers `size` counters per KID (0 turns it off).
    pub fn with_replay_window(suite: CipherSuite, size: usize) -> Self {
        Receiver {
            suite,
            replay_window: size,
            keys: HashMap::new(),
        }
    }

    /// Derives and installs the key of `kid`, replacing any earlier one (and its window).
    pub fn add_key(&mut self, kid: u64, base_key: &[u8]) -> Result<(), KeyError> {
        let key = FrameKey::derive(self.suite, kid, base_key)?;
        self.keys
            .insert(kid, ReceiveKey::new(key, self.replay_window));
        Ok(())
    }

    /// Forgets the key of `kid`; returns whether there was one.
    pub fn remove_key(&mut self, kid: u64) -> bool {
        self.keys.remove(&kid).is_some()
    }

    /// Decrypts `frame` into `out`.
    pub fn decrypt_into(
        &mut self,
        metadata: &[u8],
        frame: &[u8],
        out: &mut [u8],
    ) -> Result<Decrypted, DecryptError> {
        let (header, hlen) = Header::parse(frame)?;
        let key = self
            .keys
            .get_mut(&header.kid)
            .ok_or(DecryptError::NoKeyYet { kid: header.kid })?;
        let len = key.open(header, hlen, metadata, FrameBuf::Into { frame, out })?;
        Ok(Decrypted { header, len })
    }

    /// Decrypts `frame` into a new vector.
    pub fn decrypt(&mut self, metadata: &[u8], frame: &[u8]) -> Result<Vec<u8>, DecryptError> {
        let mut out = vec![0; frame.len()];
        let d = self.decrypt_into(metadata, frame, &mut out)?;
        out.truncate(d.len);
        Ok(out)
    }
}
