//! One section of a receiver's connection: the RTP header it sends is the publisher's, rewritten
//! to the section's SSRC, payload type and header-extension ids, with sequence numbers and
//! timestamps that continue across a change of the source (a publisher's new SSRC, another
//! publisher's stream taking the section) so that the receiver's jitter buffer sees one stream.
//! (VP9 picture ids are the publisher's: a new source starts at a key picture, where a
//! receiver's depacketizer takes a jump of the picture id.)

use std::collections::VecDeque;

use rtc::rtp::header::{Extension, Header};

/// Header extensions a subscriber gets from the publisher, by URI: those that describe the media
/// (RFC 6464 audio level, video orientation, playout delay, capture time). Transport-wide
/// sequence numbers, send times and MID/RID are per hop: the sending connection adds its own.
pub const END_TO_END_EXTENSIONS: &[&str] = &[
    "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "urn:3gpp:video-orientation",
    "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time",
];

/// Publisher's extension ids mapped onto the ids a section negotiated (`ids`, by URI), for the
/// extensions forwarded end to end.
pub fn extension_map(extensions: &[(String, u8)], ids: &[(String, u8)]) -> Vec<(u8, u8)> {
    extensions
        .iter()
        .filter(|(uri, _)| END_TO_END_EXTENSIONS.contains(&uri.as_str()))
        .filter_map(|(uri, from)| {
            let (_, to) = ids.iter().find(|(u, _)| u == uri)?;
            Some((*from, *to))
        })
        .collect()
}

/// What one downtrack writes into each forwarded header.
#[derive(Debug, Clone)]
pub struct Rewriter {
    ssrc: u32,
    payload_type: u8,
    /// (publisher's id, subscriber's id) for each extension both negotiated.
    extensions: Vec<(u8, u8)>,
    source: Option<Source>,
    /// The next packet starts a new source even if its SSRC is the last one's (the section
    /// now carries another publisher's track, whose SSRC may happen to be the same).
    switch: bool,
    /// How far the timestamp moves from the last source's last packet to the next source's
    /// first.
    switch_step: u32,
    /// The source's packets left out (layers not selected), newest last: a later packet's
    /// number closes up over them, and a late packet takes the number it would have had.
    gaps: VecDeque<Gap>,
    /// Late packets at or before this input number can no longer be placed (their gaps were
    /// forgotten).
    horizon: Option<u16>,
}

/// The stream being forwarded now and how its numbers map onto the output.
#[derive(Debug, Clone, Copy)]
struct Source {
    ssrc: u32,
    /// Added to an input sequence number newer than every gap.
    seq_offset: u16,
    ts_offset: u32,
    /// The highest input sequence number seen (forwarded or left out).
    highest_in: u16,
    last_seq: u16,
    last_ts: u32,
    /// The newest packet out ended a frame (its marker bit): what comes next starts one.
    at_frame_end: bool,
}

/// A run of input packets left out, and the offset of the packets before it.
#[derive(Debug, Clone, Copy)]
struct Gap {
    first: u16,
    last: u16,
    offset_before: u16,
}

/// The timestamp step assumed between the last packet of one source and the first of the next
/// (one 30 fps video frame at 90 kHz; an audio switch is rarer and this is close enough).
const SWITCH_TS_STEP: u32 = 3000;

/// Gaps remembered: at three spatial layers of which one is left out, one a picture, so about
/// two seconds of video; a packet later than that is of no use to a jitter buffer.
const GAPS: usize = 64;

impl Rewriter {
    /// A downtrack sending as `ssrc` with `payload_type`; `extensions` maps publisher ids to
    /// subscriber ids.
    pub fn new(ssrc: u32, payload_type: u8, extensions: Vec<(u8, u8)>) -> Self {
        Rewriter {
            ssrc,
            payload_type,
            extensions,
            source: None,
            switch: false,
            switch_step: SWITCH_TS_STEP,
            gaps: VecDeque::new(),
            horizon: None,
        }
    }

