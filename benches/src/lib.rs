//! Drivers for benchmarks: a cluster of cores in one thread, messages handed over directly,
//! persistence treated as instant. What is left is the protocol's own cost per commit.

use consensus_core::{Command, Envelope, NodeId, Recovered, Replica, Role, Time};
use raft::RaftReplica;
use std::collections::VecDeque;
use std::time::Duration;

/// A cluster of cores exchanging messages in memory, with no network and no disk.
pub struct Direct<R: Replica> {
    nodes: Vec<R>,
    inbox: VecDeque<(NodeId, Envelope<R::Message>)>,
    now: Time,
    /// Client commands the leader has seen committed.
    pub committed: u64,
}

impl<R: Replica> Direct<R> {
    /// Builds `n` nodes with `make(id)` and runs time forward until one leads.
    pub fn new(n: usize, make: impl Fn(NodeId) -> R) -> Self {
        let mut d = Direct {
            nodes: (1..=n as NodeId).map(make).collect(),
            inbox: VecDeque::new(),
            now: Duration::ZERO,
            committed: 0,
        };
        for _ in 0..10_000 {
            if d.leader().is_some() {
                break;
            }
            d.now += Duration::from_millis(1);
            for i in 0..d.nodes.len() {
                d.nodes[i].tick(d.now);
            }
            d.pump();
        }
        assert!(d.leader().is_some(), "no leader elected");
        d.committed = 0;
        d
    }

    /// The current leader.
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .map(|n| n.status())
            .find(|s| s.role == Role::Leader)
            .map(|s| s.id)
    }

    fn collect(&mut self, i: usize, leader: Option<NodeId>) {
        while self.nodes[i].has_ready() {
            self.collect_once(i, leader);
        }
    }

    fn collect_once(&mut self, i: usize, leader: Option<NodeId>) {
        let r = &mut self.nodes[i];
        let ready = r.take_ready();
        // Persistence is instant here: report every append as durable at once.
        let appended = ready.appended_through();
        if let Some(p) = appended {
            r.persisted(self.now, p);
        }
        let from = r.id();
        if Some(from) == leader {
            self.committed += ready
                .committed
                .iter()
                .filter(|e| matches!(e.payload, consensus_core::Payload::Command(_)))
                .count() as u64;
        }
        self.inbox
            .extend(ready.messages.into_iter().map(|m| (from, m)));
    }

    /// Delivers messages until the cluster is quiet.
    pub fn pump(&mut self) {
        let leader = self.leader();
        for i in 0..self.nodes.len() {
            self.collect(i, leader);
        }
        while let Some((from, env)) = self.inbox.pop_front() {
            let to = env.to as usize - 1;
            self.nodes[to].receive(self.now, from, env.msg);
            self.collect(to, leader);
        }
    }

    /// Commits `total` commands of `payload` with up to `outstanding` uncommitted at a time.
    pub fn commit(&mut self, total: u64, outstanding: u64, payload: &Command) {
        let leader = self.leader().expect("a leader") as usize - 1;
        let target = self.committed + total;
        let mut proposed = self.committed;
        while self.committed < target {
            while proposed < target && proposed - self.committed < outstanding {
                self.nodes[leader]
                    .propose(self.now, payload.clone())
                    .expect("the leader accepts");
                proposed += 1;
            }
            self.pump();
        }
    }
}

/// A ZAB ensemble of `n` servers with default settings, already led.
pub fn zab(n: usize) -> Direct<zab::ZabReplica> {
    let voters: Vec<NodeId> = (1..=n as NodeId).collect();
    Direct::new(n, |id| {
        zab::ZabReplica::new(
            id,
            &voters,
            zab::Config::default(),
            1,
            Recovered::default(),
            Duration::ZERO,
        )
    })
}

/// A Raft cluster of `n` nodes with default settings, already led.
pub fn raft(n: usize) -> Direct<RaftReplica> {
    let voters: Vec<NodeId> = (1..=n as NodeId).collect();
    Direct::new(n, |id| {
        RaftReplica::new(
            id,
            &voters,
            raft::Config::default(),
            1,
            Recovered::default(),
            Duration::ZERO,
        )
    })
}

/// Virtual time from a leader's crash to the next leader, in a 5-node simulated cluster.
pub fn election_after_crash(kind: harness::Protocol, seed: u64) -> Duration {
    let mut c = harness::Cluster::new(
        kind,
        harness::SimConfig {
            nodes: 5,
            seed,
            ..harness::SimConfig::default()
        },
    );
    assert!(c.run_until(Duration::from_secs(20), |c| c.leader().is_some()));
    let old = c.leader().expect("a leader");
    c.run_for(Duration::from_millis(500));
    c.crash(old);
    let start = c.now();
    assert!(c.run_until(Duration::from_secs(20), |c| c
        .leader()
        .is_some_and(|l| l != old)));
    c.now() - start
}
