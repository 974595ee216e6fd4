//! The SFrame header, RFC 9605 §4.3.
//!
//! ```text
//!  0 1 2 3 4 5 6 7
//! +-+-+-+-+-+-+-+-+---------------------------+---------------------------+
//! |X|  K  |Y|  C  |   KID... (length=K+1 if X)  |   CTR... (length=C+1 if Y)  |
//! +-+-+-+-+-+-+-+-+---------------------------+---------------------------+
//! ```
//!
//! Values below 8 are carried in the config byte; larger values in the fewest big-endian bytes
//! that hold them. Parsing is strict: any other encoding is rejected, so each (KID, CTR) has
//! exactly one header and the header bytes that feed the AAD cannot be varied by a relay.

use super::error::HeaderError;

/// The longest possible header: the config byte and two 8-byte values.
pub const MAX_HEADER_LEN: usize = 17;

/// A parsed SFrame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// The key ID.
    pub kid: u64,
    /// The frame counter.
    pub ctr: u64,
}

/// How many bytes a value takes after the config byte: 0 when it fits the 3-bit field.
fn value_len(v: u64) -> usize {
    if v < 8 {
        0
    } else {
        8 - (v.leading_zeros() as usize / 8)
    }
}

impl Header {
    /// A header for this key ID and counter.
    pub const fn new(kid: u64, ctr: u64) -> Self {
        Header { kid, ctr }
    }

    /// The encoded length in bytes (1 to 17).
    pub fn len(&self) -> usize {
        1 + value_len(self.kid) + value_len(self.ctr)
    }

    /// Headers are never empty; present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the header at the start of `out` and returns its length.
    pub fn encode_into(&self, out: &mut [u8]) -> Result<usize, HeaderError> {
        let len = self.len();
        if out.len() < len {
            return Err(HeaderError::BufferTooSmall {
                needed: len,
                available: out.len(),
            });
        }
        let (kid_len, ctr_len) = (value_len(self.kid), value_len(self.ctr));
        let mut config = 0u8;
        if kid_len == 0 {
            config |= (self.kid as u8) << 4;
        } else {
            config |= 0x80 | (((kid_len - 1) as u8) << 4);
        }
        if ctr_len == 0 {
            config |= self.ctr as u8;
        } else {
            config |= 0x08 | (ctr_len - 1) as u8;
        }
        out[0] = config;
        out[1..1 + kid_len].copy_from_slice(&self.kid.to_be_bytes()[8 - kid_len..]);
        out[1 + kid_len..len].copy_from_slice(&self.ctr.to_be_bytes()[8 - ctr_len..]);
        Ok(len)
    }

    /// The encoded header as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0; self.len()];
        // The buffer has exactly `len()` bytes, so encoding cannot fail.
        let _ = self.encode_into(&mut out);
        out
    }

    /// Parses the header at the start of `data`; returns it and its length.
    pub fn parse(data: &[u8]) -> Result<(Header, usize), HeaderError> {
        let &config = data.first().ok_or(HeaderError::Truncated {
            needed: 1,
            available: 0,
        })?;
        let kid_len = if config & 0x80 != 0 {
            ((config >> 4) & 0x07) as usize + 1
        } else {
            0
        };
        let ctr_len = if config & 0x08 != 0 {
            (config & 0x07) as usize + 1
        } else {
            0
        };
        let len = 1 + kid_len + ctr_len;
        if data.len() < len {
            return Err(HeaderError::Truncated {
                needed: len,
                available: data.len(),
            });
        }
        let kid = read_value(&data[1..1 + kid_len], (config >> 4) & 0x07)
            .map_err(|encoded_len| HeaderError::NonMinimalKid { encoded_len })?;
        let ctr = read_value(&data[1 + kid_len..len], config & 0x07)
            .map_err(|encoded_len| HeaderError::NonMinimalCtr { encoded_len })?;
        Ok((Header { kid, ctr }, len))
    }
}

/// Reads an extended value, or the 3-bit inline one when `bytes` is empty. Err carries the
/// length of a non-minimal encoding.
fn read_value(bytes: &[u8], inline: u8) -> Result<u64, usize> {
    if bytes.is_empty() {
        return Ok(u64::from(inline));
    }
    let v = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    if value_len(v) != bytes.len() {
        return Err(bytes.len());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_live_in_the_config_byte() {
        assert_eq!(Header::new(0, 0).to_bytes(), [0x00]);
        assert_eq!(Header::new(7, 7).to_bytes(), [0x77]);
        assert_eq!(Header::new(8, 0).to_bytes(), [0x80, 0x08]);
    }

    #[test]
    fn longest_header_is_seventeen_bytes() {
        let h = Header::new(u64::MAX, u64::MAX);
        assert_eq!(h.len(), MAX_HEADER_LEN);
        assert_eq!(Header::parse(&h.to_bytes()), Ok((h, MAX_HEADER_LEN)));
    }

    #[test]
    fn non_minimal_encodings_are_refused() {
        // KID 5 spelled with an extension byte.
        assert_eq!(
            Header::parse(&[0x80, 0x05]),
            Err(HeaderError::NonMinimalKid { encoded_len: 1 })
        );
        // CTR 0x10 spelled with two bytes.
        assert_eq!(
            Header::parse(&[0x09, 0x00, 0x10]),
            Err(HeaderError::NonMinimalCtr { encoded_len: 2 })
        );
    }

    #[test]
    fn truncated_headers_are_refused() {
        assert_eq!(
            Header::parse(&[]),
            Err(HeaderError::Truncated {
                needed: 1,
                available: 0
            })
        );
        assert_eq!(
            Header::parse(&[0x0f, 1, 2, 3]),
            Err(HeaderError::Truncated {
                needed: 9,
                available: 4
            })
        );
    }

    #[test]
    fn encoding_into_a_short_buffer_is_an_error() {
        let mut buf = [0u8; 2];
        assert_eq!(
            Header::new(300, 300).encode_into(&mut buf),
            Err(HeaderError::BufferTooSmall {
                needed: 5,
                available: 2
            })
        );
    }
}
