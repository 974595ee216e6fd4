//! Just enough STUN (RFC 5389) to route a datagram on the shared port: the USERNAME of a
//! Binding request, whose first half is the ICE username fragment of the connection it is for
//! (RFC 8445 §7.2.2: "RFRAG:LFRAG", RFRAG being the receiver's); whether a datagram is a
//! Binding request or success response; and the transaction id that ties a response to its
//! request.

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const BINDING_REQUEST: [u8; 2] = [0x00, 0x01];
const BINDING_SUCCESS: [u8; 2] = [0x01, 0x01];
const USERNAME: u16 = 0x0006;
const HEADER_LEN: usize = 20;

/// The receiver's username fragment named by a STUN Binding request, or `None` for anything
/// else (other STUN messages, DTLS, SRTP, malformed input).
pub fn binding_request_ufrag(datagram: &[u8]) -> Option<&str> {
    if datagram.len() < HEADER_LEN
        || datagram[0..2] != BINDING_REQUEST
        || datagram[4..8] != MAGIC_COOKIE
    {
        return None;
    }
    let declared = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let attributes = datagram.get(HEADER_LEN..HEADER_LEN + declared)?;
    let mut rest = attributes;
    while rest.len() >= 4 {
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let value = rest.get(4..4 + len)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next().filter(|u| !u.is_empty());
        }
        // Attributes are padded to a multiple of 4 bytes.
        let padded = 4 + len.div_ceil(4) * 4;
        rest = rest.get(padded..)?;
    }
    None
}

/// Whether `datagram` is a STUN Binding success response.
pub fn is_binding_success(datagram: &[u8]) -> bool {
    is(datagram, BINDING_SUCCESS)
}

/// Whether `datagram` is a STUN Binding request.
pub fn is_binding_request(datagram: &[u8]) -> bool {
    is(datagram, BINDING_REQUEST)
}

/// The 96-bit transaction id of a STUN message (a response carries its request's).
pub fn transaction_id(datagram: &[u8]) -> Option<[u8; 12]> {
    datagram.get(8..HEADER_LEN)?.try_into().ok()
}

fn is(datagram: &[u8], kind: [u8; 2]) -> bool {
    datagram.len() >= HEADER_LEN && datagram[0..2] == kind && datagram[4..8] == MAGIC_COOKIE
}

#[cfg(test)]
mod tests {
    use super::{binding_request_ufrag, is_binding_request, is_binding_success, transaction_id};

    fn attribute(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = kind.to_be_bytes().to_vec();
        a.extend_from_slice(&(value.len() as u16).to_be_bytes());
        a.extend_from_slice(value);
        a.resize(4 + value.len().div_ceil(4) * 4, 0);
        a
    }

    fn message(kind: [u8; 2], attributes: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = attributes.concat();
        let mut m = kind.to_vec();
        m.extend_from_slice(&(body.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn a_binding_request_names_the_receiver_s_fragment() {
        let m = message(
            [0, 1],
            &[
                attribute(0x0024, &[0, 0, 0, 1]),
                attribute(0x0006, b"sfuFrag:browserFrag"),
                attribute(0x0008, &[0; 20]),
            ],
        );
        assert_eq!(binding_request_ufrag(&m), Some("sfuFrag"));
        // Padding after an odd-length attribute is skipped.
        let m = message(
            [0, 1],
            &[attribute(0x8022, b"odd"), attribute(0x0006, b"a:b")],
        );
        assert_eq!(binding_request_ufrag(&m), Some("a"));
    }

    #[test]
    fn anything_else_names_nobody() {
        let with_user = [attribute(0x0006, b"sfuFrag:browserFrag")];
        // A Binding success response, an indication, DTLS, RTP.
        assert_eq!(binding_request_ufrag(&message([1, 1], &with_user)), None);
        assert_eq!(binding_request_ufrag(&message([0, 0x11], &with_user)), None);
        assert_eq!(binding_request_ufrag(&[22, 254, 253, 0, 0, 0, 0, 0]), None);
        assert_eq!(binding_request_ufrag(&[0x80; 40]), None);
        // No USERNAME, an empty one, a length past the end, a declared length past the end.
        assert_eq!(binding_request_ufrag(&message([0, 1], &[])), None);
        assert_eq!(
            binding_request_ufrag(&message([0, 1], &[attribute(6, b":x")])),
            None
        );
        let mut overrun = message([0, 1], &with_user);
        overrun[22..24].copy_from_slice(&200u16.to_be_bytes());
        assert_eq!(binding_request_ufrag(&overrun), None);
        let mut truncated = message([0, 1], &with_user);
        truncated.truncate(30);
        assert_eq!(binding_request_ufrag(&truncated), None);
        assert_eq!(binding_request_ufrag(&[]), None);
    }

    #[test]
    fn a_binding_success_response_is_recognised() {
        let user = [attribute(0x0006, b"a:b")];
        assert!(is_binding_success(&message([1, 1], &[])));
        assert!(!is_binding_success(&message([0, 1], &user)));
        assert!(!is_binding_success(&message([1, 0x11], &[])));
        let mut no_cookie = message([1, 1], &[]);
        no_cookie[4] = 0;
        assert!(!is_binding_success(&no_cookie));
        assert!(!is_binding_success(&[1, 1, 0, 0]));
        assert!(is_binding_request(&message([0, 1], &user)));
        assert!(!is_binding_request(&message([1, 1], &[])));
        assert_eq!(transaction_id(&message([1, 1], &[])), Some([7; 12]));
        assert_eq!(transaction_id(&[1, 1, 0, 0]), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = binding_request_ufrag(&bytes);
            // And the same bytes behind a Binding request header, to reach the attribute walk.
            let mut m = vec![0, 1, 0, bytes.len().min(255) as u8, 0x21, 0x12, 0xA4, 0x42];
            m.extend_from_slice(&[0; 12]);
            m.extend_from_slice(&bytes);
            let _ = binding_request_ufrag(&m);
        }
    }
}
