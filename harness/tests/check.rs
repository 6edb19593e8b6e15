//! Seed sweeps: the full pipeline (workload, nemesis, checker) over many seeds.
//!
//! The documented full sweep is `consensus-lab check --seeds 1..200 --faults mixed`; the test
//! suite runs a smaller one so CI stays fast.

use harness::protocol::{RAFT, ZAB};
use harness::run::{self, RunConfig};
use harness::{Faults, Protocol, Semantics, SimConfig};

const PROTOCOLS: &[Protocol] = &[RAFT, ZAB];

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
        if kind != RAFT {
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
fn chaos_with_frequent_snapshots_converges() {
    // This seed (zab) never converges without the fix of docs/zab.md section 7: a
    // reconfiguration proposed in an older epoch, dead, keeps two servers Looking beside a
    // working leader. (Seed 13 hit that window until the early applies of 7038f3f changed
    // the traces; 2589 is the one seed of 1..3000 that hits it now, checked with the
    // mutation docs/mutations/zab-join-counts-dead-proposal.patch applied.)
    let dead_proposal = RunConfig {
        protocol: ZAB,
        ops: 10_000,
        faults: Faults::Chaos,
        snapshot_threshold: 50,
        seed: 2589,
        ..RunConfig::default()
    };
    assert_eq!(
        dead_proposal.command_line(),
        "consensus-lab run --protocol zab --nodes 5 --clients 16 --ops 10000 --seed 2589 --faults chaos --snapshot-threshold 50"
    );
    let r = run::run(&dead_proposal, None);
    assert!(r.passed(), "{}", r.failure().unwrap_or_default());
    for &kind in PROTOCOLS {
        let base = RunConfig {
            protocol: kind,
            ops: 5000,
            ..dead_proposal.clone()
        };
        assert_sweep_clean(&base, 1..=20);
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
        protocol: RAFT,
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

#[test]
fn chaos_sweep_is_clean_and_injects_every_kind_of_fault() {
    for &kind in PROTOCOLS {
        let base = RunConfig {
            protocol: kind,
            ops: 3000,
            faults: Faults::Chaos,
            ..RunConfig::default()
        };
        let seen = std::sync::Mutex::new(std::collections::BTreeMap::<String, u64>::new());
        let failures = run::sweep(&base, 1..=20, 2, &|r| {
            let mut s = seen.lock().unwrap();
            for (k, v) in &r.faults {
                *s.entry(k.clone()).or_default() += v;
            }
        });
        let why: Vec<_> = failures.iter().map(|r| r.failure()).collect();
        assert!(failures.is_empty(), "{kind:?}: {why:#?}");
        let seen = seen.into_inner().unwrap();
        for fault in [
            "chaos partition",
            "chaos one-way cut",
            "chaos crash",
            "power loss",
            "aimed: election or sync window",
        ] {
            assert!(
                seen.get(fault).is_some_and(|&n| n > 0),
                "{kind:?}: no {fault} in {seen:?}"
            );
        }
    }
}

#[test]
fn a_read_heavy_zipf_history_is_decided_not_inconclusive() {
    // Issue 10: this run ended Inconclusive after 20 M search steps; the apply order is a
    // witness the checker now tries first.
    let r = run::run(
        &RunConfig {
            protocol: RAFT,
            nodes: 5,
            clients: 64,
            read_ratio: 0.9,
            keys: 4,
            distribution: harness::KeyDistribution::Zipf,
            faults: Faults::Mixed,
            seed: 1,
            ..RunConfig::default()
        },
        None,
    );
    assert_eq!(r.check, harness::checker::CheckResult::Linearizable);
    assert!(r.passed(), "{:?}", r.failure());
}

#[test]
fn the_final_state_check_catches_a_write_every_replica_lost() {
    // Whole-cluster power loss on disks that keep nothing: some node applied every write once
    // (so the old check, against the sequence any node ever applied, saw nothing missing), but
    // no replica holds them at the end.
    let lying = SimConfig {
        lying_disks: true,
        ..SimConfig::default()
    };
    let base = RunConfig {
        protocol: ZAB,
        nodes: 3,
        ops: 3000,
        faults: Faults::Chaos,
        seed: 3,
        ..RunConfig::default()
    };
    let r = run::run_in(&base, lying, None);
    assert!(!r.passed());
    assert!(
        r.lost_acked_writes > 0 || !r.final_state.is_empty(),
        "{:?}",
        r.failure()
    );
}

#[test]
fn a_zab_run_asked_for_datagram_links_reports_the_stream_links_it_ran_on() {
    // Issue 10, bug 8: the reproduction command said datagram while ZAB ran on streams.
    let r = run::run(
        &RunConfig {
            protocol: ZAB,
            nodes: 3,
            ops: 200,
            faults: Faults::None,
            network: Semantics::Datagram,
            ..RunConfig::default()
        },
        None,
    );
    assert_eq!(r.config.network, Semantics::Stream);
    assert!(!r.config.command_line().contains("datagram"));
}

#[test]
fn one_seed_draws_one_fault_schedule_for_every_protocol() {
    for faults in [Faults::Mixed, Faults::Chaos, Faults::Crash] {
        let reports: Vec<_> = [RAFT, ZAB]
            .iter()
            .map(|&protocol| {
                run::run(
                    &RunConfig {
                        protocol,
                        faults,
                        ops: 3_000,
                        seed: 2,
                        ..RunConfig::default()
                    },
                    None,
                )
            })
            .collect();
        let (a, b) = (&reports[0].fault_windows, &reports[1].fault_windows);
        assert!(
            !a.is_empty() && !b.is_empty(),
            "{faults:?}: no fault injected"
        );
        // Every window but the last of the shorter run (closed when its workload ended).
        let n = a.len().min(b.len()) - 1;
        assert_eq!(a[..n], b[..n], "{faults:?}");
        assert_eq!(a[n].start_ms, b[n].start_ms, "{faults:?}");
        assert!(a.iter().all(|w| w.end_ms > w.start_ms), "{a:?}");
    }
}

#[test]
fn chaos_with_snapshots_in_many_chunks_finds_no_violation() {
    // 128-byte messages and a snapshot every 100 entries: every catch-up by snapshot travels
    // in chunks, under crashes, partitions and faults aimed at snapshot installs.
    let mut sim = SimConfig::default();
    sim.knobs.max_bytes_per_message = Some(128);
    for &kind in PROTOCOLS {
        let base = RunConfig {
            protocol: kind,
            ops: 3000,
            faults: Faults::Chaos,
            snapshot_threshold: 100,
            ..RunConfig::default()
        };
        for seed in 1..=4 {
            let r = run::run_in(
                &RunConfig {
                    seed,
                    ..base.clone()
                },
                sim.clone(),
                None,
            );
            assert!(r.passed(), "{}: {:?}", r.config.command_line(), r.failure());
        }
    }
}
