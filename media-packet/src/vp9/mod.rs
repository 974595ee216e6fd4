//! The VP9 RTP payload descriptor (RFC 9628 §4.2), read and written whole: the picture ID, the
//! layer indices with their switching points, flexible-mode reference indices and the
//! scalability structure (§4.2.1). Browsers send flexible mode (F=1, references in every inter
//! packet); non-flexible mode (a TL0PICIDX, the picture group in the scalability structure) is
//! read and written too.
//!
//! `rtc` 0.21's `Vp9Packet` keeps the reference indices of every packet it has read and fails
//! every packet after the third that carries one, so it loses all but the key frames of a
//! browser's stream; and it reads the G bit from the reserved bits too.

/// The most spatial layers a scalability structure describes (N_S is 3 bits).
pub const MAX_SPATIAL_LAYERS: u8 = 8;
/// The most reference indices one descriptor (or one picture of a picture group) carries.
pub const MAX_REFERENCES: usize = 3;

/// A picture ID (I), 7 bits or 15 (M).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PictureId {
    Short(u8),
    Long(u16),
}

impl PictureId {
    pub fn value(self) -> u16 {
        match self {
            PictureId::Short(v) => u16::from(v),
            PictureId::Long(v) => v,
        }
    }
}

/// Layer indices (L).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layers {
    /// TID, 0-7.
    pub temporal: u8,
    /// U: a switching-up point: later frames of higher temporal layers depend on no frame of
    /// theirs before this one, so a receiver may start taking them after it.
    pub switching_up: bool,
    /// SID, 0-7.
    pub spatial: u8,
    /// D: this layer frame depends on the spatial layer below it in the same picture.
    pub inter_layer: bool,
    /// TL0PICIDX: present in non-flexible mode.
    pub tl0_pic_idx: Option<u8>,
}

/// Up to three reference indices (P_DIFF, 1-127: the picture ID that many before).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct References {
    diffs: [u8; MAX_REFERENCES],
    len: u8,
}

impl References {
    /// The references of `diffs` (at most three, each 1-127).
    pub fn new(diffs: &[u8]) -> Result<Self, DescriptorError> {
        if diffs.len() > MAX_REFERENCES {
            return Err(DescriptorError::TooManyReferences);
        }
        if diffs.iter().any(|&d| d == 0 || d > 127) {
            return Err(DescriptorError::OutOfRange("P_DIFF"));
        }
        let mut r = References::default();
        r.diffs[..diffs.len()].copy_from_slice(diffs);
        r.len = diffs.len() as u8;
        Ok(r)
    }

