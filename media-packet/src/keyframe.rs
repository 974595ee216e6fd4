//! Key-frame requests in RTCP (PLI, RFC 4585 §6.3.1; FIR, RFC 5104 §4.3.1): the SFU reads them
//! from subscribers to ask publishers for a key picture, and the bots read them from the SFU
//! to answer with one, as a browser's encoder does.

use rtc_rtcp::packet::Packet;
use rtc_rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;

/// True for PLI and FIR.
pub fn is_request(packet: &dyn Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// The SSRCs of the streams `packets` ask key pictures of (PLI's media SSRC, each FIR
/// entry's).
pub fn requested(packets: &[Box<dyn Packet>]) -> Vec<u32> {
    let mut ssrcs = Vec::new();
    for p in packets {
        let any = p.as_any();
        if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
            ssrcs.push(pli.media_ssrc);
        } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
            ssrcs.extend(fir.fir.iter().map(|e| e.ssrc));
        }
    }
    ssrcs
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_rtcp::payload_feedbacks::full_intra_request::FirEntry;
    use rtc_rtcp::receiver_report::ReceiverReport;

    #[test]
    fn plis_and_firs_name_the_streams_asked_and_nothing_else_does() {
        let packets: Vec<Box<dyn Packet>> = vec![
            Box::new(ReceiverReport::default()),
            Box::new(PictureLossIndication {
                sender_ssrc: 1,
                media_ssrc: 7,
            }),
            Box::new(FullIntraRequest {
                sender_ssrc: 1,
                media_ssrc: 0,
                fir: vec![
                    FirEntry {
                        ssrc: 8,
                        sequence_number: 1,
                    },
                    FirEntry {
                        ssrc: 9,
                        sequence_number: 1,
                    },
                ],
            }),
        ];
        assert!(!is_request(packets[0].as_ref()));
        assert!(is_request(packets[1].as_ref()) && is_request(packets[2].as_ref()));
        assert_eq!(requested(&packets), vec![7, 8, 9]);
        assert!(requested(&packets[..1]).is_empty());
    }
}
