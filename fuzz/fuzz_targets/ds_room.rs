//! Random sequences of operations against the delivery service (signaling-model): joins,
//! leaves, drops, silent participants, tampered commits, garbage, time. After every step: one
//! epoch sequence, no fork, no member the queue did not add. At the end: no stall once
//! everyone behaves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signaling_model::{Op, Simulation};

fuzz_target!(|data: &[u8]| {
    if data.len() > 3 * 48 {
        return;
    }
    let mut sim = Simulation::new();
    for chunk in data.chunks_exact(3) {
        sim.step(Op::from_bytes([chunk[0], chunk[1], chunk[2]]));
        sim.check();
    }
    sim.settle();
});
