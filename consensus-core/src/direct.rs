//! The smallest driver: cores in one process, messages handed over in FIFO order at once,
//! persistence instant, a clock moved by hand. For unit tests of a protocol and for
//! benchmarks of its cores alone (no network, no disk, no state machine).

use crate::pipeline::Step;
use crate::replica::{Envelope, ReadLevel, ReadState, Replica, Role};
use crate::types::{Command, NodeId, Payload, Time};
use std::collections::VecDeque;
use std::time::Duration;

/// A cluster of cores exchanging messages in memory.
pub struct Direct<R: Replica> {
    nodes: Vec<R>,
    inbox: VecDeque<(NodeId, Envelope<R::Message>)>,
    now: Time,
    committed: u64,
    reads: Vec<(NodeId, ReadState)>,
}

impl<R: Replica> Direct<R> {
    /// A cluster of `nodes`, numbered from 1 in order, at time zero.
    pub fn new(nodes: Vec<R>) -> Self {
        Direct {
            nodes,
            inbox: VecDeque::new(),
            now: Duration::ZERO,
            committed: 0,
            reads: Vec::new(),
        }
    }

    /// The current time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Node `id`.
    pub fn node(&self, id: NodeId) -> &R {
        &self.nodes[id as usize - 1]
    }

    /// Node `id`, to drive by hand.
    pub fn node_mut(&mut self, id: NodeId) -> &mut R {
        &mut self.nodes[id as usize - 1]
    }

    /// The node that leads (the first, should there be more than one).
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .map(|n| n.status())
            .find(|s| s.role == Role::Leader)
            .map(|s| s.id)
    }

    /// Commands applied on the node that led when they were applied.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// The read indexes the nodes answered since the last call, with the node that answered.
    pub fn take_reads(&mut self) -> Vec<(NodeId, ReadState)> {
        std::mem::take(&mut self.reads)
    }

    /// Moves time forward `d`, a millisecond at a time, ticking every node and delivering
    /// every message after each tick.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(1);
            for i in 0..self.nodes.len() {
                let now = self.now;
                self.nodes[i].tick(now);
            }
            self.pump();
        }
    }

    /// Runs until some node leads, for at most `limit`; returns the leader.
    pub fn elect(&mut self, limit: Duration) -> Option<NodeId> {
        let end = self.now + limit;
        while self.leader().is_none() && self.now < end {
            self.run_for(Duration::from_millis(1));
        }
        self.leader()
    }

    /// Carries out every node's Readies and delivers messages until the cluster is quiet.
    pub fn pump(&mut self) {
        let leader = self.leader();
        for i in 0..self.nodes.len() {
            self.collect(i, leader);
        }
        while let Some((from, env)) = self.inbox.pop_front() {
            let to = env.to as usize - 1;
            let now = self.now;
            self.nodes[to].receive(now, from, env.msg);
            self.collect(to, leader);
        }
    }

    /// Proposes `total` commands of `payload` at the leader, with at most `outstanding`
    /// uncommitted at a time, until all are committed.
    pub fn commit(&mut self, total: u64, outstanding: u64, payload: &Command) {
        let leader = self.leader().expect("a leader");
        let target = self.committed + total;
        let mut proposed = self.committed;
        while self.committed < target {
            while proposed < target && proposed - self.committed < outstanding {
                let now = self.now;
                self.node_mut(leader)
                    .propose(now, payload.clone())
                    .expect("the leader accepts");
                proposed += 1;
            }
            self.pump();
        }
    }

    /// Asks the leader for `total` read indexes at `level`, at most `outstanding` unanswered
    /// at a time, until every one is answered; returns how many were refused.
    pub fn read_indexes(&mut self, total: u64, outstanding: u64, level: ReadLevel) -> u64 {
        let leader = self.leader().expect("a leader");
        let (mut asked, mut answered, mut refused) = (0u64, 0u64, 0u64);
        while answered < total {
            while asked < total && asked - answered < outstanding {
                let now = self.now;
                if self.node_mut(leader).read_index(now, asked, level).is_err() {
                    refused += 1;
                    answered += 1;
                }
                asked += 1;
            }
            self.pump();
            for (_, r) in self.take_reads() {
                answered += 1;
                refused += u64::from(r.at.is_err());
            }
        }
        refused
    }

    fn collect(&mut self, i: usize, leader: Option<NodeId>) {
        while self.nodes[i].has_ready() {
            let now = self.now;
            let node = &mut self.nodes[i];
            let from = node.id();
            // Persistence is instant: every append is durable as soon as it is asked for.
            let (early, _, release) = node.take_ready().split();
            for env in early.messages {
                self.inbox.push_back((from, env));
            }
            let early_applies = early.committed.into_iter().map(Step::Apply);
            for step in early_applies.chain(release.steps()) {
                match step {
                    Step::Persisted(p) => node.persisted(now, p),
                    Step::Send(env) => self.inbox.push_back((from, env)),
                    Step::Read(r) => self.reads.push((from, r)),
                    Step::Apply(e) if Some(from) == leader => {
                        if matches!(e.payload, Payload::Command(_)) {
                            self.committed += 1;
                        }
                    }
                    // No state machine: nothing to restore, apply or snapshot.
                    Step::Apply(_) | Step::Restore(_) | Step::Snapshot(_) => {}
                }
            }
        }
    }
}
