use proptest::prelude::*;

use super::*;

fn read(bytes: &[u8]) -> Result<(bool, bool, usize), DescriptorError> {
    Descriptor::read(bytes).map(|(d, at)| (d.begins, d.ends, at))
}

#[test]
fn chromium_inter_frames_in_flexible_mode_are_read_packet_after_packet() {
    // A frame of three packets as Chromium 148 sent it (I, P, F, 15-bit picture ID, P_DIFF
    // 1), then the next frame: the reference indices of one packet are not the next one's.
    for _ in 0..10 {
        assert_eq!(read(&[0xd9, 0xac, 0x31, 0x02, 0x98]), Ok((true, false, 4)));
        assert_eq!(read(&[0xd1, 0xac, 0x31, 0x02, 0x64]), Ok((false, false, 4)));
        assert_eq!(read(&[0xd5, 0xac, 0x31, 0x02, 0xbe]), Ok((false, true, 4)));
        // A one-packet frame (B and E).
        assert_eq!(read(&[0xdd, 0xa5, 0xfe, 0x02, 0x28]), Ok((true, true, 4)));
    }
    let (d, _) = Descriptor::read(&[0xd9, 0xac, 0x31, 0x02, 0x98]).unwrap();
    assert_eq!(d.picture_id, Some(PictureId::Long(0x2c31)));
    assert_eq!(d.references.as_slice(), &[1]);
    assert!(d.inter_picture && d.flexible && d.not_upper_reference);
}

#[test]
fn svc_layer_indices_and_switching_points_are_read() {
    // Chromium's L3T3_KEY, flexible: S1 of an inter picture in T2, a switching point,
    // depending on S0 (D), one reference.
    let (d, at) = Descriptor::read(&[0xf8, 0x80, 0x07, 0x53, 0x02, 0xaa]).unwrap();
    assert_eq!(at, 5);
    assert_eq!(
        d.layers,
        Some(Layers {
            temporal: 2,
            switching_up: true,
            spatial: 1,
            inter_layer: true,
            tl0_pic_idx: None,
        })
    );
    assert!(!d.key_frame());
    // S0 of a key picture: no P.
    let (d, _) = Descriptor::read(&[0xb8, 0x80, 0x08, 0x00, 0xaa]).unwrap();
    assert!(d.key_frame());
    // S1 of the same picture is no key frame, though not inter-picture predicted.
    let (d, _) = Descriptor::read(&[0xb8, 0x80, 0x08, 0x03, 0xaa]).unwrap();
    assert!(!d.key_frame() && !d.inter_picture && d.spatial() == 1);
}

#[test]
fn up_to_three_reference_indices_are_read_and_a_fourth_refused() {
    assert_eq!(
        read(&[0xd8, 0x05, 0x03, 0x05, 0x06, 0xff]),
        Ok((true, false, 5))
    );
    assert_eq!(
        read(&[0xd8, 0x05, 0x03, 0x05, 0x07, 0x09, 0xff]),
        Err(DescriptorError::TooManyReferences)
    );
}

#[test]
fn layer_indices_take_a_byte_more_in_non_flexible_mode() {
    // I (7-bit picture ID), L, B: layer byte and TL0PICIDX.
    assert_eq!(read(&[0xa8, 0x11, 0x20, 0x07, 0xaa]), Ok((true, false, 4)));
    // The same in flexible mode without references: the layer byte only.
    assert_eq!(read(&[0xb8, 0x11, 0x20, 0xaa]), Ok((true, false, 3)));
}

#[test]
fn a_key_frame_scalability_structure_is_read() {
    // I, B, E, V; SS: one layer (N_S 0) with its size (Y) and a picture group (G) of two
    // pictures, the second with one reference.
    let packet = [
        0x8e, 0x42, // I, B, E, V; picture ID 0x42
        0x18, // N_S 0, Y, G
        0x02, 0x80, 0x01, 0xe0, // 640 x 480
        0x02, // N_G 2
        0x00, // T0, no references
        0x24, 0x01, // T1, one reference: P_DIFF 1
        0xaa, // the payload
    ];
    assert_eq!(read(&packet), Ok((true, true, 11)));
    let (d, _) = Descriptor::read(&packet).unwrap();
    let ss = d.scalability.unwrap();
    assert_eq!(ss.spatial_layers, 1);
    assert_eq!(ss.resolutions, Some(vec![(640, 480)]));
    let group = ss.picture_group.unwrap();
    assert_eq!(group[1].temporal, 1);
    assert_eq!(group[1].references.as_slice(), &[1]);
    assert_eq!(read(&packet[..9]), Err(DescriptorError::Truncated));
}

#[test]
fn a_short_or_empty_descriptor_is_an_error_not_a_panic() {
    for bytes in [
        &[][..],
        &[0x80],
        &[0x80, 0x80],
        &[0x20],
        &[0x50],
        &[0x02],
        &[0x02, 0x10, 0],
    ] {
        assert_eq!(read(bytes), Err(DescriptorError::Truncated), "{bytes:02x?}");
    }
}

