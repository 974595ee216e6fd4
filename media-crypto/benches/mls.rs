//! MLS: the time to add one member to groups of 10, 100 and 1000 members (commit and merge on
//! the committer's side), and to process that commit on another member's side.
//!
//! cargo bench -p media-crypto --bench mls

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use media_crypto::mls::{MlsSession, SessionConfig};

const T0: Duration = Duration::ZERO;

fn member(name: String) -> MlsSession {
    MlsSession::new(name, SessionConfig::default()).expect("session")
}

/// A group of `size`: alice (the committer), bob (a receiver) and `size - 2` others who were
/// added but never process anything (their state does not matter to alice's or bob's cost).
fn group_of(size: usize) -> (MlsSession, MlsSession) {
    let mut alice = member("alice".into());
    alice.create_group(b"bench", T0).expect("create");
    let mut bob = member("bob".into());
    let mut kps = vec![bob.key_package().expect("kp")];
    for i in 2..size {
        kps.push(member(format!("m{i}")).key_package().expect("kp"));
    }
    let out = alice.commit(&kps, &[]).expect("commit");
    alice.confirm_pending_commit(T0).expect("confirm");
    bob.join_from_welcome(&out.welcome.expect("welcome"), T0)
        .expect("join");
    (alice, bob)
}

fn add_one(c: &mut Criterion) {
    let mut g = c.benchmark_group("mls-add-one");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    for size in [10, 100, 1000] {
        let (mut alice, mut bob) = group_of(size);
        let mut joiner = 0;
        // Each iteration adds a new member (alice commits and merges, bob processes: timed),
        // then removes it again (untimed), so the group keeps its size however many
        // iterations criterion runs.
        let mut step = |alice: &mut MlsSession, bob: &mut MlsSession| {
            joiner += 1;
            let kp = member(format!("j{joiner}")).key_package().expect("kp");
            let t = Instant::now();
            let out = alice.commit(&[kp], &[]).expect("commit");
            let change = alice.confirm_pending_commit(T0).expect("confirm");
            let commit_time = t.elapsed();
            let t = Instant::now();
            bob.process(&out.commit, T0).expect("process");
            let process_time = t.elapsed();
            let out = alice.commit(&[], &[change.added[0].leaf]).expect("remove");
            alice.confirm_pending_commit(T0).expect("confirm");
            bob.process(&out.commit, T0).expect("process");
            assert_eq!(alice.roster().len(), size);
            (commit_time, process_time)
        };
        g.bench_function(BenchmarkId::new("commit", size), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| step(&mut alice, &mut bob).0).sum())
        });
        g.bench_function(BenchmarkId::new("process", size), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| step(&mut alice, &mut bob).1).sum())
        });
    }
    g.finish();
}

criterion_group!(benches, add_one);
criterion_main!(benches);
