//! Raft and ZAB side by side: each group has a `raft` and a `zab` function on identical input.
//! `cargo bench -p benches`; results and the machine are recorded in docs/benchmarks.md.

use bytes::Bytes;
use consensus_core::ReadLevel;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use harness::protocol::{RAFT, ZAB};
use harness::run::{self, RunConfig};
use harness::{Faults, Protocol};
use std::time::Duration;

const PROTOCOLS: [Protocol; 2] = [RAFT, ZAB];

fn propose_to_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("propose_to_commit_3_nodes");
    let batch = 10_000u64;
    g.throughput(Throughput::Elements(batch));
    let payload = Bytes::from(vec![7u8; 64]);
    for outstanding in [1u64, 64] {
        g.bench_with_input(
            BenchmarkId::new("raft", outstanding),
            &outstanding,
            |b, &k| {
                let mut d = benches::raft(3);
                b.iter(|| d.commit(batch, k, &payload));
            },
        );
        g.bench_with_input(
            BenchmarkId::new("zab", outstanding),
            &outstanding,
            |b, &k| {
                let mut d = benches::zab(3);
                b.iter(|| d.commit(batch, k, &payload));
            },
        );
    }
    g.finish();
}

/// Reads at a read index, 3 cores in one process: Raft's ReadIndex (a confirming round per
/// batch), Raft's lease (no round while the lease holds: the clock does not move here), ZAB's
/// sync at the leader (its last proposal, no round). Local reads and reads through the log
/// have no core cost of their own (the second is `propose_to_commit`).
fn read_index(c: &mut Criterion) {
    let mut g = c.benchmark_group("read_index_3_nodes");
    let batch = 10_000u64;
    g.throughput(Throughput::Elements(batch));
    for outstanding in [1u64, 64] {
        g.bench_with_input(
            BenchmarkId::new("raft_index", outstanding),
            &outstanding,
            |b, &k| {
                let mut d = benches::raft(3);
                d.run_for(Duration::from_millis(100));
                b.iter(|| assert_eq!(d.read_indexes(batch, k, ReadLevel::Index), 0));
            },
        );
        g.bench_with_input(
            BenchmarkId::new("raft_lease", outstanding),
            &outstanding,
            |b, &k| {
                let mut d = benches::raft_with_leases(3);
                b.iter(|| assert_eq!(d.read_indexes(batch, k, ReadLevel::Lease), 0));
            },
        );
        g.bench_with_input(
            BenchmarkId::new("zab_sync", outstanding),
            &outstanding,
            |b, &k| {
                let mut d = benches::zab(3);
                b.iter(|| assert_eq!(d.read_indexes(batch, k, ReadLevel::Index), 0));
            },
        );
    }
    g.finish();
}

fn simulated_run(c: &mut Criterion) {
    let mut g = c.benchmark_group("simulated_run_10000_ops");
    g.sample_size(10);
    for nodes in [3usize, 5] {
        for kind in PROTOCOLS {
            g.bench_with_input(BenchmarkId::new(kind.name(), nodes), &nodes, |b, &n| {
                let cfg = RunConfig {
                    protocol: kind,
                    nodes: n,
                    ops: 10_000,
                    faults: Faults::None,
                    ..RunConfig::default()
                };
                b.iter(|| {
                    let r = run::run(&cfg, None);
                    assert!(r.passed());
                    r.sim_events
                });
            });
        }
    }
    g.finish();
}

fn election_after_leader_crash(c: &mut Criterion) {
    // Wall time of simulating one election; the virtual time it took is what matters to a
    // reader, so it is printed alongside (mean and max over 20 seeds).
    for kind in PROTOCOLS {
        let times: Vec<Duration> = (1..=20)
            .map(|s| benches::election_after_crash(kind, s))
            .collect();
        let mean = times.iter().sum::<Duration>() / times.len() as u32;
        let max = times.iter().max().copied().unwrap_or_default();
        println!(
            "election_after_leader_crash/{}: virtual time to a new leader over 20 seeds: mean {:.1} ms, max {:.1} ms",
            kind.name(),
            mean.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    }
    let mut g = c.benchmark_group("election_after_leader_crash");
    g.sample_size(20);
    for kind in PROTOCOLS {
        g.bench_function(kind.name(), |b| {
            let mut seed = 0;
            b.iter(|| {
                seed += 1;
                benches::election_after_crash(kind, seed)
            });
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    propose_to_commit,
    read_index,
    simulated_run,
    election_after_leader_crash
);
criterion_main!(benches);
