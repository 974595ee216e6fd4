//! Any bytes: the header parser never panics and accepts only canonical encodings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media_crypto::sframe::Header;

fuzz_target!(|data: &[u8]| {
    if let Ok((header, len)) = Header::parse(data) {
        assert_eq!(header.to_bytes(), &data[..len]);
    }
});
