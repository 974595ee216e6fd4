//! The emulated clients: real WebRTC connections (`rtc`, the bots' engine) that publish
//! audio and VP9 (one layer or three) whose every byte says whose packet it is, and what each
//! saw of the tracks the room sent it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use media_packet::vp9::{Descriptor, Layers, PictureId, References, Scalability};
use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpHeaderExtensionCapability, RtpCodecKind};
use signaling_protocol::{ErrorCode, PausedVideo, VideoSection};

use crate::media_room::{codecs, host_candidate, rtcp};

/// RFC 6464's audio-level extension.
pub(super) const AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// What a client saw of one remote track.
#[derive(Debug, Default)]
pub struct Received {
    /// The publisher, as the stream id names it, and the whole stream id.
    pub publisher: String,
    pub stream: String,
    pub packets: usize,
    /// (publisher's original sequence number carried in the payload) seen.
    pub seen: std::collections::BTreeSet<u32>,
    pub corrupt: usize,
    pub video: bool,
    /// Video: packets by (spatial, temporal) layer, and those with the marker bit by spatial
    /// layer.
    pub layers: BTreeMap<(u8, u8), usize>,
    pub markers: BTreeMap<u8, usize>,
    /// Padding-only packets (probes), not counted in `packets`.
    pub padding: usize,
    /// Video: packets whose sequence number is not the last one's plus one.
    pub sequence_breaks: usize,
    pub last_seq: Option<u16>,
    /// Video section packets whose payload names another publisher than the one the room
    /// said the section carries (or carried just before).
    pub mislabelled: usize,
}

pub struct Client {
    pub pc: RTCPeerConnection,
    pub addr: SocketAddr,
    /// Our tracks: sender, SSRC, kind, next sequence number.
    pub senders: Vec<(RTCRtpSenderId, u32, RtpCodecKind, u16)>,
    /// What our video sends next.
    pub video: VideoSource,
    /// Remote tracks by the connection's track id.
    pub received: HashMap<String, Received>,
    pub errors: Vec<(ErrorCode, String)>,
    pub keyframe_requests: usize,
    pub disconnected: bool,
    /// Audio level to send (0 loudest, 127 silence).
    pub level: u8,
    /// Not answering the network any more.
    pub vanished: bool,
    /// Offers from the room are held here instead of answered (to make offers cross).
    pub hold_offers: bool,
    pub held: Vec<String>,
    /// The shown videos the room last said it sends nothing of.
    pub paused: Vec<PausedVideo>,
    /// The videos published, as the room last listed them.
    pub streams: Vec<String>,
    /// What the room says each video section (by media id) carries now, and carried before.
    pub sections: HashMap<String, (Option<String>, Option<String>)>,
    /// The media id of each received video section's track.
    pub mids: HashMap<String, String>,
    /// The publisher each section's latest packet named.
    pub last_named: HashMap<String, u32>,
}

impl Client {
    /// The room says what each video section carries now.
    pub fn map(&mut self, sections: Vec<VideoSection>) {
        for s in sections {
            let e = self.sections.entry(s.mid).or_default();
            if e.0 != s.stream {
                *e = (s.stream, e.0.take());
            }
        }
    }

    /// Whether the room said a video section of `track` carries (or carried just before) a
    /// stream of `publisher`.
    pub fn mapped_to(&self, track: &str, publisher: u32) -> bool {
        let Some((now, before)) = self.mids.get(track).and_then(|m| self.sections.get(m)) else {
            return false;
        };
        [now, before].into_iter().flatten().any(|s| {
            signaling_protocol::media_stream::parse_stream_id(s)
                .is_some_and(|(p, _)| p == u64::from(publisher))
        })
    }
}

/// A publisher's video: pictures of one layer, or of three spatial layers in temporal pattern
/// 0-2-1-2 (L3T3, every frame a switching point), each layer frame behind its VP9 descriptor;
/// a key picture first and whenever a key frame is asked for.
#[derive(Debug, Default)]
pub struct VideoSource {
    pub svc: bool,
    pub picture: u16,
    pub key_pending: bool,
    pub key_pictures: usize,
    /// How many spatial layers the room said to send, in order (the last holds).
    pub told: Vec<u8>,
}

