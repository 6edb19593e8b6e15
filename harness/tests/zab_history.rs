//! Stories from ZooKeeper's bug history, replayed in the simulator.

use bytes::Bytes;
use consensus_core::{NodeId, Payload};
use harness::protocol::{RAFT, ZAB};
use harness::run::{self, RunConfig};
use harness::{Cluster, Faults, SimConfig};
use std::time::Duration;

mod common;
use common::{leader, propose_all, zab};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn total(c: &Cluster, id: NodeId) -> u64 {
    c.applied_base(id) + c.applied(id).len() as u64
}

fn has(c: &Cluster, id: NodeId, cmd: &str) -> bool {
    c.applied(id).iter().any(|x| x == cmd.as_bytes())
}

/// Whether node `id` has applied `cmd`, one by one or inside a snapshot it restored: its state
/// machine has gone past the command's place in the cluster's sequence (the simulator checks
/// separately that every node applies that same sequence).
fn applied_through(c: &Cluster, id: NodeId, cmd: &str) -> bool {
    c.committed_sequence()
        .iter()
        .position(|x| x == cmd.as_bytes())
        .is_some_and(|i| total(c, id) > i as u64)
}

/// Commits `n` commands named `{tag}-{i}` and waits until every live node applied them.
fn commit(c: &mut Cluster, tag: &str, n: usize) {
    propose_all(c, tag, n);
    let last = format!("{tag}-{}", n - 1);
    let live: Vec<NodeId> = c.ids().filter(|&id| !c.is_crashed(id)).collect();
    assert!(
        c.run_until(secs(10.0), |c| live
            .iter()
            .all(|&id| applied_through(c, id, &last))),
        "{tag} not applied everywhere"
    );
}

fn assert_agree(c: &Cluster) {
    assert!(c.diverged().is_empty(), "{:?}", c.diverged());
    assert!(c.violations().is_empty(), "{:?}", c.violations());
}

#[test]
fn zookeeper_1154_an_old_leaders_lone_proposal_is_truncated_when_it_rejoins() {
    let mut c = zab(3, 21);
    commit(&mut c, "base", 5);
    let old = c.leader().unwrap();
    // Cut the leader off, let it log one proposal nobody else sees, then kill it.
    c.disconnect(old);
    c.propose(old, Bytes::from_static(b"lonely"))
        .expect("still leading for a moment");
    c.run_for(Duration::from_millis(20));
    assert!(
        c.durable_entries(old)
            .iter()
            .any(|e| e.payload == Payload::Command(Bytes::from_static(b"lonely"))),
        "the proposal is on the old leader's disk"
    );
    c.crash(old);
    c.connect(old);
    // The others move on to a new epoch.
    commit(&mut c, "after", 5);
    let new = c.leader().unwrap();
    assert_ne!(new, old);
    c.restart(old);
    assert!(
        c.run_until(secs(10.0), |c| has(c, old, "after-4")),
        "the old leader rejoins"
    );
    for id in c.ids() {
        assert!(
            !has(&c, id, "lonely"),
            "node {id} applied the lone proposal"
        );
        assert!(
            !c.durable_entries(id)
                .iter()
                .any(|e| e.payload == Payload::Command(Bytes::from_static(b"lonely"))),
            "node {id} still logs it"
        );
    }
    assert_agree(&c);
}

#[test]
fn zookeeper_3911_4646_crashes_during_election_and_sync_lose_no_committed_transaction() {
    // Kill the survivors at many instants while they elect and synchronize (some right after
    // a follower acked NEWLEADER), restart them without the old leader: every committed
    // transaction must still be there. Run for both protocols.
    for kind in [RAFT, ZAB] {
        for (i, at_ms) in (0..900).step_by(45).enumerate() {
            let mut c = Cluster::new(
                kind,
                SimConfig {
                    nodes: 3,
                    seed: 40 + i as u64,
                    ..SimConfig::default()
                },
            );
            commit(&mut c, "committed", 20);
            let old = c.leader().unwrap();
            c.crash(old);
            c.run_for(Duration::from_millis(at_ms));
            let others: Vec<NodeId> = c.ids().filter(|&id| id != old).collect();
            for &id in &others {
                c.crash(id);
            }
            for &id in &others {
                c.restart(id);
            }
            assert!(
                c.run_until(secs(15.0), |c| others.iter().all(|&id| total(c, id) >= 20)),
                "{kind:?} crash at {at_ms} ms: committed transactions missing"
            );
            for &id in &others {
                assert!(
                    has(&c, id, "committed-19"),
                    "{kind:?} at {at_ms} ms: node {id}"
                );
            }
            c.restart(old);
            commit(&mut c, "later", 3);
            assert_agree(&c);
        }
    }
}