    /// The same output stream carrying another track from now on (the section takes another
    /// publisher's stream): the
    /// SSRC and the numbering continue, the payload type and extension ids are the new
    /// track's, and its first packet starts a new source.
    pub fn resume(self, payload_type: u8, extensions: Vec<(u8, u8)>) -> Self {
        self.resume_after(payload_type, extensions, SWITCH_TS_STEP)
    }

    /// [`Rewriter::resume`], the next source's first timestamp `ts_step` after the last
    /// source's last (an audio section idle a while steps by the time it was idle, so that the
    /// receiver's jitter buffer does not take the pause for delay).
    pub fn resume_after(self, payload_type: u8, extensions: Vec<(u8, u8)>, ts_step: u32) -> Self {
        Rewriter {
            payload_type,
            extensions,
            switch: true,
            switch_step: ts_step,
            ..self
        }
    }

    /// If the next packet starts another track's stream (after [`Rewriter::resume`]), its
    /// timestamp moves on by `quiet` (the time since the last packet out) at `khz` clock units
    /// a millisecond, and at least a frame's step: a section quiet a while does not make the
    /// receiver's jitter buffer take the new frames for late ones.
    pub fn time_switch(&mut self, quiet: std::time::Duration, khz: u32) {
        if self.switch {
            let ticks = quiet.as_millis().saturating_mul(u128::from(khz));
            let ticks = u32::try_from(ticks)
                .unwrap_or(u32::MAX / 2)
                .min(u32::MAX / 2);
            self.switch_step = ticks.max(SWITCH_TS_STEP);
        }
    }

    /// The SSRC this downtrack sends as.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The source `header` belongs to: the current one, or a new one that continues where
    /// the last stopped (the first starts as is).
    fn source_of(&mut self, header: &Header) -> Source {
        match self.source {
            Some(s) if s.ssrc == header.ssrc && !self.switch => s,
            previous => {
                let (seq_offset, ts_offset) = match previous {
                    None => (0, 0),
                    Some(p) => (
                        p.last_seq
                            .wrapping_add(1)
                            .wrapping_sub(header.sequence_number),
                        p.last_ts
                            .wrapping_add(self.switch_step)
                            .wrapping_sub(header.timestamp),
                    ),
                };
                self.switch = false;
                self.switch_step = SWITCH_TS_STEP;
                self.gaps.clear();
                self.horizon = None;
                let source = Source {
                    ssrc: header.ssrc,
                    seq_offset,
                    ts_offset,
                    highest_in: header.sequence_number.wrapping_sub(1),
                    last_seq: header
                        .sequence_number
                        .wrapping_add(seq_offset)
                        .wrapping_sub(1),
                    last_ts: header.timestamp.wrapping_add(ts_offset),
                    at_frame_end: false,
                };
                self.source = Some(source);
                source
            }
        }
    }

    /// The publisher's packet of `header` is left out: the numbers after it close up.
    pub fn skip(&mut self, header: &Header) {
        let mut source = self.source_of(header);
        let seq = header.sequence_number;
        if !seq_newer(seq, source.highest_in) {
            // A late packet left out: its number stays unused.
            return;
        }
        match self.gaps.back_mut() {
            Some(g) if g.last.wrapping_add(1) == seq && source.highest_in == g.last => {
                g.last = seq;
            }
            _ => {
                if self.gaps.len() == GAPS
                    && let Some(old) = self.gaps.pop_front()
                {
                    self.horizon = Some(old.last);
                }
                self.gaps.push_back(Gap {
                    first: seq,
                    last: seq,
                    offset_before: source.seq_offset,
                });
            }
        }
        source.seq_offset = source.seq_offset.wrapping_sub(1);
        source.highest_in = seq;
        self.source = Some(source);
    }