impl VideoSource {
    /// The next picture's layer frames: (descriptor, packets, bytes per packet).
    pub(super) fn next_picture(&mut self) -> Vec<(Descriptor, usize, usize)> {
        let key = std::mem::take(&mut self.key_pending);
        self.key_pictures += usize::from(key);
        let picture = self.picture;
        self.picture = (self.picture + 1) & 0x7fff;
        let all: u8 = if self.svc { 3 } else { 1 };
        let spatial_layers = self.told.last().map_or(all, |&n| n.min(all));
        if spatial_layers == 0 {
            return Vec::new();
        }
        let temporal = if self.svc {
            [0u8, 2, 1, 2][usize::from(picture % 4)]
        } else {
            0
        };
        (0..spatial_layers)
            .map(|s| {
                let d = Descriptor {
                    picture_id: Some(PictureId::Long(picture)),
                    inter_picture: !key,
                    flexible: true,
                    layers: self.svc.then_some(Layers {
                        temporal,
                        switching_up: true,
                        spatial: s,
                        inter_layer: s > 0 && key,
                        tl0_pic_idx: None,
                    }),
                    references: if key {
                        References::default()
                    } else {
                        References::new(&[1]).unwrap()
                    },
                    scalability: (key && s == 0).then(|| Scalability {
                        spatial_layers,
                        resolutions: Some(
                            (0..spatial_layers).map(|s| (320 << s, 180 << s)).collect(),
                        ),
                        picture_group: None,
                    }),
                    ..Descriptor::default()
                };
                // One layer: three packets; three: 1, 1 and 2 growing ones.
                let (packets, len) = match (self.svc, s) {
                    (false, _) => (3, 1100),
                    (true, 0) => (1, 300),
                    (true, 1) => (1, 700),
                    (true, _) => (2, 1100),
                };
                (d, packets, len)
            })
            .collect()
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

pub fn client_pc(addr: SocketAddr, now: Instant) -> RTCPeerConnection {
    let mut engine = MediaEngine::default();
    codecs::register(&mut engine).unwrap();
    engine
        .register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: AUDIO_LEVEL.into(),
            },
            RtpCodecKind::Audio,
            None,
        )
        .unwrap();
    let registry = register_default_interceptors(Registry::new(), &mut engine)
        .unwrap()
        .with(
            Slot::from(rtcp::inbound::SLOT),
            rtcp::inbound::Inbound::default(),
        );
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .build(now)
        .unwrap();
    pc.add_local_candidate(host_candidate(addr).unwrap())
        .unwrap();
    pc
}

/// A payload that says whose packet it is and which: publisher's SSRC and sequence number,
/// then filler derived from both, so a receiver can check every byte.
pub(super) fn payload(ssrc: u32, seq: u16, len: usize) -> Bytes {
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&ssrc.to_be_bytes());
    b.extend_from_slice(&u32::from(seq).to_be_bytes());
    while b.len() < len {
        b.push((b.len() as u32 ^ ssrc ^ u32::from(seq)) as u8);
    }
    Bytes::from(b)
}

/// The publisher a payload of [`payload`] names (its SSRCs are `1000 × publisher + kind`).
pub(super) fn payload_publisher(p: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(p.get(0..4)?.try_into().ok()?) / 1000)
}

pub(super) fn payload_ok(p: &[u8]) -> Option<u32> {
    if p.len() < 8 {
        return None;
    }
    let ssrc = u32::from_be_bytes(p[0..4].try_into().ok()?);
    let seq = u32::from_be_bytes(p[4..8].try_into().ok()?);
    let ok = p
        .iter()
        .enumerate()
        .skip(8)
        .all(|(i, &b)| b == (i as u32 ^ ssrc ^ seq) as u8);
    ok.then_some(seq)
}