    /// One reference, `diff` pictures back (1-127).
    pub const fn one(diff: u8) -> Option<Self> {
        if diff == 0 || diff > 127 {
            None
        } else {
            Some(References {
                diffs: [diff, 0, 0],
                len: 1,
            })
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.diffs[..usize::from(self.len)]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One picture of a picture group (G): its temporal layer, switching point and references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupPicture {
    pub temporal: u8,
    pub switching_up: bool,
    pub references: References,
}

/// The scalability structure (V), sent with key frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalability {
    /// N_S + 1: 1-8.
    pub spatial_layers: u8,
    /// Y: each spatial layer's width and height.
    pub resolutions: Option<Vec<(u16, u16)>>,
    /// G: the picture group's pictures.
    pub picture_group: Option<Vec<GroupPicture>>,
}

/// A VP9 payload descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Descriptor {
    /// I.
    pub picture_id: Option<PictureId>,
    /// P: the layer frame is predicted from an earlier picture. A frame without it depends on
    /// no earlier picture: in spatial layer 0 it is a key frame; above, its layer may start
    /// there.
    pub inter_picture: bool,
    /// F: flexible mode.
    pub flexible: bool,
    /// B: the first packet of a layer frame.
    pub begins: bool,
    /// E: the last packet of a layer frame.
    pub ends: bool,
    /// L.
    pub layers: Option<Layers>,
    /// P_DIFFs (flexible mode, inter-picture frames only).
    pub references: References,
    /// Z: no upper spatial layer of this picture depends on this layer frame.
    pub not_upper_reference: bool,
    /// V.
    pub scalability: Option<Scalability>,
}

/// Why a descriptor could not be read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DescriptorError {
    #[error("the VP9 payload descriptor ends early")]
    Truncated,
    #[error("more than 3 reference indices (P_DIFF) in one VP9 descriptor")]
    TooManyReferences,
    #[error("a VP9 descriptor field out of range: {0}")]
    OutOfRange(&'static str),
    #[error("a VP9 packet with no payload after its descriptor")]
    NoPayload,
}

impl Descriptor {
    /// Reads the descriptor at the start of `payload`: it, and where the VP9 payload starts.
    pub fn read(payload: &[u8]) -> Result<(Descriptor, usize), DescriptorError> {
        let mut r = Reader {
            bytes: payload,
            at: 0,
        };
        let first = r.byte()?;
        let bit = |mask: u8| first & mask != 0;
        let mut d = Descriptor {
            inter_picture: bit(0x40),
            flexible: bit(0x10),
            begins: bit(0x08),
            ends: bit(0x04),
            not_upper_reference: bit(0x01),
            ..Descriptor::default()
        };
        if bit(0x80) {
            let b = r.byte()?;
            d.picture_id = Some(if b & 0x80 != 0 {
                PictureId::Long(u16::from(b & 0x7f) << 8 | u16::from(r.byte()?))
            } else {
                PictureId::Short(b)
            });
        }
        if bit(0x20) {
            let b = r.byte()?;
            d.layers = Some(Layers {
                temporal: b >> 5,
                switching_up: b & 0x10 != 0,
                spatial: (b >> 1) & 0x07,
                inter_layer: b & 0x01 != 0,
                tl0_pic_idx: if d.flexible { None } else { Some(r.byte()?) },
            });
        }
        if d.flexible && d.inter_picture {
            let mut diffs = [0u8; MAX_REFERENCES];
            let mut n = 0;
            loop {
                if n == MAX_REFERENCES {
                    return Err(DescriptorError::TooManyReferences);
                }
                let b = r.byte()?;
                diffs[n] = b >> 1;
                n += 1;
                if b & 0x01 == 0 {
                    break;
                }
            }
            d.references = References {
                diffs,
                len: n as u8,
            };
        }
        if bit(0x02) {
            d.scalability = Some(read_scalability(&mut r)?);
        }
        Ok((d, r.at))
    }

    /// The spatial layer (0 without layer indices).
    pub fn spatial(&self) -> u8 {
        self.layers.map_or(0, |l| l.spatial)
    }

    /// The temporal layer (0 without layer indices).
    pub fn temporal(&self) -> u8 {
        self.layers.map_or(0, |l| l.temporal)
    }

    /// A packet of a key frame (any of its packets, the first may be lost): spatial layer 0,
    /// predicted from no earlier picture.
    pub fn key_frame(&self) -> bool {
        !self.inter_picture && self.spatial() == 0
    }

    /// Writes the descriptor to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), DescriptorError> {
        let flag = |on: bool, mask: u8| if on { mask } else { 0 };
        out.push(
            flag(self.picture_id.is_some(), 0x80)
                | flag(self.inter_picture, 0x40)
                | flag(self.layers.is_some(), 0x20)
                | flag(self.flexible, 0x10)
                | flag(self.begins, 0x08)
                | flag(self.ends, 0x04)
                | flag(self.scalability.is_some(), 0x02)
                | flag(self.not_upper_reference, 0x01),
        );
        match self.picture_id {
            None => {}
            Some(PictureId::Short(v)) if v <= 0x7f => out.push(v),
            Some(PictureId::Long(v)) if v <= 0x7fff => {
                out.extend_from_slice(&(v | 0x8000).to_be_bytes());
            }
            Some(_) => return Err(DescriptorError::OutOfRange("picture ID")),
        }
        if let Some(l) = self.layers {
            if l.temporal > 7 || l.spatial > 7 {
                return Err(DescriptorError::OutOfRange("layer index"));
            }
            out.push(
                l.temporal << 5
                    | flag(l.switching_up, 0x10)
                    | l.spatial << 1
                    | flag(l.inter_layer, 0x01),
            );
            match (self.flexible, l.tl0_pic_idx) {
                (false, Some(idx)) => out.push(idx),
                (true, None) => {}
                _ => return Err(DescriptorError::OutOfRange("TL0PICIDX (non-flexible only)")),
            }
        }
        if self.flexible && self.inter_picture {
            let diffs = self.references.as_slice();
            if diffs.is_empty() {
                return Err(DescriptorError::OutOfRange(
                    "P_DIFF (an inter frame needs one)",
                ));
            }
            for (i, &diff) in diffs.iter().enumerate() {
                out.push(diff << 1 | flag(i + 1 < diffs.len(), 0x01));
            }
        } else if !self.references.is_empty() {
            return Err(DescriptorError::OutOfRange(
                "P_DIFF (flexible inter frames only)",
            ));
        }
        if let Some(ss) = &self.scalability {
            write_scalability(ss, out)?;
        }
        Ok(())
    }
}

