//! Loss repair on each hop (RFC 4585 §6.2.1 generic NACK): a session asks its participant for
//! the packets it missed (the generator), and resends from its buffer what a participant asks
//! for (the responder). Both hops repair on their own; a retransmission is never relayed.
//!
//! The responder's buffer is per sent stream. Its packets share their payloads with the
//! publisher's (one received datagram for every subscriber's copy), so what it holds is a
//! header per packet plus the payloads still referenced: [`RESEND_WINDOW`] packets are about
//! 2-5 s of video, far beyond any round trip a NACK can still help with (a frame is late for
//! the jitter buffer after a few hundred milliseconds), and a quarter of the 1024 default.

use rtc::interceptor::{NackGeneratorBuilder, NackResponderBuilder, Registry, Slot};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RtpCodecKind};

/// Packets per sent stream kept for retransmission (a power of two).
pub const RESEND_WINDOW: u16 = 256;

/// Registers NACK (and NACK PLI) feedback for video on `engine` and both interceptors.
pub fn register(registry: Registry, engine: &mut MediaEngine) -> Registry {
    for parameter in ["", "pli"] {
        engine.register_feedback(
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: parameter.to_owned(),
            },
            RtpCodecKind::Video,
        );
    }
    registry
        .with(
            Slot::NackResponder,
            NackResponderBuilder::new().with_size(RESEND_WINDOW).build(),
        )
        .with(Slot::NackGenerator, NackGeneratorBuilder::new().build())
}
