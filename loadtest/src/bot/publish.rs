//! Publishing: the test media in a loop, each frame sealed (SFrame under the group's current
//! key, or a synthetic frame of its size), packetized (Opus: one packet; VP9: RFC 9628
//! payload descriptor, 1200-byte packets) and written with the negotiated payload type. The
//! bot's task calls these on its audio and video ticks.

use std::time::Instant;

use bytes::Bytes;
use media_packet::vp9::{self, Descriptor, PictureId};
use rtc::rtp::header::Header as RtpHeader;
use rtc::rtp_transceiver::RTCRtpSenderId;

use super::peer::Peer;
use super::state::BotState;
use crate::media::TestMedia;

const MTU: usize = 1200;

/// One outgoing track and where it is in the test media.
#[derive(Debug)]
pub struct Outgoing {
    pub sender: RTCRtpSenderId,
    pub ssrc: u32,
    pub video: bool,
    seq: u16,
    ts: u32,
    frame: usize,
    /// The next VP9 picture ID (15 bits).
    picture_id: u16,
}

impl Outgoing {
    pub fn new(sender: RTCRtpSenderId, ssrc: u32, video: bool) -> Self {
        Outgoing {
            sender,
            ssrc,
            video,
            seq: rand::random(),
            ts: rand::random(),
            frame: 0,
            picture_id: rand::random::<u16>() & 0x7fff,
        }
    }

    /// Sends the next frame; false if the connection has no payload type for it yet.
    /// Audio carries an RFC 6464 level of `level` (-dBov, voice flagged).
    pub fn send_next(
        &mut self,
        peer: &mut Peer,
        state: &mut BotState,
        media: &TestMedia,
        level: u8,
        now: Instant,
    ) -> bool {
        let Some((pt, level_id)) = peer.negotiated(self.sender) else {
            return false;
        };
        let i = self.frame;
        self.frame += 1;
        let (frame, clock_step) = if self.video {
            (&media.video[i % media.video.len()].data, 3000)
        } else {
            (&media.audio[i % media.audio.len()], 960)
        };
        let Some(sealed) = state.seal(self.video, frame) else {
            return true;
        };
        let payloads = if self.video {
            let layer = Descriptor {
                picture_id: Some(PictureId::Long(self.picture_id)),
                flexible: true,
                ..Descriptor::default()
            };
            self.picture_id = (self.picture_id + 1) & 0x7fff;
            match vp9::packetize(&layer, &sealed, MTU) {
                Ok(p) => p.into_iter().map(Bytes::from).collect(),
                Err(_) => return true,
            }
        } else {
            vec![Bytes::from(sealed)]
        };
        let Some(mut sender) = peer.pc.rtp_sender(self.sender) else {
            return false;
        };
        let last = payloads.len().saturating_sub(1);
        for (n, payload) in payloads.into_iter().enumerate() {
            let mut header = RtpHeader {
                version: 2,
                marker: if self.video { n == last } else { i == 0 },
                payload_type: pt,
                sequence_number: self.seq,
                timestamp: self.ts,
                ssrc: self.ssrc,
                ..Default::default()
            };
            if let (false, Some(id)) = (self.video, level_id) {
                let _ = header.set_extension(id, Bytes::from(vec![0x80 | level.min(127)]));
            }
            if sender
                .write_rtp(now, rtc::rtp::Packet { header, payload })
                .is_err()
            {
                return false;
            }
            self.seq = self.seq.wrapping_add(1);
        }
        self.ts = self.ts.wrapping_add(clock_step);
        true
    }
}