fn read_scalability(r: &mut Reader<'_>) -> Result<Scalability, DescriptorError> {
    let head = r.byte()?;
    let spatial_layers = (head >> 5) + 1;
    let resolutions = if head & 0x10 != 0 {
        let mut sizes = Vec::with_capacity(usize::from(spatial_layers));
        for _ in 0..spatial_layers {
            let w = u16::from_be_bytes([r.byte()?, r.byte()?]);
            let h = u16::from_be_bytes([r.byte()?, r.byte()?]);
            sizes.push((w, h));
        }
        Some(sizes)
    } else {
        None
    };
    let picture_group = if head & 0x08 != 0 {
        let count = r.byte()?;
        let mut pictures = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let b = r.byte()?;
            let mut diffs = [0u8; MAX_REFERENCES];
            let n = usize::from((b >> 2) & 0x03);
            for diff in diffs.iter_mut().take(n) {
                *diff = r.byte()?;
            }
            pictures.push(GroupPicture {
                temporal: b >> 5,
                switching_up: b & 0x10 != 0,
                references: References {
                    diffs,
                    len: n as u8,
                },
            });
        }
        Some(pictures)
    } else {
        None
    };
    Ok(Scalability {
        spatial_layers,
        resolutions,
        picture_group,
    })
}

fn write_scalability(ss: &Scalability, out: &mut Vec<u8>) -> Result<(), DescriptorError> {
    if ss.spatial_layers == 0 || ss.spatial_layers > MAX_SPATIAL_LAYERS {
        return Err(DescriptorError::OutOfRange("spatial layer count"));
    }
    let flag = |on: bool, mask: u8| if on { mask } else { 0 };
    out.push(
        (ss.spatial_layers - 1) << 5
            | flag(ss.resolutions.is_some(), 0x10)
            | flag(ss.picture_group.is_some(), 0x08),
    );
    if let Some(sizes) = &ss.resolutions {
        if sizes.len() != usize::from(ss.spatial_layers) {
            return Err(DescriptorError::OutOfRange(
                "a resolution per spatial layer",
            ));
        }
        for &(w, h) in sizes {
            out.extend_from_slice(&w.to_be_bytes());
            out.extend_from_slice(&h.to_be_bytes());
        }
    }
    if let Some(pictures) = &ss.picture_group {
        let count = u8::try_from(pictures.len()).map_err(|_| DescriptorError::OutOfRange("N_G"))?;
        out.push(count);
        for p in pictures {
            if p.temporal > 7 {
                return Err(DescriptorError::OutOfRange("layer index"));
            }
            let diffs = p.references.as_slice();
            out.push(p.temporal << 5 | flag(p.switching_up, 0x10) | (diffs.len() as u8) << 2);
            out.extend_from_slice(diffs);
        }
    }
    Ok(())
}

/// Cuts one layer frame into packets of at most `mtu` bytes, each a descriptor (`layer`'s, with
/// B on the first packet and E on the last, the scalability structure in the first only) and a
/// part of `frame`.
pub fn packetize(
    layer: &Descriptor,
    frame: &[u8],
    mtu: usize,
) -> Result<Vec<Vec<u8>>, DescriptorError> {
    if frame.is_empty() {
        return Err(DescriptorError::NoPayload);
    }
    let mut packets = Vec::new();
    let mut at = 0;
    while at < frame.len() {
        let mut d = layer.clone();
        d.begins = at == 0;
        d.ends = false;
        if at > 0 {
            d.scalability = None;
        }
        let mut packet = Vec::with_capacity(mtu);
        d.write(&mut packet)?;
        let room =
            mtu.checked_sub(packet.len())
                .filter(|&n| n > 0)
                .ok_or(DescriptorError::OutOfRange(
                    "MTU smaller than the descriptor",
                ))?;
        let take = room.min(frame.len() - at);
        if at + take == frame.len() {
            // E, in place: the descriptor's length does not depend on it.
            packet[0] |= 0x04;
        }
        packet.extend_from_slice(&frame[at..at + take]);
        packets.push(packet);
        at += take;
    }
    Ok(packets)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, DescriptorError> {
        let b = *self.bytes.get(self.at).ok_or(DescriptorError::Truncated)?;
        self.at += 1;
        Ok(b)
    }
}

#[cfg(test)]
mod tests;
