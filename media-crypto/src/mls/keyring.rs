//! The keys of an MLS group's epochs, for SFrame (RFC 9605 §5.2).
//!
//! Each epoch gives one base key (from the MLS exporter); each member's frame key is derived
//! from it with its own KID. The keyring sends under the newest epoch, receives under every
//! epoch it still holds, keeps an epoch for a grace time after a newer one arrives (frames in
//! flight across a commit still decrypt), and drops an epoch early when a newer epoch has the
//! same low E bits. Time is passed in as a [`Duration`] since any fixed origin the caller
//! chooses; the keyring reads no clock.

use std::collections::HashMap;
use std::time::Duration;

use zeroize::Zeroizing;

use super::error::KeyringError;
use super::kid::KidLayout;
use crate::sframe::{
    CipherSuite, DEFAULT_REPLAY_WINDOW, DecryptError, Decrypted, EncryptError, FrameBuf, FrameKey,
    Header, ReceiveKey, Sender, derive_key_material,
};

/// Leaf indices at or above this are refused: no real group comes near a million members,
/// and the per-epoch sender table is indexed by leaf.
pub const MAX_LEAVES: u32 = 1 << 20;

/// The default grace time for a previous epoch's keys.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// How long a received frame whose epoch's key has not arrived ([`DecryptError::NoKeyYet`])
/// may wait for it before it is dropped: the page's worker and the bots hold it this long.
pub const KEY_WAIT: Duration = Duration::from_secs(1);

/// How a keyring derives and keeps keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyringConfig {
    /// The SFrame cipher suite of the group.
    pub suite: CipherSuite,
    /// KID = leaf index and E epoch bits.
    pub kid_layout: KidLayout,
    /// How long a previous epoch still decrypts after a newer one is installed.
    pub grace: Duration,
    /// Replay window per sender and epoch, in counters (0 turns it off).
    pub replay_window: usize,
}

impl Default for KeyringConfig {
    fn default() -> Self {
        KeyringConfig {
            suite: CipherSuite::default(),
            kid_layout: KidLayout::default(),
            grace: DEFAULT_GRACE,
            replay_window: DEFAULT_REPLAY_WINDOW,
        }
    }
}

/// One epoch's key material as the MLS session hands it over: enough for another keyring (a
/// media worker, say) to send and receive in that epoch.
#[derive(Clone)]
pub struct EpochKey {
    /// The MLS group's id. Epochs count from 0 in every group, so a key of another group
    /// replaces everything the keyring holds.
    pub group_id: Vec<u8>,
    /// The MLS epoch.
    pub epoch: u64,
    /// `MLS-Exporter("SFrame 1.0 Base Key", "", Nk)`.
    pub base_key: Zeroizing<Vec<u8>>,
    /// The holder's own leaf index, if it sends in this epoch.
    pub own_leaf: Option<u32>,
    /// The leaf indices of the epoch's members.
    pub members: Vec<u32>,
}

impl std::fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpochKey")
            .field("group_id", &self.group_id)
            .field("epoch", &self.epoch)
            .field("own_leaf", &self.own_leaf)
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

/// A frame that decrypted, with who sent it and in which epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedFrame {
    /// The sender's leaf index.
    pub sender: u32,
    /// The MLS epoch of the key.
    pub epoch: u64,
    /// The SFrame header.
    pub header: Header,
    /// Plaintext bytes written.
    pub len: usize,
}

impl ReceivedFrame {
    /// Where the plaintext is inside the frame after [`Keyring::decrypt_in_place`].
    pub fn plaintext_range(&self) -> std::ops::Range<usize> {
        let start = self.header.len();
        start..start + self.len
    }
}

struct EpochKeys {
    epoch: u64,
    base_key: Zeroizing<Vec<u8>>,
    /// When this epoch's keys go; `None` while it is the newest.
    expires_at: Option<Duration>,
    /// Indexed by leaf: `None` for a leaf that is no member of this epoch; for a member, its
    /// frame key once derived (on first use). Leaf indices are dense, so this is a direct
    /// lookup with no hashing on the per-frame path.
    senders: Vec<Option<MemberKey>>,
}

/// A member's receive state in one epoch: its frame key once derived.
struct MemberKey {
    key: Option<ReceiveKey>,
}

