//! What each layer of a published video costs to forward: bits per second by spatial and
//! temporal layer, measured from the packets the publisher sends (their sizes and the layer
//! ids in their payload descriptors; the frames stay sealed).

use std::time::{Duration, Instant};

use super::super::layers::Layer;

/// Layer ids are 0-7 (three bits each in the descriptor).
const LAYERS: usize = 8;
/// What a packet costs on the wire beyond its payload: IPv4 and UDP headers, the RTP header
/// with its extensions, SRTP's authentication tag.
pub const PACKET_OVERHEAD: usize = 20 + 8 + 24 + 10;
/// Rates are taken over windows at least this long.
const WINDOW: Duration = Duration::from_millis(500);

/// One video's bit rate per layer.
#[derive(Debug, Clone, Default)]
pub struct LayerRates {
    /// Bytes of each (spatial, temporal) layer since `since`.
    bytes: [[u64; LAYERS]; LAYERS],
    since: Option<Instant>,
    /// Bits per second of each layer over the last windows (each the mean of the last and the
    /// one before, so one key picture does not double a layer's cost).
    rates: [[u64; LAYERS]; LAYERS],
    measured: bool,
}

impl LayerRates {
    /// A packet with `bytes` of payload in layer (`spatial`, `temporal`) arrived.
    pub fn add(&mut self, spatial: u8, temporal: u8, bytes: usize) {
        let (s, t) = (
            usize::from(spatial) % LAYERS,
            usize::from(temporal) % LAYERS,
        );
        self.bytes[s][t] += (bytes + PACKET_OVERHEAD) as u64;
    }

    /// Closes the window if it is long enough by `now`.
    pub fn roll(&mut self, now: Instant) {
        let Some(since) = self.since else {
            self.since = Some(now);
            return;
        };
        let elapsed = now.saturating_duration_since(since);
        if elapsed < WINDOW {
            return;
        }
        let micros = elapsed.as_micros().max(1) as u64;
        for (rates, bytes) in self.rates.iter_mut().zip(self.bytes.iter_mut()) {
            for (rate, b) in rates.iter_mut().zip(bytes.iter_mut()) {
                let now_rate = std::mem::take(b) * 8 * 1_000_000 / micros;
                *rate = if self.measured {
                    (*rate + now_rate) / 2
                } else {
                    now_rate
                };
            }
        }
        self.measured = true;
        self.since = Some(now);
    }

    /// Whether a window has closed (until then, nothing is known).
    pub fn measured(&self) -> bool {
        self.measured
    }

    /// Bits per second of everything `layer` includes.
    pub fn cost(&self, layer: Layer) -> u64 {
        let (s, t) = (usize::from(layer.spatial), usize::from(layer.temporal));
        self.rates
            .iter()
            .take(s + 1)
            .map(|r| r.iter().take(t + 1).sum::<u64>())
            .sum()
    }

    /// The highest spatial and temporal layer that carried anything.
    pub fn top(&self) -> Option<Layer> {
        let mut top: Option<Layer> = None;
        for (s, rates) in self.rates.iter().enumerate() {
            for (t, &rate) in rates.iter().enumerate() {
                if rate > 0 {
                    let l = top.get_or_insert_default();
                    l.spatial = l.spatial.max(s as u8);
                    l.temporal = l.temporal.max(t as u8);
                }
            }
        }
        top
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_costs_what_it_and_the_layers_below_it_carried() {
        let t0 = Instant::now();
        let mut r = LayerRates::default();
        r.roll(t0);
        for _ in 0..10 {
            r.add(0, 0, 1000 - PACKET_OVERHEAD);
            r.add(0, 1, 500 - PACKET_OVERHEAD);
            r.add(1, 0, 3000 - PACKET_OVERHEAD);
            r.add(1, 1, 1500 - PACKET_OVERHEAD);
        }
        assert!(!r.measured());
        r.roll(t0 + Duration::from_secs(1));
        assert!(r.measured());
        assert_eq!(
            r.cost(Layer {
                spatial: 0,
                temporal: 0
            }),
            80_000
        );
        assert_eq!(
            r.cost(Layer {
                spatial: 0,
                temporal: 7
            }),
            120_000
        );
        assert_eq!(
            r.cost(Layer {
                spatial: 1,
                temporal: 0
            }),
            320_000
        );
        assert_eq!(r.cost(Layer::ALL), 480_000);
        assert_eq!(
            r.top(),
            Some(Layer {
                spatial: 1,
                temporal: 1
            })
        );
    }

    #[test]
    fn a_window_is_averaged_with_the_one_before() {
        let t0 = Instant::now();
        let mut r = LayerRates::default();
        r.roll(t0);
        r.add(0, 0, 10_000 - PACKET_OVERHEAD);
        r.roll(t0 + Duration::from_secs(1));
        r.add(0, 0, 30_000 - PACKET_OVERHEAD);
        r.roll(t0 + Duration::from_millis(1100));
        assert_eq!(
            r.cost(Layer::ALL),
            80_000,
            "a window shorter than 500 ms is not closed"
        );
        r.roll(t0 + Duration::from_secs(2));
        assert_eq!(r.cost(Layer::ALL), (80_000 + 240_000) / 2);
    }
}
