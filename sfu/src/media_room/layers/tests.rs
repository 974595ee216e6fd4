use media_packet::vp9::{Descriptor, Layers, Scalability};

use super::*;

/// A one-packet layer frame: spatial `s`, temporal `t`, a switching point if `u`, predicted
/// from an earlier picture if `p`.
fn frame(s: u8, t: u8, u: bool, p: bool) -> Descriptor {
    Descriptor {
        flexible: true,
        inter_picture: p,
        begins: true,
        ends: true,
        layers: Some(Layers {
            temporal: t,
            switching_up: u,
            spatial: s,
            inter_layer: s > 0,
            tl0_pic_idx: None,
        }),
        ..Descriptor::default()
    }
}

/// A picture of three spatial layers: key (every layer fresh, the scalability structure on
/// the first) or inter.
fn picture(t: u8, key: bool) -> Vec<Descriptor> {
    let mut p: Vec<Descriptor> = (0..3).map(|s| frame(s, t, true, !key)).collect();
    if key {
        p[0].scalability = Some(Scalability {
            spatial_layers: 3,
            resolutions: None,
            picture_group: None,
        });
    }
    p
}

/// What `sel` forwards of the pictures, as (spatial, temporal, marker) per forwarded frame.
fn run(sel: &mut LayerSelector, pictures: &[Vec<Descriptor>]) -> Vec<(u8, u8, bool)> {
    let mut out = Vec::new();
    for p in pictures {
        let last = p.len() - 1;
        for (i, d) in p.iter().enumerate() {
            if let Verdict::Forward { marker } = sel.next(d, i == last) {
                out.push((d.spatial(), d.temporal(), marker));
            }
        }
    }
    out
}

/// L3T3: temporal pattern 0, 2, 1, 2.
fn gop(key_first: bool) -> Vec<Vec<Descriptor>> {
    [0u8, 2, 1, 2]
        .iter()
        .enumerate()
        .map(|(i, &t)| picture(t, key_first && i == 0))
        .collect()
}

#[test]
fn nothing_before_the_first_key_frame_then_all_layers_up_to_the_target() {
    let mut sel = LayerSelector::new(Layer {
        spatial: 1,
        temporal: 1,
    });
    assert!(run(&mut sel, &gop(false)).is_empty());
    assert!(sel.take_keyframe_wish(), "asks for a key frame");
    let got = run(&mut sel, &gop(true));
    // T2 pictures left out; S2 left out; the marker on S1, the highest forwarded.
    assert_eq!(
        got,
        vec![(0, 0, false), (1, 0, true), (0, 1, false), (1, 1, true)]
    );
}

#[test]
fn down_at_the_next_picture_and_up_only_at_a_key_picture() {
    let mut sel = LayerSelector::new(Layer::ALL);
    run(&mut sel, &gop(true));
    assert_eq!(sel.current(), Some(Layer::ALL), "up to the target");
    sel.set_target(Some(Layer {
        spatial: 0,
        temporal: 0,
    }));
    let got = run(&mut sel, &gop(false));
    assert_eq!(got, vec![(0, 0, true)], "S0 T0 only, at once");
    sel.set_target(Some(Layer::ALL));
    // Inter pictures: temporal layers come back at their switching points, spatial ones
    // cannot (they are predicted from pictures the subscriber did not get).
    let got = run(&mut sel, &gop(false));
    assert_eq!(
        got,
        vec![(0, 0, true), (0, 2, true), (0, 1, true), (0, 2, true)]
    );
    assert!(sel.take_keyframe_wish());
    // A layer the publisher starts afresh in an inter picture (P=0 above S0) comes after its
    // S0 went out as the picture's end: not taken.
    let mut fresh = picture(0, false);
    fresh[1].inter_picture = false;
    assert_eq!(run(&mut sel, &[fresh]), vec![(0, 0, true)]);
    assert!(sel.take_keyframe_wish());
    let got = run(&mut sel, &gop(true));
    assert_eq!(got.len(), 12, "a key picture brings every layer back");
}

#[test]
fn a_temporal_layer_without_a_switching_point_waits_for_one() {
    let mut sel = LayerSelector::new(Layer {
        spatial: 0,
        temporal: 0,
    });
    run(&mut sel, &gop(true));
    sel.set_target(Some(Layer {
        spatial: 0,
        temporal: 2,
    }));
    let no_switch: Vec<Vec<Descriptor>> = [2u8, 1, 2]
        .iter()
        .map(|&t| vec![frame(0, t, false, true)])
        .collect();
    assert!(run(&mut sel, &no_switch).is_empty());
    assert_eq!(
        run(&mut sel, &[vec![frame(0, 1, true, true)]]),
        vec![(0, 1, true)]
    );
}

#[test]
fn a_paused_subscriber_gets_nothing_and_resumes_at_a_key_frame() {
    let mut sel = LayerSelector::new(Layer::ALL);
    run(&mut sel, &gop(true));
    sel.set_target(None);
    assert!(run(&mut sel, &gop(true)).is_empty());
    assert!(!sel.take_keyframe_wish(), "paused: no key frame wanted");
    sel.set_target(Some(Layer::ALL));
    assert!(run(&mut sel, &gop(false)).is_empty());
    assert!(sel.take_keyframe_wish());
    assert_eq!(run(&mut sel, &gop(true)).len(), 12);
}

#[test]
fn a_single_layer_stream_is_forwarded_whole_from_its_key_frame() {
    // Firefox: no layer indices.
    let plain = |p: bool| Descriptor {
        flexible: true,
        inter_picture: p,
        begins: true,
        ends: true,
        ..Descriptor::default()
    };
    let mut sel = LayerSelector::new(Layer {
        spatial: 0,
        temporal: 0,
    });
    assert_eq!(sel.next(&plain(true), true), Verdict::Drop);
    assert_eq!(
        sel.next(&plain(false), true),
        Verdict::Forward { marker: true }
    );
    assert_eq!(
        sel.next(&plain(true), true),
        Verdict::Forward { marker: true }
    );
}

#[test]
fn a_late_packet_follows_the_selection_without_moving_it() {
    let mut sel = LayerSelector::new(Layer {
        spatial: 0,
        temporal: 2,
    });
    run(&mut sel, &gop(true));
    assert_eq!(
        sel.late(&frame(0, 2, false, true), false),
        Verdict::Forward { marker: true }
    );
    assert_eq!(sel.late(&frame(1, 0, false, false), false), Verdict::Drop);
    assert_eq!(
        sel.current(),
        Some(Layer {
            spatial: 0,
            temporal: 2
        })
    );
}
