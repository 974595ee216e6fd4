//! Any bytes as a VP9 payload descriptor (the SFU reads one from every forwarded video packet
//! a publisher sends): a typed error or a descriptor, never a panic; what is read writes and
//! reads back the same, within the bytes given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media_packet::vp9::Descriptor;

fuzz_target!(|data: &[u8]| {
    if let Ok((d, len)) = Descriptor::read(data) {
        assert!(len <= data.len());
        let mut again = Vec::new();
        d.write(&mut again).expect("what was read can be written");
        assert_eq!(again.len(), len);
        assert_eq!(Descriptor::read(&again), Ok((d, len)));
    }
});
