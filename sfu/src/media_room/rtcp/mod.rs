//! RTCP: which feedback every session negotiates and runs ([`interceptors`]), and what of it
//! reaches the room ([`feedback`]). The sessions' interceptors repair loss on each hop
//! ([`nack`], each packet resent only so often: [`resend`]), report (RFC 3550 SR/RR), send transport-wide feedback and estimate from the
//! feedback they receive how fast the room may send ([`estimate`]); key-frame requests are the
//! room's to relay ([`pli`]).

pub mod estimate;
pub mod inbound;
pub mod nack;
pub mod pli;
pub mod resend;

use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::shared::error::Error;

/// The feedback a session negotiates (registered on `engine`) and the interceptors that
/// implement it: NACK generator and responder (with a shorter buffer than the default, and
/// resends limited per packet), TWCC both ways, sender and receiver reports, and PLI, FIR
/// and transport-wide feedback marked for delivery.
pub fn interceptors(engine: &mut MediaEngine) -> Result<Registry, Error> {
    let registry = nack::register(Registry::new(), engine);
    // Negotiates transport-wide feedback both ways and reports what we receive; what we send
    // is numbered and its feedback read by the session ([`estimate`]).
    let registry = configure_twcc_receiver_only(registry, engine)?;
    Ok(configure_rtcp_reports(registry)
        .with(Slot::from(inbound::SLOT), inbound::Inbound::default()))
}

/// Feedback from a participant that the room acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    /// A key frame is asked of the stream the room sends the participant as `ssrc`.
    KeyframeRequest { ssrc: u32 },
}

/// The feedback in a compound a session delivered to the room.
pub fn feedback(packets: &[Box<dyn rtc::rtcp::Packet>]) -> Vec<Feedback> {
    media_packet::keyframe::requested(packets)
        .into_iter()
        .map(|ssrc| Feedback::KeyframeRequest { ssrc })
        .collect()
}