/// Per-epoch SFrame keys of one MLS member: a sender for its own KID in the newest epoch and
/// receivers for every member of every epoch it holds.
pub struct Keyring {
    config: KeyringConfig,
    /// The group whose epochs are held.
    group_id: Option<Vec<u8>>,
    /// Held epochs, oldest first; the last is the newest.
    epochs: Vec<EpochKeys>,
    /// Epochs dropped, by their low bits, to tell "stale" from "not yet".
    dropped: HashMap<u64, u64>,
    /// The epoch this member joined the group at, to tell "sealed before the join" from "not
    /// yet".
    joined: Option<Joined>,
    sender: Option<Sender>,
}

/// When this member joined its group.
#[derive(Debug, Clone, Copy)]
struct Joined {
    epoch: u64,
    /// Until then (the grace time after the join) frames of earlier epochs may still be in
    /// flight; after it, one is a frame no sender could still be sending.
    until: Duration,
    over: bool,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("config", &self.config)
            .field(
                "epochs",
                &self.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(),
            )
            .field("sending", &self.sender.is_some())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// An empty keyring.
    pub fn new(config: KeyringConfig) -> Self {
        Keyring {
            config,
            group_id: None,
            epochs: Vec::new(),
            dropped: HashMap::new(),
            joined: None,
            sender: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &KeyringConfig {
        &self.config
    }

    /// The newest epoch held.
    pub fn current_epoch(&self) -> Option<u64> {
        self.epochs.last().map(|e| e.epoch)
    }

    /// The epochs whose frames still decrypt, oldest first.
    pub fn epochs(&self) -> Vec<u64> {
        self.epochs.iter().map(|e| e.epoch).collect()
    }

    /// The KID this member sends with, if it sends.
    pub fn sending_kid(&self) -> Option<u64> {
        self.sender.as_ref().map(|s| s.key().kid())
    }

    /// Installs a new epoch at time `now`: sending moves to it, and older epochs start their
    /// grace time. An epoch that is not newer than the current one is refused, so a counter can
    /// never restart under a key already used.
    pub fn install(&mut self, key: EpochKey, now: Duration) -> Result<(), KeyringError> {
        if self.group_id.as_ref().is_some_and(|g| *g != key.group_id) {
            // A new group (the old one was abandoned): its KIDs may collide with the old
            // group's, so nothing of the old one stays, not even for a grace time.
            self.epochs.clear();
            self.dropped.clear();
            self.joined = None;
            self.sender = None;
        }
        if let Some(current) = self.current_epoch()
            && key.epoch <= current
        {
            return Err(KeyringError::EpochNotNewer {
                current,
                offered: key.epoch,
            });
        }
        if key.base_key.is_empty() {
            return Err(KeyringError::EmptyBaseKey);
        }
        if let Some(&leaf) = key
            .members
            .iter()
            .chain(key.own_leaf.as_ref())
            .find(|&&l| l >= MAX_LEAVES)
        {
            return Err(KeyringError::LeafOutOfRange { leaf });
        }
        let layout = self.config.kid_layout;
        let sender = match key.own_leaf {
            Some(leaf) => Some(Sender::new(
                FrameKey::derive(
                    self.config.suite,
                    layout.kid(leaf, key.epoch),
                    &key.base_key,
                )
                .map_err(|_| KeyringError::EmptyBaseKey)?,
            )),
            None => None,
        };
        let grace_end = now + self.config.grace;
        for e in &mut self.epochs {
            e.expires_at.get_or_insert(grace_end);
        }
        // An older epoch with the same low bits would claim the new epoch's KIDs.
        let low = layout.epoch_low_bits(key.epoch);
        self.drop_where(|e| layout.epoch_low_bits(e.epoch) == low);
        self.dropped.remove(&low);
        let mut senders = Vec::new();
        for leaf in key.members {
            let i = leaf as usize;
            if senders.len() <= i {
                senders.resize_with(i + 1, || None);
            }
            senders[i] = Some(MemberKey { key: None });
        }
        self.epochs.push(EpochKeys {
            epoch: key.epoch,
            base_key: key.base_key,
            expires_at: None,
            senders,
        });
        self.sender = sender;
        self.group_id = Some(key.group_id);
        self.joined.get_or_insert(Joined {
            epoch: key.epoch,
            until: now + self.config.grace,
            over: false,
        });
        self.expire(now);
        Ok(())
    }

    /// Stops sending (this member left or was removed) and starts the grace time of every
    /// epoch held, so frames already in flight still decrypt for a while.
    pub fn retire(&mut self, now: Duration) {
        self.sender = None;
        let grace_end = now + self.config.grace;
        for e in &mut self.epochs {
            e.expires_at.get_or_insert(grace_end);
        }
        self.expire(now);
    }

    /// Drops the epochs whose grace time has passed (and ends the join's).
    pub fn expire(&mut self, now: Duration) {
        if let Some(j) = self.joined.as_mut() {
            j.over |= now >= j.until;
        }
        self.drop_where(|e| e.expires_at.is_some_and(|t| t <= now));
    }

    fn drop_where(&mut self, pred: impl Fn(&EpochKeys) -> bool) {
        let layout = self.config.kid_layout;
        let dropped = &mut self.dropped;
        self.epochs.retain(|e| {
            let drop = pred(e);
            if drop {
                dropped.insert(layout.epoch_low_bits(e.epoch), e.epoch);
            }
            !drop
        });
    }

    /// Encrypts a frame under this member's key of the newest epoch.
    pub fn encrypt_into(
        &mut self,
        metadata: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, EncryptError> {
        self.sender
            .as_mut()
            .ok_or(EncryptError::NoSendingKey)?
            .encrypt_into(metadata, plaintext, out)
    }

    /// Encrypts a frame in place, with no copy (see [`FrameKey::encrypt_in_place`]).
    pub fn encrypt_in_place(
        &mut self,
        metadata: &[u8],
        buf: &mut [u8],
        plaintext_len: usize,
    ) -> Result<std::ops::Range<usize>, EncryptError> {
        self.sender
            .as_mut()
            .ok_or(EncryptError::NoSendingKey)?
            .encrypt_in_place(metadata, buf, plaintext_len)
    }

    /// Encrypts a frame into a new vector.
    pub fn encrypt(&mut self, metadata: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, EncryptError> {
        self.sender
            .as_mut()
            .ok_or(EncryptError::NoSendingKey)?
            .encrypt(metadata, plaintext)
    }

    /// Decrypts a frame at time `now` (expired epochs are dropped first).
    pub fn decrypt_into(
        &mut self,
        metadata: &[u8],
        frame: &[u8],
        out: &mut [u8],
        now: Duration,
    ) -> Result<ReceivedFrame, DecryptError> {
        self.open(metadata, FrameBuf::Into { frame, out }, now)
    }

    /// Decrypts a frame in place, with no copy; the plaintext is then at
    /// [`ReceivedFrame::plaintext_range`] of `frame`.
    pub fn decrypt_in_place(
        &mut self,
        metadata: &[u8],
        frame: &mut [u8],
        now: Duration,
    ) -> Result<ReceivedFrame, DecryptError> {
        self.open(metadata, FrameBuf::InPlace(frame), now)
    }

    fn open(
        &mut self,
        metadata: &[u8],
        buf: FrameBuf<'_>,
        now: Duration,
    ) -> Result<ReceivedFrame, DecryptError> {
        self.expire(now);
        let (header, hlen) = Header::parse(buf.frame())?;
        let (receiver, sender, epoch) = self.receive_key(header.kid)?;
        let len = receiver.open(header, hlen, metadata, buf)?;
        Ok(ReceivedFrame {
            sender,
            epoch,
            header,
            len,
        })
    }

    /// The receive key of `kid` (derived on first use), its sender's leaf and its epoch; or
    /// why there is none.
    fn receive_key(&mut self, kid: u64) -> Result<(&mut ReceiveKey, u32, u64), DecryptError> {
        let layout = self.config.kid_layout;
        let (leaf, low) = layout
            .split(kid)
            .ok_or(DecryptError::UnknownSender { kid })?;
        let suite = self.config.suite;
        let window = self.config.replay_window;
        let Some(i) = self
            .epochs
            .iter()
            .position(|e| layout.epoch_low_bits(e.epoch) == low)
        else {
            return Err(match self.dropped.get(&low) {
                Some(&epoch) => DecryptError::StaleEpoch { kid, epoch },
                None => self
                    .before_join(kid, low)
                    .unwrap_or(DecryptError::NoKeyYet { kid }),
            });
        };
        let epoch = &mut self.epochs[i];
        let Some(Some(member)) = epoch.senders.get_mut(leaf as usize) else {
            return Err(DecryptError::UnknownSender { kid });
        };
        let receiver = match &mut member.key {
            Some(receiver) => receiver,
            empty => {
                let key = FrameKey::derive(suite, kid, &epoch.base_key)
                    .map_err(|_| DecryptError::NoKeyYet { kid })?;
                empty.insert(ReceiveKey::new(key, window))
            }
        };
        Ok((receiver, leaf, epoch.epoch))
    }

    /// Why `kid` (epoch low bits `low`, no epoch held) has no key, if it names an epoch
    /// before this member joined: sealed before the join while frames of it may still be in
    /// flight, stale after that. The bits are read as the nearest epoch back from the newest
    /// (within half the space they span; beyond that, as an epoch still to come).
    fn before_join(&self, kid: u64, low: u64) -> Option<DecryptError> {
        let (joined, current) = (self.joined?, self.current_epoch()?);
        let layout = self.config.kid_layout;
        let space = 1u64 << layout.epoch_bits();
        let back = (layout.epoch_low_bits(current) + space - low) % space;
        if back == 0 || back >= space / 2 {
            return None;
        }
        let epoch = current.checked_sub(back).filter(|&e| e < joined.epoch)?;
        Some(if joined.over {
            DecryptError::StaleEpoch { kid, epoch }
        } else {
            DecryptError::BeforeJoin { kid, epoch }
        })
    }

    /// Decrypts a frame into a new vector.
    pub fn decrypt(
        &mut self,
        metadata: &[u8],
        frame: &[u8],
        now: Duration,
    ) -> Result<(ReceivedFrame, Vec<u8>), DecryptError> {
        let mut out = vec![0; frame.len()];
        let r = self.decrypt_into(metadata, frame, &mut out, now)?;
        out.truncate(r.len);
        Ok((r, out))
    }
}

/// A frame to seal with an AEAD outside this crate (WebCrypto in a browser's media worker):
/// everything SFrame decides but the cipher. The ciphertext is
/// `AEAD(key of kid, nonce, aad = header || metadata, plaintext)` and the frame is
/// `header || ciphertext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealPlan {
    pub kid: u64,
    pub ctr: u64,
    /// The MLS epoch of the key.
    pub epoch: u64,
    /// The encoded SFrame header.
    pub header: Vec<u8>,
    pub nonce: [u8; 12],
}

/// A received frame to open with an AEAD outside this crate; once it authenticated,
/// [`Keyring::opened`] records its counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenPlan {
    /// The sender's leaf index.
    pub sender: u32,
    /// The MLS epoch of the key.
    pub epoch: u64,
    pub header: Header,
    /// The header's length: the ciphertext and tag follow it.
    pub header_len: usize,
    pub nonce: [u8; 12],
}

/// The frame path for an AEAD outside this crate: the same decisions as
/// [`Keyring::encrypt_into`] and [`Keyring::decrypt_into`] (which KID, which counter, which
/// epoch's key, grace times, dropped epochs, the replay window), with the cipher left out.
impl Keyring {
    /// Spends the next counter of this member's key in the newest epoch.
    pub fn plan_seal(&mut self) -> Result<SealPlan, EncryptError> {
        let epoch = self.current_epoch();
        let sender = self.sender.as_mut().ok_or(EncryptError::NoSendingKey)?;
        let ctr = sender.spend_ctr()?;
        let key = sender.key();
        Ok(SealPlan {
            kid: key.kid(),
            ctr,
            epoch: epoch.unwrap_or_default(),
            header: Header::new(key.kid(), ctr).to_bytes(),
            nonce: key.nonce(ctr),
        })
    }

    /// Reads a received frame's header at time `now` and picks its key: refuses a frame
    /// whose key is not held (yet, or any more), whose counter was accepted before or is too
    /// old, or that is too short to hold a tag. `head` is the frame's start (at least its
    /// header: [`crate::sframe::MAX_HEADER_LEN`] bytes, or all of a shorter frame), and
    /// `frame_len` its whole length, so the caller need not hand over the whole frame.
    pub fn plan_open(
        &mut self,
        head: &[u8],
        frame_len: usize,
        now: Duration,
    ) -> Result<OpenPlan, DecryptError> {
        self.expire(now);
        let (header, header_len) = Header::parse(head)?;
        let needed = header_len + self.config.suite.tag_len();
        if frame_len < needed {
            return Err(DecryptError::CiphertextTooShort {
                needed,
                available: frame_len,
            });
        }
        let (receiver, sender, epoch) = self.receive_key(header.kid)?;
        receiver.check(header)?;
        Ok(OpenPlan {
            sender,
            epoch,
            header,
            header_len,
            nonce: receiver.key().nonce(header.ctr),
        })
    }

    /// The frame of `plan` authenticated: its counter is taken, unless another frame with the
    /// same counter was accepted meanwhile (then it is a replay) or its epoch went.
    pub fn opened(&mut self, plan: &OpenPlan) -> Result<(), DecryptError> {
        let (receiver, _, epoch) = self.receive_key(plan.header.kid)?;
        if epoch != plan.epoch {
            return Err(DecryptError::StaleEpoch {
                kid: plan.header.kid,
                epoch: plan.epoch,
            });
        }
        receiver.accept(plan.header)
    }

    /// The AEAD key of `kid` in `epoch`, for the outside cipher to import; `None` when the
    /// epoch is not held or `kid` names no member of it.
    pub fn aead_key(&self, epoch: u64, kid: u64) -> Option<Zeroizing<Vec<u8>>> {
        let (leaf, _) = self.config.kid_layout.split(kid)?;
        let held = self.epochs.iter().find(|e| e.epoch == epoch)?;
        if !matches!(held.senders.get(leaf as usize), Some(Some(_)))
            || self.config.kid_layout.kid(leaf, epoch) != kid
        {
            return None;
        }
        Some(
            derive_key_material(self.config.suite, kid, &held.base_key)
                .ok()?
                .key,
        )
    }

    /// The (KID, leaf) of every member of every epoch held.
    pub fn members(&self) -> Vec<(u64, u32)> {
        let layout = self.config.kid_layout;
        self.epochs
            .iter()
            .flat_map(|e| {
                e.senders
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| m.is_some())
                    .map(move |(leaf, _)| (layout.kid(leaf as u32, e.epoch), leaf as u32))
            })
            .collect()
    }
}

impl From<ReceivedFrame> for Decrypted {
    fn from(r: ReceivedFrame) -> Self {
        Decrypted {
            header: r.header,
            len: r.len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn epoch(epoch: u64, own: Option<u32>) -> EpochKey {
        EpochKey {
            group_id: b"group".to_vec(),
            epoch,
            base_key: Zeroizing::new(vec![epoch as u8 + 1; 16]),
            own_leaf: own,
            members: vec![0, 1, 2],
        }
    }

    fn pair(config: KeyringConfig) -> (Keyring, Keyring) {
        (Keyring::new(config), Keyring::new(config))
    }

    /// Alice (leaf 0) and Bob (leaf 1), both in epoch 1.
    fn alice_and_bob() -> (Keyring, Keyring) {
        let (mut alice, mut bob) = pair(KeyringConfig::default());
        alice
            .install(epoch(1, Some(0)), Duration::ZERO)
            .expect("install");
        bob.install(epoch(1, Some(1)), Duration::ZERO)
            .expect("install");
        (alice, bob)
    }

    #[test]
    fn frames_sealed_before_the_join_are_told_from_frames_whose_key_is_still_to_come() {
        // Alice sends in epochs 1 to 4; Carol joins at epoch 3.
        let mut alice = Keyring::new(KeyringConfig::default());
        let mut carol = Keyring::new(KeyringConfig::default());
        let mut sealed = Vec::new();
        for e in 1..=4 {
            alice.install(epoch(e, Some(0)), SEC).expect("install");
            sealed.push(alice.encrypt(b"", b"frame").expect("encrypt"));
        }
        carol.install(epoch(3, Some(2)), SEC).expect("install");
        for (e, frame) in [1u64, 2].into_iter().zip(&sealed) {
            assert!(
                matches!(carol.decrypt(b"", frame, SEC), Err(DecryptError::BeforeJoin { epoch, .. }) if epoch == e),
                "epoch {e} is before Carol's join"
            );
        }
        assert!(carol.decrypt(b"", &sealed[2], SEC).is_ok());
        let early = carol.decrypt(b"", &sealed[3], SEC);
        assert!(
            matches!(early, Err(DecryptError::NoKeyYet { .. })),
            "epoch 4 may still come: {early:?}"
        );
        carol.install(epoch(4, Some(2)), SEC).expect("install");
        assert!(carol.decrypt(b"", &sealed[3], SEC).is_ok());
        // Once the join's grace time is over no sender still sends under an earlier epoch: a
        // frame claiming one is stale, a failure, not a pre-join frame to pass over.
        let later = SEC + KeyringConfig::default().grace;
        assert!(matches!(
            carol.decrypt(b"", &sealed[0], later),
            Err(DecryptError::StaleEpoch { epoch: 1, .. })
        ));
        // 200 epochs on, the low bits of epoch 1 come round again: a key still to come.
        let later = epoch(257, Some(0));
        let mut ahead = Keyring::new(KeyringConfig::default());
        ahead.install(later, SEC).expect("install");
        let frame = ahead.encrypt(b"", b"later").expect("encrypt");
        let mut dave = Keyring::new(KeyringConfig::default());
        dave.install(epoch(200, Some(1)), SEC).expect("install");
        assert!(matches!(
            dave.decrypt(b"", &frame, SEC),
            Err(DecryptError::NoKeyYet { .. })
        ));
    }

    #[test]
    fn frames_of_the_previous_epoch_decrypt_within_the_grace_time_only() {
        let (mut alice, mut bob) = alice_and_bob();
        let old = alice.encrypt(b"", b"hello").expect("encrypt");
        bob.install(epoch(2, Some(1)), 10 * SEC).expect("install");

        let (r, pt) = bob.decrypt(b"", &old, 14 * SEC).expect("within grace");
        assert_eq!((r.sender, r.epoch, pt.as_slice()), (0, 1, &b"hello"[..]));

        let late = alice.encrypt(b"", b"late").expect("encrypt");
        assert_eq!(
            bob.decrypt(b"", &late, 15 * SEC).map(|_| ()),
            Err(DecryptError::StaleEpoch {
                kid: late_kid(&late),
                epoch: 1
            })
        );
    }

    fn late_kid(frame: &[u8]) -> u64 {
        Header::parse(frame).expect("header").0.kid
    }

    #[test]
    fn in_place_encryption_and_decryption_round_trip() {
        let (mut alice, mut bob) = alice_and_bob();
        let mut buf = vec![0u8; crate::sframe::MAX_HEADER_LEN + 5 + 16];
        buf[crate::sframe::MAX_HEADER_LEN..][..5].copy_from_slice(b"hello");
        let range = alice.encrypt_in_place(b"m", &mut buf, 5).expect("encrypt");
        let sent = buf[range].to_vec();
        let mut frame = sent.clone();
        let r = bob
            .decrypt_in_place(b"m", &mut frame, Duration::ZERO)
            .expect("decrypt");
        assert_eq!((r.sender, &frame[r.plaintext_range()]), (0, &b"hello"[..]));
        // The same frame again is a replay.
        assert_eq!(
            bob.decrypt_in_place(b"m", &mut sent.clone(), Duration::ZERO),
            Err(DecryptError::Replayed {
                kid: r.header.kid,
                ctr: 0
            })
        );
    }

    #[test]
    fn a_frame_of_an_epoch_not_yet_installed_is_no_key_yet() {
        let (mut alice, mut bob) = pair(KeyringConfig::default());
        bob.install(epoch(1, Some(1)), Duration::ZERO)
            .expect("install");
        alice
            .install(epoch(2, Some(0)), Duration::ZERO)
            .expect("install");
        let f = alice.encrypt(b"", b"x").expect("encrypt");
        let err = bob.decrypt(b"", &f, Duration::ZERO).expect_err("no key");
        assert!(err.is_no_key_yet(), "{err}");
        bob.install(epoch(2, Some(1)), Duration::ZERO)
            .expect("install");
        assert!(bob.decrypt(b"", &f, Duration::ZERO).is_ok());
    }

    #[test]
    fn an_epoch_is_dropped_when_its_low_bits_come_round() {
        let config = KeyringConfig {
            kid_layout: KidLayout::new(2),
            grace: Duration::from_secs(3600),
            ..KeyringConfig::default()
        };
        let (mut alice, mut bob) = pair(config);
        alice
            .install(epoch(1, Some(0)), Duration::ZERO)
            .expect("install");
        let f = alice.encrypt(b"", b"x").expect("encrypt");
        for e in 1..=4 {
            bob.install(epoch(e, Some(1)), Duration::ZERO)
                .expect("install");
        }
        assert_eq!(bob.epochs(), vec![1, 2, 3, 4]);
        bob.install(epoch(5, Some(1)), Duration::ZERO)
            .expect("install");
        assert_eq!(bob.epochs(), vec![2, 3, 4, 5]);
        // Epoch 5 now owns the low bits; alice's epoch-1 frame fails authentication.
        let err = bob.decrypt(b"", &f, Duration::ZERO).expect_err("dropped");
        assert!(err.is_authentication_failure(), "{err}");
    }

    #[test]
    fn older_or_repeated_epochs_are_refused() {
        let mut k = Keyring::new(KeyringConfig::default());
        k.install(epoch(3, Some(0)), Duration::ZERO)
            .expect("install");
        assert_eq!(
            k.install(epoch(3, Some(0)), Duration::ZERO),
            Err(KeyringError::EpochNotNewer {
                current: 3,
                offered: 3
            })
        );
        assert_eq!(
            k.install(epoch(2, Some(0)), Duration::ZERO),
            Err(KeyringError::EpochNotNewer {
                current: 3,
                offered: 2
            })
        );
    }

    #[test]
    fn frames_from_leaves_outside_the_epoch_are_refused_before_any_key_is_derived() {
        let (mut alice, mut bob) = pair(KeyringConfig::default());
        let mut e = epoch(1, Some(9));
        e.members.push(9);
        alice.install(e, Duration::ZERO).expect("install");
        bob.install(epoch(1, Some(1)), Duration::ZERO)
            .expect("install");
        let f = alice.encrypt(b"", b"x").expect("encrypt");
        assert_eq!(
            bob.decrypt(b"", &f, Duration::ZERO).map(|_| ()),
            Err(DecryptError::UnknownSender { kid: late_kid(&f) })
        );
    }

    #[test]
    fn absurd_leaf_indices_are_refused() {
        let mut k = Keyring::new(KeyringConfig::default());
        let mut e = epoch(1, Some(0));
        e.members.push(u32::MAX);
        assert_eq!(
            k.install(e, Duration::ZERO),
            Err(KeyringError::LeafOutOfRange { leaf: u32::MAX })
        );
        assert_eq!(k.current_epoch(), None);
    }

    #[test]
    fn a_retired_member_stops_sending() {
        let mut k = Keyring::new(KeyringConfig::default());
        k.install(epoch(1, Some(0)), Duration::ZERO)
            .expect("install");
        k.retire(Duration::ZERO);
        assert_eq!(k.encrypt(b"", b"x"), Err(EncryptError::NoSendingKey));
    }

    #[test]
    fn a_new_group_replaces_the_old_one_even_at_a_lower_epoch() {
        let (mut alice, mut bob) = alice_and_bob();
        let old = alice.encrypt(b"", b"old group").expect("encrypt");
        let mut fresh = epoch(0, Some(0));
        fresh.group_id = b"another group".to_vec();
        // Within one group epochs only move forward ...
        assert!(bob.install(epoch(0, Some(1)), SEC).is_err());
        // ... but a new group starts again at 0, and the old group's keys go at once.
        let mut fresh_bob = fresh.clone();
        fresh_bob.own_leaf = Some(1);
        alice.install(fresh, SEC).expect("new group");
        bob.install(fresh_bob, SEC).expect("new group");
        assert_eq!(bob.current_epoch(), Some(0));
        assert!(bob.decrypt(b"", &old, SEC).is_err());
        let new = alice.encrypt(b"", b"new group").expect("encrypt");
        assert_eq!(
            bob.decrypt(b"", &new, SEC).map(|(_, p)| p),
            Ok(b"new group".to_vec())
        );
    }

    /// The outside cipher of the external path (WebCrypto's AES-GCM in a browser).
    fn outside_seal(k: &Keyring, plan: &SealPlan, plaintext: &[u8]) -> Vec<u8> {
        let key = k.aead_key(plan.epoch, plan.kid).expect("key of the plan");
        let aead = crate::sframe::Aead::new(k.config().suite, &key).expect("aead");
        let mut frame = plan.header.clone();
        frame.extend(aead.seal(&plan.nonce, &plan.header, plaintext));
        frame
    }

    fn outside_open(k: &Keyring, plan: &OpenPlan, frame: &[u8]) -> Option<Vec<u8>> {
        let key = k.aead_key(plan.epoch, plan.header.kid)?;
        let aead = crate::sframe::Aead::new(k.config().suite, &key).expect("aead");
        let (header, body) = frame.split_at(plan.header_len);
        aead.open(&plan.nonce, header, body)
    }

    #[test]
    fn the_outside_cipher_path_makes_the_same_frames_and_decisions() {
        let (mut alice, mut bob) = alice_and_bob();
        // Sealed outside, opened inside; counters go on from one path to the other.
        let plan = alice.plan_seal().expect("plan");
        assert_eq!(plan.ctr, 0);
        let frame = outside_seal(&alice, &plan, b"outside");
        let (r, plain) = bob.decrypt(b"", &frame, SEC).expect("opens");
        assert_eq!(
            (plain.as_slice(), r.sender, r.epoch),
            (&b"outside"[..], 0, 1)
        );
        let inside = alice.encrypt(b"", b"inside").expect("encrypt");
        assert_eq!(Header::parse(&inside).expect("header").0.ctr, 1);
        // Sealed inside, opened outside, then its counter is taken once.
        let plan = bob.plan_open(&inside, inside.len(), SEC).expect("plan");
        assert_eq!((plan.sender, plan.epoch, plan.header.ctr), (0, 1, 1));
        assert_eq!(
            outside_open(&bob, &plan, &inside).as_deref(),
            Some(&b"inside"[..])
        );
        bob.opened(&plan).expect("fresh");
        assert!(matches!(
            bob.opened(&plan),
            Err(DecryptError::Replayed { .. })
        ));
        assert!(matches!(
            bob.plan_open(&inside, inside.len(), SEC),
            Err(DecryptError::Replayed { .. })
        ));
        assert!(matches!(
            bob.decrypt(b"", &inside, SEC),
            Err(DecryptError::Replayed { .. })
        ));
        // A forgery fails outside and leaves the window alone.
        let mut forged = alice.encrypt(b"", b"x").expect("encrypt");
        *forged.last_mut().expect("tag") ^= 1;
        let plan = bob
            .plan_open(&forged, forged.len(), SEC)
            .expect("header and key are fine");
        assert_eq!(outside_open(&bob, &plan, &forged), None);
        // Too short for a tag, or for nobody: refused before any cipher runs.
        assert!(matches!(
            bob.plan_open(&forged, forged.len() - 10, SEC),
            Err(DecryptError::CiphertextTooShort { .. })
        ));
        let stranger = Header::new(KidLayout::default().kid(7, 1), 0).to_bytes();
        let mut junk = stranger.clone();
        junk.extend([0u8; 32]);
        assert!(matches!(
            bob.plan_open(&junk, junk.len(), SEC),
            Err(DecryptError::UnknownSender { .. })
        ));
        assert!(bob.aead_key(1, KidLayout::default().kid(7, 1)).is_none());
        assert!(bob.aead_key(9, KidLayout::default().kid(0, 9)).is_none());
    }

    #[test]
    fn the_outside_cipher_path_keeps_grace_and_drops_epochs_like_the_inside_one() {
        let (mut alice, mut bob) = alice_and_bob();
        let old = alice.encrypt(b"", b"old").expect("encrypt");
        alice.install(epoch(2, Some(0)), SEC).expect("install");
        bob.install(epoch(2, Some(1)), SEC).expect("install");
        // Within the grace time the old epoch still opens; after it, it is stale.
        assert!(bob.plan_open(&old, old.len(), SEC * 2).is_ok());
        assert!(matches!(
            bob.plan_open(&old, old.len(), SEC * 10),
            Err(DecryptError::StaleEpoch { .. })
        ));
        // A key of the new epoch that arrives late waits: "no key yet" for an epoch not held.
        let mut ahead = Keyring::new(KeyringConfig::default());
        ahead.install(epoch(3, Some(0)), SEC).expect("install");
        let early = ahead.encrypt(b"", b"early").expect("encrypt");
        assert!(matches!(
            bob.plan_open(&early, early.len(), SEC * 10),
            Err(DecryptError::NoKeyYet { .. })
        ));
        assert_eq!(bob.plan_seal().expect("plan").epoch, 2);
        assert_eq!(bob.members().len(), 3, "one epoch of three members is held");
    }
}
