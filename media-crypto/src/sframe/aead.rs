//! The AEAD algorithms of RFC 9605 §4.5: AES-GCM, and AES-CTR with a truncated HMAC (§4.5.1).
//! Keys are expanded once per KID; the per-frame path does no allocation.

use aes::cipher::{InnerIvInit, StreamCipher, generic_array::GenericArray};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce, Tag};
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};

use super::suite::CipherSuite;

pub(crate) const NONCE_LEN: usize = 12;
/// Metadata up to this length is joined to the header on the stack for GCM's AAD.
const STACK_AAD: usize = 512;

/// The AEAD of a suite on its own (RFC 9605 §4.5), outside SFrame framing: for test vectors
/// and cross-checks. Frames go through [`super::FrameKey`].
#[derive(Clone)]
pub struct Aead {
    suite: CipherSuite,
    key: AeadKey,
}

impl std::fmt::Debug for Aead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aead")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl Aead {
    /// The AEAD of `suite` under `key` (Nk bytes; for CTR suites `enc_key || auth_key`).
    pub fn new(suite: CipherSuite, key: &[u8]) -> Result<Self, super::error::KeyError> {
        if key.len() != suite.key_len() {
            return Err(super::error::KeyError::WrongKeyLength {
                expected: suite.key_len(),
                got: key.len(),
            });
        }
        Ok(Aead {
            suite,
            key: AeadKey::new(suite, key),
        })
    }

    /// `ciphertext || tag`.
    pub fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut out = plaintext.to_vec();
        let mut tag = vec![0; self.suite.tag_len()];
        self.key.seal(nonce, aad, &[], &mut out, &mut tag);
        out.extend_from_slice(&tag);
        out
    }

    /// The plaintext of `ciphertext || tag`, or `None` if it does not authenticate.
    pub fn open(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let ct_len = sealed.len().checked_sub(self.suite.tag_len())?;
        let mut out = sealed[..ct_len].to_vec();
        self.key
            .open(nonce, aad, &[], &mut out, &sealed[ct_len..])
            .ok()?;
        Some(out)
    }
}

/// The authentication tag did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TagMismatch;

/// An expanded AEAD key. The key schedules and HMAC states zeroize themselves on drop.
#[derive(Clone)]
pub(crate) enum AeadKey {
    Gcm128(Box<Aes128Gcm>),
    Gcm256(Box<Aes256Gcm>),
    Ctr128(Box<CtrHmac<aes::Aes128, Hmac<Sha256>>>),
    Ctr256(Box<CtrHmac<aes::Aes256, Hmac<Sha512>>>),
}

/// RFC 9605 §4.5.1: `enc_key || auth_key`, with the tag truncated to Nt.
#[derive(Clone)]
pub(crate) struct CtrHmac<C, M> {
    /// The expanded AES key (`enc_key`); cloned for each frame's counter mode.
    cipher: C,
    /// HMAC already keyed with `auth_key`; cloned for each frame.
    mac: M,
    tag_len: usize,
}

impl AeadKey {
    /// Expands `key` (Nk bytes) for `suite`.
    pub(crate) fn new(suite: CipherSuite, key: &[u8]) -> Self {
        debug_assert_eq!(key.len(), suite.key_len());
        let nka = suite.aes_key_len();
        match suite {
            CipherSuite::AesGcm128Sha256 => AeadKey::Gcm128(Box::new(
                Aes128Gcm::new_from_slice(key).expect("Nk is the AES-128 key length"),
            )),
            CipherSuite::AesGcm256Sha512 => AeadKey::Gcm256(Box::new(
                Aes256Gcm::new_from_slice(key).expect("Nk is the AES-256 key length"),
            )),
            s if nka == 16 => AeadKey::Ctr128(Box::new(CtrHmac::new(key, nka, s.tag_len()))),
            s => AeadKey::Ctr256(Box::new(CtrHmac::new(key, nka, s.tag_len()))),
        }
    }