#[test]
fn what_cannot_be_written_is_refused() {
    let mut out = Vec::new();
    let bad = [
        Descriptor {
            picture_id: Some(PictureId::Short(0x80)),
            ..Default::default()
        },
        Descriptor {
            flexible: true,
            inter_picture: true,
            ..Default::default()
        },
        Descriptor {
            layers: Some(Layers {
                spatial: 8,
                ..Default::default()
            }),
            flexible: true,
            ..Default::default()
        },
        Descriptor {
            layers: Some(Layers::default()),
            flexible: false,
            ..Default::default()
        },
    ];
    for d in bad {
        assert!(
            matches!(d.write(&mut out), Err(DescriptorError::OutOfRange(_))),
            "{d:?}"
        );
    }
    assert_eq!(
        References::new(&[1, 2, 3, 4]),
        Err(DescriptorError::TooManyReferences)
    );
    assert!(References::new(&[0]).is_err());
}

#[test]
fn a_frame_is_cut_with_b_on_the_first_packet_e_on_the_last_and_the_structure_once() {
    let layer = Descriptor {
        picture_id: Some(PictureId::Long(7)),
        flexible: true,
        layers: Some(Layers::default()),
        scalability: Some(Scalability {
            spatial_layers: 3,
            resolutions: Some(vec![(320, 180), (640, 360), (1280, 720)]),
            picture_group: None,
        }),
        ..Default::default()
    };
    let frame: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
    let packets = packetize(&layer, &frame, 1200).unwrap();
    assert_eq!(packets.len(), 3);
    let mut joined = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        assert!(p.len() <= 1200);
        let (d, at) = Descriptor::read(p).unwrap();
        assert_eq!(d.begins, i == 0);
        assert_eq!(d.ends, i == 2);
        assert_eq!(d.scalability.is_some(), i == 0);
        assert_eq!(d.picture_id, Some(PictureId::Long(7)));
        joined.extend_from_slice(&p[at..]);
    }
    assert_eq!(joined, frame);
    assert_eq!(
        packetize(&layer, &[], 1200),
        Err(DescriptorError::NoPayload)
    );
    assert!(packetize(&layer, &frame, 4).is_err());
}

fn references() -> impl Strategy<Value = References> {
    prop::collection::vec(1u8..=127, 0..=3).prop_map(|d| References::new(&d).unwrap())
}

fn descriptor() -> impl Strategy<Value = Descriptor> {
    let picture = prop_oneof![
        Just(None),
        (0u8..=0x7f).prop_map(|v| Some(PictureId::Short(v))),
        (0u16..=0x7fff).prop_map(|v| Some(PictureId::Long(v))),
    ];
    let group = prop::collection::vec(
        (0u8..8, any::<bool>(), references()).prop_map(|(temporal, switching_up, references)| {
            GroupPicture {
                temporal,
                switching_up,
                references,
            }
        }),
        0..6,
    );
    let scalability = (1u8..=8, any::<bool>(), prop::option::of(group)).prop_map(
        |(spatial_layers, sized, picture_group)| Scalability {
            spatial_layers,
            resolutions: sized.then(|| (0..spatial_layers).map(|s| (320 << s, 180 << s)).collect()),
            picture_group,
        },
    );
    (
        picture,
        any::<(bool, bool, bool, bool, bool)>(),
        prop::option::of((0u8..8, any::<bool>(), 0u8..8, any::<bool>(), any::<u8>())),
        references(),
        prop::option::of(scalability),
    )
        .prop_map(|(picture_id, (p, f, b, e, z), layers, refs, scalability)| {
            let inter_picture = p && (!f || !refs.is_empty());
            Descriptor {
                picture_id,
                inter_picture,
                flexible: f,
                begins: b,
                ends: e,
                layers: layers.map(
                    |(temporal, switching_up, spatial, inter_layer, idx)| Layers {
                        temporal,
                        switching_up,
                        spatial,
                        inter_layer,
                        tl0_pic_idx: (!f).then_some(idx),
                    },
                ),
                references: if f && inter_picture {
                    refs
                } else {
                    References::default()
                },
                not_upper_reference: z,
                scalability,
            }
        })
}

proptest! {
    #[test]
    fn every_descriptor_written_reads_back_the_same(d in descriptor(), payload in prop::collection::vec(any::<u8>(), 0..4)) {
        let mut bytes = Vec::new();
        d.write(&mut bytes).unwrap();
        let len = bytes.len();
        bytes.extend_from_slice(&payload);
        prop_assert_eq!(Descriptor::read(&bytes), Ok((d, len)));
    }

    #[test]
    fn any_bytes_read_as_a_descriptor_or_a_typed_error(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok((d, at)) = Descriptor::read(&bytes) {
            prop_assert!(at <= bytes.len());
            // What was read can be written, and reads back the same (reserved bits aside).
            let mut again = Vec::new();
            d.write(&mut again).unwrap();
            let len = again.len();
            prop_assert_eq!(Descriptor::read(&again), Ok((d, len)));
        }
    }
}