    /// The header of a padding-only packet (RFC 3550 §5.1: no payload, four bytes of padding)
    /// taking the next number of the output stream, for a probe of the path; `None` unless the
    /// newest packet out ended a frame (a receiver assembles a frame from consecutive numbers,
    /// so padding amid one would lose it). Later packets' numbers move up by one over it, and
    /// a late packet from before it keeps the number it would have had.
    pub fn padding(&mut self) -> Option<Header> {
        let mut s = self.source.filter(|s| s.at_frame_end)?;
        let sequence_number = s.last_seq.wrapping_add(1);
        // An empty gap where the padding went: packets up to `highest_in` keep the offset they
        // had, newer ones get one more. Consecutive paddings share it.
        let empty = Gap {
            first: s.highest_in.wrapping_add(1),
            last: s.highest_in,
            offset_before: s.seq_offset,
        };
        match self.gaps.back() {
            Some(g) if g.first == empty.first && g.last == empty.last => {}
            _ => {
                if self.gaps.len() == GAPS
                    && let Some(old) = self.gaps.pop_front()
                {
                    self.horizon = Some(old.last);
                }
                self.gaps.push_back(empty);
            }
        }
        s.seq_offset = s.seq_offset.wrapping_add(1);
        s.last_seq = sequence_number;
        self.source = Some(s);
        Some(Header {
            version: 2,
            padding: true,
            marker: false,
            payload_type: self.payload_type,
            sequence_number,
            timestamp: s.last_ts,
            ssrc: self.ssrc,
            ..Default::default()
        })
    }

    /// The offset of a late input packet `seq`; `None` if it was left out, or is too old to
    /// place.
    fn late_offset(&self, source: &Source, seq: u16) -> Option<u16> {
        let mut offset = source.seq_offset;
        for g in self.gaps.iter().rev() {
            if !seq_newer(g.first, seq) {
                if !seq_newer(seq, g.last) {
                    return None;
                }
                break;
            }
            offset = g.offset_before;
        }
        match self.horizon {
            Some(h) if !seq_newer(seq, h) => None,
            _ => Some(offset),
        }
    }

    /// The header for the subscriber, from the publisher's `header`, with `marker`; `None` if
    /// the packet is a late one that can no longer be placed.
    pub fn rewrite(&mut self, header: &Header, marker: bool) -> Option<Header> {
        let mut s = self.source_of(header);
        let seq_offset = if seq_newer(header.sequence_number, s.highest_in) {
            s.highest_in = header.sequence_number;
            s.seq_offset
        } else {
            self.late_offset(&s, header.sequence_number)?
        };
        let sequence_number = header.sequence_number.wrapping_add(seq_offset);
        let timestamp = header.timestamp.wrapping_add(s.ts_offset);
        // Retransmitted or reordered packets do not move the high-water mark back.
        if seq_newer(sequence_number, s.last_seq) {
            s.last_seq = sequence_number;
            s.last_ts = timestamp;
            s.at_frame_end = marker;
        }
        self.source = Some(s);
        let extensions = header
            .extensions
            .iter()
            .filter_map(|e| {
                self.extensions
                    .iter()
                    .find(|(from, _)| *from == e.id)
                    .map(|&(_, to)| Extension {
                        id: to,
                        payload: e.payload.clone(),
                    })
            })
            .collect::<Vec<_>>();
        Some(Header {
            version: 2,
            padding: false,
            extension: !extensions.is_empty(),
            marker,
            payload_type: self.payload_type,
            sequence_number,
            timestamp,
            ssrc: self.ssrc,
            csrc: Vec::new(),
            extension_profile: if extensions.is_empty() {
                0
            } else {
                header.extension_profile
            },
            extensions,
            extensions_padding: 0,
        })
    }
}

