//! The bots' pre-encoded test media, kept in the repo (`loadtest/media`): four seconds of a
//! moving VP9 test pattern (320x240, 30 fps, ~300 kbps, a key frame every second), the same in
//! three spatial and three temporal layers (640x360 at the top, ~610 kbps in all), and Opus
//! (20 ms frames, mono), generated once with ffmpeg and libvpx (see `media/README.md`). A
//! browser decodes them all, so a bot shows in a browser meeting as a moving test pattern.
//!
//! The layered video's format (`svc-encode.c` writes it), big-endian: "SVC1", width and
//! height (u16 each), spatial and temporal layer counts (u8 each), frames per second (u16);
//! then one record per layer frame, in sending order: picture number (u32), spatial layer,
//! temporal layer, flags (bit 0: a key picture), a zero byte, the layer's width and height
//! (u16 each), its length (u32) and its bytes.

use std::io::Cursor;
use std::time::Duration;

use bytes::Bytes;
use rtc::media::io::ivf_reader::IVFReader;
use rtc::media::io::ogg_reader::OggReader;

const VIDEO: &[u8] = include_bytes!("../media/bot-vp9.ivf");
const AUDIO: &[u8] = include_bytes!("../media/bot-opus.ogg");
const LAYERED: &[u8] = include_bytes!("../media/bot-vp9-svc.bin");

/// One encoded video frame.
#[derive(Debug, Clone)]
pub struct VideoFrame {
    pub data: Bytes,
    pub keyframe: bool,
}

/// One spatial layer's frame of a layered picture.
#[derive(Debug, Clone)]
pub struct LayerFrame {
    pub spatial: u8,
    pub temporal: u8,
    pub width: u16,
    pub height: u16,
    pub data: Bytes,
}

/// A layered picture: its layers' frames, lowest first.
#[derive(Debug, Clone)]
pub struct Picture {
    pub key: bool,
    pub layers: Vec<LayerFrame>,
}

/// The frames the bots loop over.
#[derive(Debug)]
pub struct TestMedia {
    pub video: Vec<VideoFrame>,
    /// The video in layers (VP9 K-SVC): pictures of three spatial layers each.
    pub layered: Vec<Picture>,
    pub spatial_layers: u8,
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
        let (spatial_layers, layered) = read_layered(LAYERED)?;
        Ok(TestMedia {
            video,
            layered,
            spatial_layers,
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

/// Reads the layered video (the format in the module's notes).
fn read_layered(bytes: &[u8]) -> Result<(u8, Vec<Picture>), MediaError> {
    fn bad(what: &str) -> MediaError {
        MediaError(format!("layered video: {what}"))
    }
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], MediaError> {
        if rest.len() < n {
            return Err(bad("ends early"));
        }
        let (b, r) = rest.split_at(n);
        *rest = r;
        Ok(b)
    }
    let mut rest = bytes;
    if take(&mut rest, 4)? != b"SVC1" {
        return Err(bad("not SVC1"));
    }
    let head = take(&mut rest, 8)?;
    let spatial_layers = head[4];
    let mut pictures: Vec<Picture> = Vec::new();
    let mut number = None;
    while !rest.is_empty() {
        let r = take(&mut rest, 16)?;
        let picture = u32::from_be_bytes([r[0], r[1], r[2], r[3]]);
        let (spatial, temporal, key) = (r[4], r[5], r[6] & 1 != 0);
        let width = u16::from_be_bytes([r[8], r[9]]);
        let height = u16::from_be_bytes([r[10], r[11]]);
        let len = u32::from_be_bytes([r[12], r[13], r[14], r[15]]) as usize;
        let data = Bytes::copy_from_slice(take(&mut rest, len)?);
        if number != Some(picture) {
            number = Some(picture);
            pictures.push(Picture {
                key,
                layers: Vec::new(),
            });
        }
        let p = pictures.last_mut().ok_or_else(|| bad("no picture"))?;
        if p.layers.last().is_some_and(|l| l.spatial >= spatial) || spatial >= spatial_layers {
            return Err(bad("spatial layers out of order"));
        }
        p.layers.push(LayerFrame {
            spatial,
            temporal,
            width,
            height,
            data,
        });
    }
    if !pictures.first().is_some_and(|p| p.key) {
        return Err(bad("not starting at a key picture"));
    }
    Ok((spatial_layers, pictures))
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
        // The layered video: the same four seconds in three spatial layers, 0-2-1-2.
        assert_eq!(m.layered.len(), 120);
        assert_eq!(m.spatial_layers, 3);
        let keys: Vec<usize> = (0..120).filter(|&i| m.layered[i].key).collect();
        assert_eq!(keys, vec![0, 30, 60, 90]);
        let temporal: Vec<u8> = m.layered[..4]
            .iter()
            .map(|p| p.layers[0].temporal)
            .collect();
        assert_eq!(temporal, vec![0, 2, 1, 2]);
        let sizes: Vec<(u16, u16)> = m.layered[0]
            .layers
            .iter()
            .map(|l| (l.width, l.height))
            .collect();
        assert_eq!(sizes, vec![(160, 90), (320, 180), (640, 360)]);
        assert!(m.layered.iter().all(|p| p.layers.len() == 3));
        // An Opus TOC byte for 20 ms SILK/CELT/hybrid frames.
        assert!(m.audio.iter().all(|f| !f.is_empty() && f.len() < 400));
    }
}