    /// Encrypts `buf` in place and writes the tag into `tag` (exactly Nt bytes). The AAD is
    /// `header || metadata`.
    pub(crate) fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        header: &[u8],
        metadata: &[u8],
        buf: &mut [u8],
        tag: &mut [u8],
    ) {
        match self {
            AeadKey::Gcm128(k) => gcm_seal(k.as_ref(), nonce, header, metadata, buf, tag),
            AeadKey::Gcm256(k) => gcm_seal(k.as_ref(), nonce, header, metadata, buf, tag),
            AeadKey::Ctr128(k) => k.seal(nonce, header, metadata, buf, tag),
            AeadKey::Ctr256(k) => k.seal(nonce, header, metadata, buf, tag),
        }
    }

    /// Verifies `tag` in constant time and, only if it verifies, decrypts `buf` in place.
    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        header: &[u8],
        metadata: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), TagMismatch> {
        match self {
            AeadKey::Gcm128(k) => gcm_open(k.as_ref(), nonce, header, metadata, buf, tag),
            AeadKey::Gcm256(k) => gcm_open(k.as_ref(), nonce, header, metadata, buf, tag),
            AeadKey::Ctr128(k) => k.open(nonce, header, metadata, buf, tag),
            AeadKey::Ctr256(k) => k.open(nonce, header, metadata, buf, tag),
        }
    }
}

/// Calls `f` with `header || metadata` as one slice, on the stack when it is small.
fn with_aad<R>(header: &[u8], metadata: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    if metadata.is_empty() {
        return f(header);
    }
    let len = header.len() + metadata.len();
    if len <= STACK_AAD {
        let mut aad = [0u8; STACK_AAD];
        aad[..header.len()].copy_from_slice(header);
        aad[header.len()..len].copy_from_slice(metadata);
        f(&aad[..len])
    } else {
        f(&[header, metadata].concat())
    }
}

fn gcm_seal<A: AeadInPlace>(
    aead: &A,
    nonce: &[u8; NONCE_LEN],
    header: &[u8],
    metadata: &[u8],
    buf: &mut [u8],
    tag: &mut [u8],
) {
    let t = with_aad(header, metadata, |aad| {
        aead.encrypt_in_place_detached(Nonce::from_slice(nonce), aad, buf)
    })
    .expect("frames are far below AES-GCM's 64 GiB message limit");
    tag.copy_from_slice(&t);
}

fn gcm_open<A: AeadInPlace>(
    aead: &A,
    nonce: &[u8; NONCE_LEN],
    header: &[u8],
    metadata: &[u8],
    buf: &mut [u8],
    tag: &[u8],
) -> Result<(), TagMismatch> {
    let tag = Tag::from_slice(tag);
    with_aad(header, metadata, |aad| {
        aead.decrypt_in_place_detached(Nonce::from_slice(nonce), aad, buf, tag)
    })
    .map_err(|_| TagMismatch)
}

