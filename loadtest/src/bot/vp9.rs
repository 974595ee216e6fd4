//! The VP9 payload descriptor (RFC 9628 §4.2), read far enough to reassemble frames: where a
//! layer frame begins (B) and ends (E), and where the payload starts. Browsers send it in
//! flexible mode (F=1, reference indices in every inter packet), bots in non-flexible mode;
//! both, with the scalability structure (V) of key frames, are read here.
//!
//! `rtc` 0.21's `Vp9Packet` keeps the reference indices of every packet it has read and fails
//! every packet after the third that carries one, so it loses all but the key frames of a
//! browser's stream; and it reads the G bit from the reserved bits too.

/// What a packet's descriptor says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// B: the first packet of a layer frame.
    pub begins: bool,
    /// E: the last packet of a layer frame.
    pub ends: bool,
    /// Where the VP9 payload starts.
    pub payload_start: usize,
}

/// Why a descriptor could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DescriptorError {
    #[error("the VP9 payload descriptor ends early")]
    Truncated,
    #[error("more than 3 reference indices (P_DIFF) in one VP9 packet")]
    TooManyReferences,
}

/// Reads the descriptor at the start of `payload`.
pub fn descriptor(payload: &[u8]) -> Result<Descriptor, DescriptorError> {
    let mut r = Reader {
        bytes: payload,
        at: 0,
    };
    let first = r.byte()?;
    let bit = |mask: u8| first & mask != 0;
    let (i, p, l, f, b, e, v) = (
        bit(0x80),
        bit(0x40),
        bit(0x20),
        bit(0x10),
        bit(0x08),
        bit(0x04),
        bit(0x02),
    );
    if i {
        // Picture ID: 7 bits, or 15 when M (its first bit) is set.
        if r.byte()? & 0x80 != 0 {
            r.skip(1)?;
        }
    }
    if l {
        // Layer indices; TL0PICIDX follows in non-flexible mode.
        r.skip(if f { 1 } else { 2 })?;
    }
    if f && p {
        // Up to 3 reference indices, each with N set when another follows.
        let mut references = 0;
        loop {
            references += 1;
            if references > 3 {
                return Err(DescriptorError::TooManyReferences);
            }
            if r.byte()? & 0x01 == 0 {
                break;
            }
        }
    }
    if v {
        scalability_structure(&mut r)?;
    }
    Ok(Descriptor {
        begins: b,
        ends: e,
        payload_start: r.at,
    })
}

/// Skips the scalability structure (§4.2.1): N_S, Y, G; the spatial layers' sizes; the
/// picture group's descriptions.
fn scalability_structure(r: &mut Reader<'_>) -> Result<(), DescriptorError> {
    let head = r.byte()?;
    let layers = usize::from(head >> 5) + 1;
    if head & 0x10 != 0 {
        r.skip(4 * layers)?;
    }
    if head & 0x08 != 0 {
        let pictures = r.byte()?;
        for _ in 0..pictures {
            let references = usize::from((r.byte()? >> 2) & 0x03);
            r.skip(references)?;
        }
    }
    Ok(())
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

    fn skip(&mut self, n: usize) -> Result<(), DescriptorError> {
        if self.bytes.len() - self.at < n {
            return Err(DescriptorError::Truncated);
        }
        self.at += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<(bool, bool, usize), DescriptorError> {
        descriptor(bytes).map(|d| (d.begins, d.ends, d.payload_start))
    }

    #[test]
    fn chromium_inter_frames_in_flexible_mode_are_read_packet_after_packet() {
        // A frame of three packets as Chromium 148 sent it (I, P, F, 15-bit picture ID,
        // P_DIFF 1), then the next frame: the reference indices of one packet are not the
        // next one's.
        for _ in 0..10 {
            assert_eq!(read(&[0xd9, 0xac, 0x31, 0x02, 0x98]), Ok((true, false, 4)));
            assert_eq!(read(&[0xd1, 0xac, 0x31, 0x02, 0x64]), Ok((false, false, 4)));
            assert_eq!(read(&[0xd5, 0xac, 0x31, 0x02, 0xbe]), Ok((false, true, 4)));
            // A one-packet frame (B and E).
            assert_eq!(read(&[0xdd, 0xa5, 0xfe, 0x02, 0x28]), Ok((true, true, 4)));
        }
    }

    #[test]
    fn up_to_three_reference_indices_are_read_and_a_fourth_refused() {
        assert_eq!(
            read(&[0xd8, 0x05, 0x03, 0x05, 0x06, 0xff]),
            Ok((true, false, 5))
        );
        assert_eq!(
            read(&[0xd8, 0x05, 0x03, 0x05, 0x07, 0x09, 0xff]),
            Err(DescriptorError::TooManyReferences)
        );
    }

    #[test]
    fn layer_indices_take_a_byte_more_in_non_flexible_mode() {
        // I (7-bit picture ID), L, B: layer byte and TL0PICIDX.
        assert_eq!(read(&[0xa8, 0x11, 0x20, 0x07, 0xaa]), Ok((true, false, 4)));
        // The same in flexible mode without references: the layer byte only.
        assert_eq!(read(&[0xb8, 0x11, 0x20, 0xaa]), Ok((true, false, 3)));
    }

    #[test]
    fn a_key_frame_scalability_structure_is_skipped() {
        // I, B, E, V; SS: one layer (N_S 0) with its size (Y) and a picture group (G) of two
        // pictures, the second with one reference.
        let packet = [
            0x8e, 0x42, // I, B, E, V; picture ID 0x42
            0x18, // N_S 0, Y, G
            0x02, 0x80, 0x01, 0xe0, // 640 x 480
            0x02, // N_G 2
            0x00, // T0, no references
            0x24, 0x01, // T1, one reference: P_DIFF 1
            0xaa, // the payload
        ];
        assert_eq!(read(&packet), Ok((true, true, 11)));
        assert_eq!(read(&packet[..9]), Err(DescriptorError::Truncated));
    }

    #[test]
    fn a_short_or_empty_descriptor_is_an_error_not_a_panic() {
        for bytes in [
            &[][..],
            &[0x80],
            &[0x80, 0x80],
            &[0x20],
            &[0x50],
            &[0x02],
            &[0x02, 0x10, 0],
        ] {
            assert_eq!(read(bytes), Err(DescriptorError::Truncated), "{bytes:02x?}");
        }
    }
}
