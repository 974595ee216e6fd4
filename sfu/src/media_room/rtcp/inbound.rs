//! The one interceptor of the room's own: it reads the RTCP a participant sends before the
//! engine's NACK responder does, strikes from each NACK what may not be resent now
//! ([`super::resend`]), and marks key-frame requests (`media_packet::keyframe`) and transport-wide
//! feedback ([`super::estimate`]) for delivery to the session;
//! all other RTCP continues down the chain untouched, so the interceptors that act on reports
//! still see it. One interceptor for both: every stage of the chain moves every packet, sent
//! or received, through its queues.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

use super::resend::ResendLimit;

/// Between the pacer and the NACK responder: RTCP from the wire passes here first.
pub const SLOT: usize = 3_500;

#[derive(Default)]
pub struct Inbound {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
    resends: ResendLimit,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound")
            .field("queued", &(self.read.len() + self.write.len()))
            .field("resends", &self.resends)
            .finish()
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for Inbound {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        let mut deliver = false;
        if let Packet::Rtcp(packets) = &mut msg.message.packet {
            if packets
                .iter()
                .any(|p| p.as_any().is::<TransportLayerNack>())
            {
                let now = msg.now;
                let resends = &mut self.resends;
                let kept: Vec<Box<dyn rtc::rtcp::Packet>> = std::mem::take(packets)
                    .into_iter()
                    .filter_map(|p| match p.as_any().downcast_ref::<TransportLayerNack>() {
                        Some(nack) => resends
                            .limit(now, nack)
                            .map(|n| Box::new(n) as Box<dyn rtc::rtcp::Packet>),
                        None => Some(p),
                    })
                    .collect();
                if kept.is_empty() {
                    return Ok(());
                }
                *packets = kept;
            }
            deliver = packets.iter().any(|p| {
                media_packet::keyframe::is_request(p.as_ref())
                    || p.as_any().is::<TransportLayerCc>()
            });
        }
        if deliver {
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front()
    }
}

impl Interceptor for Inbound {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
