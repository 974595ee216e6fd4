//! Verifying vector files, case by case: a malformed case is a failure, never a crash.

use std::path::Path;

use anyhow::Context;
use media_crypto::sframe::{Aead, CipherSuite, FrameKey, Header, derive_key_material};
use serde_json::Value;

#[derive(Debug, Default)]
pub struct Report {
    pub passed: usize,
    pub failures: Vec<String>,
}

impl Report {
    fn record(&mut self, name: String, result: Result<(), String>) {
        match result {
            Ok(()) => self.passed += 1,
            Err(why) => self.failures.push(format!("{name}: {why}")),
        }
    }
}

pub fn check_file(path: &Path) -> anyhow::Result<Report> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let doc: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut report = Report::default();
    if let Some(cases) = doc.get("cases").and_then(Value::as_array) {
        for (i, case) in cases.iter().enumerate() {
            report.record(format!("cases[{i}]"), exchange_case(case));
        }
        return Ok(report);
    }
    let mut any = false;
    for (member, f) in [
        ("header", header_case as fn(&Value) -> Result<(), String>),
        ("aes_ctr_hmac", aead_case),
        ("aes_256_ctr_hmac", aead_case),
        ("sframe", sframe_case),
    ] {
        if let Some(cases) = doc.get(member).and_then(Value::as_array) {
            any = true;
            for (i, case) in cases.iter().enumerate() {
                report.record(format!("{member}[{i}]"), f(case));
            }
        }
    }
    anyhow::ensure!(
        any,
        "{}: neither the exchange layout (\"cases\") nor the RFC 9605 layout",
        path.display()
    );
    Ok(report)
}

fn bytes(case: &Value, field: &str) -> Result<Vec<u8>, String> {
    let s = case
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing hex field {field:?}"))?;
    hex::decode(s).map_err(|e| format!("field {field:?}: {e}"))
}

fn number(case: &Value, field: &str) -> Result<u64, String> {
    case.get(field)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("missing unsigned 64-bit field {field:?}"))
}

fn suite(case: &Value) -> Result<CipherSuite, String> {
    let id = number(case, "cipher_suite")?;
    let id = u16::try_from(id).map_err(|_| format!("cipher_suite {id} out of range"))?;
    CipherSuite::from_id(id).map_err(|e| e.to_string())
}

fn expect_eq(what: &str, got: &[u8], want: &[u8]) -> Result<(), String> {
    if got == want {
        return Ok(());
    }
    let at = got.iter().zip(want).take_while(|(g, w)| g == w).count();
    let show = |b: &[u8]| hex::encode(&b[at..b.len().min(at + 8)]);
    Err(format!(
        "{what} differs from byte {at} (got {}.., want {}..; lengths {} and {})",
        show(got),
        show(want),
        got.len(),
        want.len()
    ))
}

fn header_case(case: &Value) -> Result<(), String> {
    let (kid, ctr, encoded) = (
        number(case, "kid")?,
        number(case, "ctr")?,
        bytes(case, "encoded")?,
    );
    expect_eq(
        "encoded header",
        &Header::new(kid, ctr).to_bytes(),
        &encoded,
    )?;
    match Header::parse(&encoded) {
        Ok((h, len)) if h == Header::new(kid, ctr) && len == encoded.len() => Ok(()),
        other => Err(format!("parse gave {other:?}")),
    }
}

fn aead_case(case: &Value) -> Result<(), String> {
    let suite = suite(case)?;
    let aead = Aead::new(suite, &bytes(case, "key")?).map_err(|e| e.to_string())?;
    let nonce: [u8; 12] = bytes(case, "nonce")?
        .try_into()
        .map_err(|_| "nonce is not 12 bytes".to_string())?;
    let (aad, pt, ct) = (bytes(case, "aad")?, bytes(case, "pt")?, bytes(case, "ct")?);
    expect_eq("ct", &aead.seal(&nonce, &aad, &pt), &ct)?;
    let opened = aead
        .open(&nonce, &aad, &ct)
        .ok_or("ct does not authenticate")?;
    expect_eq("pt", &opened, &pt)
}

fn sframe_case(case: &Value) -> Result<(), String> {
    let suite = suite(case)?;
    let (kid, ctr, base_key) = (
        number(case, "kid")?,
        number(case, "ctr")?,
        bytes(case, "base_key")?,
    );
    let m = derive_key_material(suite, kid, &base_key).map_err(|e| e.to_string())?;
    expect_eq("sframe_secret", &m.secret, &bytes(case, "sframe_secret")?)?;
    expect_eq("sframe_key", &m.key, &bytes(case, "sframe_key")?)?;
    expect_eq(
        "sframe_salt",
        m.salt.as_slice(),
        &bytes(case, "sframe_salt")?,
    )?;
    round_trip(
        suite,
        kid,
        ctr,
        &base_key,
        &bytes(case, "metadata")?,
        &bytes(case, "pt")?,
        &bytes(case, "ct")?,
    )
}

fn round_trip(
    suite: CipherSuite,
    kid: u64,
    ctr: u64,
    base_key: &[u8],
    metadata: &[u8],
    pt: &[u8],
    ct: &[u8],
) -> Result<(), String> {
    let key = FrameKey::derive(suite, kid, base_key).map_err(|e| e.to_string())?;
    expect_eq("ciphertext", &key.encrypt(ctr, metadata, pt), ct)?;
    let opened = key
        .decrypt(metadata, ct)
        .map_err(|e| format!("decrypt: {e}"))?;
    expect_eq("plaintext", &opened, pt)
}

fn exchange_case(case: &Value) -> Result<(), String> {
    let suite = suite(case)?;
    let (kid, ctr, base_key) = (
        number(case, "kid")?,
        number(case, "ctr")?,
        bytes(case, "base_key")?,
    );
    let (metadata, pt, ct) = (
        bytes(case, "metadata")?,
        bytes(case, "plaintext")?,
        bytes(case, "ciphertext")?,
    );
    let valid = match case.get("valid") {
        None => true,
        Some(v) => v.as_bool().ok_or("\"valid\" is not a boolean")?,
    };
    if valid {
        return round_trip(suite, kid, ctr, &base_key, &metadata, &pt, &ct);
    }
    let key = FrameKey::derive(suite, kid, &base_key).map_err(|e| e.to_string())?;
    match key.decrypt(&metadata, &ct) {
        Err(_) => Ok(()),
        Ok(_) => Err("an invalid case was accepted".into()),
    }
}
