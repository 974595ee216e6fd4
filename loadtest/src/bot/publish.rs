//! Publishing: the test media in a loop, each frame sealed (SFrame under the group's current
//! key, or a synthetic frame of its size), packetized (Opus: one packet; VP9: RFC 9628
//! payload descriptor, 1200-byte packets) and written with the negotiated payload type. The
//! bot's task calls these on its audio and video ticks.
//!
//! A layered camera sends each picture's spatial layers as frames of their own, each sealed on
//! its own (as Chromium does with `L3T3_KEY` under a frame transform), behind descriptors
//! that carry the layers, the switching points, the references and, on key pictures, the
//! layers' sizes; the picture's last packet carries the marker.

use std::time::Instant;

use bytes::Bytes;
use media_packet::vp9::{self, Descriptor, Layers, PictureId, References, Scalability};
use rtc::rtp::header::Header as RtpHeader;
use rtc::rtp_transceiver::RTCRtpSenderId;

use super::peer::Peer;
use super::state::BotState;
use crate::media::{Picture, TestMedia};

const MTU: usize = 1200;

/// One outgoing track and where it is in the test media.
#[derive(Debug)]
pub struct Outgoing {
    pub sender: RTCRtpSenderId,
    pub ssrc: u32,
    pub video: bool,
    /// Sends the layered video.
    pub layered: bool,
    /// The media stream it is sent in (the SFU names videos by it).
    pub stream: &'static str,
    /// How many spatial layers the SFU says anyone shows (`None`: not said, all; 0: the video
    /// pauses).
    pub spatial_layers: Option<u8>,
    /// A key picture is due (the SFU asked for one, or the layers sent changed): the test
    /// media jumps to its next key picture, as an encoder makes one at once.
    pub key_wanted: bool,
    seq: u16,
    ts: u32,
    frame: usize,
    /// The next VP9 picture ID (15 bits).
    picture_id: u16,
}

impl Outgoing {
    pub fn new(
        sender: RTCRtpSenderId,
        ssrc: u32,
        stream: &'static str,
        video: bool,
        layered: bool,
    ) -> Self {
        Outgoing {
            sender,
            ssrc,
            video,
            layered: video && layered,
            stream,
            spatial_layers: None,
            key_wanted: false,
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
        if self.video && std::mem::take(&mut self.key_wanted) {
            self.frame += to_next_key(media, self.layered, self.frame);
        }
        let i = self.frame;
        self.frame += 1;
        if self.video && self.spatial_layers == Some(0) {
            // Nobody shows it.
            return true;
        }
        let (payloads, clock_step) = if self.layered {
            (self.layered_payloads(state, media, i), 3000)
        } else if self.video {
            let frame = &media.video[i % media.video.len()];
            let Some(sealed) = state.seal(true, &frame.data) else {
                return true;
            };
            let layer = Descriptor {
                picture_id: Some(PictureId::Long(self.picture_id)),
                flexible: true,
                inter_picture: !frame.keyframe,
                references: if frame.keyframe {
                    References::default()
                } else {
                    References::one(1).unwrap_or_default()
                },
                ..Descriptor::default()
            };
            self.picture_id = (self.picture_id + 1) & 0x7fff;
            match vp9::packetize(&layer, &sealed, MTU) {
                Ok(p) => (p.into_iter().map(Bytes::from).collect(), 3000),
                Err(_) => return true,
            }
        } else {
            let frame = &media.audio[i % media.audio.len()];
            let Some(sealed) = state.seal(false, frame) else {
                return true;
            };
            (vec![Bytes::from(sealed)], 960)
        };
        if payloads.is_empty() {
            return true;
        }
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

    /// Picture `i` of the layered video: each spatial layer sealed and packetized behind its
    /// descriptor.
    fn layered_payloads(
        &mut self,
        state: &mut BotState,
        media: &TestMedia,
        i: usize,
    ) -> Vec<Bytes> {
        let n = media.layered.len();
        let picture = &media.layered[i % n];
        // Pictures since the last key picture: the 0-2-1-2 pattern's references.
        let since_key = (0..n)
            .find(|&back| media.layered[(i + n - back) % n].key)
            .unwrap_or(0);
        let references = if picture.key {
            References::default()
        } else {
            let back = match since_key % 4 {
                0 => 4,
                2 => 2,
                _ => 1,
            };
            References::one(back).unwrap_or_default()
        };
        let id = PictureId::Long(self.picture_id);
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        let mut payloads = Vec::new();
        let sent = self.spatial_layers.unwrap_or(u8::MAX);
        for layer in picture.layers.iter().filter(|l| l.spatial < sent) {
            let Some(sealed) = state.seal(true, &layer.data) else {
                return Vec::new();
            };
            let d = Descriptor {
                picture_id: Some(id),
                flexible: true,
                inter_picture: !picture.key,
                layers: Some(Layers {
                    temporal: layer.temporal,
                    switching_up: true,
                    spatial: layer.spatial,
                    inter_layer: picture.key && layer.spatial > 0,
                    tl0_pic_idx: None,
                }),
                references,
                scalability: (picture.key && layer.spatial == 0)
                    .then(|| scalability(picture, sent)),
                ..Descriptor::default()
            };
            match vp9::packetize(&d, &sealed, MTU) {
                Ok(p) => payloads.extend(p.into_iter().map(Bytes::from)),
                Err(_) => return Vec::new(),
            }
        }
        payloads
    }
}

/// How many pictures from picture `i` of the test media to its next key picture (0: `i` is
/// one).
fn to_next_key(media: &TestMedia, layered: bool, i: usize) -> usize {
    let n = if layered {
        media.layered.len()
    } else {
        media.video.len()
    };
    let key = |j: usize| {
        if layered {
            media.layered[j % n].key
        } else {
            media.video[j % n].keyframe
        }
    };
    (0..n).find(|&k| key(i + k)).unwrap_or(0)
}

/// The scalability structure of a key picture: the layers below `sent` and their sizes.
fn scalability(picture: &Picture, sent: u8) -> Scalability {
    let layers: Vec<_> = picture.layers.iter().filter(|l| l.spatial < sent).collect();
    Scalability {
        spatial_layers: layers.len() as u8,
        resolutions: Some(layers.iter().map(|l| (l.width, l.height)).collect()),
        picture_group: None,
    }
}
