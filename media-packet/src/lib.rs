//! The clear parts of media packets, read and written without a key.
//!
//! Media is end-to-end encrypted whole frames (SFrame, RFC 9605): a frame's bytes are
//! ciphertext to everyone but the participants. What the RTP packetizer writes around them
//! after encryption stays in the clear, and for VP9 that is the payload descriptor (RFC 9628),
//! which carries the picture, its spatial and temporal layers and where a receiver may switch
//! between them. RTCP feedback is in the clear too (after SRTCP): with the `rtcp` feature,
//! the key-frame requests a receiver sends ([`keyframe`]). The SFU reads it to forward each subscriber the layers it can take; the bots
//! write it to send the layer structure browsers send.
//!
//! This crate does no IO and links no key code: the SFU links it (`scripts/check-no-key-code`).

#[cfg(feature = "rtcp")]
pub mod keyframe;
pub mod vp9;
