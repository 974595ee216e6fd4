//! Synthetic frames: what a bot sends when the run measures the SFU rather than the E2EE
//! path. A frame has the size of the test media's frame it stands for and starts with a
//! header that lets every receiver tell whose it is and time it; the rest is random.
//!
//! ```text
//! 0..4    "LTS1"
//! 4..12   sender's participant id (u64, big endian)
//! 12      kind: 0 audio, 1 video
//! 13..21  frame counter of that sender and kind (u64)
//! 21..29  send time, µs since the run started (u64)
//! 29..    random filler
//! ```

use std::time::Duration;

use rand::RngCore;

const MAGIC: &[u8; 4] = b"LTS1";
/// Bytes of the header; a frame is never shorter.
pub const HEADER: usize = 29;
/// Filler bytes a bot keeps, sliced for each frame.
const FILLER: usize = 64 * 1024;

/// A synthetic frame as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub sender: u64,
    pub video: bool,
    pub counter: u64,
    pub sent: Duration,
}

/// The frame is not a synthetic frame (too short, another magic, a bad kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a synthetic frame ({0} bytes)")]
pub struct NotSynthetic(pub usize);

/// Makes one sender's frames.
#[derive(Debug)]
pub struct Maker {
    sender: u64,
    filler: Vec<u8>,
    counters: [u64; 2],
    /// Frames made, so each starts its filler elsewhere.
    made: usize,
}

impl Maker {
    pub fn new(sender: u64) -> Self {
        let mut filler = vec![0; FILLER];
        rand::rng().fill_bytes(&mut filler);
        Maker {
            sender,
            filler,
            counters: [0; 2],
            made: 0,
        }
    }

    /// The next frame of `kind`, `len` bytes long (at least the header), sent at `sent`.
    pub fn frame(&mut self, video: bool, len: usize, sent: Duration) -> Vec<u8> {
        let counter = &mut self.counters[usize::from(video)];
        let mut f = Vec::with_capacity(len.max(HEADER));
        f.extend_from_slice(MAGIC);
        f.extend_from_slice(&self.sender.to_be_bytes());
        f.push(u8::from(video));
        f.extend_from_slice(&counter.to_be_bytes());
        f.extend_from_slice(&(sent.as_micros() as u64).to_be_bytes());
        *counter += 1;
        let rest = len.saturating_sub(HEADER);
        self.made += 1;
        let mut at = (self.made * 7919) % FILLER;
        let mut left = rest;
        while left > 0 {
            let n = left.min(FILLER - at);
            f.extend_from_slice(&self.filler[at..at + n]);
            left -= n;
            at = 0;
        }
        f
    }
}

/// Reads a synthetic frame's header.
pub fn read(frame: &[u8]) -> Result<Stamp, NotSynthetic> {
    let bad = NotSynthetic(frame.len());
    if frame.len() < HEADER || &frame[0..4] != MAGIC || frame[12] > 1 {
        return Err(bad);
    }
    let u64_at = |i: usize| u64::from_be_bytes(frame[i..i + 8].try_into().expect("8 bytes"));
    Ok(Stamp {
        sender: u64_at(4),
        video: frame[12] == 1,
        counter: u64_at(13),
        sent: Duration::from_micros(u64_at(21)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_says_who_sent_it_which_and_when_at_the_size_asked() {
        let mut m = Maker::new(42);
        let a = m.frame(false, 120, Duration::from_millis(5));
        let v0 = m.frame(true, 70_000, Duration::from_millis(7));
        let v1 = m.frame(true, 3, Duration::from_millis(9));
        assert_eq!((a.len(), v0.len(), v1.len()), (120, 70_000, HEADER));
        assert_eq!(
            read(&a),
            Ok(Stamp {
                sender: 42,
                video: false,
                counter: 0,
                sent: Duration::from_millis(5)
            })
        );
        let (s0, s1) = (read(&v0).unwrap(), read(&v1).unwrap());
        assert_eq!((s0.counter, s1.counter), (0, 1), "counters per kind");
        assert_ne!(
            a[HEADER..],
            v0[HEADER..120],
            "filler differs frame to frame"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(read(b"LTS1"), Err(NotSynthetic(4)));
        let mut f = Maker::new(1).frame(true, 100, Duration::ZERO);
        f[12] = 2;
        assert!(read(&f).is_err());
        f[12] = 1;
        f[0] = b'X';
        assert!(read(&f).is_err());
    }
}
