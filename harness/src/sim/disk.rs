//! Crashes and restarts: what a node keeps on its simulated disk, and what it loses.

use super::*;

impl<R: Replica> Sim<R> {
    /// The node's durable state on its simulated disk.
    pub fn durable(&self, id: NodeId) -> &Recovered<R::HardState> {
        self.node(id).store.durable()
    }

    /// True while the node is crashed.
    pub fn is_crashed(&self, id: NodeId) -> bool {
        self.node(id).replica.is_none()
    }

    /// Crashes a node: its memory, unsynced writes and in-flight messages to it are lost.
    pub fn crash(&mut self, id: NodeId) {
        let now = self.now;
        let lying = self.cfg.lying_disks;
        if self.node(id).replica.is_none() {
            return;
        }
        let n = &mut self.nodes[id as usize - 1];
        n.replica = None;
        // Power fails partway through whatever the disk was doing: a prefix of the unsynced
        // writes survives, the last one possibly cut inside an append (the LogStore contract).
        let ops = n.store.pending_ops();
        let keep = self.rng.random_range(0..=ops);
        let entries = self.rng.random_range(0..=n.store.pending_entries(keep));
        n.store.crash_keeping(keep, entries);
        if lying {
            n.store = MemLogStore::new();
        }
        n.inc += 1;
        n.tick_at = None;
        n.releases_queued = 0;
        n.sync_start = Duration::ZERO;
        n.sync_done = Duration::ZERO;
        n.waiting = Waiters::default();
        n.reads = PendingReads::default();
        self.observer.observe(now, id, None);
        self.trace_event(|t| TraceEvent::Crash { t, node: id });
        if let Some(tr) = self.tracer.as_mut() {
            tr.forget(id);
        }
    }

    /// Restarts a crashed node from its durable state, with an empty state machine.
    pub fn restart(&mut self, id: NodeId) {
        if self.node(id).replica.is_some() {
            return;
        }
        let recovered = match now_or_never(self.node_mut(id).store.recover()) {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                self.observer
                    .violation(format!("node {id}: recovery failed: {e}"));
                return;
            }
            None => unreachable!("the in-memory store never waits"),
        };
        let replica = (self.factory)(id, recovered, self.clock(id));
        self.trace_event(|t| TraceEvent::Restart { t, node: id });
        if let Some(tr) = self.tracer.as_mut() {
            tr.cause = "restart from disk".into();
        }
        let sm = self.cfg.app.get().machine();
        let n = self.node_mut(id);
        n.replica = Some(replica);
        n.sm = sm;
        n.applied_base = 0;
        n.applied.clear();
        n.applied_at = Position::ZERO;
        self.after_input(id);
    }
}
