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

/// Registers Opus and VP9 (and nothing else) on `engine`.
pub fn register(engine: &mut MediaEngine) -> Result<(), rtc::shared::error::Error> {
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                rtcp_feedback: Vec::new(),
            },
            payload_type: 111,
        },
        RtpCodecKind::Audio,
    )?;
    let feedback: Vec<RTCPFeedback> = [
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
    for (payload_type, profile) in [(98, 0), (100, 1)] {
        for (mime_type, pt, fmtp, rtcp_feedback) in [
            (
                MIME_TYPE_VP9,
                payload_type,
                format!("profile-id={profile}"),
                feedback.clone(),
            ),
            // RFC 4588 retransmission of that stream: browsers drop RTX for a codec without one.
            (
                MIME_TYPE_RTX,
                payload_type + 1,
                format!("apt={payload_type}"),
                Vec::new(),
            ),
        ] {
            engine.register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: RTCRtpCodec {
                        mime_type: mime_type.to_owned(),
                        clock_rate: 90000,
                        channels: 0,
                        sdp_fmtp_line: fmtp,
                        rtcp_feedback,
                    },
                    payload_type: pt,
                },
                RtpCodecKind::Video,
            )?;
        }
    }
    Ok(())
}
