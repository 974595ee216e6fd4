//! The short version of the fuzzer's operation sequences (fuzz/fuzz_targets/ds_room.rs): a few
//! random sequences of joins, leaves, drops, silences, tampered commits, garbage and time,
//! against the real room and participants, with the invariants checked after every step and
//! no stall at the end.

use proptest::prelude::*;
use signaling_model::{Op, Simulation};

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_keeps_one_epoch_sequence_no_ghost_and_no_stall(
        ops in proptest::collection::vec(any::<[u8; 3]>(), 10..40)
    ) {
        let mut sim = Simulation::new();
        for b in ops {
            sim.step(Op::from_bytes(b));
            sim.check();
        }
        sim.settle();
    }
}

#[test]
fn tampered_commits_and_a_broken_member_are_survived() {
    use signaling_model::Tamper;
    let mut sim = Simulation::new();
    for op in [
        Op::Join,
        Op::DeliverAll,
        Op::Join,
        Op::Tamper(0, Tamper::ZeroSignature),
        Op::DeliverAll,
        Op::Join,
        Op::Tamper(0, Tamper::LieAdded),
        Op::DeliverAll,
        Op::BreakNextCommit(1),
        Op::Join,
        Op::DeliverAll,
        Op::ToggleSilent(0),
        Op::Join,
        Op::DeliverAll,
    ] {
        sim.step(op);
        sim.check();
    }
    sim.settle();
    assert!(sim.refusals > 0, "the tampered commits were refused");
    assert!(sim.accepted > 0);
}
