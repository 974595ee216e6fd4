//! RTCP the room acts on. The sessions' interceptors answer NACKs from their send buffers
//! (RFC 4585 §6.2.1), send NACKs for gaps they see (both hops recover loss on their own),
//! report (RFC 3550 SR/RR) and send transport-wide feedback; key-frame requests are the
//! room's to relay ([`pli`]).

pub mod pli;
