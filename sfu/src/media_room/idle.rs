//! A subscriber's idle send sections. When a track it receives ends, the SFU's section for it
//! goes inactive and waits here; the next track of the same kind and codec it is sent takes
//! that section again (its sender keeps its SSRC, so the connection's RTCP and retransmission
//! state stay bound), instead of adding a new one. A connection's sections never go away
//! (JSEP keeps every m-line for the connection's life), so without this a long-lived
//! subscriber would grow by one section, and its offers by one m-line, per departed track.

use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;

use super::rewrite::Rewriter;
use super::tracks::MediaKind;

/// A section no track uses now.
#[derive(Debug)]
pub struct IdleSection {
    pub sender: RTCRtpSenderId,
    pub ssrc: u32,
    pub kind: MediaKind,
    pub codec: RTCRtpCodec,
    /// Where its numbering stopped (none if nothing was ever sent on it).
    pub rewriter: Option<Rewriter>,
}

/// One subscriber's idle sections.
#[derive(Debug, Default)]
pub struct IdleSections(Vec<IdleSection>);

impl IdleSections {
    pub fn put(&mut self, section: IdleSection) {
        self.0.push(section);
    }

    /// A section for a track of `kind` whose codec `fits`, taken out: the one idle the
    /// shortest time.
    pub fn take(
        &mut self,
        kind: MediaKind,
        fits: impl Fn(&RTCRtpCodec) -> bool,
    ) -> Option<IdleSection> {
        let i = self
            .0
            .iter()
            .rposition(|s| s.kind == kind && fits(&s.codec))?;
        Some(self.0.remove(i))
    }

    /// True if an idle section sends as `ssrc` (a new one must not).
    pub fn holds_ssrc(&self, ssrc: u32) -> bool {
        self.0.iter().any(|s| s.ssrc == ssrc)
    }
}
