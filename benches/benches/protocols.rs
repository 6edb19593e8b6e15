//! Protocol benchmarks: the in-process propose-to-commit path and whole simulated runs.
//! `cargo bench -p benches`; results and the machine are recorded in docs/benchmarks.md.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use harness::run::{self, RunConfig};
use harness::{Faults, ProtocolKind};

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
    }
    g.finish();
}

fn simulated_run(c: &mut Criterion) {
    let mut g = c.benchmark_group("simulated_run_2000_ops");
    g.sample_size(10);
    for nodes in [3usize, 5] {
        g.bench_with_input(BenchmarkId::new("raft", nodes), &nodes, |b, &n| {
            let cfg = RunConfig {
                protocol: ProtocolKind::Raft,
                nodes: n,
                ops: 2000,
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
    g.finish();
}

criterion_group!(benches, propose_to_commit, simulated_run);
criterion_main!(benches);
