//! Seed sweeps: the full pipeline (workload, nemesis, checker) over many seeds.
//!
//! The documented full sweep is `consensus-lab check --seeds 1..200 --faults mixed`; the test
//! suite runs a smaller one so CI stays fast.

use harness::run::{self, RunConfig};
use harness::{Faults, ProtocolKind, Semantics, SimConfig};

const PROTOCOLS: &[ProtocolKind] = &[ProtocolKind::Raft, ProtocolKind::Zab];

/// Sweeps `seeds` of `base` and fails with every failing seed's reproduction command.
fn assert_sweep_clean(base: &RunConfig, seeds: std::ops::RangeInclusive<u64>) {
    let failures = run::sweep(base, seeds, 2, &|_| {});
    let why: Vec<String> = failures
        .iter()
        .map(|r| {
            format!(
                "{}: {}",
                r.config.command_line(),
                r.failure().unwrap_or_default()
            )
        })
        .collect();
    assert!(failures.is_empty(), "{why:#?}");
}

#[test]
fn mixed_faults_sweep_finds_no_violation() {
    for &kind in PROTOCOLS {
        let base = RunConfig {
            protocol: kind,
            ops: 5000,
            faults: Faults::Mixed,
            ..RunConfig::default()
        };
        assert_sweep_clean(&base, 1..=40);
        // Raft also runs over datagram links: loss, duplication and reordering.
        if kind != ProtocolKind::Raft {
            continue;
        }
        let datagrams = RunConfig {
            network: Semantics::Datagram,
            ..base
        };
        assert_sweep_clean(&datagrams, 1..=40);
    }
}

#[test]
fn frequent_snapshots_under_faults_stay_safe() {
    // Compaction every 200 entries: InstallSnapshot, restarts from snapshot + log, and
    // conflicting logs replaced by snapshots all happen while the nemesis works.
    for &kind in PROTOCOLS {
        let base = RunConfig {
            protocol: kind,
            nodes: 3,
            ops: 5000,
            faults: Faults::Mixed,
            snapshot_threshold: 200,
            ..RunConfig::default()
        };
        assert_sweep_clean(&base, 1..=16);
    }
}

#[test]
fn every_fault_kind_runs_clean_and_makes_progress() {
    for &kind in PROTOCOLS {
        for faults in [Faults::None, Faults::Crash, Faults::Partition, Faults::Loss] {
            let r = run::run(
                &RunConfig {
                    protocol: kind,
                    ops: 3000,
                    faults,
                    seed: 9,
                    ..RunConfig::default()
                },
                None,
            );
            assert!(r.passed(), "{kind:?} {faults:?}: {:?}", r.failure());
            assert!(
                r.ops_ok > 2000,
                "{kind:?} {faults:?}: only {} ops ok",
                r.ops_ok
            );
            if faults != Faults::None {
                assert!(r.messages > 0 && r.elections >= 1);
            }
        }
    }
}

#[test]
fn the_checks_catch_disks_that_lie_about_fsync() {
    // Disks that lose synced data on every crash break persistence; the verdict must say so.
    // Seed 57 (3 nodes, crash faults) is one where an amnesiac node's vote elects a leader
    // that lacks committed entries: acknowledged writes vanish and a read sees the past.
    let lying = SimConfig {
        lying_disks: true,
        ..SimConfig::default()
    };
    let base = RunConfig {
        protocol: ProtocolKind::Raft,
        nodes: 3,
        ops: 3000,
        faults: Faults::Crash,
        seed: 57,
        network: Semantics::Datagram,
        ..RunConfig::default()
    };
    let r = run::run_in(&base, lying.clone(), None);
    assert!(!r.passed());
    assert!(r.lost_acked_writes > 0, "{:?}", r.failure());
    assert!(!r.linearizable, "{:?}", r.failure());
    // The same seed on honest disks passes: the failure is the disks' doing.
    assert!(run::run(&base, None).passed());
}
