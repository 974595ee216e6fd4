//! Every vector in tests/data (copies of ../shared/vectors): RFC 9605 Appendix C.1 headers and
//! C.3 full SFrame encryptions, and the AES-256 CTR+HMAC draft's SFrame cases.

use media_crypto::sframe::{CipherSuite, FrameKey, Header, derive_key_material};
use serde_json::Value;

fn hex(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().unwrap_or_else(|| panic!("field {k}"))).expect("hex")
}

fn u64_of(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("u64 field {k}"))
}

fn load(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("read vectors")).expect("json")
}

#[test]
fn appendix_c1_headers_encode_and_parse() {
    let doc = load("rfc9605.json");
    let cases = doc["header"].as_array().expect("header cases");
    assert_eq!(cases.len(), 289);
    for case in cases {
        let (kid, ctr, encoded) = (
            u64_of(case, "kid"),
            u64_of(case, "ctr"),
            hex(case, "encoded"),
        );
        let h = Header::new(kid, ctr);
        assert_eq!(h.to_bytes(), encoded, "encode kid={kid} ctr={ctr}");
        assert_eq!(Header::parse(&encoded), Ok((h, encoded.len())));
    }
}

fn check_sframe_cases(doc: &Value) -> usize {
    let cases = doc["sframe"].as_array().expect("sframe cases");
    for case in cases {
        let suite = CipherSuite::from_id(u64_of(case, "cipher_suite") as u16).expect("suite");
        let (kid, ctr) = (u64_of(case, "kid"), u64_of(case, "ctr"));
        let base_key = hex(case, "base_key");

        let m = derive_key_material(suite, kid, &base_key).expect("derive");
        assert_eq!(*m.secret, hex(case, "sframe_secret"), "{suite} secret");
        assert_eq!(*m.key, hex(case, "sframe_key"), "{suite} key");
        assert_eq!(m.salt.to_vec(), hex(case, "sframe_salt"), "{suite} salt");

        let key = FrameKey::derive(suite, kid, &base_key).expect("derive");
        let (metadata, pt, ct) = (hex(case, "metadata"), hex(case, "pt"), hex(case, "ct"));
        assert_eq!(key.encrypt(ctr, &metadata, &pt), ct, "{suite} encrypt");
        assert_eq!(
            key.decrypt(&metadata, &ct).expect("decrypt"),
            pt,
            "{suite} decrypt"
        );
    }
    cases.len()
}

#[test]
fn appendix_c3_sframe_encryption_for_suites_1_to_5() {
    assert_eq!(check_sframe_cases(&load("rfc9605.json")), 5);
}

#[test]
fn aes256_ctr_hmac_draft_sframe_encryption_for_suites_6_to_8() {
    assert_eq!(check_sframe_cases(&load("aes256-ctr-hmac-draft.json")), 3);
}
