//! RTCP the room acts on. The sessions' interceptors repair loss on each hop ([`nack`]), report
//! (RFC 3550 SR/RR) and send transport-wide feedback; key-frame requests are the room's to
//! relay ([`pli`]).

pub mod nack;
pub mod pli;
