//! One subscriber's bandwidth shared among the videos it shows, most important first: every
//! video first gets its lowest layer (a video the budget cannot start is paused), then each in
//! turn climbs as far as what is left allows, never above what its tile needs.
//!
//! The steps a video climbs are the lowest spatial layer at each of its frame rates (temporal
//! layers), then each spatial layer above it at the full frame rate: a small tile at a low
//! frame rate before a large one stutters.

use super::super::layers::Layer;
use super::rates::LayerRates;

/// One video a subscriber may get.
#[derive(Debug, Clone, Copy)]
pub struct Demand<'a> {
    /// The most its tile needs (`None`: not shown).
    pub wanted: Option<Layer>,
    /// What its layers cost.
    pub rates: &'a LayerRates,
}

/// What the budget allowed each video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The layers of each demand: `None` where a video gets nothing.
    pub targets: Vec<Option<Layer>>,
    /// Some video gets less than its tile wants.
    pub limited: bool,
}

/// The layers each of `demands` (most important first) gets within `budget` bits per second
/// (`None`: no estimate to go by, each gets what it wants).
pub fn allocate(budget: Option<u64>, demands: &[Demand<'_>]) -> Allocation {
    let Some(budget) = budget else {
        return Allocation {
            targets: demands.iter().map(|d| d.wanted).collect(),
            limited: false,
        };
    };
    let steps: Vec<Vec<(Layer, u64)>> = demands.iter().map(steps).collect();
    let mut left = budget;
    let mut chosen: Vec<Option<usize>> = vec![None; demands.len()];
    // Everyone starts, as far as the budget goes.
    for (c, s) in chosen.iter_mut().zip(&steps) {
        if let Some(&(_, cost)) = s.first()
            && cost <= left
        {
            left -= cost;
            *c = Some(0);
        }
    }
    // Then each climbs, in order.
    for (c, s) in chosen.iter_mut().zip(&steps) {
        let Some(at) = *c else { continue };
        let base = s[at].1;
        let top = s
            .iter()
            .rposition(|&(_, cost)| cost - base <= left)
            .unwrap_or(at);
        left -= s[top].1 - base;
        *c = Some(top);
    }
    let limited = chosen
        .iter()
        .zip(&steps)
        .any(|(c, s)| !s.is_empty() && *c != Some(s.len() - 1));
    Allocation {
        targets: chosen
            .iter()
            .zip(&steps)
            .map(|(c, s)| c.map(|i| s[i].0))
            .collect(),
        limited,
    }
}

/// The layers `d` may get, cheapest first, with their costs (ascending). A video whose costs
/// are not known yet has one step, what it wants, free: it is measured by the next round.
fn steps(d: &Demand<'_>) -> Vec<(Layer, u64)> {
    let Some(wanted) = d.wanted else {
        return Vec::new();
    };
    let top = match d.rates.top() {
        Some(top) if d.rates.measured() => top,
        _ => return vec![(wanted, 0)],
    };
    let spatial = wanted.spatial.min(top.spatial);
    let temporal = wanted.temporal.min(top.temporal);
    // At the full frame rate, every temporal layer the tile wants (one the publisher adds
    // later included).
    let full = |t: u8| if t == temporal { wanted.temporal } else { t };
    let mut steps: Vec<(Layer, u64)> = (0..=temporal)
        .map(|t| {
            (
                Layer {
                    spatial: 0,
                    temporal: full(t),
                },
                t,
            )
        })
        .chain((1..=spatial).map(|s| {
            (
                Layer {
                    spatial: s,
                    temporal: wanted.temporal,
                },
                temporal,
            )
        }))
        .map(|(l, t)| {
            (
                l,
                d.rates.cost(Layer {
                    spatial: l.spatial,
                    temporal: t,
                }),
            )
        })
        .collect();
    // The top step is what the tile wants: a layer the publisher adds later (as its own
    // bandwidth grows) is taken once it is there, and measured the next round.
    if let Some(last) = steps.last_mut()
        && last.0.spatial == top.spatial
    {
        last.0 = wanted;
    }
    steps
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// A video of two spatial layers at three frame rates (S0: 40+20+20 kbps, S1: 160+80+80).
    fn svc() -> LayerRates {
        let t0 = Instant::now();
        let mut r = LayerRates::default();
        r.roll(t0);
        for (s, t, kbit) in [
            (0, 0, 40),
            (0, 1, 20),
            (0, 2, 20),
            (1, 0, 160),
            (1, 1, 80),
            (1, 2, 80),
        ] {
            r.add(s, t, kbit * 1000 / 8 - super::super::rates::PACKET_OVERHEAD);
        }
        r.roll(t0 + Duration::from_secs(1));
        r
    }

    const S0: Layer = Layer {
        spatial: 0,
        temporal: 7,
    };
    const S0T0: Layer = Layer {
        spatial: 0,
        temporal: 0,
    };

    #[test]
    fn enough_for_everything_gives_each_what_it_wants() {
        let r = svc();
        let d = [
            Demand {
                wanted: Some(Layer::ALL),
                rates: &r,
            },
            Demand {
                wanted: Some(S0),
                rates: &r,
            },
        ];
        assert_eq!(
            allocate(Some(10_000_000), &d).targets,
            vec![Some(Layer::ALL), Some(S0)]
        );
        assert_eq!(
            allocate(None, &d).targets,
            vec![Some(Layer::ALL), Some(S0)],
            "no estimate"
        );
    }

    #[test]
    fn a_video_not_shown_gets_nothing_and_costs_nothing() {
        let r = svc();
        let d = [
            Demand {
                wanted: None,
                rates: &r,
            },
            Demand {
                wanted: Some(Layer::ALL),
                rates: &r,
            },
        ];
        assert_eq!(
            allocate(Some(400_000), &d).targets,
            vec![None, Some(Layer::ALL)]
        );
    }

    #[test]
    fn the_first_climbs_first_and_the_rest_keep_their_lowest_layer() {
        let r = svc();
        let d = [Demand {
            wanted: Some(Layer::ALL),
            rates: &r,
        }; 3];
        // 3 × 40 kbps to start, 280 left: S1 would cost the first 360 more, so each climbs
        // to S0 at its full frame rate (40 more each).
        assert_eq!(
            allocate(Some(400_000), &d).targets,
            vec![Some(S0), Some(S0), Some(S0)]
        );
        let big = allocate(Some(560_000), &d).targets;
        assert_eq!(big[0], Some(Layer::ALL), "80 + 320 + 40 + 40 ≤ 560 kbps");
        assert_eq!(big[1..], [Some(S0), Some(S0)]);
    }

    #[test]
    fn what_the_budget_cannot_start_is_paused_last_first() {
        let r = svc();
        let d = [Demand {
            wanted: Some(Layer::ALL),
            rates: &r,
        }; 3];
        assert_eq!(
            allocate(Some(90_000), &d).targets,
            vec![Some(S0T0), Some(S0T0), None]
        );
        assert_eq!(allocate(Some(10_000), &d).targets, vec![None, None, None]);
        assert!(allocate(Some(10_000), &d).limited);
        assert!(!allocate(Some(10_000_000), &d).limited);
    }

    #[test]
    fn a_video_not_measured_yet_gets_what_it_wants() {
        let r = LayerRates::default();
        let d = [Demand {
            wanted: Some(Layer::ALL),
            rates: &r,
        }];
        assert_eq!(allocate(Some(1), &d).targets, vec![Some(Layer::ALL)]);
    }

    #[test]
    fn a_small_tile_never_gets_more_than_it_needs() {
        let r = svc();
        let d = [Demand {
            wanted: Some(S0),
            rates: &r,
        }];
        assert_eq!(allocate(Some(10_000_000), &d).targets, vec![Some(S0)]);
    }
}