impl<C, M> CtrHmac<C, M>
where
    C: aes::cipher::BlockCipher
        + aes::cipher::BlockEncryptMut
        + aes::cipher::BlockSizeUser<BlockSize = aes::cipher::consts::U16>
        + KeyInit
        + Clone,
    M: Mac + hmac::KeyInit + Clone,
{
    fn new(key: &[u8], nka: usize, tag_len: usize) -> Self {
        let (enc, auth) = key.split_at(nka);
        CtrHmac {
            cipher: <C as KeyInit>::new_from_slice(enc).expect("Nka is the AES key length"),
            mac: <M as hmac::KeyInit>::new_from_slice(auth).expect("HMAC takes any key length"),
            tag_len,
        }
    }

    /// AES-CTR with the initial counter block `nonce || 0x00000000`.
    fn apply_keystream(&self, nonce: &[u8; NONCE_LEN], buf: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..NONCE_LEN].copy_from_slice(nonce);
        let core = ctr::CtrCore::<C, ctr::flavors::Ctr32BE>::inner_iv_init(
            self.cipher.clone(),
            GenericArray::from_slice(&iv),
        );
        let mut ctr = ctr::Ctr32BE::<C>::from_core(core);
        ctr.apply_keystream(buf);
    }

    /// `HMAC(auth_key, len(aad) || len(ct) || Nt || nonce || aad || ct)`, lengths as u64 BE.
    fn mac(&self, nonce: &[u8; NONCE_LEN], header: &[u8], metadata: &[u8], ct: &[u8]) -> M {
        let mut mac = self.mac.clone();
        let aad_len = (header.len() + metadata.len()) as u64;
        mac.update(&aad_len.to_be_bytes());
        mac.update(&(ct.len() as u64).to_be_bytes());
        mac.update(&(self.tag_len as u64).to_be_bytes());
        mac.update(nonce);
        mac.update(header);
        mac.update(metadata);
        mac.update(ct);
        mac
    }

    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        header: &[u8],
        metadata: &[u8],
        buf: &mut [u8],
        tag: &mut [u8],
    ) {
        self.apply_keystream(nonce, buf);
        let full = self
            .mac(nonce, header, metadata, buf)
            .finalize()
            .into_bytes();
        tag.copy_from_slice(&full[..self.tag_len]);
    }

    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        header: &[u8],
        metadata: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), TagMismatch> {
        self.mac(nonce, header, metadata, buf)
            .verify_truncated_left(tag)
            .map_err(|_| TagMismatch)?;
        self.apply_keystream(nonce, buf);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The AEAD-only vectors: RFC 9605 Appendix C.2 and the AES-256 CTR+HMAC draft's.
    use super::*;

    fn hex(v: &serde_json::Value, k: &str) -> Vec<u8> {
        let s = v[k].as_str().unwrap_or_else(|| panic!("field {k}"));
        ::hex::decode(s).expect("hex")
    }

    fn check_file(json: &str, member: &str) -> usize {
        let doc: serde_json::Value = serde_json::from_str(json).expect("json");
        let cases = doc[member].as_array().expect("cases");
        for case in cases {
            let suite = CipherSuite::from_id(case["cipher_suite"].as_u64().expect("suite") as u16)
                .expect("known suite");
            let key = hex(case, "key");
            assert_eq!(key, [hex(case, "enc_key"), hex(case, "auth_key")].concat());
            let nonce: [u8; NONCE_LEN] = hex(case, "nonce").try_into().expect("nonce length");
            let (aad, pt, ct) = (hex(case, "aad"), hex(case, "pt"), hex(case, "ct"));
            let aead = AeadKey::new(suite, &key);
            let nt = suite.tag_len();

            // The AAD is passed as two parts; split it anywhere to show the join is right.
            let split = aad.len() / 3;
            let mut buf = pt.clone();
            let mut tag = vec![0; nt];
            aead.seal(&nonce, &aad[..split], &aad[split..], &mut buf, &mut tag);
            assert_eq!([buf.clone(), tag.clone()].concat(), ct, "{suite} seal");

            aead.open(&nonce, &aad[..split], &aad[split..], &mut buf, &tag)
                .expect("open");
            assert_eq!(buf, pt, "{suite} open");

            let mut bad = tag.clone();
            bad[0] ^= 1;
            let mut buf = ct[..pt.len()].to_vec();
            assert_eq!(
                aead.open(&nonce, &aad[..split], &aad[split..], &mut buf, &bad),
                Err(TagMismatch)
            );
        }
        cases.len()
    }

    #[test]
    fn rfc9605_appendix_c2_aes_ctr_hmac() {
        let n = check_file(
            include_str!("../../tests/data/rfc9605.json"),
            "aes_ctr_hmac",
        );
        assert_eq!(n, 3);
    }

    #[test]
    fn aes256_ctr_hmac_draft_vectors() {
        let n = check_file(
            include_str!("../../tests/data/aes256-ctr-hmac-draft.json"),
            "aes_256_ctr_hmac",
        );
        assert_eq!(n, 3);
    }

    #[test]
    fn gcm_aad_longer_than_the_stack_buffer_is_joined_on_the_heap() {
        let aead = AeadKey::new(CipherSuite::AesGcm128Sha256, &[7; 16]);
        let nonce = [1; NONCE_LEN];
        let meta = vec![9u8; STACK_AAD * 2];
        let mut buf = b"frame".to_vec();
        let mut tag = [0u8; 16];
        aead.seal(&nonce, b"hd", &meta, &mut buf, &mut tag);
        let mut joined_tag = [0u8; 16];
        let mut buf2 = b"frame".to_vec();
        aead.seal(
            &nonce,
            &[b"hd".as_slice(), &meta].concat(),
            &[],
            &mut buf2,
            &mut joined_tag,
        );
        assert_eq!((buf.clone(), tag), (buf2, joined_tag));
        aead.open(&nonce, b"hd", &meta, &mut buf, &tag)
            .expect("open");
        assert_eq!(buf, b"frame");
    }
}
