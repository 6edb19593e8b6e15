//! Regression tests for the bugs an adversarial review of the ZAB core found (issue 10): each
//! replays the schedule that showed the bug and asserts the safe outcome.

use bytes::Bytes;
use consensus_core::{NodeId, Role};
use harness::Cluster;
use std::time::Duration;

mod common;
use common::{leader, propose_all, zab};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn commit(c: &mut Cluster, tag: &str, n: usize) {
    propose_all(c, tag, n);
    c.run_for(ms(50));
}

fn applied_anywhere(c: &Cluster, cmd: &[u8]) -> Vec<NodeId> {
    c.ids()
        .filter(|&id| c.applied(id).iter().any(|x| x == cmd))
        .collect()
}

/// Everyone up, one leader, every node caught up.
fn converges(c: &mut Cluster, within: Duration) -> bool {
    c.run_until(within, |c| {
        let Some(l) = c.leader().and_then(|l| c.status(l)) else {
            return false;
        };
        c.ids().all(|id| {
            c.status(id)
                .is_some_and(|s| s.commit == l.last && s.last == l.last)
        })
    })
}

/// Bug 1: a follower applied the history a would-be leader synchronized at NEWLEADER, before
/// that leader was established; the leader never was, and a later epoch dropped the entry.
#[test]
fn a_follower_applies_synchronized_history_only_once_the_leader_is_established() {
    let mut c = zab(5, 3);
    commit(&mut c, "base", 3);
    let a = c.leader().unwrap();
    let others: Vec<NodeId> = c.ids().filter(|&id| id != a).collect();
    let (b, cc, d, e) = (others[0], others[1], others[2], others[3]);
    // X reaches A's disk only.
    c.disconnect(a);
    c.propose(a, Bytes::from_static(b"X"))
        .expect("A still leads");
    c.run_for(ms(20));
    c.partition(&[vec![a], vec![b, cc], vec![d, e]]);
    c.run_for(ms(1500));
    c.partition(&[vec![a, cc, d], vec![b, e]]);
    let epoch_before = c.status(a).unwrap().era;
    // The moment A settles its new epoch (currentEpoch set, DIFF..NEWLEADER queued behind
    // the fsync), cut A -> D: A can never reach its NEWLEADER quorum.
    assert!(
        c.step_until(Duration::from_secs(5), |c| c
            .status(a)
            .is_some_and(|s| s.role_name == "Leading" && s.era > epoch_before)),
        "A never settled a new epoch"
    );
    c.block_one_way(a, d);
    c.run_for(ms(300));
    assert!(
        applied_anywhere(&c, b"X").is_empty(),
        "X applied on {:?} although no leader established it",
        applied_anywhere(&c, b"X")
    );
    c.partition(&[vec![a, cc], vec![b, d, e]]);
    commit(&mut c, "later", 3);
    c.heal();
    assert!(converges(&mut c, Duration::from_secs(5)), "no convergence");
    commit(&mut c, "end", 2);
    assert!(c.diverged().is_empty(), "{:?}", c.diverged());
    assert!(c.violations().is_empty(), "{:?}", c.violations());
    assert!(applied_anywhere(&c, b"X").is_empty(), "X was applied");
}

/// Bug 3: a node whose acceptedEpoch is above the established leader's epoch refused that
/// leader, went LOOKING, and FLE sent it straight back, forever.
#[test]
fn a_node_that_promised_a_higher_epoch_rejoins_the_established_leader() {
    let mut c = zab(3, 11);
    commit(&mut c, "base", 2);
    let old = c.leader().unwrap();
    let pair: Vec<NodeId> = c.ids().filter(|&id| id != old).collect();
    c.disconnect(old);
    // Twice: let the pair elect X and cut every link the moment X offers its epoch (the
    // offer waits behind the fsync of X's acceptedEpoch, so it never leaves).
    let mut x = None;
    for _ in 0..2 {
        c.partition(&[pair.clone(), vec![old]]);
        let accepted = |c: &Cluster, id| c.durable_hard_state(id)["accepted_epoch"].as_u64();
        let before: Vec<_> = pair.iter().map(|&id| accepted(&c, id)).collect();
        // X's acceptedEpoch is durable: its LEADERINFO is on the wire, not yet delivered.
        let offered = |c: &Cluster| {
            pair.iter().zip(&before).find_map(|(&id, b)| {
                (c.status(id).is_some_and(|s| s.role_name == "Leading") && accepted(c, id) != *b)
                    .then_some(id)
            })
        };
        assert!(
            c.step_until(Duration::from_secs(5), |c| offered(c).is_some()),
            "the pair never elected"
        );
        x = offered(&c);
        c.partition(&[vec![pair[0]], vec![pair[1]], vec![old]]);
        c.run_for(ms(1500));
    }
    // The other two elect Y and establish an epoch below X's promise; then heal.
    let x = x.unwrap();
    let rest: Vec<NodeId> = c.ids().filter(|&id| id != x).collect();
    c.partition(&[rest, vec![x]]);
    leader(&mut c);
    commit(&mut c, "without-x", 2);
    c.heal();
    assert!(
        converges(&mut c, Duration::from_secs(3)),
        "a node never rejoined: {:?}",
        c.ids().map(|id| c.status(id)).collect::<Vec<_>>()
    );
    commit(&mut c, "after", 2);
    assert!(c.diverged().is_empty(), "{:?}", c.diverged());
    assert!(c.violations().is_empty(), "{:?}", c.violations());
}

/// Bug 4: a node cut off for a long time rejoined up to 60 s after the heal (FLE's resend
/// backoff); every node must follow the leader within 1 s of virtual time.
#[test]
fn a_node_cut_off_for_long_rejoins_within_a_second_of_the_heal() {
    for seed in 1..=5 {
        let mut c = zab(5, seed);
        commit(&mut c, "base", 2);
        let victim = c.ids().find(|&id| Some(id) != c.leader()).unwrap();
        c.disconnect(victim);
        c.run_for(Duration::from_secs(20));
        commit(&mut c, "while-away", 2);
        c.connect(victim);
        let healed = c.now();
        assert!(
            c.run_until(Duration::from_secs(1), |c| c.status(victim).is_some_and(
                |s| s.role == Role::Follower
                    && s.leader == c.leader()
                    && s.commit >= c.status(c.leader().unwrap()).unwrap().commit
            )),
            "seed {seed}: node {victim} had not rejoined {:?} after the heal",
            c.now() - healed
        );
    }
}
