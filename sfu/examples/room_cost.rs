//! What the sans-IO media room costs per forwarded packet, without sockets: N participants,
//! all publishing Opus (50 packets/s) and VP9 (75 packets/s of 1100 bytes), on the emulated
//! network with a fake clock. Only the time inside the room's `handle_input` counts (the
//! clients' own WebRTC work is excluded); next to it, in the same run, the AES-128-GCM seal of
//! one 1100-byte packet, the crypto a floor relay pays per forwarded packet too.
//!
//! ```sh
//! cargo run --release -p sfu --example room_cost [N ...]    # default: 4 8 20
//! ```

use std::time::{Duration, Instant};

use sfu::media_room::emulated::{CLEAN, World};

fn aes_gcm_ns() -> f64 {
    use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[7u8; 16]).unwrap());
    let (header, mut buf) = ([0x80u8; 12], vec![0xA5u8; 1100]);
    let n = 200_000u64;
    let start = Instant::now();
    for i in 0..n {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&i.to_be_bytes());
        let nonce = Nonce::assume_unique_for_key(nonce);
        let tag = key.seal_in_place_separate_tag(nonce, Aad::from(&header), &mut buf);
        let _ = std::hint::black_box(tag);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("participants: a number"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![4, 8, 20]
    } else {
        sizes
    };
    println!("AES-128-GCM, one 1100-byte packet: {:.0} ns", aes_gcm_ns());
    println!("participants | forwarded pkt/s (simulated) | room ns per forwarded packet");
    for n in sizes {
        let mut w = World::new(n, CLEAN);
        for pid in 1..=n {
            w.join(pid, true);
        }
        w.run(Duration::from_secs(2), true);
        let (t0, out0) = (w.room_time, w.room.counters().packets_out);
        let seconds = 3;
        w.run(Duration::from_secs(seconds), true);
        let forwarded = w.room.counters().packets_out - out0;
        let ns = (w.room_time - t0).as_nanos() as f64 / forwarded as f64;
        println!("{n:>12} | {:>27} | {ns:>8.0}", forwarded / seconds);
    }
}