/// RFC 3550 sequence comparison: `a` comes after `b` (modulo 2^16).
fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn header(ssrc: u32, seq: u16, ts: u32) -> Header {
        Header {
            version: 2,
            payload_type: 96,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
            extension: true,
            extension_profile: 0xBEDE,
            extensions: vec![
                Extension {
                    id: 1,
                    payload: Bytes::from_static(&[0x85]),
                },
                Extension {
                    id: 3,
                    payload: Bytes::from_static(&[0, 7]),
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn ssrc_payload_type_and_extension_ids_are_the_subscribers() {
        let mut r = Rewriter::new(42, 111, vec![(1, 5)]);
        let out = r.rewrite(&header(7, 100, 9000), false).unwrap();
        assert_eq!((out.ssrc, out.payload_type), (42, 111));
        assert_eq!((out.sequence_number, out.timestamp), (100, 9000));
        assert_eq!(
            out.extensions.len(),
            1,
            "only extensions both sides negotiated"
        );
        assert_eq!(out.extensions[0].id, 5);
        assert_eq!(&out.extensions[0].payload[..], &[0x85]);
        let bare = Rewriter::new(42, 111, Vec::new())
            .rewrite(&header(7, 1, 1), false)
            .unwrap();
        assert!(!bare.extension && bare.extensions.is_empty());
    }

    #[test]
    fn padding_takes_the_next_numbers_and_the_stream_continues_after_it() {
        let mut r = Rewriter::new(42, 96, Vec::new());
        assert!(r.padding().is_none(), "nothing forwarded yet");
        for seq in 100..=101u16 {
            r.rewrite(&header(7, seq, 3000), false);
        }
        assert!(r.padding().is_none(), "amid a frame");
        r.rewrite(&header(7, 102, 3000), true);
        // 103 is late; two paddings go out.
        let p1 = r.padding().unwrap();
        let p2 = r.padding().unwrap();
        assert_eq!((p1.sequence_number, p2.sequence_number), (103, 104));
        assert!(p1.padding && !p1.marker && p1.timestamp == 3000 && p1.ssrc == 42);
        let next = r.rewrite(&header(7, 104, 6000), false).unwrap();
        assert_eq!(next.sequence_number, 106);
        let late = r.rewrite(&header(7, 103, 3000), false).unwrap();
        assert_eq!(
            late.sequence_number, 105,
            "the late one fits where it was missed"
        );
        // A left-out packet after it closes up as before.
        r.skip(&header(7, 105, 9000));
        let after = r.rewrite(&header(7, 106, 9000), false).unwrap();
        assert_eq!(after.sequence_number, 107);
    }

    #[test]
    fn a_new_source_continues_the_numbers_of_the_last() {
        let mut r = Rewriter::new(42, 96, Vec::new());
        for seq in 100..=110u16 {
            r.rewrite(&header(7, seq, u32::from(seq) * 3000), false);
        }
        // The publisher restarts with another SSRC and unrelated numbers.
        let out = r.rewrite(&header(8, 60_000, 5), false).unwrap();
        assert_eq!(out.sequence_number, 111);
        assert_eq!(out.timestamp, 110 * 3000 + SWITCH_TS_STEP);
        let next = r.rewrite(&header(8, 60_001, 3005), false).unwrap();
        assert_eq!(
            (next.sequence_number, next.timestamp),
            (112, 110 * 3000 + SWITCH_TS_STEP + 3000)
        );
    }

    #[test]
    fn a_resumed_stream_continues_for_another_track_even_with_the_same_source_ssrc() {
        let mut r = Rewriter::new(42, 96, vec![(1, 5)]);
        for seq in 100..=110u16 {
            r.rewrite(&header(7, seq, u32::from(seq) * 3000), false);
        }
        let mut r = r.resume(98, vec![(3, 6)]);
        // Another publisher, whose SSRC happens to be the last one's.
        let out = r.rewrite(&header(7, 5, 0), false).unwrap();
        assert_eq!((out.ssrc, out.payload_type), (42, 98));
        assert_eq!(out.sequence_number, 111);
        assert_eq!(out.timestamp, 110 * 3000 + SWITCH_TS_STEP);
        assert_eq!(out.extensions.len(), 1);
        assert_eq!(out.extensions[0].id, 6, "the new track's extension ids");
        assert_eq!(
            r.rewrite(&header(7, 6, 3000), false)
                .unwrap()
                .sequence_number,
            112
        );
    }

    #[test]
    fn a_stream_taken_over_after_a_quiet_while_steps_its_timestamp_by_the_quiet_time() {
        let mut r = Rewriter::new(42, 96, Vec::new());
        r.rewrite(&header(7, 100, 3000), true);
        // Nothing to step before a switch.
        r.time_switch(std::time::Duration::from_secs(9), 90);
        let out = r.rewrite(&header(7, 101, 6000), true).unwrap();
        assert_eq!(out.timestamp, 6000);
        let mut r = r.resume(96, Vec::new());
        r.time_switch(std::time::Duration::from_secs(2), 90);
        // Even when the new stream's first packet is left out (waiting for a key picture).
        r.skip(&header(8, 50, 1_000));
        let out = r.rewrite(&header(8, 51, 4_000), true).unwrap();
        assert_eq!(out.timestamp, 6000 + 180_000 + 3_000);
        assert_eq!(out.sequence_number, 102);
        // A switch right after the last packet steps one frame.
        let mut r = r.resume(96, Vec::new());
        r.time_switch(std::time::Duration::from_millis(1), 90);
        let out = r.rewrite(&header(9, 1, 0), true).unwrap();
        assert_eq!(out.timestamp, 6000 + 180_000 + 3_000 + SWITCH_TS_STEP);
    }

    #[test]
    fn a_late_packet_keeps_its_place_and_does_not_move_the_high_water_mark() {
        let mut r = Rewriter::new(42, 96, Vec::new());
        r.rewrite(&header(7, 65_535, 10), false).unwrap();
        r.rewrite(&header(7, 1, 30), false).unwrap(); // wrapped
        let late = r.rewrite(&header(7, 0, 20), false).unwrap();
        assert_eq!(late.sequence_number, 0);
        let switched = r.rewrite(&header(9, 500, 0), false).unwrap();
        assert_eq!(
            switched.sequence_number, 2,
            "continues after 1, not after the late 0"
        );
    }

    #[test]
    fn packets_left_out_close_up_and_late_ones_take_the_number_they_would_have_had() {
        let mut r = Rewriter::new(42, 96, Vec::new());
        let out = |r: &mut Rewriter, seq: u16| {
            r.rewrite(&header(7, seq, 0), true)
                .map(|h| h.sequence_number)
        };
        assert_eq!(out(&mut r, 10), Some(10));
        // 11 lost on the way (late later), 12-13 left out, 14 forwarded, 15 left out.
        r.skip(&header(7, 12, 0));
        r.skip(&header(7, 13, 0));
        assert_eq!(
            out(&mut r, 14),
            Some(12),
            "closes up over 12 and 13, keeps 11's place"
        );
        r.skip(&header(7, 15, 0));
        assert_eq!(out(&mut r, 16), Some(13));
        assert_eq!(out(&mut r, 11), Some(11), "the late packet takes its place");
        assert_eq!(
            out(&mut r, 13),
            None,
            "a late copy of a packet left out stays out"
        );
        assert_eq!(
            out(&mut r, 14),
            Some(12),
            "a retransmission keeps its number"
        );
        assert!(r.rewrite(&header(7, 17, 0), true).unwrap().marker);
        // A late packet left out leaves its number unused; the next closes up only over the
        // packets left out in order.
        r.skip(&header(7, 11, 0));
        assert_eq!(out(&mut r, 18), Some(15));
    }

    #[test]
    fn a_packet_older_than_the_gaps_remembered_is_not_placed() {
        let mut r = Rewriter::new(42, 96, Vec::new());
        r.rewrite(&header(7, 0, 0), false);
        for i in 0..=GAPS as u16 {
            r.skip(&header(7, 2 * i + 1, 0));
            r.rewrite(&header(7, 2 * i + 2, 0), false);
        }
        assert!(
            r.rewrite(&header(7, 0, 0), false).is_none(),
            "the gap after it is forgotten"
        );
        assert_eq!(
            r.rewrite(&header(7, 2, 0), false)
                .map(|h| h.sequence_number),
            Some(1),
            "between the oldest gaps remembered"
        );
        let recent = 2 * GAPS as u16;
        assert_eq!(
            r.rewrite(&header(7, recent, 0), false)
                .map(|h| h.sequence_number),
            Some(recent / 2)
        );
    }

    #[test]
    fn a_new_source_after_packets_left_out_continues_from_the_last_forwarded() {
        let mut r = Rewriter::new(42, 96, Vec::new());
        r.rewrite(&header(7, 100, 0), false);
        r.skip(&header(7, 101, 0));
        let out = r.rewrite(&header(8, 5000, 0), false).unwrap();
        assert_eq!(out.sequence_number, 101);
        r.skip(&header(8, 5001, 0));
        assert_eq!(
            r.rewrite(&header(8, 5002, 0), false)
                .unwrap()
                .sequence_number,
            102
        );
    }
}
