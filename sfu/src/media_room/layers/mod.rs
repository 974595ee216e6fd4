//! Which layers of a VP9 stream one subscriber gets, read from each packet's payload
//! descriptor (RFC 9628) and never from the frame, which is ciphertext. Whole-frame SFrame
//! seals each spatial layer's frame on its own (a publisher sending three spatial layers seals
//! three frames per picture), and the packetizer writes the descriptor after sealing, so the
//! layer structure is in the clear while every frame stays sealed.
//!
//! A subscriber has a target (the most it should get: set by its bandwidth and what it shows)
//! and a current selection. The selection goes down at the start of the next picture, and up
//! only where the receiver can decode from: a temporal layer at a switching-up point (U), a
//! spatial layer at a key picture; while a spatial layer it should get is sent but cannot be
//! taken, the room asks the publisher for a key frame. Nothing is forwarded before the
//! subscriber's first key frame, and nothing while it is paused.
//!
//! The forwarded layer frame that ends a picture carries the marker bit (end of picture), so
//! the highest spatial layer a picture will have must be known when its lower layers go out.
//! That is why a spatial layer is not taken where the publisher starts it afresh in an inter
//! picture (P=0 above S0), as Chromium does when its own bandwidth grows: the layer below has
//! gone out marked as the picture's end by then. The scalability structure of key pictures
//! says how many spatial layers the publisher sends.

use media_packet::vp9::Descriptor;

/// A spatial and a temporal layer (each 0-7): a selection includes every layer up to both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Layer {
    pub spatial: u8,
    pub temporal: u8,
}

impl Layer {
    /// Every layer a stream may have.
    pub const ALL: Layer = Layer {
        spatial: 7,
        temporal: 7,
    };

    fn includes(self, d: &Descriptor) -> bool {
        d.spatial() <= self.spatial && d.temporal() <= self.temporal
    }
}

/// What to do with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it, with this marker bit.
    Forward { marker: bool },
    /// Leave it out.
    Drop,
}

/// One subscriber's layers of one VP9 track.
#[derive(Debug, Clone)]
pub struct LayerSelector {
    /// The most it should get; `None`: paused.
    target: Option<Layer>,
    /// What it gets now; `None`: waiting for a key frame.
    current: Option<Layer>,
    /// The selection cannot go up to the target without a key frame from the publisher.
    wants_keyframe: bool,
    /// How many spatial layers the publisher sends, as its last scalability structure said.
    spatial_layers: Option<u8>,
}

impl Default for LayerSelector {
    fn default() -> Self {
        LayerSelector::new(Layer::ALL)
    }
}

impl LayerSelector {
    pub fn new(target: Layer) -> Self {
        LayerSelector {
            target: Some(target),
            current: None,
            wants_keyframe: false,
            spatial_layers: None,
        }
    }

    /// The most the subscriber should get from now on (`None`: nothing, paused).
    pub fn set_target(&mut self, target: Option<Layer>) {
        if target.is_none() {
            // Resuming starts at a key frame: the decoder missed what was left out.
            self.current = None;
        }
        self.target = target;
    }

    /// The copy starts again (in a section that carried another video): from a key picture.
    pub fn restart(&mut self) {
        self.current = None;
    }

    pub fn target(&self) -> Option<Layer> {
        self.target
    }

    /// What the subscriber gets now (`None`: nothing yet, or paused).
    pub fn current(&self) -> Option<Layer> {
        self.current
    }

    /// True (once) when a key frame from the publisher is needed to reach the target.
    pub fn take_keyframe_wish(&mut self) -> bool {
        std::mem::take(&mut self.wants_keyframe)
    }

    /// The verdict on the next packet in sequence order, with its descriptor and the marker
    /// bit the publisher set; it moves the selection.
    pub fn next(&mut self, d: &Descriptor, marker: bool) -> Verdict {
        let Some(target) = self.target else {
            return Verdict::Drop;
        };
        let picture_starts = d.begins && d.spatial() == 0;
        if let Some(ss) = &d.scalability {
            self.spatial_layers = Some(ss.spatial_layers);
        }
        if d.key_frame() {
            // Every layer restarts here (at any packet of the key frame: its first may come
            // late, repaired, and is then forwarded as a late packet).
            self.current = Some(target);
        }
        let Some(mut current) = self.current else {
            self.wants_keyframe = true;
            return Verdict::Drop;
        };
        if picture_starts {
            current.spatial = current.spatial.min(target.spatial);
            current.temporal = current.temporal.min(target.temporal);
        }
        if d.begins {
            let (s, t) = (d.spatial(), d.temporal());
            if t > current.temporal
                && t <= target.temporal
                && d.layers.is_some_and(|l| l.switching_up)
            {
                current.temporal = t;
            }
            if s > current.spatial && s <= target.spatial {
                // The layer is sent, but a key picture is needed to take it.
                self.wants_keyframe = true;
            }
        }
        self.current = Some(current);
        if current.includes(d) {
            Verdict::Forward {
                marker: marker || (d.ends && d.spatial() == self.top(current)),
            }
        } else {
            Verdict::Drop
        }
    }

    /// The highest spatial layer of a picture the subscriber gets with `current`.
    fn top(&self, current: Layer) -> u8 {
        self.spatial_layers
            .map_or(current.spatial, |n| current.spatial.min(n - 1))
    }

    /// The verdict on a packet older than one already decided (a retransmission or a
    /// reordered packet): forwarded if its layers are selected now; the selection stays.
    pub fn late(&self, d: &Descriptor, marker: bool) -> Verdict {
        match self.current {
            Some(current) if self.target.is_some() && current.includes(d) => Verdict::Forward {
                marker: marker || (d.ends && d.spatial() == self.top(current)),
            },
            _ => Verdict::Drop,
        }
    }
}

#[cfg(test)]
mod tests;
