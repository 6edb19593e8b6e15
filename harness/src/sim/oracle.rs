//! What the nodes applied, checked as it happens against the cluster's one sequence, and the
//! final state checks.

use super::*;

impl<R: Replica> Sim<R> {
    pub(super) fn apply(&mut self, id: NodeId, entry: Entry) {
        let out = match &entry.payload {
            Payload::Command(cmd) => Some(self.apply_command(id, entry.pos, cmd)),
            Payload::Noop | Payload::Config(_) => None,
        };
        let n = &mut self.nodes[id as usize - 1];
        n.applied_at = entry.pos;
        for (who, outcome) in n.waiting.applied(entry.pos, &entry.payload, out) {
            self.reply_to(who, outcome, entry.pos);
        }
    }

    /// Restores node `id`'s state machine from a snapshot; whoever waits for an entry the
    /// snapshot covers cannot know whether it took effect.
    pub(super) fn restore(&mut self, id: NodeId, snap: Snapshot) {
        let count = self.snapshot_counts.get(&snap.last).copied();
        let n = &mut self.nodes[id as usize - 1];
        let restored = at_once(n.sm.restore(&snap.data));
        match (restored, count) {
            (Ok(()), None) => self.observer.violation(format!(
                "node {id}: restored a snapshot at {} that no node took",
                snap.last
            )),
            (Ok(()), Some(count)) => {
                n.applied_base = count;
                n.applied.clear();
                n.applied_at = snap.last;
            }
            (Err(e), _) => self.observer.violation(format!(
                "node {id}: snapshot at {} does not restore: {e}",
                snap.last
            )),
        }
        let n = self.node_mut(id);
        for (who, outcome) in n.waiting.restored(snap.last) {
            self.reply_to(who, outcome, snap.last);
        }
    }

    /// Applies a command and checks it against the cluster's sequence as first seen on any
    /// node; returns the state machine's output.
    fn apply_command(&mut self, id: NodeId, pos: Position, cmd: &Command) -> bytes::Bytes {
        let n = &mut self.nodes[id as usize - 1];
        let out = at_once(n.sm.apply(pos, cmd));
        let index = (n.applied_base + n.applied.len() as u64) as usize;
        match self.oracle.get(index) {
            Some(c) if c == cmd => {}
            Some(_) => {
                self.diverged.entry(id).or_insert_with(|| {
                    format!("node {id} applied a different command as command #{index} (at {pos})")
                });
            }
            None if index == self.oracle.len() => self.oracle.push(cmd.clone()),
            None => self.observer.violation(format!(
                "node {id} applied command #{index} before anyone applied #{}",
                self.oracle.len()
            )),
        }
        self.nodes[id as usize - 1].applied.push(cmd.clone());
        out
    }

    /// Sends a client the answer about the entry it waited for, after a network delay.
    pub(super) fn reply_to(&mut self, who: Waiter, outcome: Outcome<bytes::Bytes>, at: Position) {
        let reply = match outcome {
            Outcome::Done(out) => Reply::Done(out, at),
            // The client tries again with the same session: applied at most once either way.
            Outcome::Superseded | Outcome::Unknown => Reply::Retry,
        };
        self.answer(who, reply);
    }

    /// Sends a client a node's answer, which arrives after a network delay.
    pub(super) fn answer(&mut self, who: Waiter, reply: Reply) {
        let (client, seq, attempt) = who;
        let at = self.now + self.delay();
        self.schedule(
            at,
            Event::ClientReply {
                client,
                seq,
                attempt,
                reply,
            },
        );
    }

    /// The commands node `id` applied since it last started or restored a snapshot, in order.
    pub fn applied(&self, id: NodeId) -> &[Command] {
        &self.node(id).applied
    }

    /// How many commands node `id`'s state machine held before [`Sim::applied`] began.
    pub fn applied_base(&self, id: NodeId) -> u64 {
        self.node(id).applied_base
    }

    /// The cluster's applied command sequence, as first seen on any node.
    pub fn committed_sequence(&self) -> &[Command] {
        &self.oracle
    }

