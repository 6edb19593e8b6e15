//! Reads outside the log, in the simulator: each level keeps the guarantee it claims under
//! chaos, and costs what it should.

use consensus_core::ReadLevel;
use harness::protocol::{RAFT, ZAB};
use harness::run::{self, RunConfig};
use harness::Faults;

fn cfg(protocol: harness::Protocol, level: ReadLevel, faults: Faults, seed: u64) -> RunConfig {
    RunConfig {
        protocol,
        ops: 4000,
        faults,
        seed,
        read_consistency: level,
        ..RunConfig::default()
    }
}

#[test]
fn every_read_level_keeps_its_guarantee_under_chaos() {
    for p in [RAFT, ZAB] {
        for level in [ReadLevel::Index, ReadLevel::Lease, ReadLevel::Local] {
            for seed in 1..=8 {
                let r = run::run(&cfg(p, level, Faults::Chaos, seed), None);
                assert!(r.passed(), "{p:?} {level:?} seed {seed}: {:?}", r.failure());
            }
        }
    }
}

#[test]
fn reads_outside_the_log_leave_it_to_the_writes() {
    for p in [RAFT, ZAB] {
        let log = run::run(&cfg(p, ReadLevel::Log, Faults::None, 1), None);
        let index = run::run(&cfg(p, ReadLevel::Index, Faults::None, 1), None);
        assert_eq!(log.committed_ops, 4000, "{p:?}: every op through the log");
        assert!(
            index.committed_ops < 3000,
            "{p:?}: about 30% reads left the log ({})",
            index.committed_ops
        );
        assert_eq!(index.ops_ok, 4000);
    }
}

#[test]
fn local_reads_are_fast_and_sometimes_stale_but_never_go_back() {
    for p in [RAFT, ZAB] {
        let r = run::run(&cfg(p, ReadLevel::Local, Faults::None, 1), None);
        let l = r.local_reads.as_ref().expect("local reads are checked");
        assert!(l.violations.is_empty(), "{p:?}: {:?}", l.violations);
        assert!(l.reads > 1000, "{p:?}: {}", l.reads);
        assert!(l.stale > 0, "{p:?}: followers lag the leader a little");
        let log = run::run(&cfg(p, ReadLevel::Log, Faults::None, 1), None);
        assert!(
            r.read_latency.p50_ms < log.read_latency.p50_ms / 2.0,
            "{p:?}: a local read skips the replication round"
        );
    }
}

#[test]
fn a_raft_lease_read_skips_the_confirming_round() {
    let lease = run::run(&cfg(RAFT, ReadLevel::Lease, Faults::None, 1), None);
    let index = run::run(&cfg(RAFT, ReadLevel::Index, Faults::None, 1), None);
    assert!(
        lease.messages < index.messages,
        "lease {} vs index {} messages",
        lease.messages,
        index.messages
    );
    assert!(lease.read_latency.p50_ms < index.read_latency.p50_ms);
}
