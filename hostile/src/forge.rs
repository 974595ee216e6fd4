//! Handshake messages no honest member sends, made with openmls itself (the product's session
//! offers no way to make them).
//!
//! - [`external_commit`]: a join by external commit (RFC 9420 §12.4.3.2) from a GroupInfo,
//!   which a server holds: anyone with one can commit a leaf of their own choosing into the
//!   group unless members refuse external commits.

use anyhow::Context;
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

/// An external commit into the group `group_info` (an `MLSMessage` with the ratchet tree)
/// describes, for a fresh device whose credential names `identity`. It is signed and valid
/// MLS: only the application's rule (no external commits) stands in its way.
pub fn external_commit(group_info: &[u8], identity: &[u8]) -> anyhow::Result<Vec<u8>> {
    let MlsMessageBodyIn::GroupInfo(info) = MlsMessageIn::tls_deserialize_exact(group_info)
        .context("group info")?
        .extract()
    else {
        anyhow::bail!("not a group info");
    };
    let provider = OpenMlsRustCrypto::default();
    let suite = info.ciphersuite();
    let signer = SignatureKeyPair::new(suite.signature_algorithm())?;
    signer.store(provider.storage())?;
    let credential = CredentialWithKey {
        credential: BasicCredential::new(identity.to_vec()).into(),
        signature_key: signer.public().to_vec().into(),
    };
    let join = MlsGroupJoinConfig::builder()
        .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
        .use_ratchet_tree_extension(true)
        .build();
    let (_, bundle) = MlsGroup::external_commit_builder()
        .with_config(join)
        .build_group(&provider, info, credential)
        .map_err(|e| anyhow::anyhow!("external commit: {e:?}"))?
        .load_psks(provider.storage())
        .map_err(|e| anyhow::anyhow!("external commit: {e:?}"))?
        .build(provider.rand(), provider.crypto(), &signer, |_| true)
        .map_err(|e| anyhow::anyhow!("external commit: {e:?}"))?
        .finalize(&provider)
        .map_err(|e| anyhow::anyhow!("external commit: {e:?}"))?;
    let (commit, _, _) = bundle.into_messages();
    Ok(commit.tls_serialize_detached()?)
}