#[test]
fn zookeeper_1732_1818_a_follower_restarted_repeatedly_under_load_rejoins_each_time() {
    let mut c = zab(3, 33);
    commit(&mut c, "warmup", 5);
    for round in 0..8 {
        let l = leader(&mut c);
        let f = c.ids().find(|&id| id != l).unwrap();
        c.crash(f);
        commit(&mut c, &format!("round{round}"), 10);
        c.restart(f);
        let target = total(&c, l);
        assert!(
            c.run_until(secs(15.0), |c| total(c, f) >= target),
            "round {round}: follower {f} did not rejoin"
        );
    }
    assert_agree(&c);
}

#[test]
fn zookeeper_1277_counter_overflow_forces_new_epochs_under_load() {
    // A tiny counter limit: every 99 proposals the leader must give up and a new epoch starts.
    let mut sim = SimConfig::default();
    sim.tuning.set(zab::Config {
        counter_limit: 100,
        ..zab::Config::default()
    });
    let cfg = RunConfig {
        protocol: ZAB,
        nodes: 3,
        ops: 1500,
        faults: Faults::None,
        seed: 5,
        ..RunConfig::default()
    };
    let r = run::run_in(&cfg, sim, None);
    assert!(r.passed(), "{:?}", r.failure());
    assert!(
        r.elections >= 10,
        "only {} elections for 1500 ops",
        r.elections
    );
    assert_eq!(r.ops_ok, 1500);
}

/// A 3-server ensemble compacting every 50 proposals whose follower missed 300 of them and
/// has just restarted: its leader must synchronize it by SNAP. Returns the follower.
fn returning_far_behind(seed: u64) -> (Cluster, NodeId) {
    let mut sim = SimConfig {
        nodes: 3,
        seed,
        ..SimConfig::default()
    };
    sim.knobs.snapshot_threshold = Some(50);
    let mut c = Cluster::new(ZAB, sim);
    let l = leader(&mut c);
    let f = c.ids().find(|&id| id != l).unwrap();
    c.crash(f);
    commit(&mut c, "while-away", 300);
    c.restart(f);
    (c, f)
}

#[test]
fn zookeeper_3642_the_leader_crashes_in_the_middle_of_a_snap_sync() {
    // A follower returns far behind a compacted log, so the leader must SNAP it; the leader
    // is killed at a sweep of instants while that sync is under way. Nothing committed may be
    // lost and, once the leader is back, every node must agree.
    {
        // Control: without the crash, the follower is brought back by a snapshot.
        let (mut c, f) = returning_far_behind(70);
        assert!(c.run_until(secs(10.0), |c| total(c, f) >= 300));
        assert!(
            c.applied_base(f) > 0,
            "the follower was synchronized by SNAP"
        );
    }
    for (i, at_us) in (0..12_000).step_by(600).enumerate() {
        let (mut c, _) = returning_far_behind(70 + i as u64);
        c.run_for(Duration::from_micros(at_us));
        let l = leader(&mut c);
        c.crash(l);
        let survivors: Vec<NodeId> = c.ids().filter(|&id| id != l).collect();
        assert!(
            c.run_until(secs(15.0), |c| survivors.iter().all(|&id| has(
                c,
                id,
                "while-away-299"
            ) || total(
                c, id
            ) >= 300)),
            "crash at {at_us} us: committed transactions missing on {survivors:?}"
        );
        c.restart(l);
        commit(&mut c, "after", 3);
        assert!(c.run_until(secs(15.0), |c| c
            .ids()
            .all(|id| applied_through(c, id, "after-2"))));
        assert_agree(&c);
    }
}
