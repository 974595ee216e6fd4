//! The codecs the SFU negotiates: Opus for audio and VP9 (profiles 0 and 1, each with its RTX
//! stream) for video. These are the codecs whose RTP packetizers carry a whole-frame SFrame
//! ciphertext (DESIGN.md): the VP8, H264 and AV1 packetizers parse the frame they packetize and
//! break on ciphertext, and G.711/G.722 have no place in this meeting. AV1 comes later, with the
//! dependency descriptor.

use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP9, MediaEngine,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};

/// Opus as the SFU negotiates it: in-band FEC, and DTX (a silent microphone sends a packet
/// every 400 ms, not every 20 ms; the loudest-audio selection forwards none of them).
pub fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1;usedtx=1".to_owned(),
        rtcp_feedback: Vec::new(),
    }
}

/// VP9 of `profile` (0 or 1) as the SFU negotiates it, with its RTCP feedback.
pub fn vp9(profile: u8) -> RTCRtpCodec {
    let rtcp_feedback = [
        ("goog-remb", ""),
        ("ccm", "fir"),
        ("nack", ""),
        ("nack", "pli"),
    ]
    .into_iter()
    .map(|(typ, parameter)| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    })
    .collect();
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP9.to_owned(),
        clock_rate: 90000,
        channels: 0,
        sdp_fmtp_line: format!("profile-id={profile}"),
        rtcp_feedback,
    }
}

/// Registers Opus and VP9 (and nothing else) on `engine`.
pub fn register(engine: &mut MediaEngine) -> Result<(), rtc::shared::error::Error> {
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus(),
            payload_type: 111,
        },
        RtpCodecKind::Audio,
    )?;
    for (payload_type, profile) in [(98, 0), (100, 1)] {
        engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: vp9(profile),
                payload_type,
            },
            RtpCodecKind::Video,
        )?;
        // RFC 4588 retransmission of that stream: browsers drop RTX for a codec without one.
        engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_RTX.to_owned(),
                    clock_rate: 90000,
                    channels: 0,
                    sdp_fmtp_line: format!("apt={payload_type}"),
                    rtcp_feedback: Vec::new(),
                },
                payload_type: payload_type + 1,
            },
            RtpCodecKind::Video,
        )?;
    }
    Ok(())
}

/// The same codec: MIME type, clock rate and (VP9) profile.
pub fn same_codec(a: &RTCRtpCodec, b: &RTCRtpCodec) -> bool {
    let profile = |c: &RTCRtpCodec| {
        c.sdp_fmtp_line
            .split(';')
            .find_map(|kv| kv.trim().strip_prefix("profile-id="))
            .unwrap_or("0")
            .to_owned()
    };
    a.mime_type.eq_ignore_ascii_case(&b.mime_type)
        && a.clock_rate == b.clock_rate
        && (!a.mime_type.eq_ignore_ascii_case("video/vp9") || profile(a) == profile(b))
}
