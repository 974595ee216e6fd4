//! The bots' pre-encoded test media, kept in the repo (`loadtest/media`): four seconds of a
//! moving VP9 test pattern (320x240, 30 fps, ~300 kbps, a key frame every second) and of
//! Opus (20 ms frames, mono), generated once with ffmpeg (see `media/README.md`). A browser
//! decodes both, so a bot shows in a browser meeting as a moving test pattern.

use std::io::Cursor;
use std::time::Duration;

use bytes::Bytes;
use rtc::media::io::ivf_reader::IVFReader;
use rtc::media::io::ogg_reader::OggReader;

const VIDEO: &[u8] = include_bytes!("../media/bot-vp9.ivf");
const AUDIO: &[u8] = include_bytes!("../media/bot-opus.ogg");

/// One encoded video frame.
#[derive(Debug, Clone)]
pub struct VideoFrame {
    pub data: Bytes,
    pub keyframe: bool,
}

/// The frames the bots loop over.
#[derive(Debug)]
pub struct TestMedia {
    pub video: Vec<VideoFrame>,
    pub video_interval: Duration,
    pub audio: Vec<Bytes>,
    pub audio_interval: Duration,
}

/// The media files cannot be read (a broken checkout).
#[derive(Debug, thiserror::Error)]
#[error("test media: {0}")]
pub struct MediaError(String);

/// VP9 uncompressed header (profile 0-2): frame marker, profile bits, show-existing-frame,
/// then frame type (0 = key frame).
fn is_vp9_keyframe(frame: &[u8]) -> bool {
    frame
        .first()
        .is_some_and(|&b| b >> 6 == 0b10 && b & 0x08 == 0 && b & 0x04 == 0)
}

impl TestMedia {
    pub fn load() -> Result<Self, MediaError> {
        let err = |e: &dyn std::fmt::Display| MediaError(e.to_string());
        let (mut ivf, header) = IVFReader::new(Cursor::new(VIDEO)).map_err(|e| err(&e))?;
        let mut video = Vec::new();
        while let Ok((frame, _)) = ivf.parse_next_frame() {
            let data = frame.freeze();
            video.push(VideoFrame {
                keyframe: is_vp9_keyframe(&data),
                data,
            });
        }
        let fps = f64::from(header.timebase_denominator) / f64::from(header.timebase_numerator);
        let (mut ogg, _) = OggReader::new(Cursor::new(AUDIO), true).map_err(|e| err(&e))?;
        let mut audio = Vec::new();
        while let Ok((page, page_header)) = ogg.parse_next_page() {
            // Skip the OpusTags page (the OpusHead page was read by `new`).
            if page_header.granule_position == 0 {
                continue;
            }
            audio.push(page.freeze());
        }
        if video.is_empty() || audio.is_empty() || !video[0].keyframe {
            return Err(MediaError(
                "no frames, or video not starting at a key frame".into(),
            ));
        }
        Ok(TestMedia {
            video,
            video_interval: Duration::from_secs_f64(1.0 / fps),
            audio,
            audio_interval: Duration::from_millis(20),
        })
    }

    /// The video's bit rate, in kbit/s.
    pub fn video_kbps(&self) -> f64 {
        let bytes: usize = self.video.iter().map(|f| f.data.len()).sum();
        let seconds = self.video.len() as f64 * self.video_interval.as_secs_f64();
        bytes as f64 * 8.0 / seconds / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_media_is_four_seconds_of_vp9_and_opus() {
        let m = TestMedia::load().expect("media");
        assert_eq!(m.video.len(), 120, "30 fps for 4 s");
        assert_eq!(m.video_interval, Duration::from_secs_f64(1.0 / 30.0));
        let keyframes: Vec<usize> = (0..m.video.len())
            .filter(|&i| m.video[i].keyframe)
            .collect();
        assert_eq!(keyframes, vec![0, 30, 60, 90], "a key frame every second");
        assert!(
            (200.0..400.0).contains(&m.video_kbps()),
            "{} kbps",
            m.video_kbps()
        );
        assert!(
            (195..=201).contains(&m.audio.len()),
            "{} Opus frames",
            m.audio.len()
        );
        // An Opus TOC byte for 20 ms SILK/CELT/hybrid frames.
        assert!(m.audio.iter().all(|f| !f.is_empty() && f.len() < 400));
    }
}