    /// Nodes that ever applied a command different from the cluster's sequence, with the
    /// first such case explained.
    pub fn diverged(&self) -> &BTreeMap<NodeId, String> {
        &self.diverged
    }

    /// A snapshot of node `id`'s state machine (a crashed node's is empty).
    pub fn state(&mut self, id: NodeId) -> bytes::Bytes {
        at_once(self.node_mut(id).sm.snapshot())
    }

    /// Node `id`'s state machine's answer to a read-only command.
    pub fn query(&mut self, id: NodeId, command: &Command) -> bytes::Bytes {
        at_once(self.node_mut(id).sm.query(command))
    }

    /// Whether node `id` belongs to the cluster at the end: a member of the leader's
    /// configuration (every node while none leads). A node removed keeps what it applied,
    /// which must be a prefix of the sequence, but need not catch up.
    fn is_final_member(&self, id: NodeId) -> bool {
        match self.leader().and_then(|l| self.membership(l)) {
            Some(m) => m.contains(id),
            None => true,
        }
    }

    /// The end-of-run check of every replica against the cluster's sequence: each member
    /// holds the whole sequence (not a prefix of it), its applied commands are the sequence's,
    /// and its store equals a replay of the sequence; a node removed from the cluster holds a
    /// prefix of it. Returns the problems found.
    pub(crate) fn final_state_problems(&mut self) -> Vec<String> {
        let members: Vec<bool> = (1..=self.nodes.len() as NodeId)
            .map(|id| self.is_final_member(id))
            .collect();
        let app = self.cfg.app.clone();
        let mut reference = app.get().machine();
        for cmd in &self.oracle {
            at_once(reference.apply(Position::ZERO, cmd));
        }
        let reference = at_once(reference.snapshot());
        let mut problems = Vec::new();
        for (i, n) in self.nodes.iter_mut().enumerate() {
            let id = i as NodeId + 1;
            let total = n.total_applied();
            if !members[i] {
                let end = (total as usize).min(self.oracle.len());
                if total as usize > self.oracle.len()
                    || self.oracle.get(n.applied_base as usize..end) != Some(&n.applied[..])
                {
                    problems.push(format!(
                        "node {id} (removed) applied commands that are not a prefix of the sequence"
                    ));
                }
                continue;
            }
            if total != self.oracle.len() as u64 {
                problems.push(format!(
                    "node {id} ends with {total} commands applied; the cluster's sequence has {}",
                    self.oracle.len()
                ));
            } else if self.oracle[n.applied_base as usize..] != n.applied[..] {
                problems.push(format!(
                    "node {id}'s applied commands differ from the sequence"
                ));
            } else if !app.get().same_state(&at_once(n.sm.snapshot()), &reference) {
                problems.push(format!(
                    "node {id}'s store differs from a replay of the cluster's sequence"
                ));
            }
        }
        problems
    }

    /// Commands every node's final state holds: the shortest prefix of the cluster's
    /// sequence that all nodes applied.
    pub(crate) fn final_prefix(&self) -> usize {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| self.is_final_member(*i as NodeId + 1))
            .map(|(_, n)| n.total_applied() as usize)
            .min()
            .unwrap_or(0)
            .min(self.oracle.len())
    }

    /// True when all nodes are up, one leads, and every node applied everything it committed
    /// up to the leader's last position.
    pub(crate) fn converged(&self) -> bool {
        let Some(leader) = self.leader() else {
            return false;
        };
        let Some(ls) = self.status(leader) else {
            return false;
        };
        let leader_total = self.node(leader).total_applied();
        let members = self.membership(leader);
        let member = |id: NodeId| members.as_ref().is_none_or(|m| m.contains(id));
        self.nodes
            .iter()
            .enumerate()
            .all(|(i, n)| match &n.replica {
                _ if !member(i as NodeId + 1) => true,
                Some(r) => {
                    let s = r.status();
                    s.commit == ls.last && s.last == ls.last && n.total_applied() == leader_total
                }
                None => false,
            })
    }
}
